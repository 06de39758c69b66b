"""Scheduling policies: queue orders, preemption rules, and what queueing theory says they must do."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.core.errors import InputError
from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.policies import (
    EdfScheduler,
    KeyedQueue,
    PriorityScheduler,
    RoundRobinScheduler,
    SjfScheduler,
    SrtfScheduler,
    WeightedQueue,
)
from aicap.sizing.sim.scheduler import FcfsScheduler
from aicap.sizing.sim.virtual_engine import VirtualEngine

ONE_AT_A_TIME = EngineConfig(max_num_seqs=1, max_batched_tokens=100_000, kv_capacity_tokens=10**7)


def _linear(d: int, p: int) -> float:
    return 0.010 + 2e-5 * d + 6e-5 * p


class Checked(FcfsScheduler):
    """Wraps a policy and checks the engine's limits after every step it fills."""

    def __init__(self, inner: FcfsScheduler) -> None:
        super().__init__()
        self.inner = inner

    def queue(self, table):  # type: ignore[no-untyped-def]
        return self.inner.queue(table)

    def evictor(self, table):  # type: ignore[no-untyped-def]
        return self.inner.evictor(table)

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        d, p = self.inner.schedule(engine)
        assert d + p <= engine.max_tokens and len(engine.running) <= engine.max_seqs and 0 <= engine.used <= engine.blocks
        return d, p


def _mixed(n: int, rate: float, seed: int = 0, classes: bool = False) -> Requests:
    inp = sample_lengths(np.array([64, 512, 2048]), np.array([0.5, 0.3, 0.2]), n, seed=seed + 1)
    out = sample_lengths(np.array([8, 64, 400]), np.array([0.4, 0.4, 0.2]), n, seed=seed + 2)
    prio = (np.arange(n) % 3 == 0).astype(np.int64) if classes else None
    return Requests(arrival_times(rate, n, seed=seed), inp, out, prio)


def test_keyed_queue_orders_by_key_then_insertion() -> None:
    keys = {1: (5.0, 0.0), 2: (1.0, 0.0), 3: (5.0, 0.0), 4: (0.5, 9.0)}
    q = KeyedQueue(lambda r: keys[r])
    for r in (1, 2, 3, 4):
        q.append(r)
    assert len(q) == 4 and q[0] == 4
    assert [q.popleft() for _ in range(4)] == [4, 2, 1, 3]
    with pytest.raises(IndexError):
        q[1]


def test_weighted_queue_splits_admissions_by_weight_while_both_classes_wait() -> None:
    klass = [0] * 500 + [1] * 500
    q = WeightedQueue(klass, [3.0, 1.0])
    for r in range(1000):
        q.append(r)
    first = [klass[q.popleft()] for _ in range(400)]
    assert first.count(0) == 300 and first.count(1) == 100
    assert q[0] == 300  # class 0's queue is served in FCFS order


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_sjf_mean_wait_is_never_above_fcfs_on_mg1(rho: float) -> None:
    """Conway et al.: non-preemptive SJF minimises the mean wait of an M/G/1 queue among non-preemptive orders."""
    a = 1e-5
    values, weights = np.array([100, 500, 2000, 8000]), np.array([0.4, 0.3, 0.2, 0.1])
    lam = rho / (a * float(values @ weights))
    n = 60_000
    prompts = sample_lengths(values, weights, n, seed=3)
    req = Requests(arrival_times(lam, n, seed=4), prompts, np.zeros(n, dtype=np.int64))
    fcfs = simulate(lambda d, p: a * p, req, ONE_AT_A_TIME)
    sjf = simulate(lambda d, p: a * p, req, ONE_AT_A_TIME, scheduler=SjfScheduler(by="prompt", aging_tokens_per_s=0.0))
    assert sjf.finished.all() and fcfs.finished.all()
    w_fcfs, w_sjf = float(np.mean(fcfs.ttft_s - a * prompts)), float(np.mean(sjf.ttft_s - a * prompts))
    assert w_sjf < w_fcfs
    # and the short jobs gain most: the shortest class waits less than under FCFS by a wide margin
    short = prompts == 100
    assert float(np.mean(sjf.ttft_s[short])) < 0.7 * float(np.mean(fcfs.ttft_s[short]))


