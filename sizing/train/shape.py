"""The numbers of a decoder that training memory and time depend on, computed once per model.

Parameter groups come from :func:`aicap.sizing.perf.params.inventory`, the same inventory the
serving model uses, so a model's size cannot differ between ``estimate`` and ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import AnyModel, DecoderModel
from aicap.sizing.perf.params import inventory
from aicap.sizing.train.setup import LoraTargets, kv_groups


@dataclass(frozen=True)
class ModelShape:
    """Architecture figures of a decoder for training (parameter counts, not bytes).

    ``body`` holds every non-expert parameter of the transformer layers; ``experts`` the routed
    experts of all MoE layers; ``embedding`` the input table (a lookup: no FLOPs); ``head`` the
    output projection and final norm. ``linear_active`` is what one token multiplies through:
    active parameters less the embedding lookup, plus the LM-head matmul even when tied.
    """

    id: str
    layers: int
    heads: int
    hidden: int
    ffn: int
    q_dim: int
    kv_dim: int
    attn_flop_dim: int
    vocab: int
    norms_per_layer: int
    gated: bool
    moe_layers: int
    experts: float
    experts_per_token: int
    expert_ffn: int
    shared_ffn: int
    num_experts: int
    body: float
    embedding: float
    head: float
    total: float
    active: float
    linear_active: float
    max_layer: float
    layer_dense: float
    layer_moe_common: float
    layer_experts: float
    lora_dims: tuple[tuple[int, int], ...]
    lora_mlp_dims: tuple[tuple[int, int], ...]
    window: int | None = None  # sliding-window attention span [tokens] of the windowed layers
    windowed_share: float = 0.0  # share of the layers whose attention is windowed
    kv_shards: int = 0  # tensor-parallel ranks the KV heads split over at most (0: the KV is not split, as MLA's latent)
    kv_groups: int = 0  # query groups a tensor-parallel degree must divide (setup.kv_groups; 0: no such rule)

    def attn_span(self, seq_len: Any) -> Any:
        """Keys per query token of a layer, mean over layers, times 2 (``seq_len`` for full causal attention).

        A window ``w`` attends ``min(t, w)`` keys at position ``t``: a mean of ``w − w²/(2s)`` over a sequence of
        ``s > w``, so the span is ``(1 − f)·s + f·(2w − w²/s)`` with ``f`` the windowed share of the layers.
        """
        s = np.asarray(seq_len, dtype=np.float64)
        if self.window is None or not self.windowed_share:
            return s
        w = float(self.window)
        win = np.where(s > w, 2.0 * w - w * w / np.maximum(s, 1.0), s)
        return (1.0 - self.windowed_share) * s + self.windowed_share * win

    def with_mtp(self, depth: int) -> ModelShape:
        """The shape trained with ``depth`` multi-token-prediction modules (DeepSeek-V3, Sec. 2.2).

        Module ``k`` normalises the previous depth's hidden state and the next token's embedding, projects their
        concatenation back to ``h`` (``M_k``, ``2h × h``), runs one transformer block of the model's last kind (a
        mixture-of-experts block when the model has any) and the output head it shares with the model. Each module
        adds that block's parameters plus ``2h² + 2h`` (projection, two norms) and, per token, that block's active
        parameters, the projection and one more head matmul ``V h``:

        .. math:: N_{lin}' = N_{lin} + D (N_{block,active} + 2h^2 + 2h + V h)

        The embedding and head are shared (no new parameters). Its layer joins the count the pipeline splits evenly
        (DeepSeek-V3 puts it on the last stage: the stages' imbalance is not modelled).
        """
        if depth <= 0:
            return self
        moe = self.moe_layers > 0
        routed = self.layer_experts / self.num_experts * self.experts_per_token if moe and self.num_experts else 0.0
        common = (self.layer_moe_common if moe else self.layer_dense) + 2.0 * self.hidden * self.hidden + 2.0 * self.hidden
        block = common + (self.layer_experts if moe else 0.0)
        return replace(
            self,
            layers=self.layers + depth,
            moe_layers=self.moe_layers + (depth if moe else 0),
            body=self.body + depth * common,
            experts=self.experts + depth * (self.layer_experts if moe else 0.0),
            total=self.total + depth * block,
            active=self.active + depth * (common + routed),
            linear_active=self.linear_active + depth * (common + routed + float(self.vocab * self.hidden)),
        )

    def lora_params(self, rank: int, targets: LoraTargets) -> float:
        """Trainable adapter parameters: ``Σ r · (d_in + d_out)`` over the targeted linears of every layer.

        ``qv`` adapts the query and value projections (PEFT's default for Llama), ``attention``
        all four attention projections, ``all`` those plus every MLP matrix (routed experts too).
        """
        dims = self.lora_dims[::2] if targets == "qv" else self.lora_dims
        per_layer = sum(rank * (a + b) for a, b in dims)
        if targets == "all":
            mlp = sum(rank * (a + b) for a, b in self.lora_mlp_dims)
            dense = self.layers - self.moe_layers
            experts = self.num_experts if self.moe_layers else 0
            per_layer_mlp = dense * mlp + self.moe_layers * experts * sum(rank * (a + b) for a, b in self._expert_dims())
            return float(self.layers * per_layer + per_layer_mlp)
        return float(self.layers * per_layer)

    def lora_expert_params(self, rank: int, targets: LoraTargets) -> float:
        """Of :meth:`lora_params`, the adapters on routed experts (``all`` on a mixture of experts; else 0)."""
        if targets != "all" or not self.moe_layers:
            return 0.0
        return float(self.moe_layers * self.num_experts * sum(rank * (a + b) for a, b in self._expert_dims()))

    def _expert_dims(self) -> tuple[tuple[int, int], ...]:
        n = 3 if self.gated else 2
        return ((self.hidden, self.expert_ffn),) * (n - 1) + ((self.expert_ffn, self.hidden),)


def shape_of(model: AnyModel) -> ModelShape:
    """Extract a :class:`ModelShape` from a decoder spec.

    Raises
    ------
    InputError
        For encoder-only and generic models (training sizing covers decoders).
    """
    if not isinstance(model, DecoderModel):
        raise InputError(f"training sizing covers decoder models; {model.id} is an encoder or generic model (kind {model.kind})")
    inv = inventory(model)
    d = model.head_size
    q_dim, kv_dim = model.num_heads * d, model.kv_heads * d
    attn_flop_dim = q_dim * 2
    if model.mla is not None:
        qk = model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim
        q_dim = model.num_heads * qk
        kv_dim = model.mla.kv_lora_rank + model.mla.qk_rope_head_dim
        attn_flop_dim = model.num_heads * (qk + model.mla.v_head_dim)
    if model.linear_attention is not None:  # a hybrid's softmax attention runs on its attention layers only (mean per layer)
        attn_flop_dim = round(attn_flop_dim * model.attention_layers / model.num_layers)
    moe = model.moe
    body = inv.layers * (inv.attn_per_layer + inv.norms_per_layer) + inv.dense_layers * inv.mlp_per_layer
    body += inv.moe_layers * (inv.shared_per_layer + inv.router_per_layer)
    experts = inv.expert_total
    head = inv.lm_head + inv.final_norm
    layer_common = inv.attn_per_layer + inv.norms_per_layer
    dense_layer = layer_common + (inv.mlp_per_layer if inv.dense_layers else 0.0)
    moe_common = layer_common + inv.shared_per_layer + inv.router_per_layer
    layer_experts = inv.num_experts * inv.expert if inv.moe_layers else 0.0
    max_layer = max(dense_layer, moe_common + layer_experts)
    f = model.intermediate_size
    lora_dims = ((model.hidden_size, q_dim), (model.hidden_size, kv_dim), (model.hidden_size, kv_dim), (q_dim, model.hidden_size))
    n_up = 2 if model.mlp == "gated" else 1
    mlp_dims = ((model.hidden_size, f),) * n_up + ((f, model.hidden_size),)
    return ModelShape(
        id=model.id,
        layers=model.num_layers,
        heads=model.num_heads,
        hidden=model.hidden_size,
        ffn=f,
        q_dim=q_dim,
        kv_dim=kv_dim,
        attn_flop_dim=attn_flop_dim,
        vocab=model.vocab_size,
        norms_per_layer=model.norms_per_layer,
        gated=model.mlp == "gated",
        moe_layers=inv.moe_layers,
        experts=experts,
        experts_per_token=inv.experts_per_token,
        expert_ffn=moe.expert_intermediate_size if moe else 0,
        shared_ffn=(moe.shared_expert_intermediate_size or moe.expert_intermediate_size) * moe.num_shared_experts if moe else 0,
        num_experts=inv.num_experts,
        body=body,
        embedding=inv.embedding,
        head=head,
        total=inv.total,
        active=inv.active,
        linear_active=inv.active - inv.embedding + (inv.lm_head_matmul - inv.lm_head),
        max_layer=max_layer,
        layer_dense=dense_layer,
        layer_moe_common=moe_common if inv.moe_layers else 0.0,
        layer_experts=layer_experts,
        lora_dims=lora_dims,
        window=model.sliding_window if model.windowed_layers else None,
        windowed_share=model.windowed_layers / model.num_layers,
        kv_shards=0 if model.mla is not None else model.kv_heads,
        kv_groups=kv_groups(model),
        lora_mlp_dims=mlp_dims,
    )
