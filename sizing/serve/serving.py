"""Serving metrics under continuous batching, built from prefill and decode step times.

For ``B`` concurrent requests of ``I`` input and ``O`` output tokens (decode at the mean context
``c̄ = I + O/2``):

* ``TTFT = T_prefill(1, I)``: a request's prefill when it is admitted (queueing is the sizer's job);
* a cycle serves ``B`` requests in ``T_cycle = T_prefill(B, I) + (O − 1)·T_decode(B, c̄)``, where
  ``T_prefill(B, I)`` runs in ``max(B·I / max_prefill_tokens, 1)`` chunks, each paying the step overhead;
* ``TPOT = (T_cycle − TTFT)/(O − 1)``: decode steps plus the other requests' prefills that interrupt
  them (``T_decode`` alone when ``O = 1``); ``E2E = TTFT + (O − 1)·TPOT``;
* output tokens/s ``= B·O / T_cycle``, requests/s ``= B / T_cycle`` per replica.

Encoders and generic models have a single phase: latency ``T_forward(B)`` and items/s ``B / T``.

With prefix caching, a share ``h`` of each prompt is already in the KV cache: prefill computes the other
``(1 − h)·I`` tokens, which attend to the cached ``h·I`` (so ``T_prefill(B, I)`` becomes that step);
decode context and memory keep the whole prompt. With speculative decoding (:mod:`aicap.sizing.core.speculative`)
a decode step verifies ``k + 1`` tokens per sequence, runs the drafter ``k`` times and emits ``E`` tokens, so
``T_cycle = T_prefill(B, I) + (O − 1)/E·T_decode(B, c̄)``. The engine's per-request overhead
(``runtime.request_overhead_ms``: HTTP, tokenisation) adds to TTFT and end-to-end, not to the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.perf import memory
from aicap.sizing.perf.launches import step_host_s
from aicap.sizing.perf.roofline import StepTime, micro_batch, op_times, step_time
from aicap.sizing.serve.step import draft_cost

F = NDArray[np.float64]
_BATCH_BISECTIONS = 12  # enough for batches up to 4,096


@dataclass(frozen=True)
class ServingMetrics:
    """Per-replica serving metrics (arrays over candidates); times in seconds."""

    batch: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    output_tokens_per_s: F
    total_tokens_per_s: F
    requests_per_s: F
    fits: NDArray[np.bool_]
    prefill: StepTime
    decode: StepTime


def prefill_time(
    dep: Deployment, batch: ArrayLike, input_tokens: ArrayLike, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike, cached: float = 0.0
) -> tuple[F, StepTime]:
    """Time to prefill ``batch`` requests of ``input_tokens`` (chunked), and the step it came from.

    ``cached`` is the share of each prompt found in the prefix cache: only ``(1 − cached)·I`` tokens are
    computed, attending to the cached ``cached·I``.
    """
    b = np.asarray(batch, dtype=float)
    full = np.asarray(input_tokens, dtype=float)
    i = np.maximum(np.ceil(full * (1.0 - cached)), 1.0) if cached else full
    causal = dep.model.kind == "decoder"
    st = step_time(dep, b, i, full - i, tp, pp, ep, causal=causal)
    # Chunks counted continuously (tokens / budget) so the per-chunk overhead amortises smoothly. A generic model's request is
    # one item (an image), batched whole: its "tokens" are no work and no budget (a ResNet ran 82 images/s at 100,000 of them).
    chunks = np.maximum(b * i / dep.runtime.max_prefill_tokens / dep.dp_attention, 1.0)  # each attention group chunks its own share
    if dep.model.kind == "generic":
        chunks = np.ones_like(chunks)
    # Each chunk is a step running every kernel again: chunks·K_g·τ_k of the kernels' fixed time, chunks·t_0 of overhead.
    kernels = np.asarray(chunks * st.kernels_s, dtype=float)
    if np.any(st.host_s):  # eager: and launching them again, max(T_device, chunks·H) + chunks·t_0
        whole = replace(st, host_s=np.asarray(chunks * st.host_s, dtype=float), overhead_s=np.asarray(chunks * st.overhead_s, dtype=float),
                        kernels_s=kernels)  # fmt: skip
        return whole.total, whole
    # the returned step carries every chunk's fixed times, so its parts (explain) add up to the time
    return np.asarray(st.total + (chunks - 1.0) * (st.overhead_s + st.kernels_s), dtype=float), replace(
        st, overhead_s=np.asarray(chunks * st.overhead_s, dtype=float), kernels_s=kernels
    )


def decode_time(dep: Deployment, batch: ArrayLike, context: ArrayLike, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike) -> StepTime:
    """One decode step of ``batch`` sequences at ``context`` tokens.

    With speculative decoding each sequence verifies ``k + 1`` tokens and the drafter's ``k`` passes are an
    operator group of their own (:func:`~aicap.sizing.serve.step.draft_cost`); the step then emits ``E``
    tokens per sequence on average (``dep.tokens_per_step``).
    """
    # A decode-only step: launched from the host where the engine is eager or the micro-batch is over its graph cap.
    dec = step_time(dep, batch, float(dep.verify_tokens), context, tp, pp, ep)
    dec = replace(dec, host_s=step_host_s(dep, micro_batch(batch, pp), 0.0, tp))
    draft = draft_cost(dep, micro_batch(batch, pp), context, tp)  # none with data-parallel attention (Deployment.check)
    if draft is None:
        return dec
    ops = {**dec.ops, **op_times(dep, {"draft": draft})}
    return StepTime(ops=ops, network_s=dec.network_s, overhead_s=dec.overhead_s, host_s=dec.host_s, kernels_s=dec.kernels_s)


def serve(dep: Deployment, batch: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike, tp: ArrayLike | None = None,
          pp: ArrayLike | None = None, ep: ArrayLike | None = None, cached: float = 0.0) -> ServingMetrics:  # fmt: skip
    """Serving metrics of one replica for ``batch`` concurrent requests (see module docstring; ``cached`` the prefix-cache share)."""
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    pp_a = np.asarray(dep.pp if pp is None else pp, dtype=float)
    ep_a = np.asarray(dep.ep if ep is None else ep, dtype=float)
    b = np.asarray(batch, dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    o = np.maximum(np.asarray(output_tokens, dtype=float), 1.0)
    if dep.model.kind != "decoder":
        t, st = prefill_time(dep, b, i, tp_a, pp_a, ep_a)
        fits = _fits_encoder(dep, tp_a, pp_a, b, i)
        rate = b / t
        return ServingMetrics(b + 0 * t, t, 0 * t, t, 0 * t, rate * i, rate, fits, st, st)
    ttft, _ = prefill_time(dep, 1.0, i, tp_a, pp_a, ep_a, cached)
    t_pre, pre_step = prefill_time(dep, b, i, tp_a, pp_a, ep_a, cached)
    dec = decode_time(dep, b, i + o / 2.0, tp_a, pp_a, ep_a)
    cycle = t_pre + (o - 1.0) / dep.tokens_per_step * dec.total
    tpot = np.where(o > 1, (cycle - ttft) / np.maximum(o - 1.0, 1.0), dec.total / dep.tokens_per_step)
    ttft = ttft + dep.runtime.request_overhead_ms * 1e-3  # off the accelerator: latency, not occupancy
    fits = memory.breakdown(dep, tp_a, pp_a, b, i, i + o).fits
    return ServingMetrics(
        batch=b + 0 * cycle,
        ttft_s=ttft + 0 * cycle,
        tpot_s=np.asarray(tpot, dtype=float),
        e2e_s=ttft + (o - 1.0) * tpot,
        output_tokens_per_s=b * o / cycle,
        total_tokens_per_s=b * (i + o) / cycle,
        requests_per_s=b / cycle,
        fits=np.asarray(fits),
        prefill=pre_step,
        decode=dec,
    )


def _fits_encoder(dep: Deployment, tp: F, pp: F, batch: F, tokens: F) -> NDArray[np.bool_]:
    mb = memory.breakdown(dep, tp, pp, batch, tokens, 0.0)
    return mb.fits


def max_fitting_batch(dep: Deployment, input_tokens: ArrayLike, output_tokens: ArrayLike, tp: ArrayLike, pp: ArrayLike) -> F:
    """Largest batch that fits memory at full context ``I + O``, capped at the runtime's ``max_batch`` per attention group."""
    if dep.model.kind != "decoder":
        return np.asarray(np.full(np.shape(np.asarray(tp)), float(dep.max_running)), dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    b = memory.max_batch(dep, tp, pp, i, i + np.asarray(output_tokens, dtype=float))
    return np.asarray(np.minimum(b, dep.max_running), dtype=float)


def _limiting_latency(dep: Deployment, batch: F, i: F, o: F, tp: F, pp: F, cached: float = 0.0) -> F:
    """The latency a batch is limited by: TPOT for decoders, the batch's forward time otherwise."""
    m = serve(dep, np.maximum(batch, 1.0), i, o, tp, pp, cached=cached)
    return np.asarray(m.tpot_s if dep.model.kind == "decoder" else m.ttft_s, dtype=float)


def largest_batch(dep: Deployment, input_tokens: ArrayLike, output_tokens: ArrayLike, context: ArrayLike, tp: ArrayLike, pp: ArrayLike,
                  limit_s: ArrayLike, cached: float = 0.0) -> F:  # fmt: skip
    """Largest batch that fits memory at ``context`` tokens and keeps the limiting latency within ``limit_s``.

    The limit applies to TPOT for decoders and to the batch's forward time otherwise; 0 where no batch
    qualifies. Latency grows and throughput does not fall with the batch (property-tested), so this is
    also the throughput-best batch within the limit. Bisection over ``[1, max_fitting_batch]``,
    vectorised over every argument.
    """
    i = np.asarray(input_tokens, dtype=float)
    o = np.asarray(output_tokens, dtype=float)
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    limit = np.asarray(limit_s, dtype=float)
    hi = max_fitting_batch(dep, i, np.maximum(np.asarray(context, dtype=float) - i, 1.0), tp_a, pp_a)
    ok_hi = (hi >= 1) & (_limiting_latency(dep, hi, i, o, tp_a, pp_a, cached) <= limit)
    lo = np.zeros_like(hi)
    if np.all(ok_hi | (hi < 1)):  # every largest fitting batch meets the limit, or none fits: nothing to bisect
        return np.asarray(np.where(ok_hi, hi, lo), dtype=float)
    top = hi.copy()
    for _ in range(_BATCH_BISECTIONS):
        mid = np.floor((lo + top) / 2.0)
        good = (mid >= 1) & (_limiting_latency(dep, mid, i, o, tp_a, pp_a, cached) <= limit)
        lo = np.where(good, mid, lo)
        top = np.maximum(np.where(good, top, mid), lo)
    return np.asarray(np.where(ok_hi, hi, lo), dtype=float)


def auto_batch(dep: Deployment, input_tokens: float, output_tokens: float, tpot_limit_s: float | None = None, cached: float = 0.0) -> int:
    """Throughput-best batch of ``dep``'s layout that fits memory at ``I + O`` and meets the TPOT limit (0 if none)."""
    limit = np.inf if tpot_limit_s is None or dep.model.kind != "decoder" else tpot_limit_s
    ctx = input_tokens + output_tokens
    return int(largest_batch(dep, input_tokens, output_tokens, ctx, dep.tp, dep.pp, limit, cached))
