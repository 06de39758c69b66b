"""Planner helpers on small typed inputs: latency score, the integer program's arrays and failure text, instance
filtering, the shortlist, dominance pruning, screening, layouts, formats, failure reasons and binding constraints."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.errors import InfeasibleError, InputError, UnknownIdError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import candidates as cands_mod
from aicap.sizing.plan import screen as screen_mod
from aicap.sizing.plan.candidates import LATENCY_TIE, Candidate, Shape, _binding, _reasons, formats, prune
from aicap.sizing.plan.inputs import check_workloads
from aicap.sizing.plan.layouts import layouts
from aicap.sizing.plan.problem import describe_failure, latency_score, problem_for
from aicap.sizing.plan.screen import Rows as _Rows
from aicap.sizing.plan.screen import screen as _screen
from aicap.sizing.plan.sizer import allowed_instances, shortlist, standalone_cost
from aicap.sizing.solve.milp import SolveStatus, solve

CAT = load_catalogue()


def priced(name: str, usd: float | None) -> Any:
    i = CAT.instance(name)
    return i.model_copy(update={"price_usd_per_hour": i.price_usd_per_hour.model_copy(update={"on_demand": usd})})


BIG = priced("p5.48xlarge", 80.0)  # 8 x h100-sxm, $10 per device-hour
SMALL = priced("g6e.12xlarge", 12.0)  # 4 x l40s, $3 per device-hour
ONE = priced("g6e.xlarge", 2.0)  # 1 x l40s


def fleet(rate: float | None = 10.0, ttft: float | None = 2000.0, tpot: float | None = 50.0, **cons: Any) -> Fleet:
    slo = {k: v for k, v in (("ttft_ms", ttft), ("tpot_ms", tpot)) if v is not None}
    w: dict[str, Any] = {"name": "chat", "model": "llama-3.1-8b", "input_tokens": 1000, "output_tokens": 200, "slo": slo}
    if rate is not None:
        w["requests_per_s"] = rate
    return Fleet.model_validate({"workloads": [w], "constraints": {"clouds": ["aws"], **cons}})


def cand(inst: Any = BIG, devices: int = 1, capacity: float = 1.0, ttft: float = 100.0, tpot: float | None = 10.0, workload: str = "chat",
         tp: int = 1) -> Candidate:  # fmt: skip
    return Candidate(workload=workload, instance=inst.name, hardware=inst.device, tp=tp, pp=1, weights_dtype="bf16", kv_dtype="bf16",
                     slots=8, devices=devices, capacity_rps=capacity, ttft_ms=ttft, tpot_ms=tpot)  # fmt: skip


# --- problem.py ------------------------------------------------------------------------------------------------------


def test_latency_score_against_targets_and_defaults() -> None:
    assert latency_score(cand(ttft=500.0, tpot=25.0), fleet(ttft=2000.0, tpot=50.0)) == 0.25 + 0.5
    assert latency_score(cand(ttft=500.0, tpot=25.0), fleet(ttft=None, tpot=None)) == 0.5 + 0.25  # 1 s and 100 ms scales
    assert latency_score(cand(ttft=500.0, tpot=None), fleet()) == 0.25


def test_problem_arrays() -> None:
    f = fleet(rate=7.0, budget_usd_per_month=7300.0, objective="latency", hours_per_month=730.0, availability={SMALL.name: 3},
              max_instances_per_type=5, single_type=True)  # fmt: skip
    cs = [cand(BIG, 2, 4.0, ttft=1000.0, tpot=25.0), cand(SMALL, 1, 1.5, ttft=0.0, tpot=0.0)]
    p = problem_for(f, cs, [SMALL, ONE, BIG], 3.5)
    assert p.demand.tolist() == [7.0]
    assert p.cand_workload.tolist() == [0, 0] and p.cand_type.tolist() == [2, 0] and p.cand_devices.tolist() == [2, 1]
    assert p.cand_capacity.tolist() == [4.0, 1.5] and p.cand_latency.tolist() == [1.0, 1e-9]
    assert p.type_devices.tolist() == [4, 1, 8] and p.type_price.tolist() == [12.0, 2.0, 80.0]
    assert p.type_group.tolist() == [1, 1, 0]  # h100-sxm, l40s in name order
    assert p.type_cap.tolist() == [3.0, 5.0, 5.0]
    assert p.budget_per_hour == 10.0 and p.objective == "latency" and p.single_type is True and p.time_limit_s == 3.5


def test_problem_budget_is_ignored_by_the_cost_objective_and_a_missing_rate_is_nan() -> None:
    assert problem_for(fleet(budget_usd_per_month=100.0), [cand()], [BIG], 1.0).budget_per_hour is None
    assert problem_for(fleet(), [cand()], [BIG], 1.0).budget_per_hour is None
    p = problem_for(fleet(rate=None, objective="throughput", budget_usd_per_month=100.0, hours_per_month=500.0), [cand()], [BIG], 1.0)
    assert np.isnan(p.demand[0]) and p.budget_per_hour == 0.2 and p.single_type is False


def test_problem_carries_replica_floors_only_where_one_is_above_one() -> None:
    assert problem_for(fleet(), [cand()], [BIG], 1.0).min_replicas is None  # the default, 1, the demand already needs
    for k in (2, 3):
        floored = fleet().model_copy(update={"workloads": [fleet().workloads[0].model_copy(update={"min_replicas": k})]})
        p = problem_for(floored, [cand()], [BIG], 1.0)
        assert p.min_replicas is not None and p.min_replicas.dtype == np.int64 and p.min_replicas.tolist() == [k]
        assert p.has_floors and solve(p).replicas.sum() >= k


def failure(f: Fleet, cs: list[Candidate], insts: list[Any], status: SolveStatus | None = None) -> str:
    prob = problem_for(f, cs, insts, 2.0)
    sol = solve(prob)
    assert not sol.has_solution
    if status is not None:
        sol = SimpleNamespace(status=status)  # type: ignore[assignment]
    return describe_failure(f, cs, insts, prob, sol)


def test_failure_names_a_user_availability_cap() -> None:
    msg = failure(fleet(rate=10.0, availability={ONE.name: 2}), [cand(ONE, 1, 1.0)], [ONE])
    assert msg == "availability caps bind: the cheapest plan without caps needs 10 × g6e.xlarge (cap 2)"


def test_failure_names_the_default_cap_and_asks_about_units() -> None:
    msg = failure(fleet(rate=2500.5, max_instances_per_type=1000), [cand(ONE, 1, 1.0)], [ONE])
    assert msg == ("availability caps bind: the cheapest plan without caps needs 2,501 × g6e.xlarge (cap 1,000); workload 'chat' "
                   "holds 100% of their devices at 2,500.5 requests/s — is that a rate per second (not per minute, hour or day), "
                   "and can its targets be met on this hardware? Raise the cap (availability, max_instances_per_type) if the "
                   "demand is real")  # fmt: skip
    assert "the default max_instances_per_type" in failure(fleet(rate=1e6), [cand(ONE, 1, 1.0)], [ONE])  # a cap the user did not set


def test_failure_names_min_replicas_where_the_floor_not_the_rate_needs_the_instances() -> None:
    # min_replicas: 100,000 at 5 req/s was blamed on the rate ("is that a rate per second ...?")
    f = fleet(rate=5.0, max_instances_per_type=1000)
    f = f.model_copy(update={"workloads": [f.workloads[0].model_copy(update={"min_replicas": 5000})]})
    msg = failure(f, [cand(ONE, 1, 10.0)], [ONE])
    assert msg == ("availability caps bind: the cheapest plan without caps needs 5,000 × g6e.xlarge (cap 1,000); workload 'chat' "
                   "holds 100% of their devices to keep its min_replicas of 5,000 (its 5 requests/s alone need fewer): lower "
                   "min_replicas, or raise the cap (availability, max_instances_per_type) if that many replicas are meant")  # fmt: skip


def test_failure_names_the_workload_that_holds_the_devices_not_the_busiest() -> None:
    # A 100 req/s embedding was named where a slow 70B workload needed the thousands of instances
    f = Fleet.model_validate({"workloads": [
        {"name": "embed", "model": "llama-3.1-8b", "requests_per_s": 100.0, "input_tokens": 100, "output_tokens": 10},
        {"name": "rag", "model": "llama-3.1-8b", "requests_per_s": 4.0, "input_tokens": 100, "output_tokens": 10}],
        "constraints": {"clouds": ["aws"], "max_instances_per_type": 50}})  # fmt: skip
    msg = failure(f, [cand(ONE, 1, 100.0, workload="embed"), cand(ONE, 1, 0.05, workload="rag")], [ONE])
    assert "workload 'rag' holds 99% of their devices at 4 requests/s" in msg


def test_failure_names_the_largest_overflow() -> None:
    f = fleet(rate=12.0, availability={ONE.name: 1, SMALL.name: 1})
    msg = failure(f, [cand(ONE, 1, 1.0), cand(SMALL, 4, 2.0, workload="chat")], [ONE, SMALL])
    assert msg.startswith("availability caps bind: the cheapest plan without caps needs ")
    assert "12 × g6e.xlarge (cap 1)" in msg


def test_failure_names_the_budget() -> None:
    f = fleet(rate=3.0, objective="latency", budget_usd_per_month=1000.0, hours_per_month=700.0)
    msg = failure(f, [cand(ONE, 1, 1.0)], [ONE])
    assert msg == "budget $1,000/month is below the cheapest plan, $4,200/month"  # 3 x $2 x 700


def test_failure_time_limit_and_fallbacks() -> None:
    msg = failure(fleet(availability={ONE.name: 2}), [cand(ONE, 1, 1.0)], [ONE], status=SolveStatus.NO_SOLUTION)
    assert msg == ("no plan found within the solver's 2 s time limit; this is not proven infeasible: narrow the fleet (clouds, "
                   "hardware) or split it")  # fmt: skip
    two = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True),
                                              {**fleet().workloads[0].model_dump(exclude_none=True), "name": "other"}],
                                "constraints": {"clouds": ["aws"], "single_type": True}})  # fmt: skip
    cs = [cand(ONE, 1, 20.0), cand(BIG, 1, 20.0, workload="other")]
    assert failure(two, cs, [ONE, BIG]) == "no single device type serves every workload within the availability caps"
    two = two.model_copy(update={"constraints": fleet().constraints})
    assert (
        failure(two, cs[:1], [ONE]) == "no combination of the allowed instances meets every workload's demand within the availability caps"
    )


# --- sizer.py --------------------------------------------------------------------------------------------------------


def test_allowed_instances_filters_by_every_constraint() -> None:
    insts, warnings = allowed_instances(fleet(hardware=["l40s"], regions=["us-east-1"], instance_families=["g6e"]), CAT)
    assert insts and all((i.cloud, i.region, i.family, i.device) == ("aws", "us-east-1", "g6e", "l40s") for i in insts)
    assert [i.name for i in insts] == sorted(i.name for i in insts) and warnings == []
    every = [i for i in CAT.instances.values() if (i.cloud, i.family, i.device) == ("aws", "g6e", "l40s") and i.region == "us-east-1"]
    assert len(insts) == len(every)
    capped, _ = allowed_instances(fleet(hardware=["l40s"], instance_families=["g6e"], availability={"g6e.xlarge": 0}), CAT)
    assert "g6e.xlarge" not in {i.name for i in capped} and len(capped) == len(every) - 1


def test_allowed_instances_sorts_by_cloud_then_name() -> None:
    insts, _ = allowed_instances(Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True)],
                                                       "constraints": {"hardware": ["h100-sxm"]}}), CAT)  # fmt: skip
    assert [(i.cloud, i.name) for i in insts] == sorted((i.cloud, i.name) for i in insts) and len({i.cloud for i in insts}) > 1


def test_allowed_instances_says_which_types_have_no_price() -> None:
    unpriced = [i for i in CAT.instances.values() if i.cloud == "aws" and i.price("spot") is None]
    if not unpriced:
        pytest.skip("every aws type has a spot price")
    f = fleet(pricing="spot")
    try:
        kept, warnings = allowed_instances(f, CAT)
    except InfeasibleError as e:
        assert f"{len(unpriced)} instance types have no published spot price and were excluded ({len(unpriced)} on aws)" in str(e)
    else:
        said = f"{len(unpriced)} instance types have no published spot price and were excluded ({len(unpriced)} on aws)"
        assert len(warnings) == 1 and warnings[0].startswith(said)
        left = {CAT.device(i.device).kind for i in kept}
        assert ("server CPUs only" in warnings[0]) == (left <= {"cpu"})  # said where no accelerator type is left


def test_allowed_instances_none_left_names_the_constraints() -> None:
    with pytest.raises(InfeasibleError) as e:
        allowed_instances(fleet(hardware=["h100-sxm"], instance_families=["g6e"]), CAT)
    assert str(e.value) == (
        "no instance type matches the constraints (clouds=['aws'], regions=any, families=['g6e'], hardware=['h100-sxm'], pricing=on_demand)"
    )


def test_allowed_instances_none_left_names_the_caps_of_zero_and_unconstrained_fields() -> None:
    # Caps of 0 on every matching type said only "no instance type matches the constraints (...)": not why.
    with pytest.raises(InfeasibleError) as e:
        allowed_instances(fleet(hardware=["h100-sxm"], availability={"p5.48xlarge": 0, "p5.4xlarge": 0}), CAT)
    assert str(e.value) == (
        "no instance type matches the constraints (clouds=['aws'], regions=any, families=any, hardware=['h100-sxm'], pricing=on_demand)"
        "; availability caps of 0 exclude p5.48xlarge, p5.4xlarge"
    )
    with pytest.raises(InfeasibleError) as e:  # a gcp region with aws only: nothing is left, and no cap is named
        allowed_instances(fleet(regions=["us-central1"]), CAT)
    assert str(e.value) == (
        "no instance type matches the constraints (clouds=['aws'], regions=['us-central1'], families=any, hardware=any, pricing=on_demand)"
    )


def test_allowed_instances_names_an_unknown_region_or_family() -> None:
    with pytest.raises(UnknownIdError) as e:
        allowed_instances(fleet(regions=["us-east-9"]), CAT)
    assert str(e.value).startswith("unknown region 'us-east-9': did you mean ")
    with pytest.raises(UnknownIdError) as e:
        allowed_instances(fleet(instance_families=["g6x"]), CAT)
    assert str(e.value).startswith("unknown instance family 'g6x': did you mean ")


def test_allowed_instances_rejects_unknown_ids() -> None:
    with pytest.raises(InputError, match="h999"):
        allowed_instances(fleet(hardware=["h999"]), CAT)
    with pytest.raises(InputError, match=r"nope\.xlarge"):
        allowed_instances(fleet(availability={"nope.xlarge": 1}), CAT)


def test_a_tpot_target_on_an_encoder_is_refused() -> None:
    fleet = Fleet.model_validate({"workloads": [{"name": "emb", "model": "bge-large-en", "requests_per_s": 1.0, "input_tokens": 256,
                                                 "output_tokens": 1, "slo": {"ttft_ms": 200, "tpot_ms": 50}}]})  # fmt: skip
    with pytest.raises(InputError, match=r"^workload 'emb': bge-large-en is an encoder model and emits no tokens.*drop slo\.tpot_ms"):
        check_workloads(fleet, CAT)


def test_check_context_against_the_model() -> None:
    limit = CAT.model("llama-3.1-8b").max_context
    ok = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": limit - 10,
                                              "output_tokens": 10}]})  # fmt: skip
    check_workloads(ok, CAT)
    over = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": limit - 10,
                                                "output_tokens": 11}]})  # fmt: skip
    with pytest.raises(InputError) as e:
        check_workloads(over, CAT)
    assert str(e.value) == (f"workload 'chat': its longest request (input_tokens + output_tokens) is {limit + 1:,} tokens, over "
                            f"llama-3.1-8b's max context of {limit:,}")  # fmt: skip


def test_standalone_cost_buys_whole_instances() -> None:
    # 10 req/s at 3 req/s a replica: 4 replicas x 2 devices = 8 devices: 2 instances of 4 at $12
    assert standalone_cost(cand(SMALL, 2, 3.0), 10.0, SMALL, "on_demand") == 24.0
    assert standalone_cost(cand(SMALL, 2, 2.5), 10.0, SMALL, "on_demand") == 24.0  # exactly 4 replicas
    assert standalone_cost(cand(SMALL, 2, 2.5), 10.01, SMALL, "on_demand") == 36.0
    assert standalone_cost(cand(SMALL, 1, 100.0), 0.0, SMALL, "on_demand") == 12.0  # at least one replica


def test_shortlist_keeps_unit_cost_standalone_and_fast_candidates() -> None:
    # 12 candidates on the 1-device type, capacity k+1 at $2 a replica: unit cost falls with k, standalone cost for 10 req/s
    # is ceil(10/(k+1)) x $2 — flat from k=9 on, so ties break by unit cost.
    cs = [cand(ONE, 1, float(k + 1), ttft=float(100 - k)) for k in range(12)]
    kept = shortlist(fleet(rate=10.0), cs, [ONE])
    caps = sorted(c.capacity_rps for c in kept)
    assert caps == [7.0, 8.0, 9.0, 10.0, 11.0, 12.0]  # the 4 cheapest per req/s are among the 6 cheapest alone
    assert [c.capacity_rps for c in kept] == caps  # input order kept


def test_shortlist_standalone_keeps_a_small_replica_for_a_small_demand() -> None:
    # demand 0.5 req/s: one $2 replica (capacity 1) beats the big $80 instance, whose unit cost is better
    cs = [cand(BIG, 8, 1000.0 + k) for k in range(6)] + [cand(ONE, 1, 1.0)]
    kept = shortlist(fleet(rate=0.5), cs, [ONE, BIG])
    assert cs[-1] in kept and len(kept) == 6 and cs[0] not in kept  # 1000 req/s: 5th by unit cost, 6th alone
    kept = shortlist(fleet(rate=None, objective="throughput", budget_usd_per_month=1000.0), cs, [ONE, BIG])
    assert len(kept) == 5 and cs[-1] in kept  # no rate: 4 by unit cost, plus the best on each cheap device type


def test_shortlist_latency_and_single_type() -> None:
    cs = [cand(ONE, 1, float(20 - k), ttft=float(30 - k)) for k in range(12)]  # cheaper is slower here
    cost = shortlist(fleet(rate=1.0), cs, [ONE])
    assert len(cost) == 6 and cs[0] in cost
    fast = shortlist(fleet(rate=1.0, objective="latency", budget_usd_per_month=1e6), cs, [ONE])
    assert set(map(id, fast)) >= set(map(id, cost)) and cs[11] in fast and cs[8] in fast and cs[7] not in fast and len(fast) == 10
    assert len(shortlist(fleet(rate=1.0, single_type=True), cs, [ONE])) == 12


def test_shortlist_latency_keeps_the_fastest_the_budget_buys() -> None:
    # The four fastest candidates are on the $80/hour instance; a $3,000 budget (about $4/hour) buys only one-device
    # instances, so the fastest of those is kept beside the cheap ones, and the unaffordable ones do not crowd it out.
    fast = [cand(BIG, 8, 50.0, ttft=float(10 + k)) for k in range(4)]
    small = [cand(ONE, 1, 2.0 - 0.2 * k, ttft=float(900 - 100 * k)) for k in range(8)]  # dearer per req/s is faster here
    kept = shortlist(fleet(rate=1.0, objective="latency", budget_usd_per_month=3000.0, hours_per_month=730.0), fast + small, [ONE, BIG])
    assert small[7] in kept and small[6] in kept


def test_shortlist_ties_break_by_instance_then_layout() -> None:
    cs = [cand(ONE, 1, 1.0, tp=1) for _ in range(3)] + [cand(ONE, 1, 1.0, tp=2), cand(ONE, 1, 1.0, tp=4)]
    kept = shortlist(fleet(rate=None, objective="throughput", budget_usd_per_month=1e3), cs, [ONE])
    assert [c.tp for c in kept] == [1, 1, 1, 2]
    kept = shortlist(fleet(rate=None, objective="throughput", budget_usd_per_month=1e3), cs[::-1], [ONE])
    assert [c.tp for c in kept] == [2, 1, 1, 1]  # the smaller degree wins a tie wherever it stands; input order kept


def _reference_shortlist(fl: Fleet, cands: list[Candidate], insts: list[Any]) -> list[Candidate]:
    """The shortlist as first written, one workload at a time with sorted(): what the vectorised one must equal."""
    from aicap.sizing.plan.candidates import cost_per_rps
    from aicap.sizing.plan.sizer import SHORTLIST_DEVICE_TYPES, SHORTLIST_LATENCY, SHORTLIST_STANDALONE, SHORTLIST_UNIT_COST

    c, by_name = fl.constraints, {i.name: i for i in insts}
    keep: set[int] = set()
    for w in fl.workloads:
        mine = [x for x in cands if x.workload == w.name]
        if c.single_type:
            keep.update(id(x) for x in mine)
            continue
        ranked = sorted(mine, key=lambda x: (cost_per_rps(x, by_name[x.instance], c.price_model), x.instance, x.tp, x.pp))
        keep.update(id(x) for x in ranked[:SHORTLIST_UNIT_COST])
        best: dict[str, Candidate] = {}
        for x in ranked:
            best.setdefault(x.hardware, x)
        keep.update(id(x) for x in list(best.values())[:SHORTLIST_DEVICE_TYPES])
        if c.thorough(len(fl.workloads)):  # the cheapest replica on each of those device types: what carries a remainder

            def replica_cost(x: Candidate) -> float:
                inst = by_name[x.instance]
                return float(inst.price(c.price_model) or 0.0) * x.devices / inst.devices

            for hw in list(best)[:SHORTLIST_DEVICE_TYPES]:
                keep.add(id(min((x for x in ranked if x.hardware == hw), key=replica_cost)))  # min keeps the first of ties
        if w.rate is not None:
            rate = w.rate
            alone = sorted(mine, key=lambda x: (standalone_cost(x, rate, by_name[x.instance], c.price_model),
                                                cost_per_rps(x, by_name[x.instance], c.price_model), x.instance, x.tp, x.pp))  # fmt: skip
            keep.update(id(x) for x in alone[:SHORTLIST_STANDALONE])
        if c.objective == "latency":  # the fastest the budget buys alone, and the fastest so on each device type
            budget = c.budget_usd_per_month / c.hours_per_month if c.budget_usd_per_month is not None else math.inf
            afford = [x for x in mine if standalone_cost(x, w.rate or 0.0, by_name[x.instance], c.price_model) <= budget * (1 + 1e-9)]
            fast = sorted(afford, key=lambda x: (latency_score(x, fl), x.instance, x.tp, x.pp))
            keep.update(id(x) for x in fast[:SHORTLIST_LATENCY])
            quick: dict[str, Candidate] = {}
            for x in fast:
                quick.setdefault(x.hardware, x)
            keep.update(id(x) for x in quick.values())
    return [x for x in cands if id(x) in keep]


_SHORTLIST_INSTS = [BIG, SMALL, ONE, priced("g6.xlarge", 2.0), priced("g5.xlarge", 1.5), priced("g4dn.xlarge", 0.8),
                    priced("p4d.24xlarge", 30.0), priced("g5.12xlarge", None)]  # fmt: skip
"""Six device types (more than SHORTLIST_DEVICE_TYPES), two 1-device types of one price (ties broken by name), one unpriced."""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 7), st.integers(1, 4),
                          st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 7.5, 15.0]), st.sampled_from([80.0, 120.0, 300.0]),
                          st.sampled_from([1, 2, 4])), min_size=1, max_size=150),
       st.sampled_from(["cost", "latency", "throughput"]), st.booleans(), st.sampled_from(["fast", "thorough"]))  # fmt: skip
@example([(0, i, 1, 1.0 + i, 100.0, 1) for i in range(7)] * 2, "throughput", False, "fast")  # one workload on all six device types
@example([(0, 2, 1, 0.5, 100.0, 1)] + [(0, 1, 1, 1.0, 100.0, 1)] * 4, "throughput", False, "fast")  # under 1 req/s ranks by its cost
@example([(w, i, d, c, 100.0, 1) for w in range(3) for i in range(8) for d in (1, 2) for c in (0.25, 0.5, 1.0, 3.0)], "cost", True, "fast")
@example([(w, i, d, c, 100.0, 1) for w in range(3) for i in range(8) for d in (1, 2, 4) for c in (0.25, 3.0)], "cost", True, "thorough")
@example(
    [(w, 2, 1, c, 100.0, 1) for w in range(3) for c in (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 7.5, 15.0)]
    + [(w, 0, 8, 1.0, 100.0, 1) for w in range(3)],
    "cost",
    True,
    "fast",
)  # two device types: each workload's dear one kept by type alone
def test_the_vectorised_shortlist_equals_the_per_workload_one(rows: list[tuple[int, int, int, float, float, int]], objective: str,
                                                              rated: bool, search: str) -> None:  # fmt: skip
    insts = _SHORTLIST_INSTS
    names = ["a", "b", "c"]
    cons: dict[str, Any] = {"clouds": ["aws"], "objective": objective, "search": search}
    if objective != "cost":
        cons["budget_usd_per_month"] = 1e6
    wl = [{"name": n, "model": "llama-3.1-8b", "input_tokens": 500, "output_tokens": 100, "slo": {"ttft_ms": 1000, "tpot_ms": 50},
           **({"requests_per_s": 1.0 + 2 * k} if rated or objective != "throughput" else {})} for k, n in enumerate(names)]  # fmt: skip
    fl = Fleet.model_validate({"workloads": wl, "constraints": cons})
    cs = [cand(insts[i], min(d, insts[i].devices), cap, ttft=ttft, workload=names[w], tp=tp)
          for w, i, d, cap, ttft, tp in rows]  # fmt: skip
    assert [id(x) for x in shortlist(fl, cs, insts)] == [id(x) for x in _reference_shortlist(fl, cs, insts)]


# --- candidates.py ---------------------------------------------------------------------------------------------------


def test_prune_drops_dominated_candidates_per_workload_and_instance() -> None:
    a = cand(BIG, 2, 4.0, ttft=100.0, tpot=10.0)
    more_devices = cand(BIG, 4, 4.0, ttft=100.0, tpot=10.0)
    less_capacity = cand(BIG, 2, 3.9, ttft=100.0, tpot=10.0)
    slower = cand(BIG, 2, 4.0, ttft=100.1, tpot=10.0)
    slower_tpot = cand(BIG, 2, 4.0, ttft=100.0, tpot=10.1)
    trade = cand(BIG, 2, 3.0, ttft=50.0, tpot=10.0)  # less capacity but faster: kept
    other_inst = cand(SMALL, 4, 1.0, ttft=500.0, tpot=50.0)  # worse, but another group
    other_wl = cand(BIG, 8, 1.0, ttft=500.0, tpot=50.0, workload="rag")
    twin = cand(BIG, 2, 4.0, ttft=100.0, tpot=10.0)  # identical to a: the first is kept
    got = prune([more_devices, a, less_capacity, slower, slower_tpot, trade, other_inst, other_wl, twin])
    assert [id(x) for x in got] == [id(a), id(trade), id(other_inst), id(other_wl)]
    assert prune([a]) == [a] and prune([]) == []


def test_prune_keeps_exactly_the_candidates_no_other_of_their_group_dominates() -> None:
    # Brute force over random candidates in a few (workload, instance) groups, with ties on every field and near-ties
    # within LATENCY_TIE, checked against the rules themselves rather than a copy of the implementation.
    rng = np.random.default_rng(5)
    cs = [cand(BIG if rng.random() < 0.5 else SMALL, int(rng.choice([1, 2, 4])), float(rng.choice([1.0, 2.0, 3.0, 3.01])),
               ttft=float(rng.choice([50.0, 50.1, 50.2, 100.0])), tpot=float(rng.choice([5.0, 5.01, 10.0])),
               workload=str(rng.choice(["chat", "rag"])))
          for _ in range(80)]  # fmt: skip
    tie = 1.0 + LATENCY_TIE

    def key(x: Candidate) -> tuple[float, float, float, float]:
        return (x.devices, -x.capacity_rps, x.ttft_ms, x.tpot_ms or 0.0)

    def dominates(x: Candidate, y: Candidate, x_first: bool) -> bool:
        return all(u <= v for u, v in zip(key(x), key(y), strict=True)) and (key(x) != key(y) or x_first)

    def ties(x: Candidate, y: Candidate) -> bool:  # x strictly larger, latencies within the tie
        return (x.devices <= y.devices and x.capacity_rps >= y.capacity_rps
                and (x.devices < y.devices or x.capacity_rps > y.capacity_rps * tie)
                and x.ttft_ms <= y.ttft_ms * tie and (x.tpot_ms or 0.0) <= (y.tpot_ms or 0.0) * tie)  # fmt: skip

    def same(x: Candidate, y: Candidate) -> bool:
        return x.workload == y.workload and x.instance == y.instance

    kept = prune(cs)
    ids = {id(x) for x in kept}
    assert [x for x in cs if id(x) in ids] == kept  # input order
    # every kept candidate is undominated, and no kept one ties another away
    for jy, y in enumerate(cs):
        if id(y) in ids:
            assert not any(same(x, y) and jx != jy and dominates(x, y, jx < jy) for jx, x in enumerate(cs)), y
            assert not any(same(x, y) and x is not y and ties(x, y) for x in kept), y
    # every dropped candidate is dominated outright, or within the tie of a kept one: ties do not chain
    for jy, y in enumerate(cs):
        if id(y) not in ids:
            assert any(same(x, y) and jx != jy and dominates(x, y, jx < jy) for jx, x in enumerate(cs)) or any(
                same(x, y) and ties(x, y) for x in kept
            ), y


def test_prune_ties_do_not_chain() -> None:
    # (10, 100.8), (9, 100.4), (8, 100.0) on the same devices: pairwise each tied the next away, and the 100.0 ms candidate
    # went though the survivor is 0.8% slower. Only a kept candidate ties another away.
    a, b, c = (cand(BIG, 8, cap, ttft=t, tpot=10.0) for cap, t in ((10.0, 100.8), (9.0, 100.4), (8.0, 100.0)))
    assert [id(x) for x in prune([a, b, c])] == [id(a), id(c)]


def test_prune_treats_a_missing_tpot_as_zero() -> None:
    enc = cand(BIG, 1, 2.0, ttft=10.0, tpot=None)
    dec = cand(BIG, 1, 2.0, ttft=10.0, tpot=0.5)
    assert [id(x) for x in prune([dec, enc])] == [id(enc)]


def rows(shape: list[int], device: list[int]) -> _Rows:
    return _Rows(shape=shape, device=device, tp=[1] * len(shape), pp=[1] * len(shape))


def test_screen_keeps_the_cheapest_per_shape_and_the_best_of_each_device() -> None:
    assert screen_mod.SCREEN_PER_SHAPE == 12 and screen_mod.SCREEN_PER_DEVICE == 1
    # shape 0: 14 rows on device 0 (unit 1..14) and one dear row on device 1; shape 1: 2 rows
    r = rows([0] * 15 + [1, 1], [0] * 14 + [1] + [0, 0])
    unit = np.array([float(k + 1) for k in range(14)] + [99.0, 5.0, 4.0])
    assert _screen(r, unit).tolist() == [*range(12), 14, 15, 16]


def test_screen_orders_ties_by_index() -> None:
    r = rows([0] * 14, [0] * 14)
    assert _screen(r, np.ones(14)).tolist() == list(range(12))
    assert _screen(r, np.array([2.0] * 7 + [1.0] * 7)).tolist() == [0, 1, 2, 3, 4, *range(7, 14)]


def test_layouts_powers_of_two_within_the_link_domain() -> None:
    model = CAT.model("llama-3.1-8b")  # 32 heads, 32 layers
    h100 = CAT.device("h100-sxm")
    got = layouts(model, CAT.instance("p5.48xlarge"), h100)
    assert got == [(1, 1), (1, 2), (2, 1), (1, 4), (2, 2), (4, 1), (1, 8), (2, 4), (4, 2), (8, 1)]
    assert layouts(model, CAT.instance("g6e.12xlarge"), CAT.device("l40s")) == [(1, 1), (1, 2), (2, 1), (1, 4), (2, 2), (4, 1)]
    narrow = h100.model_copy(update={"interconnect": h100.interconnect.model_copy(update={"domain_size": 2})})
    assert layouts(model, CAT.instance("p5.48xlarge"), narrow) == [(1, 1), (1, 2), (2, 1), (1, 4), (2, 2), (1, 8), (2, 4)]
    few = model.model_copy(update={"num_heads": 6, "num_layers": 2})
    assert layouts(few, CAT.instance("p5.48xlarge"), h100) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_layouts_of_a_generic_model_ignore_heads_and_layers() -> None:
    generic = next(m for m in CAT.models.values() if m.kind == "generic")
    assert layouts(generic, CAT.instance("g6e.12xlarge"), CAT.device("l40s")) == [(1, 1)]


def test_formats_need_an_fp8_path_for_fp8() -> None:
    h100, a100 = CAT.device("h100-sxm"), CAT.device("a100-80gb-sxm")
    assert "fp8" in h100.peak_tflops and "fp8" not in a100.peak_tflops
    assert formats("fp8", a100) is None
    assert formats("fp8", h100) == cands_mod.storage_formats("fp8", dict(h100.peak_tflops))
    assert formats("bf16", a100) == cands_mod.storage_formats("bf16", dict(a100.peak_tflops)) is not None


def shape(decoder: bool = True, context: float = 4096.0, ttft_s: float = 2.0, tpot_s: float = 0.05) -> Shape:
    return Shape(decoder=decoder, input_mean=1000.0, input_tail=2000.0, output_mean=200.0, context=context, decode_context=1100.0,
                 ttft_s=ttft_s, tpot_s=tpot_s, quantile=0.99, arrival_cv=1.0, tail_share=0.1)  # fmt: skip


def test_reasons_name_memory_tpot_ttft_or_the_slots() -> None:
    # A plan keeps each percentile under 85% of its target (LATENCY_HEADROOM): a row is ruled out against that.
    sh = [shape(context=131072.0), shape(decoder=False, context=512.0), shape(), shape(), shape(), shape(), shape(tpot_s=0.05)]
    idle = SimpleNamespace(
        ttft_s=np.array([0.0, 0.0, 0.1, 0.1, 2.5, 1.0, 1.2]), tpot_s=np.array([0.0, 0.0, 0.01, 0.0625, 0.01, 0.04, 0.044])
    )
    slots = np.array([0.5, 0.0, 8.0, 8.0, 8.0, 8.0, 1.0])
    rate = np.array([5.0, 5.0, 3.0, 0.0, 0.0, 0.0, 0.0])
    room = "less the plan's 15% headroom"  # and what it leaves of the target, the figure a row is judged by
    assert _reasons(idle, slots, sh, rate) == [  # type: ignore[arg-type]
        "does not fit memory at the longest request (131,072 tokens)",
        "does not fit memory at one batch",
        None,
        f"TPOT 62.5 ms > target 50 ms {room} (42.5 ms) even with one request",
        f"TTFT 2,500 ms > target 2,000 ms {room} (1,700 ms) even when idle",
        "cannot meet the targets within its memory slots and token budget",
        f"TPOT 44.0 ms > target 50 ms {room} (42.5 ms) even with one request",  # within the target, not within its headroom
    ]
    # Where the capacity search computed the TTFT percentile at the lightest load, a row that passed the checks of
    # one request names it: the TTFT target is what binds there.
    ttft = np.array([0.0, 0.0, 0.1, 0.1, 2.5, 1.8, 1.6])
    assert _reasons(idle, slots, sh, rate, ttft)[5] == f"TTFT p99 1,800 ms > target 2,000 ms {room} (1,700 ms) even at the lightest load"
    assert _reasons(idle, slots, [*sh[:5], shape(ttft_s=1000.0), sh[6]], rate, np.full(7, 1200.0))[5] == (
        f"TTFT p99 1,200,000 ms > target 1,000,000 ms {room} (850,000 ms) even at the lightest load"
    )  # no exponent form


def test_a_device_is_ruled_out_by_its_closest_layout() -> None:
    from aicap.sizing.plan.alternatives import closest_reason

    def c(reason: str) -> Candidate:
        return replace(cand(ONE), reason=reason)

    one = c("does not fit memory at the longest request (8,350 tokens)")
    tpot = [c("TPOT 224 ms > target 50 ms even with one request"), c("TPOT 65.2 ms > target 50 ms even with one request")]
    vague = c("cannot meet the targets within its memory slots and token budget")  # past the same checks, naming no figure
    ttft = c("TTFT p99 2,170 ms > target 1,500 ms less the plan's 15% headroom even at the lightest load")  # TP8: TPOT met
    screened = c("screened out: its best-case cost per request/s is above the layouts kept for this workload")
    assert closest_reason([one, *tpot, ttft, screened]) == ttft.reason
    assert closest_reason([one, *tpot, vague, ttft]) == ttft.reason and closest_reason([one, *tpot, vague]) == vague.reason
    assert closest_reason([one, *tpot, screened]) == tpot[1].reason  # 65 ms misses by less than 224 ms (not by text order)
    assert closest_reason([one, screened]) == screened.reason
    assert closest_reason([one]) == one.reason and closest_reason([cand(ONE)]) is None
    refused = c("trtllm does not chunk prefill: a prompt of 12,000 tokens exceeds its step budget of 8,192 tokens")
    excluded = c("TensorRT-LLM does not run on graviton4 (aws cpu)")  # no layout was tried at all
    assert closest_reason([excluded, one, refused]) == refused.reason and closest_reason([excluded, one]) == one.reason


def test_binding_names_the_largest_ratio() -> None:
    sh = [shape(ttft_s=2.0, tpot_s=0.05)] * 5 + [shape(ttft_s=float("inf"), tpot_s=float("inf"))]
    m = SimpleNamespace(ttft_s=np.array([1.9, 0.1, 0.1, 0.1, 0.1, 5.0]), tpot_s=np.array([0.01, 0.049, 0.01, 0.01, 0.01, 1.0]),
                        budget_use=np.array([0.1, 0.1, 0.88, 0.1, 0.1, 0.5]), slot_use=np.array([0.1, 0.1, 0.1, 0.99, 0.5, 0.4]),
                        graph_use=np.array([0.0, 0.9, 0.5, 0.97, 0.995, 0.0]))  # fmt: skip
    assert cands_mod.BUDGET_UTILISATION == 0.9 and cands_mod.SLOT_UTILISATION == 1.0
    assert _binding(m, sh) == ["TTFT target", "TPOT target", "token budget per step", "KV-cache slots", "CUDA-graph batch cap",  # type: ignore[arg-type]
                               "token budget per step"]  # fmt: skip
    nan = SimpleNamespace(ttft_s=np.array([np.nan]), tpot_s=np.array([np.nan]), budget_use=np.array([np.nan]), slot_use=np.array([0.2]),
                          graph_use=np.array([0.0]))  # fmt: skip
    assert _binding(nan, sh[:1]) == ["KV-cache slots"]  # type: ignore[arg-type]
    assert _binding(nan, [shape(decoder=False)]) == ["batch memory"]  # type: ignore[arg-type]  # an encoder keeps no KV cache


# --- survivors of the mutation run (docs/mutation.md) ----------------------------------------------------------------


def brute(**cons: Any) -> list[str]:
    f = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True)], "constraints": cons})
    c = f.constraints
    return [i.name for i in sorted(CAT.instances.values(), key=lambda i: (i.cloud, i.name))
            if (not c.clouds or i.cloud in c.clouds) and (not c.regions or i.region in c.regions)
            and (not c.instance_families or i.family in c.instance_families) and (not c.hardware or i.device in c.hardware)
            and c.cap(i.name) != 0 and i.price(c.pricing) is not None]  # fmt: skip


@pytest.mark.parametrize("cons", [{"clouds": ["gcp"]}, {"regions": ["us-central1"]}, {"regions": ["westus3", "us-east-1"]},
                                  {"instance_families": ["g6"]}, {"hardware": ["l4"]}, {"availability": {"a2-highgpu-1g": 0}}])  # fmt: skip
def test_allowed_instances_matches_a_plain_filter(cons: dict[str, Any]) -> None:
    want = brute(**cons)
    f = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True)], "constraints": cons})
    try:
        got = [i.name for i in allowed_instances(f, CAT)[0]]
    except InfeasibleError:
        got = []
    assert got == want


def test_a_region_or_family_no_instance_has_is_an_unknown_id_not_an_empty_fleet() -> None:
    from aicap.sizing.core.errors import UnknownIdError

    for cons in ({"regions": ["europe-west4"]}, {"instance_families": ["zz"]}):
        f = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True)], "constraints": cons})
        with pytest.raises(UnknownIdError):
            allowed_instances(f, CAT)


def test_allowed_instances_unpriced_per_cloud_and_in_the_error() -> None:
    unpriced: dict[str, int] = {}
    for i in CAT.instances.values():
        if i.device == "h200-sxm" and i.price("spot") is None:
            unpriced[i.cloud] = unpriced.get(i.cloud, 0) + 1
    if len(unpriced) < 2 or brute(pricing="spot", hardware=["h200-sxm"]):
        pytest.skip("the catalogue now has spot prices for h200-sxm")
    per_cloud = ", ".join(f"{n} on {c}" for c, n in sorted(unpriced.items()))
    f = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True)],
                              "constraints": {"pricing": "spot", "hardware": ["h200-sxm"]}})  # fmt: skip
    with pytest.raises(InfeasibleError) as e:
        allowed_instances(f, CAT)
    assert str(e.value) == ("no instance type matches the constraints (clouds=any, regions=any, families=any, hardware=['h200-sxm'], "
                            f"pricing=spot); {sum(unpriced.values())} instance types have no published spot price and were excluded "
                            f"({per_cloud})")  # fmt: skip


def test_check_context_skips_generic_models_and_uses_the_input_for_encoders() -> None:
    enc = CAT.model("bge-large-en")
    generic = next(m for m in CAT.models.values() if m.kind == "generic")
    limit = CAT.model("llama-3.1-8b").max_context
    wls = [{"name": "g", "model": generic.id, "requests_per_s": 1.0, "input_tokens": 10**7, "output_tokens": 1},
           {"name": "e", "model": enc.id, "requests_per_s": 1.0, "input_tokens": enc.max_context, "output_tokens": 100},
           {"name": "d", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": limit, "output_tokens": 1}]  # fmt: skip
    with pytest.raises(InputError, match="workload 'd'"):
        check_workloads(Fleet.model_validate({"workloads": wls}), CAT)
    check_workloads(Fleet.model_validate({"workloads": wls[:2]}), CAT)


def test_standalone_cost_small_capacity_and_whole_instance_minimum() -> None:
    assert standalone_cost(cand(SMALL, 1, 0.5), 1.0, SMALL, "on_demand") == 12.0  # 2 replicas of 1 device: one instance
    assert standalone_cost(cand(SMALL, 4, 0.5), 1.0, SMALL, "on_demand") == 24.0  # 2 replicas of 4 devices
    assert standalone_cost(cand(SMALL, 4, 9.0), 0.0, SMALL, "on_demand") == 12.0  # at least one replica, not two


def test_shortlist_unit_cost_counts_devices_and_every_workload() -> None:
    a = cand(SMALL, 1, 1.0)  # $3 per req/s
    bs = [cand(SMALL, 4, 3.0) for _ in range(4)]  # $4 per req/s
    thr = fleet(rate=None, objective="throughput", budget_usd_per_month=1e4)
    assert a in shortlist(thr, [*bs, a], [SMALL])
    two = Fleet.model_validate({"workloads": [fleet().workloads[0].model_dump(exclude_none=True),
                                              {**fleet().workloads[0].model_dump(exclude_none=True), "name": "other"}],
                                "constraints": {"clouds": ["aws"], "single_type": True}})  # fmt: skip
    other = cand(ONE, 1, 1.0, workload="other")
    assert shortlist(two, [a, other], [SMALL, ONE]) == [a, other]
    assert shortlist(two.model_copy(update={"constraints": fleet().constraints}), [other], [ONE]) == [other]


def test_layouts_on_large_instances_and_integer_pp() -> None:
    model = CAT.model("llama-3.1-8b")
    h100 = CAT.device("h100-sxm")
    wide = h100.model_copy(update={"interconnect": h100.interconnect.model_copy(update={"domain_size": 64})})
    for n, layout in ((16, (1, 16)), (32, (2, 16)), (64, (4, 16))):
        got = layouts(model, CAT.instance("p5.48xlarge").model_copy(update={"devices": n}), wide)
        assert layout in got and all(type(tp) is int and type(pp) is int for tp, pp in got)


def test_binding_divides_by_the_budget_utilisation_and_reasons_accept_any_positive_rate() -> None:
    m = SimpleNamespace(ttft_s=np.array([0.1]), tpot_s=np.array([0.035]), budget_use=np.array([0.86]), slot_use=np.array([0.1]),
                        graph_use=np.array([0.0]))  # fmt: skip
    assert _binding(m, [shape()]) == ["token budget per step"]  # type: ignore[arg-type]  # 0.86/0.9 > 0.035/(0.85·0.05)
    # Latencies are measured against the targets less the plan's headroom, where capacity stops: a TPOT at 90% of
    # its target is past 85% of it and binds, though it is below the budget's 0.96 share of the bare target.
    m = SimpleNamespace(ttft_s=np.array([0.1]), tpot_s=np.array([0.045]), budget_use=np.array([0.86]), slot_use=np.array([0.1]),
                        graph_use=np.array([0.0]))  # fmt: skip
    assert _binding(m, [shape()]) == ["TPOT target"]  # type: ignore[arg-type]
    idle = SimpleNamespace(ttft_s=np.array([0.1]), tpot_s=np.array([0.01]))
    assert _reasons(idle, np.array([8.0]), [shape()], np.array([0.5])) == [None]  # type: ignore[arg-type]


def _screen_by_loop(r: _Rows, unit: np.ndarray) -> list[int]:
    """The screen's definition, one row at a time: cheapest first, kept while its shape or (shape, device) has room."""
    keep, per_shape, per_device = [], dict[int, int](), dict[tuple[int, int], int]()
    for k in np.lexsort((np.arange(unit.size), unit)).tolist():
        if not np.isfinite(unit[k]):
            break
        s, d = r.shape[k], r.device[k]
        if per_shape.get(s, 0) < screen_mod.SCREEN_PER_SHAPE or per_device.get((s, d), 0) < screen_mod.SCREEN_PER_DEVICE:
            keep.append(k)
            per_shape[s] = per_shape.get(s, 0) + 1
            per_device[s, d] = per_device.get((s, d), 0) + 1
    return sorted(keep)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 15), st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0, np.inf])), max_size=80))
