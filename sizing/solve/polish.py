"""The integer plan's polish: what a cheapest plan does with what it bought, at the same or lower cost.

Tie-breaks are not objective terms of :mod:`aicap.sizing.solve.milp` (they slow HiGHS down), so among plans of
equal cost HiGHS returns whichever its search meets first, and that changes with its heuristics. The polish
makes the answer a good one whatever the path: under ``latency`` replicas no request reaches are dropped;
otherwise each workload's mixture of layouts on one instance type becomes the one layout that carries the
most on the same devices where it carries more (:func:`_one_layout`); wholly idle instances are dropped; idle devices are filled
with extra replicas. :func:`_route` gives the traffic shares of the polished plan.
"""

from __future__ import annotations

import numpy as np

from aicap.sizing.solve.problem import F, I, Problem, _arrays


def _one_layout(p: Problem, r: I) -> I:
    """Per workload and instance type, a mixture of layouts on ``u`` devices becomes the one layout that carries the most there.

    For workload ``w`` on type ``t`` with replicas ``r_c`` of several candidates, ``u = Σ d_c·r_c`` devices and
    capacity ``Q = Σ q_c·r_c`` [requests/s], candidate ``c`` of ``w`` on ``t`` fits ``k_c = ⌊u/d_c⌋`` replicas,
    ``k_c·q_c`` requests/s. The best (most requests/s, then the lowest latency score, then fewer, larger
    replicas) replaces the mixture where ``k_c·q_c > Q`` and the workload keeps its replica floor (at equal
    capacity the mixture stays: the filler below prefers fewer, larger replicas on the same devices): demand
    stays met, the type's packing row holds (no more devices; sizes that divide ``D_t`` or take whole
    instances pack exactly), and the plan runs one layout where the solver's tie had left, say, 4 TP2
    replicas beside a TP4·PP2 one on 16 devices that 16 TP1 replicas serve with more capacity. Not under
    ``latency``, whose routing weighs each replica's latency.
    """
    if p.objective == "latency" or not r.any():
        return r
    a = _arrays(p)
    nt = len(a.td)
    pair = a.cw * nt + a.ct
    used = r > 0
    kinds = np.bincount(pair[used], minlength=len(a.dem) * nt)
    mixed = np.flatnonzero(kinds > 1)
    if not mixed.size:
        return r
    r = r.copy()
    count = np.bincount(a.cw, weights=r, minlength=len(a.dem))
    for key in mixed.tolist():
        mine = np.flatnonzero(pair == key)
        u, have = int(a.cd[mine] @ r[mine]), float(a.q[mine] @ r[mine])
        k = u // a.cd[mine]
        carry = k * a.q[mine]
        best = int(np.lexsort((mine, -a.cd[mine], a.lat[mine], -carry))[0])
        w = int(a.cw[mine[0]])
        keeps_floor = count[w] - r[mine].sum() + k[best] >= p.floors[w]
        if carry[best] > have * (1.0 + 1e-9) and keeps_floor:
            count[w] += k[best] - r[mine].sum()
            r[mine] = 0
            r[mine[best]] = k[best]
    return r


def _polish(p: Problem, r: I, n: I) -> tuple[I, I]:
    """One layout per workload and type where it carries more, drop wholly idle instances, then fill idle devices with extra replicas.

    Under ``latency`` the replicas the latency-greedy routing leaves without traffic go first: the cost
    tie-break is within the solver's gap, so HiGHS may return replicas no request reaches, bought within
    the budget; keeping ``⌈λ_w·x_c/q_c⌉`` of each candidate leaves the routing, and so the objective, as it was.
    """
    a = _arrays(p)
    r = _one_layout(p, r)
    if p.objective == "latency" and r.any():
        _, share = _route(p, r)
        load = a.dem[a.cw] * share
        need = np.ceil(np.divide(load, a.q, out=np.zeros_like(load), where=a.q > 0) - 1e-9).astype(np.int64)
        floored = (p.floors > 1)[a.cw]  # a workload with a replica floor keeps what the solver bought for it
        r = np.where(floored, r, np.minimum(r, np.maximum(need, 0)))
    idle = a.td * n - np.bincount(a.ct, weights=a.cd * r, minlength=len(a.td)).astype(np.int64)
    drop = np.maximum(idle, 0) // a.td  # a violated packing row (idle < 0) stays visible to _violated
    n, idle, r = n - drop, idle - drop * a.td, r.copy()
    # Per instance type, one replica at a time while one fits: for the workload its capacity leaves busiest (the highest
    # λ_w / Σ q·r; a workload without a rate counts as idle), the candidate that adds the most capacity per device (more
    # of a plan's best layout, not a mixture of whatever sizes fit), then the lowest latency score; under the latency
    # objective, whose routing sends traffic to the fastest capacity first, the lowest latency score first. Ties go to a
    # layout the plan already runs, then to the larger replica (fewer replicas on the same devices). Headroom goes where it
    # is short: an embedding model's thousands of requests/s per device took the idle devices beside a busy chat model.
    # A type's idle devices end fewer than its smallest candidate's: every device any candidate can fill is.
    per_device = a.q / a.cd
    keys = (-per_device, a.lat) if p.objective != "latency" else (a.lat, -per_device)
    demand = np.nan_to_num(a.dem, nan=0.0)
    cap = np.bincount(a.cw, weights=a.q * r, minlength=len(a.dem))
    for t in np.flatnonzero(idle > 0):
        mine = np.flatnonzero(a.ct == t)
        while (fits := mine[a.cd[mine] <= idle[t]]).size:
            busy = demand[a.cw[fits]] / np.maximum(cap[a.cw[fits]], 1e-12)
            k = fits[np.lexsort((fits, -a.cd[fits], r[fits] == 0, keys[1][fits], keys[0][fits], -busy))[0]]
            r[k] += 1
            idle[t] -= a.cd[k]
            cap[a.cw[k]] += a.q[k]
    return r, n


def _route(p: Problem, r: I) -> tuple[F, F]:
    """Served requests/s per workload and traffic shares per candidate for integer replicas ``r``."""
    a = _arrays(p)
    nw, cap = len(a.dem), a.q * r
    served = np.fmin(a.dem, np.bincount(a.cw, weights=cap, minlength=nw)) if p.objective == "throughput" else a.dem.copy()
    x = cap.copy()
    if p.objective == "latency":  # fill lowest-latency capacity first: optimal routing for fixed replicas
        order = np.lexsort((a.lat, a.cw))
        frac = cap[order] / a.dem[a.cw[order]]
        before = np.cumsum(frac) - frac  # capacity of the workload's faster candidates (after subtracting its start)
        before -= np.append(before, 0.0)[np.searchsorted(a.cw[order], np.arange(nw))][a.cw[order]]
        x[order] = np.minimum(frac, np.maximum(0.0, 1.0 - before))
    tot = np.bincount(a.cw, weights=x, minlength=nw)[a.cw]
    return served, np.divide(x, tot, out=np.zeros(len(a.cw)), where=(tot > 0) & (served[a.cw] > 0))
