"""Parameter inventory of a transformer: how many weights each operator group holds.

All counts are numbers of parameters (not bytes). The same inventory feeds the parameter count
shown to users, the weight memory and the FLOPs/bytes of the roofline, so the three cannot drift.

Per layer, with hidden size ``h``, ``n_q`` query heads, ``n_kv`` key/value heads and head size ``d``:

* attention projections (GQA/MHA/MQA): ``h·n_q·d + 2·h·n_kv·d + n_q·d·h`` (+ biases; ``+ h·n_q·d`` for an
  output gate);
* multi-head latent attention (DeepSeek-V2/V3): ``h·r_q + r_q·n_q·(d_nope + d_rope)
  + h·(r_kv + d_rope) + r_kv·n_q·(d_nope + d_v) + n_q·d_v·h + r_q + r_kv``;
* Gated DeltaNet (linear attention of hybrid decoders): ``h·(2·n_k·d_k + 2·n_v·d_v) + 2·h·n_v + K·C
  + 2·n_v + d_v + n_v·d_v·h`` (q, k, v and output-gate projections, the β and decay projections, the
  causal convolution of ``C = 2·n_k·d_k + n_v·d_v`` channels and kernel ``K``, per-head decay
  parameters, the gated norm, the output projection); a hybrid's ``attn_per_layer`` is the mean over
  its layers, so totals and per-step sums stay exact;
* MLP: ``3·h·f`` (gated) or ``2·h·f`` (plain), f the intermediate size (+ biases);
* mixture of experts: ``E`` expert MLPs of width ``f_e``, a router ``h·E`` and shared experts.

Reference: Kaplan et al. (2020), "Scaling Laws for Neural Language Models", Sec. 2.1; DeepSeek-AI
(2024), "DeepSeek-V3 Technical Report", Sec. 2.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.specs.model import DecoderModel, EncoderModel


@dataclass(frozen=True)
class Inventory:
    """Parameter counts by operator group.

    ``*_per_layer`` counts are for one layer of that kind; ``layers``, ``dense_layers`` and
    ``moe_layers`` say how many layers there are of each kind.
    """

    layers: int
    dense_layers: int
    moe_layers: int
    attn_per_layer: float
    norms_per_layer: float
    mlp_per_layer: float
    expert: float
    num_experts: int
    experts_per_token: int
    shared_per_layer: float
    router_per_layer: float
    embedding: float
    lm_head: float
    lm_head_matmul: float
    final_norm: float

    @property
    def total(self) -> float:
        """All parameters stored in the checkpoint."""
        return self._count(self.num_experts)

    @property
    def active(self) -> float:
        """Parameters used per token (routed experts counted ``experts_per_token`` times)."""
        return self._count(self.experts_per_token)

    @property
    def expert_total(self) -> float:
        """Parameters of all routed experts in all MoE layers."""
        return self.moe_layers * self.num_experts * self.expert

    def _count(self, experts: int) -> float:
        per_moe = experts * self.expert + self.shared_per_layer + self.router_per_layer
        return (
            self.layers * (self.attn_per_layer + self.norms_per_layer)
            + self.dense_layers * self.mlp_per_layer
            + self.moe_layers * per_moe
            + self.embedding
            + self.lm_head
            + self.final_norm
        )


def _norm_params(model: DecoderModel | EncoderModel) -> int:
    return model.hidden_size * (2 if model.norm == "layernorm" else 1)


def _attention_params(model: DecoderModel | EncoderModel) -> float:
    h, nq, nkv, d = model.hidden_size, model.num_heads, model.kv_heads, model.head_size
    mla = model.mla if isinstance(model, DecoderModel) else None
    if mla is not None:
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        r_q = mla.q_lora_rank
        q = h * r_q + r_q * nq * qk + r_q if r_q else h * nq * qk
        kv = h * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank * nq * (mla.qk_nope_head_dim + mla.v_head_dim)
        return float(q + kv + mla.kv_lora_rank + nq * mla.v_head_dim * h)
    params = h * nq * d + 2 * h * nkv * d + nq * d * h
    if isinstance(model, DecoderModel) and model.attention_output_gate:
        params += h * nq * d
    if model.attention_bias:
        params += nq * d + 2 * nkv * d
    if model.attention_out_bias:
        params += h
    return float(params)


def _linear_attention_params(model: DecoderModel) -> float:
    """Weights of one Gated DeltaNet layer (module docstring); 0 for a model without linear attention."""
    lin = model.linear_attention
    if lin is None:
        return 0.0
    h, nv, dv = model.hidden_size, lin.num_value_heads, lin.value_head_dim
    projections = h * (2 * lin.num_key_heads * lin.key_head_dim + 2 * nv * dv) + 2 * h * nv
    return float(projections + lin.conv_kernel * lin.conv_channels + 2 * nv + dv + nv * dv * h)


def _mixer_params(model: DecoderModel | EncoderModel) -> float:
    """Token-mixer weights per layer: attention's, or for a hybrid the mean of its attention and linear-attention layers."""
    full = _attention_params(model)
    if not isinstance(model, DecoderModel) or model.linear_attention is None:
        return full
    n_lin = model.linear_attention.layers
    return (model.attention_layers * full + n_lin * _linear_attention_params(model)) / model.num_layers


