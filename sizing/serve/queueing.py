"""Queueing margin: the request rate a replica sustains while its TTFT percentile meets the target.

Approximation (M/M/c, Erlang C). A replica with a running batch of ``c`` slots is ``c`` servers; a
request holds a slot for its whole life, ``S = E2E`` seconds, so each slot serves ``μ = 1/S``. With
Poisson arrivals at ``λ`` and offered load ``a = λ/μ`` (``ρ = a/c < 1``), the probability of waiting is
Erlang C, ``C(c, a) = B / (1 − ρ(1 − B))`` with Erlang B the truncated-Poisson ratio
``B(c, a) = P(N = c) / P(N ≤ c)``, ``N ~ Poisson(a)``, which holds for real ``c`` through the
regularised incomplete gamma function (see :func:`erlang_b`), and the wait beyond ``t`` is
``P(W > t) = C·exp(−(cμ − λ)·t)``. The ``p`` quantile of the wait is therefore

    W_p = max(0, ln(C / (1 − p)) / (cμ − λ)),

and ``TTFT_p = W_p + T_prefill``. Service times are in fact closer to deterministic than
exponential, so M/M/c over-states waiting a little: a safety margin, not a bias to hide. The largest
``λ`` with ``TTFT_p ≤`` target (and ``ρ ≤ ρ_max``) is found by bisection, vectorised over candidates.

Reference: Kleinrock (1975), "Queueing Systems, Vol. 1", Sec. 3.5.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
RHO_MAX = 0.95  # never plan a replica beyond 95% busy
_BISECTIONS = 30

_SERIES_BLOCKS = (24.0, 96.0, 384.0)  # terms of erlang_b's series, by block of rows


def _log_gamma(x: F) -> F:
    """``ln Γ(x)`` for ``x > 0``, elementwise (the standard library's ``lgamma``; a few hundred values per call)."""
    flat = np.ravel(x)
    return np.fromiter((math.lgamma(v) for v in flat.tolist()), dtype=float, count=flat.size).reshape(np.shape(x))


def erlang_b(servers: ArrayLike, load: ArrayLike) -> F:
    """Erlang B blocking probability ``B(c, a) = P(N = c)/P(N ≤ c)``, ``N ~ Poisson(a)``, for real ``c ≥ 0``.

    With ``π = a^c·e^(−a)/Γ(c + 1)`` (the Poisson pmf at ``c``, extended to real ``c``) the upper tail is
    the series ``P(N > c) = π·S``, ``S = Σ_{n≥1} Π_{j=1..n} a/(c + j)``, which is the regularised lower
    incomplete gamma function ``P(c + 1, a)`` and so holds for real ``c`` too. Then ``B = π/(1 − π·S)``.
    For ``a < c + 1`` the ``n``-th term is below ``r^n`` and below ``exp(−(n − 1)²/(2(c + 1)))``
    (``r = a/(c + 1)``), so ``K = min(37/(−ln r), sqrt(74·(c + 1)) + 2)`` terms leave less than ``e^(−37)``
    (about ``10⁻¹⁶``) of a sum that is at least its first term; rows are summed in blocks of similar ``K``.
    Where ``a ≥ c + 1`` (past saturation, where :func:`erlang_c` is 1 anyway) ``B`` is taken as 1.
    Agrees with scipy's ``gammaincc`` form to 1e-10 (``tests/sizing/test_queueing.py``) without importing it.
    """
    c, a = np.broadcast_arrays(np.asarray(servers, dtype=float), np.asarray(load, dtype=float))
    c = np.maximum(c, 0.0)
    under = (a > 0) & (a < c + 1.0)
    out = np.where(a > 0, 1.0, 0.0)
    if not under.any():
        return np.asarray(out, dtype=float)
    cu, au = c[under], a[under]
    r = au / (cu + 1.0)
    need = np.minimum(37.0 / np.maximum(-np.log(r), 1e-9), np.sqrt(74.0 * (cu + 1.0)) + 2.0)
    tail = np.empty(cu.shape)
    block = np.searchsorted(np.array(_SERIES_BLOCKS), need)  # rows summed together need similar numbers of terms
    for b in np.unique(block).tolist():
        ix = np.flatnonzero(block == b)
        j = np.arange(1, int(np.ceil(np.max(need[ix]))) + 2, dtype=float)[:, None]
        tail[ix] = np.cumprod(au[ix] / (cu[ix] + j), axis=0).sum(axis=0)
    pmf = np.exp(cu * np.log(au) - au - _log_gamma(cu + 1.0))
    out[under] = np.minimum(pmf / np.maximum(1.0 - pmf * tail, 1e-300), 1.0)
    return np.asarray(out, dtype=float)


def erlang_c(servers: ArrayLike, load: ArrayLike) -> F:
    """Probability that an arrival waits, ``C(c, a)``, for arrays of servers ``c`` and load ``a``."""
    c, a = np.broadcast_arrays(np.asarray(servers, dtype=float), np.asarray(load, dtype=float))
    b = erlang_b(c, a)
    rho = a / np.maximum(c, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
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
