"""The integer program of a plan over demand periods, with reserved, on-demand and spot capacity.

Indices: periods ``h`` (``H``, one hour each), workloads ``w``, candidates ``c`` (a workload on an
instance type with a layout and format; ``c ∈ w``, ``c on t``), instance types ``t``, pricing models
``m``: *reserved* ones (``reserved_1y``, ``reserved_3y``: bought once for the whole horizon) and
*hourly* ones (``on_demand``, ``spot``: rented per period).

Data: ``λ_wh`` demand [requests/s] (already raised to cover the scale-up lead time, see
:mod:`aicap.sizing.plan.periods`); ``k_w`` minimum replicas; ``q_c`` one replica's capacity within
the targets [requests/s]; ``d_c`` devices per replica; ``D_t`` devices per instance; ``p_tm`` price
[USD/instance-hour] (absent: the type cannot be bought that way); ``N_t`` instances available;
``s`` the largest share of a period's devices on spot; ``η`` the share of each spot instance's devices
kept free against interruptions; ``B`` a budget [USD/hour, averaged over the horizon].

Variables (all integer ≥ 0)
---------------------------
r_ch
    Replicas of candidate ``c`` in period ``h`` (``≤ max(⌈max_h λ_wh/q_c⌉, k_w)``, plus ``⌈D_t/d_c⌉`` where a spot
    share applies: replicas on an instance's idle devices raise the spot allowed).
R_tm
    Instances of type ``t`` reserved under model ``m`` for the whole horizon.
n_tmh
    Instances of type ``t`` rented hourly under model ``m`` in period ``h``.

Constraints, every period ``h``
-------------------------------
demand
    ``Σ_{c∈w} q_c·r_ch ≥ λ_wh`` and ``Σ_{c∈w} r_ch ≥ k_w``.
packing
    ``Σ_{c on t} d_c·r_ch ≤ D_t·(Σ_m R_tm + Σ_{m≠spot} n_tmh + (1 − η)·n_t,spot,h)`` [devices]
    (exact packing of power-of-two replicas; the spot headroom is kept over a type's spot devices in
    total, not instance by instance).
availability
    ``Σ_m R_tm + Σ_m n_tmh ≤ N_t``.
spot share
    ``Σ_t D_t·n_t,spot,h ≤ s·Σ_c d_c·r_ch``: spot devices within ``s`` of the devices serving replicas
    (counting idle instances would let a plan buy idle capacity to rent more spot).
budget
    ``(H·Σ p_tm R_tm + Σ_h Σ p_tm n_tmh) / H ≤ B``.

Objective: ``min H·Σ_{t,m reserved} p_tm·R_tm + Σ_h Σ_{t,m hourly} p_tm·n_tmh`` [USD over the horizon].
Solved whole, a week of ten workloads does not close its gap in ten seconds, so :func:`solve_periods`
decomposes it: reservations in an outer loop, every period on its own inside (HiGHS through
``scipy.optimize.milp``), with the gap measured against a proven lower bound (the per-hour programs
with reservations rented by the hour, summed over HiGHS's dual bounds, or the whole program's LP
relaxation where that is higher). The budget is checked on the
plan found, not imposed on each hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.constraints import COMMITTED

if TYPE_CHECKING:
    from aicap.sizing.solve.hour_workers import HourPool

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741

RESERVED = COMMITTED  # paid for the horizon whether used or not
SPOT = "spot"


@dataclass(frozen=True, eq=False)
class PeriodProblem:
    """A solver-ready multi-period problem (symbols as in the module docstring).

    Attributes
    ----------
    demand : F
        ``λ_wh`` [requests/s], shape ``(nw, H)``.
    min_replicas : I
        ``k_w``, shape ``(nw,)``.
    cand_workload, cand_type, cand_devices : I
        Per candidate, shape ``(nc,)``.
    cand_capacity : F
        ``q_c`` [requests/s], shape ``(nc,)``.
    type_devices : I
        ``D_t``, shape ``(nt,)``.
    type_cap : F
        ``N_t`` (``inf``: uncapped), shape ``(nt,)``.
    models : tuple of str
        Pricing models in the columns of ``price``.
    price : F
        ``p_tm`` [USD/instance-hour], shape ``(nt, nm)``; ``nan`` where not offered.
    spot_max_share, spot_headroom : float
        ``s`` and ``η``.
    budget_per_hour : float or None
        ``B``.
    time_limit_s, mip_rel_gap : float
        HiGHS's limits.
    """

    demand: F
    min_replicas: I
    cand_workload: I
    cand_type: I
    cand_devices: I
    cand_capacity: F
    type_devices: I
    type_cap: F
    models: tuple[str, ...]
    price: F
    spot_max_share: float = 0.5
    spot_headroom: float = 0.2
    budget_per_hour: float | None = None
    time_limit_s: float = 10.0
    mip_rel_gap: float = 1e-3


@dataclass(frozen=True, eq=False)
class PeriodSolution:
    """Outcome; arrays are empty when there is no plan.

    Attributes
    ----------
    status : str
        ``optimal`` (within ``mip_rel_gap`` of the LP bound), ``decomposed`` (the best plan the
        decomposition found, ``gap`` above the bound), ``infeasible`` or ``no_solution``.
    replicas : I
        ``r_ch``, shape ``(nc, H)``.
    reserved : I
        ``R_tm``, shape ``(nt, nm)`` (zero for hourly models).
    hourly : I
        ``n_tmh``, shape ``(nt, nm, H)`` (zero for reserved models).
    usd : float
        Objective [USD over the horizon].
    gap : float
        Relative MIP gap reported by HiGHS.
    seconds : float
        Wall time.
    """

    status: str
    replicas: I
    reserved: I
    hourly: I
    usd: float
    gap: float
    seconds: float


def _index(p: PeriodProblem) -> tuple[int, int, int, int, int, I, I]:
    nw, hours = p.demand.shape
    nc, (nt, nm) = p.cand_workload.size, p.price.shape
    res = np.array([m in RESERVED for m in p.models])
    offered = ~np.isnan(p.price)
    return nw, hours, nc, nt, nm, np.asarray(res, dtype=np.int64), np.asarray(offered, dtype=np.int64)


def _build(p: PeriodProblem, fixed: I | None) -> tuple[F, Any, F, F, F, F, int, int]:
    """Objective, sparse matrix, row bounds and column bounds of the program (``fixed``: ``R_tm`` pinned)."""
    from scipy.sparse import coo_matrix

    nw, hours, nc, nt, nm, res, offered = _index(p)
    res_b, off_b = res.astype(bool), offered.astype(bool)
    spot = np.array([m == SPOT for m in p.models])
    # Columns: r (nc·H, index c·H + h), R (nt·nm, t·nm + m), n (nt·nm·H, (t·nm + m)·H + h).
    o_big, o_n = nc * hours, nc * hours + nt * nm
    nv = o_n + nt * nm * hours
    hh = np.arange(hours)
    rows: list[I] = []
    cols: list[I] = []
    vals: list[F] = []
    lo: list[F] = []
    hi: list[F] = []
    nrow = 0

    def add(r: I, k: I, v: F, low: F, high: F) -> None:
        nonlocal nrow
        rows.append(r + nrow)
        cols.append(k)
        vals.append(v)
        lo.append(low)
        hi.append(high)
        nrow += low.size

    cw, ct, cd, q = p.cand_workload, p.cand_type, p.cand_devices.astype(float), p.cand_capacity
    rc = (np.arange(nc)[:, None] * hours + hh[None, :]).ravel()  # r columns, (c, h) order
    r_row = (cw[:, None] * hours + hh[None, :]).ravel()  # (w, h) row of each r column
    add(r_row, rc, np.repeat(q, hours), p.demand.ravel(), np.full(nw * hours, np.inf))  # demand
    add(r_row, rc, np.ones(nc * hours), np.repeat(p.min_replicas.astype(float), hours), np.full(nw * hours, np.inf))  # min replicas
    tm = np.array([(t, m) for t in range(nt) for m in range(nm) if off_b[t, m]], dtype=np.int64).reshape(-1, 2)
    usable = np.where(spot[tm[:, 1]], 1.0 - p.spot_headroom, 1.0) * p.type_devices[tm[:, 0]]
    big_r = tm[:, 0][:, None] * hours + hh[None, :]  # (t, h) rows; a reserved R_tm appears in every period
    big_c = np.broadcast_to((o_big + tm[:, 0] * nm + tm[:, 1])[:, None], big_r.shape)
    n_c = o_n + (tm[:, 0] * nm + tm[:, 1])[:, None] * hours + hh[None, :]
    is_res = res_b[tm[:, 1]]
    inst_rows = np.concatenate([big_r[is_res].ravel(), big_r[~is_res].ravel()])
    inst_cols = np.concatenate([big_c[is_res].ravel(), n_c[~is_res].ravel()])
    # packing, one row per (t, h): replica devices minus usable instance devices <= 0
    add(np.concatenate([(ct[:, None] * hours + hh[None, :]).ravel(), inst_rows]), np.concatenate([rc, inst_cols]),
        np.concatenate([np.repeat(cd, hours), -np.repeat(usable[is_res], hours), -np.repeat(usable[~is_res], hours)]),
        np.full(nt * hours, -np.inf), np.zeros(nt * hours))  # fmt: skip
    capped = np.where(np.isfinite(p.type_cap), p.type_cap, 1e9)
    add(inst_rows, inst_cols, np.ones(inst_rows.size), np.full(nt * hours, -np.inf), capped.repeat(hours))  # availability
    sp = spot[tm[:, 1]]
    if sp.any() and p.spot_max_share < 1.0:  # D·n_spot − s·Σ d_c r_c <= 0, one row per h: spot within s of the devices in use
        per_h = np.broadcast_to(hh, big_r.shape)
        add(np.concatenate([per_h[sp].ravel(), np.tile(hh, nc)]), np.concatenate([n_c[sp].ravel(), rc]),
            np.concatenate([np.repeat(p.type_devices[tm[sp, 0]].astype(float), hours), -p.spot_max_share * np.repeat(cd, hours)]),
            np.full(hours, -np.inf), np.zeros(hours))  # fmt: skip
    cost = np.zeros(nv)
    price_tm = p.price[tm[:, 0], tm[:, 1]]
    cost[o_big + tm[is_res, 0] * nm + tm[is_res, 1]] = price_tm[is_res] * hours
    cost[n_c[~is_res].ravel()] = np.repeat(price_tm[~is_res], hours)
    lb, ub = np.zeros(nv), np.zeros(nv)
    peak = p.demand.max(axis=1)
    need = np.maximum(np.ceil(peak[cw] / np.maximum(q, 1e-12) - 1e-9), p.min_replicas[cw])
    if sp.any() and p.spot_max_share < 1.0:
        # Replicas beyond the demand can pay under a spot share: on an instance's idle devices they raise the spot
        # allowed (s·Σ d_c r_c). One instance's worth per candidate is left room for that.
        need = need + np.ceil(p.type_devices[ct] / cd)
    ub[rc] = np.repeat(need, hours)
    ub[big_c[is_res][:, 0]] = capped[tm[is_res, 0]]
    ub[n_c[~is_res].ravel()] = np.repeat(capped[tm[~is_res, 0]], hours)
    if fixed is not None:
        lb[o_big:o_n] = ub[o_big:o_n] = fixed.ravel()
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nv)).tocsr()
    return cost, a, np.concatenate(lo), np.concatenate(hi), lb, ub, o_big, o_n


def _run(p: PeriodProblem, fixed: I | None, *, relax: bool = False,
         time_limit_s: float | None = None) -> tuple[str, F | None, float, float]:  # fmt: skip
    """Solve (or, with ``relax``, its LP relaxation); returns status, solution, objective and HiGHS's dual bound."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    from aicap.sizing.solve.highs import _stdout_to_devnull

    cost, a, lo, hi, lb, ub, _, _ = _build(p, fixed)
    with _stdout_to_devnull():
        out: Any = milp(cost, integrality=np.zeros(cost.size) if relax else np.ones(cost.size, dtype=np.uint8), bounds=Bounds(lb, ub),
                        constraints=LinearConstraint(a, lo, hi),
                        options={"disp": False, "time_limit": time_limit_s or p.time_limit_s, "mip_rel_gap": p.mip_rel_gap})  # fmt: skip
    status = {0: "optimal", 1: "time_limit", 2: "infeasible"}.get(out.status, "no_solution")
    x = getattr(out, "x", None)
    if x is None or status in ("infeasible", "no_solution"):
        return ("infeasible" if status == "infeasible" else "no_solution"), None, float("inf"), float("nan")
    v = np.asarray(x, dtype=float) if relax else np.rint(np.asarray(x, dtype=float))
    value = float(cost @ v)
    dual = getattr(out, "mip_dual_bound", None)
    return status, v, value, value if relax or dual is None or not np.isfinite(dual) else min(float(dual), value)


