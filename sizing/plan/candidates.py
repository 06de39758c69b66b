"""Candidate deployments of each workload on each allowed instance type, with honest per-replica capacity.

For a workload and an instance type, every layout inside one instance's fast-link domain is a candidate:
``tp · pp`` a power of two dividing the instance's device count (so replicas of different sizes pack
whole instances exactly), ``tp ≤`` the device's link domain and dividing the head count, for each allowed
precision. A replica holds at most ``slots`` requests (the KV cache at the longest request, capped by the
runtime), and carries the largest rate at which the load model (:mod:`aicap.sizing.serve.load`) keeps
TTFT and TPOT at the workload's percentile within target. Candidates that cannot carry traffic keep the
reason of their failure; feasible ones say which constraint binds their capacity.

Evaluation is vectorised: one :class:`~aicap.sizing.serve.step_model.StepModel` covers every workload shape,
device and layout of every model and storage format whose step has the same form (:class:`Job`), and
identical workload shapes are evaluated once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.deployment import Deployment, runs_format
from aicap.sizing.core.dtypes import storage_formats
from aicap.sizing.core.fleet import PERCENTILES, Workload
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec, InstanceSpec, ModelSpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.speculative import Speculative
from aicap.sizing.perf import memory
from aicap.sizing.plan.layouts import crossings
from aicap.sizing.plan.screen import Rows, per_rate, refill, screen, screen_bound, shadowed, spread
from aicap.sizing.serve.capacity import capacity
from aicap.sizing.serve.load import BUDGET_UTILISATION, LATENCY_HEADROOM, SLOT_UTILISATION, at_arrivals
from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.rate import at_rate
from aicap.sizing.serve.replica import Replica, ReplicaGroup
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.solve.reduce import group_pairs

F = NDArray[np.float64]
LATENCY_LOAD_FRACTIONS = (0.5, 0.25)  # extra, lighter-loaded candidates the latency objective may trade for speed


@dataclass(frozen=True)
class Candidate:
    """One (workload, instance type, layout, precision) option and the traffic one replica carries."""

    workload: str
    instance: str
    hardware: str
    tp: int
    pp: int
    weights_dtype: str
    kv_dtype: str
    slots: int
    devices: int
    capacity_rps: float
    ttft_ms: float
    tpot_ms: float | None
    binding: str = ""
    load_fraction: float = 1.0
    reason: str | None = None
    replica: Replica | None = field(default=None, compare=False, repr=False)
    dp_attention: int = 1  # attention groups per replica (one per device where > 1; Deployment.dp_attention)

    @property
    def feasible(self) -> bool:
        """Whether a replica can carry traffic within the targets."""
        return self.reason is None and self.capacity_rps > 0

    def placed(self, workload: str, instance: str) -> Candidate:
        """A copy for ``workload`` on ``instance``, made without the frozen dataclass's per-field ``__setattr__``.

        The sizer copies one candidate per evaluated row to every workload of its shape and every instance
        type that takes its layout (about 10^5 for a 1,000-workload fleet); this is several times faster than
        ``dataclasses.replace`` and the result is equal to it (a test checks).
        """
        fields = self.__dict__.copy()
        fields["workload"], fields["instance"] = workload, instance
        out = object.__new__(Candidate)
        object.__setattr__(out, "__dict__", fields)
        return out

    @staticmethod
    def of_row(hardware: str, row: Row, weights_dtype: str, kv_dtype: str, groups: int = 1) -> Candidate:
        """The candidate of an evaluated row, for no workload and instance yet (:meth:`placed` gives them).

        A row of a job with data-parallel attention is one attention group's engine: the replica holds
        ``groups`` of them, so its slots and capacity are ``groups`` times the row's. Made as :meth:`placed`
        makes its copies (one per evaluated row: about 70,000 for a 1,000-workload fleet); equal to the
        dataclass's own construction (a test checks).
        """
        out = object.__new__(Candidate)
        object.__setattr__(out, "__dict__", {
            "workload": "", "instance": "", "hardware": hardware, "tp": row.tp, "pp": row.pp, "weights_dtype": weights_dtype,
            "kv_dtype": kv_dtype, "slots": row.slots * groups, "devices": row.tp * row.pp, "capacity_rps": row.capacity_rps * groups,
            "ttft_ms": row.ttft_ms, "tpot_ms": row.tpot_ms, "binding": row.binding, "load_fraction": row.load_fraction,
            "reason": row.reason, "replica": row.replica, "dp_attention": groups,
        })  # fmt: skip
        return out


@dataclass(frozen=True)
class Shape:
    """What the performance model needs of a workload: identical shapes are evaluated once."""

    decoder: bool
    input_mean: float
    input_tail: float
    output_mean: float
    context: float
    decode_context: float  # mean context of a decode step (Workload.decode_context): what the step model is built at
    ttft_s: float
    tpot_s: float
    quantile: float
    arrival_cv: float
    tail_share: float
    cached_share: float = 0.0
    input_max: float = 0.0
    input_above: float = 0.0  # mean prompt longer than the tail bin (tokens), and the share of such prompts
    above_share: float = 0.0
    input_span: float = 0.0  # token-weighted mean prompt (Workload.input_span): what prefill attention is priced at
    input_skew: float = 1.0  # prompts' E[I³]/E[I²]^(3/2) (Workload.input_skew): how far the TPOT's tail leans right

    @property
    def prefill_mean(self) -> float:
        """Prompt tokens computed per request: the mean prompt less its cached prefix (at least one)."""
        return max(self.input_mean * (1.0 - self.cached_share), 1.0)

    @property
    def prefill_tail(self) -> float:
        """Prompt tokens computed for a tail-bin prompt."""
        return max(self.input_tail * (1.0 - self.cached_share), 1.0)

    @property
    def prefill_above(self) -> float:
        """Prompt tokens computed for a prompt longer than the tail bin (their mean)."""
        return max(self.input_above * (1.0 - self.cached_share), 1.0)

    @classmethod
    def of(cls, w: Workload, decoder: bool) -> Shape:
        """The shape of workload ``w`` for a decoder (``decoder``) or single-pass model."""
        q = PERCENTILES[w.slo.percentile]
        tail = w.input_at(q)
        above, above_share = w.input_above(tail)
        return cls(
            decoder=decoder,
            input_mean=w.mean_input,
            input_tail=tail,
            output_mean=w.mean_output if decoder else 0.0,
            context=float(w.max_context) if decoder else float(w.max_input),
            decode_context=w.decode_context if decoder else w.mean_input,
            ttft_s=np.inf if w.slo.ttft_ms is None else w.slo.ttft_ms / 1e3,
            tpot_s=np.inf if w.slo.tpot_ms is None or not decoder else w.slo.tpot_ms / 1e3,
            quantile=q,
            arrival_cv=w.arrival_cv,
            tail_share=w.input_share_from(tail),
            cached_share=w.prefix_cached_share if decoder else 0.0,
            input_max=float(w.max_input),
            input_above=above,
            above_share=above_share,
            input_span=w.input_span,
            input_skew=w.input_skew,
        )


def cost_per_rps(c: Candidate, inst: InstanceSpec, pricing: str) -> float:
    """USD/hour per request/s of one replica of ``c`` on ``inst``: ``p_t·d/D_t / q`` (its share of the instance)."""
    return float(inst.price(pricing) or 0.0) * c.devices / inst.devices / max(c.capacity_rps, 1e-12)


def formats(precision: str, device: DeviceSpec, kv_dtype: str | None = None) -> tuple[str, str] | None:
    """Storage formats for an allowed precision and KV-cache format, or ``None`` where the device has no path for it.

    The KV cache follows the weights unless ``kv_dtype`` is given.

    fp8 needs fp8 tensor cores; the FP4 formats need FP4 tensor cores or, weight-only, an NVIDIA GPU of
    the Ampere generation or later (the Marlin FP4 kernels vLLM falls back to). A quantised KV cache
    (fp8, int8) is a storage format, de-quantised in attention, so any device holds one.
    """
    if not runs_format(device, precision):
        return None
    return storage_formats(precision, dict(device.peak_tflops), kv_dtype)


class Row(NamedTuple):
    """One evaluated (shape, device, layout, load fraction): the :class:`Candidate` fields less workload and instance.

    A named tuple: the sizer makes one per evaluated row (about 70,000 for a 1,000-workload fleet), and a
    tuple is made several times faster than a frozen dataclass.
    """

    shape: int
    device: int
    tp: int
    pp: int
    slots: int
    capacity_rps: float
    ttft_ms: float
    tpot_ms: float | None
    binding: str
    load_fraction: float
    reason: str | None
    replica: Replica


def _slots(model: ModelSpec, dep: Deployment, tp: F, pp: F, sh: list[Shape], budget: float, runtime: RuntimeSpec) -> F:
    """Most requests a replica holds: KV cache at the longest request (decoders) or the budget's batch that fits.

    With ``pp`` pipeline stages a replica runs ``pp`` micro-batches, each with ``1/pp`` of the KV cache (the
    simulator's virtual engines, :mod:`aicap.sizing.sim.engine`): the longest request must fit one share,
    so fewer than ``pp`` slots at the longest request is none.
    """
    if model.kind == "decoder":
        i = np.array([s.input_mean for s in sh])
        ctx = np.array([s.context for s in sh])
        most = memory.max_batch(dep, tp, pp, i, ctx) / dep.dp_attention  # one attention group's engine (Job.dp_attention)
        return np.asarray(np.where(most >= pp, np.minimum(most, runtime.max_batch), 0.0), dtype=float)
    items = np.array([max(s.input_mean, 1.0) for s in sh])
    batch = np.maximum(np.floor(budget / items), 1.0) if model.kind == "encoder" else np.full(len(sh), float(runtime.max_batch))
    fits = memory.breakdown(dep, tp, pp, batch, items, 0.0).fits
    return np.asarray(np.where(fits, np.minimum(batch, runtime.max_batch), 0.0), dtype=float)


def _binding(m: Loaded, sh: Sequence[Shape]) -> list[str]:
    """Which limit binds each row at its capacity: latencies against the plan's headroomed targets (what capacity stops at)."""
    ttft = LATENCY_HEADROOM * np.array([s.ttft_s for s in sh])
    tpot = LATENCY_HEADROOM * np.array([s.tpot_s for s in sh])
    ratios = np.stack([m.ttft_s / ttft, m.tpot_s / tpot, m.budget_use / BUDGET_UTILISATION, m.slot_use / SLOT_UTILISATION, m.graph_use])
    names = np.array(["TTFT target", "TPOT target", "token budget per step", "KV-cache slots", "CUDA-graph batch cap"])
    picked = [str(v) for v in names[np.argmax(np.nan_to_num(ratios, nan=0.0), axis=0)]]
    # an encoder keeps no KV cache: its slots are the batch its memory holds (_slots)
    return [("batch memory" if b == "KV-cache slots" and not s.decoder else b) for b, s in zip(picked, sh, strict=True)]


def _reasons(idle: Loaded, slots: F, sh: Sequence[Shape], rate: F, ttft: F | None = None, pp: F | None = None) -> list[str | None]:
    """Why each row carries no traffic within its targets (``None`` where it does).

    ``ttft`` [s] is the TTFT percentile at the lightest load, where the capacity search computed it; ``pp``
    the rows' pipeline stages (a request must fit one stage's share of the KV cache, :func:`_slots`).
    """

    def ms(seconds: float) -> str:  # 50.4 ms is not "50 ms > target 50 ms"
        v = seconds * 1e3
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"

    def target(seconds: float) -> str:  # a target as given: 50, 1,500, 2.5 (never 1e+06)
        v = seconds * 1e3
        return f"{v:,.0f}" if v >= 100 or v.is_integer() else f"{v:g}"

    def room(t: float) -> str:  # a plan keeps each percentile under LATENCY_HEADROOM × target: say what that leaves
        return f" less the plan's {1 - LATENCY_HEADROOM:.0%} headroom ({ms(LATENCY_HEADROOM * t)} ms)"

    out: list[str | None] = []
    for k, s in enumerate(sh):
        if slots[k] < 1:
            what = f"the longest request ({s.context:,.0f} tokens)" if s.decoder else "one batch"
            stages = 1 if pp is None else int(pp[k])
            share = f" in one pipeline stage's 1/{stages} share of the KV cache" if s.decoder and stages > 1 else ""
            out.append(f"does not fit memory at {what}{share}")
        elif rate[k] > 0:
            out.append(None)
        elif idle.tpot_s[k] > LATENCY_HEADROOM * s.tpot_s:
            out.append(f"TPOT {ms(idle.tpot_s[k])} ms > target {target(s.tpot_s)} ms{room(s.tpot_s)} even with one request")
        elif idle.ttft_s[k] > LATENCY_HEADROOM * s.ttft_s:
            out.append(f"TTFT {ms(idle.ttft_s[k])} ms > target {target(s.ttft_s)} ms{room(s.ttft_s)} even when idle")
        elif ttft is not None and s.ttft_s > 0 and ttft[k] > LATENCY_HEADROOM * s.ttft_s:
            out.append(f"TTFT p{s.quantile * 100:g} {ms(ttft[k])} ms > target {target(s.ttft_s)} ms{room(s.ttft_s)} even at the "
                       "lightest load")  # fmt: skip
        else:
            out.append("cannot meet the targets within its memory slots and token budget")
    return out


DeviceOption = tuple[DeviceSpec, EfficiencySpec, list[tuple[int, int]], float]
"""A device to evaluate: spec, efficiency factors, (tp, pp) layouts, cheapest USD per device-hour."""


@dataclass(frozen=True)
class Job:
    """One model and storage format's workload shapes on its devices: what :func:`evaluate_batch` batches.

    ``devices`` are ``(device, efficiency, layouts, cheapest USD per device-hour)``; ``networks`` the
    achieved scale-out bytes/s per device of devices whose layouts span instances; ``speculative`` the
    workloads' speculative decoding (one configuration per job); ``shadows`` maps a device's index to those of
    no dearer ones whose rows make its own redundant where they hold as many slots (:func:`~aicap.sizing.plan.screen.shadowed`).
    """

    model: ModelSpec
    runtime: RuntimeSpec
    fmt: tuple[str, str]
    shapes: list[Shape]
    devices: list[DeviceOption]
    networks: Mapping[str, float] | None = None
    speculative: Speculative | None = None
    dp_attention: int = 1  # > 1: every layout is a stage of that many devices, one attention group each; rows are a group's engine
    shadows: Mapping[int, list[int]] = field(default_factory=dict)

    def template(self, k: int = 0) -> Deployment:
        """A one-device deployment of the job on its ``k``-th device (with the job's attention groups: costed at the rows' tp)."""
        dev, eff = self.devices[k][0], self.devices[k][1]
        return Deployment(self.model, dev, eff, self.runtime, 1, 1, 1, self.fmt[0], self.fmt[1], speculative=self.speculative,
                          dp_attention=self.dp_attention)  # fmt: skip

    @property
    def batch_key(self) -> tuple[object, ...]:
        """Jobs of equal key share a step model's form (operator groups, experts, tokens per step) and token budget."""
        moe = self.model.moe if self.model.kind == "decoder" else None
        experts = (0, 0) if moe is None else (moe.num_experts, moe.experts_per_token)
        spec = None if self.speculative is None else id(self.speculative)
        return (self.model.kind, experts, spec, self.runtime.max_prefill_tokens, self.dp_attention)


def evaluate(model: ModelSpec, runtime: RuntimeSpec, fmt: tuple[str, str], shapes: list[Shape], devices: list[DeviceOption],
             latency_variants: bool, networks: Mapping[str, float] | None = None,
             speculative: Speculative | None = None) -> list[Row]:  # fmt: skip
    """Every (shape, device, layout) row of one model and storage format, in one batch (:func:`evaluate_batch`)."""
    return evaluate_batch([Job(model, runtime, fmt, shapes, devices, networks, speculative)], latency_variants)[0]


def evaluate_batch(jobs: Sequence[Job], latency_variants: bool) -> list[list[Row]]:
    """Every (shape, device, layout) row of jobs of one :attr:`Job.batch_key`, in one vectorised pass.

    Returns, per job, one :class:`Row` per (shape, device, layout) and load fraction (less the rows its
    ``shadows`` make redundant, :func:`~aicap.sizing.plan.screen.shadowed`), with ``shape`` and
    ``device`` indexing the job's lists. A row's metrics do not depend on the rows of other shapes
    evaluated with it (every selection is per workload shape, every bisection per row), so batching only
    saves the per-call cost of many small array operations; :mod:`aicap.sizing.plan.evaluation` batches
    and cuts a fleet's jobs.
    """
    rows = Rows()
    job_of: list[int] = []
    shape_base: list[int] = []
    device_base: list[int] = []
    sh_all: list[Shape] = []
    options: list[DeviceOption] = []
    for jn, job in enumerate(jobs):
        shape_base.append(len(sh_all))
        device_base.append(len(options))
        for si in range(len(job.shapes)):
            for di, (_, _, lays, _) in enumerate(job.devices):
                for tp, pp in lays:
                    rows.shape.append(shape_base[jn] + si)
                    rows.device.append(device_base[jn] + di)
                    rows.tp.append(tp)
                    rows.pp.append(pp)
                    job_of.append(jn)
        sh_all += job.shapes
        options += job.devices
    if not rows.tp:
        return [[] for _ in jobs]
    tp_a, pp_a = np.array(rows.tp, dtype=float), np.array(rows.pp, dtype=float)
    sh = [sh_all[i] for i in rows.shape]
    dev_ix, job_a = np.array(rows.device), np.array(job_of)
    budget = float(jobs[0].runtime.max_prefill_tokens)  # one budget per batch key
    slots = np.zeros(len(sh))
    for di in range(len(options)):
        mine = np.flatnonzero(dev_ix == di)
        if mine.size:
            jn = int(job_a[mine[0]])
            job = jobs[jn]
            dep = job.template(di - device_base[jn])
            slots[mine] = _slots(job.model, dep, tp_a[mine], pp_a[mine], [sh[k] for k in mine], budget, job.runtime)
    shadows = {device_base[jn] + b: [device_base[jn] + a for a in under] for jn, job in enumerate(jobs) for b, under in job.shadows.items()}
    drop = shadowed(rows, slots, shadows)
    if drop.any():  # a cheaper device option's rows carry the same (CPU memory variants): neither evaluated nor offered
        keep = np.flatnonzero(~drop)
        rows = Rows(*([getattr(rows, f)[k] for k in keep.tolist()] for f in ("shape", "device", "tp", "pp")))
        if not rows.tp:
            return [[] for _ in jobs]
        job_of = [job_of[k] for k in keep.tolist()]
        tp_a, pp_a, dev_ix, job_a, slots = tp_a[keep], pp_a[keep], dev_ix[keep], job_a[keep], slots[keep]
        sh = [sh[k] for k in keep.tolist()]
    # An engine that does not chunk prefill refuses a workload whose longest prompt exceeds its budget.
    shape_ix = np.asarray(rows.shape, dtype=np.int64)
    job_of_shape = [jn for jn, job in enumerate(jobs) for _ in job.shapes]

    def per_row(values: list[float]) -> F:  # a per-shape quantity, once per shape, repeated per row
        return np.asarray(np.array(values, dtype=float)[shape_ix], dtype=float)

    refused_of = [jobs[jn].runtime.refuses_prompt(s.input_max) for jn, s in zip(job_of_shape, sh_all, strict=True)]
    refused = [refused_of[k] for k in rows.shape]
    slots[[k for k, why in enumerate(refused) if why is not None]] = 0.0
    i = per_row([s.input_mean for s in sh_all])
    o = per_row([s.output_mean for s in sh_all])
    ctx = per_row([s.decode_context for s in sh_all])  # mean context of a decode step (Workload.decode_context)
    new = per_row([s.prefill_mean for s in sh_all])  # computed prompt tokens; a cached prefix is attended to, not recomputed
    # Prefill attention at the token-weighted prompt (Workload.input_span), split as the mean prompt is.
    span = per_row([max(s.input_span, s.input_mean) for s in sh_all])
    span_new = span * new / np.maximum(i, 1.0)
    domain = np.array([float(d.interconnect.domain_size) for d, _, _, _ in options])[dev_ix]
    parts = []
    for jn, job in enumerate(jobs):  # rows of a job are contiguous
        r = np.flatnonzero(job_a == jn)
        if not r.size:
            continue
        devs, back = np.unique(dev_ix[r], return_inverse=True)  # per device once, then per row
        hw = Hardware.of([(options[d][0], options[d][1]) for d in devs.tolist()], job.fmt[0], job.fmt[1]).take(back.ravel())
        cross_bps = np.array([(job.networks or {}).get(options[d][0].id, np.inf) for d in devs.tolist()])[back.ravel()]
        parts.append(StepModel.build(job.template(), hw, tp_a[r], pp_a[r], 1.0, ctx[r], span_new[r], span[r] - span_new[r],
                                     crossings(tp_a[r], pp_a[r], domain[r]), cross_bps))  # fmt: skip
    step = StepModel.concat(parts)
    overhead = np.array([job.runtime.request_overhead_ms * 1e-3 for job in jobs])[job_a]
    lag = np.array([1.0 if job.runtime.overlap_scheduling else 0.0 for job in jobs])[job_a]
    first = np.array([1.0 if job.runtime.prefill_first else 0.0 for job in jobs])[job_a]
    traffic = Traffic(new, o, per_row([s.prefill_tail for s in sh_all]), slots, per_row([s.quantile for s in sh_all]),
                      per_row([s.arrival_cv for s in sh_all]), per_row([s.tail_share for s in sh_all]), overhead,
                      jobs[0].template().tokens_per_step, per_row([s.prefill_above for s in sh_all]),
                      per_row([s.above_share for s in sh_all]), lag, span_new, per_row([s.input_skew for s in sh_all]), first)  # fmt: skip
    ttft_t, tpot_t = per_row([s.ttft_s for s in sh_all]), per_row([s.tpot_s for s in sh_all])
    # Screen first: capacity without the TTFT percentile (cheap) bounds each row's cost per request/s from
    # below; only the most promising rows pay for the TTFT mixture, the rest are dropped with a reason.
    groups = np.array([float(job.dp_attention) for job in jobs])[job_a]  # a row of a data-parallel-attention job is one group's engine
    price = np.array([opt[3] for opt in options])[dev_ix] * tp_a * pp_a / groups
    idle = at_arrivals(step, pp_a, budget, traffic, np.full(len(sh), 1e-6), ttft=False)
    # Rows that differ only in their targets (workloads alike but for their SLO) share the rate bound's first pass.
    free: dict[Shape, int] = {}
    free_of = np.array([free.setdefault(replace(s, ttft_s=0.0, tpot_s=0.0), len(free)) for s in sh_all], dtype=np.int64)
    key = np.column_stack([free_of[shape_ix], dev_ix, tp_a, pp_a])
    _, first, alike = np.unique(key, axis=0, return_index=True, return_inverse=True)
    bound, pruned, small, lower = screen_bound(rows, step, pp_a, budget, traffic, tpot_t, price, idle, first[alike.ravel()], ttft_t)
    chosen = screen(rows, per_rate(price, bound.rate))
    chosen = np.union1d(chosen, small[bound.rate[small] > 0])  # and each device's smallest replica, where a low rate may buy it
    sub = capacity(step.take(chosen), pp_a[chosen], budget, traffic.take(chosen), np.where(slots[chosen] >= 1, ttft_t[chosen], 0.0),
                   tpot_t[chosen], without_ttft=bound.arrivals_per_round[chosen], report_ttft=True)  # fmt: skip
    cap = spread(bound, sub, chosen)
    chosen = refill(rows, step, pp_a, budget, traffic, ttft_t, tpot_t, price, lower, bound, cap, chosen, slots >= 1)
    reasons = [why or r for why, r in zip(refused, _reasons(idle, slots, sh, cap.rate, cap.ttft_s, pp_a), strict=True)]
    screened = np.ones(len(sh), dtype=bool)
    screened[chosen] = False
    for k in np.flatnonzero(screened & ((bound.rate > 0) | pruned) & (slots >= 1)).tolist():  # no slots: memory or a refusal says why
        reasons[k] = "screened out: its best-case cost per request/s is above the layouts kept for this workload"
    binding = _binding(cap, sh)
    out: list[list[Row]] = [[] for _ in jobs]
    variants: list[tuple[float, Loaded, NDArray[np.int64]]] = [(1.0, cap, np.arange(len(sh)))]
    if latency_variants:
        ok = np.flatnonzero(cap.rate > 0)
        for frac in LATENCY_LOAD_FRACTIONS:
            lighter = at_rate(step.take(ok), pp_a[ok], budget, traffic.take(ok), cap.rate[ok] * frac)
            variants.append((frac, lighter, ok))
    group = ReplicaGroup(step, pp_a, budget, traffic)
    slot_l = slots.astype(int).tolist()
    for frac, m, ix in variants:
        rate_l, ttft_l, tpot_l = m.rate.tolist(), m.ttft_s.tolist(), m.tpot_s.tolist()  # Python floats, read once
        for j, k in enumerate(ix.tolist()):
            s, jn = sh[k], job_of[k]
            out[jn].append(Row(
                shape=rows.shape[k] - shape_base[jn], device=rows.device[k] - device_base[jn], tp=rows.tp[k], pp=rows.pp[k],
                slots=slot_l[k], capacity_rps=rate_l[j], ttft_ms=ttft_l[j] * 1e3, tpot_ms=tpot_l[j] * 1e3 if s.decoder else None,
                binding=binding[k] if frac == 1.0 else "lighter load", load_fraction=frac, reason=reasons[k],
                replica=Replica(group, k, jobs[jn].dp_attention),
            ))  # fmt: skip
    return out


#: Latencies within this share of each other tie when one candidate is strictly larger (:func:`prune`, :func:`_tie_prune`).
LATENCY_TIE = 0.005


def prune(cands: list[Candidate]) -> list[Candidate]:
    """Drop feasible candidates another candidate of the same workload and instance type dominates.

    ``a`` dominates ``b`` when it uses no more devices and carries at least as much traffic, with no
    worse TTFT and TPOT; of identical candidates the first is kept. The cheapest (or fastest) plan never
    needs such a dominated candidate, so the integer program stays small (vectorised over every pair of a
    group at once). Then, of the candidates left, one is also dropped when a kept one uses fewer devices or
    carries more than :data:`LATENCY_TIE` more traffic with latencies no more than that share worse
    (:func:`_tie_prune`): a candidate's capacity is set where its TTFT meets the target's budget, so layouts
    of one instance end at nearly the same TTFT (680.0 and 679.8 ms), and the weaker was kept for its 0.2 ms
    and chosen in hours where it cost the same (bf16 at 4.4 req/s beside fp8 at 6.6 on the same eight L4s).
    A plan that optimises latency loses at most that share of it.
    """
    if not cands:
        return []
    codes: dict[tuple[str, str], int] = {}
    group = np.array([codes.setdefault((c.workload, c.instance), len(codes)) for c in cands], dtype=np.int64)
    d = np.array([c.devices for c in cands], dtype=float)
    q = np.array([c.capacity_rps for c in cands], dtype=float)
    a = np.array([c.ttft_ms for c in cands], dtype=float)
    b = np.array([c.tpot_ms or 0.0 for c in cands], dtype=float)
    i, j = group_pairs(group)
    no_worse = (d[i] <= d[j]) & (q[i] >= q[j]) & (a[i] <= a[j]) & (b[i] <= b[j])
    better = (d[i] < d[j]) | (q[i] > q[j]) | (a[i] < a[j]) | (b[i] < b[j])
    dominated = np.bincount(j, weights=(no_worse & (better | (i < j))).astype(float), minlength=len(cands)) > 0
    left = np.flatnonzero(~dominated)
    keep = _tie_prune(left, group, d, q, a, b)
    return [cands[k] for k in sorted(keep)]


def _tie_prune(idx: NDArray[np.intp], group: NDArray[np.int64], d: F, q: F, a: F, b: F) -> list[int]:
    """The indices of ``idx`` no kept candidate of their group tie-dominates, largest first (:func:`prune`).

    Greedy by capacity (most first, fewer devices first): a candidate is dropped when one already kept uses no more devices
    and carries no less, strictly more of one (capacity by over :data:`LATENCY_TIE`), with TTFT and TPOT at most that share
    worse. Only kept candidates drop others, so ties do not chain: every dropped candidate is within the tie of a kept one.
    """
    tie = 1.0 + LATENCY_TIE
    keep: list[int] = []
    kept_by_group: dict[int, list[int]] = {}
    for k in sorted(idx.tolist(), key=lambda n: (int(group[n]), -q[n], d[n], a[n], b[n], n)):
        mine = kept_by_group.setdefault(int(group[k]), [])
        if not any(d[m] <= d[k] and q[m] >= q[k] and (d[m] < d[k] or q[m] > q[k] * tie) and a[m] <= a[k] * tie and b[m] <= b[k] * tie
                   for m in mine):  # fmt: skip
            mine.append(k)
            keep.append(k)
    return keep