def test_screen_equals_its_one_row_at_a_time_definition(spec: list[tuple[int, int, float]]) -> None:
    # Up to ~27 rows a shape over 16 devices: the quota of 12 binds, and devices first met beyond it keep one row.
    r = rows([s for s, _, _ in spec], [d for _, d, _ in spec])
    unit = np.array([u for _, _, u in spec], dtype=float)
    assert _screen(r, unit).tolist() == _screen_by_loop(r, unit)


def test_screen_keeps_one_row_per_device_beyond_the_shape_quota() -> None:
    r = rows([0] * 15, [0] * 12 + [1, 1, 1])
    assert _screen(r, np.arange(15, dtype=float)).tolist() == [*range(12), 12]


def test_prune_a_later_candidate_with_more_capacity_dominates() -> None:
    low = cand(BIG, 2, 3.0, ttft=100.0, tpot=10.0)
    high = cand(BIG, 2, 4.0, ttft=100.0, tpot=10.0)
    assert [id(x) for x in prune([low, high])] == [id(high)]


def test_screen_never_keeps_a_row_without_capacity() -> None:
    # Two shapes: infinite units (no capacity even without the TTFT target) are dropped, not used to fill the quota.
    r = rows([0, 0, 0, 1, 1], [0, 1, 2, 0, 1])
    got = _screen(r, np.array([3.0, np.inf, 1.0, np.inf, 2.0]))
    assert got.tolist() == [0, 2, 4]
    assert _screen(r, np.full(5, np.inf)).tolist() == []


