"""Turning the integer program's counts into a :class:`~aicap.sizing.core.plan.Plan`.

Traffic of a workload is routed to its deployments in proportion to their capacity (or by the shares
the latency objective chose), split evenly over replicas, and each deployment's TTFT and TPOT are the
load model's percentiles at that load (:func:`aicap.sizing.serve.replica.at_rates`).

Costs: a deployment pays ``r·d·p_t/D_t`` scaled by ``n_t·D_t/used_t`` (devices bought over devices
used), so idle devices of a bought instance are charged to the workloads on that instance type and the
workload costs add up to the fleet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import cast

import numpy as np

from aicap.sizing.calibrate.accuracy import error_bands
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.dtypes import KvDtype, WeightDtype
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.fleet import Workload as FleetWorkload
from aicap.sizing.core.plan import Alternative, CatalogueRef, Deployment, Instance, Plan, Rejected, Solver, Totals
from aicap.sizing.core.plan import Workload as PlanWorkload
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.plan.candidates import Candidate
from aicap.sizing.plan.disaggregate import DECODE, PREFILL
from aicap.sizing.serve.loaded import Loaded
from aicap.sizing.serve.replica import Replica, at_rates


def sig(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (stable JSON across platforms)."""
    return float(f"{x:.{digits}g}")


def money(x: float) -> float:
    """Round USD to cents."""
    return round(x + 0.0, 2)


def _margin(promised: float | None, target: float | None) -> float | None:
    if promised is None or target is None:
        return None
    return round(100.0 * (target - promised) / target, 1)


def _version() -> str:
    try:
        return version("aicap")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _speculative(cat: CatalogueLike, w: FleetWorkload, warnings: list[str]) -> str | None:
    """The label of a workload's speculative decoding; a speculation beyond its published evidence adds a warning."""
    spec = speculative_for(cat, cat.model(w.model), w.speculative, f"workload '{w.name}': speculative")
    if spec is not None and spec.extrapolated:
        warnings.append(f"workload '{w.name}': speculative decoding beyond its published evidence: {spec.extrapolated}; "
                        "expect fewer tokens per step than planned (give an acceptance you measured)")  # fmt: skip
    return None if spec is None else spec.label()


def _replica(c: Candidate) -> Replica:
    if c.replica is None:  # pragma: no cover - the planner only chooses evaluated candidates
        raise ValueError(f"candidate {c.workload}/{c.instance} was never evaluated")
    return c.replica


def _loads(mine: list[tuple[Candidate, int]], served: float, shares: Sequence[float] | None) -> list[float]:
    """Requests/s routed to each deployment: by the chosen ``shares``, else in proportion to capacity."""
    cap_total = sum(c.capacity_rps * r for c, r in mine)
    return [served * (shares[k] if shares is not None else c.capacity_rps * r / max(cap_total, 1e-12)) for k, (c, r) in enumerate(mine)]


