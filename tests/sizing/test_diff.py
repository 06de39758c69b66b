"""`diff` on small typed plans: statuses, deltas, percentages and the headline that names the largest latency change."""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.plan import Plan
from aicap.sizing.plan.diff import LATENCY_HEADLINE_PCT, diff


def dep(hardware: str, devices: int, instances: float) -> dict[str, Any]:
    return {"instance_type": "x", "hardware": hardware, "tp": 1, "pp": 1, "replicas": devices, "devices": devices, "instances": instances,
            "max_running": 8, "weights_dtype": "bf16", "kv_dtype": "bf16", "requests_per_s": 1.0, "capacity_requests_per_s": 2.0,
            "utilisation": 0.5, "ttft_ms": 1.0, "tpot_ms": 1.0, "usd_per_hour": 1.0, "efficiency_calibrated": True}  # fmt: skip


def wl(name: str, *, ttft: float | None = 100.0, tpot: float | None = 20.0, usd_h: float = 1.0, deps: list[dict[str, Any]] | None = None,
       percentile: str = "p99", per_m: float | None = 2.0, per_req: float | None = None) -> dict[str, Any]:  # fmt: skip
    return {"name": name, "model": "m", "percentile": percentile, "arrival_cv": 1.0, "served_requests_per_s": 1.0,
            "capacity_requests_per_s": 2.0, "ttft_ms": ttft, "tpot_ms": tpot, "ttft_margin_pct": 10.0, "tpot_margin_pct": 20.0,
            "error_band_pct": {}, "usd_per_hour": usd_h, "usd_per_month": round(usd_h * 730, 2), "usd_per_million_output_tokens": per_m,
            "usd_per_million_requests": per_req, "deployments": deps if deps is not None else [dep("l4", 1, 1.0)]}  # fmt: skip


def plan(usd_h: float, workloads: list[dict[str, Any]], version: str = "abc", devices: int = 4, instances: int = 2) -> Plan:
    return Plan.model_validate({
        "generated_by": "aicap test", "catalogue": {"version": version, "price_dates": ["2026-01-01"] * 2, "pricing": "on_demand"},
        "objective": "cost", "hours_per_month": 730.0, "solver": {"status": "optimal", "gap_pct": 0.0},
        "totals": {"usd_per_hour": usd_h, "usd_per_month": round(usd_h * 730, 2), "devices": devices, "devices_used": devices,
                   "instances": instances},
        "instances": [], "workloads": workloads, "inputs": {"workloads": [{"name": "chat", "model": "m", "requests_per_s": 1.0}]},
    })  # fmt: skip


def test_headline_names_the_largest_latency_change_beside_the_money() -> None:
    base = plan(10.0, [wl("chat", ttft=1000.0, tpot=50.0), wl("embed", ttft=40.0, tpot=None)])
    head = plan(12.5, [wl("chat", ttft=1150.0, tpot=40.0), wl("embed", ttft=30.0, tpot=None, percentile="p90")])
    d = diff(base, head)
    # chat TTFT +15% (+150 ms), chat TPOT -20% (-10 ms), embed TTFT -25% (-10 ms): the largest move in ms is chat's TTFT
    # (by percent it was embed's: a 2 -> 17 ms embedding led the headline over a chat's 708 -> 1,460 ms)
    assert d["headline"] == "+$1,825/month (+25%); TTFT p99 of 'chat' 1,000 → 1,150 ms (+15%)"
    assert d["schema_version"] == 2
    assert d["notes"] == ["'embed': its SLO changed (percentile p99 → p90); its latency columns compare different percentiles"]


def test_headline_without_latency_moves_and_for_a_saving() -> None:
    base = plan(10.0, [wl("chat", ttft=1000.0, tpot=50.0)])
    head = plan(7.5, [wl("chat", ttft=1099.0, tpot=45.1)])  # +9.9% and -9.8%: below the 10% headline threshold
    assert diff(base, head)["headline"] == "-$1,825/month (-25%)"


