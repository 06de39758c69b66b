"""Plan a fleet whose demand changes by the hour: reserved, on-demand and spot capacity per period.

Steps: (1) the instance types allowed by the constraints that have an on-demand price (the reference
that ranks candidates) and a price under at least one allowed pricing model; (2) candidates exactly as
the static sizer builds them, each workload at its peak rate (a replica's capacity does not depend on
the demand), pruned and shortlisted; (3) the demand each period must cover, raised for the scale-up
lead time; (4) the integer program of :mod:`aicap.sizing.solve.periods`; (5) the same program for a
static plan at each workload's peak (one period, same pricing models) and, when on-demand is allowed
with others, for the profile on on-demand alone — the comparisons the plan reports. The static plan's
reservations seed the profile plan's search, so the profile plan never costs more than the static one.

Lead time. Capacity for hour ``h`` must be serving when the hour starts, so it is ordered ``L`` minutes
earlier: with ``ℓ = ⌈L/60⌉`` periods, period ``h`` must cover ``max(λ_h, …, λ_{h+ℓ})`` (the horizon
wraps: a day follows itself). By default ``L`` is the time to load the largest model's weights (2 bytes
a parameter) at :data:`LOAD_GB_PER_S` plus :data:`STARTUP_S`; set ``constraints.lead_time_min`` from
your own scale-up logs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.constraints import Constraints
from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.period_plan import (
    Autoscaling,
    InstanceCount,
    Period,
    PeriodPlan,
    PeriodSolver,
    PeriodTotals,
    PeriodWorkload,
    Reserved,
    UsedDeployment,
    WorkloadPromise,
)
from aicap.sizing.core.plan import CatalogueRef
from aicap.sizing.core.profile import align
from aicap.sizing.core.specs.instance import InstanceSpec
from aicap.sizing.plan.assemble import _margin, _version
from aicap.sizing.plan.candidates import Candidate, prune
from aicap.sizing.plan.chargeback import period_shares
from aicap.sizing.plan.evaluation import available_cores
from aicap.sizing.plan.generate import all_candidates
from aicap.sizing.plan.inputs import allowed_instances, check_workloads, per_item
from aicap.sizing.plan.sizer import _diagnose, bursty_warnings, deployment_key, shortlist
from aicap.sizing.solve.hour_workers import HourPool
from aicap.sizing.solve.periods import RESERVED, PeriodProblem, PeriodSolution, solve_periods

#: GB/s of vLLM's default safetensors loader: "Loading Model Weights with InstantTensor", benchmark table,
#: Qwen3-30B-A3B on one H200, 57.4 s at 1.1 GB/s (https://docs.vllm.ai/en/latest/models/extensions/instanttensor/).
LOAD_GB_PER_S = 1.1
STARTUP_S = 120.0  # an assumption, not a measurement: instance boot, container start and engine warm-up (CUDA graphs), s


@dataclass(frozen=True)
class _Setup:
    insts: list[InstanceSpec]
    cands: list[Candidate]
    demand: np.ndarray
    planned: np.ndarray
    lead_min: float
    lead: int
    warnings: list[str]


def _lead_minutes(fleet: Fleet, cat: CatalogueLike) -> float:
    if fleet.constraints.lead_time_min is not None:
        return fleet.constraints.lead_time_min
    from aicap.sizing.core.specs.model import GenericModel
    from aicap.sizing.perf.params import inventory

    def params(model_id: str) -> float:
        m = cat.model(model_id)
        return float(m.published_params) if isinstance(m, GenericModel) else float(inventory(m).total)

    biggest = max(params(w.model) for w in fleet.workloads)  # at 2 bytes a parameter (bf16)
    return (2.0 * biggest / 1e9 / LOAD_GB_PER_S + STARTUP_S) / 60.0


def _setup(fleet: Fleet, cat: CatalogueLike, derate: Mapping[str, float], jobs: int | None = None) -> _Setup:
    c = fleet.constraints
    for w in fleet.workloads:
        if w.disaggregation is not None:
            raise InputError(f"workload '{w.name}': disaggregated prefill and decode are sized for one demand rate, not hour by hour: "
                             "give requests_per_s one number (size the busiest hour), or drop disaggregation")  # fmt: skip
    insts, warnings = allowed_instances(fleet, cat, ("on_demand",))
    warnings += bursty_warnings(fleet)
    insts = [i for i in insts if any(i.price(m) is not None for m in c.pricing_models)]
    if not insts:
        raise InfeasibleError(f"no allowed instance type has an on-demand reference price and a {' or '.join(c.pricing_models)} price")
    # The shortlist is thorough here only when asked for: with every hour's program over it, the remainder carriers made
    # the week-long benchmark plan 3% cheaper but 60% slower (benchmarks/bench_periods.py: 9.3 -> 14.8 s, 2026-12-05).
    search = "thorough" if c.search == "thorough" else "fast"
    ref = fleet.model_copy(update={"constraints": c.model_copy(update={"pricing": "on_demand", "search": search})})
    every = all_candidates(ref, cat, insts, workers=jobs)
    for w in fleet.workloads:
        if not any(x.feasible for x in every[w.name]):
            raise InfeasibleError(_diagnose(w, cat, every[w.name], insts, fleet.constraints.engine_of(w)))
    cands = shortlist(ref, prune([x for w in fleet.workloads for x in every[w.name] if x.feasible]), insts)
    factors = [derate.get(deployment_key(x.workload, x.hardware, x.tp, x.pp, x.dp_attention), 1.0) for x in cands]
    cands = [replace(x, capacity_rps=x.capacity_rps * f) for x, f in zip(cands, factors, strict=True) if f > 0]  # 0 drops a layout
    serving = [i for i in insts if any(x.instance == i.name for x in cands)]
    if unpriced := [m for m in c.pricing_models if all(i.price(m) is None for i in serving)]:
        left = [m for m in c.pricing_models if m not in unpriced]
        usable = " and ".join([", ".join(left[:-1]), left[-1]] if len(left) > 1 else left) or "none"
        warnings = [*warnings, f"no instance type on the shortlist (those serving these workloads most cheaply on demand) has a "
                               f"{' or '.join(unpriced)} price: the plan may use only {usable}"]  # fmt: skip
    rates = [w.profile or (float(w.rate or 0.0),) for w in fleet.workloads]
    demand = np.array(align([tuple(p) for p in rates]), dtype=float) if any(len(p) > 1 for p in rates) else np.array(rates, dtype=float)
    lead_min = _lead_minutes(fleet, cat)
    lead = min(math.ceil(lead_min / 60.0 - 1e-9), demand.shape[1] - 1)
    planned = np.max(np.stack([np.roll(demand, -k, axis=1) for k in range(lead + 1)]), axis=0)
    return _Setup(insts, cands, demand, planned, lead_min, lead, warnings)


def _commitment(c: Constraints, models: tuple[str, ...]) -> np.ndarray:
    """Per pricing model, ``billed_hours / hours_per_month`` (1 at the default 730 hours, and for hourly models).

    A committed model bills every hour of the month however few the fleet runs, so its hourly price weighs that much more.
    """
    return np.array([c.billed_hours(m) / c.hours_per_month for m in models], dtype=float)


def _problem(fleet: Fleet, s: _Setup, demand: np.ndarray, models: tuple[str, ...], time_limit_s: float, *,
             budgeted: bool = True) -> PeriodProblem:  # fmt: skip
    c = fleet.constraints
    types = {i.name: k for k, i in enumerate(s.insts)}
    names = {w.name: k for k, w in enumerate(fleet.workloads)}
    commit = _commitment(c, models)
    price = np.array([[i.price(m) if i.price(m) is not None else np.nan for m in models] for i in s.insts], dtype=float) * commit
    budget = None if c.budget_usd_per_month is None or not budgeted else c.budget_usd_per_month / c.hours_per_month
    return PeriodProblem(
        demand=demand, min_replicas=np.array([w.min_replicas for w in fleet.workloads], dtype=np.int64),
        cand_workload=np.array([names[x.workload] for x in s.cands], dtype=np.int64),
        cand_type=np.array([types[x.instance] for x in s.cands], dtype=np.int64),
        cand_devices=np.array([x.devices for x in s.cands], dtype=np.int64),
        cand_capacity=np.array([x.capacity_rps for x in s.cands], dtype=float),
        type_devices=np.array([i.devices for i in s.insts], dtype=np.int64),
        type_cap=np.array([c.cap(i.name) for i in s.insts], dtype=float), models=models, price=price,
        spot_max_share=c.spot_max_share, spot_headroom=c.spot_headroom, budget_per_hour=budget, time_limit_s=time_limit_s,
    )  # fmt: skip


def _rate(v: float) -> str:
    """A rate as people write it: 1,000,000 and 8 and 0.25, never 1e+06."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _solved(p: PeriodProblem, what: str, pool: HourPool, seeds: tuple[np.ndarray, ...] = (), *,
            fleet: Fleet | None = None) -> PeriodSolution:  # fmt: skip
    sol = solve_periods(p, seeds=seeds, pool=pool)
    if sol.status in ("infeasible", "no_solution"):
        c = None if fleet is None else fleet.constraints
        caps = "the availability caps" if c is None else (
            f"the availability caps ({'constraints.availability, else ' if c.availability else ''}"
            f"{c.max_instances_per_type:,} instances per type: constraints.max_instances_per_type)")  # fmt: skip
        budget = ""
        if p.budget_per_hour is not None:
            budget = " or the budget" + ("" if c is None or c.budget_usd_per_month is None else f" (${c.budget_usd_per_month:,.0f}/month)")
        if sol.usd > 0 and c is not None and c.budget_usd_per_month is not None:  # within the caps: the budget binds
            month = sol.usd * c.hours_per_month / p.demand.shape[1]
            raise InfeasibleError(f"budget ${c.budget_usd_per_month:,.0f}/month is below the cheapest {what} found over every period, "
                                  f"${month:,.0f}/month" + ("" if sol.status == "infeasible" else " (the decomposition's; not proven "
                                  "the cheapest)"))  # fmt: skip
        busiest = ""
        if fleet is not None and p.demand.size:
            k = int(np.argmax(p.demand.max(axis=1)))
            h = int(np.argmax(p.demand[k]))
            when = f" in hour {h}" if p.demand.shape[1] > 1 else ""  # the static peak plan has one period, the peak
            ahead = " of the demand as planned (capacity in place one lead time before a rise)" if when else ""
            busiest = f"; its busiest demand: '{fleet.workloads[k].name}' at {_rate(float(p.demand[k, h]))} req/s{when}{ahead}"
        why = "" if sol.status == "infeasible" else " (none found by the decomposition within the time limit; not proven infeasible)"
        raise InfeasibleError(f"no {what} meets every period's demand within {caps}{budget}{why}{busiest}")
    return sol


