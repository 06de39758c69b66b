"""TTFT percentile of the round mixture: residual of the round in progress, then the request's own prefill.

Part of the load model (:mod:`aicap.sizing.serve.load`), which supplies the round types, their
probabilities and durations at a load; this module turns them into the ``q`` quantile of the time
from arrival to the end of the request's prefill. The prompts that arrive while a round runs are prefilled
together in the next one, which ends when the last of them is done, so the request waits for every one of them,
not only for those that came before it. Its own prefill takes ``c = ⌈t/C⌉`` steps of ``T(d, chunk)`` (mixed steps),
the last holding the rest of its prompt and its co-arrivals up to the budget; on an engine that prefills first the
steps are ``T(0, chunk)`` and run back to back, and the request waits out the step in progress (a prefill step or a
decode step), not the whole round.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.serve.rounds import lump_counts
from aicap.sizing.serve.step_model import StepModel

if TYPE_CHECKING:
    from aicap.sizing.serve.loaded import Traffic

F = NDArray[np.float64]
TTFT_BISECTIONS = 11  # on the TTFT quantile: 2^-11 of its bracket


def ttft_quantile(step: StepModel, pp: F, d: F, room: F, lump: F, pmf: F, rounds: F, tau: F, lump_rate: F, traffic: Traffic,
                   idle: F, gap: F, whole: NDArray[np.bool_] | bool = False) -> F:  # fmt: skip
    """``q`` quantile of residual + own prefill over the joint mixture (round in progress × co-arrivals × prompt).

    The round in progress holds ``j`` lumps with probability ``∝ P(j)·T_j`` (an arrival lands in a long
    round more often); the residual is uniform on ``[0, T_j]``; ``M`` lumps arrive in the same round (Poisson with
    mean ``λ_L·T_j``; for bursty traffic a negative binomial of the others a bursty arrival finds, :func:`_company`)
    and are prefilled with the request: all of them are in its step, which is exact while they fit the budget (the
    arrivals in a window are independent of where the request falls in it). Beyond the budget the ``k`` of them ahead
    of it (uniform on ``0..M``: ``⌊M/2⌋`` or ``⌈M/2⌉`` with even odds) set its chunks, ``c = ⌈(I_b + k·L)/room⌉`` steps,
    ``c − 1`` of ``T(d, min(I_b + M·L, room))`` and the last with the rest of them, of the others, and of what arrived
    during its earlier chunks, up to the budget. The prompt ``I_b`` is the tail bin, the mean, or the
    mean of the prompts longer than the tail bin (shares ``tail_share − above_share``, ``1 − tail_share`` and
    ``above_share``); the co-arrivals include a longer prompt, else a tail-bin one, as often as such prompts arrive,
    each adding its excess over the mean, before the request (towards its chunks) or after it (in its last step
    only) with even odds.
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
    bucket = np.searchsorted(_BUCKET_TOPS, _counts_needed(pmf, rounds, lump_rate, idle, gap, whole, _bursts(traffic, whole, n)))
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


def _steps_of_rounds(step: StepModel, d: F, rounds: F, weight: F, spell: F, idle_b: F, traffic: Traffic) -> tuple[F, F, F, F]:
    """A prefill-first engine's rounds as the two steps they are: the arrival waits out the step in progress, not the round.

    A round that carries prompts is a prefill step ``T(0, p)`` and then a decode step ``T(d, 0)``; the engine prefills
    whatever is waiting as soon as a step ends, so a request that arrives in either step is prefilled in the next one,
    with the prompts that arrived during that step. Each round type with prompts (every type but the first, which has
    none) becomes two types of ``T_j − T(d, 0)`` and ``T(d, 0)`` seconds, weighted by their share of the round's time;
    the other rows keep their rounds (the second types are empty there). Returns ``(weight, rounds, spell, idle)``,
    each ``(2J, n)``.
    """
    first = np.broadcast_to(traffic.prefills_first, rounds.shape[-1:])
    prompts = (np.arange(rounds.shape[0]) >= 1)[:, None] & first[None, :]
    dec = np.where(prompts, np.minimum(np.broadcast_to(step.seconds(d, 0.0), rounds.shape[-1:]), rounds), 0.0)
    share = np.where(rounds > 0.0, dec / np.maximum(rounds, 1e-300), 0.0)
    none = np.zeros_like(rounds)
    return (np.concatenate([weight * (1.0 - share), weight * share]), np.concatenate([rounds - dec, dec]),
            np.concatenate([spell, none]), np.concatenate([idle_b, none]))  # fmt: skip


