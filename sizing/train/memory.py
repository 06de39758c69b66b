r"""Peak memory per device of a training step, term by term, for a whole grid of layouts.

**Model states** (bytes per parameter, mixed precision as in Rajbhandari et al. 2020, "ZeRO",
Sec. 3.1): 16-bit working weights ``2``, 16-bit gradients ``2``, and optimizer states ``K`` that
include the fp32 master copy: AdamW ``K = 4 + 4 + 4 = 12``, 8-bit Adam ``K = 4 + 1 + 1 = 6``
(Dettmers et al. 2022), SGD with momentum ``K = 4 + 4 = 8``; 4 less without a master copy. fp8 training keeps the same states
(fp8 casts are transient). A device holds the parameters of its pipeline stage and tensor shard,

.. math:: P_{dev} = \frac{1}{t}\Big(\frac{N_{body}}{p} + \frac{N_{experts}}{p\,e} + N_{vocab,stage}\Big)

with ``N_vocab,stage`` the embedding plus head when ``p = 1``, else the larger of the two (first and
last stages). ZeRO stage ``z`` over ``S`` ranks divides optimizer states (``z ≥ 1``), gradients
(``z ≥ 2``) and weights (``z = 3``, FSDP) by ``S``, and a routed expert's by ``max(S/e, 1)``: with
expert parallelism ``e`` only ``S/e`` ranks hold each expert, so its states split over those alone;
stage 3 over more than one rank (and offload of everything) adds buffers of two unsharded layers of
weights and one of gradients. ``optimizer_in_backward`` keeps one layer of gradients; offload moves
optimizer states (``optimizer``) or all states (``all``) to host memory.
LoRA keeps the base frozen at 16 bit (QLoRA: linear weights in NF4 at ``nf4_bits_per_param``) and
trains ``r · (d_in + d_out)`` per adapted matrix with full model states.

**Activations** per token per layer in bytes, 16-bit, FlashAttention (no score matrix stored) —
the inventory of Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", Sec. 4.1, generalised to GQA and gated MLPs (``h`` hidden, ``q``/``kv`` query/key-value
widths, ``f`` MLP width, ``n`` norms per layer):

.. math:: a = \underbrace{2nh}_{norm\ inputs} + \underbrace{2h + 2q + 4kv + 2q}_{attention}
          + \underbrace{2h + 4f + 2f}_{gated\ MLP\ (plain: 2h + 2f + 2f)}

(an MoE layer keeps ``k`` experts' MLP tensors and fp32 router logits). Without FlashAttention
each head also keeps ``5 s`` bytes of scores per token (softmax output, dropout mask and output). Without sequence
parallelism the norm inputs and the two linear inputs (``(2n + 4)h``) are replicated across the
``t`` tensor ranks and the rest is split; with it, all is split by ``t``; context parallelism
splits the sequence by ``c``. Selective recomputation drops the norm outputs, the MLP
activation output (``4h + 2f``) and any stored scores; full recomputation keeps only each layer's input (``2h``) plus
one layer's full set while it is recomputed. With 1F1B the first stage holds ``min(m, p)``
micro-batches of its ``L/p`` layers, times ``1 + (p − 1)/(p v)`` when interleaved with ``v``
chunks (Korthikanti et al., Sec. 4.2.3). The last stage also holds the logits,
``b s V / (t c) · logits_bytes``.

**Host memory**: offloaded states (``host``) must fit the instance's host memory share per device,
``host_memory_gib · cpu_usable_memory_fraction / devices``.

**Overhead**: the runtime reserve of the serving model (CUDA context, workspaces) plus the
communication buffers when more than one device works on the job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.train.factors import TrainingFactors
from aicap.sizing.train.grid import Col, Grid
from aicap.sizing.train.shape import ModelShape

GIB = 2.0**30
#: Optimizer bytes per trainable parameter, fp32 master copy included (ZeRO's ``K``).
OPTIMIZER_BYTES = {"adamw": 12.0, "adam8bit": 6.0, "sgd": 8.0}
#: Bytes kept per attention score without FlashAttention: fp16 softmax output (2), dropout mask (1)
#: and dropout output (2) - Korthikanti et al. 2022, Sec. 4.1 (the ``5 a s² b`` term).
SCORE_BYTES = 5.0
TERMS = ("weights", "gradients", "optimizer", "activations", "overhead")


@dataclass(frozen=True)
class MemoryColumns:
    """Per-device memory terms in GiB, one value per layout of the grid."""

    weights: Col
    gradients: Col
    optimizer: Col
    activations: Col
    overhead: Col
    capacity: float
    host: Col
    host_capacity: float | None = None

    @property
    def total(self) -> Col:
        """Sum of the five terms (GiB)."""
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    @property
    def fits(self) -> npt.NDArray[np.bool_]:
        """Whether the total is within the device's memory (and offloaded states within host memory)."""
        ok: npt.NDArray[np.bool_] = self.total <= self.capacity
        if self.host_capacity is not None:
            ok = ok & (self.host <= self.host_capacity)
        return ok