def _one_period(p: PeriodProblem, h: int) -> PeriodProblem:
    return replace(p, demand=p.demand[:, h : h + 1])


def _reservations(p: PeriodProblem, used: I) -> I:
    """Break-even reservations from instance use ``used`` (``(nt, H)``, instances of each type in each period).

    The ``k``-th instance of type ``t`` is worth reserving under model ``m`` when the periods that use at
    least ``k`` instances of ``t`` number at least ``H·p_tm/p_t,hourly`` (``p_t,hourly`` the cheapest
    hourly price of ``t`` other than spot, whose share is capped; without one, every instance used in
    some period is reserved); the cheapest reserved model of ``t`` is the one bought.
    """
    _, hours, _, nt, nm, res, offered = _index(p)
    out = np.zeros((nt, nm), dtype=np.int64)
    spot = np.array([m == SPOT for m in p.models])
    hourly = np.where(res.astype(bool)[None, :] | ~offered.astype(bool) | spot[None, :], np.inf, p.price)
    for t in range(nt):
        r_models = [m for m in range(nm) if res[m] and offered[t, m]]
        if not r_models or used[t].max(initial=0) == 0:
            continue
        m = min(r_models, key=lambda k: (p.price[t, k], k))
        ref = float(hourly[t].min())
        need = hours * p.price[t, m] / ref if np.isfinite(ref) else 0.0
        k = 0
        while k < used[t].max() and int((used[t] >= k + 1).sum()) >= need:
            k += 1
        out[t, m] = k
    return out


