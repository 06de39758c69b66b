"""Capacity of a replica: the largest load that meets its latency targets, and a cheap bound on it.

:func:`capacity` bisects the load model of :mod:`aicap.sizing.serve.load` on the arrivals per round
``x`` (every constraint tightens as ``x`` grows): first every constraint but TTFT, then TTFT only on the
rows where it binds. :func:`rate_bound` bounds the capacity from above at the price of one step-time
evaluation, so a planner can skip layouts that cannot matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.serve.deviates import z_of
from aicap.sizing.serve.load import (
    BUDGET_UTILISATION,
    LATENCY_HEADROOM,
    SLOT_SIGMAS,
    SLOT_UTILISATION,
    at_arrivals,
    at_arrivals_of,
    of_rows,
)
from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.search import bisect_rows
from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]
BISECTIONS = 12  # on arrivals per round: 2^-12 of the range (rate_bound's bracket where known)
TTFT_LOAD_BISECTIONS = 11  # on arrivals per round where TTFT binds: 2^-11 of the load that meets the rest


def within_targets(m: Loaded, ttft_target_s: F, tpot_target_s: F) -> NDArray[np.bool_]:
    """Whether each replica meets its targets with the headroom, and the budget, slot and CUDA-graph caps, at its load."""
    return np.asarray(
        (m.budget_use <= BUDGET_UTILISATION)
        & (m.slot_use <= SLOT_UTILISATION)
        & (m.graph_use <= 1.0)
        & (m.ttft_s <= LATENCY_HEADROOM * ttft_target_s)
        & (m.tpot_s <= LATENCY_HEADROOM * tpot_target_s)
    )


_BOUND_GRID = 48  # points of the load grid on which rate_bound brackets λ(x)


def rate_bound(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, tpot_target_s: ArrayLike,
               same: NDArray[np.int64] | None = None) -> tuple[F, F]:  # fmt: skip
    """Upper bounds on the rate each replica can carry and on its arrivals per round, without the queueing terms.

    The step time is convex and non-decreasing in the prefill tokens ``p`` (a sum of maxima of affine
    terms), and tokens are conserved, so the mean round time is at least the step at the mean load,
    ``τ(x) ≥ T_lb(x) = P0·T(d, 0) + (1 − P0)·T(d(x), min(x·I/(pp·(1 − P0)), C − d))`` (Jensen on the rounds
    without and with a prompt lump, ``P0 = e^(−x·I/L)`` a lower bound on the share without, and a larger
    ``P0`` only raises the right side; MoE expert bytes are concave in the tokens, so MoE takes ``p = 0``).
    TPOT is at least ``τ`` plus the floors of :func:`at_arrivals`' spreads, ``|z_q|`` times
    ``sqrt((T'_min·sqrt(x·(O − 1))/pp)² + σ_lb²/(O − 1))`` (``T'_min`` the smallest slope of the step in
    ``d``; ``σ_lb² = P0·(1 − P0)·(T_busy − T_idle)²``, the variance between rounds with and without a lump,
    which the law of total variance keeps below ``Var τ``). So a feasible load has ``TPOT_lb(x) ≤ H·TPOT_target``
    (``H`` the headroom), and on a grid ``x_0 = 0 < x_1 < … < x_G = x_max``
    ``λ(x) = x/τ(x) ≤ x_j/T_lb(x_{j−1})`` for ``x ∈ (x_{j−1}, x_j]``. The bound is the largest such ratio
    over the intervals that can be feasible (the token-budget and slot caps at ``x_{j−1}`` too); a second
    pass regrids ``[0, x_last]``, ``x_last`` the end of the last such interval. Used to skip exact
    evaluations that cannot matter.

    ``same``: per row, the index of a row whose step, ``pp`` and traffic are identical to its own (only the
    targets may differ; workloads that differ only in their SLO): the first pass, whose grid does not
    depend on the target, is then evaluated once per such group. Results are the same as without.

    Returns
    -------
    rate, arrivals
        Upper bounds on the capacity (requests/s) and on the arrivals per round at capacity.
    """
    pp_a = np.asarray(pp, dtype=float)
    shape = np.broadcast_shapes(pp_a.shape, traffic.input_tokens.shape)
    limit = LATENCY_HEADROOM * np.broadcast_to(np.asarray(tpot_target_s, dtype=float), shape)
    top = load_ceiling(step, pp_a, budget, traffic)
    rate, last = _fitted(step, pp_a, budget, traffic, top, limit, same)
    # Once more on the narrowed range: a finer grid where the feasible loads are.
    narrower = (last > 0) & (last < top)
    if narrower.any():
        rate2, last2 = _fitted(step, pp_a, budget, traffic, np.where(narrower, last, top), limit)
        rate, last = np.where(narrower, np.minimum(rate, rate2), rate), np.where(narrower, np.minimum(last, last2), last)
    return np.asarray(rate, dtype=float), np.asarray(last, dtype=float)


class _Grid(NamedTuple):
    """:func:`rate_bound`'s quantities on the grid ``x_j = j·x_max/G``, ``(G + 1, n)`` (``o1`` ``(n,)``), before any target."""

    grid: F
    t_lb: F
    tpot_lb: F
    use: F
    slot_use: F
    o1: F

    def take(self, ix: NDArray[np.int64]) -> _Grid:
        """The rows (last axis) at ``ix``."""
        return _Grid(*(np.asarray(v[..., ix], dtype=float) for v in self))

    def fit(self, limit: F) -> tuple[F, F]:
        """The bound on the rate and the end of the last interval that can hold a feasible load, at TPOT ``limit``."""
        fits = (self.use <= BUDGET_UTILISATION) & (self.slot_use <= SLOT_UTILISATION) & ((self.tpot_lb <= limit) | (self.o1 <= 0.0))
        feasible = fits[:-1]  # interval (x_{j-1}, x_j] can hold a feasible load
        ratio = np.where(feasible, self.grid[1:] / np.maximum(self.t_lb[:-1], 1e-12), 0.0)
        last = np.where(feasible, self.grid[1:], 0.0).max(axis=0)
        return np.asarray(ratio.max(axis=0), dtype=float), np.asarray(last, dtype=float)


def _fitted(step: StepModel, pp_a: F, budget: float, traffic: Traffic, x_max: F, limit: F,
            same: NDArray[np.int64] | None = None) -> tuple[F, F]:  # fmt: skip
    """:func:`_bound_grid` fitted at TPOT ``limit`` (:meth:`_Grid.fit`), ``CHUNK_ROWS`` rows at a time.

    With ``same`` the grid is evaluated once per group of rows alike but for their targets (its
    representatives, ``CHUNK_ROWS`` at a time) and fitted at each member's ``limit``. Every row is
    evaluated on its own, so the values do not depend on the chunking; each chunk's ``(G + 1, rows)``
    temporaries stay in cache and are fitted where they are made, never gathered into one array.
    """
    n = limit.size
    if limit.ndim != 1:
        return _bound_grid(step, pp_a, budget, traffic, x_max).fit(limit)
    pp_n = np.broadcast_to(pp_a, (n,))
    if same is None:
        reps, inv = np.arange(n), np.arange(n)
    else:
        reps, found = np.unique(same, return_inverse=True)
        inv = found.ravel()
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(0, reps.size + CHUNK_ROWS, CHUNK_ROWS))
    rate, last = np.empty(n), np.empty(n)
    for c, start in enumerate(range(0, reps.size, CHUNK_ROWS)):
        ix = reps[start : start + CHUNK_ROWS]
        grid = _bound_grid(step.take(ix), pp_n[ix], budget, traffic.take(ix), x_max[ix])
        rows = order[bounds[c] : bounds[c + 1]]
        if same is not None:
            grid = grid.take(inv[rows] - start)
        rate[rows], last[rows] = grid.fit(limit[rows])
    return rate, last


