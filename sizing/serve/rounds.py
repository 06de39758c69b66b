"""How many prompt lumps a round of the engine holds: the count distributions of the load model.

A round's prompt tokens arrive in *lumps* (a prompt, or one budget-sized chunk of a long one). The load
model (:mod:`aicap.sizing.serve.load`) needs the law of the lumps per round: Poisson (negative binomial
when bursty) with a variance widened for the feedback of long rounds, or, for an engine without
decoding, the exact stationary law of the round-to-round chain. Every distribution is truncated at its
own row's range, so a row's numbers do not depend on the rows evaluated with it. With pipeline parallelism a
round's lumps land on its micro-batches at random, and the fullest one paces the round (:func:`fullest`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]


def lump_counts(mean: ArrayLike, cv: ArrayLike, top: int, row_top: ArrayLike | None = None) -> F:
    """Probabilities of ``0..top`` arrivals in a window with ``mean`` arrivals (rows: count; columns: candidates).

    Poisson for ``cv ≤ 1``; for bursty traffic (``cv > 1``) a negative binomial with the same mean and
    variance ``mean·cv²`` (a gamma-mixed Poisson). The last row holds the tail ``P(N ≥ top)``; with
    ``row_top`` (per column, at most ``top``) column ``j``'s tail ``P(N ≥ row_top_j)`` sits in row
    ``row_top_j`` and the rows below it are 0, exactly as if it had been computed alone with its own ``top``.
    """
    mu = np.maximum(np.asarray(mean, dtype=float), 1e-12)
    c2 = np.broadcast_to(np.asarray(cv, dtype=float) ** 2, mu.shape)
    nb = c2 > 1.0
    m = np.arange(1, top + 1, dtype=float).reshape(-1, *([1] * mu.ndim))
    # P(m)/P(m − 1): μ/m (Poisson) or p·(m − 1 + r)/m (negative binomial); the pmf is their running product.
    # Where every column is one kind, only that kind's arrays are formed (the same values as the mixed form).
    if not nb.any():
        first, ratios = np.exp(-mu), mu / m
    else:
        r = np.where(nb, mu / np.maximum(c2 - 1.0, 1e-12), np.inf)
        ratio = np.where(nb, mu / (r + mu), 0.0)
        if nb.all():
            first, ratios = np.exp(-r * np.log1p(mu / r)), ratio * (m - 1.0 + r) / m
        else:
            first = np.where(nb, np.exp(-np.where(nb, r, 0.0) * np.log1p(mu / np.where(nb, r, 1.0))), np.exp(-mu))
            ratios = np.where(nb, ratio * (m - 1.0 + np.where(nb, r, 0.0)) / m, mu / m)
    # Far past saturation a mean of 10^5 lumps (a budget left of one token) overflows the running product where
    # P(0) has underflowed to 0: those columns' head is 0 (the mass folds into the tail below), not 0·∞. Only
    # such columns can overflow, so the guard reads P(0) alone, not the whole head.
    with np.errstate(over="ignore", invalid="ignore"):
        head = first[None] * np.cumprod(ratios, axis=0)
    gone = first == 0.0
    if gone.any():
        head[:, gone] = 0.0
    out = np.concatenate([first[None], head])
    if row_top is None:
        out[top] = np.maximum(1.0 - out[:top].sum(axis=0), 0.0)
        return out
    return fold_tail(out, np.asarray(row_top))


def fold_tail(pmf: F, row_top: NDArray[np.int64] | F) -> F:
    """Truncate each column ``j`` of ``pmf`` (axis 0 the count) at ``row_top_j``: the rest of the mass sits there.

    The head is summed in the same order as it would be alone (the rows past ``row_top_j`` add exact
    zeros), so a column's result does not depend on the other columns evaluated with it.
    """
    m = np.arange(pmf.shape[0]).reshape(-1, *([1] * (pmf.ndim - 1)))
    head = np.where(m < row_top, pmf, 0.0)
    return np.asarray(np.where(m == row_top, np.maximum(1.0 - head.sum(axis=0), 0.0), head), dtype=float)


def chain_rows(steps: F, pp: F, lump: F, prompt: F, x: F) -> NDArray[np.bool_]:
    """Rows whose round sizes come from :func:`chain_rounds`: no decoding, one stage, a prompt per lump."""
    if np.ndim(x) != 1:
        return np.zeros(np.shape(x), dtype=bool)
    shape = np.shape(x)
    return np.asarray((np.broadcast_to(steps, shape) <= 0.0) & (np.broadcast_to(pp, shape) <= 1.0)
                      & (np.broadcast_to(lump, shape) >= np.broadcast_to(prompt, shape)))  # fmt: skip


def chain_rounds(rounds: F, lump_rate: F, cap: F, cv: F, row_top: NDArray[np.int64], top: int) -> F:
    """Stationary law of the lumps a round starts with, for an engine without decoding (columns: rows).

    State ``m`` is the prompts waiting when a round starts. A round serves ``s = min(m, cap)`` of them in
    ``T(s)`` seconds (``rounds[m]``, already capped at the budget) and the next starts with the other
    ``m − s`` plus the arrivals meanwhile, ``Poisson(λ_L·T(s))`` (negative binomial with variance
    ``mean·cv²`` when bursty). State 0 is an idle spell: it ends when the next prompt arrives, which starts
    a round of one. Each row's chain lives on ``0..row_top`` (arrivals beyond fold into ``row_top``);
    ``π`` solves ``π·P = π``, ``Σπ = 1`` (one small linear system per row).
    """
    size = top + 1
    n = rounds.shape[-1]
    states = np.arange(size)
    arrivals = lump_counts(lump_rate[None, :] * rounds, np.broadcast_to(cv, rounds.shape), top)  # (next, m, row)
    carry = np.maximum(states[:, None] - cap[None, :], 0.0).astype(np.int64)  # (m, row)
    source = states[None, None, :] - carry.T[:, :, None]  # (row, m, next): arrivals needed to reach `next`
    p = np.where(source >= 0, np.take_along_axis(arrivals.transpose(2, 1, 0), np.clip(source, 0, top), axis=2), 0.0)
    p = fold_tail(p.transpose(2, 1, 0), row_top).transpose(2, 1, 0)  # (row, m, next), next truncated at the row's top
    p[:, 0, :] = 0.0
    p[:, 0, 1] = 1.0  # idle, then one arrival
    beyond = states[None, :] > row_top[:, None]  # unreachable states lead back into the chain
    p[beyond] = 0.0
    p[np.nonzero(beyond)[0], np.nonzero(beyond)[1], row_top[np.nonzero(beyond)[0]]] = 1.0
    a = p.transpose(0, 2, 1) - np.eye(size)[None]
    a[:, -1, :] = 1.0
    b = np.zeros((n, size, 1))
    b[:, -1, 0] = 1.0
    pi = np.maximum(np.linalg.solve(a, b)[..., 0], 0.0)
    return np.asarray((pi / pi.sum(axis=1, keepdims=True)).T, dtype=float)


def count_top(lumps: F) -> F:
    """Lump counts a row's distribution needs: mean + 6 standard deviations + 4."""
    return np.asarray(np.ceil(lumps + 6.0 * np.sqrt(lumps) + 4.0), dtype=float)


