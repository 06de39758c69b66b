"""Minimal covers of a workload's demand: the exact search's choices and the strong form of the cost program.

Given the replicas ``r``, the cheapest instances are ``n_t = ⌈u_t / D_t⌉`` with ``u_t = Σ_{c on t} d_c·r_c``
devices (packing is exact: replica sizes are powers of two dividing ``D_t`` or multiples of it), so a
plan is its replicas alone and costs ``Σ_t p_t·⌈u_t/D_t⌉``, which never falls when a replica is added.
A cheapest plan therefore needs only *minimal covers* of each workload, over the candidates
:mod:`aicap.sizing.solve.reduce` keeps: replica counts with
``Σ_{c∈w} min(q_c, λ_w)·r_c ≥ λ_w`` that fall short without any one replica. Of a workload's covers with
the same devices per type one is kept (the first in the order below), and none whose devices
per type are all at least another's (it can never be cheaper, and caps, budget and ``single_type``
never prefer it). Of equal device-priced cost ``Σ_t p_t·u_t/D_t``, covers with fewer kinds of replica
come first (a simpler deployment), then those with more capacity (uncapped: headroom, so lower latency
at the demanded rate), then those with the lower capacity-weighted latency score.

Two solvers use them. :mod:`aicap.sizing.solve.exact` searches one cover per workload. The cost program
of :mod:`aicap.sizing.solve.milp` takes one binary column ``y_k`` per cover with ``Σ_{k∈w} y_k = 1``
instead of the workload's replica counts (:func:`cover_columns`): the same integer plans, but its LP
relaxation is the convex hull of each workload's choices, where the replica form lets a workload buy
fractions of replicas. On the 1,000-workload benchmark the relaxation's bound rises from 5,281 to 5,872
USD/hour against an optimum of 5,873, and HiGHS proves the optimum in a third of the time. Workloads with
more than ``limit`` minimal covers (large demands: many replicas, where rounding matters little) keep their
replica columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.solve.problem import I, Problem, _Arrays, _arrays, _bounds

F = NDArray[np.float64]
COLUMN_LIMIT = 1024  # minimal covers of one workload in the cost program (before duplicates and dominated ones go)
_NEED = 1e-9  # a cover reaches λ·(1 − _NEED): HiGHS's row tolerance is looser, so every cover is feasible to it
_WALK_FACTOR = 64  # steps of the enumeration allowed per cover of the limit, so a fruitless walk also gives up


@dataclass(frozen=True, eq=False)
class Covers:
    """One workload's useful covers, cheapest first.

    Replicas ``(k, m)`` of the candidates at ``index`` ``(m,)``, devices per type ``(k, nt)``, device
    group (``single_type``) and device-priced cost ``(k,)``.
    """

    index: I
    replicas: I
    devices: I
    group: I
    cost: F


class _TooMany(Exception):
    """More minimal covers (or enumeration steps) than the limit."""


def covers(p: Problem, a: _Arrays, r_ub: F, unit: F, w: int, useful: NDArray[np.bool_], limit: int, idx: I | None = None) -> Covers | None:
    """The useful minimal covers of workload ``w`` over its ``useful`` candidates, cheapest first (module docstring).

    ``r_ub`` bounds each candidate's replicas (:func:`~aicap.sizing.solve.problem._bounds`), ``unit`` is
    the price of one device of each type [USD/hour]. ``None`` when ``w`` has more than ``limit`` minimal
    covers (or the enumeration takes more than ``64·limit`` steps); a cover that breaks a cap, or spans
    device groups under ``single_type``, is dropped. ``idx``: ``w``'s useful candidates, when known.
    """
    idx = np.flatnonzero((a.cw == w) & useful) if idx is None else idx
    lam = float(a.dem[w])
    need = lam * (1.0 - _NEED)
    qc = np.minimum(a.q[idx], lam)
    order = np.lexsort((a.lat[idx], -qc))  # largest capacity first: the last one used is the smallest
    q_s = qc[order].tolist()
    ub_s = [int(x) for x in r_ub[idx][order].tolist()]
    reach = [*np.cumsum((qc[order] * r_ub[idx][order])[::-1])[::-1].tolist(), 0.0]  # capacity the candidates from j on can add
    found: list[list[int]] = []
    counts = [0] * len(q_s)
    steps = [_WALK_FACTOR * limit]

    def walk(j: int, total: float, smallest: float) -> None:
        steps[0] -= 1
        if steps[0] < 0:
            raise _TooMany
        if total >= need:
            if total - smallest < need:  # minimal: without one replica of the smallest it falls short
                found.append(counts.copy())
                if len(found) > limit:
                    raise _TooMany
            return
        if j == len(q_s) or total + reach[j] < need:
            return
        # Fewer than k_min replicas here leave a gap the candidates after j cannot close: not walked.
        k_min = max(0, math.ceil((need - total - reach[j + 1]) / q_s[j]) - 1)  # (one below: rounding never drops a cover)
        for k in range(min(ub_s[j], math.ceil((need - total) / q_s[j])), k_min - 1, -1):
            counts[j] = k
            walk(j + 1, total + k * q_s[j], q_s[j] if k else smallest)
        counts[j] = 0

    try:
        walk(0, 0.0, math.inf)
    except _TooMany:
        return None
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
    # Drop covers another one's devices bound from below per type (equal devices: the later, slower one);
    # only the types of w's candidates can differ.
    mine = dev[:, np.unique(a.ct[idx])]
    no_more = (mine[:, None, :] >= mine[None, :, :]).all(axis=2)  # [i, j]: i uses at least j's devices everywhere
    same = (mine[:, None, :] == mine[None, :, :]).all(axis=2)
    earlier = np.arange(len(dev))[:, None] > np.arange(len(dev))[None, :]
    keep = ~(no_more & (~same | earlier)).any(axis=1)
    return Covers(idx, reps[keep], dev[keep], group[keep], cost[keep])


@dataclass(frozen=True, eq=False)
class Columns:
    """The cover columns of the cost program (module docstring), ``K`` of them.

    Attributes
    ----------
    covered : NDArray[np.bool_]
        Per workload ``(nw,)``, whether it is solved by covers (else by its replica columns).
    workload : I
        Workload of each column ``(K,)``.
    devices : I
        Devices per instance type of each column ``(K, nt)``.
    entry_column, entry_candidate, entry_replicas : I
        The columns' replica counts, one entry per (column, candidate) with a nonzero count.
    """

    covered: NDArray[np.bool_]
    workload: I
    devices: I
    entry_column: I
    entry_candidate: I
    entry_replicas: I

    def replicas(self, y: F, nc: int) -> I:
        """Replicas per candidate ``(nc,)`` of the columns picked by ``y`` (rounded to 0/1)."""
        picked = np.rint(y[self.entry_column]).astype(np.int64)
        return np.bincount(self.entry_candidate, weights=picked * self.entry_replicas, minlength=nc).astype(np.int64)


def cover_columns(p: Problem, useful: NDArray[np.bool_], limit: int | None = None) -> Columns:
    """Cover columns of every workload with at least one and at most ``limit`` minimal covers (``cost`` objective).

    ``limit`` defaults to ``COLUMN_LIMIT``, read when called (0: no workload is covered, the replica form).
    ``useful`` marks the candidates covers may use (:func:`~aicap.sizing.solve.reduce.cost_dominated`'s complement).
    """
    limit = COLUMN_LIMIT if limit is None else limit
    a = _arrays(p)
    r_ub, _ = _bounds(p, a)
    unit = a.price / a.td
    nw, nt = len(a.dem), len(a.td)
    covered = np.zeros(nw, dtype=bool)
    found: list[Covers] = []
    owner: list[int] = []
    order = np.flatnonzero(useful)
    order = order[np.argsort(a.cw[order], kind="stable")]
    starts = np.searchsorted(a.cw[order], np.arange(nw + 1))
    for w in range(nw):
        c = covers(p, a, r_ub, unit, w, useful, limit, order[starts[w] : starts[w + 1]])
        if c is not None and c.cost.size:
            covered[w] = True
            found.append(c)
            owner.append(w)
    sizes = np.array([c.cost.size for c in found], dtype=np.int64)
    workload = np.repeat(np.array(owner, dtype=np.int64), sizes)
    devices = np.vstack([c.devices for c in found]) if found else np.zeros((0, nt), dtype=np.int64)
    col, cand, cnt = [], [], []
    base = 0
    for c in found:
        k, m = np.nonzero(c.replicas)
        col.append(base + k)
        cand.append(c.index[m])
        cnt.append(c.replicas[k, m])
        base += c.cost.size
    cat = np.concatenate
    empty = np.zeros(0, dtype=np.int64)
    return Columns(covered, workload, devices.astype(np.int64), cat([empty, *col]), cat([empty, *cand]), cat([empty, *cnt]))
