"""How HiGHS is called: one MIP solve with its presolve fallback, and cost programs priced by their relaxation first.

:func:`run` solves an assembled :class:`Model` (``min c·v`` s.t. ``lo ≤ A v ≤ hi``, ``0 ≤ v ≤ ub``,
some ``v`` integer). Given the *choice* columns (a workload's replicas or covers; not the instances),
it first solves the LP relaxation, with bound ``L`` and reduced costs ``ρ_j ≥ 0`` of the columns at 0.
Any plan that uses column ``j`` costs at least ``L + ρ_j`` (LP duality: ``c·v ≥ L + Σ_j ρ_j·v_j`` for
every feasible ``v``, and ``v_j ≥ 1``). Then:

1. The *restricted* program, where choice columns with ``ρ_j > δ`` are fixed at 0
   (``δ = 8·gap·|L|``, ``gap`` the relative MIP gap asked for), is solved: ``U`` its plan's cost.
2. If ``U − L ≤ δ``, no plan using a fixed column can beat ``U``, so ``U`` is as good as the whole
   program's optimum within the restricted solve's gap: done.
3. Otherwise the columns with ``ρ_j > U − L`` (reduced-cost fixing: they cannot be in a plan cheaper
   than ``U``) are fixed and the rest solved; the cheaper of the two plans is returned.

On the 1,000-workload benchmark the restricted program keeps about 60% of the columns and step 2
proves its plan optimal: HiGHS takes about 1.6 s instead of 3-8 s (its time on the whole program varies
that much with the random seed, almost all of it spent finding good plans, not bounding them). The
factor 8 covers the integrality gaps of the benchmark fleets (5.3e-4 of ``L`` at 1,000 workloads, 7.5e-4
at 600): with ``δ = 2·gap·|L|`` the restricted program (a quarter of the columns, 0.5-0.7 s) no longer
proves its plan there and step 3 re-solves half the columns (1.2-1.7 s more).
Any failure of the first steps (an LP that is not solved, a restricted program without a plan) falls
back to solving the whole program. Programs with fewer than ``PRICING_MIN_COLUMNS`` choice columns are
solved whole: there the relaxation is weaker (a 100-workload fleet's LP bound is 1.7% under its optimum,
against 0.01% at 1,000), so step 3 runs nearly the whole program anyway.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from enum import Enum
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
_DELTA = 8.0  # the restricted program keeps choice columns with ρ ≤ _DELTA·gap·|L| (module docstring: why 8)
PRICING_MIN_COLUMNS = 4096  # fewer choice columns: HiGHS alone is faster (100 workloads: 0.09 s alone, 0.2 s priced)


class SolveStatus(str, Enum):
    """Outcome of a solve; the values are plain strings."""

    OPTIMAL = "optimal"  # proven optimal within mip_rel_gap
    TIME_LIMIT = "time_limit"  # time limit hit, incumbent returned with its gap
    INFEASIBLE = "infeasible"  # proven infeasible
    NO_SOLUTION = "no_solution"  # nothing feasible found in time (not proven infeasible), or a solver failure


class Model(NamedTuple):
    """An assembled MILP: ``min c·v`` s.t. ``lo ≤ A v ≤ hi``, ``0 ≤ v ≤ ub``, ``integrality`` 1 for integer ``v``."""

    c: F
    a: Any  # scipy.sparse.csr_matrix
    lo: F
    hi: F
    ub: F
    integrality: NDArray[np.uint8]


class Outcome(NamedTuple):
    """What :func:`run` found: status, the variables (``None`` without a plan), the relative gap and HiGHS's messages."""

    status: SolveStatus
    x: F | None
    gap: float
    message: str


def run(m: Model, *, time_limit_s: float, mip_rel_gap: float, presolve: tuple[bool, ...], accept: Callable[[F], str],
        choice: NDArray[np.bool_] | None = None) -> Outcome:  # fmt: skip
    """Solve ``m`` within ``time_limit_s`` to ``mip_rel_gap`` (module docstring).

    ``presolve``: HiGHS's presolve settings to try in turn while a solve fails or its plan is not
    accepted (``accept(x)`` returns what the rounded plan ``x`` violates, ``''`` when none);
    ``choice``: the choice columns, which turns on the pricing of the module docstring where there are at
    least ``PRICING_MIN_COLUMNS`` of them.
    """
    t0 = time.perf_counter()
    if choice is not None and choice.any() and int(choice.sum()) >= PRICING_MIN_COLUMNS:
        priced = _priced(m, choice, t0, time_limit_s, mip_rel_gap, presolve, accept)
        if priced is not None:
            return priced
    return _mip(m, m.ub, t0, time_limit_s, mip_rel_gap, presolve, accept)