def _needed_devices(mine: list[tuple[Candidate, int]], served: float, min_replicas: int = 1) -> list[int]:
    """Devices of each deployment of a workload that its served rate and its replica floor need [devices].

    The fewest replicas, of those the plan runs, that carry ``served`` requests/s: replicas of the most capacity
    per device first, the last one the smallest that covers what is left; then, while fewer than ``min_replicas``
    replicas are counted, the workload's smallest further replicas (the floor it asked for is its own cost). The
    planner fills devices its instances leave idle with extra replicas (free headroom); charging them to the
    workload they happen to serve made its cost an artefact of packing (3x its need, for a 3B-active model beside
    a large one), so a workload is charged for these devices, and the rest of its instance type's devices are
    shared in proportion.
    """
    need = [0] * len(mine)
    left = served
    order = sorted(range(len(mine)), key=lambda k: (-mine[k][0].capacity_rps / mine[k][0].devices, k))
    for k in order:
        cand, r = mine[k]
        while left > 1e-12 and need[k] < r * cand.devices:
            last = [j for j in order if need[j] < mine[j][1] * mine[j][0].devices and mine[j][0].capacity_rps >= left]
            if last:  # one replica carries the rest: the smallest that does
                j = min(last, key=lambda j: (mine[j][0].devices, j))
                need[j] += mine[j][0].devices
                left = 0.0
                break
            need[k] += cand.devices
            left -= cand.capacity_rps
    if left > 1e-12 or not any(need):  # no capacity to judge by (or none needed): every device is the workload's
        return [r * c.devices for c, r in mine]
    counted = sum(n // c.devices for (c, _), n in zip(mine, need, strict=True))
    while counted < min_replicas:  # replicas kept for availability (min_replicas) beyond what the rate needs
        spare = [j for j in range(len(mine)) if need[j] < mine[j][1] * mine[j][0].devices]
        if not spare:
            break
        j = min(spare, key=lambda j: (mine[j][0].devices, j))
        need[j] += mine[j][0].devices
        counted += 1
    return need


def _deployments(mine: list[tuple[Candidate, int]], loads: list[float], needed: list[int], metrics: list[Loaded],
                 insts: dict[str, InstanceSpec],
                 counts: dict[str, int], used: dict[str, int], pricing: str, cat: CatalogueLike,
                 efficiency_key: str | None, hours: float) -> tuple[list[Deployment], float]:  # fmt: skip
    """The plan deployments of one workload and their hourly cost, summed before rounding [USD/h].

    The workload pays for the devices its demand needs (:func:`_needed_devices`) and, in proportion, for the rest of
    their instance types' devices: idle ones, and replicas that fill them as free headroom. ``used`` is the devices
    needed per instance type. What the workload pays for one instance type is split over its deployments on that type in
    proportion to ``max(λ_k/μ_k·g_k, n_k)``: the devices their loads occupy (a load ``λ_k`` on replicas of capacity
    ``μ_k`` and ``g_k`` devices) or the devices they are needed for (``n_k``, a ``min_replicas`` floor included),
    whichever is more. Every deployment that carries traffic, or is kept, on a type the workload pays for carries part of
    it (a loaded deployment showed $0 when the cheapest cover of the rate left it out), and each type's and the
    workload's totals are unchanged.
    """
    out = []
    own: list[float] = []  # what each deployment's needed devices cost [USD/h]: their sum is the workload's
    held: list[float] = []  # what the devices each deployment's load occupies cost [USD/h]: how that sum is split
    for k, ((cand, _r), load) in enumerate(zip(mine, loads, strict=True)):
        inst = insts[cand.instance]
        per_device = float(inst.price(pricing) or 0.0) / inst.devices * counts[cand.instance] * inst.devices / max(used[cand.instance], 1)
        own.append(needed[k] * per_device)
        held.append(load / max(cand.capacity_rps, 1e-12) * cand.devices * per_device)
    usd_h = sum(own)
    split = list(own)
    for t in {c.instance for c, _ in mine}:  # within each instance type, by occupancy; the type's share stays as need put it
        ks = [k for k, (c, _) in enumerate(mine) if c.instance == t]
        weight = {k: max(held[k], own[k]) for k in ks}  # a replica kept for a floor, or routed nothing, keeps its own share
        occupied = sum(weight.values())
        if occupied > 0:
            for k in ks:
                split[k] = sum(own[j] for j in ks) * weight[k] / occupied
    for k, ((cand, r), load, m) in enumerate(zip(mine, loads, metrics, strict=True)):
        inst = insts[cand.instance]
        usd = split[k]
        ttft = float(m.ttft_s[0]) * 1e3
        tpot = float(m.tpot_s[0]) * 1e3
        out.append(Deployment(
            instance_type=cand.instance, hardware=cand.hardware, tp=cand.tp, pp=cand.pp, ep=cand.tp if cand.dp_attention > 1 else 1,
            dp_attention=cand.dp_attention, replicas=r, devices=r * cand.devices,
            instances=sig(r * cand.devices / inst.devices, 3), max_running=cand.slots,
            weights_dtype=cast(WeightDtype, cand.weights_dtype), kv_dtype=cast(KvDtype, cand.kv_dtype), requests_per_s=sig(load),
            capacity_requests_per_s=sig(cand.capacity_rps * r),
            utilisation=sig(load / max(cand.capacity_rps * r, 1e-12), 3), ttft_ms=sig(ttft),
            tpot_ms=sig(tpot) if cand.tpot_ms is not None else None,
            usd_per_hour=money(usd), usd_per_month=money(usd * hours),
            efficiency_calibrated=cat.efficiency_for(cat.device(cand.hardware), efficiency_key).calibrated,
        ))  # fmt: skip
    return out, usd_h


def build_plan(fleet: Fleet, cat: CatalogueLike, insts: list[InstanceSpec], chosen: list[tuple[Candidate, int, float]],
               instance_counts: dict[str, int], served: dict[str, float], rejected: dict[str, list[Rejected]],
               solver: Solver, warnings: list[str]) -> Plan:  # fmt: skip
    """Assemble the plan from chosen ``(candidate, replicas, share)`` triples and instance counts.

    ``share`` is the fraction of its workload's traffic routed to the candidate, or ``nan`` to split in
    proportion to capacity.
    """
    c = fleet.constraints
    by_name = {i.name: i for i in insts}
    used = {i.name: 0 for i in insts}
    for cand, r, _ in chosen:
        used[cand.instance] += r * cand.devices
    bands = error_bands(under_load=True)  # a plan promises latency percentiles at its load
    instances = []
    for name, n in sorted(instance_counts.items()):
        if n <= 0:
            continue
        inst = by_name[name]
        instances.append(Instance(
            instance_type=name, cloud=inst.cloud, region=inst.region, hardware=inst.device, count=n, devices=n * inst.devices,
            devices_used=used[name], usd_per_hour=money(n * float(inst.price(c.price_model) or 0.0)),
            price_date=inst.price_date.isoformat(),
        ))  # fmt: skip
    routed: dict[str, tuple[list[tuple[Candidate, int]], list[float]]] = {}
    by_workload: dict[str, list[tuple[Candidate, int, float]]] = {}
    for item in chosen:
        by_workload.setdefault(item[0].workload, []).append(item)
    for w in fleet.workloads:
        mine = [(cand, r) for cand, r, _ in by_workload.get(w.name, [])]
        shares = [s for _, _, s in by_workload.get(w.name, [])]
        routed[w.name] = (mine, _loads(mine, served[w.name], shares if shares and not any(np.isnan(shares)) else None))
    paid = {i.name: 0 for i in insts}  # devices each instance type's loads need: its cost is shared in proportion
    need: dict[str, list[int]] = {}
    floors = {w.name: w.min_replicas for w in fleet.workloads}
    for name, (mine, loads) in routed.items():
        need[name] = _needed_devices(mine, sum(loads), floors.get(name, 1))
        for (cand, _), n in zip(mine, need[name], strict=True):
            paid[cand.instance] += n
    for name, (mine, _) in routed.items():  # a bought type none of whose devices is needed is shared by devices used
        need[name] = [r * c.devices if paid[c.instance] == 0 else n for (c, r), n in zip(mine, need[name], strict=True)]
    paid = {t: (p if p else used[t]) for t, p in paid.items()}
    # Every deployment's percentiles at its load, in one vectorised pass per evaluation group.
    pairs = [(cand, load / r) for mine, loads in routed.values() for (cand, r), load in zip(mine, loads, strict=True)]
    flat = iter(at_rates([_replica(c) for c, _ in pairs], [rate for _, rate in pairs]))
    workloads = []
    warnings = list(warnings)
    wide = sorted({w for w, (mine, _) in routed.items() for c, _ in mine if c.dp_attention > 1})
    if wide:  # costed from the same roofline, but no published run of such a layout checks it
        warnings.append(f"workload(s) {', '.join(repr(w) for w in wide)}: data-parallel attention is costed by the roofline and the "
                        "simulator, but no published measurement of it is in the validation set: its error band is the engine "
                        "family's, unchecked for this layout")  # fmt: skip
    raw_usd_h: dict[str, float] = {}
    out_tok: dict[str, float] = {}  # output tokens per hour
    for w in fleet.workloads:
        mine, loads = routed[w.name]
        resolved = engine_for(cat, c.engine_of(w))
        engine, key = resolved.id, resolved.efficiency_key
        deps, usd_h = _deployments(mine, loads, need[w.name], [next(flat) for _ in mine], by_name, instance_counts, paid, c.price_model,
                                   cat, key,
                                   c.billed_hours())  # fmt: skip
        raw_usd_h[w.name] = usd_h
        if w.disaggregated_role == "prefill":  # one token a request: no TPOT to promise, no output tokens to price
            deps = [d.model_copy(update={"tpot_ms": None}) for d in deps]
        single = cat.model(w.model).kind != "decoder"  # an encoder's one "output" is an embedding or a score, a generic model's a result
        out_tok_h = out_tok[w.name] = served[w.name] * w.mean_output * 3600.0 if w.disaggregated_role != "prefill" and not single else 0.0
        req_h = served[w.name] * 3600.0
        ttft = max((d.ttft_ms for d in deps), default=None)
        tpot = max((d.tpot_ms for d in deps if d.tpot_ms is not None), default=None)
        workloads.append(PlanWorkload(
            name=w.name, model=w.model, engine=engine, eager=w.eager, speculative=_speculative(cat, w, warnings),
            percentile=w.slo.percentile, arrival_cv=w.arrival_cv,
            requests_per_s=None if w.rate is None else sig(w.rate), served_requests_per_s=sig(served[w.name]),
            capacity_requests_per_s=sig(sum(d.capacity_requests_per_s for d in deps)), ttft_ms=ttft, tpot_ms=tpot,
            ttft_target_ms=w.slo.ttft_ms, tpot_target_ms=w.slo.tpot_ms, ttft_margin_pct=_margin(ttft, w.slo.ttft_ms),
            tpot_margin_pct=_margin(tpot, w.slo.tpot_ms), error_band_pct={k: bands[k] for k in ("ttft", "tpot") if k in bands},
            usd_per_hour=money(raw_usd_h[w.name]), usd_per_month=money(raw_usd_h[w.name] * c.billed_hours()),
            usd_per_million_output_tokens=money(usd_h / out_tok_h * 1e6) if out_tok_h > 0 else None,
            usd_per_million_requests=money(usd_h / req_h * 1e6) if req_h > 0 else None,
            disaggregated_role=w.disaggregated_role, deployments=deps, rejected_hardware=rejected.get(w.name, []),
        ))  # fmt: skip
    for k, pw in enumerate(workloads):  # a disaggregated decode pool's tokens cost both pools
        twin = pw.name.removesuffix(DECODE) + PREFILL
        if pw.disaggregated_role == "decode" and twin in raw_usd_h and pw.usd_per_million_output_tokens is not None:
            both = money((raw_usd_h[pw.name] + raw_usd_h[twin]) / out_tok[pw.name] * 1e6)
            workloads[k] = pw.model_copy(update={"usd_per_million_output_tokens": both})
    # From the catalogue's prices, not the instances' hourly figures rounded to cents (x 730 that is dollars off).
    total_h = sum(n * float(by_name[name].price(c.price_model) or 0.0) for name, n in instance_counts.items() if n > 0)
    totals = Totals(usd_per_hour=money(total_h), usd_per_month=money(total_h * c.billed_hours()),
                    devices=sum(i.devices for i in instances),
                    devices_used=sum(i.devices_used for i in instances), instances=sum(i.count for i in instances))  # fmt: skip
    return Plan(
        generated_by=f"aicap {_version()}",
        catalogue=CatalogueRef.bought(cat.version, c.price_model, (i.price_date for i in instances), cat.price_dates),
        objective=c.objective,
        hours_per_month=c.billed_hours(),
        solver=solver,
        totals=totals,
        instances=instances,
        workloads=workloads,
        alternatives=[],
        warnings=warnings,
        inputs=fleet,
    )


def with_alternatives(plan: Plan, alternatives: list[Alternative]) -> Plan:
    """The plan with its per-device-type alternatives filled in."""
    return plan.model_copy(update={"alternatives": alternatives})