def test_sjf_aging_bounds_the_wait_of_long_jobs() -> None:
    a = 1e-5
    values, weights = np.array([100, 20_000]), np.array([0.9, 0.1])
    lam = 0.95 / (a * float(values @ weights))
    n = 40_000
    prompts = sample_lengths(values, weights, n, seed=5)
    req = Requests(arrival_times(lam, n, seed=6), prompts, np.zeros(n, dtype=np.int64))
    pure = simulate(lambda d, p: a * p, req, ONE_AT_A_TIME, scheduler=SjfScheduler(by="prompt", aging_tokens_per_s=0.0))
    aged = simulate(lambda d, p: a * p, req, ONE_AT_A_TIME, scheduler=SjfScheduler(by="prompt", aging_tokens_per_s=20_000.0))
    long = prompts == 20_000
    assert float(np.max(aged.ttft_s[long])) < float(np.max(pure.ttft_s[long]))


def test_edf_with_one_deadline_is_fcfs() -> None:
    req = _mixed(4000, rate=9.0)
    cfg = EngineConfig(max_num_seqs=16, max_batched_tokens=1024, kv_capacity_tokens=60_000)
    a = simulate(_linear, req, cfg)
    b = simulate(_linear, req, cfg, scheduler=EdfScheduler(2.0))
    np.testing.assert_array_equal(a.ttft_s, b.ttft_s)
    np.testing.assert_array_equal(a.e2e_s, b.e2e_s)


def test_edf_serves_the_tighter_deadline_class_first() -> None:
    req = _mixed(6000, rate=7.5, classes=True)  # busy but stable: FCFS waits ~0.17 s
    cfg = EngineConfig(max_num_seqs=16, max_batched_tokens=1024, kv_capacity_tokens=60_000)
    r = simulate(_linear, req, cfg, scheduler=EdfScheduler([5.0, 0.2]))  # class 1 has the tight deadline
    c1 = req.priority == 1
    assert float(np.nanmean(r.queue_s[c1])) < 0.5 * float(np.nanmean(r.queue_s[~c1]))  # type: ignore[index]


def test_strict_priority_class_zero_waits_least() -> None:
    req = _mixed(6000, rate=10.0, classes=True)
    cfg = EngineConfig(max_num_seqs=16, max_batched_tokens=1024, kv_capacity_tokens=60_000)
    fcfs = simulate(_linear, req, cfg)
    prio = simulate(_linear, req, cfg, scheduler=Checked(PriorityScheduler()))
    c0 = req.priority == 0
    assert prio.finished.all()
    assert float(np.nanmean(prio.queue_s[c0])) < float(np.nanmean(fcfs.queue_s[c0]))  # type: ignore[index]
    assert float(np.nanmean(prio.queue_s[c0])) < 0.5 * float(np.nanmean(prio.queue_s[~c0]))  # type: ignore[index]


def test_srtf_gives_short_outputs_the_lowest_ttft_and_preempts_only_to_admit() -> None:
    req = _mixed(5000, rate=7.0)
    cfg = EngineConfig(max_num_seqs=12, max_batched_tokens=2048, kv_capacity_tokens=10**7)  # the batch cap binds
    fcfs = simulate(_linear, req, cfg)
    srtf = simulate(_linear, req, cfg, scheduler=Checked(SrtfScheduler()))
    short = req.output_tokens == 8
    assert srtf.finished.all() and srtf.preemptions > 0 and fcfs.preemptions == 0
    assert float(np.mean(srtf.ttft_s[short])) < 0.6 * float(np.mean(fcfs.ttft_s[short]))


def test_srtf_without_waiting_pressure_never_preempts() -> None:
    req = _mixed(2000, rate=1.0)
    cfg = EngineConfig(max_num_seqs=512, max_batched_tokens=4096, kv_capacity_tokens=10**7)
    b = simulate(_linear, req, cfg, scheduler=SrtfScheduler(error=0.5))
    assert b.preemptions == 0 and b.finished.all()