def _bound_grid(step: StepModel, pp_a: F, budget: float, traffic: Traffic, x_max: F) -> _Grid:
    """:func:`rate_bound` on the grid ``x_j = j·x_max/G`` (every feasible load must lie in ``[0, x_max]``)."""
    o1 = traffic.decode_steps
    i = traffic.input_tokens
    grid = x_max * (np.arange(_BOUND_GRID + 1, dtype=float) / _BOUND_GRID)[:, None]  # (G+1, n)
    d = grid * o1 / pp_a
    # (A prefill-first engine's prompts have the whole budget; its round, a prefill step then a decode step, is never
    # shorter than the mixed step priced below.)
    room = traffic.room(budget, d, step.decode_tokens)
    # Split on whether any prompt lump arrives (probability 1 − P0, P0 = e^(−lumps) under Poisson and at
    # least that under bursty arrivals): Jensen on each part bounds E[T] from below more tightly.
    lump = np.minimum(i, room)
    p0 = np.exp(-grid * i / lump)
    busy = np.minimum(grid * i / pp_a / np.maximum(1.0 - p0, 1e-12), room)
    t_idle, t_busy = step.seconds(d, 0.0), step.seconds(d, 0.0 if step.experts_per_token else busy)
    t_lb = p0 * t_idle + (1.0 - p0) * t_busy
    # TPOT_q ≥ τ + |z|·sqrt((T'_min·sqrt(n)/pp)² + σ²/(O − 1)): the spreads of at_arrivals at their floors
    # (T'_min ≤ ∂τ/∂d; σ² ≥ P0·(1 − P0)·(T_busy − T_idle)², the variance between rounds with and without a lump).
    z = np.abs(z_of(traffic.quantile))
    n_dec = grid * o1
    sigma2 = p0 * (1.0 - p0) * (t_busy - t_idle) ** 2
    tpot_lb = t_lb + z * np.sqrt((step.slope_floor() * np.sqrt(n_dec) / pp_a) ** 2 + sigma2 / np.maximum(o1, 1.0))
    tpot_lb = tpot_lb / traffic.tokens_per_step
    # The token-budget and slot shares at a load are deterministic and non-decreasing in x (see at_arrivals).
    use = grid * i / (room * np.minimum(np.maximum(grid, 1.0), pp_a))
    running = grid * (o1 + np.maximum(i / room, 1.0))
    slot_use = (running + SLOT_SIGMAS * np.sqrt(running)) / np.maximum(traffic.slots, 1.0)
    return _Grid(grid, t_lb, np.asarray(tpot_lb, dtype=float), use, slot_use, np.broadcast_to(o1, grid.shape[1:]).astype(float))


