"""The screen of candidate evaluation: which rows are worth the TTFT percentile's full price.

Capacity without the TTFT target is cheap and bounds a row's cost per request/s from below;
:func:`screen_bound` evaluates rows cheapest bound first (branch and bound) and :func:`screen` keeps
the best rows of each workload shape and of each (shape, device) for the full evaluation. Where the
TTFT target then cuts the capacity of a device's kept rows, :func:`refill` carries the branch and bound
on with the full evaluation. Selection is per shape, so rows of different models and formats can be
screened in one pass without changing any row's fate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.serve.capacity import BISECTIONS as _FULL_BISECTIONS
from aicap.sizing.serve.capacity import TTFT_LOAD_BISECTIONS, capacity, load_ceiling, rate_bound, within_targets
from aicap.sizing.serve.load import LATENCY_HEADROOM, at_arrivals
from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]


@dataclass
class Rows:
    """Flattened evaluation rows: one per (shape, device, layout)."""

    shape: list[int] = field(default_factory=list)
    device: list[int] = field(default_factory=list)
    tp: list[int] = field(default_factory=list)
    pp: list[int] = field(default_factory=list)


SCREEN_PER_SHAPE = 12  # rows per workload shape kept by best-case cost per request/s
SCREEN_PER_DEVICE = 1  # and per (shape, device), so every device type keeps its best layout


def screen(rows: Rows, unit: F) -> NDArray[np.int64]:
    """Indices of the rows to evaluate in full: the cheapest per shape and per (shape, device) by ``unit``.

    Taking rows cheapest first (ties by index) and keeping one while its shape has fewer than
    ``SCREEN_PER_SHAPE`` kept or its (shape, device) fewer than ``SCREEN_PER_DEVICE`` is the same as
    keeping the rows ranked below ``SCREEN_PER_SHAPE`` in their shape or below ``SCREEN_PER_DEVICE`` in
    their (shape, device): a group's first rows are always kept. Rows of infinite ``unit`` (no capacity
    even without the TTFT target) are never kept.
    """
    order = np.lexsort((np.arange(unit.size), unit))
    order = order[np.isfinite(unit[order])]
    shape_a = np.asarray(rows.shape, dtype=np.int64)[order]
    pair = _pairs(rows)[order]
    keep = (_rank_in_group(shape_a) < SCREEN_PER_SHAPE) | (_rank_in_group(pair) < SCREEN_PER_DEVICE)
    return np.sort(order[keep])


def shadowed(rows: Rows, slots: F, shadows: dict[int, list[int]]) -> NDArray[np.bool_]:
    """Rows another device option makes redundant: ``True`` where a partner has the same row with as many slots.

    ``shadows`` maps a device option ``b`` to its partners: the same device with other memory (a CPU in
    instances of other host memory), on instance types that are never dearer and take the same
    replicas (:func:`aicap.sizing.plan.generate.shadows`, acyclic). Memory sets only a row's slots
    (``memory.max_batch``), so where a partner's row of the same shape and layout holds as many (both
    at the engine's cap), ``b``'s row has the same capacity and latencies at no lower price: no plan
    needs it, and it is neither evaluated nor offered. Rows without a slot are kept, so their reason
    reaches the diagnostics.
    """
    out = np.zeros(len(rows.tp), dtype=bool)
    if not shadows:
        return out
    partners = {a for under in shadows.values() for a in under}
    device = np.asarray(rows.device, dtype=np.int64)
    held: dict[tuple[int, int, int, int], float] = {}
    for k in np.flatnonzero(np.isin(device, list(partners))).tolist():  # only the rows of the devices involved: a CPU's few
        held[rows.device[k], rows.shape[k], rows.tp[k], rows.pp[k]] = float(slots[k])
    for k in np.flatnonzero(np.isin(device, list(shadows)) & (slots >= 1)).tolist():
        at = (rows.shape[k], rows.tp[k], rows.pp[k])
        out[k] = any(held.get((a, *at)) == float(slots[k]) for a in shadows[rows.device[k]])
    return out


def cheapest_replicas(rows: Rows, price: F, ok: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Per (shape, device), the row of the cheapest replica among the ``ok`` rows (ties: the lowest index).

    Cost per request/s at full load ranks wide layouts first (a TP2 replica's KV room can carry more per device), but a
    workload that one small replica carries buys whole replicas: at 1 req/s two 1-GPU L4 replicas cost $1,175/month and
    the TP2 layout the ranking kept $3,359. :func:`screen_bound` evaluates these rows (where the screen keeps no replica as
    cheap on the device) and the sizer keeps them beside :func:`screen`'s, so a low rate finds its smallest replica on
    every device.
    """
    idx = np.flatnonzero(ok)
    if not idx.size:
        return idx.astype(np.int64)
    pair = _pairs(rows)[idx]
    order = np.lexsort((idx, price[idx], pair))
    first = np.r_[True, pair[order][1:] != pair[order][:-1]]
    return np.sort(idx[order][first]).astype(np.int64)