def test_thresholds_are_the_screens_last_kept_unit_per_shape_and_device() -> None:
    from aicap.sizing.plan.screen import thresholds as _thresholds

    # shape 0: 13 evaluated rows on device 0 (units 1..13) and one on device 1 (unit 0.5, not yet evaluated)
    r = rows([0] * 14 + [1, 1], [0] * 13 + [1] + [0, 1])
    unit = np.array([float(k + 1) for k in range(13)] + [0.5, 7.0, np.inf])
    done = np.array([True] * 13 + [False] + [True, True])
    by_shape, by_device = _thresholds(r, unit, done)
    assert by_shape.tolist() == [12.0] * 14 + [np.inf, np.inf]  # the 12th smallest evaluated unit; shape 1 has too few
    assert by_device.tolist() == [1.0] * 13 + [np.inf, 7.0, np.inf]  # the best evaluated row of each (shape, device)


def test_layouts_spanning_instances_put_pipeline_stages_across_whole_instances() -> None:
    model, h100 = CAT.model("llama-3.1-405b"), CAT.device("h100-sxm")  # 128 heads, 126 layers
    p5 = CAT.instance("p5.48xlarge")
    inside = layouts(model, p5, h100)
    assert layouts(model, p5, h100, 1) == inside
    # Across 2 and 4 instances: the two widest TP degrees (4, 8), the rest pipeline stages over the network;
    # or one tensor-parallel group over all of them (128 heads divide by 16 and 32).
    assert layouts(model, p5, h100, 2) == [*inside, (4, 4), (8, 2), (16, 1)]
    assert layouts(model, p5, h100, 4) == [*inside, (4, 4), (8, 2), (16, 1), (4, 8), (8, 4), (32, 1)]
    assert layouts(model, p5, h100, 3) == layouts(model, p5, h100, 2)  # only whole powers of two of instances
    # No pipeline deeper than the layers; TP must divide the heads and stay in the fast-link domain, or fill instances.
    shallow = model.model_copy(update={"num_layers": 3})
    assert [x for x in layouts(shallow, p5, h100, 4) if x not in layouts(shallow, p5, h100)] == [(8, 2), (16, 1), (32, 1)]
    odd = model.model_copy(update={"num_heads": 12})  # TP 8 does not divide 12 heads: widest are 2 and 4
    assert [x for x in layouts(odd, p5, h100, 2) if x not in layouts(odd, p5, h100)] == [(2, 8), (4, 4)]
    narrow = h100.model_copy(update={"interconnect": h100.interconnect.model_copy(update={"domain_size": 4})})
    assert layouts(model, p5, narrow, 4) == layouts(model, p5, narrow)  # an instance wider than its link domain never spans
    assert layouts(model, p5.model_copy(update={"network": None}), h100, 4) == inside  # nor one without a sourced network
    l40s = CAT.instance("g6e.12xlarge")
    assert layouts(model, l40s, CAT.device("l40s"), 4) == layouts(model, l40s, CAT.device("l40s"))