def test_a_latency_move_of_exactly_the_threshold_is_named() -> None:
    assert LATENCY_HEADLINE_PCT == 10.0
    base = plan(10.0, [wl("chat", ttft=1000.0, tpot=50.0)])
    head = plan(10.0, [wl("chat", ttft=1000.0, tpot=55.0)])
    assert diff(base, head)["headline"] == "+$0/month (+0%); TPOT p99 of 'chat' 50 → 55 ms (+10%)"
    head = plan(10.0, [wl("chat", ttft=1000.0, tpot=45.0)])
    assert diff(base, head)["headline"] == "+$0/month (+0%); TPOT p99 of 'chat' 50 → 45 ms (-10%)"


def test_headline_from_a_free_baseline_has_no_percentage() -> None:
    d = diff(plan(0.0, []), plan(2.0, [wl("chat", ttft=1234.0)]))
    assert d["headline"] == "+$1,460/month; 1 workload added"
    assert d["totals"]["delta_pct"] is None


def test_headline_counts_workloads_added_and_removed() -> None:
    two = plan(2.0, [wl("chat", ttft=1000.0), wl("code", ttft=1000.0)])
    assert diff(two, plan(0.0, []))["headline"] == "-$1,460/month (-100%); 2 workloads removed"
    assert diff(plan(2.0, [wl("a", ttft=1000.0)]), two)["headline"] == "+$0/month (+0%); 2 workloads added, 1 removed"


def test_headline_thousands_separators_in_latency() -> None:
    base = plan(1.0, [wl("chat", ttft=1200.0, tpot=10.0)])
    head = plan(1.0, [wl("chat", ttft=25000.4, tpot=10.0)])
    assert diff(base, head)["headline"] == "+$0/month (+0%); TTFT p99 of 'chat' 1,200 → 25,000 ms (+1,983%)"


def test_workload_rows_added_removed_changed_unchanged_in_name_order() -> None:
    base = plan(1.0, [wl("same"), wl("gone"), wl("moved", ttft=100.0)])
    head = plan(1.0, [wl("new"), wl("moved", ttft=120.0), wl("same")])
    rows = diff(base, head)["workloads"]
    assert [(r["workload"], r["status"]) for r in rows] == [
        ("gone", "removed"),
        ("moved", "changed"),
        ("new", "added"),
        ("same", "unchanged"),
    ]
    gone, moved, new, same = rows
    assert gone["head"] is None and gone["base"]["ttft_ms"] == 100.0
    assert new["base"] is None and new["head"]["ttft_ms"] == 100.0 and set(new["delta"]) == set(new["head"])
    # An added or removed workload adds or frees its devices and money (the headline's total is their sum); no latency delta.
    additive = {"instances": 1.0, "devices": 1, "usd_per_hour": 1.0, "usd_per_month": 730.0}
    assert {k: v for k, v in new["delta"].items() if v is not None} == additive
    assert {k: v for k, v in gone["delta"].items() if v is not None} == {k: -v for k, v in additive.items()}
    assert gone["delta_pct"] == {"ttft_ms": None, "tpot_ms": None} == new["delta_pct"]
    assert moved["delta"]["ttft_ms"] == 20.0 and moved["delta_pct"] == {"ttft_ms": 20.0, "tpot_ms": 0.0}
    assert same["delta"]["usd_per_hour"] == 0.0 and same["base"] == same["head"]


