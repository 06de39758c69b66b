"""Arrival processes and length histograms: moments within sampling error, determinism, validation.

Tolerances. For ``n`` i.i.d. gaps with coefficient of variation ``cv``, the sample mean has relative
standard error ``cv/√n``; the sample standard deviation has relative standard error about
``√((κ − 1)/(4n))`` (``κ`` the kurtosis: 9 for the exponential, ``3 + 6/k`` for Gamma(k)). With
``n = 200,000`` that is 0.22% / 0.32% (Poisson) and 0.45% / 0.57% (gamma, cv 2) — the bounds below
are over 4σ (cv: sum of both errors).
"""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.sim.arrivals import arrival_times, sample_lengths

N = 200_000


def _rate_cv(t: np.ndarray) -> tuple[float, float]:
    gaps = np.diff(np.concatenate([[0.0], t]))
    return 1.0 / gaps.mean(), gaps.std() / gaps.mean()


@pytest.mark.parametrize(
    ("kind", "cv", "rate_tol", "cv_tol"),
    [("poisson", 1.0, 0.01, 0.02), (None, 1.0, 0.01, 0.02), (None, 2.0, 0.02, 0.05), ("gamma", 0.5, 0.005, 0.02)],
)
def test_rate_and_cv_within_sampling_error(kind: str | None, cv: float, rate_tol: float, cv_tol: float) -> None:
    t = arrival_times(25.0, N, cv=cv, seed=3, kind=kind)  # type: ignore[arg-type]
    assert t.shape == (N,) and t.dtype == np.float64
    assert (np.diff(t) >= 0).all() and t[0] > 0
    rate, got_cv = _rate_cv(t)
    assert rate == pytest.approx(25.0, rel=rate_tol)
    assert got_cv == pytest.approx(cv, rel=cv_tol)


def test_constant_is_exact() -> None:
    t = arrival_times(4.0, 5, cv=0.0)
    np.testing.assert_allclose(t, [0.25, 0.5, 0.75, 1.0, 1.25])
    np.testing.assert_array_equal(arrival_times(4.0, 5, kind="constant"), t)


def test_same_seed_same_arrays_and_seeds_differ() -> None:
    for cv in (1.0, 2.0):
        np.testing.assert_array_equal(arrival_times(10.0, 1000, cv=cv, seed=7), arrival_times(10.0, 1000, cv=cv, seed=7))
        assert not np.array_equal(arrival_times(10.0, 1000, cv=cv, seed=7), arrival_times(10.0, 1000, cv=cv, seed=8))


def test_empty_and_invalid() -> None:
    assert arrival_times(1.0, 0).shape == (0,)
    for bad in ({"rate_per_s": 0.0, "n": 3}, {"rate_per_s": 1.0, "n": -1}, {"rate_per_s": 1.0, "n": 3, "cv": -1.0}):
        with pytest.raises(ValueError):
            arrival_times(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        arrival_times(1.0, 3, cv=0.0, kind="gamma")


def test_sample_lengths_frequencies() -> None:
    values = np.array([128, 1024, 4096], dtype=np.int64)
    weights = np.array([2.0, 1.0, 1.0])
    x = sample_lengths(values, weights, N, seed=1)
    assert x.dtype == np.int64 and set(np.unique(x)) <= set(values.tolist())
    p = weights / weights.sum()
    freq = np.array([(x == v).mean() for v in values])
    sigma = np.sqrt(p * (1 - p) / N)  # binomial standard error of each bar's share
    assert (np.abs(freq - p) < 4 * sigma).all()
    np.testing.assert_array_equal(x, sample_lengths(values, weights, N, seed=1))


def test_sample_lengths_fixed_and_invalid() -> None:
    np.testing.assert_array_equal(sample_lengths(np.array([512]), np.array([1.0]), 4, seed=0), [512] * 4)
    with pytest.raises(ValueError):
        sample_lengths(np.array([1, 2]), np.array([1.0]), 4, seed=0)
    with pytest.raises(ValueError):
        sample_lengths(np.array([1, 2]), np.array([0.0, 0.0]), 4, seed=0)
    with pytest.raises(ValueError):
        sample_lengths(np.array([-1]), np.array([1.0]), 4, seed=0)