_FULLEST_TOP = 96  # lumps the load model's counts reach (load: count_top clipped at 96); tables grow past it if asked


def fullest(m: ArrayLike, pp: ArrayLike) -> F:
    """Expected lumps in the fullest of ``pp`` micro-batches when ``m`` lumps land on them at random.

    A pipeline replica's router balances the requests each micro-batch holds, not the prompts of one round:
    arrivals replace departures, which come at random, so a round's ``m`` lumps fall on the ``pp``
    micro-batches about uniformly and independently, and the round lasts as long as the fullest one's step.
    For ``m`` balls in ``pp`` bins, with ``e_j(x) = Σ_{i≤j} x^i/i!``::

        P(max ≤ j) = m!/pp^m · [x^m] e_j(x)^pp,    E[max] = Σ_{j≥0} P(max > j)

    (``1`` for ``m = 1``, ``1 + 1/pp`` for ``m = 2``, exactly ``m`` for ``pp = 1``); between whole counts, linear.
    ``pp`` holds whole stages; they broadcast. Spreading the lumps evenly instead (``m/pp`` each) put a
    Llama-3.1-8B PP4 replica's running count 39% under the simulator's at 70 requests/s.
    """
    m_a, pp_a = np.asarray(m, dtype=float), np.asarray(pp, dtype=float)
    shape = np.broadcast_shapes(m_a.shape, pp_a.shape)
    if not (pp_a > 1.0).any():
        return np.array(np.broadcast_to(m_a, shape), dtype=float)
    below = np.floor(m_a)
    counts, stages = below.astype(np.int64), np.maximum(pp_a, 1.0).astype(np.int64)
    table = _fullest_tables(int(stages.max()), max(int(counts.max(initial=0)) + 1, _FULLEST_TOP))
    at = stages * table.shape[1] + counts  # flat positions: one gather (two-axis fancy indexing is 10x slower)
    low = table.ravel().take(at)
    frac = m_a - below
    if not frac.any():
        return np.asarray(low, dtype=float)
    return np.asarray(low + frac * (table.ravel().take(at + 1) - low), dtype=float)


@functools.lru_cache(maxsize=8)
def _fullest_tables(most: int, top: int) -> F:
    """:func:`fullest` as a table ``[pp, m]`` for ``pp = 0..most`` (row 0 unused) and ``m = 0..top``."""
    table = np.zeros((most + 1, top + 1))
    table[:2] = np.arange(top + 1)
    for pp in range(2, most + 1):
        table[pp] = _fullest_table(pp, top)
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=32)
def _fullest_table(pp: int, top: int) -> F:
    """:func:`fullest` for ``m = 0..top`` lumps on ``pp`` micro-batches (the coefficients of ``e_j^pp`` for every ``m`` at once)."""
    log_scale = np.array([math.lgamma(k + 1.0) - k * math.log(pp) for k in range(top + 1)])
    inverse_factorials = np.exp(-np.array([math.lgamma(i + 1.0) for i in range(top + 1)]))
    counts = np.arange(top + 1)
    expected = np.zeros(top + 1)
    for j in range(top):  # P(max > j) is 0 for m ≤ j
        poly = np.ones(1)
        for _ in range(pp):
            poly = np.convolve(poly, inverse_factorials[: j + 1])[: top + 1]
        coef = np.zeros(top + 1)
        coef[: poly.size] = poly
        with np.errstate(divide="ignore"):
            at_most = np.exp(log_scale + np.log(coef))
        expected += np.where(counts > j, 1.0 - np.minimum(at_most, 1.0), 0.0)
    return expected


