"""Vectorised bisection over many rows, several levels per evaluation when the rows are few.

The load model is evaluated for many candidate replicas at once, and a bisection costs one
evaluation per halving. When only a few rows are searched, an evaluation costs about the same for
one point per row as for fifteen (numpy's per-call overhead dominates), so :func:`bisect_rows`
evaluates every midpoint of ``b`` levels of the bisection tree in one call (``2^b − 1`` points per row)
and then walks the tree as the bisection would have. The points are computed exactly as the plain
bisection computes them, ``mid = (lo + hi)/2`` level by level, so the result is the bisection's,
point for point, whatever the predicate (monotone or not); only the grouping of the evaluations
changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
Rows = NDArray[np.int64]
Predicate = Callable[[Rows | None, F], NDArray[np.bool_]]
"""``good(rows, x)``: whether row ``rows[j]`` is acceptable at ``x[j]``; ``rows is None`` means every row, in order."""

# Levels per evaluation by the number of rows searched: few rows → more levels at once.
_LEVELS = ((2, 4), (6, 3), (16, 2))


def levels_for(n: int) -> int:
    """Bisection levels to evaluate together for ``n`` rows (1 from 17 rows on)."""
    for most, levels in _LEVELS:
        if n <= most:
            return levels
    return 1


def bisect_rows(good: Predicate, lo: F, hi: F, halvings: int, *, levels: int | None = None) -> tuple[F, F]:
    """Bisect ``[lo, hi]`` per row ``halvings`` times on ``good``: returns the final ``(lo, hi)``.

    Equivalent to ``halvings`` rounds of ``mid = (lo + hi)/2; lo, hi = (mid, hi) if good else (lo, mid)``.
    ``levels`` (default :func:`levels_for`) bisection levels are evaluated per call of ``good``.
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    n = lo.size
    if n == 0:
        return lo, hi
    per_call = levels or levels_for(n)
    cols = np.arange(n)
    left = halvings
    while left > 0:
        b = min(left, per_call)
        if b == 1:
            mid = (lo + hi) / 2.0
            ok = np.asarray(good(None, mid), dtype=bool)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
            left -= 1
            continue
        lows, highs, mids = [lo[None]], [hi[None]], []
        for _ in range(b):  # level l holds 2^l intervals; children of interval i are 2i (left) and 2i + 1 (right)
            low, high = lows[-1], highs[-1]
            mid = (low + high) / 2.0
            mids.append(mid)
            lows.append(np.stack([low, mid], axis=1).reshape(-1, n))
            highs.append(np.stack([mid, high], axis=1).reshape(-1, n))
        points = np.concatenate(mids)  # (2^b − 1, n): level l's midpoints start at row 2^l − 1
        ok = np.asarray(good(np.tile(cols, points.shape[0]), points.ravel()), dtype=bool).reshape(points.shape)
        pos = np.zeros(n, dtype=np.int64)
        for level in range(b):
            pos = 2 * pos + ok[(2**level - 1) + pos, cols]
        lo, hi = lows[b][pos, cols], highs[b][pos, cols]
        left -= b
    return lo, hi
