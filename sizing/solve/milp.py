"""The integer program that picks replicas and whole cloud instances (scipy ``milp`` with HiGHS).

Indices: workloads ``w`` (``nw``), candidates ``c`` (``nc``; a workload on an instance type with a
layout and precision), instance types ``t`` (``nt``), device groups ``g`` (device types, for
``single_type``). ``c ∈ w``: candidate ``c`` serves workload ``w``; ``c on t``: it runs on type ``t``.

Data: ``λ_w`` demand [requests/s] (``nan``: no rate, objective ``throughput`` only); ``q_c`` capacity of
one replica within its targets [requests/s]; ``d_c`` devices per replica (a power of two
dividing ``D_t``, or a multiple of ``D_t`` for a replica spanning instances); ``lat_c`` normalised
latency score [-]; ``D_t`` devices per instance; ``p_t`` price [USD/instance-hour]; ``cap_t``
instances available; ``B`` budget [USD/hour]; ``k_w`` the fewest replicas a workload keeps (its
``min_replicas``, for availability; 0 when unset).

Variables
---------
r_c : int ≥ 0
    Replicas of candidate ``c``; ``r_c ≤ max(⌈λ_w/q_c⌉, k_w)`` (more never helps the objective), capped by
    ``⌊D_t·N_t/d_c⌋`` with ``N_t = min(cap_t, ⌊B/p_t⌋)``; that cap alone bounds rate-less workloads.
n_t : int ≥ 0
    Instances of type ``t``; ``n_t ≤ M_t := min(N_t, ⌈Σ_{c on t} d_c·r̄_c / D_t⌉)``.
z_g : binary
    Device group ``g`` is the one used (``single_type`` only).
x_c : continuous in [0, 1]
    Fraction of ``w``'s traffic routed to ``c`` (objective ``latency`` only).
s_w : continuous ≥ 0
    Requests/s served (objective ``throughput`` only); ``s_w ≤ λ_w`` when a rate is given.
y_k : binary
    Cover ``k`` of workload ``w`` is its plan (``cost`` only, for the workloads :mod:`aicap.sizing.solve.covers`
    enumerates; their ``r_c`` are then ``Σ_k y_k·r_{kc}`` and leave the program).

Constraints
-----------
demand (cost)
    ``Σ_{c∈w} q_c·r_c ≥ λ_w`` [requests/s].
covers (cost)
    ``Σ_{k∈w} y_k = 1`` for a covered workload (its demand row is then met by construction).
packing
    ``Σ_{c on t} d_c·r_c + Σ_k u_{kt}·y_k ≤ D_t·n_t`` [devices] (``u_{kt}``: cover ``k``'s devices of type
    ``t``); exact bin packing because replica sizes are powers of two dividing ``D_t`` or whole multiples
    of it (a replica spanning instances takes them whole).
caps, budget
    ``n_t ≤ cap_t`` (a bound); ``Σ_t p_t·n_t ≤ B`` [USD/hour] when a budget is given.
single type
    ``n_t ≤ M_t·z_{g(t)}``, ``Σ_g z_g = 1``.
routing (latency)
    ``Σ_{c∈w} x_c = 1``, ``λ_w·x_c ≤ q_c·r_c`` [requests/s].
valid inequalities (cost, latency)
    They keep the same integer solutions and tighten the LP relaxation, which cuts the solve time of
    1,000-workload fleets by about a third: the demand row's coefficients are capped, ``Σ_{c∈w} min(q_c, λ_w)·r_c ≥ λ_w``
    (a replica that carries the whole demand alone counts once), and every workload has at least
    ``Σ_{c∈w} r_c ≥ ⌈λ_w / max_{c∈w} q_c⌉`` replicas.
replica floor
    ``Σ_{c∈w} r_c ≥ k_w`` (merged with the valid inequality above under ``cost`` and ``latency``). A fleet
    with a floor above 1 skips the exact search, the candidate reduction and the cover columns below,
    whose arguments assume that a cheapest plan buys only what the demand needs: HiGHS sees every candidate.
served (throughput)
    ``s_w ≤ Σ_{c∈w} q_c·r_c`` [requests/s].

Objectives
----------
cost
    ``min Σ_t p_t·n_t`` [USD/hour].
latency (budget required)
    ``min (1/nw)·Σ_w Σ_{c∈w} x_c·lat_c``, the mean over workloads of each one's traffic-weighted
    latency score, plus a cost tie-break whose whole range is ``1e-6`` of a score unit.
throughput (budget required)
    ``max Σ_w ω_w·s_w`` with ``ω_w = 1/λ_w`` (fraction of the rate served) or, without a rate,
    ``ω_w = 1/max_{c∈w} q_c`` (served counted in best replicas), plus a cost tie-break of range ``1e-6``.

Under ``latency`` and ``throughput`` that tie-break lies within HiGHS's gap, so a second program finds the
cheapest plan whose primary objective is no worse than the first plan's (:func:`_cheapest_at`).

Tie-breaks of the cost objective (use what is paid for, then lower latency) are not objective terms:
measured on random fleets, any per-replica term (even at 1e-8 USD/hour) stops presolve from removing
columns, doubles the time to optimality and leaves 0.6-1.6 % dearer incumbents at a time limit. The
integer plan is polished instead, at the same or lower cost (:mod:`aicap.sizing.solve.polish`): under
``latency``, replicas the routing leaves without traffic are dropped (the tie-break lies within the
solver's gap); otherwise a workload's mixture of layouts on one instance type becomes the one layout that
carries the most on the same devices, where it carries more; instances left wholly idle are
dropped, then idle devices of bought instances are filled with extra replicas (free headroom), which
occupies every device that any candidate can fill.
``share`` is the latency-greedy routing (optimal for fixed replicas) under ``latency`` and
capacity-proportional otherwise; ``served`` and ``share`` are recomputed from the integer plan.

Under ``cost``, small problems are solved by the exact search of :mod:`aicap.sizing.solve.exact` (no
scipy import; HiGHS takes over when it gives up), and HiGHS sees only the candidates a cheapest plan may
need (:mod:`aicap.sizing.solve.reduce`). A workload with few minimal covers enters the program as one
binary column per cover instead of its replica counts (:mod:`aicap.sizing.solve.covers`: the same plans,
a far tighter relaxation), and large programs are priced by their relaxation before HiGHS searches them
(:mod:`aicap.sizing.solve.highs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from aicap.sizing.solve.covers import Columns, cover_columns
from aicap.sizing.solve.highs import Model, run
from aicap.sizing.solve.highs import SolveStatus as SolveStatus
from aicap.sizing.solve.highs import _stdout_to_devnull as _stdout_to_devnull
from aicap.sizing.solve.polish import _polish as _polish
from aicap.sizing.solve.polish import _route as _route
from aicap.sizing.solve.problem import F as F
from aicap.sizing.solve.problem import I as I
from aicap.sizing.solve.problem import Objective as Objective
from aicap.sizing.solve.problem import Problem as Problem
from aicap.sizing.solve.problem import _arrays, _bounds
from aicap.sizing.solve.problem import validate as validate

Method = Literal["auto", "highs", "exact"]  # see solve()

_TIE_REL = 1e-6  # range of the cost tie-break under "latency"/"throughput", in units of the primary objective


@dataclass(frozen=True, eq=False)
class Solution:
    """Solver outcome; arrays are zeros, cost 0 and ``gap`` nan when there is no solution.

    Attributes
    ----------
    status : SolveStatus
    replicas, instances : I
        ``r_c`` per candidate ``(nc,)`` and ``n_t`` per type ``(nt,)``.
    served, share : F
        Requests/s served per workload ``(nw,)`` (the demand under ``cost``/``latency``), and the fraction
        of its workload's traffic routed to each candidate ``(nc,)`` (sums to 1 per served workload).
    cost_per_hour, gap, seconds : float
        ``Σ p_t n_t`` [USD/hour]; relative gap to the best bound known, HiGHS's or, after a priced solve
        that ran out of time, the relaxation's (an upper bound once the plan is polished); wall time of
        :func:`solve`, assembly included.
    message : str
        HiGHS's message(s).
    """

    status: SolveStatus
    replicas: I
    instances: I
    served: F
    share: F
    cost_per_hour: float
    gap: float
    seconds: float
    message: str

    @property
    def has_solution(self) -> bool:
        """Whether a feasible plan came back (``OPTIMAL`` or ``TIME_LIMIT``)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT)


