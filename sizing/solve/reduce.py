"""Candidates a cheapest plan never needs, dropped before the cost objective is solved.

Under the cost objective (:mod:`aicap.sizing.solve.milp`) a candidate ``j`` is never needed when another
candidate ``i`` of the same workload and instance type uses no more devices and carries no less of the
workload's demand: ``d_i ≤ d_j`` and ``min(q_i, λ_w) ≥ min(q_j, λ_w)``. Swapping every replica of ``j``
for one of ``i`` keeps the demand covered, uses no more devices of that type (so no more instances,
caps, budget or device group), and so costs no more. Of candidates equal in both, one is kept: the one
with the most uncapped capacity (headroom at the demanded rate), then the lowest latency score, then
the first. On the 1,000-workload benchmark fleet this drops 15% of the candidates and cuts HiGHS's time
by about a tenth; it also makes the choice among equal-cost candidates deliberate instead of the
solver's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.solve.problem import Problem, _arrays


def cost_dominated(p: Problem) -> NDArray[np.bool_]:
    """Per candidate, whether a cheapest plan never needs it (module docstring); all ``False`` unless the objective is ``cost``."""
    a = _arrays(p)
    nc = len(a.cw)
    if p.objective != "cost" or nc == 0:
        return np.zeros(nc, dtype=bool)
    qc = np.minimum(a.q, a.dem[a.cw])
    rank = np.empty(nc, dtype=np.int64)  # among equals, lower rank stays
    rank[np.lexsort((np.arange(nc), a.lat, -a.q))] = np.arange(nc)
    i, j = group_pairs(np.unique(a.cw * (int(a.ct.max()) + 1) + a.ct, return_inverse=True)[1].ravel())  # per (workload, type)
    no_worse = (a.cd[i] <= a.cd[j]) & (qc[i] >= qc[j])
    better = (a.cd[i] < a.cd[j]) | (qc[i] > qc[j]) | (rank[i] < rank[j])
    return np.bincount(j, weights=(no_worse & better & (i != j)).astype(float), minlength=nc) > 0


def group_pairs(group: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every ordered pair ``(i, j)`` of members of one group (``i == j`` included), at once, as two index arrays.

    ``group`` holds each element's group id in ``0..G−1``; ``i`` is each member repeated once per member of
    its group and ``j`` runs over that group's members beside it.
    """
    order = np.argsort(group, kind="stable")
    size = np.bincount(group)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    g = size[group[order]]
    i = np.repeat(order, g)
    j = order[np.repeat(start[group[order]], g) + np.arange(i.size) - np.repeat(np.cumsum(g) - g, g)]
    return i, j


def restricted(p: Problem, keep: NDArray[np.int64]) -> Problem:
    """``p`` with only the candidates at ``keep`` (sorted indices); ``p`` itself when that is all of them."""
    if keep.size == len(p.cand_workload):
        return p
    a = _arrays(p)
    return replace(p, cand_workload=a.cw[keep], cand_type=a.ct[keep], cand_devices=a.cd[keep], cand_capacity=a.q[keep],
                   cand_latency=a.lat[keep])  # fmt: skip
