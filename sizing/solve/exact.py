"""Exact search for small cost problems, without HiGHS (and without importing scipy).

Most plans people ask for are small: a handful of workloads with a few dozen candidates. HiGHS solves
them in milliseconds, but importing ``scipy.optimize`` to reach it costs about 0.4 s, more than
everything else a cold ``aicap size`` does. This module solves the *cost* objective of
:mod:`aicap.sizing.solve.milp` (with caps, a budget and ``single_type``) exactly by enumeration and
gives up, for HiGHS to take over, when the problem is not small.

A plan is its replicas alone, and a cheapest plan needs only *minimal covers* of each workload, those
:mod:`aicap.sizing.solve.covers` enumerates (cheapest first in device-priced cost ``Σ_t p_t·u_t/D_t``,
duplicates and covers using more devices than another dropped).

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

from aicap.sizing.solve.covers import Covers, covers
from aicap.sizing.solve.milp import Solution, SolveStatus, _polish, _route, _violated
from aicap.sizing.solve.problem import I, Problem, _Arrays, _arrays, _bounds
from aicap.sizing.solve.reduce import cost_dominated

F = NDArray[np.float64]
COVER_LIMIT = 1024  # minimal covers of one workload (before duplicates and dominated ones are dropped; the built-in example
# shortlisted thoroughly enumerates 300-odd for its chat workload, 83 once duplicates are dropped)
NODE_LIMIT = 5_000  # covers tried by the search, all components together
PART_LIMIT = 12  # workloads searched together (more: HiGHS, whose bounds are stronger)


class _GiveUp(Exception):
    """The problem is not small enough for the exact search."""


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
    each: list[Covers] = []
    for w in range(len(a.dem)):
        c = covers(p, a, r_ub, unit, w, useful, COVER_LIMIT)
        if c is None:
            return None
        each.append(c)
    if any(c.cost.size == 0 for c in each):
        return Exact(None, None)
    nodes = [node_limit]
    picks: dict[int, int] = {}
    try:
        for ws in parts:
            found = _search_part(p, a, [each[w] for w in ws.tolist()], nodes)
            if found is None:
                return Exact(None, None)
            picks.update(zip(ws.tolist(), found, strict=True))
    except _GiveUp:
        return None
    r = np.zeros(len(a.cw), dtype=np.int64)
    u = np.zeros(len(a.td), dtype=np.int64)
    for w, k in picks.items():
        r[each[w].index] += each[w].replicas[k]
        u += each[w].devices[k]
    return Exact(r, -(-u // a.td))


def _search_part(p: Problem, a: _Arrays, covers: list[Covers], nodes: list[int]) -> list[int] | None:
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
