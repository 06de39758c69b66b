"""The multi-level bisection gives the plain bisection's answer, point for point, whatever the grouping."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.serve.search import bisect_rows, levels_for


def _plain(good, lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    lo, hi = lo.copy(), hi.copy()
    for _ in range(n):
        mid = (lo + hi) / 2.0
        ok = good(np.arange(lo.size), mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return lo, hi


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("halvings", [1, 5, 12])
def test_same_answer_as_plain_bisection_even_for_a_non_monotone_predicate(levels: int, halvings: int) -> None:
    rng = np.random.default_rng(halvings * 10 + levels)
    n = 9
    threshold = rng.uniform(0.0, 10.0, n)
    hole = rng.uniform(0.0, 10.0, n)  # a band where the predicate is wrongly False: the walk must match anyway

    def good(rows: np.ndarray | None, x: np.ndarray) -> np.ndarray:
        r = np.arange(n) if rows is None else rows
        return (x <= threshold[r]) & ~((x > hole[r]) & (x < hole[r] + 0.7))

    lo, hi = np.zeros(n), np.full(n, 10.0)
    expect = _plain(good, lo, hi, halvings)
    got = bisect_rows(good, lo, hi, halvings, levels=levels)
    assert np.array_equal(got[0], expect[0]) and np.array_equal(got[1], expect[1])


def test_fewer_rows_evaluate_more_levels_per_call() -> None:
    assert levels_for(1) > levels_for(10) > levels_for(1000) == 1
    calls = []

    def good(rows: np.ndarray | None, x: np.ndarray) -> np.ndarray:
        calls.append(x.size)
        return x < 3.3

    bisect_rows(good, np.zeros(2), np.full(2, 8.0), 12)
    assert len(calls) == 3 and calls[0] == 2 * 15  # three passes of four levels, 15 points per row


def test_no_rows() -> None:
    lo, hi = bisect_rows(lambda rows, x: x < 1.0, np.zeros(0), np.zeros(0), 12)
    assert lo.size == hi.size == 0
