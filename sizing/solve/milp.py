"""The integer program that picks replicas and whole cloud instances (scipy ``milp`` with HiGHS).

Indices: workloads ``w`` (``nw``), candidates ``c`` (``nc``; a workload on an instance type with a
layout and precision), instance types ``t`` (``nt``), device groups ``g`` (device types, for
``single_type``). ``c ∈ w``: candidate ``c`` serves workload ``w``; ``c on t``: it runs on type ``t``.

Data: ``λ_w`` demand [requests/s] (``nan``: no rate, objective ``throughput`` only); ``q_c`` capacity of
one replica within its targets [requests/s]; ``d_c`` devices per replica (a power of two dividing
``D_t``); ``lat_c`` normalised latency score [-]; ``D_t`` devices per instance; ``p_t`` price
[USD/instance-hour]; ``cap_t`` instances available; ``B`` budget [USD/hour].

Variables
---------
r_c : int ≥ 0
    Replicas of candidate ``c``; ``r_c ≤ ⌈λ_w/q_c⌉`` (more never helps the objective), capped by
    ``⌊D_t·N_t/d_c⌋`` with ``N_t = min(cap_t, ⌊B/p_t⌋)``; that cap alone bounds rate-less workloads.
n_t : int ≥ 0
    Instances of type ``t``; ``n_t ≤ M_t := min(N_t, ⌈Σ_{c on t} d_c·r̄_c / D_t⌉)``.
z_g : binary
    Device group ``g`` is the one used (``single_type`` only).
x_c : continuous in [0, 1]
    Fraction of ``w``'s traffic routed to ``c`` (objective ``latency`` only).
s_w : continuous ≥ 0
    Requests/s served (objective ``throughput`` only); ``s_w ≤ λ_w`` when a rate is given.

Constraints
-----------
demand (cost)
    ``Σ_{c∈w} q_c·r_c ≥ λ_w`` [requests/s].
packing
    ``Σ_{c on t} d_c·r_c ≤ D_t·n_t`` [devices]; exact bin packing because replica sizes are powers of
    two dividing ``D_t``.
caps, budget
    ``n_t ≤ cap_t`` (a bound); ``Σ_t p_t·n_t ≤ B`` [USD/hour] when a budget is given.
single type
    ``n_t ≤ M_t·z_{g(t)}``, ``Σ_g z_g = 1``.
routing (latency)
    ``Σ_{c∈w} x_c = 1``, ``λ_w·x_c ≤ q_c·r_c`` [requests/s].
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

Tie-breaks of the cost objective (use what is paid for, then lower latency) are not objective terms:
measured on random fleets, any per-replica term (even at 1e-8 USD/hour) stops presolve from removing
columns, doubles the time to optimality and leaves 0.6-1.6 % dearer incumbents at a time limit. The
integer plan is polished instead, at the same or lower cost: instances left wholly idle are dropped,
then idle devices of bought instances are filled with extra replicas (free headroom; largest size
that fits first, lowest latency first), which occupies every device that any candidate can fill.
``share`` is the latency-greedy routing (optimal for fixed replicas) under ``latency`` and
capacity-proportional otherwise; ``served`` and ``share`` are recomputed from the integer plan.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
Objective = Literal["cost", "latency", "throughput"]

_TIE_REL = 1e-6  # range of the cost tie-break under "latency"/"throughput", in units of the primary objective


class SolveStatus(str, Enum):
    """Outcome of :func:`solve`; the values are plain strings."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"


