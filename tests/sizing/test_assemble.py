"""`build_plan` on hand-made candidates: traffic routing, latency at the routed load, and idle devices charged to the bill."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.accuracy import error_bands
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.plan import Alternative, Rejected, Solver
from aicap.sizing.plan.assemble import _margin, build_plan, money, sig, with_alternatives
from aicap.sizing.plan.candidates import Candidate
from aicap.sizing.serve.loaded import Loaded
from aicap.sizing.serve.replica import Replica

CAT = load_catalogue()
# Round prices: the 8×H100 instance at $80/h ($10 per device-hour), the 4×L40S one at $12/h ($3 per device-hour).
BIG = CAT.instance("p5.48xlarge").model_copy(update={"price_usd_per_hour": CAT.instance("p5.48xlarge").price_usd_per_hour.model_copy(
    update={"on_demand": 80.0})})  # fmt: skip
SMALL = CAT.instance("g6e.12xlarge").model_copy(update={"price_usd_per_hour": CAT.instance("g6e.12xlarge").price_usd_per_hour.model_copy(
    update={"on_demand": 12.0})})  # fmt: skip
UNUSED = CAT.instance("g6e.xlarge")
INSTS = [SMALL, BIG, UNUSED]


class FakeGroup:
    """Replicas whose TTFT grows 10 ms and TPOT 1 ms per request/s they carry (from 100 ms and 20 ms)."""

    def at_rate(self, index: Any, rate: Any) -> Any:
        r = np.asarray(rate, dtype=float)
        z = np.zeros_like(r)
        return Loaded(z, r, z, z, 0.1 + 0.01 * r, 0.02 + 0.001 * r, z, z, z)


GROUP = FakeGroup()


def FakeReplica() -> Replica:
    return Replica(GROUP, 0)  # type: ignore[arg-type]


def cand(workload: str, inst: Any, devices: int, capacity: float, decoder: bool = True) -> Candidate:
    return Candidate(workload=workload, instance=inst.name, hardware=inst.device, tp=devices, pp=1, weights_dtype="bf16", kv_dtype="bf16",
                     slots=16, devices=devices, capacity_rps=capacity, ttft_ms=1.0, tpot_ms=1.0 if decoder else None,
                     replica=FakeReplica())  # fmt: skip


def fleet(objective: str = "cost") -> Fleet:
    return Fleet.model_validate({"workloads": [
        {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 10.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 60}},
        {"name": "embed", "model": "bge-large-en", "requests_per_s": 50.0, "input_tokens": 256, "output_tokens": 1,
         "slo": {"ttft_ms": 200}, "precisions": ["fp16"]},
    ], "constraints": {"clouds": ["aws"], "hours_per_month": 700.0, "objective": objective,
                       **({"budget_usd_per_month": 1e6} if objective != "cost" else {})}})  # fmt: skip


C1 = cand("chat", BIG, 2, 4.0)  # 2 replicas: 4 of the 8 H100s, 8 requests/s
C2 = cand("chat", SMALL, 1, 1.0)  # 2 replicas: 2 of the 4 L40S, 2 requests/s
E1 = cand("embed", SMALL, 1, 25.0, decoder=False)  # 1 replica: 1 L40S
COUNTS = {BIG.name: 1, SMALL.name: 1, UNUSED.name: 0}
SERVED = {"chat": 9.0, "embed": 20.0}
NAN = float("nan")


def build(shares: tuple[float, float, float] = (NAN, NAN, NAN), objective: str = "cost", **kw: Any) -> Any:
    chosen = [(C1, 2, shares[0]), (E1, 1, shares[2]), (C2, 2, shares[1])]
    args: dict[str, Any] = {"rejected": {}, "solver": Solver(status="optimal", gap_pct=0.0), "warnings": ["w1"], **kw}
    return build_plan(fleet(objective), CAT, INSTS, chosen, dict(COUNTS), SERVED, args["rejected"], args["solver"], args["warnings"])


def test_idle_devices_are_charged_to_the_workloads_on_that_instance_type() -> None:
    plan = build()
    chat, embed = plan.workload("chat"), plan.workload("embed")
    # Each workload pays for the devices its demand needs: chat's 9 req/s takes both H100 replicas (4 devices, 8 req/s)
    # and one L40S replica (1 req/s) -- its second L40S replica is headroom --, embed's 20 req/s one L40S. H100s: 4 needed
    # of 8, so chat pays the whole $80 (4 devices x $10 x 8/4); L40S: 2 needed of 4, so each pays $3 x 4/2 = $6.
    assert [d.usd_per_hour for d in chat.deployments] == [80.0, 6.0]
    assert [d.usd_per_hour for d in embed.deployments] == [6.0]
    assert (chat.usd_per_hour, embed.usd_per_hour) == (86.0, 6.0)
    assert chat.usd_per_hour + embed.usd_per_hour == plan.totals.usd_per_hour == 92.0
    assert (chat.usd_per_month, embed.usd_per_month, plan.totals.usd_per_month) == (60200.0, 4200.0, 64400.0)
    assert [d.usd_per_month for d in chat.deployments] == [56000.0, 4200.0]  # each deployment's $/h x the fleet's 700 h
    assert [d.ep for d in chat.deployments] == [1, 1]  # tensor parallelism without attention groups: no expert parallelism
    # $86/h over 9 req/s x 200 tokens x 3600 s; an encoder emits no tokens: $6/h over 20 requests/s x 3600 s
    assert (chat.usd_per_million_output_tokens, embed.usd_per_million_output_tokens) == (13.27, None)
    assert (chat.usd_per_million_requests, embed.usd_per_million_requests) == (2654.32, 83.33)


def test_replicas_that_fill_idle_devices_are_headroom_not_a_charge() -> None:
    # A workload whose demand one replica carries, beside extra replicas the planner put on idle devices, was charged
    # for all of them (3x its need for a small model beside a large one): it pays for one, the rest is shared.
    from aicap.sizing.plan.assemble import _needed_devices

    small, big = cand("chat", BIG, 1, 20.55), cand("chat", BIG, 4, 100.0)
    assert _needed_devices([(small, 2), (big, 1)], 20.0) == [1, 0]  # one 1-device replica carries 20 req/s
    assert _needed_devices([(small, 2), (big, 1)], 30.0) == [0, 4]  # the most capacity per device first, then the smallest
    assert _needed_devices([(small, 2), (big, 1)], 130.0) == [2, 4]
    assert _needed_devices([(small, 1)], 50.0) == [1]  # more demand than capacity (no judging by it): every device


def test_instances_and_totals() -> None:
    plan = build()
    got = [(i.instance_type, i.cloud, i.region, i.hardware, i.count, i.devices, i.devices_used, i.usd_per_hour, i.price_date)
           for i in plan.instances]  # fmt: skip
    assert got == [
        ("g6e.12xlarge", "aws", "us-east-1", "l40s", 1, 4, 3, 12.0, SMALL.price_date.isoformat()),
        ("p5.48xlarge", "aws", "us-east-1", "h100-sxm", 1, 8, 4, 80.0, BIG.price_date.isoformat()),
    ]
    t = plan.totals
    assert (t.usd_per_hour, t.usd_per_month, t.devices, t.devices_used, t.instances) == (92.0, 64400.0, 12, 7, 2)


def test_traffic_splits_by_capacity_and_latency_is_taken_at_each_replicas_load() -> None:
    chat = build().workload("chat")
    d1, d2 = chat.deployments
    # capacity 8 + 2 req/s: 9 req/s served splits 7.2 / 1.8, i.e. 3.6 and 0.9 per replica
    assert (d1.requests_per_s, d2.requests_per_s) == (7.2, 1.8)
    assert (d1.capacity_requests_per_s, d2.capacity_requests_per_s, chat.capacity_requests_per_s) == (8.0, 2.0, 10.0)
    assert (d1.utilisation, d2.utilisation) == (0.9, 0.9)
    assert (d1.ttft_ms, d1.tpot_ms, d2.ttft_ms, d2.tpot_ms) == (136.0, 23.6, 109.0, 20.9)
    assert (chat.ttft_ms, chat.tpot_ms) == (136.0, 23.6)  # the worst deployment
    assert (chat.ttft_margin_pct, chat.tpot_margin_pct) == (93.2, 60.7)
    assert (d1.instances, d2.instances) == (0.5, 0.5)
    assert (d1.replicas, d1.devices, d1.tp, d1.pp, d1.max_running, d1.weights_dtype, d1.kv_dtype) == (2, 4, 2, 1, 16, "bf16", "bf16")
    assert (d1.instance_type, d1.hardware, d2.instance_type, d2.hardware) == (BIG.name, "h100-sxm", SMALL.name, "l40s")
    assert d1.efficiency_calibrated is CAT.efficiency_for(CAT.device("h100-sxm")).calibrated


def test_a_single_pass_model_has_no_tpot_and_a_missed_target_a_negative_margin() -> None:
    embed = build().workload("embed")
    (d,) = embed.deployments
    assert (d.requests_per_s, d.utilisation, d.ttft_ms, d.tpot_ms, d.instances) == (20.0, 0.8, 300.0, None, 0.25)
    assert (embed.ttft_ms, embed.tpot_ms, embed.ttft_margin_pct, embed.tpot_margin_pct) == (300.0, None, -50.0, None)
    assert embed.requests_per_s == 50.0 and embed.served_requests_per_s == 20.0


def test_workload_fields_copy_the_fleet() -> None:
    rejected = {"chat": [Rejected(hardware="l4", reason="does not fit memory")]}
    plan = build(rejected=rejected)
    chat, embed = plan.workloads
    assert (chat.name, chat.model, chat.percentile, chat.arrival_cv, chat.requests_per_s) == ("chat", "llama-3.1-8b", "p99", 1.0, 10.0)
    assert (chat.ttft_target_ms, chat.tpot_target_ms, embed.ttft_target_ms, embed.tpot_target_ms) == (2000.0, 60.0, 200.0, None)
    assert chat.rejected_hardware == rejected["chat"] and embed.rejected_hardware == []
    bands = error_bands(under_load=True)  # a plan's promises are latency percentiles at its load
    assert chat.error_band_pct == {k: bands[k] for k in ("ttft", "tpot") if k in bands} and "e2e" not in chat.error_band_pct
    assert bands["tpot"] > error_bands()["tpot"]  # under load the model strays further than without it


def test_plan_header() -> None:
    solver = Solver(status="time_limit", gap_pct=1.5)
    plan = build(solver=solver, warnings=["careful"])
    assert plan.generated_by.startswith("aicap ") and plan.solver == solver and plan.warnings == ["careful"]
    dates = sorted(i.price_date for i in plan.instances)  # the price dates of the instances it buys, not the whole catalogue's
    assert (plan.catalogue.version, plan.catalogue.price_dates, plan.catalogue.pricing) == (CAT.version, (dates[0], dates[-1]), "on_demand")
    assert (plan.objective, plan.hours_per_month, plan.alternatives) == ("cost", 700.0, [])
    assert plan.inputs == fleet()
    alt = [Alternative(hardware="l4", usd_per_month=1.0, delta_usd_per_month=0.5, why="x")]
    assert with_alternatives(plan, alt).alternatives == alt and plan.alternatives == []


def test_latency_objective_routes_by_the_chosen_shares() -> None:
    plan = build(shares=(0.25, 0.75, 1.0), objective="latency")
    d1, d2 = plan.workload("chat").deployments
    # 9 req/s: 2.25 on the H100s (1.125 per replica), 6.75 on the L40S (3.375 per replica)
    assert (d1.requests_per_s, d2.requests_per_s) == (2.25, 6.75)
    assert (d1.ttft_ms, d2.ttft_ms) == (111.2, 133.8)
    assert (d1.utilisation, d2.utilisation) == (0.281, 3.38)
    assert plan.objective == "latency"


def test_a_nan_share_routes_by_capacity() -> None:
    d1, d2 = build(shares=(0.25, NAN, 1.0)).workload("chat").deployments
    assert (d1.requests_per_s, d2.requests_per_s) == (7.2, 1.8)


def test_rounding_helpers() -> None:
    assert sig(123456.7) == 123500.0 and sig(0.000123456, 3) == 0.000123 and sig(2.0) == 2.0
    assert money(1.234) == 1.23 and money(2.675001) == 2.68
    assert str(money(-0.0)) == "0.0"  # never a negative zero in the JSON
    assert _margin(150.0, 200.0) == 25.0 and _margin(1.0, 3.0) == 66.7 and _margin(250.0, 200.0) == -25.0
    assert _margin(None, 200.0) is None and _margin(150.0, None) is None


@pytest.mark.parametrize("served", [0.0])
def test_no_traffic_has_no_cost_per_token(served: float) -> None:
    chosen = [(C1, 1, NAN)]
    plan = build_plan(fleet(), CAT, INSTS, chosen, {BIG.name: 1}, {"chat": served, "embed": served}, {},
                      Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip
    chat = plan.workload("chat")
    assert chat.usd_per_million_output_tokens is None and chat.usd_per_hour == 80.0
    assert plan.workload("embed").deployments == [] and plan.workload("embed").ttft_ms is None
    assert plan.workload("embed").usd_per_hour == 0.0 and plan.workload("embed").capacity_requests_per_s == 0.0


def test_small_capacities_and_single_device_instances() -> None:
    # A replica carrying 0.5 req/s on a 1-device instance bought once: the whole $2 (catalogue price) is charged to it,
    # a 0.2 req/s load is 40% utilisation, and a trickle of output tokens is very dear per million.
    small = cand("embed", UNUSED, 1, 0.5, decoder=False)
    f = fleet()
    plan = build_plan(f, CAT, INSTS, [(small, 1, NAN)], {UNUSED.name: 1}, {"chat": 0.0, "embed": 0.0002}, {},
                      Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip
    (d,) = plan.workload("embed").deployments
    price = float(UNUSED.price("on_demand") or 0.0)
    assert d.usd_per_hour == round(price, 2) and d.requests_per_s == 0.0002 and d.utilisation == 0.0004
    per_m = plan.workload("embed").usd_per_million_requests  # $/h over 0.0002 x 3600 = 0.72 requests/h
    assert per_m == round(price / 0.72 * 1e6, 2)  # from the catalogue price, not the hourly figure rounded to cents


def test_generated_by_names_the_installed_version() -> None:
    from importlib.metadata import version

    assert build().generated_by == f"aicap {version('aicap')}"


def test_throughput_workload_without_a_rate() -> None:
    f = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "input_tokens": 1000, "output_tokens": 200}],
                              "constraints": {"objective": "throughput", "budget_usd_per_month": 1e5}})  # fmt: skip
    plan = build_plan(f, CAT, INSTS, [(C1, 1, NAN)], {BIG.name: 1}, {"chat": 4.0}, {}, Solver(status="optimal", gap_pct=0.0), [])
    assert plan.workload("chat").requests_per_s is None and plan.workload("chat").served_requests_per_s == 4.0


def test_an_instance_type_no_demand_needs_is_still_paid_for() -> None:
    # chat's 3 req/s fit its H100 replicas alone, so its L40S replicas are needed by nobody: charged by need only, the
    # L40S instance was charged to no workload and the workloads fell $12/h short of the bill.
    plan = build_plan(fleet(), CAT, INSTS, [(C1, 2, NAN), (C2, 2, NAN)], {BIG.name: 1, SMALL.name: 1, UNUSED.name: 0},
                      {"chat": 3.0, "embed": 0.0}, {}, Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip
    assert sum(w.usd_per_hour for w in plan.workloads) == plan.totals.usd_per_hour == 92.0
    assert [d.usd_per_hour for d in plan.workload("chat").deployments] == [80.0, 12.0]


def _pools() -> Any:
    w = {"model": "llama-3.1-8b", "requests_per_s": 2.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 60}}  # fmt: skip
    f = Fleet.model_validate({"workloads": [{**w, "name": "chat.prefill", "disaggregated_role": "prefill"},
                                            {**w, "name": "chat.decode", "disaggregated_role": "decode"}],
                              "constraints": {"clouds": ["aws"], "hours_per_month": 700.0}})  # fmt: skip
    pre, dec = cand("chat.prefill", SMALL, 1, 4.0), cand("chat.decode", BIG, 1, 4.0)
    return build_plan(f, CAT, INSTS, [(pre, 1, NAN), (dec, 1, NAN)], {BIG.name: 1, SMALL.name: 1, UNUSED.name: 0},
                      {"chat.prefill": 2.0, "chat.decode": 2.0}, {}, Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip


def test_a_prefill_pool_promises_no_tpot_and_its_decode_pool_prices_both_pools() -> None:
    plan = _pools()
    pre, dec = plan.workload("chat.prefill"), plan.workload("chat.decode")
    assert (pre.disaggregated_role, dec.disaggregated_role) == ("prefill", "decode")
    # The prefill pool emits one token a request: no TPOT to promise, no output tokens to price.
    assert pre.tpot_ms is None and [d.tpot_ms for d in pre.deployments] == [None]
    assert pre.usd_per_million_output_tokens is None and pre.usd_per_million_requests == round(12.0 / (2.0 * 3600) * 1e6, 2)
    assert dec.tpot_ms is not None and dec.deployments[0].tpot_ms is not None
    # Each pool pays its own instance ($12/h of L40S, $80/h of H100); the decode pool's tokens carry both.
    assert (pre.usd_per_hour, dec.usd_per_hour) == (12.0, 80.0)
    assert dec.usd_per_million_output_tokens == round((12.0 + 80.0) / (2.0 * 200 * 3600) * 1e6, 2) == 63.89


def test_data_parallel_attention_is_warned_about_and_a_tiny_rate_prices_to_the_cent() -> None:
    wide = dataclasses.replace(cand("chat", BIG, 2, 4.0), dp_attention=2)
    f = fleet()
    plan = build_plan(f, CAT, INSTS, [(wide, 1, NAN)], {BIG.name: 1, SMALL.name: 0, UNUSED.name: 0}, {"chat": 0.001, "embed": 0.0}, {},
                      Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip
    assert [w for w in plan.warnings if "data-parallel attention" in w] == [
        "workload(s) 'chat': data-parallel attention is costed by the roofline and the simulator, but no published measurement of it "
        "is in the validation set: its error band is the engine family's, unchecked for this layout"
    ]
    assert (plan.workload("chat").deployments[0].dp_attention, plan.workload("chat").deployments[0].ep) == (2, 2)  # experts over all tp
    # $80/h over 0.001 x 200 x 3600 = 720 tokens/h: per million, to the cent (1e6, not a rounding of it)
    assert plan.workload("chat").usd_per_million_output_tokens == round(80.0 / 720.0 * 1e6, 2) == 111111.11
    assert not [w for w in build().warnings if "data-parallel attention" in w]  # one group a replica: no warning


def test_a_workloads_engine_eager_and_speculation_reach_the_plan() -> None:
    w = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 9.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 60}}  # fmt: skip
    chosen = [(C1, 2, NAN), (C2, 2, NAN)]
    counts = {BIG.name: 1, SMALL.name: 1, UNUSED.name: 0}

    def plan_of(**extra: Any) -> Any:
        f = Fleet.model_validate({"workloads": [{**w, **extra}], "constraints": {"clouds": ["aws"]}})
        return build_plan(f, CAT, INSTS, chosen, counts, {"chat": 9.0}, {}, Solver(status="optimal", gap_pct=0.0), [])

    plain = plan_of()
    assert (plain.workload("chat").engine, plain.workload("chat").eager, plain.workload("chat").speculative) == ("generic", False, None)
    assert plan_of(engine="vllm", eager=True).workload("chat").engine == "vllm"
    assert plan_of(engine="vllm", eager=True).workload("chat").eager is True
    spec = plan_of(speculative={"method": "eagle", "draft_tokens": 8})
    assert spec.workload("chat").speculative == "eagle k=8 α=0.7907 (4.20 tokens/step)"
    assert [x for x in spec.warnings if "speculative decoding beyond its published evidence" in x] == [
        "workload 'chat': speculative decoding beyond its published evidence: the published acceptance 0.7907 was measured at 5 draft "
        "token(s); each of the 8 is assumed accepted at that rate; expect fewer tokens per step than planned (give an acceptance you "
        "measured)"
    ]
    assert not [x for x in plan_of(speculative={"method": "eagle", "draft_tokens": 3, "acceptance": 0.8}).warnings if "speculative" in x]


def test_replicas_a_workload_keeps_for_availability_are_its_own_cost() -> None:
    # min_replicas 4 at 0.5 req/s: one replica carries the rate, the other three were counted as free headroom and their
    # devices' cost went to the workload sharing the machine.
    from aicap.sizing.plan.assemble import _needed_devices

    small, big = cand("chat", BIG, 1, 20.55), cand("chat", BIG, 4, 100.0)
    assert _needed_devices([(small, 4)], 0.5, min_replicas=4) == [4]
    assert _needed_devices([(small, 4)], 0.5) == [1]
    assert _needed_devices([(small, 2), (big, 1)], 20.0, min_replicas=2) == [2, 0]  # the floor takes the smallest spare replica
    assert _needed_devices([(small, 1), (big, 1)], 20.0, min_replicas=2) == [1, 4]
    assert _needed_devices([(small, 2)], 20.0, min_replicas=5) == [2]  # no more replicas than the plan runs


def test_the_devices_a_rate_needs_take_the_most_capacity_per_device_first_then_the_smallest_replica_that_finishes() -> None:
    from aicap.sizing.plan.assemble import _needed_devices

    dense, wide = cand("chat", BIG, 1, 12.0), cand("chat", BIG, 4, 40.0)  # 12 and 10 req/s per device
    # dense first (more per device) until one wide replica covers the rest: 12 + 12 + 40 >= 60 (wide first would take 8 devices)
    assert _needed_devices([(dense, 3), (wide, 2)], 60.0) == [2, 4]
    assert _needed_devices([(wide, 2), (dense, 3)], 60.0) == [4, 2]  # the same whatever the listing order
    big, small = cand("chat", BIG, 4, 100.0), cand("chat", BIG, 1, 10.0)
    # a replica whose capacity equals what is left finishes it, and the smallest such replica is taken, whatever its index
    assert _needed_devices([(big, 1), (small, 2)], 10.0) == [0, 1]
    assert _needed_devices([(big, 1), (small, 2)], 20.0) == [4, 0]  # no one small replica carries 20: the denser first
    assert _needed_devices([(big, 2), (small, 3)], 10.0, min_replicas=2) == [0, 2]  # the floor adds the smallest spare replica
    assert _needed_devices([(small, 2)], 0.0) == [2]  # nothing to judge by: every device is the workload's
    assert _needed_devices([(wide, 3)], 40.0, min_replicas=3) == [12]  # a floor over multi-device replicas counts replicas


def test_every_loaded_deployment_on_a_type_pays_its_part_of_what_its_workload_pays_there() -> None:
    # size --verify re-solved to 11 TP8 + 1 TP4 + 2 TP2 replicas on p5.48xlarge at 0.966 utilisation each: the cheapest
    # cover of the rate (TP8s, then the one TP4 replica that finished it) left the TP2 pair out, so it showed $0/h while
    # carrying 1.43 req/s. Here: 2 wide replicas (4 devices, 4 req/s), 2 single-device ones (0.7) and one pair (1.3).
    wide, single, pair = cand("chat", BIG, 4, 4.0), cand("chat", BIG, 1, 0.7), cand("chat", BIG, 2, 1.3)
    plan = build_plan(fleet(), CAT, INSTS, [(wide, 2, NAN), (single, 2, NAN), (pair, 1, NAN)], {BIG.name: 2, SMALL.name: 0, UNUSED.name: 0},
                      {"chat": 9.2, "embed": 0.0}, {}, Solver(status="optimal", gap_pct=0.0), [])  # fmt: skip
    deps = plan.workload("chat").deployments
    assert [d.utilisation for d in deps] == [0.86, 0.86, 0.86]
    # the two H100 instances ($160/h) are chat's alone; its loads occupy 0.86 of 8, 2 and 2 devices, and the cheapest cover
    # of 9.2 req/s needs 8, 0 and 2 of them: split max(occupied, needed) = 8 : 1.72 : 2
    assert [d.usd_per_hour for d in deps] == [round(160 * w / 11.72, 2) for w in (8, 1.72, 2)] == [109.22, 23.48, 27.3]
    assert plan.workload("chat").usd_per_hour == 160.0