def load_ceiling(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, upper: ArrayLike | None = None) -> F:
    """Arrivals per round beyond which a replica breaks a utilisation cap whatever its step time.

    ``min(C·pp/(I + q·(O − 1)/E), slots/O)`` (the token budget or the slots filled; ``q`` budget tokens per
    decoding sequence and ``E`` output tokens per step, both 1 without speculative decoding; ``C·pp/I`` for the budget
    of a prefill-first engine, whose prefill steps decode nothing), or ``upper`` where smaller;
    the bracket :func:`capacity` bisects.
    """
    pp_a = np.asarray(pp, dtype=float)
    shape = np.broadcast_shapes(pp_a.shape, traffic.input_tokens.shape)
    o1 = traffic.decode_steps
    # (On a prefill-first engine decoders take no budget from prompts: C·pp/I.)
    decoding = np.where(traffic.prefills_first, 0.0, o1 * step.decode_tokens)
    x_budget = budget * pp_a / (traffic.input_tokens + decoding)
    x_slots = traffic.slots / (o1 + 1.0)
    hi = np.broadcast_to(np.maximum(np.minimum(x_budget, x_slots), 1e-9), shape).astype(float)
    if upper is not None:
        hi = np.maximum(np.minimum(hi, np.asarray(upper, dtype=float)), 1e-9)
    return hi


def capacity(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, ttft_target_s: ArrayLike,
             tpot_target_s: ArrayLike, upper: ArrayLike | None = None, without_ttft: ArrayLike | None = None,
             lower: ArrayLike | None = None, bisections: int = BISECTIONS, *, report_ttft: bool = False) -> Loaded:  # fmt: skip
    """The replica at the largest load that meets both targets (``inf`` target: none); rate 0 where none does.

    Rows are evaluated ``CAPACITY_CHUNK_ROWS`` at a time (:func:`_chunks`); see :func:`_capacity` for the method.
    ``report_ttft``: the TTFT percentile at the capacity is computed even where no row has a TTFT target
    (a caller that reports it; a screen that does not need it leaves it out, which is cheaper).
    """
    pp_a = np.asarray(pp, dtype=float)
    shape = np.broadcast_shapes(pp_a.shape, traffic.input_tokens.shape)
    if len(shape) != 1 or shape[0] <= CAPACITY_CHUNK_ROWS:
        return _capacity(step, pp_a, budget, traffic, ttft_target_s, tpot_target_s, upper, without_ttft, lower, bisections,
                         report_ttft=report_ttft)  # fmt: skip
    out = Loaded.zeros(shape)
    for ix, (sub_pp, ttft, tpot, up, known, low) in _chunks(
        shape[0], CAPACITY_CHUNK_ROWS, pp_a, ttft_target_s, tpot_target_s, upper, without_ttft, lower
    ):
        part = _capacity(step.take(ix), sub_pp, budget, traffic.take(ix), ttft, tpot, up, known, low, bisections,  # type: ignore[arg-type]
                         report_ttft=report_ttft)  # fmt: skip
        out.put(ix, part)
    return out


CHUNK_ROWS = 1024  # rows of rate_bound's grid evaluated at once: its (grid, operator groups, rows) temporaries then stay
# in cache. Measured on the 1,000-workload benchmark's rate bound (57,780 rows): 0.45 s in chunks of 1,024 rows against
# 1.97 s in one pass, bit for bit the same results (every row is evaluated on its own).
CAPACITY_CHUNK_ROWS = 8192  # the same for capacity(), whose temporaries are a grid's width smaller: smaller chunks
# cost more in per-call work than they gain (100 workloads: 2.2 s whole, 2.7 s in chunks of 1,024)