@dataclass(frozen=True, eq=False)
class Problem:
    """A solver-ready problem: flattened candidates, instance types and limits (see module docstring)."""

    demand: F
    cand_workload: I
    cand_type: I
    cand_devices: I
    cand_capacity: F
    cand_latency: F
    type_devices: I
    type_price: F
    type_group: I
    type_cap: F
    budget_per_hour: float | None = None
    objective: Objective = "cost"
    single_type: bool = False
    time_limit_s: float = 20.0
    mip_rel_gap: float = 1e-4

    def without_limits(self) -> Problem:
        """The same problem without caps or budget, objective ``cost`` (to explain infeasibility).

        Raises
        ------
        ValueError
            If a workload has no rate (``nan`` demand): the cost objective needs every rate.
        """
        if np.isnan(np.asarray(self.demand, dtype=np.float64)).any():
            raise ValueError("without_limits: every workload needs a rate (no nan demand) for the cost objective")
        caps = np.full(np.shape(self.type_cap), np.inf)
        return replace(self, type_cap=caps, budget_per_hour=None, objective="cost")


@dataclass(frozen=True, eq=False)
class Solution:
    """Solver outcome; arrays are zeros (``gap`` nan) when there is no solution."""

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


def validate(p: Problem) -> None:
    """Check shapes, index ranges and values of a problem.

    Raises
    ------
    ValueError
        On any inconsistency (a programming error of the caller), with the offending field named.
    """
    ints = ("cand_workload", "cand_type", "cand_devices", "type_devices", "type_group")
    for name in (*ints, "demand", "cand_capacity", "cand_latency", "type_price", "type_cap"):
        a = np.asarray(getattr(p, name))
        if a.ndim != 1 or a.dtype.kind not in ("iu" if name in ints else "fiu"):
            raise ValueError(f"{name} must be a 1-D {'integer' if name in ints else 'numeric'} array, got {a.dtype} {a.shape}")
    nw, nc, nt = len(p.demand), len(p.cand_workload), len(p.type_devices)
    for names, n in ((("cand_type", "cand_devices", "cand_capacity", "cand_latency"), nc), (("type_price", "type_group", "type_cap"), nt)):
        for name in names:
            if len(getattr(p, name)) != n:
                raise ValueError(f"{name} has {len(getattr(p, name))} entries, expected {n}")
    if nw == 0 or nt == 0:
        raise ValueError("a problem needs at least one workload and one instance type")
    if p.objective not in ("cost", "latency", "throughput"):
        raise ValueError(f"unknown objective {p.objective!r}")
    cw, ct, cd, td = (np.asarray(getattr(p, k), dtype=np.int64) for k in ("cand_workload", "cand_type", "cand_devices", "type_devices"))
    dem, price, cap = (np.asarray(getattr(p, k), dtype=np.float64) for k in ("demand", "type_price", "type_cap"))
    q, lat = np.asarray(p.cand_capacity, dtype=np.float64), np.asarray(p.cand_latency, dtype=np.float64)
    checks: list[tuple[Callable[[], bool], str]] = [
        (lambda: bool(((cw < 0) | (cw >= nw)).any()), "cand_workload out of range"),
        (lambda: bool(((ct < 0) | (ct >= nt)).any()), "cand_type out of range"),
        (lambda: bool((np.asarray(p.type_group) < 0).any()), "type_group must be ≥ 0"),
        (lambda: bool((td < 1).any()), "type_devices must be ≥ 1"),
        (lambda: bool(((cd < 1) | ((cd & (cd - 1)) != 0)).any()), "cand_devices must be powers of two"),
        (lambda: bool((td[ct] % cd != 0).any()), "cand_devices must divide its type's device count"),
        (lambda: not bool(np.isfinite(q).all() and (q > 0).all()), "cand_capacity must be finite and > 0"),
        (lambda: not bool(np.isfinite(lat).all() and (lat > 0).all()), "cand_latency must be finite and > 0"),
        (lambda: not bool(np.isfinite(price).all() and (price >= 0).all()), "type_price must be finite and ≥ 0"),
        (lambda: bool((np.isnan(cap) | (cap < 0)).any()), "type_cap must be ≥ 0 (np.inf = uncapped)"),
        (lambda: bool((~np.isnan(dem) & ~(np.isfinite(dem) & (dem > 0))).any()), "demand must be finite and > 0, or nan"),
        (lambda: bool(np.isnan(dem).any()) and p.objective != "throughput", "nan demand (no rate) needs objective 'throughput'"),
        (lambda: p.objective != "cost" and p.budget_per_hour is None, f"objective {p.objective!r} needs budget_per_hour"),
        (lambda: p.budget_per_hour is not None and not (0 <= p.budget_per_hour < np.inf), "budget_per_hour must be finite and ≥ 0"),
        (lambda: not (p.time_limit_s > 0 and p.mip_rel_gap >= 0), "time_limit_s must be > 0 and mip_rel_gap ≥ 0"),
    ]
    for bad, msg in checks:
        if bad():
            raise ValueError(msg)
    free = (price == 0) & np.isinf(cap)
    if nc and (np.isnan(dem[cw]) & free[ct]).any():
        raise ValueError("a workload without a rate has a candidate on a free, uncapped instance type: throughput is unbounded")


