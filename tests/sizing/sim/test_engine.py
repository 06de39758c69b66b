"""Engine invariants: limits, KV preemption, determinism, burstiness, pipeline stages, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.cluster import simulate_cluster
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.scheduler import FcfsScheduler
from aicap.sizing.sim.virtual_engine import VirtualEngine


def _linear(d: int, p: int) -> float:
    return 0.010 + 2e-5 * d + 6e-5 * p


class Recorder(FcfsScheduler):
    """FCFS that records every step and checks the limits right after scheduling it."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, int]] = []

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        d, p = super().schedule(engine)
        assert d + p <= engine.max_tokens
        assert len(engine.running) <= engine.max_seqs
        assert 0 <= engine.used <= engine.blocks
        self.steps.append((d, p))
        return d, p


def _workload(n: int, rate: float, seed: int = 0, cv: float = 1.0) -> Requests:
    inp = sample_lengths(np.array([50, 400, 1500]), np.array([0.5, 0.3, 0.2]), n, seed=seed + 1)
    out = sample_lengths(np.array([0, 1, 20, 150]), np.array([0.1, 0.1, 0.4, 0.4]), n, seed=seed + 2)
    return Requests(arrival_times(rate, n, cv=cv, seed=seed), inp, out)


def test_budget_and_max_num_seqs_never_exceeded() -> None:
    calls: list[tuple[int, int]] = []

    def step(d: int, p: int) -> float:
        calls.append((d, p))
        return _linear(d, p)

    cfg = EngineConfig(max_num_seqs=24, max_batched_tokens=512, kv_capacity_tokens=200_000)
    req = _workload(3000, rate=12.0)
    rec = Recorder()
    r = simulate(step, req, cfg, scheduler=rec)
    assert r.finished.all() and r.preemptions == 0
    assert calls and all(d + p <= 512 and d <= 24 and d + p > 0 for d, p in calls)
    assert len(calls) == len(set(calls)) == len(set(rec.steps))  # memoised: one call per distinct pair
    assert max(d for d, _ in rec.steps) == 24 and max(d + p for d, p in rec.steps) == 512  # limits reached
    # Token conservation without preemption: every prompt token prefilled once, one decode step per
    # output token after the first.
    assert sum(p for _, p in rec.steps) == int(req.input_tokens.sum())
    assert sum(d for d, _ in rec.steps) == int(np.maximum(req.output_tokens - 1, 0).sum())
    assert r.steps == len(rec.steps)
    assert 0 < r.mean_running <= 24


def test_tiny_kv_preempts_and_still_finishes() -> None:
    n = 64
    req = Requests(np.zeros(n), np.full(n, 100), np.full(n, 200))  # peak need 299 tokens = 19 blocks
    tight = EngineConfig(max_num_seqs=16, max_batched_tokens=512, kv_capacity_tokens=40 * 16)
    rec = Recorder()
    r = simulate(_linear, req, tight, scheduler=rec)
    assert r.preemptions > 0
    assert r.finished.all() and r.rejected == 0
    assert sum(p for _, p in rec.steps) > int(req.input_tokens.sum())  # recompute re-prefills
    assert sum(d for d, _ in rec.steps) < n * 199  # a re-prefill emits a token in place of a decode step
    assert (r.ttft_s <= r.e2e_s).all()
    ample = EngineConfig(max_num_seqs=16, max_batched_tokens=512, kv_capacity_tokens=64 * 300)
    r2 = simulate(_linear, req, ample)
    assert r2.preemptions == 0 and r2.finished.all()
    assert r2.duration_s < r.duration_s


def test_preemption_keeps_first_token_time() -> None:
    # Request 0 decodes long; request 1 (admitted later) is preempted repeatedly, never request 0.
    req = Requests(np.array([0.0, 0.0]), np.array([16, 16]), np.array([40, 40]))
    cfg = EngineConfig(max_num_seqs=2, max_batched_tokens=64, kv_capacity_tokens=4 * 16, block_tokens=16)
    r = simulate(_linear, req, cfg)
    assert r.preemptions > 0 and r.finished.all()
    assert r.ttft_s[0] == r.ttft_s[1] == pytest.approx(_linear(0, 32))  # both prompts in the first step
    assert r.e2e_s[0] < r.e2e_s[1]