def _pairs(rows: Rows) -> NDArray[np.int64]:
    """Each row's (shape, device) as one integer key."""
    return np.asarray(rows.shape, dtype=np.int64) * (int(max(rows.device, default=0)) + 1) + np.asarray(rows.device, dtype=np.int64)


def per_rate(price: F, rate: F) -> F:
    """Cost per request/s, ``price / rate``; ``inf`` where the rate is 0."""
    return np.asarray(np.where(rate > 0, price / np.maximum(rate, 1e-300), np.inf), dtype=float)


def _pair_min(pair: NDArray[np.int64], ix: NDArray[np.int64], values: F) -> F:
    """Per (shape, device) key, the least of ``values`` over the rows ``ix`` (``inf`` where none), indexed by key."""
    out = np.full(int(pair.max(initial=0)) + 1, np.inf)
    np.minimum.at(out, pair[ix], values[ix])
    return out


def _rank_in_group(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each element's rank among the elements of equal key before it (0 for the first)."""
    idx = np.lexsort((np.arange(keys.size), keys))
    sorted_keys = keys[idx]
    rank = np.empty(keys.size, dtype=np.int64)
    rank[idx] = np.arange(keys.size) - np.searchsorted(sorted_keys, sorted_keys, side="left")
    return rank


def _kth_smallest(group: NDArray[np.int64], values: F, k: int) -> F:
    """Per row, the ``k``-th smallest of ``values`` in its ``group`` (``inf`` when the group has fewer); one sort."""
    order = np.lexsort((values, group))
    g = group[order]
    rank = np.arange(g.size) - np.searchsorted(g, g, side="left")
    at_k = np.full(int(group.max(initial=0)) + 1, np.inf)
    at_k[g[rank == k - 1]] = values[order][rank == k - 1]
    return np.asarray(at_k[group], dtype=float)


def thresholds(rows: Rows, unit: F, done: NDArray[np.bool_]) -> tuple[F, F]:
    """Per row, the ``unit`` a row must beat to enter :func:`screen`'s selection of its shape and of its (shape, device)."""
    known = np.where(done & np.isfinite(unit), unit, np.inf)  # unevaluated rows sort last and never count
    return (_kth_smallest(np.asarray(rows.shape, dtype=np.int64), known, SCREEN_PER_SHAPE),
            _kth_smallest(_pairs(rows), known, SCREEN_PER_DEVICE))  # fmt: skip


SCREEN_BISECTIONS = 7  # the screen ranks rows by capacity resolved to 2^-7 of its bracket; kept rows are then refined


_REFINE_BISECTIONS = _FULL_BISECTIONS - SCREEN_BISECTIONS


def screen_bound(rows: Rows, step: StepModel, pp: F, budget: float, traffic: Traffic, tpot_t: F, price: F,
                  idle: Loaded, same: NDArray[np.int64] | None = None,
                  ttft_t: F | None = None) -> tuple[Loaded, NDArray[np.bool_], NDArray[np.int64], F]:  # fmt: skip
    """Capacity without the TTFT target for every row :func:`screen` could select (branch and bound).

    :func:`~aicap.sizing.serve.capacity.rate_bound` bounds each row's cost per request/s from below at the
    price of one step-time evaluation; rows are evaluated in rounds, each the :func:`screen` of the rows
    whose bound still beats the selection's thresholds (cheapest bound first), until none does.
    Evaluation is coarse (``SCREEN_BISECTIONS``, a capacity known to ``2^-7`` of its bracket and rounded
    down, so thresholds only err high and keep more rows); the rows the screen keeps, and those whose
    coarse capacity rounded to 0 though they meet the targets at idle, are then refined to ``2^-12``.
    Rows never evaluated carry their idle metrics and a rate of 0; the returned mask marks those whose
    bound left them a chance (they lost to the thresholds, not to the targets). ``same``: per row, a row identical to it but for its targets
    (:func:`~aicap.sizing.serve.capacity.rate_bound` evaluates the target-free part once per group). Also returned: each
    (shape, device)'s :func:`cheapest_replicas` row where the screen keeps no replica as cheap on that device, evaluated
    after the rounds (so the thresholds, and the screen's own selection, are as without them); the sizer keeps them beside
    :func:`screen`'s rows. Last, each row's lower bound of its cost per request/s (``price / rate_bound``; ``inf``
    where the bound is 0), which :func:`refill` goes on with.

    ``ttft_t`` [s]: each row's TTFT target. A row that enters the selection is checked at the lightest load
    :func:`capacity` will try for it, ``2^-TTFT_LOAD_BISECTIONS`` of its load without the TTFT target (refining that load
    only raises it): where its TTFT percentile misses the target there, it misses at every load the full evaluation tries
    (TTFT grows with the load), so the row is dropped with those metrics and a rate of 0, and the next row takes its
    place. Without this a pipeline-parallel layout, whose prompts cross every stage, could rank first on its device (the
    bound ignores TTFT) and then serve nothing, crowding out the layout that serves.
    """
    ub_rate, ub_x = rate_bound(step, pp, budget, traffic, tpot_t, same)
    lower = per_rate(price, ub_rate)
    out = idle.copy()  # rows never evaluated keep their idle metrics, with no load and no capacity
    out.arrivals_per_round[:] = 0.0
    out.rate[:] = 0.0
    unit = np.full(price.size, np.inf)
    alive = within_targets(idle, np.full(price.size, np.inf), tpot_t)
    done = ~np.isfinite(lower) | ~alive  # provably no capacity: nothing to evaluate
    ceiling = load_ceiling(step, pp, budget, traffic, ub_x)

    def put(ix: NDArray[np.int64], m: Loaded) -> None:
        out.put(ix, m)
        unit[ix] = per_rate(price[ix], m.rate)

    late = np.zeros(price.size, dtype=bool)
    checked = np.zeros(price.size, dtype=bool)

    def drop_late(ix: NDArray[np.int64]) -> bool:
        """Drop the rows of ``ix`` (evaluated) whose TTFT misses its target at the lightest load :func:`capacity` would try."""
        checked[ix] = True
        if ttft_t is None:
            return False
        timed = ix[np.isfinite(ttft_t[ix]) & (out.rate[ix] > 0)]
        if not timed.size:
            return False
        x = out.arrivals_per_round[timed] / 2.0**TTFT_LOAD_BISECTIONS
        m = at_arrivals(step.take(timed), pp[timed], budget, traffic.take(timed), x)
        miss = np.flatnonzero(m.ttft_s > LATENCY_HEADROOM * ttft_t[timed])
        if miss.size:
            gone = timed[miss]
            put(gone, m.take(miss))
            out.arrivals_per_round[gone] = 0.0
            out.rate[gone] = 0.0
            unit[gone] = np.inf
            late[gone] = True
        return bool(miss.size)

    def check_selection() -> None:
        """Check the rows the selection holds until none of them is late (a dropped row lets the next one in)."""
        while True:
            held = screen(rows, unit)
            if not drop_late(held[~checked[held]]):
                return

    todo = screen(rows, np.where(done, np.inf, lower))
    small = cheapest_replicas(rows, price, ~done)  # each device's smallest replica: a low rate's best buy
    evaluated = np.zeros(price.size, dtype=bool)
    while todo.size:
        put(todo, capacity(step.take(todo), pp[todo], budget, traffic.take(todo), np.full(todo.size, np.inf), tpot_t[todo],
                           ceiling[todo], bisections=SCREEN_BISECTIONS))  # fmt: skip
        done[todo] = evaluated[todo] = True
        check_selection()
        by_shape, by_device = thresholds(rows, unit, done)
        # Of the rows whose bound still beats a threshold, the most promising of each group next (as the first
        # round): each round lowers the thresholds, so fewer rows qualify than if all were taken at once.
        todo = screen(rows, np.where(~done & ((lower <= by_shape) | (lower <= by_device)), lower, np.inf))
    kept = screen(rows, unit)
    # A device's smallest replica is evaluated too, unless the screen already keeps one no dearer on that device.
    pair = _pairs(rows)
    small = small[price[small] < _pair_min(pair, kept, price)[pair[small]]]
    new = small[~evaluated[small]]
    if new.size:
        put(new, capacity(step.take(new), pp[new], budget, traffic.take(new), np.full(new.size, np.inf), tpot_t[new], ceiling[new],
                          bisections=SCREEN_BISECTIONS))  # fmt: skip
        drop_late(new)
        done[new] = evaluated[new] = True
    refine = np.union1d(np.union1d(kept, small[out.rate[small] > 0]), np.flatnonzero(evaluated & (out.rate <= 0) & ~late))
    if refine.size:
        lo = out.arrivals_per_round[refine]
        width = ceiling[refine] / 2.0**SCREEN_BISECTIONS
        put(refine, capacity(step.take(refine), pp[refine], budget, traffic.take(refine), np.full(refine.size, np.inf),
                             tpot_t[refine], lo + width, lower=lo, bisections=_REFINE_BISECTIONS))  # fmt: skip
    return out, ~done, small, lower


REFILL_PER_DEVICE = 3  # rows of a (shape, device) the refill evaluates per round, cheapest bound first
REFILL_ROUNDS = 10  # at most; a (shape, device) has a few dozen layouts at most, so the search ends well before
REFILL_SLACK = 1.05  # a device's best kept row within this factor of its cost without the TTFT target: no refill


def refill(rows: Rows, step: StepModel, pp: F, budget: float, traffic: Traffic, ttft_t: F, tpot_t: F, price: F, lower: F,
           bound: Loaded, cap: Loaded, chosen: NDArray[np.int64], ok: NDArray[np.bool_]) -> NDArray[np.int64]:  # fmt: skip
    """Evaluate more rows of each (shape, device) whose kept rows the TTFT target made dear; the rows now chosen.

    :func:`screen` keeps each (shape, device)'s best row by its cost per request/s *without* the TTFT target,
    ``u_free = price / rate_free``. The full evaluation (``cap``, rows ``chosen``) may find that row's TTFT percentile
    binding far below that: TP2 of Llama-3.1-70B on A100-80GB prefills a 2,000-token prompt within a 1.25 s p99 only
    at 0.03 req/s, where TP8 carries 1 req/s. Its device then looked 10 times dearer than it is, in the plan's
    alternatives and to the solver. Where a (shape, device)'s best full cost ``u* = min price / rate`` over its chosen
    rows exceeds ``REFILL_SLACK`` times their best ``u_free``, the branch and bound goes on with the full evaluation:
    its rows not yet chosen whose lower bound ``lower`` (:func:`screen_bound`) is below ``u*`` are evaluated with
    every target, ``REFILL_PER_DEVICE`` per (shape, device) a round, cheapest bound first, ``u*`` falling as they
    serve, until no bound is below it (or after ``REFILL_ROUNDS`` rounds). Then no layout of that device is cheaper
    per request/s than the best one evaluated; elsewhere the best kept row is within ``REFILL_SLACK`` of every row's
    cost (no row is cheaper than ``u_free`` even without the TTFT target, and none is cheaper with it).

    ``bound`` holds the rows' capacity without the TTFT target (rate 0 where not evaluated); ``cap`` gets the
    evaluated rows' metrics in place; ``ok`` marks the rows that may be evaluated (a KV slot at least).
    """
    pair = _pairs(rows)
    best_free = _pair_min(pair, chosen, per_rate(price, bound.rate))
    for _ in range(REFILL_ROUNDS):
        best = _pair_min(pair, chosen, per_rate(price, cap.rate))
        beat = np.where(best > REFILL_SLACK * best_free, best, -np.inf)  # -inf: a pair that needs no refill takes no row
        outside = np.ones(price.size, dtype=bool)
        outside[chosen] = False
        cand = np.flatnonzero(outside & ok & (lower < beat[pair]))
        if not cand.size:
            break
        order = cand[np.lexsort((cand, lower[cand], pair[cand]))]
        extra = np.sort(order[_rank_in_group(pair[order]) < REFILL_PER_DEVICE])
        cap.put(extra, capacity(step.take(extra), pp[extra], budget, traffic.take(extra), ttft_t[extra], tpot_t[extra],
                                report_ttft=True))  # fmt: skip
        chosen = np.union1d(chosen, extra)
    return chosen


def spread(bound: Loaded, sub: Loaded, chosen: NDArray[np.int64]) -> Loaded:
    """Full metrics for the ``chosen`` rows; the others keep their bound with a rate of 0."""
    out = bound.copy()
    out.rate[:] = 0.0
    out.put(chosen, sub)
    return out