def _assemble(p: Problem, cols: Columns | None = None) -> Model:
    """Build the sparse constraint matrix, bounds and objective from index arrays (no per-candidate loop).

    ``cols``: cover columns (:mod:`aicap.sizing.solve.covers`; ``cost`` only), binary variables after all
    others, one per cover, ``Σ_{k∈w} y_k = 1`` for each covered workload and their devices in the packing
    rows. A covered workload's demand in ``p`` is 0 and it has no candidates, so its own rows hold trivially.
    """
    from scipy.sparse import coo_matrix

    a = _arrays(p)
    nw, nc, nt = len(a.dem), len(a.cw), len(a.td)
    ny = 0 if cols is None else len(cols.workload)
    extra = None
    if cols is not None:  # the most devices of any one cover of each workload, per type
        most = np.zeros((nw, nt), dtype=np.int64)
        np.maximum.at(most, cols.workload, cols.devices)
        extra = most.sum(axis=0).astype(np.float64)
    r_ub, n_ub = _bounds(p, a, extra)
    ginv = np.unique(a.grp, return_inverse=True)[1].ravel()
    ng = int(ginv.max()) + 1 if p.single_type else 0
    nx, ns = (nc if p.objective == "latency" else 0), (nw if p.objective == "throughput" else 0)
    N, Z = nc, nc + nt  # offsets of the blocks n, z, x and s of the variable vector
    X, S = Z + ng, Z + ng + nx
    ac, aw, at, cat = np.arange(nc), np.arange(nw), np.arange(nt), np.concatenate
    parts: list[tuple[I, I, F, F, F]] = []  # per block: local rows, columns, values, lower and upper row bounds

    def block(r: I, k: I, v: F, low: F | float, high: F | float, n: int) -> None:
        """Append ``n`` rows: entries ``(r, k, v)`` with ``r`` local to the block, bounds ``low ≤ · ≤ high``."""
        lo, hi = (np.broadcast_to(np.asarray(b, dtype=np.float64), (n,)) for b in (low, high))
        parts.append((r + sum(len(x[3]) for x in parts), k, np.asarray(v, dtype=np.float64), lo, hi))

    if p.objective == "cost":  # demand, with each coefficient capped at the demand (valid inequalities below)
        block(a.cw, ac, np.minimum(a.q, a.dem[a.cw]), a.dem, np.inf, nw)
    if p.objective != "throughput":  # at least max(⌈λ_w / max q⌉, k_w) replicas per workload
        qmax = np.zeros(nw)
        np.maximum.at(qmax, a.cw, a.q)
        block(a.cw, ac, np.ones(nc), np.maximum(np.ceil(a.dem / np.maximum(qmax, 1e-300) - 1e-9), p.floors), np.inf, nw)
    elif (p.floors > 0).any():  # throughput: only the floors k_w (serving nothing is otherwise allowed)
        block(a.cw, ac, np.ones(nc), p.floors.astype(np.float64), np.inf, nw)
    if ns:  # served ≤ capacity
        block(cat([a.cw, aw]), cat([ac, S + aw]), cat([-a.q, np.ones(nw)]), -np.inf, 0.0, nw)
    nv = S + ns
    ky, ty = (np.zeros(0, np.int64), np.zeros(0, np.int64)) if cols is None else np.nonzero(cols.devices)
    yv = np.zeros(0) if cols is None else cols.devices[ky, ty]
    block(cat([a.ct, at, ty]), cat([ac, N + at, nv + ky]), cat([a.cd, -a.td, yv]).astype(np.float64), -np.inf, 0.0, nt)  # packing
    if cols is not None:  # one cover per covered workload
        covered = np.flatnonzero(cols.covered)
        row = np.zeros(nw, dtype=np.int64)
        row[covered] = np.arange(covered.size)
        block(row[cols.workload], nv + np.arange(ny), np.ones(ny), 1.0, 1.0, covered.size)
    if p.budget_per_hour is not None:
        block(np.zeros(nt, np.int64), N + at, a.price, -np.inf, p.budget_per_hour, 1)
    if ng:  # single type
        block(cat([at, at]), cat([N + at, Z + ginv]), cat([np.ones(nt), -n_ub]), -np.inf, 0.0, nt)
        block(np.zeros(ng, np.int64), Z + np.arange(ng), np.ones(ng), 1.0, 1.0, 1)
    if nx:  # routing
        block(a.cw, X + ac, np.ones(nc), 1.0, 1.0, nw)
        block(cat([ac, ac]), cat([X + ac, ac]), cat([a.dem[a.cw], -a.q]), -np.inf, 0.0, nc)
    rows, ks, vals, lo, hi = (cat([x[i] for x in parts]) for i in range(5))
    mat = coo_matrix((vals, (rows, ks)), shape=(len(lo), nv + ny)).tocsr()
    c = np.zeros(nv + ny)
    if p.objective == "cost":
        c[N:Z] = a.price
    else:
        c[N:Z] = _TIE_REL * a.price / max(float(a.price @ n_ub), 1e-12)
    if nx:
        c[X:S] = a.lat / nw
    if ns:
        qmax = np.zeros(nw)
        np.maximum.at(qmax, a.cw, a.q)
        rated = ~np.isnan(a.dem)
        c[S:nv] = -np.where(rated, 1.0 / np.where(rated, a.dem, 1.0), np.divide(1.0, qmax, out=np.zeros(nw), where=qmax > 0))
    s_ub = np.fmin(a.dem, np.bincount(a.cw, weights=a.q * r_ub, minlength=nw))[:ns]
    integrality = cat([np.ones(Z + ng, np.uint8), np.zeros(nx + ns, np.uint8), np.ones(ny, np.uint8)])
    return Model(c, mat, lo, hi, cat([r_ub, n_ub, np.ones(ng + nx), s_ub, np.ones(ny)]), integrality)