def test_request_too_large_for_kv_is_rejected() -> None:
    req = Requests(np.array([0.0, 0.1, 0.2]), np.array([100, 5000, 100]), np.array([10, 10, 10]))
    r = simulate(_linear, req, EngineConfig(4, 512, 1024))
    assert r.rejected == 1
    np.testing.assert_array_equal(r.finished, [True, False, True])
    assert np.isnan([r.ttft_s[1], r.e2e_s[1], r.tpot_s[1]]).all()


def test_same_seed_same_result() -> None:
    cfg = EngineConfig(max_num_seqs=32, max_batched_tokens=1024, kv_capacity_tokens=30_000)
    a = simulate(_linear, _workload(2000, 10.0, seed=4), cfg)
    b = simulate(_linear, _workload(2000, 10.0, seed=4), cfg)
    for name in ("ttft_s", "tpot_s", "e2e_s", "finished"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.preemptions, a.steps, a.duration_s) == (b.preemptions, b.steps, b.duration_s)


def test_burstier_arrivals_raise_p99_ttft() -> None:
    cfg = EngineConfig(max_num_seqs=32, max_batched_tokens=2048, kv_capacity_tokens=10**6)
    poisson = simulate(_linear, _workload(6000, 10.0, seed=5, cv=1.0), cfg)
    bursty = simulate(_linear, _workload(6000, 10.0, seed=5, cv=2.0), cfg)
    assert bursty.percentile("ttft", 0.99) > 1.5 * poisson.percentile("ttft", 0.99)


def test_input_order_does_not_matter() -> None:
    cfg = EngineConfig(max_num_seqs=8, max_batched_tokens=256, kv_capacity_tokens=20_000)
    req = _workload(300, 15.0, seed=6)
    perm = np.random.default_rng(0).permutation(len(req))
    shuffled = Requests(req.arrival_s[perm], req.input_tokens[perm], req.output_tokens[perm])
    a, b = simulate(_linear, req, cfg), simulate(_linear, shuffled, cfg)
    np.testing.assert_array_equal(a.e2e_s[perm], b.e2e_s)
    np.testing.assert_array_equal(a.ttft_s[perm], b.ttft_s)


