"""Inter-token gaps: token-weighted samples that add up to each request's decode time, and the stalls they show."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.token_gaps import GapSample, TokenGaps


def _step(d: int, p: int) -> float:
    return 0.010 + 2e-5 * d + 1e-4 * p


def test_steady_decoding_has_one_gap_per_token_of_one_step() -> None:
    req = Requests(np.zeros(4), np.full(4, 100), np.full(4, 50))
    r = simulate(lambda d, p: 0.010, req, EngineConfig(8, 4096, 100_000, record_gaps=True))
    assert r.itl is not None and r.itl.tokens == 4 * 49
    assert r.itl.quantile(0.01) == pytest.approx(0.010) and r.itl.quantile(0.99) == pytest.approx(0.010)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2]), st.booleans())
def test_gaps_add_up_to_each_requests_decode_time(seed: int, stages: int, prefill_first: bool) -> None:
    # With room for every decoder in every step (no skips) and no preemption, the tokens' gaps sum to
    # the requests' (finish - first token) exactly, and there is one gap per output token after the first.
    n = 60
    inp = sample_lengths(np.array([30, 300, 1200]), np.array([0.5, 0.3, 0.2]), n, seed=seed)
    out = sample_lengths(np.array([1, 2, 40, 120]), np.array([0.1, 0.2, 0.4, 0.3]), n, seed=seed + 1)
    req = Requests(arrival_times(6.0, n, seed=seed + 2), inp, out)
    cfg = EngineConfig(max_num_seqs=64, max_batched_tokens=4096, kv_capacity_tokens=1_000_000, pipeline_stages=stages,
                       chunked_prefill=not prefill_first, prefill_first=prefill_first, record_gaps=True)  # fmt: skip
    r = simulate(_step, req, cfg)
    assert r.finished.all() and r.preemptions == 0 and r.itl is not None
    decode_s = np.nansum(np.where(out >= 2, r.e2e_s - r.ttft_s, 0.0))
    assert r.itl.tokens == int(np.maximum(out - 1, 0).sum())
    assert float((r.itl.gap_s * r.itl.count).sum()) == pytest.approx(decode_s, rel=1e-9)


def test_prefill_only_steps_show_in_the_gaps_tail_not_in_their_median() -> None:
    # Long prompts arriving while others decode: a prefill-only engine stalls every decoder for each prompt,
    # a chunked-prefill engine spreads the prompt over many slightly longer steps.
    n = 40
    req = Requests(np.arange(n) * 0.4, np.full(n, 3000), np.full(n, 50))  # each prompt's prefill (0.31 s) ends before the next
    chunked = simulate(_step, req, EngineConfig(64, 512, 1_000_000, record_gaps=True))
    stalled = simulate(_step, req, EngineConfig(64, 8192, 1_000_000, chunked_prefill=False, prefill_first=True, record_gaps=True))
    assert chunked.itl is not None and stalled.itl is not None
    decode_only = _step(20, 0)
    assert stalled.itl.quantile(0.5) < 1.2 * decode_only < chunked.itl.quantile(0.5)
    # A 3,000-token prompt's step (0.31 s) lands whole in one gap of every decoder it stalls; chunks of 512 never do.
    assert stalled.itl.quantile(0.99) > _step(0, 3000) > 2 * chunked.itl.quantile(0.99)
    # The per-request mean (TPOT) hides the stall the tokens see.
    assert float(np.nanpercentile(stalled.tpot_s, 99)) < stalled.itl.quantile(0.99) / 3


def test_gaps_are_recorded_only_when_asked() -> None:
    req = Requests(np.zeros(2), np.full(2, 10), np.full(2, 5))
    assert simulate(_step, req, EngineConfig(8, 4096, 10_000)).itl is None
    with pytest.raises(ValueError, match="inter-token"):
        simulate(_step, req, EngineConfig(8, 4096, 10_000)).percentile("itl", 0.5)
    assert simulate(_step, req, EngineConfig(8, 4096, 10_000, record_gaps=True)).percentile("itl", 0.5, warmup=0.0) == pytest.approx(
        _step(2, 0)
    )


def test_weighted_quantile_and_mean_match_the_expanded_sample() -> None:
    rng = np.random.default_rng(3)
    gaps, counts = rng.exponential(0.02, 200), rng.integers(1, 30, 200).astype(float)
    s = GapSample(np.zeros(200), gaps, counts)
    expanded = np.repeat(gaps, counts.astype(int))
    for q in (0.1, 0.5, 0.9, 0.99):
        assert s.quantile(q) == float(np.percentile(expanded, 100 * q, method="inverted_cdf"))
    assert s.mean() == pytest.approx(expanded.mean())
    assert np.isnan(GapSample(np.zeros(0), np.zeros(0), np.zeros(0)).mean())
    with pytest.raises(ValueError):
        s.quantile(1.0)


def _pairs(g: TokenGaps) -> list[tuple[float, float]]:
    s = GapSample.of([g])
    order = np.argsort(s.at_s, kind="stable")
    return [(float(s.gap_s[i]), float(s.count[i])) for i in order]


def test_skipped_and_preempted_decoders_keep_the_counts_consistent() -> None:
    g = TokenGaps()
    g.started(0.0, 3)  # three first tokens at t = 0 (a prefill-only step: nothing decoded yet)
    g.decoded(1.0, 2)  # two decode; the third is skipped
    assert _pairs(g) == [(1.0, 2)]
    g.decoded(1.5, 3)  # all three: the skipped one's gap spans both steps
    assert _pairs(g)[1:] == [(0.5, 2), (1.5, 1)]
    g.preempted()
    g.finished(1)
    g.decoded(2.0, 1)
    assert _pairs(g)[-1] == (0.5, 1) and g.regular == 1 and not g.groups


def test_a_decoder_skipped_while_the_same_count_decodes_keeps_its_wait() -> None:
    # A step cap of one decoder: request 1 gets its first token at t=4, is skipped at t=5 and t=6 while
    # request 0 decodes, then decodes at 7..10. Its 4 -> 7 gap is 3 s; it was measured from the previous
    # step (1 s) when the step decoded as many requests as were "regular" before.
    from aicap.sizing.sim.scheduler import FcfsScheduler

    req = Requests(np.array([1.0, 3.0]), np.array([4, 1]), np.array([4, 5]))
    cfg = EngineConfig(max_num_seqs=4, max_batched_tokens=2, kv_capacity_tokens=100_000, record_gaps=True)
    r = simulate(lambda d, p: 1.0, req, cfg, scheduler=FcfsScheduler(decode_cap=1))
    assert r.itl is not None
    gaps = sorted(np.repeat(r.itl.gap_s, r.itl.count.astype(int)).tolist())
    assert gaps == [1.0] * 6 + [3.0]