def _formulate(p: Problem) -> tuple[Model, I, Columns | None]:
    """The program HiGHS solves: the model, the candidates it keeps as replica columns and the cover columns.

    Under ``cost`` only the candidates a cheapest plan may need stay (:mod:`aicap.sizing.solve.reduce`),
    and workloads with few minimal covers are solved by cover columns (:mod:`aicap.sizing.solve.covers`):
    their candidates leave the replica columns and their demand becomes 0 there.
    """
    from aicap.sizing.solve.reduce import cost_dominated, restricted

    # A replica floor k_w voids the reductions' premise that a cheapest plan buys only what its demand needs:
    # a floored fleet keeps every candidate as a replica column.
    useful = np.ones(len(p.cand_workload), dtype=bool) if p.has_floors else ~cost_dominated(p)  # all of them but under "cost"
    cols = cover_columns(p, useful) if p.objective == "cost" and not p.has_floors else None
    if cols is not None:
        useful &= ~cols.covered[np.asarray(p.cand_workload, dtype=np.int64)]
    keep = np.flatnonzero(useful)
    q = restricted(p, keep)
    if cols is not None:
        q = replace(q, demand=np.where(cols.covered, 0.0, np.asarray(p.demand, dtype=np.float64)))
    return _assemble(q, cols), keep, cols


