"""Memory per device for a deployment: weights, KV cache, activations, runtime overhead.

All results are bytes per device (GiB where the name says so). Arrays broadcast, so one call
evaluates many (tp, pp, batch, context) candidates at once.

* weights: linear-layer parameters at the weight format plus group-quantisation scales
  (int4 with groups of ``g``: ``0.5 + s/g`` bytes per weight; a 2:4-sparse model on sparse kernels
  stores them compressed, :mod:`aicap.sizing.perf.sparsity`), embeddings and LM head at 16 bit when
  quantised, and the attention projections too where a quantised checkpoint keeps them so
  (:func:`unquantised_attention_bytes`), split ``tp`` ways and over ``pp`` stages (the heaviest stage counts);
* KV cache per token: ``⌈L/pp⌉ · e_kv · b_kv`` with ``e_kv = 2·⌈n_kv/tp⌉·d`` (KV heads are
  replicated when ``tp > n_kv``) or, for MLA, ``r_kv + d_rope`` replicated on every rank; windowed
  layers hold at most ``window`` tokens; a hybrid's linear-attention layers hold no KV cache but a fixed
  recurrent state per sequence (:func:`state_bytes_per_sequence`);
* activations: a prefill chunk of ``T`` tokens needs ``T·(8h + 3f/tp)·2`` bytes of workspace, plus
  fp32 logits ``B·V/tp·4``;
* overhead: runtime (CUDA context, graphs) plus communication buffers when ``tp·pp > 1``;
* capacity: what the engine may fill, by its memory policy (:func:`capacity_bytes`): a share of device
  memory (vLLM, SGLang) or the reserved bytes plus a share of what they leave (TensorRT-LLM, TGI).

With data-parallel attention (``dp_attention = D``, :mod:`aicap.sizing.core.deployment`) everything but
the routed experts splits over the ``a = tp/D`` devices of one attention group, the routed experts over
all ``tp``; the KV cache, logits and workspace are a group's (``tp`` above stands for ``a`` in them), and a
replica holds ``D`` groups' sequences (:func:`max_batch`, :func:`kv_cache_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import DecoderModel, GenericModel
from aicap.sizing.perf import sparsity
from aicap.sizing.perf.params import Inventory, inventory, kv_elements_per_token_per_layer, linear_state_bytes_per_layer

GIB = float(2**30)
F = NDArray[np.float64]


def bytes_per_weight(weights_dtype: str, dep: Deployment) -> float:
    """Storage bytes per linear-layer weight, including group-quantisation scales."""
    group = dep.runtime.quant_group_size.get(weights_dtype)
    scale = dep.runtime.quant_scale_bytes.get(weights_dtype, 0.0)
    return BYTES_PER_ELEMENT[weights_dtype] + (scale / group if group else 0.0)


def linear_bytes_per_weight(dep: Deployment) -> float:
    """Storage bytes per weight of the layers' body (linear layers and norms): :func:`bytes_per_weight` times the 2:4 storage share.

    See :func:`aicap.sizing.perf.sparsity.storage_factor` (1 for dense models and where no sparse kernel runs them).
    """
    return bytes_per_weight(dep.weights_dtype, dep) * sparsity.storage_factor(dep)


def unquantised_attention_bytes(dep: Deployment) -> float | None:
    """Bytes per attention-projection weight where the checkpoint leaves attention unquantised (``None`` elsewhere).

    That is where the model is served in the format its checkpoint was released in and the checkpoint keeps
    the projections in its 16-bit dtype (``unquantised_attention``: gpt-oss stores its experts in MXFP4, its
    attention in bf16): 2 bytes.
    """
    m = dep.transformer
    return 2.0 if m.unquantised_attention and dep.weights_dtype == m.checkpoint_dtype else None


def body_weight_bytes(dep: Deployment, inv: Inventory) -> float:
    """Bytes of the layers' weights (all but embedding and LM head), all devices together.

    ``P_body·w``, ``w`` from :func:`linear_bytes_per_weight`; where the checkpoint leaves attention
    unquantised, ``(P_body − L·P_attn)·w + L·P_attn·2`` (:func:`unquantised_attention_bytes`).
    """
    body = inv.total - inv.embedding - inv.lm_head
    w, w_attn = linear_bytes_per_weight(dep), unquantised_attention_bytes(dep)
    if w_attn is None:
        return float(body * w)
    attn = inv.layers * inv.attn_per_layer
    return float((body - attn) * w + attn * w_attn)


def embedding_bytes_per_weight(dep: Deployment) -> float:
    """Bytes per embedding / LM-head weight (16 bit when linear layers are quantised)."""
    if dep.runtime.unquantised_embeddings and dep.weights_dtype in {"fp8", "int8", "int4", "nvfp4", "mxfp4"}:
        return 2.0
    return bytes_per_weight(dep.weights_dtype, dep)


def total_weight_bytes(dep: Deployment, inv: Inventory | None = None) -> float:
    """Weight bytes of the whole model at the deployment's formats (all devices together)."""
    m = dep.transformer
    inv = inv or inventory(m)
    size = body_weight_bytes(dep, inv) + (inv.embedding + inv.lm_head) * embedding_bytes_per_weight(dep)
    ckpt = m.checkpoint_bytes
    if ckpt and dep.weights_dtype == (m.checkpoint_dtype or m.native_dtype):
        return float(ckpt)
    return float(size)