def test_pipeline_stages_each_behave_as_a_smaller_engine() -> None:
    """p = 2, step ∝ decode_seqs, saturated: each micro-batch carries N/2 sequences and takes the step
    of N/2, so each virtual engine delivers the tokens/s of a p = 1 engine with N/2 sequences and the
    replica twice that. Requests all arrive at 0; the tail as the queue drains costs < 1%.
    """

    def step(d: int, p: int) -> float:
        return 1e-3 * d + 1e-6 * p

    n, out, seqs = 256, 200, 16
    req = Requests(np.zeros(n), np.full(n, 8), np.full(n, out))
    kv = 10**6
    pp2 = simulate(step, req, EngineConfig(seqs, 512, kv, pipeline_stages=2))
    half = simulate(step, Requests(np.zeros(n // 2), np.full(n // 2, 8), np.full(n // 2, out)), EngineConfig(seqs // 2, 512, kv // 2))
    full = simulate(step, req, EngineConfig(seqs, 512, kv))
    assert pp2.finished.all() and half.finished.all()
    tokens_per_s = n * out / pp2.duration_s
    assert tokens_per_s / 2 == pytest.approx(n // 2 * out / half.duration_s, rel=0.01)
    assert tokens_per_s == pytest.approx(2 * n * out / full.duration_s, rel=0.01)
    assert pp2.mean_running == pytest.approx(seqs, rel=0.02)
    assert pp2.mean_step_s == pytest.approx(step(seqs // 2, 0), rel=0.02)


def test_pipeline_routes_to_the_least_loaded_engine() -> None:
    # Two equal requests arriving together go to different virtual engines: both see the idle latency.
    req = Requests(np.zeros(2), np.full(2, 100), np.full(2, 5))
    r = simulate(_linear, req, EngineConfig(2, 512, 10_000, pipeline_stages=2))
    np.testing.assert_allclose(r.ttft_s, _linear(0, 100))
    assert r.steps == 5


def test_max_steps_is_never_below_the_work() -> None:
    # A cap is a guard against a run that makes no progress, not a way to cut one short: it is raised to the
    # steps the requests need (step_bound), so every request finishes.
    req = Requests(np.zeros(3), np.full(3, 10), np.full(3, 100))
    r = simulate(_linear, req, EngineConfig(4, 512, 10_000), max_steps=5)
    assert r.steps == 100 and r.finished.all()


def test_empty_trace() -> None:
    r = simulate(_linear, Requests(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)), EngineConfig(4, 512, 10_000))
    assert r.steps == 0 and r.duration_s == 0.0 and r.stable


@pytest.mark.parametrize(
    "kw",
    [
        {"max_num_seqs": 0, "max_batched_tokens": 1, "kv_capacity_tokens": 16},
        {"max_num_seqs": 1, "max_batched_tokens": 0, "kv_capacity_tokens": 16},
        {"max_num_seqs": 1, "max_batched_tokens": 1, "kv_capacity_tokens": 15},
        {"max_num_seqs": 1, "max_batched_tokens": 1, "kv_capacity_tokens": 16, "pipeline_stages": 0},
        {"max_num_seqs": 1, "max_batched_tokens": 4, "kv_capacity_tokens": 16, "verify_tokens": 5},  # no decoder would ever run
    ],
)
def test_invalid_config(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        EngineConfig(**kw)


def test_invalid_requests_and_step() -> None:
    with pytest.raises(ValueError):
        Requests(np.zeros(2), np.array([1, 0]), np.array([1, 1]))
    with pytest.raises(ValueError):
        Requests(np.zeros(2), np.array([1, 1]), np.array([1]))
    with pytest.raises(ValueError):
        Requests(np.array([-1.0]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="finite"):
        simulate(
            lambda d, p: float("nan"), Requests(np.zeros(1), np.ones(1, dtype=np.int64), np.ones(1, dtype=np.int64)), EngineConfig(1, 8, 16)
        )
    with pytest.raises(ValueError):
        FcfsScheduler(0)


# ---------------------------------------------------------------------------------------------
# without chunked prefill (TensorRT-LLM's default, JetStream)


def test_without_chunked_prefill_a_prompt_waits_for_a_step_with_room_for_all_of_it() -> None:
    req = Requests(np.array([0.0, 0.0]), np.array([600, 700]), np.array([2, 2]))
    chunked = simulate(_linear, req, EngineConfig(4, 1000, 100_000), scheduler=(rec_c := Recorder()))
    whole = simulate(_linear, req, EngineConfig(4, 1000, 100_000, chunked_prefill=False), scheduler=(rec_w := Recorder()))
    assert rec_c.steps[:2] == [(0, 1000), (1, 300)]  # the second prompt split over two steps
    assert rec_w.steps[:2] == [(0, 600), (1, 700)]  # the second prompt whole, one step later
    assert chunked.ttft_s[0] == pytest.approx(_linear(0, 1000)) and whole.ttft_s[0] == pytest.approx(_linear(0, 600))
    assert whole.ttft_s[1] == pytest.approx(_linear(0, 600) + _linear(1, 700))
    assert whole.finished.all() and whole.rejected == 0


def test_without_chunked_prefill_a_prompt_longer_than_the_budget_is_rejected() -> None:
    req = Requests(np.array([0.0, 0.1, 0.2]), np.array([100, 1500, 100]), np.array([10, 10, 10]))
    assert simulate(_linear, req, EngineConfig(4, 1024, 100_000)).rejected == 0  # chunked: served in two steps
    r = simulate(_linear, req, EngineConfig(4, 1024, 100_000, chunked_prefill=False))
    assert r.rejected == 1
    np.testing.assert_array_equal(r.finished, [True, False, True])
    cached = Requests(req.arrival_s, req.input_tokens, req.output_tokens, cached_tokens=np.array([0, 600, 0]))
    assert simulate(_linear, cached, EngineConfig(4, 1024, 100_000, chunked_prefill=False)).rejected == 0  # 900 computed tokens fit


def test_without_chunked_prefill_the_budget_holds_and_everything_finishes() -> None:
    cfg = EngineConfig(max_num_seqs=24, max_batched_tokens=2048, kv_capacity_tokens=60_000, chunked_prefill=False)
    req = _workload(2000, rate=12.0, seed=3)
    rec = Recorder()
    r = simulate(_linear, req, cfg, scheduler=rec)
    assert r.finished.all() and r.rejected == 0
    assert all(d + p <= 2048 for d, p in rec.steps)
    assert sum(p for _, p in rec.steps) == int(req.input_tokens.sum())  # every prompt prefilled once, whole
    chunked = simulate(_linear, req, EngineConfig(max_num_seqs=24, max_batched_tokens=2048, kv_capacity_tokens=60_000))
    assert np.nanmean(r.ttft_s) != pytest.approx(np.nanmean(chunked.ttft_s), rel=1e-6)  # the rule changes the schedule


def test_without_chunked_prefill_a_recompute_longer_than_the_budget_is_chunked() -> None:
    # Two requests fill a tiny KV cache; the newer is preempted after emitting tokens, and its recompute
    # (prompt plus emitted tokens) exceeds the 64-token budget: it is chunked rather than stuck.
    # Both decode until 2·ceil((40 + g)/16) blocks exceed 10, at g > 40: the recompute is 80+ tokens.
    req = Requests(np.array([0.0, 0.0]), np.array([40, 40]), np.array([100, 100]))
    cfg = EngineConfig(max_num_seqs=2, max_batched_tokens=64, kv_capacity_tokens=10 * 16, block_tokens=16, chunked_prefill=False)
    rec = Recorder()
    r = simulate(_linear, req, cfg, scheduler=rec, max_steps=10_000)
    assert r.preemptions > 0 and r.finished.all()
    assert any(p > 0 and d + p == 64 for d, p in rec.steps)  # a chunk filled the budget: the recompute was split


def test_without_chunked_prefill_a_stuck_recompute_does_not_lose_the_prompt_that_completes_behind_it() -> None:
    # A preempted request's recompute exceeds the 8-token budget and is chunked; when its last piece does not
    # fit the step's remaining budget it waits at the head of the prefilling queue while a shorter prompt is
    # admitted and completes in that step. The completion is that prompt, not the head (it once popped the
    # head: the stuck request held its seat and blocks for ever, or the run raised "not in deque").
    req = Requests(np.array([0.0508, 0.0558, 0.1002, 0.2809]), np.array([8, 7, 3, 7]), np.array([27, 25, 30, 27]))
    cfg = EngineConfig(max_num_seqs=5, max_batched_tokens=8, kv_capacity_tokens=48, block_tokens=4, chunked_prefill=False)
    rec = Recorder()
    r = simulate(_linear, req, cfg, scheduler=rec, max_steps=100_000)
    assert r.preemptions > 0
    assert r.finished.all() and r.rejected == 0
    assert np.isfinite(r.e2e_s).all()


def test_prefill_first_steps_prefill_only_while_prompts_wait() -> None:
    # Request 0 decodes from t = 0.0106; request 1 arrives at 0.05, mid-decode. Mixed (vLLM v1), its prompt
    # joins a decode step; prefill-first (vLLM v0's default scheduler) runs it alone and request 0 skips
    # that step.
    req = Requests(np.array([0.0, 0.05]), np.array([100, 500]), np.array([20, 5]))
    mixed = simulate(_linear, req, EngineConfig(4, 4096, 100_000, chunked_prefill=False), scheduler=(rec_m := Recorder()))
    cfg = EngineConfig(4, 4096, 100_000, chunked_prefill=False, prefill_first=True)
    first = simulate(_linear, req, cfg, scheduler=(rec_f := Recorder()))
    assert (1, 500) in rec_m.steps and (0, 500) in rec_f.steps
    assert all(d == 0 or p == 0 for d, p in rec_f.steps)  # no step both prefills and decodes
    assert first.finished.all() and mixed.finished.all()
    # The skipped step stretches request 0's decode by one prefill-only step, and request 1's TTFT is that step.
    assert first.ttft_s[1] == pytest.approx(mixed.ttft_s[1] - (_linear(1, 500) - _linear(0, 500)), abs=_linear(1, 0))
    assert first.e2e_s[0] > mixed.e2e_s[0] + 0.9 * _linear(1, 0)  # request 0 loses a step to request 1's prompt


def test_whole_prompts_with_room_for_all_keep_synchronised_clients_together() -> None:
    # 16 closed-loop clients with 2048-token prompts (LMDeploy's static benchmark): prefill-first (or whole
    # prompts with a budget for all of them) prefills every prompt before decoding, so the decode steps
    # are pure decode at batch 16 and TTFT grows with the queue of prompts; mixed chunked steps spread them.
    req = Requests(np.zeros(64), np.full(64, 2048), np.full(64, 128))
    big = EngineConfig(16, 16 * 2048, 10_000_000, chunked_prefill=False)
    sync, _ = simulate_cluster(_linear, req, big, scheduler=(rec := Recorder()), concurrency=16)
    spread, _ = simulate_cluster(_linear, req, EngineConfig(16, 2048, 10_000_000), concurrency=16)
    assert sync.finished.all() and spread.finished.all()
    assert sum(1 for d, p in rec.steps if d == 16 and p == 0) >= 4 * 126  # four rounds of pure batch-16 decode
    assert np.ptp(sync.ttft_s) < 1e-9  # every round prefills all 16 prompts in one step: they stay together
    assert np.nanmean(sync.ttft_s) > 3 * np.nanmean(spread.ttft_s)
    assert np.median(sync.tpot_s) < np.median(spread.tpot_s)


def test_multi_step_rounds_hold_arrivals_until_the_round_ends() -> None:
    # vLLM v0 --num-scheduler-steps k: a decode-only step commits to k - 1 more; request 1, arriving during
    # request 0's round, waits for it to end.
    req = Requests(np.array([0.0, 0.02]), np.array([100, 100]), np.array([40, 5]))
    one = simulate(_linear, req, EngineConfig(4, 4096, 100_000, prefill_first=True, chunked_prefill=False))
    ten = simulate(_linear, req, EngineConfig(4, 4096, 100_000, prefill_first=True, chunked_prefill=False, decode_steps=10),
                   scheduler=(rec := Recorder()))  # fmt: skip
    assert ten.ttft_s[1] > one.ttft_s[1] + 5 * _linear(1, 0)
    assert rec.steps[:11] == [(0, 100)] + [(1, 0)] * 10  # the first round: ten decode steps before request 1's prompt
    assert rec.steps[11] == (0, 100)
    assert ten.finished.all()
    with pytest.raises(ValueError, match="decode_steps"):
        EngineConfig(4, 4096, 100_000, decode_steps=0)


def test_a_multi_step_round_ends_when_its_decoders_finish() -> None:
    # Request 0 emits 2 tokens and finishes inside its 3-step round; request 1 arrived during it. With nothing
    # left to decode the round ends and request 1 is prefilled (it was stranded until k - 1 later arrivals).
    req = Requests(np.array([0.0, 0.025]), np.array([100, 100]), np.array([2, 5]))
    one = EngineConfig(4, 4096, 100_000, prefill_first=True, chunked_prefill=False)
    three = EngineConfig(4, 4096, 100_000, prefill_first=True, chunked_prefill=False, decode_steps=3)
    for cfg in (one, three):
        r = simulate(_linear, req, cfg)
        c, _ = simulate_cluster(_linear, req, cfg)
        assert r.finished.all() and c.finished.all()
    assert simulate(_linear, req, three).ttft_s[1] == pytest.approx(simulate(_linear, req, one).ttft_s[1])


# ---------------------------------------------------------------------------------------------
# a hybrid model's per-sequence state (state_tokens)


class RunningRecorder(Recorder):
    """Also records how many requests run and how many blocks are held after each scheduling."""

    def __init__(self) -> None:
        super().__init__()
        self.running: list[int] = []
        self.used: list[int] = []

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        out = super().schedule(engine)
        self.running.append(len(engine.running))
        self.used.append(engine.used)
        return out


def test_state_blocks_bound_how_many_requests_run_and_are_freed_at_the_end() -> None:
    # 62 blocks of 16 tokens; each request needs 1 block of tokens (peak 10 + 4 - 1 = 13 tokens) and 25 of state:
    # 26 blocks per running request, so two run at once where the tokens alone would let all eight.
    req = Requests(np.zeros(8), np.full(8, 10), np.full(8, 4))
    hybrid = EngineConfig(max_num_seqs=16, max_batched_tokens=512, kv_capacity_tokens=1000, state_tokens=400)
    assert hybrid.state_blocks == 25
    rec = RunningRecorder()
    r = simulate(_linear, req, hybrid, scheduler=rec)
    assert r.finished.all() and r.rejected == 0 and r.preemptions == 0
    assert max(rec.running) == 2 and max(rec.used) == 52
    plain = RunningRecorder()
    simulate(_linear, req, EngineConfig(max_num_seqs=16, max_batched_tokens=512, kv_capacity_tokens=1000), scheduler=plain)
    assert max(plain.running) == 8
    # A request whose tokens fit but whose state does not is rejected at arrival.
    too_big = EngineConfig(max_num_seqs=16, max_batched_tokens=512, kv_capacity_tokens=1000, state_tokens=1000)
    assert simulate(_linear, req, too_big).rejected == 8


def test_state_blocks_are_returned_on_preemption() -> None:
    # Four requests grow until the blocks run out; preempted ones free their state too, and all finish.
    req = Requests(np.zeros(4), np.full(4, 16), np.full(4, 60))
    cfg = EngineConfig(max_num_seqs=4, max_batched_tokens=256, kv_capacity_tokens=20 * 16, state_tokens=32)
    rec = RunningRecorder()
    r = simulate(_linear, req, cfg, scheduler=rec)
    assert r.preemptions > 0 and r.finished.all()
    assert rec.used[-1] <= 2 + 5  # at the last step one request runs: its state (2 blocks) and its tokens (at most 5)


def test_negative_state_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="state_tokens"):
        EngineConfig(1, 8, 16, state_tokens=-1)


class _ContextStep:
    """A step of 1 ms plus 1 us per decode context token (S) and per unit of the prefill span Σ m·o."""

    def __call__(self, d: int, p: int) -> float:
        return 0.001

    def parts(self, d: int, p: int) -> tuple[float, ...]:
        return (0.001, 0.0, 1e-6, 1e-6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("gain", [2.0, 3.0])
def test_speculative_steps_are_priced_at_the_context_the_request_has(gain: float) -> None:
    # A speculative request's gained tokens were a cached prefix from admission: its prefill was priced after them
    # (TTFT grew with the output length) and its decode steps at contexts 666 tokens too long at the start.
    req = Requests(np.array([0.0]), np.array([1000]), np.array([1000]))
    plain = simulate(_ContextStep(), req, EngineConfig(8, 4096, 10**6))
    spec = simulate(_ContextStep(), req, EngineConfig(8, 4096, 10**6, verify_tokens=4, tokens_per_step=gain))
    assert spec.ttft_s[0] == pytest.approx(plain.ttft_s[0])
    mean_step = lambda r: (r.e2e_s[0] - r.ttft_s[0]) / (r.steps - 1)  # noqa: E731
    assert mean_step(spec) == pytest.approx(mean_step(plain), rel=0.01)  # the same mean context, ~1,500 tokens