def test_workload_numbers_and_deltas() -> None:
    base = plan(1.0, [wl("chat", usd_h=3.0, deps=[dep("h100-sxm", 2, 0.25), dep("l4", 3, 0.3333)], ttft=300.0, tpot=None, per_m=None,
                         per_req=833.33)])  # fmt: skip
    head = plan(1.0, [wl("chat", usd_h=3.25, deps=[dep("h100-sxm", 8, 1.0)], ttft=200.0, tpot=30.0, per_m=1.5, percentile="p95",
                         per_req=902.78)])  # fmt: skip
    row = diff(base, head)["workloads"][0]
    assert row["base"] == {
        "layout": "generic: 2× TP1·PP1 bf16 (KV bf16) batch 8 on x; 3× TP1·PP1 bf16 (KV bf16) batch 8 on x",
        "instances": 0.583, "devices": 5, "hardware": "2×h100-sxm, 3×l4", "usd_per_hour": 3.0, "usd_per_month": 2190.0,
        "usd_per_million_output_tokens": None, "usd_per_million_requests": 833.33, "requests_per_s": None, "percentile": "p99",
        "ttft_target_ms": None,
        "tpot_target_ms": None,
            "ttft_ms": 300.0, "tpot_ms": None, "ttft_margin_pct": 10.0,
        "tpot_margin_pct": 20.0,
    }  # fmt: skip
    assert row["delta"] == {
        "layout": None, "instances": 0.417, "devices": 3, "hardware": None, "usd_per_hour": 0.25, "usd_per_month": 182.5,
        "usd_per_million_output_tokens": None, "usd_per_million_requests": 69.45, "requests_per_s": None, "percentile": None,
        "ttft_target_ms": None,
        "tpot_target_ms": None,
            "ttft_ms": -100.0, "tpot_ms": None, "ttft_margin_pct": 0.0,
        "tpot_margin_pct": 0.0,
    }  # fmt: skip
    assert row["delta_pct"] == {"ttft_ms": -33.3, "tpot_ms": None}


def test_deltas_round_to_four_places_and_percentages_to_one() -> None:
    base = plan(1.0, [wl("chat", ttft=3.0, tpot=7.0, usd_h=0.1)])
    head = plan(1.0, [wl("chat", ttft=4.0, tpot=7.00001, usd_h=0.2)])
    row = diff(base, head)["workloads"][0]
    assert row["delta"]["usd_per_hour"] == 0.1 and row["delta"]["tpot_ms"] == 0.0
    assert row["delta_pct"] == {"ttft_ms": 33.3, "tpot_ms": 0.0}


def test_a_zero_base_latency_has_no_percentage() -> None:
    row = diff(plan(1.0, [wl("chat", ttft=0.0)]), plan(1.0, [wl("chat", ttft=5.0)]))["workloads"][0]
    assert row["delta_pct"]["ttft_ms"] is None and row["delta"]["ttft_ms"] == 5.0


def test_totals_delta_and_percentage() -> None:
    d = diff(plan(8.0, [], devices=4, instances=2), plan(9.0, [], devices=12, instances=3))
    assert d["totals"]["base"]["usd_per_hour"] == 8.0 and d["totals"]["head"]["devices"] == 12
    assert d["totals"]["delta"] == {"usd_per_hour": 1.0, "usd_per_month": 730.0, "devices": 8, "instances": 1}
    assert d["totals"]["delta_pct"] == 12.5
    assert d["headline"] == "+$730/month (+12%)"
    d = diff(plan(3.0, []), plan(2.0, []))
    assert d["totals"]["delta_pct"] == -33.33 and d["headline"] == "-$730/month (-33%)"


def test_a_catalogue_change_is_noted() -> None:
    d = diff(plan(1.0, [], version="aaa"), plan(1.0, [], version="bbb"))
    assert d["notes"] == ["plans were made with different catalogues (aaa → bbb); part of the change may be prices or efficiency factors"]


def test_a_layout_change_alone_is_a_change_and_is_spelled() -> None:
    # Same money, devices and latencies, other weights and batch cap: an operator redeploys, so the diff says so.
    moved = dep("h100-sxm", 2, 0.25) | {"weights_dtype": "fp8", "max_running": 64, "tp": 2, "replicas": 1}
    base = plan(1.0, [wl("chat", deps=[dep("h100-sxm", 2, 0.25)])])
    head = plan(1.0, [wl("chat", deps=[moved])])
    row = diff(base, head)["workloads"][0]
    assert row["status"] == "changed"
    assert row["base"]["layout"] == "generic: 2× TP1·PP1 bf16 (KV bf16) batch 8 on x"
    assert row["head"]["layout"] == "generic: 1× TP2·PP1 fp8 (KV bf16) batch 64 on x"
    assert {k for k, v in row["base"].items() if row["head"][k] != v} == {"layout"}