def size_periods(fleet: Fleet, cat: CatalogueLike, *, time_limit_s: float = 10.0, derate: Mapping[str, float] | None = None,
                 jobs: int | None = None) -> PeriodPlan:  # fmt: skip
    """Plan ``fleet`` period by period (module docstring).

    ``derate`` multiplies the per-replica capacity of (workload, device, layout) candidates keyed by
    :func:`~aicap.sizing.plan.sizer.deployment_key`, and ``jobs`` is the processes the evaluation may
    use, as in :func:`aicap.sizing.plan.sizer.size`, and the hours' programs too
    (:class:`~aicap.sizing.solve.hour_workers.HourPool`; the plan is the same whatever it is).

    Raises
    ------
    InputError
        For an objective other than cost, or ``single_type``.
    InfeasibleError
        When a workload has no deployment meeting its targets, or no plan covers every period.
    """
    fleet = per_item(fleet, cat)
    check_workloads(fleet, cat)  # as a static plan checks them (a misspelt instance type, formats the engine does not serve)
    c = fleet.constraints
    if set(c.pricing_models) == {"spot"} and c.spot_max_share < 1.0:
        raise InputError(f"pricing [spot] alone cannot carry more than spot_max_share ({c.spot_max_share:g}) of the devices in use; "
                         "add on_demand or a reserved model, or set spot_max_share: 1")  # fmt: skip
    if c.objective != "cost" or c.single_type:
        given = [
            f"constraints.objective '{c.objective}'" if c.objective != "cost" else "",
            "constraints.single_type 'true'" if c.single_type else "",
        ]  # fmt: skip (quoted: the CLI finds their line)
        named = " and ".join(g for g in given if g)
        raise InputError(f"a plan over demand periods minimises cost over the whole catalogue; {named} "
                         f"{'are' if ' and ' in named else 'is'} for static plans (one rate per workload): drop "
                         f"{'them' if ' and ' in named else 'it'}, or give each workload one rate")  # fmt: skip
    s = _setup(fleet, cat, derate or {}, jobs)
    models = c.pricing_models
    hours = s.planned.shape[1]
    with HourPool(available_cores() if jobs is None else jobs) as pool:
        peak = _solved(
            _problem(fleet, s, s.planned.max(axis=1, keepdims=True), models, time_limit_s, budgeted=False),
            "static peak plan",
            pool,
            fleet=fleet,
        )
        sol = _solved(_problem(fleet, s, s.planned, models, time_limit_s), "plan", pool, seeds=(peak.reserved,), fleet=fleet)
        od = None
        if "on_demand" in models and len(models) > 1:
            od_problem = _problem(fleet, s, s.planned, ("on_demand",), time_limit_s, budgeted=False)
            od = _solved(od_problem, "on-demand plan", pool, fleet=fleet).usd
    month = c.hours_per_month / hours
    warnings = list(s.warnings)
    if sol.status == "decomposed":
        warnings.append(f"planned by decomposition (reservations, then each hour): within {100 * sol.gap:.2g}% of the lower bound")
    return _document(fleet, cat, s, sol, models, month, peak.usd * c.hours_per_month, None if od is None else od * month, warnings)