def _mlp_params(h: int, f: int, gated: bool, bias: bool) -> float:
    matrices = 3 if gated else 2
    biases = (2 * f if gated else f) + h if bias else 0
    return float(matrices * h * f + biases)


def inventory(model: DecoderModel | EncoderModel) -> Inventory:
    """Build the parameter inventory of a transformer spec."""
    h, v = model.hidden_size, model.vocab_size
    gated = model.mlp == "gated"
    embedding = float(v * h)
    if model.position == "learned":
        embedding += model.max_context * h
    final_norm = float(_norm_params(model))
    if isinstance(model, EncoderModel):
        embedding += model.type_vocab_size * h + _norm_params(model)  # token-type table, embedding LayerNorm
        final_norm = float(h * h + h if model.pooler else 0)  # encoders have no final norm; pooler dense
        lm_head = 0.0
        lm_matmul = 0.0
    else:
        lm_matmul = float(v * h)
        lm_head = 0.0 if model.tied_embeddings else lm_matmul + (v if model.lm_head_bias else 0)
    moe = model.moe if isinstance(model, DecoderModel) else None
    if moe is None:
        dense_layers, moe_layers = model.num_layers, 0
        expert = shared = router = 0.0
        n_exp, k = 0, 0
    else:
        dense_layers, moe_layers = moe.dense_layers, model.num_layers - moe.dense_layers
        expert = _mlp_params(h, moe.expert_intermediate_size, gated, model.mlp_bias)
        shared_width = moe.shared_expert_intermediate_size or moe.expert_intermediate_size
        shared = moe.num_shared_experts * _mlp_params(h, shared_width, gated, model.mlp_bias)
        router = float(h * moe.num_experts)
        n_exp, k = moe.num_experts, moe.experts_per_token
    return Inventory(
        layers=model.num_layers,
        dense_layers=dense_layers,
        moe_layers=moe_layers,
        attn_per_layer=_mixer_params(model),
        norms_per_layer=float(model.norms_per_layer * _norm_params(model)),
        mlp_per_layer=_mlp_params(h, model.intermediate_size, gated, model.mlp_bias),
        expert=expert,
        num_experts=n_exp,
        experts_per_token=k,
        shared_per_layer=shared,
        router_per_layer=router,
        embedding=embedding,
        lm_head=lm_head,
        lm_head_matmul=lm_matmul,
        final_norm=final_norm,
    )


def kv_elements_per_token_per_layer(model: DecoderModel) -> int:
    """Cached elements per token per layer.

    Standard attention stores a key and a value per KV head: ``2·n_kv·d``. MLA stores one
    compressed latent plus the decoupled RoPE key: ``r_kv + d_rope`` (DeepSeek-V3: 512 + 64).
    """
    if model.mla is not None:
        return model.mla.kv_lora_rank + model.mla.qk_rope_head_dim
    return 2 * model.kv_heads * model.head_size


def kv_cache_bytes_per_token(model: DecoderModel, kv_bytes: float) -> float:
    """KV-cache bytes per token for the whole model (no window cap, no parallelism).

    ``L_a · kv_elements_per_token_per_layer · kv_bytes`` over the ``L_a`` attention layers (all layers
    but a hybrid's linear-attention ones); Llama-3.1-70B at bf16: ``80 · 2 · 8 · 128 · 2 = 327,680`` B.
    """
    return model.attention_layers * kv_elements_per_token_per_layer(model) * kv_bytes


def linear_state_bytes_per_layer(model: DecoderModel, tp: ArrayLike = 1) -> NDArray[np.float64]:
    """Recurrent-state bytes one sequence holds in one linear-attention layer, per device of a ``tp`` group.

    ``⌈n_v/tp⌉·d_k·d_v·b_state + (K − 1)·⌈C/tp⌉·2`` (the delta-rule state and the convolution window,
    16 bit; heads and channels split over ``tp``); 0 without linear attention. Qwen3.5-35B-A3B at
    ``tp = 1``: ``32·128·128·4 + 3·8,192·2 = 2,146,304`` B, what vLLM allocates per layer and sequence.
    ``tp`` broadcasts (an array of group sizes gives an array).
    """
    tp_a = np.asarray(tp, dtype=float)
    lin = model.linear_attention
    if lin is None:
        return np.zeros_like(tp_a)
    heads, channels = np.ceil(lin.num_value_heads / tp_a), np.ceil(lin.conv_channels / tp_a)
    state = heads * lin.key_head_dim * lin.value_head_dim * BYTES_PER_ELEMENT[lin.state_dtype]
    return np.asarray(state + (lin.conv_kernel - 1) * channels * 2.0, dtype=np.float64)


def sequence_state_bytes(model: DecoderModel) -> float:
    """Recurrent-state bytes of one sequence over all of a hybrid's linear-attention layers, unsplit (0 otherwise).

    ``L_lin · s`` with ``s`` from :func:`linear_state_bytes_per_layer` at ``tp = 1``: what a disaggregated
    prefill pool hands to decode besides the KV cache.
    """
    lin = model.linear_attention
    return 0.0 if lin is None else float(lin.layers * linear_state_bytes_per_layer(model))
