"""Queueing margin: the request rate a replica sustains while its TTFT percentile meets the target.

Approximation (M/M/c, Erlang C). A replica with a running batch of ``c`` slots is ``c`` servers; a
request holds a slot for its whole life, ``S = E2E`` seconds, so each slot serves ``μ = 1/S``. With
Poisson arrivals at ``λ`` and offered load ``a = λ/μ`` (``ρ = a/c < 1``), the probability of waiting is
Erlang C, ``C(c, a) = B / (1 − ρ(1 − B))`` with Erlang B the truncated-Poisson ratio
``B(c, a) = P(N = c) / P(N ≤ c)``, ``N ~ Poisson(a)`` (computed in closed form with the regularised
incomplete gamma function, so the cost does not grow with ``c``), and the wait beyond ``t`` is
``P(W > t) = C·exp(−(cμ − λ)·t)``. The ``p`` quantile of the wait is therefore

    W_p = max(0, ln(C / (1 − p)) / (cμ − λ)),

and ``TTFT_p = W_p + T_prefill``. Service times are in fact closer to deterministic than
exponential, so M/M/c over-states waiting a little: a safety margin, not a bias to hide. The largest
``λ`` with ``TTFT_p ≤`` target (and ``ρ ≤ ρ_max``) is found by bisection, vectorised over candidates.

Reference: Kleinrock (1975), "Queueing Systems, Vol. 1", Sec. 3.5.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
RHO_MAX = 0.95  # never plan a replica beyond 95% busy
_BISECTIONS = 30


def erlang_c(servers: ArrayLike, load: ArrayLike) -> F:
    """Probability that an arrival waits, ``C(c, a)``, for arrays of servers ``c`` and load ``a``."""
    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    from scipy.special import gammaincc, gammaln

    c, a = np.broadcast_arrays(c, a)
    a_pos = np.maximum(a, 1e-300)
    log_pmf = c * np.log(a_pos) - a_pos - gammaln(c + 1.0)
    cdf = gammaincc(c + 1.0, a_pos)  # P(N <= c) for N ~ Poisson(a)
    b = np.where(a > 0, np.exp(log_pmf) / np.maximum(cdf, 1e-300), 0.0)
    rho = a / np.maximum(c, 1.0)
    out = b / (1.0 - rho * (1.0 - b))
    return np.asarray(np.where(rho >= 1.0, 1.0, np.clip(out, 0.0, 1.0)), dtype=float)


def wait_quantile(servers: ArrayLike, rate: ArrayLike, service_s: ArrayLike, p: ArrayLike) -> F:
    """``p`` quantile of the queueing wait (seconds) under M/M/c; ``inf`` at or past saturation."""
    c = np.asarray(servers, dtype=float)
    lam = np.asarray(rate, dtype=float)
    mu = 1.0 / np.asarray(service_s, dtype=float)
    slack = c * mu - lam
    cw = erlang_c(c, lam / mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.log(np.maximum(cw, 1e-300) / (1.0 - np.asarray(p, dtype=float))) / slack
    return np.asarray(np.where(slack <= 0, np.inf, np.maximum(w, 0.0)), dtype=float)


def sustainable_rate(servers: ArrayLike, service_s: ArrayLike, prefill_s: ArrayLike, ttft_target_s: ArrayLike | None, p: ArrayLike) -> F:
    """Largest arrival rate (requests/s) with ``TTFT_p ≤ target`` and utilisation ``≤ ρ_max``.

    Returns 0 where even an idle replica misses the target (``T_prefill > target``).
    """
    c = np.asarray(servers, dtype=float)
    s = np.asarray(service_s, dtype=float)
    pre = np.asarray(prefill_s, dtype=float)
    c, s, pre = np.broadcast_arrays(c, s, pre)
    hi = RHO_MAX * c / s
    if ttft_target_s is None:
        return np.asarray(hi, dtype=float)
    target = np.broadcast_to(np.asarray(ttft_target_s, dtype=float), hi.shape)
    ok_at_hi = wait_quantile(c, hi, s, p) + pre <= target
    lo = np.zeros_like(hi)
    top = hi.copy()
    for _ in range(_BISECTIONS):
        mid = (lo + top) / 2.0
        good = wait_quantile(c, mid, s, p) + pre <= target
        lo = np.where(good, mid, lo)
        top = np.where(good, top, mid)
    rate = np.where(ok_at_hi, hi, lo)
    return np.asarray(np.where(pre > target, 0.0, rate), dtype=float)
