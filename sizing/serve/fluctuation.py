"""How much a loaded replica's running count fluctuates, and the decode round's mean over that fluctuation.

Part of the load model (:mod:`aicap.sizing.serve.load`). ``n`` decoding requests fluctuate with peakedness
``z = Var(n)/n = max(cv, 1)²/((1 − ρ_p)²·(1 − β))``: bursty arrivals, prompts that lengthen their round and so
bring more arrivals into the next (``ρ_p`` the prefill time share), and the feedback ``β = τ'·n/τ`` of a longer
round keeping requests longer (:func:`peakedness`).

The feedback depends on the round's slope ``τ' = ∂τ/∂n``, and a roofline's slope jumps where compute starts to
bind (a decode step of a 70B model in fp8 on one H200 costs 0.04 ms more per sequence below 195 sequences and
0.16 ms above). A running count that fluctuates across that kink sees neither slope but their blend, and a mean
round above the round at the mean (:class:`~aicap.sizing.serve.smoothing.DecodeKinks`). So the decode-only round
is taken over ``n``'s spread: ``σ = sqrt(n·z)/pp`` decoding sequences per micro-batch (at most their mean), and
since ``z`` depends on the smoothed slope, ``σ`` is the fixed point of ``σ → σ(z(β(σ)))`` (:func:`settle_spread`).
Rounds carrying prompts are taken at the mean: a prompt of a few hundred tokens makes a round compute-bound
whatever the running count.

Against the iteration-level simulator (``tests/sizing/test_fluctuation.py``): Llama-3.1-70B fp8 on one H200
(256/600 tokens) at its capacity, where the mean running count sits just below the kink, the TPOT p99 was
promised 25% under the simulated one and the running count 23% under; with the spread, within 2% and 10%. On a CPU
whose round past its kink grows almost in proportion to the count (the feedback near 1 there) the count's excursions
are not normal, and the promise stays 20% under the simulated p99 at capacity (73% before).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.serve.smoothing import DecodeKinks

F = NDArray[np.float64]
REACH = 3.0
"""Kinks further than this many spreads (at the mean load's rounds) are out of reach: the slope moves by at most
``Φ(−3) = 0.13%`` of its jump, and over the 100-workload benchmark's 154,000 evaluations no row with a kink 3-6 spreads
away moved its spread by more than 0.2% (half of them by under 3e-5)."""
_TOLERANCE = 1e-2  # a spread this close to the one its rounds imply is the fixed point (relative)
_EXPANSIONS = 8  # doublings of the spread's bracket (from the spread at the mean load: up to 256 times it)
_FALSI_STEPS = 10  # steps of regula falsi on the bracket


def peakedness(tau: F, dtau_dd: F, lumps: F, slope: F, pp: F, n_dec: F, cv: F | float,
               chain: NDArray[np.bool_]) -> tuple[F, F, F, F, F]:  # fmt: skip
    """Prefill load, ``1 − ρ_p``, ``∂τ/∂n``, feedback ``β`` and peakedness ``z`` of the running count.

    Parameters
    ----------
    tau, dtau_dd
        Mean round (s) and its slope per decoding sequence of a micro-batch (s).
    lumps, slope
        Prompt lumps per round and the seconds one more lump adds to a full round (with ``pp`` micro-batches, a
        ``pp``-th of what one more lump in each adds).
    pp, n_dec
        Pipeline stages and decoding requests.
    cv
        Coefficient of variation of the inter-arrival times.
    chain
        Rows whose rounds follow the round-to-round chain (no decoding): peakedness without clustering.

    Returns
    -------
    prefill_load, free, dtau_dn, feedback, peak
        ``ρ = λ_L·c`` (uncapped), ``max(1 − min(ρ, 0.999), 1e-3)``, ``τ' = (∂τ/∂d)/(pp·(1 − ρ_p))`` (s per request),
        ``β = τ'·n/τ`` and ``z = max(cv, 1)²·[1/(1 − ρ_p)²]/(1 − min(β, 0.999))``.
    """
    prefill_load, free, dtau_dn, feedback = _feedback(tau, dtau_dd, lumps, slope, pp, n_dec)
    return prefill_load, free, dtau_dn, feedback, _peak(free, feedback, cv, chain)


def _feedback(tau: F, dtau_dd: F, lumps: F, slope: F, pp: F, n_dec: F) -> tuple[F, F, F, F]:
    """``ρ_p = λ_L·c``, ``1 − ρ_p`` (capped), ``τ'`` and ``β`` (:func:`peakedness`)."""
    prefill_load = lumps / np.maximum(tau, 1e-12) * slope
    free = np.maximum(1.0 - np.minimum(prefill_load, 0.999), 1e-3)  # 1 − ρ_p, the share of round time not spent on prefill
    dtau_dn = dtau_dd / pp / free
    feedback = dtau_dn * n_dec / np.maximum(tau, 1e-12)
    return (np.asarray(prefill_load, dtype=float), np.asarray(free, dtype=float), np.asarray(dtau_dn, dtype=float),
            np.asarray(feedback, dtype=float))  # fmt: skip


def _peak(free: F, feedback: F, cv: F | float, chain: NDArray[np.bool_] | bool) -> F:
    """``z = max(cv, 1)²·[1/(1 − ρ_p)², not for a chain]/(1 − min(β, 0.999))`` (:func:`peakedness`)."""
    clustered = np.where(chain, 1.0, 1.0 / free**2)
    return np.asarray(np.maximum(cv, 1.0) ** 2 * clustered / np.maximum(1.0 - np.minimum(feedback, 0.999), 1e-3), dtype=float)


def settle_spread(kinks: DecodeKinks, idle_share: F, tau: F, dtau_dd: F, lumps: F, slope: F, pp: F, d: F, cv: F | float,
                  chain: NDArray[np.bool_], feedback: F, peak: F) -> tuple[F, F, F]:  # fmt: skip
    """The running count's spread consistent with the decode round's mean over it, and what it adds to that round.

    Returns the spread per micro-batch (decoding sequences) and what it adds to the decode-only round (s) and to its
    slope (s per sequence): :meth:`~aicap.sizing.serve.smoothing.DecodeKinks.over` (all 0 where it is 0).

    ``σ(s) = min(sqrt(n·z(s))/pp, d)``, with ``z`` from :func:`peakedness` after the decode-only round (share
    ``idle_share`` of the rounds) and its slope take their means over a spread ``s`` (``kinks``); ``tau`` and ``dtau_dd``
    are the mixture's at the mean load, ``feedback`` and ``peak`` what :func:`peakedness` makes of them. Rows where the
    mean load's spread ``σ₀`` implies itself (within 1%) keep it; the others' root of ``σ(s) = s`` is bracketed from
    ``σ₀`` (doubling upward while ``σ(s) > s``) and found by regula falsi, row by row. Rows with no kink within
    :data:`REACH` spreads get 0: their rounds do not move.
    """
    n_dec = d * pp
    start = np.asarray(np.broadcast_to(np.minimum(np.sqrt(n_dec * peak) / pp, d), d.shape), dtype=float)
    spread, excess, excess_slope = np.zeros(start.shape), np.zeros(start.shape), np.zeros(start.shape)
    # Where the mean load's feedback has run away (β ≥ 1) the count has no stationary spread to take the round over.
    rows = np.flatnonzero((start > 0.0) & (idle_share > 0.0) & ~chain & (feedback < 1.0) & (kinks.reach() < REACH * start))
    if not rows.size:
        return spread, excess, excess_slope
    kinks_r = kinks.take(rows)
    share, tau_r, dd_r, lumps_r, slope_r, pp_r, n_r, d_r = (np.broadcast_to(v, d.shape)[rows]
                                                            for v in (idle_share, tau, dtau_dd, lumps, slope, pp, n_dec, d))  # fmt: skip
    cv_r = np.broadcast_to(cv, d.shape)[rows]

    def implied(sub: NDArray[np.int64] | slice, s: F) -> tuple[F, F, F]:
        ex, ex_slope = (kinks_r if isinstance(sub, slice) else kinks_r.take(sub)).over(s)
        _, free, _, beta = _feedback(tau_r[sub] + share[sub] * ex, dd_r[sub] + share[sub] * ex_slope, lumps_r[sub], slope_r[sub],
                                     pp_r[sub], n_r[sub])  # fmt: skip
        return np.minimum(np.sqrt(n_r[sub] * _peak(free, beta, cv_r[sub], False)) / pp_r[sub], d_r[sub]), ex, ex_slope

    # h(s) = σ(s) − s: h(0) = σ₀ > 0 (no spread, no smoothing). Most rows sit at h(σ₀) ≈ 0 already.
    s0 = start[rows]
    implied_0, ex_r, exs_r = implied(slice(None), s0)
    h0 = implied_0 - s0
    settled = np.abs(h0) <= _TOLERANCE * s0
    left = np.flatnonzero(~settled)
    if not left.size:
        spread[rows], excess[rows], excess_slope[rows] = s0, ex_r, exs_r
        return spread, excess, excess_slope
    lo, hi, h_lo, h_hi = np.zeros(left.size), s0[left], s0[left], h0[left]
    up = h_hi > 0.0  # the root is above σ₀: double the bracket until σ(hi) ≤ hi (or hi = d)
    for _ in range(_EXPANSIONS):
        grow = np.flatnonzero(up & (hi < d_r[left]))
        if not grow.size:
            break
        lo[grow], h_lo[grow] = hi[grow], h_hi[grow]
        hi[grow] = np.minimum(2.0 * hi[grow], d_r[left[grow]])
        h_hi[grow] = implied(left[grow], hi[grow])[0] - hi[grow]
        up[grow] = h_hi[grow] > 0.0
    open_ = np.flatnonzero(up)  # still below the root after the doublings: σ(d) ≤ d closes the bracket
    if open_.size:
        lo[open_], h_lo[open_] = hi[open_], h_hi[open_]
        hi[open_] = d_r[left[open_]]
        h_hi[open_] = implied(left[open_], hi[open_])[0] - hi[open_]
    # Regula falsi, Illinois variant (the end kept twice in a row has its value halved): superlinear on the bracket.
    kept = np.zeros(left.size)  # +1: lo kept last time, −1: hi kept
    s = s0.copy()
    act = np.arange(left.size)  # rows still moving: each stops once its own σ(s) is within the tolerance of s
    for _ in range(_FALSI_STEPS):
        a_lo, a_hi, a_hl, a_hh = lo[act], hi[act], h_lo[act], h_hi[act]
        x = np.where(a_hl > a_hh, a_hi + a_hh * (a_hi - a_lo) / np.maximum(a_hl - a_hh, 1e-300), (a_lo + a_hi) / 2.0)
        implied_x, ex_r[left[act]], exs_r[left[act]] = implied(left[act], x)
        h = implied_x - x
        s[left[act]] = x
        right = h > 0.0  # the root is above x: x becomes lo
        kept_a = kept[act]
        h_hi[act] = np.where(right, np.where(kept_a < 0, a_hh / 2.0, a_hh), h)  # hi kept twice running: its value halved
        h_lo[act] = np.where(right, h, np.where(kept_a > 0, a_hl / 2.0, a_hl))  # lo kept twice running: likewise
        lo[act], hi[act] = np.where(right, x, a_lo), np.where(right, a_hi, x)
        kept[act] = np.where(right, -1.0, 1.0)
        act = act[np.abs(h) > _TOLERANCE * np.maximum(x, 1e-12)]
        if not act.size:
            break
    spread[rows], excess[rows], excess_slope[rows] = s, ex_r, exs_r
    return spread, excess, excess_slope
