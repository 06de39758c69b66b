r"""Time of one optimizer step, term by term, for a whole grid of layouts.

**Compute.** Per token, the forward pass multiplies through the active linear weights,
``F_lin = 2 N_lin`` (MoE: ``k`` routed experts; the embedding is a lookup), and causal attention
over ``s/2`` keys on average, ``F_attn = L · n_q (d_qk + d_v) · s``. Training executes
(hardware FLOPs, HFU's numerator)

.. math:: F_{hw} = (3 + r_{full}) F_{lin} + (1 + 2.5 + r_{sel}) F_{attn}

Memory-bound traffic adds at the family's memory efficiency: the element-wise work between the
matmuls (normalisations, rotary embeddings, the MLP activation, residual adds, the loss and fp8
casts; :mod:`aicap.sizing.train.traffic`); without FlashAttention the ``s × s``
scores of every head (``33`` bytes per score per step, ``44`` when recomputed); with QLoRA the NF4
weights dequantised to 16 bit (read ``nf4_bits/8`` + write 2 bytes per weight) in the forward and
backward pass (and the recomputed forward) of every micro-batch.
The backward pass costs twice the forward for matmuls and 2.5 times for FlashAttention
(it recomputes the scores), ``r_full = 1`` with full recomputation and ``r_sel = 1`` when the
attention core is recomputed (selective or full). LoRA and QLoRA skip the frozen weights'
gradients: ``(2 + r_full) F_lin + 6 N_lora``. Linear layers run at the precision's dense peak
(fp8 linears at the fp8 peak), attention at the 16-bit peak; each at the family's matmul
efficiency times the fitted ``step_efficiency`` ``η``, on the compute units communication kernels
leave them (``σ``, the recipe's ``comm_sm_share``: DeepSeek-V3 kept 20 of 132 SMs for communication):

.. math:: t_{comp} = \frac{B}{D}\Big(\frac{F_{hw,lin}}{P_{lin} e_{lin}} + \frac{F_{hw,attn}}{P_{16} e_{16}}\Big)\frac{1}{η (1 − σ)}

for ``B`` tokens per step on ``D`` devices.

**Communication** (ring collectives, ``2(n−1)/n`` of the payload per all-reduce, at the family's
link efficiency of the fast link inside a domain, or of the instance's network per device when
the group spans instances):

* tensor parallel: 4 all-reduces (or reduce-scatter + all-gather pairs) of ``b s h / c`` 16-bit
  values per layer and micro-batch, 2 more under full recomputation — exposed;
* context parallel: ring exchange of keys and values, ``3 (c − 1)`` chunks per layer and
  micro-batch, hidden behind attention compute where it can be;
* expert parallel: 4 all-to-alls of ``k`` routed copies of each token per MoE layer, each rank's
  cross-instance share through its own network port — exposed but for the recipe's ``ep_overlap``
  (a schedule such as DeepSeek-V3's DualPipe hides it behind compute);
* pipeline: activations and their gradients across each stage boundary — exposed;
* data parallel: gradient all-reduce of the trainable shard (fp32 reduction, fp16 for fp16
  runs) once per step; ZeRO-3/FSDP all-gathers weights in forward and backward of every
  micro-batch and reduce-scatters gradients; overlapped with compute up to ``dp_overlap · t_comp``.

**Pipeline bubble** (1F1B, Narayanan et al. 2021, Sec. 2.2): with ``m`` micro-batches, ``p``
stages and ``v`` interleaved chunks the pipelined part takes ``1 + (p − 1)/(v m)`` times its
bubble-free time, i.e. the bubble is ``(p − 1)/(v m + p − 1)`` of the total.

**Optimizer update**: memory-bound, ``2 (K + 4)`` bytes touched per trainable parameter shard at
the family's memory efficiency; offloaded states add the gradient (fp32) and weight (16-bit)
transfer over the host link, and offloading everything streams the 16-bit weights in for every
pass of every micro-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.train.factors import TrainingFactors
from aicap.sizing.train.grid import Col, Grid
from aicap.sizing.train.memory import OPTIMIZER_BYTES, parameter_states, params_per_device, trained_share
from aicap.sizing.train.shape import ModelShape
from aicap.sizing.train.traffic import activation_bytes_per_token

#: FlashAttention's backward pass executes 2.5x the forward matmul FLOPs (it recomputes QK^T):
#: Dao (2023), "FlashAttention-2", Sec. 3.1 (5 matmuls backward against 2 forward).
ATTN_BACKWARD = 2.5
#: Bytes moved per attention score and step without FlashAttention: 11 in the forward pass (write
#: QK^T 2, softmax read 2 + write 2, dropout read 2 + mask 1 + write 2) and twice that backward;
#: a recomputed forward adds another 11.
SCORE_TRAFFIC = 33.0


@dataclass(frozen=True)
class Fabric:
    """Links a job's devices talk over.

    ``link_gbs`` is the fast link (NVLink, ICI) per device and direction in GB/s, ``domain`` the
    most devices it joins, ``node`` the devices per instance and ``network_gbs`` the instance
    network's share per device (GB/s; ``None`` when the instance has no sourced figure, and then
    layouts that span instances are refused).
    """

    link_gbs: float
    domain: int
    node: int
    network_gbs: float | None
    instance: str | None = None


@dataclass(frozen=True)
class FlopsPerToken:
    """FLOPs per token.

    ``model`` follows the MFU convention (causal attention), ``utilised`` adds recomputation in the
    same convention (HFU's numerator), ``palm`` is PaLM's count with unmasked attention (what papers
    that quote "MFU" mostly use), ``hardware`` is what the kernels execute and sets time.
    """

    model: Col
    utilised: Col
    palm: Col
    hardware: Col
    hardware_linear: Col
    hardware_attention: Col


@dataclass(frozen=True)
class RawStep:
    """Step terms before the fitted factors apply (seconds per step, matmuls at ``η = 1``)."""

    matmul: Col
    attention: Col
    memory_bound: Col
    tensor: Col
    cp_traffic: Col
    expert: Col
    p2p: Col
    bubble_ratio: Col
    dp_traffic: Col
    optimizer: Col
    flops: FlopsPerToken


@dataclass(frozen=True)
class StepColumns:
    """Per-step time terms in seconds, one value per layout."""

    compute: Col
    tensor_parallel: Col
    context_parallel: Col
    expert_parallel: Col
    pipeline_p2p: Col
    bubble: Col
    data_parallel_exposed: Col
    optimizer: Col
    flops: FlopsPerToken
    raw: RawStep

    @property
    def total(self) -> Col:
        """Step time (s): the sum of all terms."""
        return (self.compute + self.tensor_parallel + self.context_parallel + self.expert_parallel + self.pipeline_p2p
                + self.bubble + self.data_parallel_exposed + self.optimizer)  # fmt: skip


def flops_per_token(shape: ModelShape, g: Grid) -> FlopsPerToken:
    """Model and hardware FLOPs per trained token (see the module docstring).

    HFU counts recomputation on top (Korthikanti et al. 2022): ``+2 N`` for full recomputation and
    the attention forward (``2 L H Q T`` per token, causal) when the attention core is recomputed.
    The model FLOPs follow PaLM's MFU convention (Chowdhery et al. 2022, App. B), ``6 N + 12 L H Q T``,
    with the attention term halved for the causal mask (``6 N + 6 L H Q T``): the full count charges
    the masked half too, which puts MFU over 100% at long sequences
    with ``N`` the active non-embedding parameters and attention counted without causal halving;
    LoRA counts the ``4 N`` its forward and input-gradient passes need plus ``6 N_lora``.
    """
    r = g.recipe
    lin = 2.0 * shape.linear_active
    attn = shape.attn_flop_dim * shape.layers * shape.attn_span(g.seq_len)
    full = (g.recompute == 2).astype(np.float64)
    attn_re = (g.recompute >= 1).astype(np.float64)
    # a token runs the adapters of the k experts it is routed to, not all E
    routed = shape.experts_per_token / shape.num_experts if shape.num_experts else 0.0
    experts = shape.lora_expert_params(r.lora_rank, r.lora_targets)
    lora = 0.0 if r.method == "full" else 6.0 * (shape.lora_params(r.lora_rank, r.lora_targets) - experts * (1.0 - routed))
    lin_passes = 3.0 if r.method == "full" else 2.0
    hw_lin = (lin_passes + full) * lin + lora
    hw_attn = (1.0 + ATTN_BACKWARD + attn_re) * attn
    model = lin_passes * lin + lora + 3.0 * attn
    utilised = model + full * lin + attn_re * attn
    return FlopsPerToken(model=model, utilised=utilised, palm=model + 3.0 * attn, hardware=hw_lin + hw_attn, hardware_linear=hw_lin,
                         hardware_attention=hw_attn)  # fmt: skip


def _ring(n: Col, payload: Col, bw: Col | float) -> Col:
    """Seconds of one ring all-reduce of ``payload`` bytes over ``n`` ranks at ``bw`` B/s."""
    return np.where(n > 1, 2.0 * (n - 1.0) / n * payload / bw, 0.0)


def _group_bw(group: Col, inner: Col | float, fabric: Fabric, link: float, net: float) -> Col:
    """Per-rank bandwidth (B/s) of a collective over ``group`` ranks spaced ``inner`` devices apart.

    Inside one fast-link domain it is the link. Across instances, NCCL runs one ring per network
    rail, so a group with ``k`` ranks on each instance moves ``k`` rails' worth:
    ``min(link, k · network per device)`` with ``k = clip(node / inner, 1, group)``.
    """
    inside = group * inner <= fabric.domain
    per_node = np.clip(np.floor(fabric.node / inner), 1.0, group)
    return np.where(inside, link, np.minimum(link, net * per_node))


def _a2a_bw(group: Col, inner: Col | float, fabric: Fabric, link: float, net: float) -> Col:
    """Per-rank bandwidth (B/s) of an all-to-all over ``group`` ranks spaced ``inner`` devices apart.

    Unlike a ring, an all-to-all sends every rank's share for other instances through its own network
    port: of its ``(group − 1)/group`` traffic the ``(k − 1)/group`` for its own instance's ``k`` ranks
    goes at the link and the rest at the network per device, ``1 / ((k−1)/(g−1)/link + (g−k)/(g−1)/net)``.
    """
    inside = group * inner <= fabric.domain
    k = np.clip(np.floor(fabric.node / inner), 1.0, group)
    frac_net = np.where(group > 1, (group - k) / np.maximum(group - 1.0, 1.0), 0.0)
    across = 1.0 / ((1.0 - frac_net) / link + frac_net / net)
    return np.where(inside, link, np.minimum(link, across))


def step_time(shape: ModelShape, g: Grid, device: DeviceSpec, eff: EfficiencySpec, fabric: Fabric,
              factors: TrainingFactors) -> StepColumns:  # fmt: skip
    """Step time terms of every layout in ``g`` (equations in the module docstring).

    Raises
    ------
    InputError
        When fp8 is asked of a device without an fp8 peak.
    """
    r = g.recipe
    flops = flops_per_token(shape, g)
    p_dev = params_per_device(shape, g)
    states = parameter_states(shape, g, factors)
    lin_dtype: str = r.precision
    if lin_dtype not in device.peak_tflops:
        have = ", ".join(d for d in ("bf16", "fp16", "fp8") if d in device.peak_tflops) or "none of bf16, fp16, fp8"
        raise InputError(f"{device.id} has no {lin_dtype} tensor rate; train it with --precision {have.split(', ')[0]} (its rates: {have})")
    p16 = r.precision if r.precision in ("bf16", "fp16") else ("bf16" if "bf16" in device.peak_tflops else "fp16")
    sms = 1.0 - r.comm_sm_share  # compute units left to the matmuls
    rate_lin = device.peak_tflops[lin_dtype] * 1e12 * eff.compute_for(lin_dtype) * sms
    rate_attn = device.peak_tflops[p16] * 1e12 * eff.compute_for(p16) * sms
    tokens_per_device = g.batch_tokens / g.devices
    t_lin = tokens_per_device * flops.hardware_linear / rate_lin
    t_attn = tokens_per_device * flops.hardware_attention / rate_attn
    score_passes = SCORE_TRAFFIC * (1.0 + (g.recompute >= 1) / 3.0)
    scores = np.where(g.flash > 0, 0.0, tokens_per_device * shape.layers * shape.heads * g.seq_len * score_passes)
    if r.method == "qlora":  # NF4 weights are dequantised to 16 bit in every pass of every micro-batch
        passes = 2.0 + (g.recompute == 2)
        scores = scores + g.micro_batches * passes * (states.frozen_bytes + 2.0 * p_dev)
    scores = scores + tokens_per_device * activation_bytes_per_token(shape, g)
    t_scores = scores / (device.memory_bw_gbps * 1e9 * eff.memory)

    link = fabric.link_gbs * 1e9 * eff.link
    net = (fabric.network_gbs or 1e-9) * 1e9 * eff.link
    latency = eff.link_latency_us * 1e-6
    m = g.micro_batches
    mt = g.micro_tokens
    layers = shape.layers / g.pp
    h = shape.hidden

    tp_bw = _group_bw(g.tp, 1.0, fabric, link, net)
    tp_count = layers * m * (4.0 + 2.0 * (g.recompute == 2))
    tensor = np.where(g.tp > 1, tp_count * (_ring(g.tp, mt * h * 2.0, tp_bw) + latency), 0.0)

    cp_bw = _group_bw(g.cp, g.tp, fabric, link, net)
    kv_split = np.minimum(g.tp, shape.kv_shards) if shape.kv_shards else 1.0  # each TP rank rings its share of the KV heads
    cp_send = layers * m * 3.0 * (g.cp - 1.0) * mt * 4.0 * shape.kv_dim / kv_split / cp_bw

    ep_bw = _a2a_bw(g.ep, g.tp, fabric, link, net)
    moe_layers = shape.moe_layers / g.pp
    a2a = mt * shape.experts_per_token * h * 2.0 * (g.ep - 1.0) / np.maximum(g.ep, 1.0)
    expert = np.where(g.ep > 1, moe_layers * m * 4.0 * (a2a / ep_bw + latency), 0.0) * (1.0 - g.recipe.ep_overlap)  # exposed share

    pp_bw = np.where(g.devices <= fabric.node, link, net)
    act = mt * h * 2.0 / np.where(g.sp > 0, g.tp, 1.0)
    p2p = np.where(g.pp > 1, 2.0 * m * g.vp * (act / pp_bw + latency), 0.0)

    trainable = states.trainable
    frozen = states.frozen_bytes / 2.0  # in 16-bit parameter equivalents: what an all-gather moves
    reduce_bytes = 2.0 if r.precision == "fp16" else 4.0
    group = g.dp * g.cp
    spans = g.devices > fabric.node
    shard_bw = _group_bw(g.shard, g.tp, fabric, link, net)
    dp_bw = _group_bw(group, g.tp, fabric, link, net)
    gathers = 2.0 * m * (g.shard - 1.0) / g.shard * (trainable + frozen) * 2.0 / shard_bw
    scatter = (g.shard - 1.0) / g.shard * trainable * reduce_bytes / shard_bw
    replicas = group / g.shard
    across = _ring(replicas, trainable * reduce_bytes / g.shard, dp_bw)
    sharded = gathers + scatter + across
    plain = _ring(group, trainable * reduce_bytes, dp_bw)
    dp_time = np.where(group > 1, np.where(g.zero >= 3, sharded, plain), 0.0)
    opt_shard = trainable * np.where(g.zero >= 1, trained_share(states, g), 1.0)  # the experts' states split over fewer ranks
    touched = 2.0 * (OPTIMIZER_BYTES[r.optimizer] + 4.0)
    update = opt_shard * touched / (device.memory_bw_gbps * 1e9 * eff.memory)
    host_bw = factors.host_link_gbps * 1e9 * eff.link
    host = opt_shard * (4.0 + 2.0) / host_bw
    # offloaded weights stream in for every pass of every micro-batch (forward, backward, recompute)
    streamed = np.where(
        g.offload >= 2, m * (2.0 + (g.recompute == 2)) * (trainable + frozen) * 2.0 / np.where(g.zero >= 3, g.shard, 1.0) / host_bw, 0.0
    )
    optimizer = np.where(g.offload >= 1, host + streamed, update)
    unreachable: Col = np.where(spans, np.inf, 0.0) if fabric.network_gbs is None else np.zeros_like(p_dev)
    raw = RawStep(matmul=t_lin + t_attn, attention=t_attn, memory_bound=t_scores, tensor=tensor, cp_traffic=cp_send,
                  expert=expert, p2p=p2p, bubble_ratio=(g.pp - 1.0) / (g.vp * m), dp_traffic=dp_time + unreachable,
                  optimizer=optimizer, flops=flops)  # fmt: skip
    return assemble(raw, factors.step_efficiency, factors.dp_overlap)


def assemble(raw: RawStep, step_efficiency: float, dp_overlap: float) -> StepColumns:
    """Combine raw step terms under the two fitted factors (the module docstring's equations).

    ``compute = matmul / η + memory_bound``; context-parallel traffic hides behind attention;
    ``bubble = (compute + tp + cp + ep) · (p − 1)/(v m)``; data-parallel traffic is exposed beyond
    ``dp_overlap · compute``.
    """
    compute = raw.matmul / step_efficiency + raw.memory_bound
    context = np.maximum(0.0, raw.cp_traffic - raw.attention / step_efficiency)
    pipelined = compute + raw.tensor + context + raw.expert
    return StepColumns(
        compute=compute,
        tensor_parallel=raw.tensor,
        context_parallel=context,
        expert_parallel=raw.expert,
        pipeline_p2p=raw.p2p,
        bubble=pipelined * raw.bubble_ratio,
        data_parallel_exposed=np.maximum(0.0, raw.dp_traffic - dp_overlap * compute),
        optimizer=raw.optimizer,
        flops=raw.flops,
        raw=raw,
    )