_Solved = dict[tuple[tuple[str, ...], bytes, bytes], tuple[F, float]]


def _hour(args: tuple[PeriodProblem, int, I | None]) -> tuple[F | None, float]:
    """Period ``h`` of ``p`` solved on its own with reservations ``fixed``: its solution (``None``: no plan) and dual bound."""
    p, h, fixed = args
    _, v, _, dual = _run(_one_period(p, h), fixed)
    return v, dual


def _per_period(p: PeriodProblem, fixed: I | None, solved: _Solved | None = None,
                pool: HourPool | None = None) -> tuple[I, I, float, float] | None:  # fmt: skip
    """Every period solved on its own with reservations ``fixed`` (periods of equal demand once).

    Returns replicas ``(nc, H)``, hourly instances ``(nt, nm, H)``, their hourly cost summed over the
    horizon (reservations not included) and the sum of HiGHS's per-period dual bounds on it, or
    ``None`` if a period has no plan. ``solved`` keeps one-period solutions across calls on the same
    candidates and prices, keyed by pricing models, reservations and demand: without reserved models
    (``None`` and zero reservations then pin the same nothing) the bound's programs are the plan's.
    ``pool`` solves the periods not yet solved in worker processes (the same programs, so the same
    solutions as here).
    """
    _, hours, nc, nt, nm, res, _ = _index(p)
    hourly_price = np.where(res.astype(bool)[None, :], 0.0, np.nan_to_num(p.price))
    fixed_cost = 0.0 if fixed is None else float(np.sum(np.nan_to_num(p.price) * fixed))  # pinned R costs p·R in a one-hour solve
    cache: _Solved = {} if solved is None else solved
    # Without a reserved model nothing can be pinned, so None and zero reservations are one program.
    pinned = b"" if not res.any() else b"free" if fixed is None else np.asarray(fixed, dtype=np.int64).tobytes()
    keys = [(p.models, pinned, np.ascontiguousarray(p.demand[:, h]).tobytes()) for h in range(hours)]
    todo: dict[tuple[tuple[str, ...], bytes, bytes], int] = {}  # each demand not solved yet, at its first period
    for h, key in enumerate(keys):
        if key not in cache:
            todo.setdefault(key, h)
    args = [(p, h, fixed) for h in todo.values()]
    solved_now = pool.solve(args, _hour) if pool is not None else [_hour(a) for a in args]
    for key, (v, dual) in zip(todo, solved_now, strict=True):
        if v is None:
            return None
        cache[key] = (v, dual - fixed_cost)
    r, n = np.zeros((nc, hours), dtype=np.int64), np.zeros((nt, nm, hours), dtype=np.int64)
    total = bound = 0.0
    for h in range(hours):
        v, hour_bound = cache[keys[h]]
        r[:, h] = v[:nc].astype(np.int64)
        n[:, :, h] = v[nc + nt * nm :].reshape(nt, nm).astype(np.int64)
        total += float(np.sum(hourly_price * n[:, :, h]))
        bound += hour_bound
    return r, n, total, bound


