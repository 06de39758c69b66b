"""Synthetic traffic: arrival instants of a renewal process and request lengths drawn from a histogram.

Arrivals form a renewal process: inter-arrival gaps are independent and identically distributed with
mean ``1/λ`` seconds (``λ`` the rate in requests/s) and coefficient of variation ``cv = σ/mean``:

* ``constant`` (``cv = 0``): every gap is exactly ``1/λ`` (a D/·/· queue);
* ``poisson`` (``cv = 1``): exponential gaps, ``P(gap > x) = exp(−λx)`` (an M/·/· queue);
* ``gamma``: gaps ``~ Gamma(k, θ)`` with shape ``k = 1/cv²`` and scale ``θ = 1/(λk)``, so that
  ``E[gap] = kθ = 1/λ`` and ``Var[gap] = kθ² = cv²/λ²``. ``cv > 1`` is burstier than Poisson.

The arrival instants are the cumulative sums of the gaps, so the first request arrives one gap after
0 (``0`` for none). Every draw uses ``numpy.random.Generator(PCG64(seed))``: the same seed gives the
same arrays on every platform numpy supports.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

ArrivalKind = Literal["poisson", "gamma", "constant"]


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def arrival_times(
    rate_per_s: float,
    n: int,
    *,
    cv: float = 1.0,
    seed: int = 0,
    kind: ArrivalKind | None = None,
) -> NDArray[np.float64]:
    """Arrival instants of ``n`` requests of a renewal process with mean rate ``rate_per_s``.

    Parameters
    ----------
    rate_per_s : float
        Mean arrival rate ``λ`` in requests per second (> 0).
    n : int
        Number of arrivals (≥ 0).
    cv : float, optional
        Coefficient of variation of the inter-arrival gaps (≥ 0). Used to choose ``kind`` when it is
        ``None``, and as the gamma shape ``k = 1/cv²`` when ``kind == "gamma"``; ignored by an explicit
        ``"poisson"`` or ``"constant"``.
    seed : int, optional
        Seed of the ``PCG64`` generator.
    kind : {"poisson", "gamma", "constant"} or None, optional
        Gap distribution. ``None``: ``"constant"`` if ``cv == 0``, ``"poisson"`` if ``cv == 1``, else
        ``"gamma"``.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        Arrival instants in seconds, non-decreasing, the first one gap after 0.

    Raises
    ------
    ValueError
        If ``rate_per_s ≤ 0``, ``n < 0``, ``cv < 0``, or ``kind == "gamma"`` with ``cv == 0``.
    """
    if not rate_per_s > 0 or not np.isfinite(rate_per_s):
        raise ValueError(f"rate_per_s must be a positive finite number, got {rate_per_s}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not cv >= 0 or not np.isfinite(cv):
        raise ValueError(f"cv must be a finite number >= 0, got {cv}")
    if kind is None:
        kind = "constant" if cv == 0 else "poisson" if cv == 1 else "gamma"
    mean_gap = 1.0 / rate_per_s
    if kind == "constant":
        gaps = np.full(n, mean_gap)
    elif kind == "poisson":
        gaps = _rng(seed).exponential(mean_gap, n)
    elif kind == "gamma":
        if cv == 0:
            raise ValueError("a gamma process needs cv > 0 (use kind='constant' for cv = 0)")
        shape = 1.0 / (cv * cv)
        gaps = _rng(seed).gamma(shape, mean_gap / shape, n)
    else:
        raise ValueError(f"unknown arrival kind {kind!r}; expected 'poisson', 'gamma' or 'constant'")
    return np.cumsum(gaps, dtype=np.float64)


def sample_lengths(values: NDArray[np.int64], weights: NDArray[np.float64], n: int, *, seed: int) -> NDArray[np.int64]:
    """Draw ``n`` token lengths from a histogram.

    Each draw is ``values[j]`` with probability ``weights[j] / Σ weights``, independently. A fixed
    length is a histogram with one bar.

    Parameters
    ----------
    values : numpy.ndarray of int64
        Bar positions, in tokens (≥ 0).
    weights : numpy.ndarray of float64
        Bar weights (≥ 0, not all 0); need not sum to 1.
    n : int
        Number of draws (≥ 0).
    seed : int
        Seed of the ``PCG64`` generator.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Lengths in tokens.

    Raises
    ------
    ValueError
        On mismatched or empty inputs, negative values or weights, or all-zero weights.
    """
    v = np.asarray(values, dtype=np.int64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if v.size == 0 or v.shape != w.shape:
        raise ValueError(f"values and weights must be non-empty and of equal length, got {v.size} and {w.size}")
    if (v < 0).any():
        raise ValueError("lengths must be >= 0 tokens")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, >= 0 and not all 0")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return np.asarray(_rng(seed).choice(v, size=n, p=w / w.sum()), dtype=np.int64)
