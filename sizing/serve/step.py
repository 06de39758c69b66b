"""Time of one engine step of a deployment: public API for the simulator, the load model and outside checks.

A continuous-batching engine (vLLM, SGLang, TensorRT-LLM) runs *steps*. One step carries ``d``
sequences that each decode one token at a context of ``c`` tokens, and ``p`` prompt tokens of
requests being prefilled (chunked prefill mixes both in one forward pass). Per operator group the
step's cost is the sum of its two parts, except that the weights are streamed once:

* linear layers (attention projections, MLP, experts, norms) see ``N = d + p`` tokens;
* attention: decode reads ``d`` KV caches of ``c`` tokens; prefill attends ``p`` tokens over a
  causal span of ``(I + 1)/2`` on average, ``I`` the prompt length (bidirectional: ``I``);
* the LM head produces logits for ``d`` sequences (plus one when a prompt completes: ``p > 0``);
* collectives move activations of ``N`` tokens; the fixed per-step overhead is paid once.

The roofline of :mod:`aicap.sizing.perf.roofline` turns the summed FLOPs and bytes into seconds. The
result is the time of one **micro-batch through the whole model**: with pipeline parallelism ``pp``
the engine keeps ``pp`` such micro-batches in flight and the caller decides how they share the
stages (see :mod:`aicap.sizing.serve.load`).

Two special cases are the phases people quote: :func:`prefill_step` (``k`` prompts of ``I`` tokens,
nothing decoding) and :func:`decode_step` (a batch ``b`` decoding at context ``c``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.perf.launches import kernel_floor_s, step_host_s
from aicap.sizing.perf.operators import OpCost, expert_cost, generic_step, transformer_step
from aicap.sizing.perf.roofline import StepTime, moe_latency_s, network_time, op_times

F = NDArray[np.float64]
#: The operator groups of a transformer step, in the order engine_costs lists them (rows of a StepModel).
OP_ORDER = ("attn_proj", "attention", "mlp", "experts", "lm_head", "norms")


def engine_costs(dep: Deployment, decode_seqs: ArrayLike, decode_context: ArrayLike, prefill_tokens: ArrayLike,
                 prompt_tokens: ArrayLike, tp: ArrayLike, cached_tokens: ArrayLike = 0.0) -> dict[str, OpCost]:  # fmt: skip
    """FLOPs and bytes per operator group of one mixed step, per device (device-independent).

    ``prompt_tokens`` is the part of each prompt that is computed; a prefix of ``cached_tokens`` already
    in the KV cache (prefix caching) is not recomputed, but the new tokens attend to it.

    With data-parallel attention (``dep.dp_attention = D``) the step is one attention group's, an engine of
    its own (its scheduler, step budget and KV cache): ``d`` and ``p`` are the group's, its attention,
    dense layers, shared experts and LM head run on ``a = tp/D`` devices, and its routed experts, split
    over all ``tp`` devices, take the tokens of every group, each as loaded as this one: ``N = D·(d·q + p)``
    (:func:`~aicap.sizing.perf.operators.expert_cost`). Symmetric load is what a router that spreads
    requests over the groups gives under load; a lone prompt's experts cost up to ``D`` times too much
    (conservative: :func:`aicap.sizing.perf.roofline.step_time` prices that case exactly).
    """
    if dep.dp_attention == 1:
        return _costs(dep, decode_seqs, decode_context, prefill_tokens, prompt_tokens, tp, cached_tokens)
    tp_a = np.asarray(tp, dtype=float)
    groups = float(dep.dp_attention)
    a = tp_a / groups
    costs = _costs(dep, decode_seqs, decode_context, prefill_tokens, prompt_tokens, a, cached_tokens)
    n = np.asarray(decode_seqs, dtype=float) * dep.verify_tokens + np.asarray(prefill_tokens, dtype=float)
    costs["experts"] = expert_cost(dep, groups * n, tp_a, n, a)
    return costs


def _costs(dep: Deployment, decode_seqs: ArrayLike, decode_context: ArrayLike, prefill_tokens: ArrayLike,
           prompt_tokens: ArrayLike, tp: ArrayLike, cached_tokens: ArrayLike) -> dict[str, OpCost]:  # fmt: skip
    """:func:`engine_costs` of ``tp`` devices that run every operator group tensor-parallel."""
    tp_a = np.asarray(tp, dtype=float)
    d = np.asarray(decode_seqs, dtype=float)
    p = np.asarray(prefill_tokens, dtype=float)
    c = np.asarray(decode_context, dtype=float)
    i = np.maximum(np.asarray(prompt_tokens, dtype=float), 1.0)
    n = d + p
    model = dep.model
    if model.kind == "generic":
        return generic_step(dep, n, tp_a)
    causal = model.kind == "decoder"
    q = float(dep.verify_tokens)  # speculative decoding: each decoding sequence verifies k + 1 tokens
    n = d * q + p
    lin = transformer_step(dep, 1.0, n, 0.0, tp_a, causal=causal)
    dec = transformer_step(dep, d, q, c, tp_a, causal=causal)
    pre = transformer_step(dep, p / i, i, np.asarray(cached_tokens, dtype=float), tp_a, causal=causal)
    # Logits for every verified token and for a prompt that completes in the step.
    head = transformer_step(dep, d * q + 1.0, 1.0, 0.0, tp_a, causal=causal)
    costs = dict(lin)
    costs["attention"] = OpCost(dec["attention"].flops + pre["attention"].flops, dec["attention"].bytes + pre["attention"].bytes)
    costs["lm_head"] = head["lm_head"]
    draft = draft_cost(dep, d, c, tp_a)
    if draft is not None:
        costs["draft"] = draft
    return costs


def draft_cost(dep: Deployment, decode_seqs: ArrayLike, decode_context: ArrayLike, tp: ArrayLike) -> OpCost | None:
    """FLOPs and bytes of the speculative drafter in one step, per device (``None`` without a drafter).

    ``k`` passes of one token for each of the ``d`` decoding sequences at context ``c``: the drafter's
    weights are read ``k`` times. Costed as one operator group, ``max(ΣF/P, ΣQ/BW)``.
    """
    draft, spec = dep.draft, dep.speculative
    if draft is None or spec is None:
        return None
    k = float(spec.draft_tokens)
    parts = list(transformer_step(draft, decode_seqs, 1.0, decode_context, tp).values())
    flops = sum((x.flops for x in parts[1:]), parts[0].flops)
    nbytes = sum((x.bytes for x in parts[1:]), parts[0].bytes)
    return OpCost(np.asarray(k * flops, dtype=float), np.asarray(k * nbytes, dtype=float))


def engine_step(
    dep: Deployment,
    decode_seqs: ArrayLike,
    decode_context: ArrayLike,
    prefill_tokens: ArrayLike,
    prompt_tokens: ArrayLike,
    *,
    tp: ArrayLike | None = None,
    pp: ArrayLike | None = None,
    ep: ArrayLike | None = None,
    cached_tokens: ArrayLike = 0.0,
) -> StepTime:
    """Roofline time of one mixed engine step (see module docstring); arrays broadcast.

    Parameters
    ----------
    dep
        The deployment: model, device, efficiency, formats (its tp/pp/ep unless arrays are given).
    decode_seqs
        Sequences decoding one token each in this step, ``d``.
    decode_context
        Tokens already in each decoding sequence's KV cache, ``c``.
    prefill_tokens
        Prompt tokens prefilled in this step, ``p`` (0 for a pure decode step).
    prompt_tokens
        Length ``I`` of the prompts those tokens belong to (sets the attention span), less any cached prefix.
    tp, pp, ep
        Parallel degrees, broadcast against the other arrays.
    cached_tokens
        Tokens of each prompt found in the prefix cache: attended to, not recomputed.

    Returns
    -------
    StepTime
        Seconds by operator group, network and overhead; ``.total`` is the step time.
    """
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    pp_a = np.asarray(dep.pp if pp is None else pp, dtype=float)
    ep_a = np.asarray(dep.ep if ep is None else ep, dtype=float)
    costs = engine_costs(dep, decode_seqs, decode_context, prefill_tokens, prompt_tokens, tp_a, cached_tokens)
    n = np.asarray(decode_seqs, dtype=float) * dep.verify_tokens + np.asarray(prefill_tokens, dtype=float)
    ops = op_times(dep, costs)
    net = network_time(dep, n, tp_a, pp_a, ep_a)
    overhead = np.asarray(dep.efficiency.step_overhead_ms * 1e-3 + moe_latency_s(dep) + 0.0 * net, dtype=float)
    return StepTime(ops=ops, network_s=net, overhead_s=overhead, host_s=step_host_s(dep, decode_seqs, prefill_tokens, tp_a),
                    kernels_s=np.asarray(kernel_floor_s(dep)))  # fmt: skip


def prefill_step(dep: Deployment, requests: ArrayLike, input_tokens: ArrayLike) -> StepTime:
    """One step that prefills ``requests`` prompts of ``input_tokens`` tokens each, nothing decoding."""
    k = np.asarray(requests, dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    return engine_step(dep, 0.0, 0.0, k * i, i)


def decode_step(dep: Deployment, batch: ArrayLike, context: ArrayLike) -> StepTime:
    """One step in which ``batch`` sequences each decode one token at ``context`` cached tokens."""
    return engine_step(dep, batch, context, 0.0, 1.0)
