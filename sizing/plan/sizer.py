"""``aicap size`` as a library call: fleet → candidates → integer program → plan.

:func:`size` filters the instance catalogue by the fleet's constraints, builds every candidate of
every workload (:mod:`aicap.sizing.plan.candidates`), explains infeasibility in numbers before solving,
solves the integer program (:mod:`aicap.sizing.solve.milp`) and returns a :class:`~aicap.sizing.core.plan.Plan`
with, per device type, the best alternative that lost and why.
"""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.core.plan import Alternative, Plan
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.candidates import Candidate, candidates_for, prune
from aicap.sizing.solve.milp import Problem, Solution, solve

GIB = 2**30


def allowed_instances(fleet: Fleet, cat: Any) -> list[InstanceSpec]:
    """Instance types that meet the constraints and have a price under the pricing model."""
    c = fleet.constraints
    for h in c.hardware or []:
        cat.device(h)
    out = []
    for inst in sorted(cat.instances.values(), key=lambda i: (i.cloud, i.name)):
        if c.clouds and inst.cloud not in c.clouds:
            continue
        if c.regions and inst.region not in c.regions:
            continue
        if c.instance_families and inst.family not in c.instance_families:
            continue
        if c.hardware and inst.device not in c.hardware:
            continue
        if inst.price(c.pricing) is None:
            continue
        if c.availability.get(inst.name, 1) == 0:
            continue
        out.append(inst)
    for name in c.availability:
        cat.instance(name)
    if not out:
        raise InfeasibleError(
            f"no instance type matches the constraints (clouds={c.clouds or 'any'}, regions={c.regions or 'any'}, "
            f"families={c.instance_families or 'any'}, hardware={c.hardware or 'any'}, pricing={c.pricing})"
        )
    return out


def _traffic(w: Workload) -> float:
    if w.requests_per_s is not None:
        return w.requests_per_s
    assert w.tokens_per_s is not None
    return w.tokens_per_s / max(w.mean_output, 1.0)


def _diagnose(w: Workload, model: Any, cands: list[Candidate], insts: list[InstanceSpec], cat: Any) -> str:
    """One line naming the binding constraint for a workload with no feasible candidate."""
    reasons = {c.reason for c in cands if c.reason}
    memory_bound = all("memory" in r or "tensor-parallel" in r or "supports none" in r for r in reasons)
    if memory_bound:
        from aicap.sizing.perf.describe import params

        total, _ = params(model)
        smallest = min((1.0 if p in {"fp8", "int8"} else 0.5 if p == "int4" else 2.0) for p in w.precisions)
        need = total * smallest / GIB
        best = max(insts, key=lambda i: i.devices * cat.device(i.device).memory_gib)
        dev = cat.device(best.device)
        return (f"workload '{w.name}': {model.id} needs ≥ {need:,.0f} GiB for weights alone at {min(w.precisions, key=len)} "
                f"in one fast-link domain, plus KV cache for {w.max_context} tokens; the largest allowed instance "
                f"({best.name}) has {best.devices}×{dev.memory_gib:g} GiB")  # fmt: skip
    best_ttft = min((c.ttft_ms for c in cands if c.batch >= 1), default=None)
    best_tpot = min((c.tpot_ms for c in cands if c.tpot_ms is not None and c.tpot_ms > 0), default=None)
    parts = []
    if w.slo.tpot_ms is not None and best_tpot is not None and best_tpot > w.slo.tpot_ms:
        parts.append(f"best achievable TPOT is {best_tpot:.0f} ms > target {w.slo.tpot_ms:g} ms")
    if w.slo.ttft_ms is not None and best_ttft is not None and best_ttft > w.slo.ttft_ms:
        parts.append(f"best achievable TTFT is {best_ttft:.0f} ms > target {w.slo.ttft_ms:g} ms")
    detail = "; ".join(parts) or "; ".join(sorted(reasons))[:300]
    return f"workload '{w.name}' ({model.id}) has no deployment meeting its targets on the allowed instances: {detail}"


def _problem(fleet: Fleet, feasible: list[Candidate], insts: list[InstanceSpec], demand: dict[str, float], objective: str,
             budget: float | None, single: bool) -> Problem:  # fmt: skip
    names = [w.name for w in fleet.workloads]
    types = [i.name for i in insts]
    slos = {w.name: w.slo for w in fleet.workloads}

    def latency(c: Candidate) -> float:
        s = slos[c.workload]
        return c.ttft_ms / (s.ttft_ms or 1000.0) + ((c.tpot_ms or 0.0) / (s.tpot_ms or 100.0))

    return Problem(
        workloads=names, demand=[demand[n] for n in names],
        cand_workload=[names.index(c.workload) for c in feasible], cand_type=[types.index(c.instance) for c in feasible],
        cand_devices=[c.devices for c in feasible], cand_capacity=[c.capacity_rps for c in feasible],
        cand_latency=[latency(c) for c in feasible], types=types, type_devices=[i.devices for i in insts],
        type_price=[float(i.price(fleet.constraints.pricing) or 0.0) for i in insts], type_group=[i.device for i in insts],
        type_cap=[fleet.constraints.availability.get(i.name) for i in insts], budget_per_hour=budget, objective=objective,
        single_type=single,
    )  # fmt: skip