@dataclass(frozen=True, eq=False)
class _Model:
    """The assembled MILP: ``min c·v`` s.t. ``lo ≤ A v ≤ hi``, ``lb ≤ v ≤ ub``; offsets of the blocks of ``v``."""

    c: F
    a: Any  # scipy.sparse.csr_matrix
    lo: F
    hi: F
    ub: F
    integrality: NDArray[np.uint8]
    nt_off: int
    s_off: int


def _bounds(p: Problem) -> tuple[F, F]:
    """Finite upper bounds of ``r_c`` and ``n_t`` (module docstring), vectorised."""
    cw, ct, cd, td = (np.asarray(getattr(p, k), dtype=np.int64) for k in ("cand_workload", "cand_type", "cand_devices", "type_devices"))
    dem, price, q = (np.asarray(getattr(p, k), dtype=np.float64) for k in ("demand", "type_price", "cand_capacity"))
    n_cap = np.floor(np.asarray(p.type_cap, dtype=np.float64))
    if p.budget_per_hour is not None:
        afford = np.divide(p.budget_per_hour, price, out=np.full(len(price), np.inf), where=price > 0)
        n_cap = np.minimum(n_cap, np.floor(afford + 1e-9))
    by_cap = np.floor(td[ct] * n_cap[ct] / cd)  # td, cd ≥ 1: no 0 × inf
    r_ub = np.fmin(np.ceil(dem[cw] / q), by_cap)  # fmin: a nan demand (no rate) takes by_cap
    need = np.ceil(np.bincount(ct, weights=cd * r_ub, minlength=len(td)) / td)
    return r_ub, np.minimum(need, n_cap)