def test_screen_keeps_each_shapes_first_row_on_a_device_whatever_other_shapes_hold() -> None:
    # Shapes 0, 1 and 3 fill their quota of 12 on device 0; shape 0 also has one dear row on device 1 and
    # shape 1 one on device 2. Each is its (shape, device)'s first row, so both stay: (shape, device)
    # pairs must not be confused across shapes however the ids combine.
    shapes = [0] * 12 + [1] * 12 + [3] * 12 + [0, 1]
    devices = [0] * 36 + [1, 2]
    unit = np.array([float(k % 12 + 1) for k in range(36)] + [50.0, 60.0])
    assert _screen(rows(shapes, devices), unit).tolist() == list(range(38))


def test_layouts_allow_a_pipeline_as_deep_as_the_layers() -> None:
    model, h100, p5 = CAT.model("llama-3.1-405b"), CAT.device("h100-sxm"), CAT.instance("p5.48xlarge")
    two = model.model_copy(update={"num_layers": 2})
    assert [x for x in layouts(two, p5, h100, 2) if x not in layouts(two, p5, h100)] == [(8, 2), (16, 1)]  # pp = layers is allowed
    assert all(isinstance(tp, int) and isinstance(pp, int) for tp, pp in layouts(model, p5, h100, 4))


def test_formats_take_the_kv_cache_format_given() -> None:
    h100 = CAT.device("h100-sxm")
    assert formats("bf16", h100) == ("bf16", "bf16")
    assert formats("bf16", h100, "fp8") == ("bf16", "fp8")  # a quantised KV cache under bf16 weights


