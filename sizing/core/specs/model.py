"""Model specs: decoder-only and encoder-only transformers, and generic FLOPs-per-item models.

A transformer spec holds the architecture numbers of the model's published configuration; every
derived quantity (parameter counts, KV-cache bytes, FLOPs) is computed in :mod:`aicap.sizing.perf.params`
and the performance model, never stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aicap.sizing.core.documents import NonNegInt, PosFloat, PosInt
from aicap.sizing.core.dtypes import Dtype, WeightDtype


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)


class MoeSpec(_Strict):
    """Mixture-of-experts feed-forward layers.

    ``dense_layers`` counts the leading layers that keep a dense MLP of ``intermediate_size``
    (DeepSeek's ``first_k_dense_replace``).
    """

    num_experts: PosInt
    experts_per_token: PosInt
    expert_intermediate_size: PosInt
    num_shared_experts: NonNegInt = 0
    shared_expert_intermediate_size: PosInt | None = None
    dense_layers: NonNegInt = 0

    @model_validator(mode="after")
    def _k_le_e(self) -> MoeSpec:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token must not exceed num_experts")
        return self


class MlaSpec(_Strict):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and compressed KV."""

    q_lora_rank: PosInt | None = None
    kv_lora_rank: PosInt
    qk_nope_head_dim: PosInt
    qk_rope_head_dim: PosInt
    v_head_dim: PosInt


class LinearAttentionSpec(_Strict):
    """Linear-attention layers of a hybrid decoder: Gated DeltaNet (Qwen3-Next, Qwen3.5).

    ``layers`` of the model's layers replace softmax attention by the gated delta rule: instead of a
    KV cache growing with the context, each keeps a fixed recurrent state per sequence, ``n_v`` value
    heads of a ``d_k × d_v`` matrix at ``state_dtype``, plus the last ``conv_kernel − 1`` inputs of a
    causal convolution over the q, k, v channels (``2·n_k·d_k + n_v·d_v`` of them, 16 bit). The other
    layers are full (softmax) attention with a KV cache.

    Reference: Yang, Kautz & Hatamizadeh (2025), "Gated Delta Networks: Improving Mamba2 with Delta Rule", ICLR.
    """

    layers: PosInt
    num_key_heads: PosInt
    num_value_heads: PosInt
    key_head_dim: PosInt
    value_head_dim: PosInt
    conv_kernel: PosInt = 4
    state_dtype: Dtype = "fp32"

    @property
    def conv_channels(self) -> int:
        """Channels of the causal convolution: ``2·n_k·d_k + n_v·d_v`` (q, k and v)."""
        return 2 * self.num_key_heads * self.key_head_dim + self.num_value_heads * self.value_head_dim


#: More parameters than any model could have (published models are at most a few 10^12): a shape past it is a typo, and the
#: memory arithmetic would lose the device's own capacity to float rounding ("0.0 GiB usable").
MAX_PARAMS = 1e15


class _Transformer(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    family: str
    source: str = Field(min_length=1)
    published_params: PosFloat | None = None
    published_params_source: str | None = None
    native_dtype: WeightDtype = "bf16"
    hidden_size: PosInt
    num_layers: PosInt
    num_heads: PosInt
    num_kv_heads: PosInt | None = None
    head_dim: PosInt | None = None
    intermediate_size: PosInt
    vocab_size: PosInt
    max_context: PosInt
    mlp: Literal["gated", "plain"] = "gated"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norms_per_layer: NonNegInt = 2
    position: Literal["rope", "learned", "alibi"] = "rope"
    attention_bias: bool = False
    attention_out_bias: bool = False
    mlp_bias: bool = False
    tied_embeddings: bool = False
    checkpoint_bytes: PosFloat | None = None
    checkpoint_dtype: WeightDtype | None = Field(
        None,
        description="format of the released checkpoint's linear weights where it is quantised (a Hugging Face config's "
        "quantization_config: fp8 for DeepSeek-V3, mxfp4 for gpt-oss); the default weight format, the KV cache staying "
        "at native_dtype",
    )
    unquantised_attention: bool = Field(
        False,
        description="the quantised checkpoint keeps the attention projections in native_dtype (a Hugging Face "
        "quantization_config's modules_to_not_convert naming self_attn: gpt-oss); they are read at 16 bit when the model "
        "is served in checkpoint_dtype",
    )
    sparsity: Literal["2:4"] | None = Field(
        None,
        description="'2:4': the linear layers keep 2 of every 4 weights (semi-structured sparsity); an engine with sparse kernels "
        "for the device stores them compressed and runs them faster (EngineSpec.sparse_kernels), others run them dense",
    )
    notes: str | None = None

    @property
    def kv_heads(self) -> int:
        """Key/value heads (``num_heads`` for multi-head attention, 1 for multi-query)."""
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        """Per-head dimension: ``head_dim`` when given, else ``hidden_size / num_heads``."""
        return self.head_dim or self.hidden_size // self.num_heads

    @model_validator(mode="after")
    def _shapes_agree(self) -> _Transformer:
        dense = float(self.num_layers) * self.hidden_size * (4.0 * self.hidden_size + 3.0 * self.intermediate_size)
        rough = dense + float(self.vocab_size) * self.hidden_size  # a lower bound on the parameters (experts only add)
        if rough > MAX_PARAMS:
            # the field that makes the larger term leads (a config error points at the line of the first field named)
            shapes = [f"hidden_size {self.hidden_size:,}", f"num_layers {self.num_layers:,}",
                      f"intermediate_size {self.intermediate_size:,}"]  # fmt: skip
            named = ([f"vocab_size {self.vocab_size:,}", *shapes] if float(self.vocab_size) * self.hidden_size >= dense
                     else [*shapes, f"vocab_size {self.vocab_size:,}"])  # fmt: skip
            raise ValueError(f"{', '.join(named[:-1])} and {named[-1]} make at least {rough:.2g} parameters, over "
                             f"{MAX_PARAMS:.0e}: no model is that large (check those fields)")  # fmt: skip
        if self.kv_heads > self.num_heads:
            raise ValueError(f"num_kv_heads ({self.kv_heads}) must not exceed num_heads ({self.num_heads})")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.kv_heads})")
        if self.head_dim is not None and not self.hidden_size / 8 <= self.num_heads * self.head_dim <= self.hidden_size * 8:
            raise ValueError(
                f"num_heads × head_dim ({self.num_heads} × {self.head_dim}) is more than 8× away from hidden_size ({self.hidden_size})"
            )
        if self.head_dim is None and getattr(self, "mla", None) is None:
            if self.hidden_size < self.num_heads:
                raise ValueError(
                    f"hidden_size ({self.hidden_size}) is smaller than num_heads ({self.num_heads}): a head would have no dimensions"
                )
            if self.hidden_size % self.num_heads:
                raise ValueError(
                    f"hidden_size ({self.hidden_size}) is not divisible by num_heads ({self.num_heads}); give head_dim explicitly"
                )
        return self