def params_per_device(shape: ModelShape, g: Grid) -> Col:
    """Parameters held per device before ZeRO sharding, ``P_dev`` of the module docstring."""
    vocab_stage = np.where(g.pp > 1, max(shape.embedding, shape.head), shape.embedding + shape.head)
    return (shape.body / g.pp + shape.experts / (g.pp * g.ep) + vocab_stage) / g.tp


@dataclass(frozen=True)
class ParameterStates:
    """What a device holds of the parameters: trained ones (count) and the frozen base (bytes)."""

    trainable: Col
    frozen_bytes: Col
    frozen_bytes_per_param: float
    expert_share: Col  # of the device's parameters, the share that are routed experts' (sharded over fewer ranks)


def parameter_states(shape: ModelShape, g: Grid, factors: TrainingFactors) -> ParameterStates:
    """Trainable parameters and frozen-base bytes per device before ZeRO sharding.

    Full training trains ``P_dev``. LoRA trains ``r (d_in + d_out)`` per adapted matrix, split by
    ``t · p`` (a routed expert's by ``t · p · e``, as the expert), over a frozen 16-bit base; QLoRA stores the base's linear weights in NF4
    (``nf4_bits_per_param / 8`` bytes) and the rest (embeddings, norms) in 16 bit.
    """
    r = g.recipe
    p_dev = params_per_device(shape, g)
    share = shape.experts / (g.pp * g.ep * g.tp) / np.maximum(p_dev, 1.0)
    if r.method == "full":
        return ParameterStates(p_dev, np.zeros_like(p_dev), 2.0, share)
    experts = shape.lora_expert_params(r.lora_rank, r.lora_targets)  # on routed experts: split over EP too, as their experts
    trainable = (shape.lora_params(r.lora_rank, r.lora_targets) - experts) / (g.tp * g.pp) + experts / (g.tp * g.pp * g.ep) + 0.0 * p_dev
    per_param = 2.0
    if r.method == "qlora":
        # NF4 holds the transformer's linear layers: every parameter but the embedding and the LM head (bitsandbytes keeps
        # both 16-bit; a tied head is the embedding, which linear_active counts as a matmul and once put in NF4).
        linear_share = min(1.0, (shape.total - shape.embedding - shape.head) / max(shape.total, 1.0))
        per_param = linear_share * factors.nf4_bits_per_param / 8.0 + (1.0 - linear_share) * 2.0
    return ParameterStates(trainable, p_dev * per_param, per_param, share)


def trained_share(states: ParameterStates, g: Grid) -> Col:
    """Share of its trained parameters' states a device keeps when they are sharded over ``S`` ranks.

    ``(1 − φ)/S + φ/max(S/e, 1)`` for full training, with ``φ`` the routed experts' share of the device's
    parameters (an expert's states split over the ``S/e`` ranks that hold it); ``1/S`` for LoRA's adapters.
    """
    if g.recipe.method != "full":
        return 1.0 / g.shard
    return (1.0 - states.expert_share) / g.shard + states.expert_share / np.maximum(g.shard / g.ep, 1.0)


def activation_bytes_per_token(shape: ModelShape, g: Grid) -> tuple[Col, Col]:
    """Bytes kept per token per layer on one device: (under the grid's recompute, with none).

    Both already divided by the tensor split as sequence parallelism dictates.
    """
    h, q, kv = shape.hidden, shape.q_dim, shape.kv_dim
    norms = 2.0 * shape.norms_per_layer * h
    attn = 2.0 * h + 2.0 * q + 4.0 * kv + 2.0 * q
    if shape.moe_layers:
        width = 6.0 if shape.gated else 4.0
        mlp = shape.experts_per_token * (2.0 * h + width * shape.expert_ffn) + 2.0 * h + width * shape.shared_ffn
        mlp += 4.0 * shape.num_experts
        act_out = 2.0 * (shape.experts_per_token * shape.expert_ffn + shape.shared_ffn)
    else:
        mlp = 2.0 * h + (6.0 if shape.gated else 4.0) * shape.ffn
        act_out = 2.0 * shape.ffn
    full_set = norms + attn + mlp
    replicated = norms + 4.0 * h
    none = np.where(g.sp > 0, full_set / g.tp, replicated + (full_set - replicated) / g.tp)
    selective = np.where(g.sp > 0, (full_set - 4.0 * h - act_out) / g.tp, norms + (full_set - replicated - act_out) / g.tp)
    full = np.where(g.sp > 0, 2.0 * h / g.tp, 2.0 * h)
    scores = np.where(g.flash > 0, 0.0, SCORE_BYTES * shape.heads * g.seq_len / g.tp)
    none = none + scores
    kept = np.where(g.recompute == 0, none, np.where(g.recompute == 1, selective, full))
    return kept, none