def test_a_candidate_placed_for_another_workload_is_the_dataclass_replace_would_make() -> None:
    import dataclasses

    base = cand(BIG, 2, 3.5, ttft=120.0, tpot=None)
    fast, plain = base.placed("other", SMALL.name), dataclasses.replace(base, workload="other", instance=SMALL.name)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain) and fast.feasible
    assert (base.workload, base.instance) == ("chat", BIG.name)  # the original is untouched
    assert dataclasses.replace(fast, tp=4) == dataclasses.replace(plain, tp=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.tp = 8  # type: ignore[misc]


def test_a_candidate_of_a_row_is_the_one_the_dataclass_would_make() -> None:
    import dataclasses

    from aicap.sizing.plan.candidates import Row

    row = Row(shape=3, device=1, tp=2, pp=4, slots=17, capacity_rps=2.5, ttft_ms=310.0, tpot_ms=None, binding="TPOT target",
              load_fraction=0.5, reason="why not", replica=None)  # type: ignore[arg-type]  # fmt: skip
    fast = Candidate.of_row("h100-sxm", row, "fp8", "bf16")
    plain = Candidate(workload="", instance="", hardware="h100-sxm", tp=2, pp=4, weights_dtype="fp8", kv_dtype="bf16", slots=17,
                      devices=8, capacity_rps=2.5, ttft_ms=310.0, tpot_ms=None, binding="TPOT target", load_fraction=0.5,
                      reason="why not")  # fmt: skip
    assert fast == plain and repr(fast) == repr(plain) and list(vars(fast)) == list(vars(plain))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.tp = 8  # type: ignore[misc]


def test_allowed_instances_keeps_every_type_of_the_regions_and_says_what_owning_leaves_out() -> None:
    region = CAT.instance("p5.48xlarge").region
    got, _ = allowed_instances(fleet(regions=[region]), CAT)
    want = sorted((i for i in CAT.instances.values() if i.cloud == "aws" and i.region == region and i.price("on_demand") is not None),
                  key=lambda i: i.name)  # fmt: skip
    assert [i.name for i in got] == [i.name for i in want] and len(want) > 3
    _, owned = allowed_instances(fleet(pricing="owned", clouds=["on-prem"]), CAT)
    assert owned[0] == ("owned: each instance type is priced as the same hardware bought and run in a colocation facility "
                        "(straight-line depreciation, power at the facility's PUE, space per kW: hardware_db/ownership); it leaves out "
                        "the cost of capital, networking between servers, staff and support")  # fmt: skip


def test_allowed_instances_names_every_pricing_model_missing_and_every_constraint() -> None:
    clouds = sorted({i.cloud for i in CAT.instances.values() if i.cloud != "on-prem"})
    unpriced: dict[str, int] = {}
    for i in CAT.instances.values():
        if i.cloud in clouds and (i.price("spot") is None or i.price("reserved_1y") is None):
            unpriced[i.cloud] = unpriced.get(i.cloud, 0) + 1
    _, warnings = allowed_instances(fleet(clouds=clouds), CAT, ("spot", "reserved_1y"))
    per_cloud = ", ".join(f"{n} on {cloud}" for cloud, n in sorted(unpriced.items()))
    assert warnings == [f"{sum(unpriced.values())} instance types have no published spot or reserved_1y price and were excluded "
                        f"({per_cloud})"]  # fmt: skip
    with pytest.raises(InfeasibleError) as e:
        allowed_instances(fleet(hardware=["h100-sxm"], instance_families=["g6e"]), CAT, ("spot", "on_demand"))
    assert "hardware=['h100-sxm'], pricing=spot/on_demand)" in str(e.value)
    with pytest.raises(InfeasibleError) as e:
        allowed_instances(fleet(instance_families=["g6"], hardware=["h100-sxm"]), CAT)  # known, but none of them together
    assert "families=['g6'], hardware=['h100-sxm'], pricing=on_demand)" in str(e.value)


@pytest.mark.parametrize(("where", "message"), [
    ({"engine": "nope"}, "workload 'chat': unknown engine 'nope'; valid engines: "),
    ({"constraints": {"engine": "nope"}}, "constraints: unknown engine 'nope'; valid engines: "),
])  # fmt: skip
def test_check_context_refuses_an_unknown_engine_naming_the_place_and_the_choices(where: dict[str, Any], message: str) -> None:
    w = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": 100, "output_tokens": 10,
         **{k: v for k, v in where.items() if k != "constraints"}}  # fmt: skip
    f = Fleet.model_validate({"workloads": [w], "constraints": where.get("constraints", {})})
    with pytest.raises(InputError) as e:
        check_workloads(f, CAT)
    assert str(e.value) == message + ", ".join(sorted([*CAT.engines, "generic"]))
    for known in ("generic", sorted(CAT.engines)[0]):  # known engines pass
        check_workloads(Fleet.model_validate({"workloads": [{**w, "engine": known}]}), CAT)


