"""Model specs: decoder-only and encoder-only transformers, and generic FLOPs-per-item models.

A transformer spec holds the architecture numbers of the model's published configuration; every
derived quantity (parameter counts, KV-cache bytes, FLOPs) is computed in :mod:`aicap.sizing.perf.params`
and the performance model, never stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from aicap.sizing.core.dtypes import Dtype


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MoeSpec(_Strict):
    """Mixture-of-experts feed-forward layers.

    ``dense_layers`` counts the leading layers that keep a dense MLP of ``intermediate_size``
    (DeepSeek's ``first_k_dense_replace``).
    """

    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    num_shared_experts: int = Field(0, ge=0)
    shared_expert_intermediate_size: PositiveInt | None = None
    dense_layers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _k_le_e(self) -> MoeSpec:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token must not exceed num_experts")
        return self


class MlaSpec(_Strict):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and compressed KV."""

    q_lora_rank: PositiveInt | None = None
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class _Transformer(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    family: str
    source: str = Field(min_length=1)
    published_params: PositiveFloat | None = None
    published_params_source: str | None = None
    native_dtype: Dtype = "bf16"
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt | None = None
    head_dim: PositiveInt | None = None
    intermediate_size: PositiveInt
    vocab_size: PositiveInt
    max_context: PositiveInt
    mlp: Literal["gated", "plain"] = "gated"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norms_per_layer: int = Field(2, ge=0)
    position: Literal["rope", "learned", "alibi"] = "rope"
    attention_bias: bool = False
    attention_out_bias: bool = False
    mlp_bias: bool = False
    tied_embeddings: bool = False
    checkpoint_bytes: PositiveFloat | None = None
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
    def _heads_divide(self) -> _Transformer:
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.kv_heads})")
        return self


class DecoderModel(_Transformer):
    """A decoder-only transformer (GPT/Llama style), dense or mixture-of-experts."""

    kind: Literal["decoder"] = "decoder"
    published_active_params: PositiveFloat | None = None
    lm_head_bias: bool = False
    sliding_window: PositiveInt | None = None
    global_every: PositiveInt | None = None
    moe: MoeSpec | None = None
    mla: MlaSpec | None = None

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
    type_vocab_size: int = Field(0, ge=0)
    pooler: bool = False


class GenericModel(_Strict):
    """A model described only by its parameter count and forward FLOPs per item (CNNs, ViTs)."""

    kind: Literal["generic"]
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    family: str
    source: str = Field(min_length=1)
    published_params: PositiveFloat
    published_params_source: str | None = None
    flops_per_item: PositiveFloat
    item: str
    activation_bytes_per_item: PositiveFloat | None = None
    native_dtype: Dtype = "fp32"
    notes: str | None = None


ModelSpec = Annotated[DecoderModel | EncoderModel | GenericModel, Field(discriminator="kind")]
"""Any model spec, told apart by its ``kind`` field."""