def _assemble(p: Problem) -> _Model:
    """Build the sparse constraint matrix, bounds and objective from index arrays (no per-candidate loop)."""
    from scipy.sparse import coo_matrix

    cw, ct, cd, td = (np.asarray(getattr(p, k), dtype=np.int64) for k in ("cand_workload", "cand_type", "cand_devices", "type_devices"))
    dem, q, lat, price = (np.asarray(getattr(p, k), dtype=np.float64) for k in ("demand", "cand_capacity", "cand_latency", "type_price"))
    nw, nc, nt = len(dem), len(cw), len(td)
    r_ub, n_ub = _bounds(p)
    _, ginv = np.unique(np.asarray(p.type_group, dtype=np.int64), return_inverse=True)
    ng = int(ginv.max()) + 1 if p.single_type else 0
    nx = nc if p.objective == "latency" else 0
    ns = nw if p.objective == "throughput" else 0
    N, Z = nc, nc + nt  # offsets of the n, z, x and s blocks
    X, S = Z + ng, Z + ng + nx
    ac, aw, at = np.arange(nc), np.arange(nw), np.arange(nt)
    rows: list[I] = []
    cols: list[I] = []
    vals: list[F] = []
    lo: list[F] = []
    hi: list[F] = []

    def block(r: I, k: I, v: F, low: F, high: F) -> None:
        rows.append(r + sum(len(x) for x in lo))
        cols.append(k)
        vals.append(v)
        lo.append(low)
        hi.append(high)

    inf_w, zero_t = np.full(nw, np.inf), np.zeros(nt)
    if p.objective == "cost":
        block(cw, ac, q, np.nan_to_num(dem), inf_w)
    if ns:
        block(np.concatenate([cw, aw]), np.concatenate([ac, S + aw]), np.concatenate([-q, np.ones(nw)]), -inf_w, np.zeros(nw))
    block(np.concatenate([ct, at]), np.concatenate([ac, N + at]), np.concatenate([cd, -td]).astype(np.float64), -np.inf - zero_t, zero_t)
    if p.budget_per_hour is not None:
        block(np.zeros(nt, np.int64), N + at, price, np.array([-np.inf]), np.array([p.budget_per_hour]))
    if ng:
        block(np.concatenate([at, at]), np.concatenate([N + at, Z + ginv]), np.concatenate([np.ones(nt), -n_ub]), -np.inf - zero_t, zero_t)
        block(np.zeros(ng, np.int64), Z + np.arange(ng), np.ones(ng), np.ones(1), np.ones(1))
    if nx:
        block(cw, X + ac, np.ones(nc), np.ones(nw), np.ones(nw))
        block(np.concatenate([ac, ac]), np.concatenate([X + ac, ac]), np.concatenate([dem[cw], -q]), -np.inf - np.zeros(nc), np.zeros(nc))
    nv = S + ns
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(sum(len(x) for x in lo), nv)).tocsr()
    cap_w = np.bincount(cw, weights=q * r_ub, minlength=nw)
    qmax = np.zeros(nw)
    np.maximum.at(qmax, cw, q)
    c = np.zeros(nv)
    spend = max(float(price @ n_ub), 1e-12)
    if p.objective == "cost":
        c[N:Z] = price
    elif p.objective == "latency":
        c[X:S] = lat / nw
        c[N:Z] = _TIE_REL * price / spend
    else:
        rated = ~np.isnan(dem)
        c[S:] = -np.where(rated, 1.0 / np.where(rated, dem, 1.0), np.divide(1.0, qmax, out=np.zeros(nw), where=qmax > 0))
        c[N:Z] = _TIE_REL * price / spend
    s_ub = np.fmin(dem, cap_w)
    ub = np.concatenate([r_ub, n_ub, np.ones(ng + nx), s_ub[:ns]])
    integrality = np.concatenate([np.ones(Z + ng, np.uint8), np.zeros(nx + ns, np.uint8)])
    return _Model(c, a, np.concatenate(lo), np.concatenate(hi), ub, integrality, N, S)


def _polish(p: Problem, r: I, n: I) -> tuple[I, I]:
    """Drop wholly idle instances, then fill idle devices with extra replicas (largest size, lowest latency first)."""
    ct, cd, td = (np.asarray(getattr(p, k), dtype=np.int64) for k in ("cand_type", "cand_devices", "type_devices"))
    idle = td * n - np.bincount(ct, weights=cd * r, minlength=len(td)).astype(np.int64)
    n = n - idle // td
    idle %= td
    lat = np.asarray(p.cand_latency, dtype=np.float64)
    r = r.copy()
    for size in np.unique(cd)[::-1]:  # a handful of powers of two
        idx = np.flatnonzero(cd == size)
        idx = idx[np.lexsort((lat[idx], ct[idx]))]
        types, first = np.unique(ct[idx], return_index=True)
        add = idle[types] // size
        r[idx[first]] += add
        idle[types] -= add * size
    return r, n


