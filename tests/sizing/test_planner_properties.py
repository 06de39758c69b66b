"""Planner invariants on the real catalogue: what a plan charges, where layouts may go, what TTFT includes, objectives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.errors import InfeasibleError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.step import prefill_step

CAT = load_catalogue()
CENTS = 0.011  # workload and instance costs are rounded to cents each


def fleet(rate: float | None = 4.0, model: str = "llama-3.1-8b", **cons: object) -> Fleet:
    wl: dict[str, object] = {"name": "chat", "model": model, "input_tokens": 1000, "output_tokens": 200,
                             "slo": {"ttft_ms": 2000, "tpot_ms": 60}}  # fmt: skip
    if rate is not None:
        wl["requests_per_s"] = rate
    c = {"clouds": ["aws"], "hardware": ["h100-sxm", "l40s", "a100-80gb-sxm", "l4"], **cons}
    return Fleet.model_validate({"workloads": [wl, {"name": "embed", "model": "bge-large-en", "requests_per_s": 50.0, "input_tokens": 256,
                                                     "output_tokens": 1, "slo": {"ttft_ms": 200}, "precisions": ["fp16"]}]
                                 if rate is not None else [wl], "constraints": c})  # fmt: skip


@settings(max_examples=6, deadline=None)
@given(st.floats(0.2, 40.0))
@example(40.0)  # three instance types whose prices, rounded to cents each, sum a cent under the rounded total
def test_paid_devices_are_charged_and_costs_add_up(rate: float) -> None:
    plan = size(fleet(rate), CAT, alternatives=False)
    assert sum(w.usd_per_hour for w in plan.workloads) == pytest.approx(plan.totals.usd_per_hour, abs=CENTS * len(plan.workloads))
    for inst in plan.instances:
        assert 0 < inst.devices_used <= inst.devices
    assert sum(i.usd_per_hour for i in plan.instances) == pytest.approx(plan.totals.usd_per_hour, abs=CENTS * len(plan.instances))


def test_a_small_demand_on_a_big_instance_uses_what_it_pays_for() -> None:
    plan = size(fleet(0.3, hardware=["a100-80gb-sxm"]), CAT, alternatives=False)  # only 8-GPU instances on aws
    inst = plan.instances[0]
    assert inst.devices == 8 and inst.devices_used == 8  # idle GPUs of the bought p5 carry extra replicas
    assert plan.workload("chat").capacity_requests_per_s > plan.workload("chat").served_requests_per_s


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["llama-3.1-70b", "mixtral-8x7b", "llama-3.1-8b"]), st.floats(0.5, 20.0))
def test_no_layout_leaves_its_instance_or_fast_link_domain(model: str, rate: float) -> None:
    plan = size(fleet(rate, model=model, hardware=None), CAT, alternatives=False)
    for w in plan.workloads:
        for d in w.deployments:
            inst, dev = CAT.instance(d.instance_type), CAT.device(d.hardware)
            assert d.tp <= dev.interconnect.domain_size
            assert d.tp * d.pp <= inst.devices and inst.devices % (d.tp * d.pp) == 0


def test_promised_ttft_includes_queueing_beyond_the_idle_prefill() -> None:
    from aicap.sizing.core.deployment import Deployment

    plan = size(fleet(20.0), CAT, alternatives=False)
    chat = plan.workload("chat")
    for d in chat.deployments:
        dev = CAT.device(d.hardware)
        eff = CAT.efficiency_for(dev)
        dep = Deployment(CAT.model("llama-3.1-8b"), dev, eff, CAT.runtime_spec, d.tp, d.pp, 1, d.weights_dtype, d.kv_dtype)
        idle_ms = float(prefill_step(dep, 1, 1000).total) * 1e3
        assert d.ttft_ms > idle_ms
        assert d.tpot_ms is not None and d.tpot_ms <= 60.0
        assert d.utilisation <= 1.0


def test_throughput_without_a_rate_buys_the_most_the_budget_allows() -> None:
    budget = 20_000.0
    plan = size(fleet(None, objective="throughput", budget_usd_per_month=budget), CAT, alternatives=False)
    chat = plan.workload("chat")
    assert chat.requests_per_s is None and chat.served_requests_per_s > 0
    assert plan.totals.usd_per_month <= budget + 0.01
    more = size(fleet(None, objective="throughput", budget_usd_per_month=2 * budget), CAT, alternatives=False)
    assert more.workload("chat").served_requests_per_s > chat.served_requests_per_s


def test_latency_objective_trades_money_for_speed_within_the_budget() -> None:
    cheap = size(fleet(6.0), CAT, alternatives=False)
    fast = size(fleet(6.0, objective="latency", budget_usd_per_month=3 * cheap.totals.usd_per_month), CAT, alternatives=False)
    assert fast.totals.usd_per_month <= 3 * cheap.totals.usd_per_month + 0.01
    c, f = cheap.workload("chat"), fast.workload("chat")
    assert f.capacity_requests_per_s >= f.requests_per_s  # type: ignore[operator]
    score = lambda w: w.ttft_ms / 2000 + w.tpot_ms / 60  # noqa: E731 - the objective's own score
    assert score(f) <= score(c) + 1e-9


def test_pricing_without_prices_says_what_dropped_out() -> None:
    plan = size(fleet(2.0, clouds=["aws", "gcp"], pricing="spot"), CAT, alternatives=False)
    assert any("no published spot price" in w and "excluded" in w for w in plan.warnings)


def test_an_absurd_rate_is_infeasible_and_points_at_a_unit_slip() -> None:
    with pytest.raises(InfeasibleError, match=r"max_instances_per_type.*per second"):
        size(fleet(1e9), CAT, alternatives=False)


def test_alternatives_name_the_binding_constraint() -> None:
    plan = size(fleet(4.0, hardware=None), CAT)
    assert plan.alternatives
    for a in plan.alternatives:
        assert a.why.startswith(("cannot serve", "costs more", "not chosen", "no plan"))
        if a.why.startswith("costs more"):
            assert any(
                k in a.why
                for k in ("TTFT target", "TPOT target", "token budget per step", "KV-cache slots", "CUDA-graph batch cap", "batch memory")
            )


def test_same_inputs_same_plan() -> None:
    a, b = size(fleet(3.0), CAT), size(fleet(3.0), CAT)
    assert a.model_dump_json() == b.model_dump_json()
    assert np.isfinite(a.totals.usd_per_month)
