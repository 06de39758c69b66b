"""Erlang B and C without scipy.special: checked against scipy's incomplete gamma function and the recursion."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.serve.queueing import erlang_b, erlang_c, wait_quantile


def _reference_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    from scipy.special import gammaincc, gammaln

    a_pos = np.maximum(a, 1e-300)
    b = np.where(a > 0, np.exp(c * np.log(a_pos) - a_pos - gammaln(c + 1.0)) / np.maximum(gammaincc(c + 1.0, a_pos), 1e-300), 0.0)
    rho = a / np.maximum(c, 1.0)
    return np.asarray(np.where(rho >= 1.0, 1.0, np.clip(b / (1.0 - rho * (1.0 - b)), 0.0, 1.0)))


def test_erlang_c_matches_the_incomplete_gamma_form_for_real_servers() -> None:
    rng = np.random.default_rng(7)
    c = np.concatenate([rng.uniform(0.2, 3000.0, 5000), rng.integers(1, 64, 500).astype(float)])
    a = c * rng.uniform(0.0, 1.05, c.size)
    assert np.max(np.abs(erlang_c(c, a) - _reference_c(c, a))) < 1e-10


@pytest.mark.parametrize("c", [1, 2, 5, 17, 128, 1024])
def test_erlang_b_matches_the_integer_recursion(c: int) -> None:
    for a in (0.1 * c, 0.7 * c, 0.99 * c, c + 0.5):
        b = 1.0
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        assert float(erlang_b(c, a)) == pytest.approx(b, rel=1e-9)


def test_erlang_edges() -> None:
    assert float(erlang_b(4, 0.0)) == 0.0 and float(erlang_c(4, 0.0)) == 0.0
    assert float(erlang_c(4, 4.0)) == 1.0 and float(erlang_c(4, 9.0)) == 1.0  # at or past saturation everyone waits
    assert float(erlang_c(1, 0.5)) == pytest.approx(0.5)  # M/M/1: P(wait) = ρ
    # M/M/1 wait quantile: P(W > t) = ρ·e^{−(μ − λ)t}
    rho, mu = 0.8, 1.0
    t = float(wait_quantile(1, rho * mu, 1.0 / mu, 0.99))
    assert rho * np.exp(-(mu - rho * mu) * t) == pytest.approx(0.01)