def weight_bytes_generic(dep: Deployment) -> float:
    """Weight bytes of a generic (parameters-and-FLOPs) model at the weight format."""
    if not isinstance(dep.model, GenericModel):
        raise InputError(f"model '{dep.model.id}' is a transformer: its weights follow its layer shapes")
    return float(dep.model.published_params * bytes_per_weight(dep.weights_dtype, dep))


def weight_bytes_per_device(dep: Deployment, tp: ArrayLike, pp: ArrayLike, inv: Inventory | None = None) -> F:
    """Weight bytes on the most loaded device (heaviest pipeline stage); a generic model's split over ``tp``."""
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    if isinstance(dep.model, GenericModel):
        return np.asarray(weight_bytes_generic(dep) / tp_a + 0.0 * pp_a, dtype=np.float64)
    inv = inv or inventory(dep.transformer)
    scale = total_weight_bytes(dep, inv) / max(_raw_weight_bytes(dep, inv), 1.0)
    body = body_weight_bytes(dep, inv)
    emb = inv.embedding * embedding_bytes_per_weight(dep)
    head = inv.lm_head * embedding_bytes_per_weight(dep)
    layers_per_stage = np.ceil(inv.layers / pp_a)
    ends = np.where(pp_a == 1, emb + head, np.maximum(emb, head))
    a = attention_tp(dep, tp_a)
    own = scale * (body * layers_per_stage / inv.layers + ends) / a + draft_weight_bytes(dep) / a
    if dep.dp_attention > 1:  # the routed experts split tp ways, not a ways
        routed = scale * inv.expert_total * linear_bytes_per_weight(dep) * layers_per_stage / inv.layers
        own = own - routed / a + routed / tp_a
    return np.asarray(own, dtype=float)


def attention_tp(dep: Deployment, tp: ArrayLike) -> F:
    """Devices of one attention group for a stage of ``tp`` devices: ``tp / dp_attention`` (``tp`` without data-parallel attention)."""
    return np.asarray(np.asarray(tp, dtype=float) / dep.dp_attention, dtype=float)


def draft_weight_bytes(dep: Deployment) -> float:
    """Weight bytes of the speculative drafter (0 without one), all devices together.

    A drafter that shares the target's embedding and LM head (``mtp``, ``eagle``) holds only its layer's
    weights; a draft model holds all of its own. Counted on every stage (conservative: engines keep it
    beside the first or last stage).
    """
    draft, spec = dep.draft, dep.speculative
    if draft is None or spec is None:
        return 0.0
    full = total_weight_bytes(draft)
    if not spec.shares_embeddings:
        return full
    inv = inventory(draft.transformer)
    return float(full - (inv.embedding + inv.lm_head) * embedding_bytes_per_weight(draft))