@pytest.mark.parametrize(("extra", "message"), [
    ({"instance_types": ["p5.48xlarg"]}, "unknown instance 'p5.48xlarg': did you mean p5.48xlarge"),
    ({"engine": "vllm", "kv_dtype": "int8"}, "workload 'chat': kv_dtype int8: vLLM keeps the KV cache in fp32, bf16, fp16, fp8"),
    ({"engine": "lmdeploy", "precisions": ["int8"]}, "workload 'chat': precisions int8: LMDeploy (TurboMind) serves weights in"),
    ({"model": "bge-large-en", "slo": {"tpot_ms": 20.0}}, "bge-large-en is an encoder model and emits no tokens, so has no TPOT"),
])  # fmt: skip
def test_check_workloads_names_what_a_workloads_engine_or_instances_cannot_take(extra: dict[str, Any], message: str) -> None:
    w = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": 100, "output_tokens": 10}
    with pytest.raises(InputError, match=re.escape(message)):
        check_workloads(Fleet.model_validate({"workloads": [{**w, **extra}]}), CAT)
    fine = {k: v for k, v in extra.items() if k in ("engine", "model")}  # the same engine or model with what it takes passes
    check_workloads(Fleet.model_validate({"workloads": [{**w, **fine}]}), CAT)


def test_per_item_reads_a_generic_workload_as_one_item_a_request() -> None:
    from aicap.sizing.plan.inputs import per_item

    w = {"name": "v", "model": "resnet-50", "requests_per_s": 10.0}
    token = {**w, "name": "t", "model": "llama-3.1-8b"}
    missing = {**w, "name": "m", "model": "no-such-model"}  # left for check_workloads to name
    for order in ([w, token, missing], [missing, token, w]):  # every workload read, whatever comes before it
        f = per_item(Fleet.model_validate({"workloads": order}), CAT)
        lengths = {x.name: (x.input_tokens, x.output_tokens) for x in f.workloads}
        assert lengths == {"v": (1, 1), "t": (1024, 256), "m": (1024, 256)} and [x.name for x in f.workloads] == [x["name"] for x in order]
        assert per_item(f, CAT) is f
    for bad, says in (({"input_tokens": 2}, "drop input_tokens"), ({"output_tokens": 3}, "drop output_tokens"),
                      ({"input_tokens": 2, "output_tokens": 3}, "drop input_tokens and output_tokens")):  # fmt: skip
        with pytest.raises(InputError, match=f"^workload 'v': resnet-50 is a generic model whose cost is per item \\(one 224x224 RGB "
                                             f"image a request\\), not per token: {says}$"):  # fmt: skip
            per_item(Fleet.model_validate({"workloads": [{**w, **bad}]}), CAT)
    per_item(Fleet.model_validate({"workloads": [{**w, "input_tokens": 1, "output_tokens": 1}]}), CAT)  # a plan's inputs


