"""TTFT percentile of the round mixture: residual of the round in progress, then the request's own prefill.

Part of the load model (:mod:`aicap.sizing.serve.load`), which supplies the round types, their
probabilities and durations at a load; this module turns them into the ``q`` quantile of the time
from arrival to the end of the request's prefill. Its own prefill takes ``⌈t/C⌉`` steps of ``T(d, chunk)`` (mixed
steps), or, on an engine that prefills first, ``⌈t/C⌉·T(0, chunk) + (⌈t/C⌉ − 1)·T(d, 0)``: prefill steps with a
decode step between two of its chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.serve.rounds import fold_tail
from aicap.sizing.serve.step_model import StepModel

if TYPE_CHECKING:
    from aicap.sizing.serve.load import Traffic

F = NDArray[np.float64]
TTFT_BISECTIONS = 11  # on the TTFT quantile: 2^-11 of its bracket


def ttft_quantile(step: StepModel, pp: F, d: F, room: F, lump: F, pmf: F, rounds: F, tau: F, lump_rate: F, traffic: Traffic,
                   idle: F, gap: F, whole: NDArray[np.bool_] | bool = False) -> F:  # fmt: skip
    """``q`` quantile of residual + own prefill over the joint mixture (round in progress × co-arrivals × prompt).

    The round in progress holds ``j`` lumps with probability ``∝ P(j)·T_j`` (an arrival lands in a long
    round more often); the residual is uniform on ``[0, T_j]``; ``M ~ Poisson(λ_L·T_j)`` lumps arrive in
    the same round and are prefilled with the request, which takes ``⌈(I_b + M·L)/room⌉`` rounds of
    ``T(d, min(I_b + M·L, room))``. The prompt ``I_b`` is the tail bin, the mean, or the mean of the prompts
    longer than the tail bin (shares ``tail_share − above_share``, ``1 − tail_share`` and ``above_share``); the
    co-arrivals sharing its rounds (those ahead, and behind it in its last round) include a longer prompt, else a
    tail-bin one, as often as such prompts arrive, each adding its excess over the mean.
    ``P(TTFT ≤ t)`` is a sum of clipped linear pieces in ``t``; its quantile is found by bisection. An arrival
    that finds the engine idle (share ``idle`` of the prefill-free rounds' time) waits for no residual.
    Rows without decoding (``whole``: encoders, whose round sizes come from :func:`~aicap.sizing.serve.rounds.chain_rounds`) time
    a prefill-free round as the idle spell it is: until the next arrival, ``gap = 1/λ`` seconds on
    average, with no co-arrivals (the arrival starts its own round at once); and a prompt finishes with all
    its co-arrivals at the end of one round, so every one of them counts. Decoders keep one step per
    prefill-free round (their idle share is small at the loads plans run at).
    """
    n = np.shape(tau)[-1] if np.ndim(tau) else 0
    if np.ndim(tau) != 1 or n < _BUCKET_ROWS:
        return _quantile(step, pp, d, room, lump, pmf, rounds, lump_rate, traffic, idle, gap, whole)
    # Rows differ widely in how many co-arrivals they must count (4 to 48): evaluating them in buckets of
    # like counts keeps the (counts × round types × rows) arrays near each row's own size. A row's pieces
    # are its own in any company (the pieces others add are exact zeros for it), so its quantile is the same.
    bucket = np.searchsorted(_BUCKET_TOPS, _counts_needed(pmf, rounds, lump_rate, idle, gap, whole))
    out = np.empty(n)
    for b in np.unique(bucket).tolist():
        ix = np.flatnonzero(bucket == b)
        c_pp, c_d, c_room, c_lump, c_pmf, c_rounds, c_rate, c_idle, c_gap = (_cut(v, ix, n) for v in (pp, d, room, lump, pmf, rounds,
                                                                                                  lump_rate, idle, gap))  # fmt: skip
        mask = whole[ix] if isinstance(whole, np.ndarray) and whole.ndim else whole
        out[ix] = _quantile(step.take(ix), c_pp, c_d, c_room, c_lump, c_pmf, c_rounds, c_rate, traffic.take(ix), c_idle, c_gap, mask)
    return out


def _cut(v: F, ix: NDArray[np.int64], n: int) -> F:
    """The rows ``ix`` of a per-row array (last axis ``n``); anything else as it is."""
    return v[..., ix] if np.ndim(v) and np.shape(v)[-1] == n else v


_BUCKET_ROWS = 256  # rows from which ttft_quantile evaluates rows in buckets of like co-arrival counts (1,000 rows: 33 -> 17 ms)
_BUCKET_TOPS = np.array([8, 12, 16, 24, 32, 48])  # the buckets' largest counts (a row's count is at most 48)


def _quantile(step: StepModel, pp: F, d: F, room: F, lump: F, pmf: F, rounds: F, lump_rate: F, traffic: Traffic,
              idle: F, gap: F, whole: NDArray[np.bool_] | bool) -> F:  # fmt: skip
    """:func:`ttft_quantile` on one set of rows: the mixture's pieces, then bisection on their CDF."""
    coef, start, inv, hi = _pieces(step, pp, d, room, lump, pmf, rounds, lump_rate, traffic, idle, gap, whole)
    lo = np.zeros_like(hi)
    for _ in range(TTFT_BISECTIONS):
        mid = (lo + hi) / 2.0
        low = _cdf(coef, start, inv, mid) < traffic.quantile
        lo = np.where(low, mid, lo)
        hi = np.where(low, hi, mid)
    return np.asarray(hi, dtype=float)


def _round_weights(pmf: F, rounds: F, idle: F, gap: F, whole: NDArray[np.bool_] | bool) -> tuple[F, F, F]:
    """The length-biased round types (negligible ones zeroed), the idle-spell share of each, and ``idle`` broadcast (all ``(J, n)``)."""
    idle_b = np.broadcast_to(idle, pmf.shape)
    spell = np.where(np.broadcast_to(whole, pmf.shape[-1:]), idle_b, 0.0)  # idle spells timed as such (no decoding)
    weight = pmf * (rounds * (1.0 - spell) + spell * gap)  # time each round type occupies
    weight = weight / np.maximum(weight.sum(axis=0), 1e-300)  # (J, n) length-biased round type
    # Each row drops its own negligible round types and truncates its own co-arrival counts, so its
    # quantile does not depend on the rows evaluated with it; types no row meets leave the arrays.
    return np.where(weight > 1e-9, weight, 0.0), spell, idle_b


def _counts_needed(pmf: F, rounds: F, lump_rate: F, idle: F, gap: F, whole: NDArray[np.bool_] | bool) -> NDArray[np.int64]:
    """Per row, the most co-arrivals its mixture counts: ``⌈m + 6·√m + 3⌉`` in ``[4, 48]``, ``m`` its largest mean per round."""
    weight, spell, _ = _round_weights(pmf, rounds, idle, gap, whole)
    mean_m = lump_rate * rounds * (1.0 - spell)
    return _count_top(np.max(np.where(weight > 0.0, mean_m, 0.0), axis=0, initial=0.0))


def _count_top(most: F) -> NDArray[np.int64]:
    """Co-arrival counts a row's mixture keeps: ``⌈m + 6·√m + 3⌉`` in ``[4, 48]`` for a largest mean ``m`` per round."""
    return np.asarray(np.clip(np.ceil(most + 6.0 * np.sqrt(most) + 3.0), 4, 48), dtype=np.int64)


def _cdf(coef: F, start: F, inv: F, t: F) -> F:
    """``Σ coef·clip((t − start)·inv, 0, 1)`` per row, in place on one temporary."""
    x = t - start
    x *= inv
    np.clip(x, 0.0, 1.0, out=x)
    x *= coef
    return np.asarray(x.sum(axis=0), dtype=float)


def _pieces(step: StepModel, pp: F, d: F, room: F, lump: F, pmf: F, rounds: F, lump_rate: F, traffic: Traffic, idle: F, gap: F,
            whole: NDArray[np.bool_] | bool) -> tuple[F, F, F, F]:  # fmt: skip
    """The mixture's clipped linear pieces ``P(TTFT ≤ t) = Σ coef·clip((t − start)·inv, 0, 1)`` and each row's bracket top."""
    q = traffic.quantile
    weight, spell, idle_b = _round_weights(pmf, rounds, idle, gap, whole)
    live = weight.max(axis=1) > 0.0
    # A decoder's prefill-free round is in progress only while something decodes: an arrival finds the engine idle
    # (share ``idle``) and waits no residual, or a round in progress and waits a residual uniform on [0, T_j].
    # (An encoder's idle spell is a round type of its own, timed by ``gap``; its rounds are busy throughout.)
    rest = np.where(np.broadcast_to(whole, idle_b.shape[-1:]), 0.0, idle_b)[live]  # (J, n) share with no round in progress
    weight, rounds, busy, spell = weight[live], rounds[live], rounds[live] * (1.0 - spell[live]), spell[live]
    mean_m = lump_rate * rounds * (1.0 - spell)  # (J, n) co-arrivals expected during a round of type j (none in a spell)
    most = np.max(np.where(weight > 0.0, mean_m, 0.0), axis=0, initial=0.0)  # (n,)
    row_k = _count_top(most)
    kmax = int(np.max(row_k, initial=4))
    mm = np.arange(kmax + 1, dtype=float)
    pm = np.empty((kmax + 1, *mean_m.shape))  # (K, J, n) Poisson(mean_m)
    pm[0] = np.exp(-mean_m)
    for k in range(1, kmax + 1):
        pm[k] = pm[k - 1] * mean_m / k
    pm = fold_tail(pm, row_k)
    # Chunked prefill serves a round's arrivals in order: of M co-arrivals, the request follows a uniform
    # share, k ~ Uniform{0..M}, so P(k ahead) = Σ_{m ≥ k} P(M = m)/(m + 1). Those ahead set how many
    # rounds its prompt takes; the round's duration also counts those behind it (M/2 of them on average).
    # A pipeline's router spreads a round's arrivals over its micro-batches out of arrival order: there every
    # co-arrival counts as ahead (the conservative bound the simulator checks for pp > 1).
    # Without decoding a prompt and its co-arrivals finish together at the end of one round (``whole``): the
    # round's length counts all of them, as with a pipeline.
    piped = (np.broadcast_to(pp, mean_m.shape[-1:]) > 1) | np.broadcast_to(whole, mean_m.shape[-1:])
    ahead = np.where(piped, pm, np.cumsum((pm / (mm + 1.0)[:, None, None])[::-1], axis=0)[::-1])  # (K, J, n)
    behind = np.where(piped, 0.0, (weight * mean_m).sum(axis=0) / 2.0)  # (n,) mean co-arrivals after the request in its round
    # With pp micro-batches the co-arrivals spread over them; the request's own micro-batch keeps its share.
    mine = np.ceil((mm[:, None] + 1.0) / np.minimum(mm[:, None] + 1.0, pp)) - 1.0  # (K, n) co-arrivals ahead in its micro-batch
    # The request's own prompt (B classes): the tail bin, the rest at the mean and, apart, prompts longer than the tail bin.
    above_share = np.broadcast_to(np.asarray(traffic.above_share, dtype=float), q.shape)
    above = bool(np.any(above_share > 0.0))
    fixed = bool(np.all(traffic.tail_share >= 1.0)) and not above
    if fixed:
        prompts, shares = traffic.input_tail[None], np.ones((1, *q.shape))  # (B, n)
    elif not above:
        prompts, shares = np.stack([traffic.input_tail, traffic.input_tokens]), np.stack([traffic.tail_share, 1.0 - traffic.tail_share])
    else:
        longer = np.broadcast_to(np.asarray(traffic.input_above, dtype=float), q.shape)
        prompts = np.stack([traffic.input_tail, traffic.input_tokens, longer])
        shares = np.stack([traffic.tail_share - above_share, 1.0 - traffic.tail_share, above_share])
    # Co-arrivals' prompts vary too: of the k that share its rounds (those ahead, and those behind it in its last
    # round), at least one is longer than the tail bin with probability 1 − (1 − a)^k (a the share above it), adding
    # I_above − Ī tokens; else at least one is a tail-bin prompt with probability (1 − a)^k − (1 − s)^k (s the tail
    # share, the prompts above included), adding I_tail − Ī (C cases: none, a tail-bin one and, where some rows have
    # prompts above the tail bin, a longer one). A p90 at the top of the short prompts waits behind the long ones as
    # often as they arrive.
    s_tail = np.clip(traffic.tail_share, 0.0, 1.0)
    late = behind / np.minimum(np.maximum(behind, 1.0), pp)  # (n,) co-arrivals behind it in its last round
    seen = mine + late  # (K, n) co-arrivals whose prompts share its rounds
    none = (1.0 - s_tail) ** seen  # (K, n)
    over_tail = np.broadcast_arrays(np.maximum(traffic.input_tail - traffic.input_tokens, 0.0), q)[0]  # (n,)
    if above:
        clear = (1.0 - np.minimum(above_share, s_tail)) ** seen
        case = np.stack([none, clear - none, 1.0 - clear])  # (C, K, n)
        extra = np.stack([np.zeros(over_tail.shape), over_tail, np.maximum(longer - traffic.input_tokens, 0.0)])  # longer: the class above
    else:
        case = np.stack([none, 1.0 - none])
        extra = np.stack([np.zeros(over_tail.shape), over_tail])
    tokens = prompts[:, None, None, :] + mine[None, None, :, :] * lump + extra[None, :, None, :]  # (B, C, K, n)
    shared = tokens + late * lump  # with those behind it in its last round
    chunks = np.ceil(tokens / room)
    own = chunks * step.seconds(d, np.minimum(shared, room))
    if np.any(traffic.prefill_first):  # its chunks run as prefill steps, a decode step between two (module docstring of load)
        first = np.broadcast_to(np.asarray(traffic.prefill_first, dtype=float) > 0.0, own.shape)
        alone = chunks * step.seconds(np.zeros_like(d), np.minimum(shared, room)) + (chunks - 1.0) * step.seconds(d, 0.0)
        own = np.where(first, alone, own)
    own = own.reshape(-1, kmax + 1, q.shape[-1] if q.ndim else 1)
    weights_bc = (shares[:, None, None, :] * case[None]).reshape(-1, kmax + 1, q.shape[-1] if q.ndim else 1)  # (B·C, K, n)
    n = q.shape[-1] if q.ndim else 1
    coef = (weights_bc[:, :, None, :] * (weight[None, :, :] * ahead)[None]).reshape(-1, n)  # (B·C·K·J, n); (K, J, n) product first
    # Pieces no row weighs above 1e-12 leave; the kept ones gather their start (own prefill, by B·C·K) and
    # slope (round type, by J) without materialising the full grid.
    kept = np.flatnonzero((coef > 1e-12).any(axis=1))
    bck, j = np.divmod(kept, rounds.shape[0])
    coef = coef[kept]
    coef = np.where(coef > 1e-12, coef, 0.0)
    inv = (1.0 / np.maximum(busy, 1e-12))[j]
    start = own.reshape(-1, n)[bck]
    point = rest[j]  # (P, n)
    at = np.flatnonzero((point > 0.0).any(axis=1))
    if at.size:  # the idle share of those pieces: a step at the own prefill (no residual)
        coef = np.concatenate([coef * (1.0 - point), coef[at] * point[at]])
        start = np.concatenate([start, start[at]])
        inv = np.concatenate([inv, np.full((at.size, n), 1e12)])
    own_k = np.where(np.arange(kmax + 1)[:, None] <= row_k, own, 0.0)  # each row's bracket from its own counts and round types
    hi = np.max(own_k, axis=(0, 1)) + np.max(np.where(weight > 0.0, rounds, 0.0), axis=0)
    return coef, start, inv, np.asarray(hi, dtype=float)
