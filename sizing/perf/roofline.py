"""Time of one forward step from a roofline: FLOPs against peak, bytes against bandwidth, plus links.

For each operator group ``i`` with ``F_i`` FLOPs and ``Q_i`` bytes per device,

    t_i = max(c_i, m_i) + α · min(c_i, m_i),   c_i = F_i / (P_dtype · η_c),   m_i = Q_i / (BW · η_m)

(``α`` the family's ``exposed_share``, the part of the shorter time its kernels do not hide behind the
longer; 0 is the ideal roofline) and the step takes ``Σ t_i + t_net + t_0 + L_moe · τ + K_g · τ_k``, where ``η_c, η_m`` are
the family's calibrated compute and memory efficiencies (the experts of MoE layers run at ``η_c · η_moe``), ``t_0`` its fixed
per-step overhead, ``τ`` the fixed latency of one MoE layer's grouped expert GEMMs (``L_moe`` MoE
layers; :func:`moe_latency_s`) and ``τ_k`` the fixed time of each of the step's ``K_g`` graphed kernels
(:func:`~aicap.sizing.perf.launches.kernel_floor_s`). Communication per step:

* tensor parallel: two ring all-reduces per layer of ``M = N·h·2`` bytes,
  ``2·(tp−1)/tp · M / (β·η_l) + λ`` each (β: per-direction link bandwidth, λ: link latency);
* expert parallel (MoE layers, ``ep > 1``): the MLP all-reduce becomes dispatch + combine
  all-to-alls of ``N·k·h·2·(ep−1)/ep`` bytes;
* a speculative drafter (:func:`~aicap.sizing.serve.step.draft_cost`) runs its ``k`` passes at the same
  ``tp``: ``k·2·L_d`` all-reduces a step of ``M_d = (N/(k+1))·h_d·2`` bytes (the step's ``N`` tokens are
  ``k + 1`` a decoding sequence; ``L_d`` and ``h_d`` the drafter's layers and width);
* pipeline parallel: ``pp − 1`` hand-offs of ``M`` bytes. With ``pp`` stages, a step over ``B``
  sequences runs as ``pp`` micro-batches of ``B/pp``, so each device works ``pp`` stage-times of a
  ``B/pp`` micro-batch, the model time of one micro-batch;
* across instances: a tensor-parallel (or expert-parallel) group larger than the fast-link domain of
  ``D`` devices spans ``tp/D`` instances, and its collectives run at the scale-out network's per-device
  rate ``β_net`` instead of ``β`` (NCCL's rings and trees over one NIC per GPU: the network is the
  slowest hop of every ring); pipeline boundaries between instances hand off at ``β_net`` too.

Reference: Williams, Waterman & Patterson (2009), "Roofline", CACM 52(4); Patarasuk & Yuan (2009)
for the ring all-reduce cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import compute_dtype
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.perf.launches import eager_host_s, kernel_floor_s
from aicap.sizing.perf.memory import unquantised_attention_bytes
from aicap.sizing.perf.operators import ACT_BYTES, OpCost, expert_cost, generic_step, transformer_step

F = NDArray[np.float64]
BOUNDS = ("compute", "memory", "network", "overhead", "launch")


@dataclass(frozen=True)
class OpTime:
    """One operator group's cost and roofline time (arrays over candidates)."""

    flops: F
    bytes: F
    compute_s: F
    memory_s: F
    exposed: float = 0.0  # α: the share of the shorter time not hidden behind the longer

    @property
    def seconds(self) -> F:
        """Roofline time: the larger of compute and memory time plus ``α`` of the smaller, ``max(c, m) + α·min(c, m)``."""
        longer = np.maximum(self.compute_s, self.memory_s)
        if not self.exposed:
            return longer
        return np.asarray(longer + self.exposed * np.minimum(self.compute_s, self.memory_s), dtype=float)

    @property
    def intensity(self) -> F:
        """Arithmetic intensity in FLOP per byte."""
        return np.asarray(self.flops / np.maximum(self.bytes, 1.0), dtype=float)


