"""Exact search for small cost problems, without HiGHS (and without importing scipy).

Most plans people ask for are small: a handful of workloads with a few dozen candidates. HiGHS solves
them in milliseconds, but importing ``scipy.optimize`` to reach it costs about 0.4 s, more than
everything else a cold ``aicap size`` does. This module solves the *cost* objective of
:mod:`aicap.sizing.solve.milp` (with caps, a budget and ``single_type``) exactly by enumeration and
gives up, for HiGHS to take over, when the problem is not small.

Given the replicas ``r``, the cheapest instances are ``n_t = ⌈u_t / D_t⌉`` with ``u_t = Σ_{c on t} d_c·r_c``
devices (packing is exact: replica sizes are powers of two dividing ``D_t`` or multiples of it), so a
plan is its replicas alone and costs ``Σ_t p_t·⌈u_t/D_t⌉``, which never falls when a replica is added.
A cheapest plan therefore needs only *minimal covers* of each workload, over the candidates
:mod:`aicap.sizing.solve.reduce` keeps: replica counts with
``Σ_{c∈w} min(q_c, λ_w)·r_c ≥ λ_w`` that fall short without any one replica. Of a workload's covers with
the same devices per type one is kept (the first in the order below), and none whose devices
per type are all at least another's (it can never be cheaper, and caps, budget and ``single_type``
never prefer it). Of equal device-priced cost, covers with fewer kinds of replica come first (a simpler
deployment), then those with more capacity (uncapped: headroom, so lower latency at the demanded rate),
then those with the lower capacity-weighted latency score.

A depth-first search picks one cover per workload, the workloads with the dearest covers first and
each workload's covers cheapest first in device-priced cost ``Σ_t p_t·u_t/D_t``. A branch is cut when
its lower bound ``max(Σ_t p_t·⌈u_t/D_t⌉, Σ_t p_t·u_t/D_t + Σ_{w left} L_w)`` (``L_w`` the least
device-priced cost of ``w``'s covers) is no better than the incumbent, or when it breaks a cap, the
budget or the single device group. Without a budget or ``single_type``, workloads that share no
instance type are independent and searched separately. Ties keep the first plan found, so the result
is deterministic. The search gives up (returns ``None``) past ``PART_LIMIT`` workloads searched
together, ``COVER_LIMIT`` covers for one workload or ``NODE_LIMIT`` covers tried in all; on the
100-workload benchmark's fleet it finds and proves the optimum of the first 8 workloads in about 10 ms
and gives up on 12 after about 30 ms.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.solve.milp import Solution, SolveStatus, _polish, _route, _violated
from aicap.sizing.solve.problem import I, Problem, _Arrays, _arrays, _bounds
from aicap.sizing.solve.reduce import cost_dominated

F = NDArray[np.float64]
COVER_LIMIT = 256  # minimal covers of one workload (before duplicates and dominated ones are dropped)
NODE_LIMIT = 5_000  # covers tried by the search, all components together
PART_LIMIT = 12  # workloads searched together (more: HiGHS, whose bounds are stronger)
_NEED = 1e-9  # a cover reaches λ·(1 − _NEED): HiGHS's row tolerance is looser, so every cover is feasible to it


class _GiveUp(Exception):
    """The problem is not small enough for the exact search."""


@dataclass(frozen=True, eq=False)
class _Covers:
    """One workload's useful covers, cheapest first.

    Replicas ``(k, m)`` of the candidates at ``index`` ``(m,)``, devices per type ``(k, nt)``, device
    group (``single_type``) and device-priced cost ``(k,)``.
    """

    index: I
    replicas: I
    devices: I
    group: I
    cost: F


@dataclass(frozen=True, eq=False)
class Exact:
    """A proven optimum: replicas ``(nc,)`` and instances ``(nt,)``; both ``None`` when proven infeasible."""

    replicas: I | None
    instances: I | None


def solve_exact(p: Problem, t0: float) -> Solution | None:
    """:func:`~aicap.sizing.solve.milp.solve`'s answer from :func:`search` (polished and routed), ``None`` when it does not apply.

    ``t0`` is when the solve started (:func:`time.perf_counter`), for ``Solution.seconds``.
    """
    found = search(p)
    if found is None:
        return None
    nc, nt, nw = len(p.cand_workload), len(p.type_devices), len(p.demand)
    if found.replicas is None or found.instances is None:
        z = np.zeros
        return Solution(SolveStatus.INFEASIBLE, z(nc, np.int64), z(nt, np.int64), z(nw), z(nc), 0.0, np.nan, time.perf_counter() - t0,
                        "infeasible (exact search)")  # fmt: skip
    r, n = _polish(p, found.replicas, found.instances)
    if _violated(p, r, n):  # never expected; HiGHS then answers
        return None
    served, share = _route(p, r)
    cost = float(np.asarray(p.type_price, dtype=np.float64) @ n)
    return Solution(SolveStatus.OPTIMAL, r, n, served, share, cost, 0.0, time.perf_counter() - t0, "optimal (exact search)")


def search(p: Problem, node_limit: int = NODE_LIMIT) -> Exact | None:
    """Solve ``p`` exactly if its objective is ``cost`` and it is small (module docstring); ``None`` otherwise.

    ``p`` must be valid (:func:`~aicap.sizing.solve.milp.validate`).
    """
    if p.objective != "cost":
        return None
    a = _arrays(p)
    r_ub, _ = _bounds(p, a)
    unit = a.price / a.td  # USD/hour per device of each type
    parts = _components(a) if p.budget_per_hour is None and not p.single_type else [np.arange(len(a.dem))]
    if max(len(ws) for ws in parts) > PART_LIMIT:
        return None
    useful = ~cost_dominated(p)
    try:
        covers = [_covers(p, a, r_ub, unit, w, useful) for w in range(len(a.dem))]
        if any(c.cost.size == 0 for c in covers):
            return Exact(None, None)
        nodes = [node_limit]
        picks: dict[int, int] = {}
        for ws in parts:
            found = _search_part(p, a, [covers[w] for w in ws.tolist()], nodes)
            if found is None:
                return Exact(None, None)
            picks.update(zip(ws.tolist(), found, strict=True))
    except _GiveUp:
        return None
    r = np.zeros(len(a.cw), dtype=np.int64)
    u = np.zeros(len(a.td), dtype=np.int64)
    for w, k in picks.items():
        r[covers[w].index] += covers[w].replicas[k]
        u += covers[w].devices[k]
    return Exact(r, -(-u // a.td))


def _covers(p: Problem, a: _Arrays, r_ub: F, unit: F, w: int, useful: NDArray[np.bool_]) -> _Covers:
    """The useful minimal covers of workload ``w`` over its ``useful`` candidates (:mod:`~aicap.sizing.solve.reduce`), cheapest first."""
    idx = np.flatnonzero((a.cw == w) & useful)
    lam = float(a.dem[w])
    need = lam * (1.0 - _NEED)
    qc = np.minimum(a.q[idx], lam)
    order = np.lexsort((a.lat[idx], -qc))  # largest capacity first: the last one used is the smallest
    q_s = qc[order].tolist()
    ub_s = [int(x) for x in r_ub[idx][order].tolist()]
    reach = [*np.cumsum((qc[order] * r_ub[idx][order])[::-1])[::-1].tolist(), 0.0]  # capacity the candidates from j on can add
    found: list[list[int]] = []
    counts = [0] * len(q_s)

    def walk(j: int, total: float, smallest: float) -> None:
        if total >= need:
            if total - smallest < need:  # minimal: without one replica of the smallest it falls short
                found.append(counts.copy())
                if len(found) > COVER_LIMIT:
                    raise _GiveUp
            return
        if j == len(q_s) or total + reach[j] < need:
            return
        for k in range(min(ub_s[j], math.ceil((need - total) / q_s[j])), -1, -1):
            counts[j] = k
            walk(j + 1, total + k * q_s[j], q_s[j] if k else smallest)
        counts[j] = 0

    walk(0, 0.0, math.inf)
    reps = np.zeros((len(found), idx.size), dtype=np.int64)
    if found:
        reps[:, order] = np.array(found, dtype=np.int64)
    onehot = np.zeros((idx.size, len(a.td)), dtype=np.int64)
    onehot[np.arange(idx.size), a.ct[idx]] = 1
    dev = (reps * a.cd[idx]) @ onehot
    used = dev > 0
    groups = np.where(used, a.grp[None, :], -1)
    group = groups.max(axis=1, initial=-1)
    ok = ~(-(-dev // a.td) > a.cap).any(axis=1)
    if p.single_type:  # one device group per cover
        ok &= ~(used & (groups != group[:, None])).any(axis=1)
    reps, dev, group = reps[ok], dev[ok], group[ok]
    cost = dev @ unit
    weight = reps * qc
    lat = (weight * a.lat[idx]).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-300)
    # Of equal cost: fewer kinds of replica (simpler), then more capacity (headroom), then the latency score.
    rank = np.lexsort((lat, -(reps * a.q[idx]).sum(axis=1), (reps > 0).sum(axis=1), cost))
    reps, dev, group, cost = reps[rank], dev[rank], group[rank], cost[rank]
    # Drop covers another one's devices bound from below per type (equal devices: the later, slower one).
    no_more = (dev[:, None, :] >= dev[None, :, :]).all(axis=2)  # [i, j]: i uses at least j's devices everywhere
    same = (dev[:, None, :] == dev[None, :, :]).all(axis=2)
    earlier = np.arange(len(dev))[:, None] > np.arange(len(dev))[None, :]
    keep = ~(no_more & (~same | earlier)).any(axis=1)
    return _Covers(idx, reps[keep], dev[keep], group[keep], cost[keep])


def _search_part(p: Problem, a: _Arrays, covers: list[_Covers], nodes: list[int]) -> list[int] | None:
    """Depth-first search for the cheapest choice of one cover per workload; ``None`` when none is feasible.

    ``nodes[0]`` is what is left of the node limit (shared by the parts); :class:`_GiveUp` when spent.
    """
    n = len(covers)
    least = [float(c.cost[0]) for c in covers]
    order = sorted(range(n), key=lambda j: (-least[j], j))
    after = [*np.cumsum([0.0, *(least[j] for j in order[::-1])])[::-1].tolist()[1:], 0.0]  # after[k] = Σ L of order[k+1:]
    budget = p.budget_per_hour
    best = [math.inf]
    picked: list[int] = [0] * n
    chosen: list[int] | None = None

    def cut(x: float) -> bool:
        return x >= best[0] * (1.0 - 1e-12) - 1e-9

    def walk(k: int, u: I, frac: float, group: int) -> None:
        nonlocal chosen
        c = covers[order[k]]
        nodes[0] -= len(c.cost)
        if nodes[0] < 0:
            raise _GiveUp
        u2 = u[None, :] + c.devices
        rounded = -(-u2 // a.td) @ a.price
        ok = ~(-(-u2 // a.td) > a.cap).any(axis=1)
        if budget is not None:
            ok &= rounded <= budget * (1.0 + 1e-9) + 1e-9
        if p.single_type and group >= 0:
            ok &= c.group == group
        frac2 = frac + c.cost
        rest = after[k]
        for j in np.flatnonzero(ok).tolist():
            if cut(float(frac2[j]) + rest):
                break  # covers are cheapest first: no later one can do better
            if cut(float(rounded[j])):
                continue
            picked[order[k]] = j
            if k == n - 1:
                best[0] = float(rounded[j])
                chosen = picked.copy()
            else:
                walk(k + 1, u2[j], float(frac2[j]), int(c.group[j]) if group < 0 else group)

    walk(0, np.zeros(len(a.td), dtype=np.int64), 0.0, -1)
    return chosen


def _components(a: _Arrays) -> list[I]:
    """Workloads grouped by the instance types they share (connected components), in order of first workload."""
    nw = len(a.dem)
    parent = list(range(nw))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[int, int] = {}
    for w, t in zip(a.cw.tolist(), a.ct.tolist(), strict=True):
        if t not in first:
            first[t] = w
            continue
        x, y = root(w), root(first[t])
        parent[max(x, y)] = min(x, y)
    roots = np.array([root(w) for w in range(nw)], dtype=np.int64)
    return [np.flatnonzero(roots == r) for r in np.unique(roots).tolist()]