def _bursts(traffic: Traffic, whole: NDArray[np.bool_] | bool, n: int) -> F:
    """Per row, the co-arrivals' dispersion ``c² = max(cv², 1)``: Poisson and smoother traffic 1, and so encoders (``whole``)."""
    return np.asarray(np.where(np.broadcast_to(whole, (n,)), 1.0, np.broadcast_to(traffic.burstiness, (n,))), dtype=float)


def _company(prompts: F, c2: F) -> tuple[F, F]:
    """The others a bursty arrival finds in its window, which holds ``prompts`` of them on average: their mean and dispersion.

    Bursty arrivals are a gamma renewal process (shape ``1/c²``; :mod:`aicap.sizing.sim.arrivals`). Seen from an arrival,
    the others within ``t`` after it number ``N(t)``, mean ``H(t)`` (the renewal function), ``λt`` plus an excess that
    grows from 0 to ``(c² − 1)/2`` as ``t`` spans more gaps: an arrival falls in a burst more often than a random instant
    does. Those before it are an independent copy. The request falls at a uniform point ``u`` of its window of ``w`` mean
    gaps, so the others there are ``N_b(u·w) + N_f((1 − u)·w)``: :func:`_palm_window` tabulates their mean and variance.
    Returns the count's mean (in prompts) and its variance over its mean (the dispersion a negative binomial takes).
    """
    mean = np.array(np.broadcast_to(prompts, np.broadcast_shapes(np.shape(prompts), np.shape(c2))), dtype=float)
    disp = np.ones(mean.shape)
    c = np.broadcast_to(c2, mean.shape)
    for value in np.unique(c[c > 1.0]).tolist():
        at = c == value
        grid, m, v = _palm_window(float(value))
        w = mean[at]
        far = w > grid[-1]  # past the table: the limits, λw + c² − 1 and a dispersion of c²
        mean[at] = np.where(far, w + value - 1.0, np.interp(w, grid, m))
        disp[at] = np.where(far, value, np.interp(w, grid, v / np.maximum(m, 1e-12), left=1.0))
    return mean, np.maximum(disp, 1.0)


@functools.lru_cache(maxsize=32)
def _palm_window(c2: float) -> tuple[F, F, F]:
    """Mean and variance of the others in a window of ``w`` mean gaps around an arrival of a unit-rate gamma renewal process.

    ``H(t) = Σ_{k ≥ 1} P(Gamma(k/c², c²) ≤ t)`` (``k`` gaps of shape ``1/c²`` and scale ``c²``) on a grid of step ``1/256``
    to 32 gaps; ``E[N(t)²] = H(t) + 2∫_0^t H(t − s) dH(s)`` (a discrete convolution). With the arrival at ``u ~ U(0, 1)``
    of the window, the others ``C = N_b(u·w) + N_f((1 − u)·w)`` (independent given ``u``) have ``E[C] = 2∫H(u·w)du`` and
    ``E[C²] = ∫(2·E[N(u·w)²] + 2·H(u·w)·H((1 − u)·w))du``, by a 32-point midpoint rule. Returns ``(w, E[C], Var[C])``.
    """
    from scipy.special import gammainc  # the planner's path only: aicap --help imports no scipy

    step, top = 1.0 / 256.0, 32.0
    t = np.arange(0.0, top + step / 2.0, step)
    k = np.arange(1, int(top + 12.0 * np.sqrt(top * c2) + 50.0), dtype=float)[:, None]
    h = gammainc(k / c2, t[None, :] / c2).sum(axis=0)  # H(t)
    dh = np.diff(h, prepend=0.0)
    m2 = h + 2.0 * np.convolve(h, dh)[: t.size]  # E[N(t)²]
    w = t[::8]  # the table's windows: every 1/32 of a gap
    u = (np.arange(32) + 0.5) / 32.0
    before, after = np.outer(w, u), np.outer(w, 1.0 - u)
    hb, ha = np.interp(before, t, h), np.interp(after, t, h)
    mean = (hb + ha).mean(axis=1)
    second = (np.interp(before, t, m2) + np.interp(after, t, m2) + 2.0 * hb * ha).mean(axis=1)
    return w, np.asarray(mean, dtype=float), np.asarray(np.maximum(second - mean**2, 0.0), dtype=float)


