"""The token budget as a queue (serve/budget.py): the GI/D/1 wait's Cramér–Lundberg tail against a root found by scipy."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.serve.budget import budget_busy, budget_wait_quantile


def test_budget_wait_has_the_lundberg_exponent_of_gid1() -> None:
    """M/D/1 (cv 1): θS solves ρ(e^u − 1) = u; gamma arrivals: u = k·ln(1 + u/(kρ)), k = 1/cv². P(W > W_q) = 1 − q."""
    from scipy.optimize import brentq

    for rho, cv in ((0.5, 1.0), (0.3, 2.0), (0.8, 1.5), (0.1, 1.0)):
        k = 1.0 / cv**2
        u = brentq(lambda v, k=k, rho=rho: k * np.log1p(v / (k * rho)) - v, 1e-9, 200.0)
        s = 0.04
        got = float(budget_wait_quantile(np.array([rho]), np.array([s]), cv, 0.99)[0])
        c = float(budget_busy(np.array([rho]), cv)[0])
        assert c == pytest.approx(min(rho * max(cv**2, 1.0), 1.0))
        assert got == pytest.approx(max(np.log(c / 0.01), 0.0) * s / u, rel=1e-6)
    # Poisson at ρ = 0.5: e^u = 1 + 2u, u = 1.2564.
    assert float(budget_wait_quantile(np.array([0.5]), np.array([1.0]), 1.0, 0.99)[0]) == pytest.approx(np.log(50.0) / 1.25643, rel=1e-4)
    # More load or burstier arrivals never wait less; no load, no wait; past saturation, no end.
    loads = np.linspace(0.05, 0.95, 19)
    assert np.all(np.diff(budget_wait_quantile(loads, np.full(19, 0.04), 1.0, 0.99)) >= 0)
    assert np.all(np.diff(budget_wait_quantile(np.full(4, 0.6), np.full(4, 0.04), np.array([1.0, 1.5, 2.0, 3.0]), 0.99)) > 0)
    assert budget_wait_quantile(np.array([0.0, 1.0]), np.array([0.04, 0.04]), 1.0, 0.99).tolist() == [0.0, float("inf")]
