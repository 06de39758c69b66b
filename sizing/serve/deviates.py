"""Normal deviates of latency percentiles and the lean of the prompt work a request meets (the load model's tails).

The load model (:mod:`aicap.sizing.serve.load`) states TTFT and TPOT percentiles; its TPOT takes a Cornish–Fisher deviate
``z + (z² − 1)·γ/6`` whose skewness ``γ`` the prompt work met over a life sets (:func:`met_skewness`, capped at
:data:`MAX_LEAN`).
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]


@functools.lru_cache(maxsize=64)
def deviate(q: float) -> float:
    """Standard normal deviate of one quantile (clipped to [1e-6, 1 − 1e-6])."""
    return NormalDist().inv_cdf(min(max(q, 1e-6), 1 - 1e-6))


MAX_LEAN = 2.0
"""Largest skewness the TPOT's Cornish–Fisher deviate takes. Up to 2 the expansion keeps a Poisson count's quantiles
(mean 1/4, skewness 2: p99 2, the expansion 2.15); past it, it overshoots towards a whole prompt met where few lives
meet any (mean 1/10, skewness 3.2: p99 1, the expansion 1.57; mean 1/100: p99 0, the expansion 0.98)."""


def met_skewness(g: F | float, i: F, span: F, met: F, rho: F) -> F:
    """Skewness of the prompt work a request meets over its life, a busy period of the prompts (:mod:`aicap.sizing.serve.load` docstring).

    ``γ = (g·sqrt(1 − ρ) + 3ρ·sqrt(Ĩ/I)/sqrt(1 − ρ)) / sqrt(Λ·(1 − ρ))`` with ``g = E[I³]/E[I²]^(3/2)``, ``I`` the
    mean prompt, ``Ĩ = E[I²]/E[I]`` (``span``, at least ``I``), ``Λ`` the prompts met (``met``) and ``ρ`` the prefill load.
    """
    keep = np.maximum(1.0 - rho, 1e-3)
    wide = np.sqrt(span / np.maximum(i, 1e-9))
    return np.asarray((g * np.sqrt(keep) + 3.0 * rho * wide / np.sqrt(keep)) / np.sqrt(np.maximum(met * keep, 1e-9)), dtype=float)


def z_of(q: F) -> F:
    """Standard normal deviate of each quantile (few distinct values: each computed once per process)."""
    qa = np.asarray(q, dtype=float)
    if qa.ndim and qa.size and bool((qa == qa.flat[0]).all()):  # one quantile for every row: no sort
        return np.full(qa.shape, deviate(float(qa.flat[0])))
    values, inverse = np.unique(qa, return_inverse=True)
    z = np.array([deviate(float(v)) for v in values])
    return np.asarray(z[inverse].reshape(qa.shape), dtype=float)