def _raw_weight_bytes(dep: Deployment, inv: Inventory) -> float:
    return body_weight_bytes(dep, inv) + (inv.embedding + inv.lm_head) * embedding_bytes_per_weight(dep)


def kv_elements_per_device(dep: Deployment, tp: ArrayLike) -> F:
    """KV-cache elements per token per layer on one device."""
    m = dep.decoder
    tp_a = np.asarray(tp, dtype=float)
    if m is None:  # encoders and generic models keep no cache
        return np.zeros_like(tp_a)
    if m.mla is not None:
        return np.asarray(np.broadcast_to(float(kv_elements_per_token_per_layer(m)), tp_a.shape), dtype=np.float64)
    return np.asarray(2.0 * np.ceil(m.kv_heads / tp_a) * m.head_size, dtype=np.float64)


def kv_bytes_per_token(dep: Deployment, tp: ArrayLike, pp: ArrayLike, context: ArrayLike) -> F:
    """KV-cache bytes of ``context`` tokens of one sequence on one device (no per-sequence state).

    ``⌈L/pp⌉·(L_a/L) · e_kv · b_kv · (f_full · c + f_win · min(c, W))``: the heaviest stage's share of the
    ``L_a`` attention layers (all but a hybrid's linear-attention ones), ``f_win`` the fraction of them
    with a sliding window ``W``.
    """
    m = dep.decoder
    c = np.asarray(context, dtype=float)
    if m is None:  # encoders keep no cache between requests
        return np.asarray(0.0 * c * np.asarray(tp, dtype=float) * np.asarray(pp, dtype=float), dtype=float)
    layers = np.ceil(m.num_layers / np.asarray(pp, dtype=float)) * (m.attention_layers / m.num_layers)
    f_win = m.windowed_layers / m.num_layers
    tokens = (1 - f_win) * c + (f_win * np.minimum(c, m.sliding_window) if f_win and m.sliding_window is not None else 0.0)
    own = layers * kv_elements_per_device(dep, attention_tp(dep, tp)) * dep.kv_bytes * tokens
    draft = dep.draft  # a speculative drafter keeps its own KV cache of the sequence
    if draft is not None:
        own = own + kv_bytes_per_token(draft, attention_tp(dep, tp), 1.0, c)
    return np.asarray(own, dtype=float)