def test_round_robin_slices_only_when_requests_wait() -> None:
    req = _mixed(3000, rate=6.0)
    roomy = EngineConfig(max_num_seqs=512, max_batched_tokens=4096, kv_capacity_tokens=10**7)
    np.testing.assert_array_equal(
        simulate(_linear, req, roomy).e2e_s, simulate(_linear, req, roomy, scheduler=RoundRobinScheduler(4)).e2e_s
    )
    tight = EngineConfig(max_num_seqs=8, max_batched_tokens=4096, kv_capacity_tokens=10**7)
    busy = _mixed(3000, rate=3.0)  # the 8-request cap binds; stable
    rr = simulate(_linear, busy, tight, scheduler=Checked(RoundRobinScheduler(64)))
    fcfs = simulate(_linear, busy, tight)
    assert rr.preemptions > 0 and rr.finished.all() and rr.stable
    # time slicing lets newcomers in sooner than waiting for a 400-token answer to finish
    assert float(np.mean(rr.ttft_s)) < 0.95 * float(np.mean(fcfs.ttft_s))
    # but every slice is a recompute: too short a quantum costs more than it gives
    thrash = simulate(_linear, busy, tight, scheduler=RoundRobinScheduler(16))
    assert thrash.preemptions > 10 * rr.preemptions and float(np.mean(thrash.ttft_s)) > float(np.mean(fcfs.ttft_s))


@pytest.mark.parametrize("bad", [
    lambda: SjfScheduler(by="size"), lambda: SjfScheduler(aging_tokens_per_s=-1), lambda: SrtfScheduler(margin=0.5),
    lambda: RoundRobinScheduler(0), lambda: PriorityScheduler([1.0, 0.0]), lambda: EdfScheduler(0.0),
])  # fmt: skip
def test_bad_settings_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


def test_weighted_priority_needs_a_weight_per_class() -> None:
    req = _mixed(50, rate=1.0, classes=True)
    with pytest.raises(InputError, match="no weight"):
        simulate(_linear, req, ONE_AT_A_TIME, scheduler=PriorityScheduler([1.0]))


def test_srtf_caps_how_often_one_request_gives_way() -> None:
    req = _mixed(5000, rate=7.0)
    cfg = EngineConfig(max_num_seqs=12, max_batched_tokens=2048, kv_capacity_tokens=10**7)
    never = simulate(_linear, req, cfg, scheduler=SrtfScheduler(max_preemptions=0))
    assert never.preemptions == 0
    once = SrtfScheduler(max_preemptions=1)
    r = simulate(_linear, req, cfg, scheduler=once)
    assert r.preemptions > 0 and max(once._given_way.values()) == 1 and sum(once._given_way.values()) == r.preemptions


def test_priority_evicts_the_least_urgent_under_kv_pressure() -> None:
    # 64 blocks of 16 tokens; two class-1 requests (300 in / 400 out), then a class-0 one (300 / 300)
    req = Requests(np.array([0.0, 0.0, 0.5]), np.array([300, 300, 300]), np.array([400, 400, 300]), np.array([1, 1, 0]))
    cfg = EngineConfig(max_num_seqs=8, max_batched_tokens=2048, kv_capacity_tokens=64 * 16)
    prio = simulate(_linear, req, cfg, scheduler=Checked(PriorityScheduler()))
    fcfs = simulate(_linear, req, cfg)
    assert prio.finished.all() and prio.preemptions > 0
    alone = _linear(0, 300) + 299 * _linear(1, 0)
    assert float(prio.e2e_s[2]) < float(fcfs.e2e_s[2]) and float(prio.e2e_s[2]) < 1.5 * alone


def test_srtf_with_aging_does_not_preempt_a_request_that_would_return_first() -> None:
    req = _mixed(3000, rate=7.0)
    cfg = EngineConfig(max_num_seqs=12, max_batched_tokens=2048, kv_capacity_tokens=10**7)
    aged = simulate(_linear, req, cfg, scheduler=Checked(SrtfScheduler(aging_tokens_per_s=200.0, max_preemptions=3)))
    pure = simulate(_linear, req, cfg, scheduler=SrtfScheduler(max_preemptions=3))
    assert aged.finished.all() and aged.preemptions <= pure.preemptions
