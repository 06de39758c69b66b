"""The integer program that picks replicas and whole instances (scipy ``milp``, HiGHS).

Variables: integer replicas ``r_c ≥ 0`` per feasible candidate ``c`` (a workload on an instance type
with a layout and precision) and integer instances ``n_t ≥ 0`` per instance type ``t``.

Constraints:

* demand: ``Σ_{c∈w} q_c · r_c ≥ λ_w`` for every workload ``w`` (``q_c``: sustainable requests/s of
  one replica; objective ``throughput`` relaxes this to served ``s_w ≤ λ_w``);
* packing: ``Σ_{c on t} d_c · r_c ≤ D_t · n_t``: replicas of any workloads share an instance type's
  devices; since every replica size is a power of two dividing ``D_t``, the device count is an exact
  bin-packing condition;
* availability: ``n_t ≤ cap_t``; budget: ``Σ p_t · n_t ≤ budget`` (USD/hour);
* single type: binaries ``z_g`` per device type, ``n_t ≤ M · z_{g(t)}``, ``Σ z_g = 1``.

Objectives: ``cost`` minimises ``Σ p_t n_t`` (ties go to fewer devices, then lower latency); ``latency`` minimises the
demand-weighted ``Σ_c r_c q_c/λ_w · (TTFT_c/TTFT*_w + TPOT_c/TPOT*_w)`` within the budget;
``throughput`` maximises ``Σ_w s_w / λ_w`` within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_TIE = 1e-6


@dataclass(frozen=True)
class Problem:
    """A solver-ready problem: candidates (flattened), instance types and limits."""

    workloads: list[str]
    demand: list[float]
    cand_workload: list[int]
    cand_type: list[int]
    cand_devices: list[int]
    cand_capacity: list[float]
    cand_latency: list[float]
    types: list[str]
    type_devices: list[int]
    type_price: list[float]
    type_group: list[str]
    type_cap: list[int | None]
    budget_per_hour: float | None = None
    objective: str = "cost"
    single_type: bool = False

    def _replace_caps(self) -> Problem:
        """The same problem without availability caps or budget (for explaining infeasibility)."""
        from dataclasses import replace

        return replace(self, type_cap=[None] * len(self.types), budget_per_hour=None, objective="cost")


@dataclass
class Solution:
    """Solver outcome: ``status`` is ``optimal`` or ``infeasible``; counts per candidate and type."""

    status: str
    replicas: list[int] = field(default_factory=list)
    instances: list[int] = field(default_factory=list)
    served: list[float] = field(default_factory=list)
    cost_per_hour: float = 0.0
    message: str = ""


def _upper_bounds(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    r_ub = np.array([np.ceil(p.demand[w] / max(q, 1e-12)) for w, q in zip(p.cand_workload, p.cand_capacity, strict=True)])
    need = np.zeros(len(p.types))
    for c, t in enumerate(p.cand_type):
        need[t] += r_ub[c] * p.cand_devices[c]
    n_ub = np.ceil(need / np.array(p.type_devices, dtype=float))
    caps = np.array([np.inf if c is None else c for c in p.type_cap], dtype=float)
    return r_ub, np.minimum(n_ub, caps)


def solve(p: Problem) -> Solution:
    """Solve the integer program (see module docstring)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    nc, nt, nw = len(p.cand_type), len(p.types), len(p.workloads)
    groups = sorted(set(p.type_group)) if p.single_type else []
    ng = len(groups)
    ns = nw if p.objective == "throughput" else 0
    nv = nc + nt + ng + ns
    r_ub, n_ub = _upper_bounds(p)
    price = np.array(p.type_price, dtype=float)
    c = np.zeros(nv)
    if p.objective == "cost":
        c[nc : nc + nt] = price
        # Ties between equal-cost plans go to fewer devices, then to lower latency.
        c[:nc] = _TIE * np.array(p.cand_devices, dtype=float) + _TIE * 1e-2 * np.array(p.cand_latency, dtype=float)
    elif p.objective == "latency":
        c[:nc] = [p.cand_capacity[k] / p.demand[p.cand_workload[k]] * p.cand_latency[k] for k in range(nc)]
        c[nc : nc + nt] = _TIE * price
    else:
        c[nc + nt + ng :] = [-1.0 / d for d in p.demand]
        c[nc : nc + nt] = _TIE * price
    rows = nw + nt + (1 if p.budget_per_hour is not None else 0) + (nt + 1 if ng else 0) + (nw if ns else 0)
    a = lil_matrix((rows, nv))
    lo, hi = np.full(rows, -np.inf), np.full(rows, np.inf)
    row = 0
    for w in range(nw):  # demand (or served <= capacity)
        for k in range(nc):
            if p.cand_workload[k] == w:
                a[row, k] = p.cand_capacity[k]
        if ns:
            a[row, nc + nt + ng + w] = -1.0
            lo[row] = 0.0
        else:
            lo[row] = p.demand[w]
        row += 1
    for t in range(nt):  # packing
        for k in range(nc):
            if p.cand_type[k] == t:
                a[row, k] = p.cand_devices[k]
        a[row, nc + t] = -p.type_devices[t]
        hi[row] = 0.0
        row += 1
    if p.budget_per_hour is not None:
        for t in range(nt):
            a[row, nc + t] = price[t]
        hi[row] = p.budget_per_hour
        row += 1
    if ng:
        big = np.where(np.isfinite(n_ub), n_ub, 1e6)
        for t in range(nt):
            a[row, nc + t] = 1.0
            a[row, nc + nt + groups.index(p.type_group[t])] = -big[t]
            hi[row] = 0.0
            row += 1
        for g in range(ng):
            a[row, nc + nt + g] = 1.0
        lo[row] = hi[row] = 1.0
        row += 1
    if ns:
        for w in range(nw):
            a[row, nc + nt + ng + w] = 1.0
            hi[row] = p.demand[w]
            lo[row] = 0.0
            row += 1
    upper = np.concatenate([r_ub, np.where(np.isfinite(n_ub), n_ub, 1e9), np.ones(ng), np.array(p.demand, dtype=float)[:ns]])
    integrality = np.concatenate([np.ones(nc + nt + ng), np.zeros(ns)])
    res = milp(c, constraints=LinearConstraint(a.tocsr(), lo, hi), integrality=integrality, bounds=Bounds(np.zeros(nv), upper),
               options={"disp": False, "time_limit": 60.0, "mip_rel_gap": 1e-9})  # fmt: skip
    if res.x is None or res.status not in (0,):
        return Solution(status="infeasible", message=str(res.message))
    x = np.round(res.x[: nc + nt]).astype(int)
    served = list(res.x[nc + nt + ng :]) if ns else list(p.demand)
    return Solution("optimal", x[:nc].tolist(), x[nc:].tolist(), served, float(price @ x[nc:]), str(res.message))
