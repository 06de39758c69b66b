"""Simulating real deployments: engine limits from the memory model, reports, policy comparison, plans."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment as Layout
from aicap.sizing.core.errors import InputError
from aicap.sizing.perf import memory
from aicap.sizing.plan.fleet_io import builtin_fleet
from aicap.sizing.sim import replay
from aicap.sizing.sim.engine import Requests
from aicap.sizing.sim.plan_runs import simulate_plan
from aicap.sizing.sim.report import Targets, meets_slo, stats_ms
from aicap.sizing.sim.result import SimResult
from aicap.sizing.sim.traffic import TrafficSpec, dataset
from aicap.sizing.sim.verify import size_verified

CAT = load_catalogue()


def layout(model: str = "llama-3.1-8b", hw: str = "h100-sxm", tp: int = 1) -> Layout:
    dev = CAT.device(hw)
    return Layout(CAT.model(model), dev, CAT.efficiency_for(dev), CAT.runtime_spec, tp, 1, 1, "bf16", "bf16")


def chat(n: int = 3000, rate: float = 8.0, seed: int = 0, shares: tuple[float, ...] | None = None) -> Requests:
    ds = dataset("azure-conv-2023")
    return TrafficSpec(n, ds.input_tokens, ds.output_tokens, rate_per_s=rate, class_shares=shares, seed=seed).build()


def test_engine_limits_come_from_the_runtime_and_the_memory_model() -> None:
    lay = layout()
    cfg = replay.Setup(lay).engine()
    assert cfg.kv_capacity_tokens == int(memory.kv_cache_tokens(lay, 1, 1)) > 100_000
    assert (cfg.max_num_seqs, cfg.max_batched_tokens) == (CAT.runtime_spec.max_batch, CAT.runtime_spec.max_prefill_tokens)
    assert replay.Setup(lay, max_num_seqs=64, max_batched_tokens=2048).engine().max_num_seqs == 64
    enc = layout("bge-large-en", "l4")
    assert replay.Setup(enc).engine().kv_capacity_tokens == replay.NO_KV_TOKENS


def test_a_deployment_without_room_for_kv_is_refused() -> None:
    with pytest.raises(InputError, match="no memory"):
        replay.Setup(layout("llama-3.1-70b", "l4")).engine()


def test_report_of_a_light_load_run() -> None:
    req = chat(3000, rate=5.0)
    rep = replay.run(replay.Setup(layout()), req, targets=Targets(ttft_ms=2000, tpot_ms=100), traffic="t")
    assert rep.requests == rep.finished == 3000 and rep.rejected == 0 and rep.stable
    assert rep.throughput.requests_per_s == pytest.approx(5.0, rel=0.08)
    assert rep.ttft_ms.p50 is not None and rep.ttft_ms.p99 is not None and rep.ttft_ms.p50 <= rep.ttft_ms.p99
    assert rep.slo_attainment == 1.0 and rep.goodput_requests_per_s == rep.throughput.requests_per_s
    assert rep.kv_cache_use is not None and 0 < rep.kv_cache_use["mean"] <= rep.kv_cache_use["peak"] <= 1
    assert rep.setup.kv_cache_tokens and rep.setup.policy == "fcfs" and rep.classes == []
    assert replay.holds(rep, "p99")
    tl = rep.timeline
    assert 10 <= len(tl) <= 50 and all(a.t_s < b.t_s for a, b in itertools.pairwise(tl))
    assert all(p.kv_share is not None and 0 <= p.kv_share <= 1 and p.running >= 0 for p in tl)
    tight = replay.run(replay.Setup(layout()), req, targets=Targets(ttft_ms=1.0))
    assert tight.slo_attainment == 0.0 and not replay.holds(tight, "p50")


def test_encoder_requests_never_decode() -> None:
    req = Requests(np.cumsum(np.full(500, 0.01)), np.full(500, 256), np.full(500, 7))  # outputs ignored for an encoder
    rep = replay.run(replay.Setup(layout("bge-large-en", "l4")), req)
    assert rep.finished == 500 and rep.tpot_ms.mean is None and rep.throughput.output_tokens_per_s == 0
    assert rep.kv_cache_use is None and rep.setup.kv_cache_tokens is None and rep.setup.mean_output_tokens == 0
    assert rep.timeline and all(p.kv_share is None for p in rep.timeline)


def test_classes_are_reported_apart() -> None:
    req = chat(4000, rate=9.0, shares=(0.3, 0.7))
    rep = replay.run(replay.Setup(layout(), max_num_seqs=16), req, policy="priority", targets=Targets(ttft_ms=500))
    assert [c.priority for c in rep.classes] == [0, 1] and sum(c.requests for c in rep.classes) == 4000
    assert rep.classes[0].queue_ms.mean is not None and rep.classes[1].queue_ms.mean is not None
    assert rep.classes[0].queue_ms.mean < rep.classes[1].queue_ms.mean


def test_policy_names() -> None:
    assert set(replay.POLICIES) == {"fcfs", "sjf", "srtf", "rr", "priority", "edf"}
    for p in replay.POLICIES:
        assert replay.make_scheduler(p, replay.PolicyOptions(), Targets(ttft_ms=100), 0) is not None
    with pytest.raises(InputError, match="TTFT target"):
        replay.make_scheduler("edf", replay.PolicyOptions(), Targets(), 0)
    with pytest.raises(InputError, match="valid policies"):
        replay.make_scheduler("lifo", replay.PolicyOptions(), Targets(), 0)


def test_replicas_for_slo_is_the_smallest_count_that_holds() -> None:
    req = chat(1500, rate=30.0)
    setup = replay.Setup(layout(), max_num_seqs=32)
    tg = Targets(ttft_ms=800, tpot_ms=60)
    need = replay.replicas_for_slo(setup, req, policy="fcfs", targets=tg)
    assert need is not None and need >= 2
    assert replay.holds(replay.run(replace(setup, replicas=need), req, targets=tg), "p99")
    assert not replay.holds(replay.run(replace(setup, replicas=need - 1), req, targets=tg), "p99")
    assert replay.replicas_for_slo(setup, req, policy="fcfs", targets=Targets()) is None


def test_replicas_for_slo_stops_where_more_replicas_do_not_shorten_the_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    # A TTFT target below one request's own prefill: the search doubled to 4,096 replicas (11 minutes for six policies).
    req = chat(400, rate=4.0)
    setup = replay.Setup(layout(), max_num_seqs=32)
    runs: list[int] = []
    real = replay.run

    def counted(s: replay.Setup, *a: object, **kw: object) -> object:
        runs.append(s.replicas)
        return real(s, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(replay, "run", counted)
    assert replay.replicas_for_slo(setup, req, policy="fcfs", targets=Targets(ttft_ms=1.0)) is None
    assert max(runs) <= 8 and len(runs) <= 4  # 1, 2, 4 and 8 replicas: the tail stopped shrinking


def test_compare_policies_in_a_pool_equals_serial() -> None:
    req = chat(800, rate=20.0)
    setup = replay.Setup(layout(), max_num_seqs=16)
    tg = Targets(ttft_ms=1500, tpot_ms=80)
    ticks: list[int] = []
    serial = replay.compare_policies(setup, req, policies=("fcfs", "sjf", "edf"), targets=tg, on_done=lambda: ticks.append(1))
    pooled = replay.compare_policies(setup, req, policies=("fcfs", "sjf", "edf"), targets=tg, jobs=2)
    assert [r.policy for r in serial] == ["fcfs", "sjf", "edf"] and len(ticks) == 3
    assert [r.report.model_dump() for r in serial] == [r.report.model_dump() for r in pooled]
    assert [r.replicas_for_slo for r in serial] == [r.replicas_for_slo for r in pooled]
    assert [r.policy for r in replay.compare_policies(setup, req, policies=("fcfs", "edf"))] == ["fcfs"]  # edf needs a TTFT target


def test_meets_slo_counts_unfinished_and_ignores_tpot_of_one_token_answers() -> None:
    nan = float("nan")
    res = SimResult(ttft_s=np.array([0.1, 0.1, 0.5, nan]), tpot_s=np.array([0.02, nan, 0.02, nan]), e2e_s=np.array([1.0, 0.1, 2.0, nan]),
                    finished=np.array([True, True, True, False]), preemptions=0, steps=1, mean_running=0.0, mean_step_s=0.0,
                    duration_s=3.0, arrival_s=np.zeros(4))  # fmt: skip
    ok = meets_slo(res, Targets(ttft_ms=200, tpot_ms=30), np.array([50, 1, 50, 50]))
    assert ok.tolist() == [True, True, False, False]
    assert stats_ms(np.array([nan])).mean is None
    assert stats_ms(np.array([0.001, 0.003])).mean == pytest.approx(2.0)


def test_a_verified_plan_holds_with_another_seed() -> None:
    plan = size_verified(builtin_fleet(), CAT, requests=2000, alternatives=False)
    assert plan.verification is not None and plan.verification.holds
    runs = simulate_plan(plan, CAT, requests_per_replica=1500, seed=12345)
    assert {r.workload for r in runs} == {"chat", "summariser", "embeddings"}
    assert all(r.holds for r in runs), [(r.workload, r.report.ttft_ms.p99, r.report.slo) for r in runs]
    for r in runs:
        assert r.report.setup.replicas >= 1 and r.report.requests >= 1500


def test_a_setup_spanning_instances_prices_its_crossings_at_the_network_as_verify_does() -> None:
    # simulate PLAN and size --verify must price a deployment alike: a replica over two 8-GPU instances hands
    # its activations across the instance network at the pipeline boundary, slower than the in-node link.
    dev = CAT.device("h100-sxm")
    lay = Layout(CAT.model("llama-3.1-70b"), dev, CAT.efficiency_for(dev), CAT.runtime_spec, 8, 2, 1, "bf16", "bf16")
    inside = replay.Setup(lay).step(1000.0, 200.0)
    across = replay.Setup(lay, scale_out_bps=5e9).step(1000.0, 200.0)
    assert across(8, 0) > inside(8, 0) and across(0, 2048) > inside(0, 2048)
    assert replay.Setup(lay, decode_context=1100.0).step(1000.0, 200.0)(8, 0) == pytest.approx(inside(8, 0), rel=1e-12)  # E[I] + E[O]/2