def _chunks(n: int, size: int, *arrays: ArrayLike | None) -> Iterator[tuple[NDArray[np.int64], list[F | None]]]:
    """Row indices of each chunk of ``size`` rows and every array (scalars broadcast; ``None`` stays) cut to it."""
    full = [None if v is None else np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in arrays]
    for start in range(0, n, size):
        ix = np.arange(start, min(start + size, n))
        yield ix, [None if v is None else v[ix] for v in full]


def _capacity(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, ttft_target_s: ArrayLike,
              tpot_target_s: ArrayLike, upper: ArrayLike | None = None, without_ttft: ArrayLike | None = None,
              lower: ArrayLike | None = None, bisections: int = BISECTIONS, *, report_ttft: bool = False) -> Loaded:  # fmt: skip
    """:func:`capacity` on one chunk of rows.

    Bisection on arrivals per round ``x`` over ``[lower, x_max]`` (``lower`` a load known to meet the
    targets, default 0), ``x_max`` from :func:`load_ceiling` (``upper`` a known bound such as
    :func:`rate_bound`'s); every constraint tightens as ``x`` grows. After ``bisections`` halvings the
    bracket is ``2^-bisections`` of its start. ``without_ttft``, the arrivals per round at the capacity
    without the TTFT target (an earlier call's ``arrivals_per_round``), skips that first stage.
    """
    pp_a = np.asarray(pp, dtype=float)
    shape = np.broadcast_shapes(pp_a.shape, traffic.input_tokens.shape)
    ttft_t = np.broadcast_to(np.asarray(ttft_target_s, dtype=float), shape)
    tpot_t = np.broadcast_to(np.asarray(tpot_target_s, dtype=float), shape)
    hi = load_ceiling(step, pp_a, budget, traffic, upper)
    # First every constraint but TTFT (cheap), then TTFT only where it binds, on those rows only.
    lo = np.zeros(shape) if lower is None else np.broadcast_to(np.asarray(lower, dtype=float), shape).copy()

    def meets_all_but_ttft(rows: NDArray[np.int64] | None, x: F) -> NDArray[np.bool_]:
        m = at_arrivals_of(step, pp_a, budget, traffic, rows, x, ttft=False)
        return within_targets(m, np.full(x.shape, np.inf), of_rows(tpot_t, rows))

    if without_ttft is None and bisections > 0:
        lo, hi = bisect_rows(meets_all_but_ttft, lo, np.asarray(hi, dtype=float), bisections)
    if without_ttft is not None:
        lo = np.broadcast_to(np.asarray(without_ttft, dtype=float), shape).copy()
    timed = np.flatnonzero(np.isfinite(ttft_t) & (lo > 0))
    late = np.zeros(0, dtype=np.int64)
    first: Loaded | None = None
    if timed.size:
        first = at_arrivals(step.take(timed), pp_a[timed], budget, traffic.take(timed), lo[timed])
        late = timed[first.ttft_s > LATENCY_HEADROOM * ttft_t[timed]]
    settled: Loaded | None = None
    if late.size:
        sub_step, sub_pp, sub_tr, sub_t = step.take(late), pp_a[late], traffic.take(late), ttft_t[late]

        def meets_ttft(rows: NDArray[np.int64] | None, x: F) -> NDArray[np.bool_]:
            return np.asarray(at_arrivals_of(sub_step, sub_pp, budget, sub_tr, rows, x).ttft_s <= LATENCY_HEADROOM * of_rows(sub_t, rows))

        s_lo, _ = bisect_rows(meets_ttft, np.zeros(late.size), lo[late].copy(), TTFT_LOAD_BISECTIONS)
        lo = lo.copy()
        lo[late] = s_lo
        settled = at_arrivals(sub_step, sub_pp, budget, sub_tr, s_lo)
    # Judge each timed row by the evaluation that placed it (a re-evaluation could differ in the last
    # digits and reject a row accepted at its load); only the other rows are evaluated here.
    others = np.setdiff1d(np.arange(lo.size), timed)
    best = Loaded.zeros(lo.shape)
    if others.size:
        best.put(others, at_arrivals(step.take(others), pp_a[others], budget, traffic.take(others), lo[others],
                                     ttft=report_ttft or bool(np.isfinite(ttft_t).any())))  # fmt: skip
    if first is not None:
        best.put(timed, first)
    if settled is not None:
        best.put(late, settled)
    ok = within_targets(best, ttft_t, tpot_t) & (lo > 0)
    return Loaded(
        arrivals_per_round=np.where(ok, lo, 0.0),
        rate=np.where(ok, best.rate, 0.0),
        round_s=best.round_s,
        running=best.running,
        ttft_s=best.ttft_s,
        tpot_s=best.tpot_s,
        budget_use=best.budget_use,
        slot_use=best.slot_use,
        graph_use=best.graph_use,
    )