def test_two_deployments_of_one_device_type_add_up_and_the_engine_is_part_of_the_layout() -> None:
    # "4×h100-sxm" twice collapsed into one "4×h100-sxm" beside devices: 8.
    two = [dep("h100-sxm", 4, 0.5), dep("h100-sxm", 4, 0.5) | {"tp": 2, "replicas": 2}]
    base = plan(1.0, [wl("chat", deps=two)])
    row = diff(base, base)["workloads"][0]
    assert row["base"]["hardware"] == "8×h100-sxm" and row["base"]["devices"] == 8
    eager = plan(1.0, [wl("chat", deps=two) | {"engine": "vllm", "eager": True}])
    graphs = plan(1.0, [wl("chat", deps=two) | {"engine": "vllm"}])
    moved = diff(graphs, eager)["workloads"][0]
    assert moved["status"] == "changed" and moved["base"]["layout"].startswith("vllm: ")
    assert moved["head"]["layout"].startswith("vllm eager: ")


def test_a_kv_cache_format_change_is_a_layout_change() -> None:
    # Only kv_dtype moved (bf16 -> fp8): the export differs (--kv-cache-dtype fp8), so the diff must not say "unchanged".
    base = plan(1.0, [wl("chat")])
    head = plan(1.0, [wl("chat", deps=[dep("l4", 1, 1.0) | {"kv_dtype": "fp8"}])])
    row = diff(base, head)["workloads"][0]
    assert row["status"] == "changed" and "(KV fp8)" in row["head"]["layout"] and "(KV bf16)" in row["base"]["layout"]


def test_expert_parallel_attention_groups_and_speculation_are_spelled_only_where_used() -> None:
    # EP and DPA appear from 2 up (EP1/DPA1 are no layout of their own); speculative decoding names its method.
    wide = dep("h100-sxm", 16, 2.0) | {"tp": 16, "ep": 2, "dp_attention": 2, "replicas": 1}
    plain = dep("h100-sxm", 16, 2.0) | {"tp": 16, "ep": 1, "dp_attention": 1, "replicas": 1}
    base = plan(1.0, [wl("chat", deps=[plain]) | {"engine": "sglang"}])
    head = plan(1.0, [wl("chat", deps=[wide]) | {"engine": "sglang", "speculative": "mtp 1"}])
    row = diff(base, head)["workloads"][0]
    assert row["base"]["layout"] == "sglang: 1× TP16·PP1 bf16 (KV bf16) batch 8 on x"
    assert row["head"]["layout"] == "sglang speculative mtp 1: 1× TP16·PP1·EP2·DPA2 bf16 (KV bf16) batch 8 on x"