def solve_periods(p: PeriodProblem, *, rounds: int = 4, seeds: tuple[I, ...] = (), pool: HourPool | None = None) -> PeriodSolution:
    """Solve the program of the module docstring by decomposition.

    *Bound.* Let reserved instances be rented hour by hour at their hourly rate: every period is then a
    program of its own, and the sum of their optima is a lower bound on the whole program (any plan's
    period ``h`` is feasible there, at the same cost). Its instance use seeds the reservations. The whole
    program's LP relaxation is a lower bound too, and the higher one where demand swings between hours
    (it still pays a reservation in every hour); the gap is measured against the higher of the two.

    *Plans.* With reservations ``R`` fixed, every period is again independent (periods of equal demand
    are solved once). ``R`` starts from each of ``seeds`` (e.g. a static plan's reservations, which
    makes the plan never dearer than that static plan), from the break-even reservations of the bound's
    instance use (:func:`_reservations`) and from none; after each plan, ``R`` is recomputed from the plan's own use,
    up to ``rounds`` plans or until ``R`` repeats; the cheapest plan is kept and its reservations improved
    one instance at a time (:func:`_local_search`). With a budget, the budget is checked on that plan
    (over it: ``infeasible`` when the bound is too, else ``no_solution``, not proven). ``status`` is
    ``optimal`` when the plan is within ``mip_rel_gap`` of the bound, else ``decomposed`` with the gap.

    ``pool`` (:class:`~aicap.sizing.solve.hour_workers.HourPool`) solves each round's periods in its
    worker processes; every period's program is the same there, so the plan is the same as without it.
    """
    t0 = time.perf_counter()
    _, hours, _nc, nt, nm, _res, _ = _index(p)
    relaxed = replace(p, models=tuple(m if m not in RESERVED else f"{m} (hourly)" for m in p.models), budget_per_hour=None)
    solved: _Solved = {}
    bound_run = _per_period(relaxed, None, solved, pool)
    if bound_run is None:
        return _empty(p, "infeasible", t0)
    bound = bound_run[3]  # proven: HiGHS's dual bounds, not the incumbents
    starts = [*seeds, _reservations(p, bound_run[1].sum(axis=1)), np.zeros((nt, nm), dtype=np.int64)]
    best: tuple[float, I, I, I] | None = None
    seen: set[bytes] = set()
    for seed in starts:
        fixed = seed
        for _ in range(rounds):
            if fixed.tobytes() in seen:
                break
            seen.add(fixed.tobytes())
            run = _per_period(p, fixed, solved, pool)
            if run is None:
                break
            total = run[2] + float(hours * np.sum(np.nan_to_num(p.price) * fixed))
            if best is None or total < best[0] - 1e-9:
                best = (total, run[0], fixed.copy(), run[1])
            fixed = _reservations(p, run[1].sum(axis=1) + fixed.sum(axis=1)[:, None])
    if best is None:
        return _empty(p, "infeasible", t0)
    best = _local_search(p, best, solved, pool, seen)
    total, r, fixed, n = best
    if p.budget_per_hour is not None and total / hours > p.budget_per_hour * (1 + 1e-9):
        # Infeasible only when even the bound is over budget; else the decomposition found no plan within it.
        return _empty(p, "infeasible" if bound / hours > p.budget_per_hour * (1 + 1e-9) else "no_solution", t0, usd=total)
    gap = max(0.0, (total - bound) / total) if total > 0 else 0.0
    if gap > p.mip_rel_gap and any(m in RESERVED for m in p.models):
        # The whole program's LP relaxation keeps what the hourly bound drops, a reservation paid in every hour: under
        # demand that swings between hours it is the higher bound (an L4 fleet's day: 19% gap to the hourly bound, 7.5% to
        # this one). Without reserved models the hours are independent and the hourly bound is the program's own optimum.
        lp_status, _, lp_value, _ = _run(replace(p, budget_per_hour=None), None, relax=True)
        if lp_status == "optimal":
            gap = max(0.0, (total - max(bound, lp_value)) / total)
    return PeriodSolution("optimal" if gap <= p.mip_rel_gap else "decomposed", r, fixed, n, total, gap, time.perf_counter() - t0)


