"""The best plan on each device type the chosen plan does not use, and why it lost.

For each such device type the fleet is re-solved on that type alone (cost objective, same demand; all the
types' programs in one solve, :func:`~aicap.sizing.solve.blocks.solve_blocks`); the
row says what it would cost and names the constraint that binds: a workload it cannot carry at all (the
reason of its best layout), or the constraint that limits the capacity of its most cost-effective
layout for the workload that costs it most.
"""

from __future__ import annotations

from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.plan import Alternative, Plan
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.candidates import Candidate, cost_per_rps, prune
from aicap.sizing.plan.problem import problem_for
from aicap.sizing.solve.blocks import solve_blocks

ALTERNATIVE_TIME_LIMIT_S = 5.0


def alternatives(fleet: Fleet, insts: list[InstanceSpec], all_cands: dict[str, list[Candidate]], plan: Plan,
                 time_limit_s: float) -> list[Alternative]:  # fmt: skip
    """One :class:`Alternative` per allowed device type the plan does not use, cheapest first."""
    used = {d.hardware for w in plan.workloads for d in w.deployments}
    by_name = {i.name: i for i in insts}
    c = fleet.constraints
    cost_only = fleet.model_copy(update={"constraints": c.model_copy(update={"objective": "cost", "single_type": False})})
    out: list[Alternative] = []
    pending: list[tuple[str, list[Candidate]]] = []
    problems = []
    by_hw: dict[str, dict[str, list[Candidate]]] = {}  # device type -> workload -> its candidates there, in one pass
    for w in fleet.workloads:
        for x in all_cands[w.name]:
            by_hw.setdefault(x.hardware, {}).setdefault(w.name, []).append(x)
    for hw in sorted({i.device for i in insts} - used):
        sub = [i for i in insts if i.device == hw]
        there = by_hw.get(hw, {})
        mine = {w.name: there.get(w.name, []) for w in fleet.workloads}
        missing = [w.name for w in fleet.workloads if not any(x.feasible for x in mine[w.name])]
        if missing:
            reasons = sorted({x.reason for x in mine[missing[0]] if x.reason})
            out.append(Alternative(hardware=hw, why=f"cannot serve '{missing[0]}': {reasons[0] if reasons else 'no candidate'}"))
            continue
        if any(w.rate is None for w in fleet.workloads):
            out.append(Alternative(hardware=hw, why="not chosen by the objective"))
            continue
        feas = prune([x for w in fleet.workloads for x in mine[w.name] if x.feasible and x.load_fraction == 1.0])
        pending.append((hw, feas))
        problems.append(problem_for(cost_only, feas, sub, min(time_limit_s, ALTERNATIVE_TIME_LIMIT_S)))
    for (hw, feas), alt in zip(pending, solve_blocks(problems), strict=True):  # one solver setup for them all
        if not alt.has_solution:
            out.append(Alternative(hardware=hw, why="no feasible packing within the availability caps"))
            continue
        hours = c.hours_per_month
        delta = (alt.cost_per_hour * hours) - plan.totals.usd_per_month
        if delta > 0:
            spend: dict[str, float] = {}
            for x, r in zip(feas, alt.replicas, strict=True):
                if r > 0:
                    spend[x.workload] = (
                        spend.get(x.workload, 0.0) + r * cost_per_rps(x, by_name[x.instance], c.price_model) * x.capacity_rps
                    )
            worst = max(spend, key=lambda k: spend[k])
            best = min((x for x in feas if x.workload == worst), key=lambda x: cost_per_rps(x, by_name[x.instance], c.price_model))
            why = (f"costs more for the same traffic; for '{worst}' its most cost-effective layout (TP{best.tp}·PP{best.pp}, "
                   f"{best.weights_dtype}) carries {best.capacity_rps:,.3g} req/s per replica, limited by the {best.binding}")  # fmt: skip
        else:
            why = "not chosen by the objective"
        out.append(
            Alternative(hardware=hw, usd_per_month=round(alt.cost_per_hour * hours, 2), delta_usd_per_month=round(delta, 2), why=why)
        )
    out.sort(key=lambda a: (a.usd_per_month is None, a.usd_per_month or 0.0, a.hardware))
    return out