def memory(shape: ModelShape, g: Grid, capacity_gib: float, runtime: RuntimeSpec, factors: TrainingFactors,
           host_gib_per_device: float | None = None) -> MemoryColumns:  # fmt: skip
    """Peak memory per device of every layout in ``g`` (see the module docstring for the equations).

    Parameters
    ----------
    shape
        The model's training shape.
    g
        Layouts to evaluate.
    capacity_gib
        Device memory (GiB).
    runtime
        Runtime reserves shared with the serving model (``runtime_overhead_gib``, ``comm_buffer_gib``).
    factors
        Training factors (logits bytes, NF4 bits).
    host_gib_per_device
        Host memory available to each device's offloaded states (GiB; ``None``: unknown, not checked).
    """
    r = g.recipe
    layer = np.maximum(shape.layer_dense, shape.layer_moe_common + shape.layer_experts / g.ep) / g.tp  # one layer's shard
    st = parameter_states(shape, g, factors)
    trainable, frozen_bytes, per_param = st.trainable, st.frozen_bytes, st.frozen_bytes_per_param
    gathered = 2.0 * 2.0 * layer if r.method == "full" else 2.0 * per_param * layer
    grad_buffer = 2.0 * layer if r.method == "full" else 0.0 * layer
    s = g.shard
    z = g.zero
    streams = ((z >= 3) & (s > 1)) | (g.offload >= 2)  # layers are gathered (or fetched from host) one at a time
    gathered = np.where(streams, gathered, 0.0)
    grad_buffer = np.where(streams, grad_buffer, 0.0)
    # An expert's states are shared only by the ranks that hold that expert, S/e of them: 1/S of the dense
    # parameters and e/S of the experts' (LoRA's adapters count as dense; its frozen base splits like the weights).
    per_rank = (1.0 - st.expert_share) / s + st.expert_share / np.maximum(s / g.ep, 1.0)
    trained = trained_share(st, g)
    weights = np.where(z >= 3, 2.0 * trainable * trained + frozen_bytes * per_rank + gathered, 2.0 * trainable + frozen_bytes)
    grads_full = 2.0 * trainable
    gradients = np.where(z >= 2, grads_full * trained + np.where(z >= 3, grad_buffer, 0.0), grads_full)
    if r.method == "full":
        gradients = np.where(g.opt_in_bwd > 0, 2.0 * layer, gradients)
    optimizer = (OPTIMIZER_BYTES[r.optimizer] - (0.0 if r.master_weights else 4.0)) * trainable * np.where(z >= 1, trained, 1.0)
    host = np.where(g.offload >= 1, optimizer, 0.0) + np.where(g.offload >= 2, weights - gathered + gradients - grad_buffer, 0.0)
    optimizer = np.where(g.offload >= 1, 0.0, optimizer)
    weights = np.where(g.offload >= 2, gathered, weights)
    gradients = np.where(g.offload >= 2, grad_buffer, gradients)

    kept, none = activation_bytes_per_token(shape, g)
    tokens = g.micro_tokens
    layers_per_stage = shape.layers / g.pp
    m = g.micro_batches
    inflight = np.where(g.pp > 1, np.minimum(m, g.pp) * (1.0 + np.where(g.vp > 1, (g.pp - 1.0) / (g.pp * g.vp), 0.0)), 1.0)
    recompute_set = np.where(g.recompute == 2, none * tokens, 0.0)
    first_stage = layers_per_stage * kept * tokens * inflight + recompute_set
    logits = tokens * shape.vocab / g.tp * factors.logits_bytes + 2.0 * shape.hidden * tokens
    last_stage = layers_per_stage * kept * tokens + recompute_set + logits
    activations = np.where(g.pp > 1, np.maximum(first_stage, last_stage), first_stage + logits)

    overhead = runtime.runtime_overhead_gib + np.where(g.devices > 1, runtime.comm_buffer_gib, 0.0)
    return MemoryColumns(
        weights=weights / GIB,
        gradients=gradients / GIB,
        optimizer=optimizer / GIB,
        activations=activations / GIB,
        overhead=overhead + 0.0 * weights,
        capacity=capacity_gib,
        host=host / GIB,
        host_capacity=host_gib_per_device,
    )