def test_the_headline_takes_the_largest_move_in_milliseconds_and_slo_changes_are_noted() -> None:
    def with_slo(w: dict[str, Any], ttft_t: float | None, tpot_t: float | None) -> dict[str, Any]:
        return {**w, "ttft_target_ms": ttft_t, "tpot_target_ms": tpot_t}

    base = plan(10.0, [with_slo(wl("embed", ttft=10.0, tpot=None), None, None), with_slo(wl("chat", ttft=1000.0), 2000.0, 50.0)])
    head = plan(10.0, [with_slo(wl("embed", ttft=200.0, tpot=None), 300.0, None), with_slo(wl("chat", ttft=1150.0), 2000.0, None)])
    d = diff(base, head)
    # embed +190 ms (+1,900%), chat +150 ms (+15%): by milliseconds embed's leads (their sums would rank chat first)
    assert d["headline"] == "+$0/month (+0%); TTFT p99 of 'embed' 10 → 200 ms (+1,900%)"
    assert d["notes"] == ["'chat': its SLO changed (TPOT target ms 50.0 → none)",
                          "'embed': its SLO changed (TTFT target ms none → 300.0)"]  # fmt: skip
    rows = {r["workload"]: r for r in d["workloads"]}
    assert rows["embed"]["base"]["ttft_target_ms"] is None and rows["embed"]["head"]["ttft_target_ms"] == 300.0
    both = plan(10.0, [with_slo(wl("chat", ttft=1000.0, percentile="p90"), 1000.0, 40.0)])
    assert diff(base, both)["notes"][0] == ("'chat': its SLO changed (percentile p99 → p90, TTFT target ms 2000.0 → 1000.0, TPOT "
                                            "target ms 50.0 → 40.0); its latency columns compare different percentiles")  # fmt: skip


def test_a_change_of_demand_is_named() -> None:
    """A workload whose demand moved from 20 to 25 req/s read "changed" with its layout the same and nothing saying why."""
    base = plan(1.0, [{**wl("chat"), "requests_per_s": 20.0}])
    head = plan(1.0, [{**wl("chat", ttft=120.0), "requests_per_s": 25.0}])
    d = diff(base, head)
    row = d["workloads"][0]
    assert row["status"] == "changed" and row["delta"]["requests_per_s"] == 5.0
    assert "'chat': its demand changed (20 req/s → 25 req/s)" in d["notes"]
    assert not any("demand" in n for n in diff(base, base)["notes"])


def test_a_workload_served_as_before_whose_share_of_shared_instances_moved_is_re_split_not_changed() -> None:
    # 'big' kept its layout, devices and latencies when another workload's demand grew, yet read "changed, -$3,300": the
    # instances it shares were split among their workloads again. It is 're-split', with a note saying why its cost moved.
    base = plan(10.0, [wl("big", usd_h=4.0, deps=[dep("h200", 4, 0.5)]), wl("fast", usd_h=6.0)])
    head = plan(12.0, [wl("big", usd_h=3.5, per_m=1.75, deps=[dep("h200", 4, 0.5)]), wl("fast", usd_h=8.5, deps=[dep("l4", 2, 2.0)])])
    d = diff(base, head)
    status = {r["workload"]: r["status"] for r in d["workloads"]}
    assert status == {"big": "re-split", "fast": "changed"}
    (note,) = [n for n in d["notes"] if n.startswith("'big'")]
    assert "served as before" in note and "2,920.00 → 2,555.00 $/month" in note
    big = next(r for r in d["workloads"] if r["workload"] == "big")
    assert big["delta"]["usd_per_month"] == -365.0
    # a latency or layout of its own that moved is a change
    head2 = plan(12.0, [wl("big", usd_h=3.5, ttft=120.0, deps=[dep("h200", 4, 0.5)]), wl("fast", usd_h=8.5)])
    assert {r["workload"]: r["status"] for r in diff(base, head2)["workloads"]}["big"] == "changed"
    assert {r["workload"]: r["status"] for r in diff(base, base)["workloads"]} == {"big": "unchanged", "fast": "unchanged"}
    # a price change is a change: a workload alone on its instances, or plans made with other catalogues or prices
    alone = dict(dep("h200", 4, 1.0), instance_type="solo")
    assert (
        diff(plan(4.0, [wl("big", usd_h=4.0, deps=[alone])]), plan(3.5, [wl("big", usd_h=3.5, deps=[alone])]))["workloads"][0]["status"]
        == "changed"
    )
    repriced = plan(
        12.0, [wl("big", usd_h=3.5, deps=[dep("h200", 4, 0.5)]), wl("fast", usd_h=8.5, deps=[dep("l4", 2, 2.0)])], version="new"
    )
    assert {r["workload"]: r["status"] for r in diff(base, repriced)["workloads"]}["big"] == "changed"
