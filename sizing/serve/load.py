"""One replica under Poisson (or bursty) traffic: round time, TTFT and TPOT percentiles at a load.

The engine (see :mod:`aicap.sizing.serve.step`) runs *rounds*: with pipeline parallelism ``pp`` a round
is one step of each of the ``pp`` micro-batches in flight; without it, one step. Every running request
decodes one token per round, and newly arrived prompts are prefilled in the next round (chunked when a
prompt exceeds the token budget ``C``). Let ``x`` be the mean number of arrivals per round. Then, for
mean prompt ``I`` and output ``O`` tokens,

* decoding sequences per micro-batch ``d = x·(O − 1)/pp`` (Little's law: a request decodes ``O − 1`` rounds);
* prefill tokens per round ``x·I``, in lumps that land on the ``pp`` micro-batches at random (the router
  balances the requests each holds, not one round's prompts): a round with ``m`` lumps is paced by its
  fullest micro-batch, ``p = E[max]·L`` for ``m`` balls in ``pp`` bins (:func:`~aicap.sizing.serve.rounds.fullest`;
  ``L`` the lump). So with few arrivals per round a prompt stalls the pipeline for its whole traversal, and
  more arrivals share a round rather than lengthen it: this is what makes a pipeline replica pay for prefill.
* round time ``τ(x) = E[T(d, p)]`` over the lump counts: the slowest micro-batch sets the pace of a synchronous pipeline;
  an engine that prefills first (``Traffic.prefill_first``: SGLang, vLLM v0) runs a round with prompts as a prefill
  step and then a decode step, ``T(0, p) + T(d, 0)``;
* arrival rate ``λ(x) = x/τ(x)``.

Everything is explicit in ``x``, so the largest rate that meets the targets is one bisection on ``x``
(``λ(x)`` increases with ``x`` while the replica is stable): :mod:`aicap.sizing.serve.capacity`; the load
that carries a given rate is another (:mod:`aicap.sizing.serve.rate`). Where an engine's CUDA graphs stop at
``G`` decoders, the load reports how much of ``G`` its running count's reach uses (``graph_use``,
:mod:`aicap.sizing.serve.graph_cap`).

Latency percentiles at quantile ``q`` (``z_q`` its normal deviate), for a request arriving at a random
instant:

The lumps of prompt tokens a round holds are counted with the variance of a compound Poisson sum: prompts
of varied length (token-weighted mean ``Ĩ = E[I²]/E[I]``) arrive as chunks of ``c = min(I, L)/L`` lumps
(``L`` the lump, the mean prompt or the budget left), whose index of dispersion ``E[c²]/E[c]`` is about
``v = max(min(Ĩ, L)/L, 1)``; the counts are negative binomial with ``cv² = cv_a² + v − 1`` (``cv_a`` the
arrivals'), widened further for the feedback of long rounds. So a round that holds a long prompt is as
likely in the round in progress (TTFT) and in the round-time spread (TPOT) as the traffic makes it.

* **TTFT** = residual of the round in progress (uniform on ``[0, τ]``) + its own prefill + a wait for
  the budget and for a free slot; on an engine with overlap scheduling (``lag_rounds = 1``) plus one round ``τ``
  when the request finds the engine busy, as the simulator has it (:mod:`aicap.sizing.sim.engine`). Its own
  prefill runs ``r = ⌈(I_q + m_q·I/k)/(C − d)⌉`` rounds, the last with what is left of it and of the ``m_q``
  prompts that arrive in the same round (all of them: the step ends when the last is done), where ``I_q`` is the
  prompt length at ``q`` and ``m_q`` the ``q`` quantile of those co-arrivals (Poisson with mean ``x``; negative
  binomial for bursty arrivals, counting the company an arrival brings), shared with its micro-batch as if spread
  evenly over ``k = min(m_q + 1, pp)`` of them (:mod:`aicap.sizing.serve.ttft`). On an engine that prefills first
  (``prefill_first``) the request waits out the step in progress, prefill or decode, not the round; its prefill
  steps decode nothing, have the whole budget ``C`` and run back to back. Prompts shorter than the budget share
  rounds: they wait for the budget only behind a backlog of tokens earlier rounds could not take (Kingman's bound
  for the discrete-time queue, :func:`~aicap.sizing.serve.budget.backlog_s`); a longer one waits for the long
  prompts ahead (M/D/1, its mean scaled by ``cv²``: Kingman's for deterministic service).
  The slot wait is the M/M/c (Erlang C) wait with ``c`` the slots memory allows and service time the request's life
  (:mod:`aicap.sizing.serve.queueing`), of the equivalent system of ``c/z`` slots at ``λ/z`` (Hayward; ``z`` the running
  count's peakedness, below). The mixture's
  quantile and the waits are combined as ``mix_q + Σ mean_i + sqrt(Σ (q_i − mean_i)²)`` over the waits: independent
  waits do not all hit their tail at once.
* **TPOT** = ``τ + τ'·Var(n)/n + w_q·sqrt((2/3)·D² + M² + D·M)`` with the drift ``D = τ'·sd(n)`` and the
  mix ``M = σ_τ·sqrt(c)/((1 − ρ_p)·sqrt(O − 1))``: the mean of a request's ``O − 1`` round times. ``n`` decoding requests drift slowly
  (``Var(n) = n·max(cv, 1)²/((1 − β)·(1 − ρ_p)²)``, ``β = τ'·n/τ`` the feedback of a longer round keeping
  requests longer, ``τ' = ∂τ/∂n``; each prompt lengthens its round and so brings more arrivals into the
  next, a branching process whose counts vary ``1/(1 − ρ_p)²`` times more than Poisson's), and requests see
  ``n`` size-biased (more of them decode while it is high), which shifts their mean by ``τ'·Var(n)/n``;
  the rounds that carry prompts add ``σ_τ``, the spread of the round time, averaged over ``O − 1`` rounds
  and amplified by ``1/(1 − ρ_p)`` (``ρ_p`` the prefill time share); a prompt of ``c = I/L`` budget-sized
  chunks brings its long rounds in a cluster of ``c``, which multiplies their variance by ``c`` (varied prompts are
  in ``σ_τ``: the counts above). Tokens are conserved, so over a life the lumps met vary as their count does:
  ``σ_τ² ≥ J²·μ·D`` (``J`` the seconds a lump adds to a round, ``μ`` lumps a round, ``D`` their dispersion), which a
  round whose budget holds one lump cannot carry alone (a burst is a run of long rounds, not one); and under bursty
  arrivals an arrival meets ``(cv² − 1)/2`` more prompts after it than a random instant does (the renewal function),
  which adds ``(cv² − 1)/2·c·J/((1 − ρ_p)·(O − 1))`` to its mean. A roofline's round is convex in ``n`` (it steepens
  where compute starts to bind), so
  ``n`` fluctuating across that kink sees a longer decode round than the round at its mean and a blend of the two
  slopes: the decode-only round and ``τ'`` are their means over ``n``'s spread, itself set by ``β``, a fixed point
  (:mod:`aicap.sizing.serve.fluctuation`); and the drift towards the percentile takes the secant of the decode
  round to the count there where it is steeper than ``τ'``. Both spreads come from the same arrivals (those during
  a request's life are the prompts it meets and decoders joining ``n``): over a life of ``S`` seconds the mean ``n`` a request sees varies
  ``2/3`` as much as ``n`` (each arrival weighs its overlap with the life, ``1 − |s|/S``), and the two covary by
  ``λ·I·S/2``, whence the ``2/3`` and the cross term (exact for prompts alike; for varied ones an upper bound,
  the budget clipping what their spread adds to ``M``).
  The deviate leans right, ``w_q = z_q + (z_q² − 1)·γ/6`` (Cornish–Fisher), because the prompt work a request
  meets is a busy period: each prompt met (work ``X = c·I``, ``λ·E[X] = ρ_p``) stretches the life and so
  brings prompts of its own. Begun by a life that would meet ``Λ₀ = x·(O − 1)·(1 − ρ_p)`` prompts alone, its
  cumulants are ``κ_n = Λ₀·E[B₁ⁿ]`` (``B₁`` one prompt's busy period: ``E[B₁²] = E[X²]/(1 − ρ)³``,
  ``E[B₁³] = E[X³]/(1 − ρ)⁴ + 3λ·E[X²]²/(1 − ρ)⁵``), so its skewness is
  ``γ_M = (g·sqrt(1 − ρ) + 3ρ·sqrt(Ĩ/I)/sqrt(1 − ρ))/sqrt(Λ₀)`` with ``g = E[I³]/E[I²]^(3/2)`` and
  ``Ĩ = E[I²]/E[I]``. The running count leans right too: a clustered count of peakedness ``P = Var(n)/n``
  (negative binomial) has skewness ``γ_n = (2P − 1)/sqrt(n·P)``, and a life's mean keeps ``∫w³/∫1 = 1/2`` of
  its third cumulant. So the spread's third cumulant is ``γ_M·M³ + γ_n·D³/2`` (the two parts' joint third
  cumulants left out: a lower bound) and ``γ`` that over ``Σ³`` (``Σ`` the square root above), at most 2
  (:data:`MAX_LEAN`: where few lives meet any prompt the expansion would add most of a whole prompt to every
  percentile). Below the 84th percentile (``z_q < 1``) the expansion would move the percentile under the
  normal one (the median under the mean); there the normal deviate is kept, which errs high and keeps the
  spread at least ``z_q`` times its floor, as :func:`~aicap.sizing.serve.capacity.rate_bound` assumes.

Encoders and generic models are the same engine with ``O = 0`` (dynamic batching: a batch is a round).
There the prompts are the whole round, so the round sizes are the exact stationary law of the
round-to-round chain (:func:`~aicap.sizing.serve.rounds.chain_rounds`: a round of ``m`` prompts lasts ``T(m)``, the next holds the
arrivals meanwhile; an empty round is an idle spell until the next arrival), and a prompt finishes with
all its co-arrivals at the end of its round.
The approximation is tested against the iteration-level simulator of :mod:`aicap.sizing.sim` and
against closed forms (M/D/1 for a one-slot replica) in ``tests/sizing/test_load.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.serve.budget import backlog_s, budget_floor
from aicap.sizing.serve.deviates import MAX_LEAN, met_skewness, z_of
from aicap.sizing.serve.fluctuation import peakedness, settle_spread
from aicap.sizing.serve.graph_cap import graph_use
from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.queueing import wait_quantile
from aicap.sizing.serve.rounds import chain_rounds, chain_rows, count_top, fullest, lump_counts, prefill_chain_seconds, prefill_first_rounds
from aicap.sizing.serve.step_model import StepModel
from aicap.sizing.serve.ttft import ttft_quantile

F = NDArray[np.float64]
BUDGET_UTILISATION = 0.9  # largest planned share of a round's token budget spent on prefill
SLOT_UTILISATION = 1.0  # the slots must hold the mean running count plus SLOT_SIGMAS of its spread (and feedback β < 1)
SLOT_SIGMAS = 3.0
# Plans keep the predicted percentile at or under this share of each target. Against the iteration-level
# simulator (tests/sizing/test_load.py), the approximation under-predicts TPOT p99 by up to 9% at capacity
# on the reference cases (and over-predicts by up to 8%); the headroom absorbs that so a plan's promise
# holds when the traffic arrives. Near capacity a replica's TPOT tail is steep in the rate: for Llama-3.1-8B
# fp8 on one H100 (1,500/300 tokens), 2% more traffic than the capacity takes the simulated p99 from 47 to 64 ms.
LATENCY_HEADROOM = 0.85


_COUNT_BLOCKS = (16, 32, 64)  # rows are evaluated in blocks by how many lump counts their distribution needs
_BLOCK_ROWS = 8192  # and at most this many rows at once, so a block's (counts, rows) temporaries stay in cache


def at_arrivals(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, x: ArrayLike, *, ttft: bool = True) -> Loaded:
    """Metrics of replicas receiving ``x`` arrivals per round on average (see module docstring).

    ``step`` gives the step time of each candidate (built at the decode context ``I + O/2`` and prompt
    ``I``), ``pp`` its pipeline stages and ``budget`` the engine's token budget per step. With
    ``ttft=False`` the TTFT percentile is not computed (the residual, own-prefill mixture and the slot
    wait are left out; ``ttft_s`` is only infinite where the replica saturates): the other metrics are
    the same, at a fraction of the cost. Rows are
    evaluated in blocks of similar lump counts, so a few busy rows do not widen every row's arrays, of at
    most ``_BLOCK_ROWS`` rows.
    """
    pp_a = np.asarray(pp, dtype=float)
    xa = np.maximum(np.asarray(x, dtype=float), 0.0)
    shape = np.broadcast_shapes(pp_a.shape, xa.shape, traffic.input_tokens.shape, step.bandwidth.shape)
    if int(np.prod(shape)) == 0:  # no candidates (e.g. none with capacity to re-evaluate)
        empty = np.zeros(shape)
        return Loaded(empty, empty, empty, empty, empty, empty, empty, empty, empty)
    if len(shape) != 1:
        raise ValueError(f"at_arrivals: one row per candidate (one-dimensional arrays), not an array of shape {shape}")
    if shape[0] < 64:
        return _at_arrivals(step, pp_a, budget, traffic, xa, ttft=ttft)
    pp_b, x_b = np.broadcast_to(pp_a, shape), np.broadcast_to(xa, shape)
    i = np.broadcast_to(traffic.input_tokens, shape)
    d = x_b * np.broadcast_to(traffic.decode_steps, shape) / pp_b
    top = count_top(x_b * i / np.minimum(i, np.maximum(budget - d * step.decode_tokens, 1.0)))
    block = np.searchsorted(np.array(_COUNT_BLOCKS, dtype=float), top)
    if np.unique(block).size == 1 and shape[0] <= _BLOCK_ROWS:
        return _at_arrivals(step, pp_a, budget, traffic, xa, ttft=ttft)
    parts: list[tuple[NDArray[np.int64], Loaded]] = []
    for b in np.unique(block).tolist():
        members = np.flatnonzero(block == b)
        for start in range(0, members.size, _BLOCK_ROWS):
            ix = members[start : start + _BLOCK_ROWS]
            parts.append((ix, _at_arrivals(step.take(ix), pp_b[ix], budget, traffic.take(ix), x_b[ix], ttft=ttft)))
    merged = Loaded.zeros(shape)
    for ix, m in parts:
        merged.put(ix, m)
    return merged


def at_arrivals_of(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, rows: NDArray[np.int64] | None, x: F, *,
                   ttft: bool = True) -> Loaded:  # fmt: skip
    """:func:`at_arrivals` of the candidates at ``rows`` (every one, in order, when ``None``).

    What a :func:`~aicap.sizing.serve.search.bisect_rows` predicate evaluates.
    """
    if rows is None:
        return at_arrivals(step, pp, budget, traffic, x, ttft=ttft)
    pp_rows = np.broadcast_to(np.asarray(pp, dtype=float), step.bandwidth.shape)[rows]
    return at_arrivals(step.take(rows), pp_rows, budget, traffic.take(rows), x, ttft=ttft)


def of_rows(values: F, rows: NDArray[np.int64] | None) -> F:
    """``values`` at ``rows`` (all of them when ``None``), to go with :func:`at_arrivals_of`."""
    return values if rows is None else values[rows]


def _at_arrivals(step: StepModel, pp_a: F, budget: float, traffic: Traffic, xa: F, *, ttft: bool) -> Loaded:
    """:func:`at_arrivals` on one block of rows."""
    i, o, cv, q = traffic.input_tokens, traffic.output_tokens, traffic.arrival_cv, traffic.quantile
    steps = traffic.decode_steps  # per request, after its first token (O − 1 without speculative decoding)
    d = xa * steps / pp_a
    room = traffic.room(budget, d, step.decode_tokens)
    first = np.broadcast_to(traffic.prefills_first, np.shape(room))
    # Prompts arrive in lumps of L tokens (a long prompt is chunked into budget-sized lumps).
    lump = np.minimum(i, room)
    lumps = xa * i / lump
    # Each row's count distribution is truncated at its own top (so a row's metrics do not depend on the
    # rows evaluated with it); the arrays run to the largest.
    row_top = np.clip(count_top(lumps), 8, 96).astype(np.int64)
    top = int(np.max(row_top, initial=8))
    m = np.arange(top + 1, dtype=float).reshape(-1, *([1] * xa.ndim))
    # Varied prompts: the counts carry a compound Poisson sum's dispersion v (module docstring), cv² = cv_a² + v − 1.
    span = np.maximum(traffic.input_span, i)  # the token-weighted prompt, E[I²]/E[I] (at least the mean)
    varied = np.maximum(np.minimum(span, room) / lump, 1.0)
    # The round lasts as long as its fullest micro-batch's step: the prompts land on the pp micro-batches at random,
    # each with its lumps (m lumps are about m/v prompts of v lumps each; a prompt stays in its micro-batch).
    wanted = m * lump
    if (piped := np.flatnonzero(np.broadcast_to(pp_a, xa.shape) > 1.0)).size:
        v, pp_p = np.broadcast_to(varied, xa.shape)[piped], np.broadcast_to(pp_a, xa.shape)[piped]
        wanted[:, piped] = v * fullest(m / v, pp_p) * np.broadcast_to(lump, xa.shape)[piped]
    # One step-time evaluation for every prefill size needed: m lumps (rows 0..top), a full budget, a budget
    # less one lump, and one prompt.
    shape = np.broadcast_shapes(np.shape(wanted)[1:], np.shape(room), np.shape(lump), np.shape(i))
    extra = (room, np.maximum(room - lump, 0.0), np.minimum(i, room))
    head = np.broadcast_to(np.minimum(wanted, room), (top + 1, *shape))
    sizes = np.concatenate([head, np.stack([np.broadcast_to(v, shape) for v in extra])])
    all_s, all_dd, all_dp = step.seconds_and_slope(d, sizes)
    takes = wanted >= room  # a round whose prompts fill the budget
    dispersion = cv**2 + varied - 1.0
    if np.any(first):  # prefill-first: a round with prompts is a prefill step, then a decode step
        all_s, all_dd, all_dp, pre_s = prefill_first_rounds(step, d, sizes, first, (all_s, all_dd, all_dp))
        takes = takes & ~first  # its decode step has a budget of its own
        # Prompts that arrive during a prefill step get a prefill step of their own right after it: at the rate the
        # rounds above give, a round's prefill is a chain of steps (rounds.prefill_chain_seconds).
        tau_one = (lump_counts(lumps, np.sqrt(dispersion), top, row_top) * all_s[: top + 1]).sum(axis=0)
        most = np.concatenate([np.broadcast_to(m, head.shape), np.stack([np.broadcast_to(v / lump, shape) for v in extra])])
        typical = np.broadcast_to(np.clip(xa * i, lump, room), np.shape(d))  # a round's prompt tokens: a lump to the budget
        further = prefill_chain_seconds(step, pre_s, xa / np.maximum(tau_one, 1e-12), most, typical)
        all_s = np.where(first & (sizes > 0.0), all_s + further, all_s)
    rounds, rounds_dd, rounds_dp = all_s[: top + 1], all_dd[: top + 1], all_dp[: top + 1]  # (top+1, n): round time with m lumps
    # One more decoding sequence takes one token of the budget from a round that fills it (in a mixed step).
    rounds_dd = rounds_dd - np.where(takes, rounds_dp, 0.0)
    # Lumps in a round are the arrivals during the previous one, so a long round begets a long round:
    # with c the marginal seconds of a lump and ρ_p = λ_L·c the prefill load, the count's variance grows
    # by 1/(1 − ρ_p²) (a branching process). One pass without that feedback gives λ, then ρ_p.
    pmf = lump_counts(lumps, np.sqrt(dispersion), top, row_top)
    tau = (pmf * rounds).sum(axis=0)
    full_s, full_dd, full_dp = all_s[top + 1], all_dd[top + 1], all_dp[top + 1]
    # A full round less one lump in each of its pp micro-batches: per lump, a pp-th of the difference.
    slope = (full_s - all_s[top + 2]) / pp_a
    prefill_load = np.minimum(lumps / np.maximum(tau, 1e-12) * slope, 0.999)
    pmf = lump_counts(lumps, np.sqrt(dispersion + 1.0 / (1.0 - prefill_load**2) - 1.0), top, row_top)
    # Without decoding (encoders, generic models: dynamic batching) the prompts are the whole round, the
    # branching is strong and the negative binomial's tail too heavy: there the round sizes are the exact
    # stationary law of the round-to-round chain instead (see rounds.chain_rounds), at the first pass's rate.
    chain = chain_rows(steps, pp_a, lump, i, xa)
    tau_first = tau
    if chain.any() and ttft:  # only the TTFT mixture reads the chain's law (its rate, budget and slots do not)
        ix = np.flatnonzero(chain)
        pmf[:, ix] = chain_rounds(rounds[:, ix], lumps[ix] / np.maximum(tau[ix], 1e-12), np.floor(room[ix] / lump[ix]),
                                   np.broadcast_to(cv, xa.shape)[ix], row_top[ix], top)  # fmt: skip
    # A round prefills at most the budget; what the lumps bring beyond it spills into full rounds.
    # Tokens are conserved: a share f of rounds are full, so that the mean prefilled per round is x·I.
    # (The chain carries its backlog itself: no spill rounds there.)
    full = pp_a * room
    k = np.clip(m, 1.0, pp_a)  # micro-batches a round's m lumps can fill
    done = (pmf * k * np.minimum(m * lump / k, room)).sum(axis=0)
    f = np.where(chain, 0.0, np.clip((xa * i - done) / np.maximum(full - done, 1e-9), 0.0, 1.0))
    pmf = np.concatenate([pmf * (1.0 - f), f[None]])
    m = np.concatenate([np.broadcast_to(m, rounds.shape), np.ceil(full / lump)[None]])
    rounds = np.concatenate([rounds, full_s[None]])
    rounds_dd = np.concatenate([rounds_dd, (full_dd - full_dp)[None]])
    k = np.clip(m, 1.0, pp_a)
    # The chain's rate is the one it was built at: its idle spells are not rounds of one step.
    tau = np.where(chain, tau_first, (pmf * rounds).sum(axis=0))
    n_dec = d * pp_a
    dtau_dd = (pmf * rounds_dd).sum(axis=0)
    # n's fluctuations over Poisson's (its peakedness z = Var(n)/n): cv² when bursty; 1/(1 − β), a longer round
    # keeping requests longer; and 1/(1 − ρ_p)², each prompt lengthening the round it is prefilled in, which
    # brings more arrivals into the next (a branching process: clusters of 1/(1 − ρ_p) admissions, so counts
    # over many rounds vary 1/(1 − ρ_p)² times more). (The chain's rounds carry their own law.)
    prefill_load, free, dtau_dn, feedback, peak = peakedness(tau, dtau_dd, lumps, slope, pp_a, n_dec, cv, chain)
    # The running count fluctuates: where it crosses a kink of the decode round (compute starting to bind), that round
    # is its mean over the spread, longer and with a blended slope (fluctuation.settle_spread finds the spread).
    kinks = step.decode_kinks(d)
    decode_slope = all_dd[0]  # ∂T(d, 0)/∂d at the mean count, before the spread
    spread_d, excess, excess_slope = settle_spread(kinks, pmf[0], tau, dtau_dd, lumps, slope, pp_a, d, cv, chain, feedback, peak)
    tau2 = (pmf * rounds**2).sum(axis=0)
    if (moved := np.flatnonzero(spread_d > 0.0)).size:
        share, before, ex = pmf[0, moved], rounds[0, moved], excess[moved]
        rounds[0, moved] = before + ex
        rounds_dd[0, moved] += excess_slope[moved]
        tau[moved] += share * ex
        tau2[moved] += share * ((before + ex) ** 2 - before**2)
        dtau_dd[moved] += share * excess_slope[moved]
        again = peakedness(tau[moved], dtau_dd[moved], lumps[moved], slope[moved], np.broadcast_to(pp_a, tau.shape)[moved],
                           n_dec[moved], np.broadcast_to(cv, tau.shape)[moved], chain[moved])  # fmt: skip
        for whole, part in zip((prefill_load, free, dtau_dn, feedback, peak), again, strict=True):
            whole[moved] = part
    rate = xa / tau
    rho_p = np.minimum(prefill_load, 0.999)
    # TTFT: residual of the (length-biased) round in progress, then the request's own prefill together
    # with the prompts that arrived during that round; then waits for budget and slots on top.
    lump_rate = xa * i / lump / np.maximum(tau, 1e-12)
    # Rounds without prefill run only while something decodes: an idle engine has no round in progress.
    idle = np.where(m == 0, np.exp(-xa * steps), 0.0)
    gap = 1.0 / np.maximum(rate, 1e-12)
    ttft_mix = (ttft_quantile(step, pp_a, d, room, lump, pmf, rounds, tau, lump_rate, traffic, idle, gap, chain) if ttft
                else np.zeros_like(tau))  # fmt: skip
    use = xa * i / (room * np.minimum(np.maximum(xa, 1.0), pp_a))
    # Prompts queue for the token budget. Short prompts (I ≤ C) share rounds, a share `use` of each round's
    # budget: the round in progress and the prompts that share their own are the TTFT mixture's, and what holds
    # them longer is a backlog of tokens that earlier rounds' budgets could not take (budget.backlog_s). A prompt longer
    # than the budget is a job of ⌈I/C⌉ chunks that holds the budget for S = I·T(d, C)/(pp·C) seconds (on a
    # prefill-first engine I·T(0, C)/(pp·C): its chunks run back to back), at a load ρ_b = λ·S that counts time,
    # not rounds (its rounds are the long ones): an M/D/1 wait (Pollaczek–Khinchine).
    long = i > room
    service = np.where(long, i * full_s / (pp_a * room), np.ceil(i / room) * all_s[top + 3])
    if np.any(first & long):  # a prefill-first engine runs a long prompt's chunks back to back, in prefill steps
        service = np.where(first & long, i * step.seconds(np.zeros_like(d), room) / (pp_a * room), service)
    load_b = np.where(long, rate * service, use)
    ok = (use < 1.0) & (load_b < 1.0)
    safe = np.where(ok, load_b, 0.5)
    pk_mean = safe / (1.0 - safe) * cv**2 * service / 2.0  # Kingman with deterministic service: (cv_a² + 0)/2 of S
    backlog = backlog_s(xa, i, span, cv, room * np.minimum(np.maximum(xa, 1.0), pp_a), tau)
    budget_mean = np.where(ok, np.where(long | chain, pk_mean, backlog), 0.0)
    budget_q = np.where(ok & (load_b > 0), budget_mean / np.maximum(safe, 1e-12) * np.log(np.maximum(safe / (1.0 - q), 1.0)), 0.0)
    running = xa * (steps + np.maximum(i / room, 1.0))
    life = np.maximum(running / np.maximum(rate, 1e-12), tau)
    slots = np.maximum(traffic.slots, 1.0)
    # Slots fill in waves: n's fluctuations are peaked by z over Poisson, so the slot wait is Erlang C's for
    # the equivalent system of c/z slots at λ/z (Hayward's approximation).
    # Without the TTFT percentile only whether the slots keep up matters (an infinite wait past saturation).
    slot_q = wait_quantile(slots / peak, rate / peak, life, q) if ttft else np.where(slots / life - rate > 0, 0.0, np.inf)
    excess = np.maximum(budget_q - budget_mean, 0.0) ** 2 + np.where(np.isfinite(slot_q), slot_q, 0.0) ** 2
    # Overlap scheduling: the round after the one in progress was chosen before the request arrived, so a
    # request that finds the engine busy (something decoding, probability 1 − e^(−x·(O − 1))) waits one more
    # round, τ on average.
    lag_s = traffic.lag_rounds * tau * -np.expm1(-xa * steps)
    ttft_s = np.where(ok & np.isfinite(slot_q), ttft_mix + budget_mean + np.sqrt(excess) + lag_s + traffic.overhead_s, np.inf)
    if ttft:  # the token budget as a server: a floor under the percentile of prompts that share it (budget.budget_floor)
        floor_s = budget_floor(step, pp_a, d, i, room, rate, first, q, cv, (full_s, all_s[top + 3])) + lag_s + traffic.overhead_s
        ttft_s = np.where(np.isfinite(ttft_s) & ~chain & ~long, np.maximum(ttft_s, floor_s), ttft_s)
    # TPOT: the mean of a request's O − 1 round times.
    # The running count n drifts slowly: a longer round keeps requests longer, which lengthens rounds.
    # Linearised, n relaxes at rate (1 − β)/S with β = (∂τ/∂n)·n/τ (prefill feeds back by 1/(1 − ρ_p)),
    # so Var(n) = z·n (z the peakedness above) and a request sees about one value of n over its life.
    # The prompts met during its O − 1 rounds add the round-time spread σ/sqrt(O − 1), amplified by
    # 1/(1 − ρ_p): a request that meets more prompts lives longer and so meets more. TPOT_q adds both
    # spreads in quadrature.
    sigma = np.sqrt(np.maximum(tau2 - tau**2, 0.0))
    z = z_of(q)
    n_sd = np.sqrt(n_dec * peak)
    # A request that meets more prompts lives longer and so meets more: the prefill term grows by 1/(1 − ρ_p).
    # A prompt longer than the budget arrives as c = I/L chunks in consecutive rounds, not c independent
    # lumps: the long rounds come in clusters of c, which multiplies the variance of their sum by c.
    cluster = np.maximum(i / lump, 1.0)
    # (Varied prompts' wider spread is in σ: the lump counts carry their compound variance.)
    # Tokens are conserved: every lump that arrives during a life is prefilled in it (a round that cannot take the lumps
    # of a burst spills them into the next), so over many rounds the prompt work met has the variance of the lump count,
    # J²·μ·D a round (J the seconds one lump adds, μ the lumps a round, D their dispersion: a renewal count over a long
    # window has variance cv²·mean). Where a round's budget holds about one lump, σ² counts a burst as one long round,
    # not as the run of long rounds it is: σ² is at least J²·μ·D.
    jump = np.maximum(all_s[1] - all_s[0], 0.0)
    sigma = np.sqrt(np.maximum(sigma**2, jump**2 * lumps * dispersion))
    mix_sd = sigma * np.sqrt(cluster / np.maximum(steps, 1.0)) / free
    # The two spreads share their cause: the arrivals during a request's life are both the prompts it meets and
    # decoders joining n. With lives of about S, an arrival s seconds from the life's start weighs w(s) = 1 − |s|/S in
    # the life's mean n (s in [−S, S]) and 1 in its prompts (s in [0, S]), so Var(n̄) = (2/3)·Var(n) (∫w² over ∫1) and
    # Cov(n̄, prompt tokens) = λ·E[I]·S/2: in the deviates, drift²·2/3 + mix² + drift·mix·E[I]/sqrt(E[I²]). The last
    # factor is taken as 1, prompts alike: varied lengths add to the mix what they do not add to the covariance, but
    # the budget clips that addition (a round holds at most C tokens), so 1 bounds the covariance from above where
    # E[I]/sqrt(E[I²]) would undercount it (and let wider prompts buy capacity).
    # The decode round is convex in the count (each group's max): towards the percentile it rises along the secant to the
    # count a request sees there, not along the slope at the mean (it is steeper where the count crosses into compute).
    ahead = np.maximum(np.abs(z) * np.sqrt(2.0 / 3.0) * n_sd / pp_a, 1e-9)  # decoders per micro-batch to the percentile
    secant = (decode_slope + kinks.rise(ahead)) / pp_a / free
    drift_sd = np.maximum(dtau_dn, secant) * n_sd
    spread_sd = np.sqrt(drift_sd**2 * (2.0 / 3.0) + mix_sd**2 + drift_sd * mix_sd)
    # Both lean right, so TPOT_q takes the Cornish–Fisher deviate z + (z² − 1)·γ/6 where z ≥ 1 (module docstring).
    # The prompt work met is a busy period (a life that meets a long prompt is stretched and meets more); n is a
    # clustered count (a negative binomial of peakedness P has skewness (2P − 1)/sqrt(n·P)), and a life's mean
    # keeps ∫w³/∫1 = 1/2 of its third cumulant.
    n_skew = (2.0 * peak - 1.0) / np.sqrt(np.maximum(n_dec * peak, 1e-12))
    # Bursty arrivals (cv > 1) clump the prompts met: a count of dispersion D = cv² (a negative binomial) has skewness
    # (2D − 1)/sqrt(D·Λ), (2D − 1)/sqrt(D) times a Poisson count's 1/sqrt(Λ).
    burst = traffic.burstiness
    met_skew = met_skewness(traffic.input_skew, i, span, xa * steps, rho_p) * (2.0 * burst - 1.0) / np.sqrt(burst)
    third = met_skew * mix_sd**3 + 0.5 * n_skew * drift_sd**3
    lean = np.minimum(third / np.maximum(spread_sd, 1e-30) ** 3, MAX_LEAN)
    spread = spread_sd * (z + np.maximum(z**2 - 1.0, 0.0) * lean / 6.0)
    # Requests see n size-biased: more of them decode while n (and so τ) is high, so their mean round
    # is τ + Cov(n, τ)/n = τ + (∂τ/∂n)·Var(n)/n.
    bias = dtau_dn * n_sd**2 / np.maximum(n_dec, 1e-9)
    # An arrival of a renewal process sees more arrivals after it than a random instant does: (cv² − 1)/2 more over a
    # long window (the renewal function, λt + (cv² − 1)/2 + o(1); ttft._company tabulates it for short windows), each a
    # prompt of I/L lumps its life prefills.
    bias = bias + (burst - 1.0) / 2.0 * cluster * jump / np.maximum(steps, 1.0) / free
    # A step emits E tokens per sequence (speculative decoding), so TPOT is the round time over E.
    tpot = np.where(o > 1.0, (tau + bias + spread) / traffic.tokens_per_step, 0.0)
    return Loaded(
        arrivals_per_round=xa,
        rate=np.asarray(rate, dtype=float),
        round_s=np.asarray(tau, dtype=float),
        running=np.asarray(running, dtype=float),
        ttft_s=np.asarray(ttft_s, dtype=float),
        tpot_s=np.asarray(tpot, dtype=float),
        budget_use=np.asarray(np.maximum(use, prefill_load), dtype=float),
        # Slots must hold the running count's fluctuations too: n + 3·sqrt(n·z) of them (z the peakedness).
        slot_use=np.asarray(np.maximum((running + SLOT_SIGMAS * np.sqrt(running * peak)) / slots, feedback), dtype=float),
        graph_use=graph_use(step, d, n_sd / pp_a),
    )