def _route(p: Problem, r: I) -> tuple[F, F]:
    """Served requests/s per workload and traffic shares per candidate for integer replicas ``r``."""
    cw = np.asarray(p.cand_workload, dtype=np.int64)
    dem, q = np.asarray(p.demand, dtype=np.float64), np.asarray(p.cand_capacity, dtype=np.float64)
    nw = len(dem)
    cap = q * r
    cap_w = np.bincount(cw, weights=cap, minlength=nw)
    served = np.fmin(dem, cap_w) if p.objective == "throughput" else dem.copy()
    if p.objective == "latency":  # fill lowest-latency capacity first: optimal routing for fixed replicas
        order = np.lexsort((np.asarray(p.cand_latency), cw))
        frac = cap[order] / dem[cw[order]]
        before = np.cumsum(frac) - frac
        start = np.searchsorted(cw[order], np.arange(nw))
        before -= np.concatenate([before, [0.0]])[start][cw[order]]
        x = np.empty(len(cw))
        x[order] = np.minimum(frac, np.maximum(0.0, 1.0 - before))
    else:
        x = cap.copy()
    tot = np.bincount(cw, weights=x, minlength=nw)
    share = np.divide(x, tot[cw], out=np.zeros(len(cw)), where=(tot[cw] > 0) & (served[cw] > 0))
    return served, share


def _gap(res: Any, status: SolveStatus) -> float:
    """Relative MIP gap of scipy's result: ``mip_gap``, else from ``fun`` and ``mip_dual_bound``."""
    gap = getattr(res, "mip_gap", None)
    if gap is not None and np.isfinite(gap):
        return max(float(gap), 0.0)
    fun, bound = getattr(res, "fun", None), getattr(res, "mip_dual_bound", None)
    if fun is not None and bound is not None and np.isfinite(fun) and np.isfinite(bound):
        return abs(float(fun) - float(bound)) / max(abs(float(fun)), 1e-12)
    return 0.0 if status is SolveStatus.OPTIMAL else float("nan")


@contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """Point file descriptor 1 at ``os.devnull`` (HiGHS may print from C); a no-op if fd 1 cannot be duplicated."""
    with suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        saved = -1
    if saved < 0:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        with suppress(OSError, AttributeError, TypeError):
            import ctypes

            ctypes.CDLL(None).fflush(None)  # flush C stdio buffers into devnull before restoring
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def solve(p: Problem) -> Solution:
    """Solve the integer program of the module docstring with HiGHS.

    Parameters
    ----------
    p : Problem
        The problem; validated by :func:`validate` first.

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
    from scipy.optimize import Bounds, LinearConstraint, milp

    t0 = time.perf_counter()
    validate(p)
    m = _assemble(p)
    options = {"disp": False, "time_limit": float(p.time_limit_s), "mip_rel_gap": float(p.mip_rel_gap)}
    with _stdout_to_devnull():
        res = milp(m.c, integrality=m.integrality, bounds=Bounds(np.zeros(len(m.c)), m.ub),
                   constraints=LinearConstraint(m.a, m.lo, m.hi), options=options)  # fmt: skip
    nc, nt, nw = len(p.cand_workload), len(p.type_devices), len(p.demand)
    x = getattr(res, "x", None)
    if res.status == 0 and x is not None:
        status = SolveStatus.OPTIMAL
    elif res.status == 1 and x is not None:
        status = SolveStatus.TIME_LIMIT
    elif res.status == 2:
        status = SolveStatus.INFEASIBLE
    else:
        status = SolveStatus.NO_SOLUTION
    msg = str(res.message)
    if x is None or status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION):
        z = np.zeros
        return Solution(status, z(nc, np.int64), z(nt, np.int64), z(nw), z(nc), 0.0, np.nan, time.perf_counter() - t0, msg)
    v = np.rint(np.asarray(x, dtype=np.float64))
    r, n = _polish(p, np.maximum(v[:nc], 0).astype(np.int64), np.maximum(v[nc : nc + nt], 0).astype(np.int64))
    served, share = _route(p, r)
    gap = _gap(res, status)
    cost = float(np.asarray(p.type_price, dtype=np.float64) @ n)
    return Solution(status, r, n, served, share, cost, gap, time.perf_counter() - t0, msg)