def _counts_needed(pmf: F, rounds: F, lump_rate: F, idle: F, gap: F, whole: NDArray[np.bool_] | bool,
                   c2: F | float = 1.0) -> NDArray[np.int64]:  # fmt: skip
    """Per row, the most co-arrivals its mixture counts (:func:`_count_top` of its largest mean per round, with a burst's company)."""
    weight, spell, _ = _round_weights(pmf, rounds, idle, gap, whole)
    mean_m = lump_rate * rounds * (1.0 - spell)
    most = np.max(np.where(weight > 0.0, mean_m, 0.0), axis=0, initial=0.0)
    return _count_top(most * (1.0 + np.maximum(np.asarray(c2, dtype=float) - 1.0, 0.0)), c2)


def _count_top(most: F, c2: F | float = 1.0) -> NDArray[np.int64]:
    """Co-arrival counts a row's mixture keeps: ``⌈m + 6·√(m·c²) + 3⌉`` in ``[4, 48]`` for a largest mean ``m`` per round."""
    return np.asarray(np.clip(np.ceil(most + 6.0 * np.sqrt(most * c2) + 3.0), 4, 48), dtype=np.int64)


def _merge(a_own: F, a_weights: F, b_own: F, b_weights: F) -> None:
    """Move, in place, the weight of pieces ``a`` whose prefill time equals their sibling ``b``'s (to 1e-12) onto ``b``.

    The arguments are views of the same shape; the mixture is unchanged, with fewer distinct pieces.
    """
    same = np.isclose(a_own, b_own, rtol=1e-12, atol=0.0)
    b_weights += np.where(same, a_weights, 0.0)
    a_weights[...] = np.where(same, 0.0, a_weights)


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
    if np.any(traffic.prefills_first):
        weight, rounds, spell, idle_b = _steps_of_rounds(step, d, rounds, weight, spell, idle_b, traffic)
    live = weight.max(axis=1) > 0.0
    # A decoder's prefill-free round is in progress only while something decodes: an arrival finds the engine idle
    # (share ``idle``) and waits no residual, or a round in progress and waits a residual uniform on [0, T_j].
    # (An encoder's idle spell is a round type of its own, timed by ``gap``; its rounds are busy throughout.)
    rest = np.where(np.broadcast_to(whole, idle_b.shape[-1:]), 0.0, idle_b)[live]  # (J, n) share with no round in progress
    weight, rounds, busy, spell = weight[live], rounds[live], rounds[live] * (1.0 - spell[live]), spell[live]
    c2 = _bursts(traffic, whole, q.shape[-1] if q.ndim else 1)
    mean_m = lump_rate * rounds * (1.0 - spell)  # (J, n) co-arrivals expected during a round of type j (none in a spell)
    disp = np.ones_like(mean_m)
    if np.any(c2 > 1.0):  # the others a bursty arrival finds in its window (in lumps: a prompt is I/L of them)
        per_prompt = np.maximum(np.broadcast_to(traffic.input_tokens, c2.shape) / np.maximum(np.broadcast_to(lump, c2.shape), 1e-9), 1.0)
        others, disp = _company(mean_m / per_prompt, c2)
        mean_m, disp = others * per_prompt, disp * per_prompt
    most = np.max(np.where(weight > 0.0, mean_m, 0.0), axis=0, initial=0.0)  # (n,)
    row_k = _count_top(most, np.max(disp, axis=0, initial=1.0))
    kmax = int(np.max(row_k, initial=4))
    mm = np.arange(kmax + 1, dtype=float)
    pm = lump_counts(mean_m, np.sqrt(disp), kmax, np.broadcast_to(row_k, mean_m.shape))  # (K, J, n) Poisson or negative binomial
    # The prompts that arrive while a round runs are prefilled together in the next one, and a step ends when the last of
    # them is done: the request's first token waits for all M of them (M ~ pm), those that arrived after it as much as
    # those before (where they overflow the budget, those ahead of it set its chunks: below).
    # With pp micro-batches the co-arrivals spread over them; the request's own micro-batch keeps its share.
    mine = np.ceil((mm[:, None] + 1.0) / np.minimum(mm[:, None] + 1.0, pp)) - 1.0  # (K, n) co-arrivals in its micro-batch
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
    # Co-arrivals' prompts vary too: of the k that share its step, at least one is longer than the tail bin with
    # probability 1 − (1 − a)^k (a the share above it), adding I_above − Ī tokens; else at least one is a tail-bin prompt
    # with probability (1 − a)^k − (1 − s)^k (s the tail share, the prompts above included), adding I_tail − Ī (cases:
    # none, a tail-bin one and, where some rows have prompts above the tail bin, a longer one). A p90 at the top of the
    # short prompts waits behind the long ones as often as they arrive. Such a prompt is as likely to have come before
    # the request as after it (half the weight each): before, it takes the budget first and its tokens count towards
    # the request's chunks; after, it only fills the rest of the request's last step (a pipeline or an encoder's round
    # counts it ahead, as every co-arrival there).
    s_tail = np.clip(traffic.tail_share, 0.0, 1.0)
    none = (1.0 - s_tail) ** mine  # (K, n)
    over_tail = np.broadcast_arrays(np.maximum(traffic.input_tail - traffic.input_tokens, 0.0), q)[0]  # (n,)
    zero = np.zeros(over_tail.shape)
    if above:
        clear = (1.0 - np.minimum(above_share, s_tail)) ** mine
        tail_k, long_k = (clear - none) / 2.0, (1.0 - clear) / 2.0
        case = np.stack([none, tail_k, tail_k, long_k, long_k])  # (C, K, n)
        over_long = np.maximum(longer - traffic.input_tokens, 0.0)  # longer: the class above
        extra, after = np.stack([zero, over_tail, zero, over_long, zero]), np.stack([zero, zero, over_tail, zero, over_long])
    else:
        case = np.stack([none, (1.0 - none) / 2.0, (1.0 - none) / 2.0])
        extra, after = np.stack([zero, over_tail, zero]), np.stack([zero, zero, over_tail])
    piped = (np.broadcast_to(pp, q.shape) > 1) | np.broadcast_to(whole, q.shape)
    extra, after = extra + np.where(piped, after, 0.0), np.where(piped, 0.0, after)
    # Of the M co-arrivals, the k ahead of it take the budget first: k is uniform on 0..M, taken as ⌊M/2⌋ or ⌈M/2⌉ with even
    # odds (M = 1 exactly); all M in a pipeline or an encoder's round. Its chunks count those ahead; its last step holds them
    # all, the long prompt after it, and what arrived during its earlier chunks (λ_L lumps a second), up to the budget.
    others_k = mine[None, None, :, :] * lump  # (1, 1, K, n) the co-arrivals' tokens
    tokens = prompts[:, None, None, :] + others_k + extra[None, :, None, :]  # (B, C, K, n) its own and every co-arrival's
    ahead_k = np.stack([np.where(piped, mine, np.floor(mine / 2.0)), np.where(piped, mine, np.ceil(mine / 2.0))])  # (2, K, n)
    chunks = np.ceil((tokens[None] - others_k[None] + ahead_k[:, None, None] * lump) / room)  # (2, B, C, K, n)
    # Its chunks run back to back as prefill steps on a prefill-first engine (module docstring).
    dec = np.where(np.broadcast_to(traffic.prefills_first, q.shape), 0.0, d)
    share_bck = shares[:, None, None, :] * case[None]  # (B, C, K, n)
    if np.all(chunks <= 1.0):  # nothing overflows the budget (most fleets): one step, every co-arrival in it
        own = step.seconds(dec, np.minimum(tokens + after[None, :, None, :], room))[None]  # (1, B, C, K, n)
        weights = np.array(share_bck[None])
    else:
        chunk_s = step.seconds(dec, np.minimum(tokens, room))  # (B, C, K, n)
        fill = lump_rate / pp * (chunks - 1.0) * chunk_s * lump  # (its micro-batch's share in a pipeline)
        last = np.minimum(np.maximum(tokens - (chunks - 1.0) * room, 0.0) + after[None, None, :, None, :] + fill, room)
        own = (chunks - 1.0) * chunk_s + step.seconds(dec, last)  # (2, B, C, K, n)
        weights = np.broadcast_to(0.5 * share_bck, own.shape).copy()
        _merge(own[1], weights[1], own[0], weights[0])
    # Sub-cases that give the same prefill (no chunk to gain or lose) merge into the first, so the pieces below are as many
    # as there are distinct times: ⌈M/2⌉ into ⌊M/2⌋ (above), and a longer co-arrival after it into before it.
    for c in range(2, case.shape[0], 2):
        _merge(own[:, :, c], weights[:, :, c], own[:, :, c - 1], weights[:, :, c - 1])
    n = q.shape[-1] if q.ndim else 1
    own, weights_bc = own.reshape(-1, kmax + 1, n), weights.reshape(-1, kmax + 1, n)  # (S·B·C, K, n)
    # Pieces no row weighs above 1e-12 leave: first the (sub-case, count) pairs, then with their round types; the kept
    # ones gather their start (own prefill) and slope (round type, by J) without materialising the full grid.
    pairs = np.flatnonzero((weights_bc > 1e-12).any(axis=-1).ravel())  # into (S·B·C·K)
    k_of = pairs % (kmax + 1)
    coef = (weights_bc.reshape(-1, n)[pairs][:, None, :] * (weight[None, :, :] * pm[k_of])).reshape(-1, n)  # (P₀·J, n)
    kept = np.flatnonzero((coef > 1e-12).any(axis=1))
    pair, j = np.divmod(kept, rounds.shape[0])
    coef = coef[kept]
    coef = np.where(coef > 1e-12, coef, 0.0)
    inv = (1.0 / np.maximum(busy, 1e-12))[j]
    start = own.reshape(-1, n)[pairs[pair]]
    point = rest[j]  # (P, n)
    at = np.flatnonzero((point > 0.0).any(axis=1))
    if at.size:  # the idle share of those pieces: a step at the own prefill (no residual)
        coef = np.concatenate([coef * (1.0 - point), coef[at] * point[at]])
        start = np.concatenate([start, start[at]])
        inv = np.concatenate([inv, np.full((at.size, n), 1e12)])
    own_k = np.where(np.arange(kmax + 1)[:, None] <= row_k, own, 0.0)  # each row's bracket from its own counts and round types
    hi = np.max(own_k, axis=(0, 1)) + np.max(np.where(weight > 0.0, rounds, 0.0), axis=0)
    return coef, start, inv, np.asarray(hi, dtype=float)