def size(fleet: Fleet, cat: Any, *, alternatives: bool = True) -> Plan:
    """Size a fleet: the cheapest (or fastest, or most-serving) set of whole instances.

    Raises
    ------
    InfeasibleError
        With the binding constraint: memory, latency target, availability caps or budget.
    """
    insts = allowed_instances(fleet, cat)
    c = fleet.constraints
    budget = None if c.budget_usd_per_month is None else c.budget_usd_per_month / c.hours_per_month
    all_cands: dict[str, list[Candidate]] = {w.name: [] for w in fleet.workloads}
    demand = {}
    by_device: dict[str, list[InstanceSpec]] = {}
    for inst in insts:
        by_device.setdefault(inst.device, []).append(inst)
    by_model: dict[str, list[Workload]] = {}
    for w in fleet.workloads:
        model = cat.model(w.model)
        longest = w.max_context if model.kind == "decoder" else w.max_input
        if longest > getattr(model, "max_context", float("inf")):
            raise InputError(f"workload '{w.name}': {longest} tokens exceeds {model.id}'s max context of {model.max_context}")
        demand[w.name] = _traffic(w)
        by_model.setdefault(w.model, []).append(w)
    for ref, ws in by_model.items():
        model = cat.model(ref)
        for dev_id, group in by_device.items():
            dev = cat.device(dev_id)
            for name, cands in candidates_for(ws, model, group, dev, cat.efficiency_for(dev), cat.runtime_spec).items():
                all_cands[name] += cands
    for w in fleet.workloads:
        if not any(x.feasible for x in all_cands[w.name]):
            raise InfeasibleError(_diagnose(w, cat.model(w.model), all_cands[w.name], insts, cat))
    feasible = prune([x for w in fleet.workloads for x in all_cands[w.name] if x.feasible])
    sol = solve(_problem(fleet, feasible, insts, demand, c.objective, budget if c.objective != "cost" else None, c.single_type))
    if sol.status != "optimal":
        raise InfeasibleError(_why_milp_failed(fleet, feasible, insts, demand, c.single_type))
    if c.objective == "cost" and budget is not None and sol.cost_per_hour > budget * (1 + 1e-9):
        raise InfeasibleError(f"budget ${c.budget_usd_per_month:,.0f}/month is below the cheapest plan, "
                              f"${sol.cost_per_hour * c.hours_per_month:,.0f}/month")  # fmt: skip
    if c.objective == "throughput" and sum(sol.served) <= 0:
        raise InfeasibleError(f"budget ${c.budget_usd_per_month:,.0f}/month buys no instance that serves any workload; "
                              "raise the budget or allow cheaper instance types")  # fmt: skip
    plan = Plan.build(fleet, cat, insts, feasible, sol, demand)
    for doc in plan.workloads:
        # Device types that cannot carry this workload at all, each with the reason of its best layout.
        ok = {x.hardware for x in all_cands[doc["name"]] if x.feasible}
        why: dict[str, str] = {}
        for x in all_cands[doc["name"]]:
            if x.hardware not in ok and x.reason:
                why.setdefault(x.hardware, x.reason)
        doc["rejected_hardware"] = [{"hardware": h, "reason": r} for h, r in sorted(why.items())]
    if alternatives:
        plan.alternatives = _alternatives(fleet, cat, insts, all_cands, demand, plan, sol)
    return plan


def _why_milp_failed(fleet: Fleet, feasible: list[Candidate], insts: list[InstanceSpec], demand: dict[str, float], single: bool) -> str:
    probe = solve(_problem(fleet, feasible, insts, demand, "cost", None, single)._replace_caps())
    if probe.status == "optimal" and fleet.constraints.availability:
        caps = ", ".join(f"{k} ≤ {v}" for k, v in sorted(fleet.constraints.availability.items()))
        need = {insts[t].name: n for t, n in enumerate(probe.instances) if n}
        return f"availability caps bind ({caps}); without caps the cheapest plan needs {need}"
    if probe.status == "optimal" and fleet.constraints.budget_usd_per_month is not None:
        return (f"budget ${fleet.constraints.budget_usd_per_month:,.0f}/month is below the cheapest plan, "
                f"${probe.cost_per_hour * fleet.constraints.hours_per_month:,.0f}/month")  # fmt: skip
    return "no combination of the allowed instances meets every workload's demand" + (" with a single device type" if single else "")


def _alternatives(fleet: Fleet, cat: Any, insts: list[InstanceSpec], all_cands: dict[str, list[Candidate]], demand: dict[str, float],
                  plan: Plan, sol: Solution) -> list[Alternative]:  # fmt: skip
    used = {d["hardware"] for w in plan.workloads for d in w["deployments"]}
    out = []
    for hw in sorted({i.device for i in insts} - used):
        sub = [i for i in insts if i.device == hw]
        feas = prune([x for w in fleet.workloads for x in all_cands[w.name] if x.feasible and x.hardware == hw])
        missing = [w.name for w in fleet.workloads if not any(x.workload == w.name for x in feas)]
        if missing:
            reasons = sorted({x.reason or "" for x in all_cands[missing[0]] if x.hardware == hw} - {""})
            out.append(Alternative(hw, None, None, f"cannot serve '{missing[0]}': {reasons[0] if reasons else 'no candidate'}"))
            continue
        alt = solve(_problem(fleet, feas, sub, demand, "cost", None, False))
        if alt.status != "optimal":
            out.append(Alternative(hw, None, None, "no feasible packing within availability caps"))
            continue
        hours = fleet.constraints.hours_per_month
        delta = (alt.cost_per_hour - sol.cost_per_hour) * hours
        out.append(Alternative(hw, alt.cost_per_hour * hours, delta, "costs more for the same traffic" if delta > 0 else
                               "not chosen by the objective"))  # fmt: skip
    out.sort(key=lambda a: (a.usd_per_month is None, a.usd_per_month or 0.0, a.hardware))
    return out