def prefill_first_rounds(step: StepModel, d: F, sizes: F, first: NDArray[np.bool_], mixed: tuple[F, F, F]) -> tuple[F, F, F, F]:
    """Round times and slopes where ``first`` rows prefill before they decode: ``T(d, 0) + [p > 0]·T(0, p)``, and ``T(0, p)``.

    The prefill step and the decode step each stream the weights and pay the step overhead, so such a round
    is never shorter than the mixed step ``T(d, p)`` (each group's ``max`` is subadditive and its constants
    are non-negative): bounds computed on mixed steps still bound it. ``∂/∂d`` is the decode step's and
    ``∂/∂p`` the prefill step's. The token budget is left as a mixed step's (``C − d`` for prompts), which
    undercounts a prefill step's room: conservative. A request's own prefill in its TTFT is its prefill steps
    (:mod:`aicap.sizing.serve.ttft`). The prefill step's own time ``T(0, p)`` comes back for
    :func:`prefill_chain_seconds`, which adds the rest of the round's chain of prefill steps.
    """
    dec_s, dec_dd, _ = step.seconds_and_slope(d, 0.0)
    pre_s, _, pre_dp = step.seconds_and_slope(np.zeros_like(d), sizes)
    has = sizes > 0.0
    all_s, all_dd, all_dp = mixed
    return (np.where(first, dec_s + np.where(has, pre_s, 0.0), all_s), np.where(first, np.broadcast_to(dec_dd, all_dd.shape), all_dd),
            np.where(first, np.where(has, pre_dp, 0.0), all_dp), pre_s)  # fmt: skip


def prefill_chain_seconds(step: StepModel, pre_s: F, rate: F, most: F, typical: F) -> F:
    """Seconds a round's further prefill steps add to its first, ``(n − 1)·a``, for rounds whose first prefill step takes ``pre_s``.

    A prompt that arrives during a prefill step is prefilled in a step of its own right after it, not with
    the next round's: at ``rate`` prompts/s a round's prompts take a chain of ``n`` prefill steps
    (:func:`prefill_chain_steps`, at most ``most``, the round's lumps) that together last
    ``T(0, p) + (n − 1)·a``, ``a = 2·T(0, P/2) − T(0, P)`` what splitting the ``typical`` round's ``P`` prompt
    tokens in two costs (exact for any ``n`` where ``T(0, ·)`` is affine; an MoE's split pays its touched
    experts again). One ``a`` per candidate keeps the round's time increasing in ``p``.
    """
    zero = np.zeros_like(typical)
    split = np.maximum(2.0 * step.seconds(zero, typical / 2.0) - step.seconds(zero, typical), 0.0)  # a = 2·T(0, P/2) − T(0, P)
    n = np.minimum(prefill_chain_steps(rate * split, rate * np.maximum(pre_s - split, 0.0)), np.maximum(most, 1.0))
    return np.asarray((n - 1.0) * split, dtype=float)


def prefill_chain_steps(u: ArrayLike, v: ArrayLike) -> F:
    """Mean prefill steps in a chain where prompts arriving during a step get the next one: the root ``n ≥ 1`` of ``n = e^(u + v/n)``.

    A chain of ``n`` steps that splits ``p`` prompt tokens lasts ``T(0, p) + (n − 1)·a``, a step on average
    ``t(n) = a + (T(0, p) − a)/n``; the chain goes on while a prompt arrives during its last step, probability
    ``1 − e^(−λ·t)`` (Poisson arrivals at ``λ`` prompts/s), so ``n = 1/e^(−λ·t(n)) = e^(u + v/n)`` with
    ``u = λ·a`` and ``v = λ·(T(0, p) − a)`` (a geometric count). ``h(n) = ln n − u − v/n`` is increasing and
    concave with ``h(1) ≤ 0``, so Newton's method from ``n = 1`` rises to the root without passing it (ten
    steps reach a root of 10⁴ within 2%; the callers cap ``n`` at the round's lumps, at most a few hundred).
    Capped at 10⁶ (a chain that never ends: decoding starves).
    """
    u_a, v_a = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    n = np.ones(np.broadcast_shapes(u_a.shape, v_a.shape))
    for _ in range(10):
        h = np.log(n) - u_a - v_a / n
        n = np.minimum(n - h / (1.0 / n + v_a / n**2), 1e6)
    return np.asarray(np.maximum(n, 1.0), dtype=float)