@pytest.mark.parametrize(("w", "says"), [
    ({"model": "bge-large-en"}, "its longest request (input_tokens) is 1,024 tokens, over bge-large-en's max context of 512; "
                                "input_tokens left at the default (1,024): give the lengths it serves"),
    ({"model": "bge-large-en", "input_tokens": 600}, "its longest request (input_tokens) is 600 tokens, over bge-large-en's max "
                                                     "context of 512"),
    ({"model": "llama-2-7b"}, "its longest request (input_tokens + output_tokens) is 1,280 tokens, over llama-2-7b's max context of "
                              "4,096"),
])  # fmt: skip
def test_a_request_longer_than_the_context_names_the_lengths_left_at_their_defaults(w: dict[str, Any], says: str) -> None:
    base = {"name": "x", "requests_per_s": 1.0, **w}
    if base["model"] == "llama-2-7b":  # both lengths at their defaults, over a context made short for the test
        short = CAT.model("llama-2-7b").model_copy(update={"max_context": 1024})
        cat = SimpleNamespace(**{k: getattr(CAT, k) for k in ("engines", "instances", "devices")}, model=lambda _: short)
        says = (
            says.replace("4,096", "1,024") + "; input_tokens and output_tokens left at the defaults (1,024 and 256): give the "
            "lengths it serves"
        )
    else:
        cat = CAT
    with pytest.raises(InputError) as e:
        check_workloads(Fleet.model_validate({"workloads": [base]}), cat)  # type: ignore[arg-type]
    assert str(e.value) == f"workload 'x': {says}"