def _violated(p: Problem, r: I, n: I) -> str:
    """Constraints the integer plan ``(r, n)`` violates, comma-separated ('' when it is feasible)."""
    a = _arrays(p)
    cap_w = np.bincount(a.cw, weights=a.q * r, minlength=len(a.dem))
    bad = {
        "packing": bool((np.bincount(a.ct, weights=a.cd * r, minlength=len(a.td)) > a.td * n).any()),
        "caps": bool((n > a.cap).any()),
        "budget": p.budget_per_hour is not None and float(a.price @ n) > p.budget_per_hour * (1 + 1e-6) + 1e-6,
        "single type": p.single_type and len(np.unique(a.grp[n > 0])) > 1,
        "demand": p.objective != "throughput" and bool((cap_w < a.dem * (1 - 1e-6)).any()),
        "min replicas": bool((np.bincount(a.cw, weights=r, minlength=len(a.dem)) < p.floors).any()),
    }
    return ", ".join(k for k, v in bad.items() if v)


def solve(p: Problem, *, method: Method = "auto") -> Solution:
    """Solve the integer program of the module docstring.

    Parameters
    ----------
    p : Problem
        The problem; validated by :func:`validate` first.
    method : {"auto", "highs", "exact"}
        ``auto``: the exact search of :mod:`aicap.sizing.solve.exact` where it applies (cost objective,
        small problems; it never imports scipy), else HiGHS. ``highs``: HiGHS only. ``exact``: the exact
        search only (``NO_SOLUTION`` when it gives up); both for tests and benchmarks.

    Returns
    -------
    Solution
        ``OPTIMAL`` (within ``p.mip_rel_gap``), ``TIME_LIMIT`` (incumbent, with its gap),
        ``INFEASIBLE`` (proven) or ``NO_SOLUTION`` (nothing found in time, or a solver failure).

    Raises
    ------
    ValueError
        If the problem is malformed (see :func:`validate`).
    """
    t0 = time.perf_counter()
    validate(p)
    nc, nt, nw = len(p.cand_workload), len(p.type_devices), len(p.demand)
    z = np.zeros
    if method != "highs":
        from aicap.sizing.solve.exact import solve_exact

        found = None if p.has_floors else solve_exact(p, t0)  # the exact search knows no replica floors
        if found is not None:
            return found
        if method == "exact":
            return Solution(SolveStatus.NO_SOLUTION, z(nc, np.int64), z(nt, np.int64), z(nw), z(nc), 0.0, np.nan, time.perf_counter() - t0,
                            "the exact search does not apply or gave up")  # fmt: skip
    m, keep, cols = _formulate(p)
    nk = keep.size
    ny = 0 if cols is None else len(cols.workload)

    def plan(v: F) -> tuple[I, I]:
        r = np.zeros(nc, dtype=np.int64)
        r[keep] = np.maximum(v[:nk], 0).astype(np.int64)
        if cols is not None:
            r += cols.replicas(v[len(v) - ny :], nc)
        return _polish(p, r, np.maximum(v[nk : nk + nt], 0).astype(np.int64))

    # Under the throughput objective HiGHS presolve returned wrong optima and "infeasible" for problems that
    # serving nothing satisfies (tests/sizing/test_milp.py, two budgets of one 2-workload, 2-type case), so
    # the maximising objectives solve without it; they size small, budgeted fleets.
    choice = None
    if p.objective == "cost":  # replica and cover columns; not the instances
        choice = np.ones(len(m.c), dtype=bool)
        choice[nk : nk + nt] = False
    presolve = (True, False) if p.objective == "cost" else (False,)
    left = max(p.time_limit_s - (time.perf_counter() - t0), 0.1 * p.time_limit_s)
    out = run(m, time_limit_s=left, mip_rel_gap=p.mip_rel_gap, presolve=presolve,
              accept=lambda v: _violated(p, *plan(v)), choice=choice)  # fmt: skip
    if out.x is None:
        return Solution(out.status, z(nc, np.int64), z(nt, np.int64), z(nw), z(nc), 0.0, np.nan, time.perf_counter() - t0, out.message)
    r, n = plan(out.x)
    message = out.message
    if p.objective != "cost":  # the cheapest plan at the objective HiGHS reached: its cost tie-break lies within the gap
        left = max(p.time_limit_s - (time.perf_counter() - t0), 0.1 * p.time_limit_s)
        r, n, message = _cheapest_at(p, m, r, n, plan, left, message)
    served, share = _route(p, r)
    cost = float(np.asarray(p.type_price, dtype=np.float64) @ n)
    return Solution(out.status, r, n, served, share, cost, out.gap, time.perf_counter() - t0, message)