LOCAL_SEARCH_MOVES = 4  # most reservation sets the local search tries after the seeded rounds
LOCAL_SEARCH_MIN_GAIN = 0.05  # least estimated saving, as a share of the plan, for which a reservation move is tried


def _local_search(p: PeriodProblem, best: tuple[float, I, I, I], solved: _Solved, pool: HourPool | None,
                  seen: set[bytes]) -> tuple[float, I, I, I]:  # fmt: skip
    """Improve the reservations of ``best`` one instance at a time: first improvement, until none helps.

    A move reserves one more instance of a type the plan uses (under that type's cheapest reserved model)
    or one fewer of a type it reserves; each is priced by solving every period with it pinned (periods
    already solved for that set come from ``solved``). Break-even reservations judge each type on its
    own and miss a reservation that pays only when two types can carry the same workload (a TPU v6e or
    v5p): one move finds it. Extra reservations are tried only where their estimated saving is material
    (:data:`LOCAL_SEARCH_MIN_GAIN`; each move re-solves every period), at most :data:`LOCAL_SEARCH_MOVES`
    new sets.
    """
    _, hours, _, nt, nm, res, offered = _index(p)
    price = np.nan_to_num(p.price)
    cheapest = [min((m for m in range(nm) if res[m] and offered[t, m]), key=lambda k: (price[t, k], k), default=-1) for t in range(nt)]
    serves = np.zeros((nt, int(p.cand_workload.max(initial=-1)) + 1), dtype=bool)
    serves[p.cand_type, p.cand_workload] = True
    shares = (serves.astype(np.int64) @ serves.T.astype(np.int64)) > 0  # types that serve a common workload
    spot = np.array([m == SPOT for m in p.models])
    hourly = np.where(res.astype(bool)[None, :] | ~offered.astype(bool) | spot[None, :], np.inf, p.price).min(axis=1)  # by the hour
    tried = 0
    improved = True
    while improved and tried < LOCAL_SEARCH_MOVES:
        improved = False
        total, _, fixed, n = best
        used = (n.sum(axis=(1, 2)) > 0) | (fixed.sum(axis=1) > 0)
        # What an extra reserved t is worth in hour h: what the plan spends by the hour there on the types that serve a
        # workload t serves, up to t's own hourly price (renting t was the alternative). A move whose estimated saving
        # (that worth less the reservation's price) is under LOCAL_SEARCH_MIN_GAIN of the plan is not tried (the plan
        # states its gap to the bound); the rest are tried best first.
        spend = np.einsum("tm,tmh->th", price * (1 - res)[None, :], n)
        ups: list[tuple[float, int, I]] = []
        for t in np.flatnonzero(used).tolist():
            worth = float(np.minimum(spend[shares[t]].sum(axis=0), hourly[t]).sum()) if cheapest[t] >= 0 else 0.0
            if cheapest[t] >= 0 and (gain := worth - hours * price[t, cheapest[t]]) >= LOCAL_SEARCH_MIN_GAIN * total:
                up = fixed.copy()
                up[t, cheapest[t]] += 1
                ups.append((-gain, t, up))
        moves = [m for _, _, m in sorted(ups, key=lambda x: (x[0], x[1]))]
        for t in np.flatnonzero(fixed.sum(axis=1) > 0).tolist():
            for m in np.flatnonzero(fixed[t] > 0).tolist():
                down = fixed.copy()
                down[t, m] -= 1
                moves.append(down)
        for cand in moves:
            if cand.tobytes() in seen or tried >= LOCAL_SEARCH_MOVES:
                continue
            seen.add(cand.tobytes())
            tried += 1
            run = _per_period(p, cand, solved, pool)
            if run is None:
                continue
            cost = run[2] + float(hours * np.sum(price * cand))
            if cost < total - 1e-9:
                best = (cost, run[0], cand, run[1])
                improved = True
                break
    return best


def _empty(p: PeriodProblem, status: str, t0: float, usd: float = 0.0) -> PeriodSolution:
    """No plan: ``usd`` is the cheapest plan found over the horizon where the budget alone refused it, else 0."""
    _, hours, nc, nt, nm, _, _ = _index(p)
    z = np.zeros
    return PeriodSolution(status, z((nc, hours), np.int64), z((nt, nm), np.int64), z((nt, nm, hours), np.int64), usd, float("nan"),
                          time.perf_counter() - t0)  # fmt: skip