def _priced(m: Model, choice: NDArray[np.bool_], t0: float, limit: float, gap: float, presolve: tuple[bool, ...],
            accept: Callable[[F], str]) -> Outcome | None:  # fmt: skip
    """Steps 1-3 of the module docstring; ``None`` where the whole program must be solved instead."""
    lp = _relaxation(m)
    if lp is None:
        return None
    bound, rho = lp
    tol = 1e-7 * max(1.0, abs(bound))
    delta = _DELTA * gap * abs(bound)
    first = _mip(m, np.where(choice & (rho > delta), 0.0, m.ub), t0, limit, gap, presolve, accept)
    if first.x is None:
        return None
    upper = float(m.c @ first.x)
    global_gap = max(upper - bound, 0.0) / max(abs(upper), 1e-12)
    if first.status is not SolveStatus.OPTIMAL:  # time limit: the LP bound is the honest gap
        return first._replace(gap=global_gap)
    note = f"; pricing: relaxation {bound:.6g}, restricted to reduced costs <= {delta:.3g}"
    if upper - bound <= delta - tol:
        return first._replace(message=first.message + note + ", which holds every cheaper plan")
    second = _mip(m, np.where(choice & (rho > upper - bound + tol), 0.0, m.ub), t0, limit, gap, presolve, accept)
    note += f", then to <= {upper - bound:.3g} (reduced-cost fixing)"
    if second.x is not None and float(m.c @ second.x) <= upper:
        return second._replace(message=first.message + "; " + second.message + note)
    # The second program holds the first's plan: it proved nothing cheaper (within its gap), or ran out of time.
    proved = second.status is SolveStatus.OPTIMAL and np.isfinite(second.gap)
    status = SolveStatus.OPTIMAL if proved else SolveStatus.TIME_LIMIT
    return Outcome(status, first.x, second.gap if proved else global_gap, first.message + "; " + second.message + note)


def _relaxation(m: Model) -> tuple[float, F] | None:
    """The LP relaxation's optimum and the reduced cost of every column (``None`` unless solved to optimality)."""
    from scipy.optimize import linprog
    from scipy.sparse import vstack

    eq = np.isfinite(m.lo) & (m.lo == m.hi)
    upper, lower = ~eq & np.isfinite(m.hi), ~eq & np.isfinite(m.lo)
    a_ub = vstack([m.a[upper], -m.a[lower]]).tocsr()
    b_ub = np.concatenate([m.hi[upper], -m.lo[lower]])
    with _stdout_to_devnull():
        res = linprog(m.c, A_ub=a_ub, b_ub=b_ub, A_eq=m.a[eq], b_eq=m.lo[eq], bounds=np.column_stack([np.zeros(len(m.c)), m.ub]),
                      method="highs")  # fmt: skip
    if res.status != 0:
        return None
    return float(res.fun), np.maximum(np.asarray(res.lower.marginals, dtype=np.float64), 0.0)


def _mip(m: Model, ub: F, t0: float, limit: float, gap: float, presolve: tuple[bool, ...], accept: Callable[[F], str]) -> Outcome:
    """One MIP solve with upper bounds ``ub``, retried with the next presolve setting on a failure or a rejected plan.

    HiGHS presolve has bugs (ERGO-Code/HiGHS#2782), hence the retry.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    msgs: list[str] = []
    status = SolveStatus.NO_SOLUTION
    for pre in presolve:
        left = limit - (time.perf_counter() - t0)
        opts = {"disp": False, "time_limit": max(left, 0.1 * limit), "mip_rel_gap": float(gap), "presolve": pre}
        with _stdout_to_devnull():
            res = milp(m.c, integrality=m.integrality, bounds=Bounds(np.zeros(len(m.c)), ub), constraints=LinearConstraint(m.a, m.lo, m.hi),
                       options=opts)  # fmt: skip
        x = getattr(res, "x", None)
        status = {0: SolveStatus.OPTIMAL, 1: SolveStatus.TIME_LIMIT, 2: SolveStatus.INFEASIBLE}.get(res.status, SolveStatus.NO_SOLUTION)
        msgs.append(str(res.message))
        if x is None or status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION):
            status = SolveStatus.INFEASIBLE if status is SolveStatus.INFEASIBLE else SolveStatus.NO_SOLUTION
            if res.status in (0, 1, 2, 3):
                break
            continue
        v = np.rint(np.asarray(x, dtype=np.float64))
        bad = accept(v)
        if not bad:
            return Outcome(status, v, _gap(res, status), "; ".join(msgs))
        msgs[-1] += f" [the returned plan violates: {bad}]"
        status = SolveStatus.NO_SOLUTION
    return Outcome(status, None, float("nan"), "; ".join(msgs))


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