@dataclass(frozen=True)
class StepTime:
    """Time of one step by component (seconds, arrays over candidates).

    ``host_s`` is the host time of launching the step's kernels one by one where the engine runs without
    CUDA graphs, or the step decodes more sequences than its graphs hold
    (:func:`~aicap.sizing.perf.launches.step_host_s`; 0 otherwise): the step takes
    ``max(T_device, H) + t_0``, ``T_device`` its operators, network and the kernels' fixed time ``kernels_s``
    (``K_g·τ_k``, :func:`~aicap.sizing.perf.launches.kernel_floor_s`: device time, which kernels launched one by one
    from the host overlap with their launches).
    """

    ops: dict[str, OpTime]
    network_s: F
    overhead_s: F
    host_s: F = field(default_factory=lambda: np.zeros(()))
    kernels_s: F = field(default_factory=lambda: np.zeros(()))

    @property
    def total(self) -> F:
        """Whole step time in seconds."""
        if not np.any(self.host_s):
            t = self.network_s + self.kernels_s + self.overhead_s
            for op in self.ops.values():
                t = t + op.seconds
            return np.asarray(t, dtype=float)
        return np.asarray(np.maximum(self.device_s, self.host_s) + self.overhead_s, dtype=float)

    @property
    def device_s(self) -> F:
        """Seconds the device works: operators, network and the kernels' fixed time, ``T_device``."""
        t = self.network_s + self.kernels_s
        for op in self.ops.values():
            t = t + op.seconds
        return np.asarray(t, dtype=float)

    def shares(self) -> dict[str, F]:
        """Seconds attributed to each bound: compute-bound ops, memory-bound ops, network, overhead (and kernels' fixed time), launch.

        ``launch`` is what host-side kernel launches add beyond the device's work, ``max(H − T_device, 0)``.
        """
        comp = mem = 0.0 * self.total
        for op in self.ops.values():
            is_c = op.compute_s >= op.memory_s
            comp = comp + np.where(is_c, op.seconds, 0.0)
            mem = mem + np.where(is_c, 0.0, op.seconds)
        launch = np.maximum(self.host_s - self.device_s, 0.0) + 0.0 * comp if np.any(self.host_s) else 0.0 * comp
        return {"compute": comp, "memory": mem, "network": self.network_s + 0.0 * comp,
                "overhead": self.overhead_s + self.kernels_s + 0.0 * comp, "launch": launch}  # fmt: skip

    def bound(self) -> NDArray[np.str_]:
        """What bounds the step: the component with the largest share of its time."""
        s = self.shares()
        stacked = np.stack([np.broadcast_to(s[b], self.total.shape) for b in BOUNDS])
        return np.asarray(np.array(BOUNDS)[np.argmax(stacked, axis=0)])


def attention_projections_16bit(dep: Deployment) -> bool:
    """Whether a decoder's attention projections run at 16 bits: its checkpoint leaves them unquantised (gpt-oss).

    :func:`op_times` and the serving step model (:class:`~aicap.sizing.serve.step_model.StepModel`) price them so.
    """
    return dep.decoder is not None and unquantised_attention_bytes(dep) is not None


def op_times(dep: Deployment, costs: dict[str, OpCost]) -> dict[str, OpTime]:
    """Roofline time of each operator group: ``max(c, m) + α·min(c, m)``, ``c = F/(P·η_c)``, ``m = Q/(BW·η_m)`` (experts at ``η_c·η_moe``).

    ``P·η_c`` is the peak of the weights' compute dtype (:func:`~aicap.sizing.core.dtypes.compute_dtype`), except where
    an operand is wider: the attention products (``QKᵀ``, ``PV``) multiply against the KV cache, so they run at the
    slower of the weights' and the KV cache's compute dtypes (fp8 or fp4 weights with a 16-bit KV cache: 16-bit tensor
    cores), and the attention projections of a checkpoint that leaves them unquantised (gpt-oss) at 16 bits.
    """
    peaks: dict[str, float] = dict(dep.device.peak_tflops)

    def rate(dtype: str) -> float:
        return peaks[dtype] * 1e12 * dep.efficiency.compute_for(dtype)

    cdt = compute_dtype(dep.weights_dtype, peaks)
    peak = rate(cdt)
    group_peak = {"attention": min(peak, rate(compute_dtype(dep.kv_dtype, peaks)))}
    if attention_projections_16bit(dep):
        group_peak["attn_proj"] = min(peak, rate(compute_dtype("bf16", peaks)))
    bw = dep.device.memory_bw_gbps * 1e9 * dep.efficiency.memory_for(dep.weights_dtype)
    moe = dep.efficiency.moe_compute
    alpha = dep.efficiency.exposed_share
    return {
        name: OpTime(c.flops, c.bytes, c.flops / (group_peak.get(name, peak) * (moe if name == "experts" else 1.0)), c.bytes / bw, alpha)
        for name, c in costs.items()
    }