def promises(fleet: Fleet, deps: Mapping[str, list[UsedDeployment]],
             usd: Mapping[str, float | None] | None = None) -> list[WorkloadPromise]:  # fmt: skip
    """Each workload's targets and the worst latency of its deployments (:class:`~aicap.sizing.core.period_plan.WorkloadPromise`).

    ``usd``: each workload's share of the monthly cost [USD/month] (``None``: not stated).
    """
    out = []
    for w in fleet.workloads:
        share = None if usd is None else usd.get(w.name)
        mine = deps.get(w.name, [])
        ttft = max((d.ttft_ms for d in mine), default=None)
        tpot = max((d.tpot_ms for d in mine if d.tpot_ms is not None), default=None)
        out.append(WorkloadPromise(name=w.name, percentile=w.slo.percentile, ttft_ms=ttft, tpot_ms=tpot, ttft_target_ms=w.slo.ttft_ms,
                                   tpot_target_ms=w.slo.tpot_ms, ttft_margin_pct=_margin(ttft, w.slo.ttft_ms),
                                   tpot_margin_pct=_margin(tpot, w.slo.tpot_ms),
                                   usd_per_month=None if share is None else round(share, 2)))  # fmt: skip
    return out


def _autoscaling(fleet: Fleet, deps: dict[str, list[UsedDeployment]], periods: list[Period]) -> list[Autoscaling]:
    """Per deployment used, the rate and concurrency to scale on and the replica range (:class:`Autoscaling`)."""
    out = []
    for wi, w in enumerate(fleet.workloads):
        for k, d in enumerate(deps[w.name]):
            counts = [p.workloads[wi].replicas[k] for p in periods]
            latency_s = (d.ttft_ms + max(w.mean_output - 1.0, 0.0) * (d.tpot_ms or 0.0)) / 1e3
            in_flight = round(max(d.capacity_requests_per_s * latency_s, 1e-6), 3)
            out.append(Autoscaling(workload=w.name, deployment=k, instance_type=d.instance_type,
                                   requests_per_s_per_replica=d.capacity_requests_per_s, in_flight_per_replica=in_flight,
                                   min_replicas=min(counts), max_replicas=max(max(counts), 1)))  # fmt: skip
    return out