def state_bytes_per_sequence(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """Fixed bytes one sequence holds on one device whatever its length: a hybrid's linear-attention state.

    ``⌈L/pp⌉·(L_lin/L) · s(tp)`` with ``s`` from :func:`~aicap.sizing.perf.params.linear_state_bytes_per_layer`
    (0 for models without linear attention, and for a drafter's).
    """
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    m = dep.decoder
    if m is None or m.linear_attention is None:
        return np.asarray(0.0 * tp_a * pp_a, dtype=float)
    per_layer = linear_state_bytes_per_layer(m, attention_tp(dep, tp_a))
    layers = np.ceil(m.num_layers / pp_a) * (m.linear_attention.layers / m.num_layers)
    return np.asarray(layers * per_layer, dtype=float)


def kv_bytes_per_sequence(dep: Deployment, tp: ArrayLike, pp: ArrayLike, context: ArrayLike) -> F:
    """Cache bytes one sequence of ``context`` tokens holds on one device.

    :func:`kv_bytes_per_token` plus :func:`state_bytes_per_sequence` (a hybrid's recurrent state).
    """
    return np.asarray(kv_bytes_per_token(dep, tp, pp, context) + state_bytes_per_sequence(dep, tp, pp), dtype=float)


def state_tokens(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """A sequence's fixed state in KV-cache tokens: ``⌈state / kv_token⌉`` (0 without linear attention).

    Engines page the state out of the same memory pool as the KV cache (vLLM's hybrid allocator gives
    each sequence's state of a group of layers one page, and sizes attention pages to match), so a
    running sequence occupies its context plus this many tokens of the pool.
    """
    state = state_bytes_per_sequence(dep, tp, pp)
    per_token = kv_bytes_per_token(dep, tp, pp, 1.0)
    return np.asarray(np.where(state > 0, np.ceil(state / np.maximum(per_token, 1e-9)), 0.0), dtype=float)


def activation_bytes(dep: Deployment, tp: ArrayLike, batch: ArrayLike, prefill_tokens: ArrayLike) -> F:
    """Activation workspace per device: ``T·(8h + 3f/tp)·2 + B·V/tp·4`` bytes; ``B·a`` for a generic model.

    ``a`` is a generic model's ``activation_bytes_per_item`` (0 when its spec does not give it).
    """
    tp_a = np.asarray(tp, dtype=float)
    if isinstance(dep.model, GenericModel):
        return np.asarray((dep.model.activation_bytes_per_item or 0.0) * np.asarray(batch, dtype=float) + 0.0 * tp_a, dtype=np.float64)
    m = dep.transformer
    t = np.minimum(np.asarray(prefill_tokens, dtype=float), dep.runtime.max_prefill_tokens)
    width = m.intermediate_size
    moe = m.moe if isinstance(m, DecoderModel) else None
    if moe is not None:
        width = max(width, moe.expert_intermediate_size * moe.experts_per_token)
    a = attention_tp(dep, tp_a)
    return np.asarray(t * (8.0 * m.hidden_size + 3.0 * width / a) * 2.0 + logits_bytes(dep, tp, batch), dtype=np.float64)


def logits_bytes(dep: Deployment, tp: ArrayLike, batch: ArrayLike) -> F:
    """fp32 logits of ``batch`` sequences of one attention group per device: ``B·V/a·4`` bytes (``a = tp`` without DP attention)."""
    return np.asarray(np.asarray(batch, dtype=float) * dep.transformer.vocab_size / attention_tp(dep, tp) * 4.0, dtype=float)


def overhead_bytes(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """Runtime overhead per device, plus communication buffers when the replica spans devices."""
    multi = (np.asarray(tp) * np.asarray(pp)) > 1
    gib = dep.runtime.runtime_overhead_gib + np.where(multi, dep.runtime.comm_buffer_gib, 0.0)
    if dep.device.kind == "cpu":
        gib = gib * 0.0
    return np.asarray(gib * GIB, dtype=float)


def reserved_bytes(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """What an engine holds besides the KV cache, per device: ``R = weights + overhead + workspace(C)``.

    The workspace is sized for a full ``max_prefill_tokens`` chunk ``C`` (what an engine's start-up
    profiling reserves), without the per-sequence logits.
    """
    return np.asarray(weight_bytes_per_device(dep, tp, pp) + overhead_bytes(dep, tp, pp)
                      + activation_bytes(dep, tp, 0.0, dep.runtime.max_prefill_tokens), dtype=float)  # fmt: skip


def capacity_bytes(dep: Deployment, reserved: ArrayLike = 0.0) -> F:
    """Memory per device the engine may fill, by its policy (``M`` device memory, ``f`` the fraction).

    ``total``: ``f·M``; ``free``: ``R + f·(M − R)`` with ``R`` = :func:`reserved_bytes` (the KV cache
    gets ``f`` of what the rest leaves); CPUs: ``M·f_cpu``, leaving the rest to the operating system.
    """
    m = dep.device.memory_gib * GIB
    r = np.asarray(reserved, dtype=float)
    if dep.device.kind == "cpu":
        return np.asarray(m * dep.runtime.cpu_usable_memory_fraction + 0.0 * r, dtype=float)
    f = dep.runtime.usable_memory_fraction
    if dep.runtime.kv_memory_policy == "free":
        return np.asarray(r + f * (m - r), dtype=float)
    return np.asarray(m * f + 0.0 * r, dtype=float)


def kv_budget_bytes(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """Bytes per device left for the KV cache and per-sequence logits: ``capacity − R`` (may be negative).

    An engine with a KV cache of fixed size (``kv_cache_tokens`` ``N``, llama.cpp's ``--ctx-size``)
    allocates no more than ``N·kv_token + B_max·V/tp·4`` however much memory is free.
    """
    r = reserved_bytes(dep, tp, pp)
    free = capacity_bytes(dep, r) - r
    n = dep.runtime.kv_cache_tokens
    if n is not None and dep.decoder is not None:
        free = np.minimum(free, n * kv_bytes_per_token(dep, tp, pp, 1.0) + logits_bytes(dep, tp, dep.runtime.max_batch))
    return np.asarray(free, dtype=float)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device by component (arrays broadcast over candidates)."""

    weights: F
    kv_cache: F
    activations: F
    overhead: F
    capacity: F

    @property
    def total(self) -> F:
        """Sum of all components."""
        return self.weights + self.kv_cache + self.activations + self.overhead

    @property
    def fits(self) -> NDArray[np.bool_]:
        """Whether the total fits the usable capacity."""
        return np.asarray(self.total <= self.capacity)


def breakdown(
    dep: Deployment, tp: ArrayLike, pp: ArrayLike, batch: ArrayLike, input_tokens: ArrayLike, context: ArrayLike
) -> MemoryBreakdown:
    """Memory per device with ``batch`` sequences of ``context`` tokens in the cache (the busiest attention group's ``⌈B/D⌉``)."""
    b = np.ceil(np.asarray(batch, dtype=float) / dep.dp_attention)
    prefill = np.asarray(input_tokens, dtype=float) * b
    return MemoryBreakdown(
        weights=weight_bytes_per_device(dep, tp, pp) + 0.0 * b,
        kv_cache=b * kv_bytes_per_sequence(dep, tp, pp, context),
        activations=activation_bytes(dep, tp, b, prefill),
        overhead=overhead_bytes(dep, tp, pp) + 0.0 * b,
        capacity=reserved_bytes(dep, tp, pp) + kv_budget_bytes(dep, tp, pp) + 0.0 * b,
    )


def max_batch(dep: Deployment, tp: ArrayLike, pp: ArrayLike, input_tokens: ArrayLike, context: ArrayLike) -> F:
    """Largest batch whose KV cache, logits and workspace fit: ``D·⌊free / (kv_seq + V·4/a)⌋`` (``D`` attention groups of ``a`` devices).

    The prefill workspace is sized for a full ``max_prefill_tokens`` chunk, so the result holds
    whatever the batch.
    """
    tp_a = np.asarray(tp, dtype=float)
    free = kv_budget_bytes(dep, tp, pp)
    per_seq = kv_bytes_per_sequence(dep, tp, pp, context) + logits_bytes(dep, tp_a, 1.0)
    return np.asarray(np.maximum(np.floor(free / per_seq), 0.0) * dep.dp_attention, dtype=float)


def max_context(dep: Deployment, tp: int, pp: int, batch: int) -> int:
    """Largest context (tokens per sequence) at which ``batch`` sequences still fit.

    Bisection on ``c`` over ``B · kv_seq(c) + B·V/tp·4 ≤ free`` (``kv_seq`` is non-decreasing in ``c``,
    flat beyond a sliding window), capped at the model's ``max_context``; 0 when nothing fits.
    """
    group = -(-batch // dep.dp_attention)  # the busiest attention group's sequences
    free = float(kv_budget_bytes(dep, tp, pp) - logits_bytes(dep, tp, group))

    def fits(c: int) -> bool:
        return group * float(kv_bytes_per_sequence(dep, tp, pp, c)) <= free

    top = dep.transformer.max_context
    if free <= 0 or not fits(1):
        return 0
    if fits(top):
        return top
    lo, hi = 1, top
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def kv_cache_tokens(dep: Deployment, tp: ArrayLike, pp: ArrayLike) -> F:
    """KV-cache tokens that fit per replica once weights, workspace and overhead are placed.

    A hybrid's per-sequence state comes out of the same tokens (:func:`state_tokens` per running sequence).
    """
    free = kv_budget_bytes(dep, tp, pp) - logits_bytes(dep, tp, 1.0)
    per_token = kv_bytes_per_token(dep, tp, pp, 1.0)
    tokens = np.maximum(np.floor(free / per_token), 0.0) * dep.dp_attention  # each attention group its own
    if dep.runtime.kv_cache_tokens is not None:
        tokens = np.minimum(tokens, dep.runtime.kv_cache_tokens * dep.dp_attention)
    return np.asarray(tokens, dtype=float)
