"""The mean of a roofline's ``max`` when the load under it fluctuates: a kink smoothed by a normal spread.

A step's operator group takes ``max(F/P, Q/BW)``: compute or memory, whichever binds, each affine in the
decoding sequences ``d``. Where ``d`` fluctuates around its mean (the running count of a loaded replica), the
mean step is not the step at the mean: across the kink at which compute starts to bind, ``max`` is convex, so
the mean lies above it (Jensen), and the mean slope blends the two sides. For ``d ~ N(d̄, σ²)`` and a group
whose compute-minus-memory gap is ``g(d) = g + g'·(d − d̄)`` (seconds), with ``s = |g'|·σ`` and ``t = g/s``::

    E[max(F, Q)] = max(F, Q)(d̄) + s·ψ(|t|),      ψ(a) = φ(a) − a·(1 − Φ(a))
    ∂E[max]/∂d̄   = Q' + g'·Φ(t)                  (Stein's lemma: Cov(d, T(d)) = σ²·E[T'(d)])

``φ`` and ``Φ`` are the standard normal density and distribution. ``1 − Φ(a)`` is Abramowitz & Stegun's
26.2.17 (absolute error under 7.5e-8), so this costs a few array operations and imports nothing beyond numpy.
:meth:`~aicap.sizing.serve.step_model.StepModel.decode_kinks` gives the gaps of a decode-only step
(:class:`DecodeKinks`); the load model (:mod:`aicap.sizing.serve.fluctuation`) supplies ``σ``, the spread of
the running count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]

_P = 0.2316419  # Abramowitz & Stegun 26.2.17
_B = (1.330274429, -1.821255978, 1.781477937, -0.356563782, 0.319381530)  # b5 .. b1, Horner's order
_CLIP = 8.0  # |t| beyond which ψ and 1 − Φ are below 1e-15: taken as 0 (and s = 0, a spread-free group, lands here)
_ROOT_2PI = float(np.sqrt(2.0 * np.pi))


def upper_tail(a: F) -> tuple[F, F]:
    """``1 − Φ(a)`` and ``φ(a)`` for ``a ≥ 0`` (A&S 26.2.17: ``φ(a)·(b1·k + … + b5·k⁵)``, ``k = 1/(1 + p·a)``)."""
    k = 1.0 / (1.0 + _P * a)
    poly = np.full_like(a, _B[0])
    for b in _B[1:]:
        poly = poly * k + b
    density = np.exp(-0.5 * a * a) / _ROOT_2PI
    return np.asarray(density * poly * k, dtype=float), np.asarray(density, dtype=float)


def smoothed_max(gap: F, scale: F) -> tuple[F, F]:
    """``E[max] − max`` and the compute side's weight ``Φ(t)`` for a gap ``g`` (compute minus memory) spread by ``s``.

    Parameters
    ----------
    gap
        ``g``, compute time minus memory time at the mean load (seconds).
    scale
        ``s = |g'|·σ``, the gap's standard deviation (seconds, at least 0).

    Returns
    -------
    excess, weight
        ``s·ψ(|g|/s)`` seconds (at least 0) and ``Φ(g/s)``, the probability that compute binds (1 or 0 where
        ``s = 0``: the hard roofline).
    """
    t = np.clip(gap / np.maximum(scale, 1e-300), -_CLIP, _CLIP)
    a = np.abs(t)
    tail, density = upper_tail(a)
    excess = np.maximum(scale * (density - a * tail), 0.0)
    weight = np.where(scale > 0.0, np.where(t >= 0.0, 1.0 - tail, tail), gap >= 0.0)
    return np.asarray(excess, dtype=float), np.asarray(weight, dtype=float)


@dataclass(frozen=True)
class DecodeKinks:
    """The operator groups of a decode-only step ``T(d, 0)`` at the mean ``d``, as the gaps a spread of ``d`` smooths.

    ``gap`` is each group's compute-minus-memory time (seconds) at the mean and ``slope`` its derivative in ``d``
    (seconds per decoding sequence; ``(groups, candidates)`` arrays). :meth:`over` gives what a spread adds to the
    step and to its slope: ``Σ_i s_i·ψ(|t_i|)`` and ``Σ_i g_i'·(Φ(t_i) − [g_i ≥ 0])`` (module docstring).
    """

    gap: F
    slope: F

    def take(self, index: NDArray[np.int64]) -> DecodeKinks:
        """The candidates at ``index``."""
        return DecodeKinks(self.gap[:, index], self.slope[:, index])

    def reach(self) -> F:
        """Decoding sequences from the mean to the nearest kink, ``min_i |g_i|/|g_i'|`` (infinite without one)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(self.slope != 0.0, np.abs(self.gap) / np.abs(self.slope), np.inf)
        return np.asarray(dist.min(axis=0, initial=np.inf), dtype=float)

    def over(self, spread: F) -> tuple[F, F]:
        """What a spread of ``spread`` decoding sequences (per candidate) adds to ``T(d, 0)`` (s) and to ``∂T/∂d`` (s per sequence)."""
        excess, weight = smoothed_max(self.gap, np.abs(self.slope) * spread)
        hard = self.gap >= 0.0
        return np.asarray(excess.sum(axis=0), dtype=float), np.asarray((self.slope * (weight - hard)).sum(axis=0), dtype=float)

    def rise(self, step: F) -> F:
        """What the secant of ``T(d, 0)`` over ``step`` more decoding sequences adds to its slope at the mean (s per sequence).

        ``Σ_i [max(g_i + g_i'·Δ, 0) − max(g_i, 0) − g_i'·Δ·[g_i ≥ 0]]/Δ``: the groups whose kink lies within ``Δ`` ahead
        add the slope they gain past it, pro rata (at least 0: each group's ``max`` is convex).
        """
        ahead = self.gap + self.slope * step
        gain = np.maximum(ahead, 0.0) - np.maximum(self.gap, 0.0) - np.where(self.gap >= 0.0, self.slope * step, 0.0)
        return np.asarray(np.maximum(gain.sum(axis=0), 0.0) / np.maximum(step, 1e-300), dtype=float)