def network_time(dep: Deployment, tokens: ArrayLike, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike, *, link_bps: ArrayLike | None = None,
                 latency_s: ArrayLike | None = None, crossings: ArrayLike | None = None,
                 cross_bps: ArrayLike | None = None, domain: ArrayLike | None = None) -> F:  # fmt: skip
    """Collective time of one step over ``tokens`` tokens (module docstring: all-reduce, all-to-all, hand-offs).

    ``link_bps`` (achieved bytes/s per direction) and ``latency_s`` default to the deployment's device and
    efficiency; arrays let one call cover many devices. A replica spanning instances hands activations
    across the instance network at ``crossings`` of its ``pp − 1`` stage boundaries, at ``cross_bps``
    (achieved bytes/s per device over the scale-out network): ``(pp − 1 − x)·(M/link + ℓ) + x·(M/net + ℓ)``.
    By default ``x = min(pp − 1, max(tp·pp/D − 1, 0))`` for a fast-link domain of ``D`` devices (``domain``,
    default the deployment's device's) and the deployment's ``scale_out_bps``, when it has one. A
    tensor- or expert-parallel group of more than ``D`` devices runs its all-reduces or all-to-alls at
    ``net`` (:func:`stage_crossings` and the module docstring).
    """
    m = dep.model
    link = np.asarray(dep.device.interconnect.bw_gbps * 1e9 * dep.efficiency.link if link_bps is None else link_bps, dtype=float)
    lat = np.asarray(dep.efficiency.link_latency_us * 1e-6 if latency_s is None else latency_s, dtype=float)
    tokens, tp, pp, ep = (np.asarray(v, dtype=float) for v in (tokens, tp, pp, ep))
    if m.kind == "generic":
        return np.asarray(0.0 * tokens, dtype=float)
    dom = np.asarray(dep.device.interconnect.domain_size if domain is None else domain, dtype=float)
    cross = dep.scale_out_bps if cross_bps is None else cross_bps
    net = link if cross is None else np.asarray(cross, dtype=float)
    if dep.dp_attention > 1 and isinstance(m, DecoderModel) and m.moe is not None:
        return dp_attention_network_time(m, float(dep.dp_attention), tokens, tp, link, lat, net, dom)
    msg = tokens * m.hidden_size * ACT_BYTES
    allreduce = np.where(tp > 1, 2.0 * (tp - 1) / tp * msg / np.where(tp > dom, net, link) + lat, 0.0)
    moe = m.moe if isinstance(m, DecoderModel) else None
    moe_layers = 0 if moe is None else m.num_layers - moe.dense_layers
    k = 0 if moe is None else moe.experts_per_token
    a2a = np.where(ep > 1, 2.0 * (tokens * k * m.hidden_size * ACT_BYTES * (ep - 1) / ep / np.where(ep > dom, net, link) + lat), allreduce)
    per_step = 2 * m.num_layers * allreduce - moe_layers * allreduce + moe_layers * a2a
    drafter = dep.draft
    if drafter is not None and isinstance(drafter.model, DecoderModel):  # its k passes all-reduce as the target's layers do
        passes = float(dep.verify_tokens - 1)
        d_msg = tokens / float(dep.verify_tokens) * drafter.model.hidden_size * ACT_BYTES  # one pass over the decoding sequences
        d_allreduce = np.where(tp > 1, 2.0 * (tp - 1) / tp * d_msg / np.where(tp > dom, net, link) + lat, 0.0)
        per_step = per_step + passes * 2 * drafter.model.num_layers * d_allreduce
    if crossings is None:
        crossings = stage_crossings(tp, pp, dom) if cross is not None else 0.0 * tp
    x = np.asarray(crossings, dtype=float)
    handoff = (pp - 1 - x) * (msg / link + lat) + x * (msg / net + lat)
    return np.asarray(per_step + handoff, dtype=float)


def dp_attention_network_time(m: DecoderModel, groups: float, tokens: F, tp: F, link: F, lat: F, net: F, domain: F) -> F:
    """Collective time of one step with data-parallel attention, ``tokens`` the busiest attention group's ``N_g``.

    Inside a group of ``a = tp/D`` devices (one fast-link domain), ``2·L − L_moe`` all-reduces of
    ``M_g = N_g·h·2`` bytes, ``2·(a − 1)/a · M_g/β + λ`` each (none at ``a = 1``). Each MoE layer
    dispatches and combines its tokens over all ``tp`` devices: a device sends the ``k`` copies of its
    ``N_g/a`` tokens, ``S = N_g/a·k·h·2`` bytes, a share ``(min(tp, D_f) − 1)/tp`` to peers in its own
    fast-link domain of ``D_f`` devices and ``max(tp − D_f, 0)/tp`` across the instance network, both at
    once: ``2·(max(S·local/β, S·remote/β_net) + λ)`` per layer (DeepEP's normal kernels overlap the two).
    """
    moe = m.moe
    assert moe is not None
    layers, moe_layers = m.num_layers, m.num_layers - moe.dense_layers
    a = tp / groups
    msg = tokens * m.hidden_size * ACT_BYTES
    allreduce = np.where(a > 1, 2.0 * (a - 1) / a * msg / link + lat, 0.0)
    sent = tokens / a * moe.experts_per_token * m.hidden_size * ACT_BYTES
    local, remote = (np.minimum(tp, domain) - 1.0) / tp, np.maximum(tp - domain, 0.0) / tp
    a2a = 2.0 * (np.maximum(sent * local / link, sent * remote / net) + lat)
    return np.asarray((2 * layers - moe_layers) * allreduce + moe_layers * a2a, dtype=float)