def _primary(p: Problem, m: Model, r: I, n: I) -> tuple[F, float]:
    """The primary objective's row (``m.c`` without the cost tie-break) and its value at the plan ``(r, n)``.

    Under ``latency`` and ``throughput`` every candidate is a replica column (no reduction, no covers), so the
    variables are ``r`` (``nc``), ``n`` (``nt``), ``z`` (groups under ``single_type``), then ``x`` or ``s``,
    which are the plan's routing (:func:`_route`): ``x_c`` its shares, ``s_w`` what it serves.
    """
    nc, nt = len(r), len(n)
    row = m.c.copy()
    row[nc : nc + nt] = 0.0
    served, share = _route(p, r)
    tail = share if p.objective == "latency" else served
    v = np.zeros(len(m.c))
    v[:nc], v[nc : nc + nt], v[len(v) - len(tail) :] = r, n, tail
    return row, float(row @ v)


def _cheapest_at(p: Problem, m: Model, r: I, n: I, plan: Callable[[F], tuple[I, I]], left: float, message: str) -> tuple[I, I, str]:
    """The cheapest plan whose primary objective (``latency``, ``throughput``) is no worse than the plan ``(r, n)``'s.

    HiGHS stops within ``mip_rel_gap`` of the primary optimum, and the cost tie-break (``1e-6`` of it) lies within
    that gap, so the plan it returns may cost more than another of the same objective: a throughput plan that
    serves every request bought 4 A10G for $4,141/month where one L40S serves them for $1,359. A second program,
    ``min Σ_t p_t·n_t`` subject to the first's rows and ``c₁·v ≤ c₁·v₁`` (``c₁`` the primary row, ``v₁`` the
    plan), finds the cheapest such plan; it replaces the first where it costs less and its own primary is no worse.
    """
    from scipy.sparse import csr_matrix, vstack

    row, value = _primary(p, m, r, n)
    price = np.asarray(p.type_price, dtype=np.float64)
    c2 = np.zeros(len(m.c))
    c2[len(r) : len(r) + len(n)] = price
    bound = value + 1e-9 * max(abs(value), 1.0)
    m2 = Model(c2, vstack([m.a, csr_matrix(row)]).tocsr(), np.append(m.lo, -np.inf), np.append(m.hi, bound), m.ub, m.integrality)
    out = run(m2, time_limit_s=left, mip_rel_gap=p.mip_rel_gap, presolve=(False,), accept=lambda v: _violated(p, *plan(v)))
    if out.x is None:
        return r, n, message + "; cheapest at that objective: " + out.message
    r2, n2 = plan(out.x)
    if price @ n2 < price @ n - 1e-9 and _primary(p, m, r2, n2)[1] <= value + 1e-7 * max(abs(value), 1.0):
        return r2, n2, message + "; cheapest at that objective: " + out.message
    return r, n, message