def keda_scaled_objects(plan: PeriodPlan) -> list[dict[str, object]]:
    """KEDA ``ScaledObject`` documents, one per deployment, scaling on request rate (a Prometheus query).

    Assumed, to edit for your cluster: the Kubernetes Deployment of each is named
    ``<workload>-<deployment index>`` and its pods export vLLM's ``vllm:num_requests_running`` and
    ``vllm:num_requests_waiting`` gauges. Each deployment scales on the requests its own pods hold,
    running plus waiting (pod-name prefix): a queue that grows under overload raises it, which a rate
    of completions cannot do. ``threshold`` is the plan's in-flight requests per replica at capacity, so
    KEDA keeps about ``⌈in flight / threshold⌉`` replicas, between the plan's hourly minimum (at least
    one: with no pods there is no metric to wake on) and its maximum.
    """
    docs: list[dict[str, object]] = []
    for a in plan.autoscaling:
        name = f"{a.workload}-{a.deployment}"
        docs.append({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "annotations": {"aicap/instance-type": a.instance_type,
                                                        "aicap/requests-per-s-per-replica": f"{a.requests_per_s_per_replica:g}"}},
            "spec": {"scaleTargetRef": {"name": name}, "minReplicaCount": max(a.min_replicas, 1), "maxReplicaCount": a.max_replicas,
                     "triggers": [{"type": "prometheus", "metadata": {
                         "serverAddress": "http://prometheus:9090",
                         "query": f'sum(vllm:num_requests_running{{pod=~"{name}-.*"}}) + '
                                  f'sum(vllm:num_requests_waiting{{pod=~"{name}-.*"}})',
                         "threshold": f"{a.in_flight_per_replica:g}"}}]},
        })  # fmt: skip
    return docs


