"""The best plan on each device type the chosen plan does not use, and why it lost.

For each such device type the fleet is re-solved on that type alone (cost objective, same demand; all the
types' programs in one solve, :func:`~aicap.sizing.solve.blocks.solve_blocks`); the
row says what it would cost and names the constraint that binds: a workload it cannot carry at all (the
reason of its best layout), or the constraint that limits the capacity of its most cost-effective
layout for the workload that costs it most.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.core.plan import Alternative, Plan
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.assemble import sig
from aicap.sizing.plan.candidates import Candidate, cost_per_rps, prune
from aicap.sizing.plan.generate import instance_filters
from aicap.sizing.plan.problem import problem_for
from aicap.sizing.solve.blocks import solve_blocks
from aicap.sizing.solve.milp import SolveStatus

ALTERNATIVE_TIME_LIMIT_S = 5.0

_EXCLUDED = ("does not run on", "serves none of", "supports none of", "no tensor-parallel degree")
_MISS = re.compile(r"(\d[\d,]*(?:\.\d+)?) ms > target (\d[\d,]*(?:\.\d+)?) ms")  # the figures _reasons writes


def closeness(reason: str) -> tuple[int, float, str]:
    """Sort key of a reason: how far along the checks its layout got, then by how much it missed.

    First a layout that passed the checks of one request and missed only at load (the TTFT percentile at the
    lightest load, or no capacity within the targets), then one that misses a target with one request (by how
    far: value over target), then one screened out on cost, a refusal (a prompt over an engine's step budget), one that does not fit
    memory, and last a device the engine or the formats rule out before any layout is tried.
    """
    m = _MISS.search(reason)
    ratio = float(m.group(1).replace(",", "")) / max(float(m.group(2).replace(",", "")), 1e-12) if m else 0.0
    if reason.endswith("at the lightest load"):
        return 0, ratio, reason
    if reason.startswith("cannot meet"):  # past the same checks, but it names no figure: after those that do
        return 0, math.inf, reason
    if m:
        return 1, ratio, reason
    if reason.startswith("screened out"):
        return 2, 0.0, reason
    if any(k in reason for k in _EXCLUDED):  # the device, engine or format rules it out before any layout is tried
        return 5, 0.0, reason
    return (4 if "does not fit" in reason else 3), 0.0, reason


def closest_reason(cands: Iterable[Candidate]) -> str | None:
    """Why the layout that came closest to serving could not (``None`` when no candidate gives a reason).

    A device is ruled out by its best layout, not its first: TP8 on L40S misses a 1.5 s TTFT target where one
    L40S misses the TPOT target by 4x and does not fit at all.
    """
    reasons = {x.reason for x in cands if x.reason}
    return min(reasons, key=closeness) if reasons else None


def filters_of(w: Workload, types: Sequence[InstanceSpec] = ()) -> str:
    """The instance filters ``w`` sets, in words (:func:`~aicap.sizing.plan.generate.instance_filters`), or the constraints.

    Given a device's instance ``types``, only the filters none of them passes (where each passes some, all of them).
    """
    given = instance_filters(w)
    failed = [text for text, passes in given if types and not any(passes(i) for i in types)]
    return "; ".join(failed or [text for text, _ in given]) or "the fleet's constraints"


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
            w = next(x for x in fleet.workloads if x.name == missing[0])
            why = closest_reason(mine[w.name]) or f"no {hw} instance type passes its filters ({filters_of(w, sub)})"
            out.append(Alternative(hardware=hw, why=f"cannot serve '{w.name}': {why}"))
            continue
        if any(w.rate is None for w in fleet.workloads):
            out.append(Alternative(hardware=hw, why="not chosen by the objective"))
            continue
        feas = prune([x for w in fleet.workloads for x in mine[w.name] if x.feasible and x.load_fraction == 1.0])
        pending.append((hw, feas))
        problems.append(problem_for(cost_only, feas, sub, min(time_limit_s, ALTERNATIVE_TIME_LIMIT_S)))
    for (hw, feas), alt in zip(pending, solve_blocks(problems), strict=True):  # one solver setup for them all
        if not alt.has_solution:
            if alt.status is not SolveStatus.INFEASIBLE:
                out.append(Alternative(hardware=hw, why="no plan found within the solver's time limit for alternatives"))
                continue
            # Every candidate here serves its workload alone, so without a budget only the instance caps can bind.
            capped = sorted(i.name for i in insts if i.device == hw and i.name in c.availability)
            cap = f"the availability caps ({', '.join(capped)})" if capped else (
                f"the cap of {c.max_instances_per_type:,} instances per type (constraints.max_instances_per_type)")  # fmt: skip
            out.append(Alternative(hardware=hw, why=f"no plan within {cap}"))
            continue
        hours = c.billed_hours()
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
            dpa = f" DP-attn {best.dp_attention}" if best.dp_attention > 1 else ""
            why = (f"costs more for the same traffic; for '{worst}' its most cost-effective layout (TP{best.tp}·PP{best.pp}{dpa}, "
                   f"{best.weights_dtype}) carries {sig(best.capacity_rps, 3):,g} req/s per replica, "
                   f"limited by the {best.binding}")  # fmt: skip
        else:
            why = "not chosen by the objective"
        out.append(
            Alternative(hardware=hw, usd_per_month=round(alt.cost_per_hour * hours, 2), delta_usd_per_month=round(delta, 2), why=why)
        )
    out.sort(key=lambda a: (a.usd_per_month is None, a.usd_per_month or 0.0, a.hardware))
    return out