def test_a_pricing_model_that_drops_every_accelerator_says_the_plan_has_cpus_only() -> None:
    aws_gpus = [i for i in CAT.instances.values() if i.cloud == "aws" and CAT.device(i.device).kind != "cpu"]
    if any(i.price("spot") is not None for i in aws_gpus):
        pytest.skip("an aws accelerator type has a spot price")
    _, said = allowed_instances(fleet(pricing="spot"), CAT)
    assert len(said) == 1 and said[0].endswith("; none of the accelerator types is left, so the plan can use server CPUs only (size "
                                               "with --pricing on_demand to compare)")  # fmt: skip
    cpus = sorted({i.device for i in CAT.instances.values() if i.cloud == "aws" and CAT.device(i.device).kind == "cpu"})
    _, said = allowed_instances(fleet(pricing="spot", hardware=cpus), CAT)  # CPUs asked for: no accelerator lost to the price
    assert not any("CPUs only" in x for x in said)
    _, said = allowed_instances(fleet(pricing="on_demand"), CAT)
    assert not any("CPUs only" in x for x in said)


def test_slots_need_the_longest_request_to_fit_one_pipeline_stages_share_of_the_kv_cache() -> None:
    # With PP stages a replica runs PP micro-batches, each with 1/PP of the KV cache (the simulator's virtual
    # engines): a request that fits the whole cache but not one share is never served, so the layout has no slots.
    from aicap.sizing.core.deployment import Deployment
    from aicap.sizing.core.engines import engine_for
    from aicap.sizing.perf import memory

    dev = CAT.device("l4")
    e = engine_for(CAT, "vllm")
    dep = Deployment(CAT.model("llama-3.1-8b"), dev, e.efficiency(CAT, dev), e.on(dev), 1, 2, 1, "bf16", "bf16")
    runtime = e.on(dev)

    def most(ctx: float) -> int:
        return int(memory.max_batch(dep, np.array([1.0]), np.array([2.0]), np.array([1000.0]), np.array([ctx]))[0])

    lo, hi = 1000, 131_072  # the longest context at which two such requests fit, and one past it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if most(mid) >= 2 else (lo, mid)
    assert most(lo) >= 2 and most(hi) == 1
    got = cands_mod._slots(dep.model, dep, np.array([1.0, 1.0]), np.array([2.0, 2.0]), [shape(context=lo), shape(context=hi)], 2048.0,
                           runtime)  # fmt: skip
    assert got.tolist() == [float(min(most(lo), runtime.max_batch)), 0.0]
