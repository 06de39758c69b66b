"""Replicas behind a router, open and closed loop: equivalences with the one-replica engine and queueing laws."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.cluster import simulate_cluster
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate

CFG = EngineConfig(max_num_seqs=32, max_batched_tokens=2048, kv_capacity_tokens=80_000)


def _linear(d: int, p: int) -> float:
    return 0.010 + 2e-5 * d + 6e-5 * p


def _mixed(n: int, rate: float, seed: int = 0, cv: float = 1.0) -> Requests:
    inp = sample_lengths(np.array([64, 512, 2048, 6000]), np.array([0.4, 0.3, 0.2, 0.1]), n, seed=seed + 1)
    out = sample_lengths(np.array([0, 8, 64, 400]), np.array([0.05, 0.35, 0.4, 0.2]), n, seed=seed + 2)
    return Requests(arrival_times(rate, n, cv=cv, seed=seed), inp, out)


@pytest.mark.parametrize("pp", [1, 2])
def test_one_replica_is_the_engine_exactly(pp: int) -> None:
    req = _mixed(6000, rate=5.0, cv=2.0)
    cfg = EngineConfig(32, 2048, 30_000, pipeline_stages=pp)
    a = simulate(_linear, req, cfg)
    b, stats = simulate_cluster(_linear, req, cfg)
    for f in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert (a.preemptions, a.steps, a.rejected) == (b.preemptions, b.steps, b.rejected)
    assert a.preemptions > 0  # the case exercises KV pressure
    assert stats.busy_s[0] == pytest.approx(a.mean_step_s * a.steps)


def test_round_robin_is_independent_replicas_on_every_rth_request() -> None:
    req = _mixed(9000, rate=14.0)
    r = 3
    got, stats = simulate_cluster(_linear, req, CFG, replicas=r, router="round_robin")
    order = np.argsort(req.arrival_s, kind="stable")
    for k in range(r):
        mine = order[k::r]
        sub = Requests(req.arrival_s[mine], req.input_tokens[mine], req.output_tokens[mine])
        alone = simulate(_linear, sub, CFG)
        np.testing.assert_array_equal(got.ttft_s[mine], alone.ttft_s)
        np.testing.assert_array_equal(got.e2e_s[mine], alone.e2e_s)
    assert len(stats.busy_s) == r


def test_state_aware_routers_beat_round_robin_on_the_tail() -> None:
    req = _mixed(12_000, rate=20.0, seed=3)
    rr, _ = simulate_cluster(_linear, req, CFG, replicas=4, router="round_robin")
    for router in ("least_outstanding", "shortest_queue"):
        res, stats = simulate_cluster(_linear, req, CFG, replicas=4, router=router)  # type: ignore[arg-type]
        assert res.finished.sum() == rr.finished.sum()
        # (0.94 and 0.90 of round-robin's with ties broken in rotation; breaking them to replica 0 gave it more arrivals)
        assert res.percentile("ttft", 0.99) < 0.95 * rr.percentile("ttft", 0.99)
        assert max(stats.busy_s) < 1.1 * min(stats.busy_s)  # load spread evenly


def test_timeline_spans_the_run_within_its_point_budget() -> None:
    from aicap.sizing.sim.cluster import TIMELINE_POINTS

    req = _mixed(20_000, rate=6.0, seed=4)
    res, stats = simulate_cluster(_linear, req, CFG, replicas=2)
    t = np.array([p[0] for p in stats.timeline])
    assert TIMELINE_POINTS // 2 <= t.size < TIMELINE_POINTS and res.steps > TIMELINE_POINTS
    assert (np.diff(t) >= 0).all() and t[-1] > 0.9 * res.duration_s
    assert max(p[1] for p in stats.timeline) <= 2 * CFG.max_num_seqs and max(p[3] for p in stats.timeline) <= 2 * CFG.blocks


def test_littles_law_holds_for_the_running_set() -> None:
    """Time-average of requests running = throughput × mean time from admission to finish."""
    req = _mixed(20_000, rate=6.0, seed=4)
    res, stats = simulate_cluster(_linear, req, CFG, replicas=2, router="least_outstanding")
    assert res.finished.all()
    in_service = float(np.nansum(res.e2e_s - res.queue_s))  # type: ignore[operator]
    assert stats.running_s / res.duration_s == pytest.approx(in_service / res.duration_s, rel=0.02)


def test_closed_loop_keeps_concurrency_and_obeys_the_interactive_law() -> None:
    """With C clients and no think time, throughput X = C / E[response] (Little's law on the closed system)."""
    n, c = 4000, 24
    inp = sample_lengths(np.array([100, 800]), np.array([0.5, 0.5]), n, seed=1)
    out = sample_lengths(np.array([20, 200]), np.array([0.5, 0.5]), n, seed=2)
    req = Requests(np.zeros(n), inp, out)
    res, _ = simulate_cluster(_linear, req, CFG, concurrency=c)
    assert res.finished.all()
    arrive = res.arrival_s
    finish = arrive + res.e2e_s
    # at every arrival instant, at most C requests are in the system
    events = np.concatenate([np.stack([arrive, np.ones(n)], 1), np.stack([finish, -np.ones(n)], 1)])
    events = events[np.lexsort((events[:, 1], events[:, 0]))]  # finishes before arrivals at the same instant
    assert np.cumsum(events[:, 1]).max() == c
    x = n / res.duration_s
    assert x == pytest.approx(c / float(np.mean(res.e2e_s)), rel=0.03)


def test_closed_loop_of_one_is_sequential() -> None:
    req = Requests(np.zeros(5), np.array([100, 200, 300, 400, 500]), np.array([10, 0, 5, 1, 3]))
    res, _ = simulate_cluster(_linear, req, CFG, concurrency=1)
    starts = res.arrival_s
    ends = starts + res.e2e_s
    np.testing.assert_allclose(starts[1:], ends[:-1])
    assert float(res.queue_s.max()) == 0.0  # type: ignore[union-attr]


def test_rejected_requests_still_release_their_client() -> None:
    req = Requests(np.zeros(4), np.array([100, 10**6, 100, 100]), np.array([5, 5, 5, 5]))
    res, _ = simulate_cluster(_linear, req, CFG, concurrency=1)
    assert res.rejected == 1 and res.finished.sum() == 3


@pytest.mark.parametrize("kw", [{"replicas": 0}, {"router": "random"}, {"concurrency": 0}])
def test_bad_arguments(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        simulate_cluster(_linear, _mixed(10, 1.0), CFG, **kw)  # type: ignore[arg-type]


def test_a_closed_loop_follow_up_joins_the_next_step() -> None:
    """A client's next request, sent at a step end, is admitted at that instant: no queue wait when slots are free."""
    req = Requests(np.zeros(40), np.full(40, 100), np.array([5, 30] * 20))
    res, _ = simulate_cluster(_linear, req, CFG, concurrency=2)
    assert res.finished.all() and float(np.nanmax(res.queue_s)) == 0.0  # type: ignore[arg-type]


def test_a_step_cap_below_the_work_is_raised_to_it() -> None:
    # The fixed cap counted steps over all replicas: 37 slow replicas stopped after half of 200,000 requests and the
    # unsent half read as SLO misses. A cap is never below the steps the requests need (engine.step_bound).
    from aicap.sizing.sim.engine import EngineConfig, Requests, simulate, step_bound

    req = Requests(np.arange(200) * 0.01, np.full(200, 300), np.full(200, 40))
    cfg = EngineConfig(8, 256, 1 << 20)
    assert step_bound(req, cfg) == 2 * (200 * 40 + 200 * 2) + 200
    res, _ = simulate_cluster(lambda d, p: 0.01, req, cfg, replicas=3, max_steps=10)
    assert res.finished.all() and res.steps > 10
    assert simulate(lambda d, p: 0.01, req, cfg, max_steps=10).finished.all()


@pytest.mark.parametrize("pp", [1, 2])
def test_overlap_scheduling_one_replica_is_the_engine_exactly(pp: int) -> None:
    req = _mixed(4000, rate=5.0, cv=2.0)
    cfg = EngineConfig(32, 2048, 30_000, pipeline_stages=pp, overlap_scheduling=True)
    a = simulate(_linear, req, cfg)
    b, _ = simulate_cluster(_linear, req, cfg)
    for f in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert (a.preemptions, a.steps, a.rejected) == (b.preemptions, b.steps, b.rejected)


def _three_requests() -> Requests:
    """A long request that keeps the engine decoding, then two that arrive in the middle of its steps."""
    return Requests(np.array([0.0, 0.105, 0.305]), np.array([100, 50, 50]), np.array([200, 10, 10]))


def test_overlap_scheduling_makes_a_request_arriving_mid_step_wait_one_step_more() -> None:
    """SGLang's and TensorRT-LLM's loop picks step m + 1 while step m runs: an arrival during m starts in m + 2."""
    step = 0.010  # every step 10 ms: the arithmetic is exact
    req = _three_requests()
    plain = simulate(lambda d, p: step, req, EngineConfig(8, 4096, 100_000))
    lag = simulate(lambda d, p: step, req, EngineConfig(8, 4096, 100_000, overlap_scheduling=True))
    # The first request finds the engine idle: no lag. Request 1 arrives at 105 ms, inside the step [100, 110] ms:
    # without overlap it is prefilled in [110, 120]; with it, step [110, 120] was chosen at 100 ms, so [120, 130].
    assert plain.ttft_s[0] == lag.ttft_s[0] == pytest.approx(step)
    assert plain.ttft_s[1] == pytest.approx(0.120 - 0.105)
    assert lag.ttft_s[1] == pytest.approx(0.130 - 0.105)
    assert lag.ttft_s[2] - plain.ttft_s[2] == pytest.approx(step)
    np.testing.assert_allclose(lag.tpot_s, plain.tpot_s)  # decoding is not delayed: steps run back to back either way
    cl, _ = simulate_cluster(lambda d, p: step, req, EngineConfig(8, 4096, 100_000, overlap_scheduling=True))
    np.testing.assert_allclose(cl.ttft_s, lag.ttft_s)


def test_overlap_scheduling_adds_nothing_to_an_idle_engine() -> None:
    """With nothing in flight the loop receives a request at once: sparse arrivals see no lag."""
    req = Requests(np.arange(20) * 10.0, np.full(20, 200), np.full(20, 20))
    plain = simulate(_linear, req, EngineConfig(8, 4096, 100_000))
    lag = simulate(_linear, req, EngineConfig(8, 4096, 100_000, overlap_scheduling=True))
    np.testing.assert_array_equal(plain.ttft_s, lag.ttft_s)
    np.testing.assert_array_equal(plain.e2e_s, lag.e2e_s)


def test_overlap_scheduling_lengthens_ttft_by_about_a_step_under_load() -> None:
    req = _mixed(6000, rate=6.0)
    plain = simulate(_linear, req, CFG)
    lag = simulate(_linear, req, EngineConfig(32, 2048, 80_000, overlap_scheduling=True))
    extra = float(np.nanmean(lag.ttft_s) - np.nanmean(plain.ttft_s))
    assert 0.5 * plain.mean_step_s < extra < 2.0 * plain.mean_step_s  # about one step of the busy engine
    assert lag.finished.all()
