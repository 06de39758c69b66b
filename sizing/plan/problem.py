"""From candidates to the integer program's arrays, and from a failed solve to a sentence.

The program itself is :mod:`aicap.sizing.solve.milp`; this module maps the fleet's nouns onto it
(workload demand, candidate capacity and latency score, instance prices and caps) and, when no plan
exists, names the constraint that binds in numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.candidates import Candidate
from aicap.sizing.solve.milp import Problem, Solution, SolveStatus, solve

DEFAULT_TTFT_SCALE_MS = 1000.0  # latency score scale for a workload without a TTFT target
DEFAULT_TPOT_SCALE_MS = 100.0  # and without a TPOT target


def latency_scores(cands: Sequence[Candidate], fleet: Fleet) -> NDArray[np.float64]:
    """``TTFT/TTFT* + TPOT/TPOT*`` of each candidate at its load (its workload's targets, or 1 s and 100 ms where none)."""
    ttft_scale = {w.name: w.slo.ttft_ms or DEFAULT_TTFT_SCALE_MS for w in fleet.workloads}
    tpot_scale = {w.name: w.slo.tpot_ms or DEFAULT_TPOT_SCALE_MS for w in fleet.workloads}
    ttft = np.array([x.ttft_ms for x in cands], dtype=float)
    tpot = np.array([x.tpot_ms or 0.0 for x in cands], dtype=float)
    return np.asarray(ttft / np.array([ttft_scale[x.workload] for x in cands], dtype=float)
                      + tpot / np.array([tpot_scale[x.workload] for x in cands], dtype=float), dtype=np.float64)  # fmt: skip


def latency_score(c: Candidate, fleet: Fleet) -> float:
    """:func:`latency_scores` of one candidate."""
    return float(latency_scores([c], fleet)[0])


def problem_for(fleet: Fleet, cands: list[Candidate], insts: list[InstanceSpec], time_limit_s: float) -> Problem:
    """The integer program over ``cands`` and instance types ``insts``."""
    c = fleet.constraints
    names = {w.name: k for k, w in enumerate(fleet.workloads)}
    types = {i.name: k for k, i in enumerate(insts)}
    groups = {d: k for k, d in enumerate(sorted({i.device for i in insts}))}
    budget = None if c.budget_usd_per_month is None or c.objective == "cost" else c.budget_usd_per_month / c.billed_hours()
    return Problem(
        demand=np.array([np.nan if w.rate is None else w.rate for w in fleet.workloads], dtype=float),
        cand_workload=np.array([names[x.workload] for x in cands], dtype=np.int64),
        cand_type=np.array([types[x.instance] for x in cands], dtype=np.int64),
        cand_devices=np.array([x.devices for x in cands], dtype=np.int64),
        cand_capacity=np.array([x.capacity_rps for x in cands], dtype=float),
        cand_latency=np.maximum(latency_scores(cands, fleet), 1e-9),
        type_devices=np.array([i.devices for i in insts], dtype=np.int64),
        type_price=np.array([float(i.price(c.price_model) or 0.0) for i in insts], dtype=float),
        type_group=np.array([groups[i.device] for i in insts], dtype=np.int64),
        type_cap=np.array([c.cap(i.name) for i in insts], dtype=float),
        budget_per_hour=budget,
        objective=c.objective,
        single_type=c.single_type,
        time_limit_s=time_limit_s,
        min_replicas=np.array([w.min_replicas for w in fleet.workloads], dtype=np.int64)
        if any(w.min_replicas > 1 for w in fleet.workloads)
        else None,
    )


def describe_failure(fleet: Fleet, cands: list[Candidate], insts: list[InstanceSpec], prob: Problem, sol: Solution) -> str:
    """Why the program has no plan: caps, budget, single type, or the time limit — in numbers."""
    c = fleet.constraints
    if sol.status == SolveStatus.NO_SOLUTION:
        return (f"no plan found within the solver's {prob.time_limit_s:g} s time limit; this is not proven infeasible: "
                "narrow the fleet (clouds, hardware) or split it")  # fmt: skip
    probe = solve(prob.without_limits())
    if probe.has_solution:
        over = [(insts[t], int(n)) for t, n in enumerate(probe.instances) if n > prob.type_cap[t]]
        if over:
            inst, n = max(over, key=lambda x: x[1])
            user = inst.name in c.availability
            cap = c.cap(inst.name)
            default = "" if user or "max_instances_per_type" in c.model_fields_set else ", the default max_instances_per_type"
            msg = (f"availability caps bind: the cheapest plan without caps needs {n:,} × {inst.name} "
                   f"(cap {cap:,.0f}{default})")  # fmt: skip
            # The workload that holds most of those devices is the one to look at (not the one with the largest rate: a
            # 100 req/s embedding beside a 70B model that needs thousands of slow replicas).
            if user:
                return msg
            t = insts.index(inst)
            held = np.zeros(len(fleet.workloads))
            on_t = prob.cand_type == t
            np.add.at(held, prob.cand_workload[on_t], probe.replicas[on_t] * prob.cand_devices[on_t])
            k = int(np.argmax(held))
            top = fleet.workloads[k]
            share = held.max() / max(held.sum(), 1)
            if top.min_replicas > 1 and int(probe.replicas[prob.cand_workload == k].sum()) <= top.min_replicas:  # its floor, not its rate
                return (msg + f"; workload '{top.name}' holds {share:.0%} of their devices to keep its min_replicas of "
                        f"{top.min_replicas:,} (its {top.rate or 0.0:,.6g} requests/s alone need fewer): lower min_replicas, or "
                        "raise the cap (availability, max_instances_per_type) if that many replicas are meant")  # fmt: skip
            msg += (f"; workload '{top.name}' holds {share:.0%} of their devices at "
                    f"{top.rate or 0.0:,.6g} requests/s — is that a rate per second (not per minute, hour or day), and can its "
                    "targets be met on this hardware? Raise the cap (availability, max_instances_per_type) if the demand is "
                    "real")  # fmt: skip
            return msg
        if c.budget_usd_per_month is not None:
            return (f"budget ${c.budget_usd_per_month:,.0f}/month is below the cheapest plan, "
                    f"${probe.cost_per_hour * c.billed_hours():,.0f}/month")  # fmt: skip
    if c.single_type:
        return "no single device type serves every workload within the availability caps"
    return "no combination of the allowed instances meets every workload's demand within the availability caps"
