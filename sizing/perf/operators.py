"""FLOPs and bytes moved per operator group for one forward step of a transformer.

A step processes ``T`` new tokens for each of ``B`` sequences that already hold ``c`` tokens of
context (prefill: ``T = I, c = 0``; decode: ``T = 1, c`` = current length). Counts are per device of
a ``tp``-way tensor-parallel group, summed over the layers of the whole model (pipeline stages run
in sequence, see :mod:`aicap.sizing.perf.roofline`). With ``N = B·T`` tokens and ``w`` bytes per weight:

* ``attn_proj``: FLOPs ``2·N·P_attn·L/tp``; bytes ``P_attn·L·w/tp`` + activations;
* ``attention``: FLOPs ``4·B·T·c̄·n_q·d·L_a/tp`` with ``c̄ = c + (T+1)/2`` (causal) capped at the
  window; bytes: the KV cache read ``B·c̄·e_kv·b_kv·L_a`` and written ``N·e_kv·b_kv·L_a`` over the ``L_a``
  attention layers; a hybrid's linear-attention layers add the gated delta rule (:func:`delta_rule`);
* ``mlp`` (dense layers): FLOPs ``2·N·P_mlp·L_d/tp``; bytes ``P_mlp·L_d·w/tp`` + activations;
* ``experts`` (MoE layers): FLOPs ``2·N·(k·P_e + P_shared)·L_m/tp``; bytes read only for the
  experts the batch routes to, ``E·(1 − (1 − k/E)^N)·P_e·L_m·w/tp`` (uniform routing)
  (:func:`expert_cost`, which also prices data-parallel attention's split);
* ``lm_head``: logits for the last token of each sequence, ``2·B·V·h/tp`` FLOPs;
* ``norms``: element-wise traffic ``N·h·2·(2·norms + 2)·L`` bytes.

A 2:4-sparse model on an engine's sparse kernels divides the FLOPs and weight bytes of ``attn_proj``,
``mlp`` and ``experts`` by the engine's published speed-up ``g``
(:func:`aicap.sizing.perf.sparsity.linear_speedup`).

Reference: Kaplan et al. (2020), Eq. 2.2 for ``2·P`` FLOPs per token; Pope et al. (2022),
"Efficiently Scaling Transformer Inference", Sec. 3 for the KV-cache traffic of decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import DecoderModel, GenericModel
from aicap.sizing.perf import sparsity
from aicap.sizing.perf.memory import bytes_per_weight, embedding_bytes_per_weight, kv_elements_per_device, unquantised_attention_bytes
from aicap.sizing.perf.params import inventory, linear_state_bytes_per_layer

F = NDArray[np.float64]
ACT_BYTES = 2.0  # activations travel in 16 bit


@dataclass(frozen=True)
class OpCost:
    """FLOPs and bytes of one operator group per device (arrays over candidates)."""

    flops: F
    bytes: F


def expected_distinct_experts(tokens: ArrayLike, num_experts: int, k: int) -> F:
    """Expected experts touched when ``n`` tokens each pick ``k`` of ``E`` experts uniformly.

    ``E · (1 − (1 − k/E)^n)``; 1 token → k experts, many tokens → E.
    """
    n = np.asarray(tokens, dtype=float)
    return np.asarray(num_experts * (1.0 - (1.0 - k / num_experts) ** n), dtype=float)


def expert_bytes_terms(dep: Deployment, tp: ArrayLike, group_tp: ArrayLike | None = None) -> tuple[F, F, F]:
    """Bytes of the MoE layers per device as ``fixed + per_expert·touched + per_token·N``.

    ``fixed = (P_shared + P_router)·w·L_m/a``, ``per_expert = P_e·w·L_m/tp`` for each expert the step
    routes to, ``per_token = k·(h + P_e/h)·2·L_m/tp`` of activations (zeros for a dense model). The
    routed experts split over ``tp`` devices; the shared experts and the router over the ``a`` devices
    of one attention group (``group_tp``; ``a = tp`` without data-parallel attention).
    """
    inv = inventory(dep.transformer)
    tp_a = np.asarray(tp, dtype=float)
    a = tp_a if group_tp is None else np.asarray(group_tp, dtype=float)
    w = bytes_per_weight(dep.weights_dtype, dep) / sparsity.linear_speedup(dep)
    scale = inv.moe_layers / tp_a
    h = dep.transformer.hidden_size
    fixed = (inv.shared_per_layer + inv.router_per_layer) * w * (inv.moe_layers / a)
    per_expert = inv.expert * w * scale
    per_token = inv.experts_per_token * (h + inv.expert / h) * ACT_BYTES * scale
    return np.asarray(fixed, dtype=float), np.asarray(per_expert, dtype=float), np.asarray(per_token, dtype=float)


def expert_cost(dep: Deployment, tokens: ArrayLike, tp: ArrayLike, group_tokens: ArrayLike | None = None,
                group_tp: ArrayLike | None = None) -> OpCost:  # fmt: skip
    """FLOPs and bytes of the MoE layers per device for a step of ``N`` tokens (zeros for a dense model).

    ``F = 2·(N·k·P_e/tp + N_g·(P_shared + P_router)/a)·L_m/g``; bytes from :func:`expert_bytes_terms`
    with ``E·(1 − (1 − k/E)^N)`` experts touched. ``N_g`` tokens of one attention group on ``a`` devices
    run its shared experts and router (``N_g = N``, ``a = tp`` without data-parallel attention).
    """
    inv = inventory(dep.transformer)
    n = np.asarray(tokens, dtype=float)
    tp_a = np.asarray(tp, dtype=float)
    n_g = n if group_tokens is None else np.asarray(group_tokens, dtype=float)
    a = tp_a if group_tp is None else np.asarray(group_tp, dtype=float)
    if not inv.moe_layers:
        zero = np.asarray(0.0 * (n + n_g + tp_a + a), dtype=float)
        return OpCost(flops=zero, bytes=zero)
    g = sparsity.linear_speedup(dep)
    k, e = inv.experts_per_token, inv.num_experts
    fixed, per_expert, per_token = expert_bytes_terms(dep, tp_a, a)
    if group_tokens is None and group_tp is None:
        flops = 2.0 * n * (k * inv.expert + inv.shared_per_layer + inv.router_per_layer) * inv.moe_layers / tp_a / g
    else:
        flops = 2.0 * (n * k * inv.expert / tp_a + n_g * (inv.shared_per_layer + inv.router_per_layer) / a) * inv.moe_layers / g
    return OpCost(flops=np.asarray(flops, dtype=float),
                  bytes=np.asarray(fixed + per_expert * expected_distinct_experts(n, e, k) + per_token * n, dtype=float))  # fmt: skip


def transformer_step(
    dep: Deployment, batch: ArrayLike, new_tokens: ArrayLike, context: ArrayLike, tp: ArrayLike, *, causal: bool = True
) -> dict[str, OpCost]:
    """FLOPs and bytes per operator group for one step on one tensor-parallel device."""
    m = dep.transformer
    dec = dep.decoder
    inv = inventory(m)
    b = np.asarray(batch, dtype=float)
    t = np.asarray(new_tokens, dtype=float)
    c0 = np.asarray(context, dtype=float)
    tp_a = np.asarray(tp, dtype=float)
    n = b * t
    g = sparsity.linear_speedup(dep)
    w = bytes_per_weight(dep.weights_dtype, dep) / g
    h, layers = m.hidden_size, m.num_layers
    zero = 0.0 * (n + tp_a + c0)

    proj_out = inv.attn_per_layer / h  # width of the projection outputs (q, k, v, o)
    w_attn = w if (kept := unquantised_attention_bytes(dep)) is None else kept / g
    attn_proj = OpCost(
        flops=2.0 * n * inv.attn_per_layer * layers / tp_a / g,
        bytes=inv.attn_per_layer * layers * w_attn / tp_a + n * (2 * h + proj_out) * ACT_BYTES * layers / tp_a,
    )

    span = c0 + (t + 1.0) / 2.0 if causal else c0 + t
    f_win = dec.windowed_layers / layers if dec is not None else 0.0
    if dec is not None and dec.sliding_window is not None and f_win:
        span = (1 - f_win) * span + f_win * np.minimum(span, dec.sliding_window)
    mla = dec.mla if dec is not None else None
    kv_elem = kv_elements_per_device(dep, tp_a)
    full = dec.attention_layers if dec is not None else layers
    up = zero
    if mla is not None:
        # MLA decodes in the absorbed form (scores against the cached latent: qk r + ρ, values r wide) and prefills as
        # multi-head attention (qk d_nope + ρ, values d_v), the cached prefix's latent up-projected to per-head K and V
        # first, 2·b·c₀·r·H·(d_nope + d_v) a layer (the new tokens' own up-projection is in attn_proj): vLLM's and
        # SGLang's MLA backends (which send a speculative verify step, up to k + 1 tokens a sequence, down the decode
        # path). The absorbed form costed a 128k-token DeepSeek-V3 prefill 3.4x over.
        mha = t > float(dep.verify_tokens)  # a speculative verify step (k + 1 tokens a sequence) decodes absorbed
        qk_dim = np.where(mha, mla.qk_nope_head_dim + mla.qk_rope_head_dim, mla.kv_lora_rank + mla.qk_rope_head_dim)
        v_dim = np.where(mha, mla.v_head_dim, mla.kv_lora_rank)
        up = np.where(mha, 2.0 * b * c0 * mla.kv_lora_rank * m.num_heads * (mla.qk_nope_head_dim + mla.v_head_dim) * full / tp_a, 0.0)
    else:
        qk_dim = v_dim = np.asarray(float(m.head_size))
    attention = OpCost(
        flops=2.0 * n * span * m.num_heads * (qk_dim + v_dim) * full / tp_a + up,
        bytes=(b * span + n) * kv_elem * dep.kv_bytes * full + 2.0 * n * m.num_heads * m.head_size * ACT_BYTES * full / tp_a,
    )
    if dec is not None and dec.linear_attention is not None:
        attention = _plus(attention, delta_rule(dec, b, t, tp_a))

    width_mlp = inv.mlp_per_layer / h
    mlp = OpCost(
        flops=2.0 * n * inv.mlp_per_layer * inv.dense_layers / tp_a / g,
        bytes=(inv.mlp_per_layer * w + n * (h + width_mlp) * ACT_BYTES) * inv.dense_layers / tp_a,
    )

    experts = expert_cost(dep, n, tp_a) if inv.moe_layers else OpCost(flops=zero, bytes=zero)

    if dec is not None:
        emb_w = embedding_bytes_per_weight(dep)
        lm_head = OpCost(
            flops=2.0 * b * inv.lm_head_matmul / tp_a,
            bytes=inv.lm_head_matmul * emb_w / tp_a + b * m.vocab_size * 4.0 / tp_a + n * h * ACT_BYTES,
        )
    else:
        lm_head = OpCost(flops=zero, bytes=n * h * ACT_BYTES)

    norms = OpCost(flops=n * h * (m.norms_per_layer + 1) * 5.0 * layers, bytes=n * h * ACT_BYTES * (2 * m.norms_per_layer + 2) * layers)
    return {"attn_proj": attn_proj, "attention": attention, "mlp": mlp, "experts": experts, "lm_head": lm_head, "norms": norms}


def _plus(a: OpCost, b: OpCost) -> OpCost:
    return OpCost(flops=a.flops + b.flops, bytes=a.bytes + b.bytes)


def delta_rule(model: DecoderModel, batch: F, new_tokens: F, tp: F) -> OpCost:
    """FLOPs and bytes of the gated delta rule in a hybrid's linear-attention layers, per device.

    Per token and value head, the chunkwise algorithm (chunks of ``C = min(T, 64)`` tokens) spends
    ``6·d_k·d_v`` FLOPs on the state (read by the query and the key, rank-``C`` update) and
    ``2·C·(2·d_k + d_v)`` within its chunk; decode (``T = 1``) is the recurrent form. Bytes: each
    sequence's state is read and written once per step, ``2·s`` (:func:`~aicap.sizing.perf.params.linear_state_bytes_per_layer`),
    and the q, k, v, gate and output activations pass once, ``N·(C_conv + 2·n_v·d_v)·2``; summed over
    the ``L_lin`` layers, heads split over ``tp``.

    Reference: Yang, Wang, Zhang, Shen & Kim (2024), "Parallelizing Linear Transformers with the Delta Rule
    over Sequence Length", NeurIPS, Sec. 3 (chunkwise form); Yang, Kautz & Hatamizadeh (2025), "Gated Delta
    Networks", ICLR.
    """
    lin = model.linear_attention
    if lin is None:
        return OpCost(flops=0.0 * batch, bytes=0.0 * batch)
    n = batch * new_tokens
    heads = np.ceil(lin.num_value_heads / tp)
    dk, dv = lin.key_head_dim, lin.value_head_dim
    chunk = np.minimum(new_tokens, 64.0)
    flops = n * heads * (6.0 * dk * dv + 2.0 * chunk * (2.0 * dk + dv)) * lin.layers
    state = linear_state_bytes_per_layer(model, tp)
    traffic = 2.0 * batch * state + n * (lin.conv_channels + 2.0 * lin.num_value_heads * dv) * ACT_BYTES / tp
    return OpCost(flops=np.asarray(flops, dtype=float), bytes=np.asarray(traffic * lin.layers, dtype=float))


def generic_step(dep: Deployment, batch: ArrayLike, tp: ArrayLike) -> dict[str, OpCost]:
    """FLOPs and bytes of one forward pass of a generic model over ``batch`` items.

    FLOPs ``B·flops_per_item/tp``; bytes: the weights once plus ``B·activation_bytes_per_item``
    (when the spec gives it).
    """
    m = dep.model
    if not isinstance(m, GenericModel):
        raise InputError(f"model '{m.id}' is a transformer: cost it with transformer_step")
    b = np.asarray(batch, dtype=float)
    tp_a = np.asarray(tp, dtype=float)
    act = m.activation_bytes_per_item or 0.0
    w = bytes_per_weight(dep.weights_dtype, dep)
    return {"forward": OpCost(flops=b * m.flops_per_item / tp_a, bytes=(m.published_params * w + b * act) / tp_a)}
