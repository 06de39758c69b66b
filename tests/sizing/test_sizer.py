"""The sizer end to end on the real catalogue: invariants and infeasibility messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.errors import InfeasibleError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.queueing import erlang_c, sustainable_rate

CAT = load_catalogue()


def fleet(rate: float = 5.0, ttft: float = 2000.0, tpot: float = 60.0, hardware: list[str] | None = None, **cons: object) -> Fleet:
    c = {"clouds": ["aws"], "hardware": hardware or ["h100-sxm", "l40s", "a100-80gb-sxm"], **cons}
    wl = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": rate, "input_tokens": 1000, "output_tokens": 200,
          "slo": {"ttft_ms": ttft, "tpot_ms": tpot}}  # fmt: skip
    return Fleet.model_validate({"workloads": [wl], "constraints": c})


def test_erlang_c_known_values() -> None:
    assert float(erlang_c(1, 0.5)) == pytest.approx(0.5)
    assert float(erlang_c(2, 1.0)) == pytest.approx(1 / 3)


def test_sustainable_rate_meets_target_and_drops_with_tighter_target() -> None:
    loose, tight = (float(sustainable_rate(32, 10.0, 0.2, t, 0.99)) for t in (3.0, 0.5))
    assert 0 < tight < loose <= 0.95 * 32 / 10.0


def test_plan_carries_traffic_and_fits() -> None:
    plan = size(fleet(), CAT).to_dict()
    w = plan["workloads"][0]
    assert w["capacity_requests_per_s"] >= w["requests_per_s"]
    assert plan["totals"]["usd_per_hour"] > 0
    assert all(d["tpot_ms"] <= 60.0 for d in w["deployments"])
    for inst in plan["instances"]:
        assert inst["devices_used"] <= inst["devices"]


@settings(max_examples=8, deadline=None)
@given(st.floats(0.5, 30.0))
def test_doubling_traffic_never_lowers_cost(rate: float) -> None:
    assert (
        size(fleet(2 * rate), CAT, alternatives=False).totals.usd_per_hour
        >= size(fleet(rate), CAT, alternatives=False).totals.usd_per_hour - 1e-9
    )


@settings(max_examples=6, deadline=None)
@given(st.floats(30.0, 120.0))
def test_tightening_tpot_never_lowers_cost(tpot: float) -> None:
    loose = size(fleet(tpot=tpot), CAT, alternatives=False).totals.usd_per_hour
    assert size(fleet(tpot=tpot * 0.7), CAT, alternatives=False).totals.usd_per_hour >= loose - 1e-9


HW = ["h100-sxm", "l40s", "a100-80gb-sxm", "l4", "h200-sxm"]


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(HW), st.floats(1.0, 20.0))
def test_removing_an_instance_type_never_lowers_cost(removed: str, rate: float) -> None:
    full = size(fleet(rate, hardware=HW), CAT, alternatives=False).totals.usd_per_hour
    fewer = [h for h in HW if h != removed]
    assert size(fleet(rate, hardware=fewer), CAT, alternatives=False).totals.usd_per_hour >= full - 1e-9


def test_latency_objective_within_budget_is_no_slower_than_cost() -> None:
    cheap = size(fleet(), CAT, alternatives=False).to_dict()
    budget = cheap["totals"]["usd_per_month"] * 3
    fast = size(fleet(objective="latency", budget_usd_per_month=budget), CAT, alternatives=False).to_dict()
    assert fast["totals"]["usd_per_month"] <= budget + 1e-6
    assert fast["workloads"][0]["capacity_requests_per_s"] >= fast["workloads"][0]["requests_per_s"]
    assert fast["workloads"][0]["tpot_ms"] <= cheap["workloads"][0]["tpot_ms"] + 1e-6


def test_throughput_objective_serves_what_the_budget_buys() -> None:
    # Enough traffic that the cheapest plan needs several instances, so half its budget still buys some.
    rate = 200.0
    cheap = size(fleet(rate=rate), CAT, alternatives=False).to_dict()
    assert cheap["totals"]["instances"] >= 2
    half = cheap["totals"]["usd_per_month"] / 2
    plan = size(fleet(rate=rate, objective="throughput", budget_usd_per_month=half), CAT, alternatives=False).to_dict()
    served = plan["workloads"][0]["served_requests_per_s"]
    assert plan["totals"]["usd_per_month"] <= half + 1e-6
    assert 0 < served < rate


def test_405b_on_small_instances_names_memory() -> None:
    f = Fleet.model_validate({"workloads": [{"name": "big", "model": "llama-3.1-405b", "requests_per_s": 1, "precisions": ["bf16"]}],
                              "constraints": {"clouds": ["aws"], "hardware": ["l4"]}})  # fmt: skip
    with pytest.raises(InfeasibleError, match=r"needs ≥ [\d,]+ GiB .*largest allowed instance"):
        size(f, CAT)


def test_a_format_no_allowed_device_runs_names_the_kernels_not_memory() -> None:
    f = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1, "precisions": ["fp8"]}],
                              "constraints": {"clouds": ["aws"], "hardware": ["t4"]}})  # fmt: skip
    with pytest.raises(InfeasibleError, match=r"no allowed device has kernels for its allowed precisions \(t4 supports none .*fp8\)") as e:
        size(f, CAT)
    assert "GiB" not in str(e.value)


def test_impossible_tpot_names_best_achievable() -> None:
    with pytest.raises(InfeasibleError, match=r"TPOT"):
        size(fleet(tpot=0.5), CAT)


def test_budget_below_cheapest_plan() -> None:
    with pytest.raises(InfeasibleError, match=r"budget \$1/month is below the cheapest plan"):
        size(fleet(budget_usd_per_month=1), CAT)


def test_sizing_pauses_the_cyclic_collector_and_restores_it_whatever_happens() -> None:
    import gc

    from aicap.sizing.plan import sizer as sizer_mod

    seen: list[bool] = []
    real = sizer_mod.all_candidates

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sizer_mod, "all_candidates", spy)
        assert gc.isenabled()
        size(fleet(1.0), CAT, alternatives=False)
        assert seen == [False] and gc.isenabled()
        with pytest.raises(InfeasibleError):
            size(fleet(1.0, tpot=0.001), CAT, alternatives=False)  # no deployment meets a 1 µs TPOT
        assert gc.isenabled()
        gc.disable()
        try:
            size(fleet(1.0), CAT, alternatives=False)
            assert not gc.isenabled()  # a caller's choice is left as it was
        finally:
            gc.enable()


def test_committed_capacity_bills_every_hour_of_the_month() -> None:
    # A fleet that runs 200 hours a month pays 200 hours of on-demand capacity but every hour of a reservation:
    # reserved is not 2.3x cheaper than it is (10.08 $/h x 200 looked cheaper than 16.01 $/h x 200).
    from aicap.sizing.core.constraints import Constraints

    c = Constraints.model_validate({"hours_per_month": 200.0, "pricing": "reserved_1y"})
    assert c.billed_hours() == 730.0 and c.billed_hours("on_demand") == 200.0 and c.billed_hours("owned") == 730.0
    assert Constraints.model_validate({"hours_per_month": 744.0, "pricing": "reserved_3y"}).billed_hours() == 744.0
    w = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 5, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 50}}  # fmt: skip
    plans = {m: size(Fleet.model_validate({"workloads": [w], "constraints": {"clouds": ["gcp"], "pricing": m, "hours_per_month": 200}}),
                     CAT, alternatives=False) for m in ("on_demand", "reserved_1y")}  # fmt: skip
    od, rsv = plans["on_demand"], plans["reserved_1y"]
    assert od.hours_per_month == 200.0 and rsv.hours_per_month == 730.0
    assert od.totals.usd_per_month == pytest.approx(od.totals.usd_per_hour * 200.0, abs=0.01)
    assert rsv.totals.usd_per_month == pytest.approx(rsv.totals.usd_per_hour * 730.0, abs=0.01)
    assert rsv.totals.usd_per_month > od.totals.usd_per_month  # at 200 hours a month the commitment costs more
    # and the plan says so: it was billed for 730 hours with no word beside the 200 given
    assert any("bills every hour of the month (730), not the 200 hours_per_month" in x for x in rsv.warnings)
    assert not any("bills every hour" in x for x in od.warnings)


def _h100_70b(availability: dict[str, int], clouds: list[str], **cons: object) -> Fleet:
    wl = {"name": "chat", "model": "llama-3.1-70b", "requests_per_s": 25.0, "input_tokens": 1500, "output_tokens": 300,
          "slo": {"ttft_ms": 2000, "tpot_ms": 60}, "precisions": ["fp8"]}  # fmt: skip
    return Fleet.model_validate({"workloads": [wl], "constraints": {"clouds": clouds, "availability": availability, **cons}})


def test_two_capped_types_of_one_device_supply_both_caps() -> None:
    # Instance types of the same device, count and cap were merged into the cheapest: two types capped at one
    # each supplied one instance, and a fleet that needs two was called infeasible.
    f = _h100_70b({"p5.48xlarge": 1, "Standard_ND96isr_H100_v5": 1}, ["aws", "azure"], hardware=["h100-sxm"])
    plan = size(f, CAT, alternatives=False)
    assert sorted((i.instance_type, i.count) for i in plan.instances) == [("Standard_ND96isr_H100_v5", 1), ("p5.48xlarge", 1)]


def test_a_full_capped_type_or_a_budget_widens_the_shortlist() -> None:
    # The shortlist ranks candidates alone, blind to caps: with the cheapest H100/H200 types capped at one, the
    # dropped types of the same devices carried the rest for 8% less, and a budget between the two plans was refused.
    import aicap.sizing.plan.sizer as sizer_mod

    caps = {"p5.48xlarge": 1, "p6-b200.48xlarge": 0, "p5en.48xlarge": 1}
    f = _h100_70b(caps, ["aws", "azure", "gcp"])
    f = f.model_copy(update={"workloads": [f.workloads[0].model_copy(update={"requests_per_s": 60.0})]})
    plan = size(f, CAT, alternatives=False)
    every = sizer_mod.shortlist
    try:
        sizer_mod.shortlist = lambda fleet, cands, insts: cands  # type: ignore[assignment]
        full = size(f, CAT, alternatives=False)
    finally:
        sizer_mod.shortlist = every
    assert plan.totals.usd_per_month == pytest.approx(full.totals.usd_per_month)
    cap = 1.02 * full.totals.usd_per_month
    budget = f.model_copy(update={"constraints": f.constraints.model_copy(update={"budget_usd_per_month": cap})})
    assert size(budget, CAT, alternatives=False).totals.usd_per_month <= cap


def _varied_fleet(n: int, search: str) -> Fleet:
    """``n`` workloads cycling through models, lengths and targets (benchmarks/bench_size.py's fleet, small)."""
    models = ["llama-3.1-8b", "llama-3.1-70b", "mistral-7b", "mixtral-8x7b", "gemma-2-9b", "qwen2.5-7b", "bge-large-en"]
    inputs, outputs, slos = [256, 500, 1000, 2000, 3500], [64, 150, 300, 600], [(1000, 40), (2000, 60), (5000, 100)]
    wl = []
    for k in range(n):
        m = models[k % len(models)]
        enc = m.startswith("bge")
        ttft, tpot = slos[k % len(slos)]
        wl.append({"name": f"w{k}", "model": m, "requests_per_s": float(1 + (k % 9)),
                   "input_tokens": min(inputs[(k // 7) % len(inputs)], 512) if enc else inputs[(k // 7) % len(inputs)],
                   "output_tokens": 1 if enc else outputs[(k // 3) % len(outputs)],
                   "slo": {"ttft_ms": float(ttft), "tpot_ms": None if enc else float(tpot)},
                   "precisions": ["fp16"] if enc else ["bf16", "fp8"]})  # fmt: skip
    return Fleet.model_validate({"workloads": wl, "constraints": {"clouds": ["aws", "gcp"], "search": search}})


def test_a_thorough_search_finds_the_remainder_a_smaller_replica_carries() -> None:
    # Fourteen workloads: the fast shortlist (each workload's cheapest per request/s, alone and per device type) misses
    # the whole program's optimum by 3.3%; keeping each workload's cheapest replica on its best device types finds it.
    import aicap.sizing.plan.sizer as sizer_mod

    fast_plan, thorough_plan = (size(_varied_fleet(14, s), CAT, alternatives=False) for s in ("fast", "thorough"))
    assert (fast_plan.solver.shortlist, thorough_plan.solver.shortlist) == ("fast", "thorough")  # the plan says what it chose among
    fast, thorough = fast_plan.totals.usd_per_month, thorough_plan.totals.usd_per_month
    every = sizer_mod.shortlist
    try:
        sizer_mod.shortlist = lambda fleet, cands, insts: cands  # type: ignore[assignment]
        whole = size(_varied_fleet(14, "fast"), CAT, alternatives=False)
    finally:
        sizer_mod.shortlist = every
    full = whole.totals.usd_per_month
    assert whole.solver.shortlist == "none"  # a shortlist that keeps every candidate is none
    assert thorough == pytest.approx(full, rel=1e-4)
    assert fast > 1.02 * full
    # auto is thorough for a fleet this small
    assert size(_varied_fleet(14, "auto"), CAT, alternatives=False).totals.usd_per_month == thorough


def test_auto_search_is_thorough_up_to_the_documented_fleet_size() -> None:
    from aicap.sizing.core.constraints import THOROUGH_AUTO_WORKLOADS, Constraints

    auto, fast, thorough = (Constraints(search=s) for s in ("auto", "fast", "thorough"))
    assert auto.thorough(THOROUGH_AUTO_WORKLOADS) and not auto.thorough(THOROUGH_AUTO_WORKLOADS + 1)
    assert thorough.thorough(10 * THOROUGH_AUTO_WORKLOADS) and not fast.thorough(1)
