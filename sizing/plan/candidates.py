"""Candidate deployments of each workload on each allowed instance type.

For a workload and an instance type, every layout that fits inside one instance's fast-link domain is
a candidate: ``tp · pp`` a power of two dividing the instance's device count (so replicas of
different sizes pack into whole instances exactly: sizes that divide one another bin-pack without
waste), ``tp ≤`` the device's link domain and dividing the head count, for each allowed precision.
The batch is the largest that fits memory at the longest request and keeps TPOT within target
(:func:`aicap.sizing.serve.serving.largest_batch`, vectorised over workloads and layouts). The per-replica rate then comes from
:func:`aicap.sizing.serve.queueing.sustainable_rate`. Candidates that fail keep their reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import storage_formats
from aicap.sizing.core.fleet import PERCENTILES, Workload
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.serve.queueing import sustainable_rate
from aicap.sizing.serve.serving import largest_batch, max_fitting_batch, serve


@dataclass(frozen=True)
class Candidate:
    """One (workload, instance type, layout, precision) option and how much traffic a replica carries."""

    workload: str
    instance: str
    hardware: str
    tp: int
    pp: int
    weights_dtype: str
    kv_dtype: str
    batch: int
    devices: int
    capacity_rps: float
    ttft_ms: float
    tpot_ms: float | None
    output_tokens_per_s: float
    reason: str | None = None
    service_s: float = 0.0

    @property
    def feasible(self) -> bool:
        """Whether a replica can carry traffic within the targets."""
        return self.reason is None and self.capacity_rps > 0


def _formats(precision: str, device: Any) -> tuple[str, str] | None:
    """Storage formats for an allowed precision, or ``None`` where the device has no fp8 path."""
    if precision == "fp8" and "fp8" not in device.peak_tflops:
        return None
    return storage_formats(precision, dict(device.peak_tflops))


def _layouts(model: Any, inst: InstanceSpec, device: Any) -> list[tuple[int, int]]:
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if inst.devices % s == 0]
    heads = getattr(model, "num_heads", 1)
    layers = getattr(model, "num_layers", 1)
    out = []
    for size in sizes:
        for tp in (t for t in sizes if t <= size and size % t == 0):
            pp = size // tp
            if tp <= device.interconnect.domain_size and heads % tp == 0 and pp <= layers:
                out.append((tp, pp))
    return out


def _failure(w: Workload, dep: Deployment, tpot_ms: float, ttft_ms: float, tp: int, pp: int, batch: float, rate: float) -> str | None:
    decoder = dep.model.kind == "decoder"
    ctx = float(w.max_context) if decoder else w.mean_input + 1.0
    if batch < 1:
        if max_fitting_batch(dep, w.mean_input, max(ctx - w.mean_input, 1.0), tp, pp) < 1:
            return "does not fit memory at the longest request"
        if decoder:
            return f"TPOT {tpot_ms:.0f} ms > target {w.slo.tpot_ms:g} ms even at batch 1"
        return f"latency {ttft_ms:.0f} ms > half the target {w.slo.ttft_ms:g} ms even at batch 1"
    if rate <= 0:
        return f"TTFT {ttft_ms:.0f} ms > target {w.slo.ttft_ms:g} ms even when idle"
    return None


def evaluate(ws: list[Workload], model: Any, device: Any, efficiency: Any, runtime: Any, fmt: tuple[str, str],
             layouts: list[tuple[int, int]]) -> list[list[dict[str, Any]]]:  # fmt: skip
    """Per workload and layout: batch, latencies and sustainable rate of one precision on one device.

    All workloads of one model are evaluated in one vectorised pass (arrays of shape workloads × layouts).
    """
    decoder = model.kind == "decoder"
    nl = len(layouts)
    tps = np.tile(np.array([t for t, _ in layouts], dtype=float), len(ws))
    pps = np.tile(np.array([p for _, p in layouts], dtype=float), len(ws))

    def per(values: list[float]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=float), nl)

    i = per([w.mean_input for w in ws])
    o = per([w.mean_output if decoder else 1.0 for w in ws])
    ctx = per([float(w.max_context) if decoder else w.mean_input + 1.0 for w in ws])
    nan = float("nan")
    tpot = per([nan if w.slo.tpot_ms is None else w.slo.tpot_ms / 1000.0 for w in ws])
    ttft = per([nan if w.slo.ttft_ms is None else w.slo.ttft_ms / 1000.0 for w in ws])
    p = per([PERCENTILES[w.slo.percentile] for w in ws])
    dep = Deployment(model, device, efficiency, runtime, 1, 1, 1, fmt[0], fmt[1])
    # Encoders spend at most half the TTFT target on the batch's forward pass; queueing gets the rest.
    limit = tpot if decoder else ttft / 2.0
    batch = largest_batch(dep, i, o, ctx, tps, pps, np.where(np.isnan(limit), np.inf, limit))
    m = serve(dep, np.maximum(batch, 1.0), i, o, tps, pps)
    # A decoder replica has `batch` slots each held for a request's whole life (E2E); an encoder
    # replica batches requests per forward pass and behaves as one server of rate requests_per_s.
    servers = batch if decoder else np.ones_like(batch)
    svc = np.broadcast_to(m.e2e_s if decoder else 1.0 / np.maximum(m.requests_per_s, 1e-12), batch.shape)
    rate = sustainable_rate(np.maximum(servers, 1.0), svc, m.ttft_s, np.where(np.isnan(ttft), np.inf, ttft), p)
    rate = np.where(batch >= 1, rate, 0.0)
    out: list[list[dict[str, Any]]] = []
    for wi, w in enumerate(ws):
        rows = []
        for li, (tp, pp) in enumerate(layouts):
            k = wi * nl + li
            tpot_ms, ttft_ms = float(m.tpot_s[k]) * 1e3, float(m.ttft_s[k]) * 1e3
            rows.append({
                "tp": tp, "pp": pp, "batch": int(batch[k]), "capacity_rps": float(rate[k]), "ttft_ms": ttft_ms,
                "tpot_ms": tpot_ms if decoder else None, "output_tokens_per_s": float(m.output_tokens_per_s[k]) if decoder else 0.0,
                "service_s": float(svc[k]), "reason": _failure(w, dep, tpot_ms, ttft_ms, tp, pp, float(batch[k]), float(rate[k])),
            })  # fmt: skip
        out.append(rows)
    return out


def _infeasible(w: Workload, inst: InstanceSpec, device: Any, reason: str) -> Candidate:
    return Candidate(w.name, inst.name, device.id, 0, 0, "-", "-", 0, 0, 0.0, 0.0, None, 0.0, reason)


def candidates_for(ws: list[Workload], model: Any, insts: list[InstanceSpec], device: Any, efficiency: Any,
                   runtime: Any) -> dict[str, list[Candidate]]:  # fmt: skip
    """Every candidate of workloads ``ws`` (one model) on instance types ``insts`` (one device type).

    The performance model runs once per precision over the union of the instances' layouts and all
    workloads at once; each instance type then takes the layouts that fit it.
    """
    per_inst = {inst.name: _layouts(model, inst, device) for inst in insts}
    layouts = sorted({lay for lays in per_inst.values() for lay in lays})
    out: dict[str, list[Candidate]] = {w.name: [] for w in ws}
    if not layouts:
        heads = getattr(model, "num_heads", 1)
        for w in ws:
            out[w.name] = [
                _infeasible(w, inst, device, f"no tensor-parallel degree divides {heads} heads within {inst.devices} devices")
                for inst in insts
            ]
        return out
    for precision in sorted({p for w in ws for p in w.precisions}):
        fmt = _formats(precision, device)
        mine = [w for w in ws if precision in w.precisions]
        if fmt is None or not mine:
            continue
        for w, rows in zip(mine, evaluate(mine, model, device, efficiency, runtime, fmt, layouts), strict=True):
            for inst in insts:
                fits = [r for r in rows if (r["tp"], r["pp"]) in per_inst[inst.name]]
                out[w.name] += [Candidate(workload=w.name, instance=inst.name, hardware=device.id, weights_dtype=fmt[0], kv_dtype=fmt[1],
                                          devices=r["tp"] * r["pp"], **r) for r in fits]  # fmt: skip
    for w in ws:
        if not out[w.name]:
            why = f"{device.id} supports none of the allowed precisions {', '.join(w.precisions)}"
            out[w.name] = [_infeasible(w, inst, device, why) for inst in insts]
    return out


def prune(cands: list[Candidate]) -> list[Candidate]:
    """Drop feasible candidates another candidate of the same workload and instance type dominates.

    ``a`` dominates ``b`` when it uses no more devices and carries at least as much traffic, with no
    worse TTFT and TPOT (and is not identical); the cheapest plan never needs a dominated candidate,
    so the integer program stays small.
    """
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for c in cands:
        groups.setdefault((c.workload, c.instance), []).append(c)
    keep = []
    for group in groups.values():
        for c in group:
            me = (c.devices, -c.capacity_rps, c.ttft_ms, c.tpot_ms or 0.0)
            dominated = any(
                o.devices <= c.devices and o.capacity_rps >= c.capacity_rps and o.ttft_ms <= c.ttft_ms
                and (o.tpot_ms or 0.0) <= (c.tpot_ms or 0.0) and (o.devices, -o.capacity_rps, o.ttft_ms, o.tpot_ms or 0.0) < me
                for o in group
            )  # fmt: skip
            if not dominated:
                keep.append(c)
    return keep