class DecoderModel(_Transformer):
    """A decoder-only transformer (GPT/Llama style), dense or mixture-of-experts."""

    kind: Literal["decoder"] = "decoder"
    published_active_params: PosFloat | None = None
    lm_head_bias: bool = False
    sliding_window: PosInt | None = None
    global_every: PosInt | None = None
    moe: MoeSpec | None = None
    mla: MlaSpec | None = None
    linear_attention: LinearAttentionSpec | None = Field(
        None, description="hybrid decoders: the layers that use linear attention (Gated DeltaNet) instead of a KV cache"
    )
    attention_output_gate: bool = Field(
        False,
        description="the query projection also yields a sigmoid gate on the attention output (Qwen3-Next, Qwen3.5): h·n_q·d more weights",
    )
    mtp_layers: int = Field(
        0, ge=0, description="multi-token-prediction modules of the checkpoint (num_nextn_predict_layers): what --speculative mtp runs"
    )

    @model_validator(mode="after")
    def _layers_agree(self) -> DecoderModel:
        if self.moe is not None and self.moe.dense_layers > self.num_layers:
            raise ValueError(f"moe.dense_layers ({self.moe.dense_layers}) must not exceed num_layers ({self.num_layers})")
        lin = self.linear_attention
        if lin is not None:
            if lin.layers >= self.num_layers:
                raise ValueError(
                    f"linear_attention.layers ({lin.layers}) must leave at least one of the {self.num_layers} layers to full attention"
                )
            if self.sliding_window is not None or self.mla is not None:
                raise ValueError("linear_attention does not combine with sliding_window or mla")
        return self

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention and a KV cache (all but the linear-attention layers)."""
        return self.num_layers - (0 if self.linear_attention is None else self.linear_attention.layers)

    @property
    def windowed_layers(self) -> int:
        """Number of layers whose attention (and KV cache) is capped at ``sliding_window``."""
        if self.sliding_window is None:
            return 0
        if self.global_every is None:
            return self.num_layers
        return self.num_layers - self.num_layers // self.global_every

    @property
    def moe_layers(self) -> int:
        """Number of layers with a mixture-of-experts feed-forward block."""
        return 0 if self.moe is None else self.num_layers - self.moe.dense_layers


class EncoderModel(_Transformer):
    """An encoder-only transformer (BERT-style embedding or classification model)."""

    kind: Literal["encoder"]
    type_vocab_size: NonNegInt = 0
    pooler: bool = False


class GenericModel(_Strict):
    """A model described only by its parameter count and forward FLOPs per item (CNNs, ViTs)."""

    kind: Literal["generic"]
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    family: str
    source: str = Field(min_length=1)
    published_params: PosFloat
    published_params_source: str | None = None
    flops_per_item: PosFloat
    item: str
    activation_bytes_per_item: PosFloat | None = None
    native_dtype: WeightDtype = "fp32"
    notes: str | None = None


AnyModel = DecoderModel | EncoderModel | GenericModel
"""A model spec of any kind: narrow it once (``isinstance``, or :attr:`Deployment.transformer`/``decoder``)."""

ModelSpec = Annotated[AnyModel, Field(discriminator="kind")]
"""Any model spec, told apart by its ``kind`` field (the validating form of :data:`AnyModel`)."""