def stage_crossings(tp: ArrayLike, pp: ArrayLike, domain: ArrayLike) -> F:
    """Pipeline boundaries that cross the instance network: ``min(pp − 1, max(tp·pp/D − 1, 0))`` for domains of ``D`` devices.

    Stages of ``tp < D`` devices pack ``D/tp`` to a domain, so ``tp·pp/D − 1`` boundaries fall between
    domains; a stage of ``tp ≥ D`` devices fills whole domains, so every one of the ``pp − 1`` does.
    """
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    span = tp_a * pp_a / np.asarray(domain, dtype=float) - 1.0
    return np.asarray(np.minimum(pp_a - 1.0, np.maximum(span, 0.0)), dtype=float)


def moe_layer_count(dep: Deployment) -> int:
    """MoE layers of the deployment's model, ``L_moe`` (0 for a model without experts)."""
    m = dep.model
    if not isinstance(m, DecoderModel) or m.moe is None:
        return 0
    return m.num_layers - m.moe.dense_layers


def moe_latency_s(dep: Deployment) -> float:
    """Fixed time of a step's grouped expert GEMMs [s]: ``L_moe · τ`` (0 for a model without experts).

    ``τ`` (``moe_latency_us`` of the efficiency) is what one MoE layer's expert GEMMs take beyond
    streaming their bytes: routing, token alignment, two grouped GEMM launches and their tails. Every
    micro-batch passes every layer, so the step pays it once per MoE layer.
    """
    return moe_layer_count(dep) * dep.efficiency.moe_latency_us * 1e-6


def micro_batch(batch: ArrayLike, pp: ArrayLike) -> F:
    """Sequences in one pipeline micro-batch: ``max(B/pp, min(B, 1))`` (a batch is split over the ``pp`` stages in flight)."""
    b = np.asarray(batch, dtype=float)
    return np.asarray(np.maximum(b / np.asarray(pp, dtype=float), np.minimum(b, 1.0)), dtype=float)


def step_time(dep: Deployment, batch: ArrayLike, new_tokens: ArrayLike, context: ArrayLike, tp: ArrayLike | None = None,
              pp: ArrayLike | None = None, ep: ArrayLike | None = None, *, causal: bool = True) -> StepTime:  # fmt: skip
    """Roofline time of one step over ``batch`` sequences (see module docstring).

    Parameters
    ----------
    dep
        The deployment (its tp/pp/ep are used unless arrays are passed).
    batch, new_tokens, context
        Sequences in the step, new tokens per sequence, tokens already cached per sequence.
    tp, pp, ep
        Parallel degrees, broadcast against the other arrays.
    causal
        Causal (decoder) or bidirectional (encoder) attention.
    """
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    pp_a = np.asarray(dep.pp if pp is None else pp, dtype=float)
    ep_a = np.asarray(dep.ep if ep is None else ep, dtype=float)
    micro = micro_batch(batch, pp_a)
    if dep.model.kind == "generic":
        costs = generic_step(dep, micro, tp_a)
        tokens = micro
    elif dep.dp_attention > 1:  # the busiest attention group: its share of the sequences, at least one whole
        group = np.maximum(micro / dep.dp_attention, np.minimum(micro, 1.0))
        t = np.asarray(new_tokens, dtype=float)
        costs = transformer_step(dep, group, t, context, tp_a / dep.dp_attention, causal=causal)
        costs["experts"] = expert_cost(dep, micro * t, tp_a, group * t, tp_a / dep.dp_attention)
        tokens = group * t
    else:
        costs = transformer_step(dep, micro, new_tokens, context, tp_a, causal=causal)
        tokens = micro * np.asarray(new_tokens, dtype=float)
    ops = op_times(dep, costs)
    net = network_time(dep, tokens, tp_a, pp_a, ep_a)
    overhead = np.asarray(dep.efficiency.step_overhead_ms * 1e-3 + moe_latency_s(dep) + 0.0 * net, dtype=float)
    return StepTime(ops=ops, network_s=net, overhead_s=overhead, host_s=eager_host_s(dep, tp_a), kernels_s=np.asarray(kernel_floor_s(dep)))