def keda_floor_usd_per_month(plan: PeriodPlan, cat: CatalogueLike) -> float:
    """What :func:`keda_scaled_objects`' floor of one replica per deployment costs a month beyond the plan [USD].

    In every hour the plan runs none of a deployment, the ScaledObject still keeps one replica: at least its
    share of its instance's on-demand price, ``p_on_demand · devices_replica / devices_instance``, times those
    hours, scaled from the horizon to the month (``hours_per_month / hours``). A lower bound: a replica alone
    on an instance pays the whole instance.
    """
    extra = 0.0
    for a in plan.autoscaling:
        if a.min_replicas > 0:
            continue
        d = plan.deployments[a.workload][a.deployment]
        inst = cat.instance(d.instance_type)
        share = float(inst.price("on_demand") or 0.0) * d.devices / inst.devices
        idle = sum(1 for p in plan.periods for w in p.workloads if w.name == a.workload and w.replicas[a.deployment] == 0)
        extra += share * idle
    return extra * plan.hours_per_month / plan.hours


def _document(fleet: Fleet, cat: CatalogueLike, s: _Setup, sol: PeriodSolution, models: tuple[str, ...], month: float,
              static_month: float, od_month: float | None, warnings: list[str]) -> PeriodPlan:  # fmt: skip
    c = fleet.constraints
    hours = s.planned.shape[1]
    used = np.flatnonzero(sol.replicas.sum(axis=1) > 0)
    deps: dict[str, list[UsedDeployment]] = {w.name: [] for w in fleet.workloads}
    slot: dict[int, tuple[str, int]] = {}
    types = {i.name: t for t, i in enumerate(s.insts)}
    windex = {w.name: wi for wi, w in enumerate(fleet.workloads)}
    use = np.zeros((len(fleet.workloads), len(s.insts), hours))  # devices each workload holds of each type, hour by hour
    for k in used.tolist():
        x = s.cands[k]
        use[windex[x.workload], types[x.instance]] += x.devices * sol.replicas[k]
        slot[k] = (x.workload, len(deps[x.workload]))
        deps[x.workload].append(UsedDeployment(workload=x.workload, instance_type=x.instance, hardware=x.hardware, tp=x.tp, pp=x.pp,
                                               dp_attention=x.dp_attention, weights_dtype=x.weights_dtype, kv_dtype=x.kv_dtype,
                                               devices=x.devices, capacity_requests_per_s=round(x.capacity_rps, 6),
                                               ttft_ms=round(x.ttft_ms, 3),
                                               tpot_ms=None if x.tpot_ms is None else round(x.tpot_ms, 3)))  # fmt: skip
    res = [m in RESERVED for m in models]
    price = np.array([[i.price(m) or 0.0 for m in models] for i in s.insts], dtype=float)
    commit = _commitment(c, models)  # a commitment's hours beyond the fleet's run hours are shared over the hours run
    reserved_hour = float(np.sum(price * commit * sol.reserved))
    periods = []
    # Each type's cost hour by hour: its commitments' hourly share (reserved_hour's terms) and its hourly instances.
    cost = np.sum(price * commit * sol.reserved, axis=1)[:, None] + np.einsum("tm,tmh->th", price, sol.hourly)
    share = dict(zip(windex, (period_shares(cost, use) * month).tolist(), strict=True))
    for h in range(hours):
        held = [[int(sol.reserved[t, m] if res[m] else sol.hourly[t, m, h]) for m in range(len(models))] for t in range(len(s.insts))]
        inst = [InstanceCount(instance_type=s.insts[t].name, pricing=models[m], count=held[t][m],
                              price_date=s.insts[t].price_date.isoformat())
                for t in range(len(s.insts)) for m in range(len(models)) if held[t][m] > 0]  # fmt: skip
        wl = []
        for wi, w in enumerate(fleet.workloads):
            reps = [0] * len(deps[w.name])
            cap = 0.0
            for k in used.tolist():
                if s.cands[k].workload == w.name:
                    reps[slot[k][1]] = int(sol.replicas[k, h])
                    cap += s.cands[k].capacity_rps * int(sol.replicas[k, h])
            wl.append(PeriodWorkload(name=w.name, demand_requests_per_s=round(float(s.demand[wi, h]), 6),
                                     planned_for_requests_per_s=round(float(s.planned[wi, h]), 6), capacity_requests_per_s=round(cap, 6),
                                     replicas=reps))  # fmt: skip
        hourly = float(np.sum(price * sol.hourly[:, :, h]))
        periods.append(Period(start_hour=h, usd_per_hour=round(reserved_hour + hourly, 4), instances=inst, workloads=wl))
    total = sol.usd * month
    reserved = [Reserved(instance_type=s.insts[t].name, pricing=models[m], count=int(sol.reserved[t, m]),
                         price_date=s.insts[t].price_date.isoformat(),
                         usd_per_month=round(float(price[t, m] * sol.reserved[t, m]) * c.billed_hours(models[m]), 2))
                for t in range(len(s.insts)) for m in range(len(models)) if res[m] and sol.reserved[t, m] > 0]  # fmt: skip
    devices = [sum(s.insts[t].devices * (int(sol.reserved[t].sum()) + int(sol.hourly[t, :, h].sum())) for t in range(len(s.insts)))
               for h in range(hours)]  # fmt: skip
    totals = PeriodTotals(usd_per_month=round(total, 2), static_peak_usd_per_month=round(static_month, 2),
                          on_demand_only_usd_per_month=None if od_month is None else round(od_month, 2),
                          savings_vs_static_pct=round(100.0 * (1.0 - total / static_month), 2) if static_month > 0 else 0.0,
                          reserved=reserved, peak_devices=max(devices, default=0))  # fmt: skip
    return PeriodPlan(
        autoscaling=_autoscaling(fleet, deps, periods),
        generated_by=f"aicap {_version()}",
        catalogue=CatalogueRef.bought(cat.version, "/".join(models), _dates_of(periods, reserved, s.insts), cat.price_dates),
        hours=hours, pricing_models=list(models), lead_time_min=round(s.lead_min, 2), lead_periods=s.lead, spot_max_share=c.spot_max_share,
        spot_headroom=c.spot_headroom, hours_per_month=c.hours_per_month, deployments=deps,
        workloads=promises(fleet, deps, share), periods=periods, totals=totals,
        solver=PeriodSolver(status="optimal" if sol.status == "optimal" else "decomposed",
                            gap_pct=round(100 * sol.gap, 4) if np.isfinite(sol.gap) else 0.0),
        warnings=warnings,
    )  # fmt: skip


def _dates_of(periods: list[Period], reserved: list[Reserved], insts: list[InstanceSpec]) -> list[str]:
    """The price dates of the instance types the plan holds in any hour or commits to."""
    used = {i.instance_type for p in periods for i in p.instances} | {r.instance_type for r in reserved}
    return [i.price_date.isoformat() for i in insts if i.name in used]
