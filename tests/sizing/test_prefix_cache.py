"""Prefix caching: a cached share of each prompt is attended to but not recomputed, in estimate, size and the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.estimate import EstimateRequest, estimate
from aicap.sizing.serve.step import engine_costs
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.verify import verify


def test_cached_prefix_is_attended_to_not_recomputed(deploy) -> None:
    d = deploy("llama-3.1-8b", "h100-sxm")
    cold = engine_costs(d, 0.0, 0.0, 1000.0, 1000.0, 1.0)
    warm = engine_costs(d, 0.0, 0.0, 1000.0, 1000.0, 1.0, 3000.0)  # the same 1,000 new tokens after a 3,000-token prefix
    assert warm["mlp"].flops == pytest.approx(cold["mlp"].flops)
    assert warm["attention"].flops > 2 * cold["attention"].flops


def _est(cat: Catalogue, share: float) -> dict:
    dev = cat.device("h100-sxm")
    req = EstimateRequest(cat.model("llama-3.1-8b"), dev, cat.efficiency_for(dev), cat.runtime_spec, input_tokens=4000, output_tokens=200,
                          prefix_cached_share=share)  # fmt: skip
    return estimate(req).to_dict()


def test_estimate_prefills_only_the_uncached_part(cat: Catalogue) -> None:
    cold, warm = _est(cat, 0.0), _est(cat, 0.75)
    assert warm["prefix_cached_share"] == 0.75
    assert warm["ttft_s"] < 0.5 * cold["ttft_s"]
    assert warm["throughput"]["output_tokens_per_s"] > cold["throughput"]["output_tokens_per_s"]
    assert warm["kv_cache_tokens"] == cold["kv_cache_tokens"]  # the cache still holds every prompt token


def _fleet(share: float) -> Fleet:
    w = {"name": "rag", "model": "llama-3.1-8b", "requests_per_s": 6.0, "input_tokens": 4000, "output_tokens": 200,
         "slo": {"ttft_ms": 1500, "tpot_ms": 60}, "precisions": ["bf16"], "prefix_cached_share": share}  # fmt: skip
    return Fleet.model_validate({"workloads": [w], "constraints": {"hardware": ["h100-sxm"], "clouds": ["aws"]}})


def test_a_cached_prefix_raises_replica_capacity(cat: Catalogue) -> None:
    cold = size(_fleet(0.0), cat, alternatives=False)
    warm = size(_fleet(0.75), cat, alternatives=False)
    per_replica = [w.workloads[0].capacity_requests_per_s / sum(d.replicas for d in w.workloads[0].deployments) for w in (cold, warm)]
    assert per_replica[1] > 1.5 * per_replica[0]
    assert warm.totals.usd_per_month <= cold.totals.usd_per_month


def test_a_plan_with_prefix_caching_keeps_its_promises_in_simulation(cat: Catalogue) -> None:
    plan = size(_fleet(0.75), cat, alternatives=False)
    for c in verify(plan, cat):
        assert c.stable and c.meets_targets
        assert c.ttft_simulated_ms <= c.ttft_promised_ms * 1.3
        assert c.tpot_promised_ms is not None and c.tpot_simulated_ms is not None
        assert c.tpot_simulated_ms <= c.tpot_promised_ms * 1.3


def test_the_simulator_prefills_input_less_cached_tokens() -> None:
    prefilled: list[int] = []

    def step(decode_seqs: int, prefill_tokens: int) -> float:
        prefilled.append(prefill_tokens)
        return 0.01

    n = 50
    reqs = Requests(np.arange(n) * 1.0, np.full(n, 1000), np.full(n, 10), cached_tokens=np.full(n, 600))
    res = simulate(step, reqs, EngineConfig(max_num_seqs=64, max_batched_tokens=8192, kv_capacity_tokens=1 << 20))
    assert res.finished.all()
    assert max(prefilled) == 400  # one request at a time, 1,000 − 600 tokens each (memoised: distinct steps only)


def test_cached_tokens_must_leave_a_token_to_prefill() -> None:
    with pytest.raises(ValueError, match="cached_tokens"):
        Requests(np.zeros(1), np.array([100]), np.array([5]), cached_tokens=np.array([100]))
