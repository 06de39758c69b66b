"""`diff_periods` on small hand-made period plans: the busiest hour, statuses, deltas, totals, headline and notes.

Plans are built from dictionaries (no sizer), so these run in milliseconds and sit in the mutation-test selection.
"""

from __future__ import annotations

from typing import Any

import pytest

from aicap.sizing.core.period_plan import PeriodPlan
from aicap.sizing.plan.diff import diff_periods

Hour = tuple[float, float, list[int]]  # demand req/s, capacity req/s, replicas per deployment


def dep(name: str, hardware: str) -> dict[str, Any]:
    return {"workload": name, "instance_type": "x", "hardware": hardware, "tp": 1, "pp": 1, "dp_attention": 1, "weights_dtype": "fp8",
            "kv_dtype": "fp8", "devices": 1, "capacity_requests_per_s": 1.0, "ttft_ms": 100.0, "tpot_ms": 20.0}  # fmt: skip


def plan(workloads: dict[str, list[Hour]], *, usd_month: float = 1000.0, version: str = "abc", hardware: dict[str, list[str]] | None = None,
         reserved: list[dict[str, Any]] | None = None, peak_devices: int = 4, static: float = 2000.0,
         promises: list[dict[str, Any]] | None = None, instances: list[list[tuple[str, int]]] | None = None) -> PeriodPlan:  # fmt: skip
    names = list(workloads)
    hours = len(workloads[names[0]]) if names else 1
    hardware = hardware or {}
    held = instances or [[] for _ in range(hours)]
    periods = [{"start_hour": h, "usd_per_hour": 1.0,
                "instances": [{"instance_type": t, "pricing": "on_demand", "count": n} for t, n in held[h]],
                "workloads": [{"name": n, "demand_requests_per_s": workloads[n][h][0], "planned_for_requests_per_s": workloads[n][h][0],
                               "capacity_requests_per_s": workloads[n][h][1], "replicas": workloads[n][h][2]} for n in names]}
               for h in range(hours)]  # fmt: skip
    return PeriodPlan.model_validate({
        "generated_by": "aicap test", "catalogue": {"version": version, "price_dates": ["2026-01-01"] * 2, "pricing": "on_demand"},
        "hours": hours, "pricing_models": ["on_demand"], "lead_time_min": 0.0, "lead_periods": 0, "spot_max_share": 0.5,
        "spot_headroom": 0.2, "hours_per_month": 730.0,
        "deployments": {n: [dep(n, hw) for hw in hardware.get(n, ["l4"])] for n in names}, "autoscaling": [], "periods": periods,
        "workloads": promises or [],
        "totals": {"usd_per_month": usd_month, "static_peak_usd_per_month": static, "on_demand_only_usd_per_month": None,
                   "savings_vs_static_pct": 0.0, "reserved": reserved or [], "peak_devices": peak_devices},
        "solver": {"status": "optimal", "gap_pct": 0.0},
    })  # fmt: skip


def row(d: dict[str, Any], name: str) -> dict[str, Any]:
    (r,) = [r for r in d["workloads"] if r["workload"] == name]
    return r


def test_the_busiest_hour_is_the_first_of_most_demand_and_its_figures_come_from_that_hour() -> None:
    # hours 1 and 2 tie on demand: the first is the busiest; hour 2 runs more replicas (capacity bought ahead)
    hours: list[Hour] = [(2.0, 3.0, [1, 0]), (5.123456, 6.1234567, [1, 1]), (5.123456, 9.0, [2, 1]), (1.0, 3.0, [0, 1])]
    d = diff_periods(plan({"chat": hours}, hardware={"chat": ["l4", "a100", "l4"]}), plan({"chat": hours}))
    base = row(d, "chat")["base"]
    assert base == {"busiest_hour_replicas": 2, "max_replicas": 3, "min_replicas": 1, "busiest_hour_capacity_requests_per_s": 6.1235,
                    "busiest_hour_demand_requests_per_s": 5.1235, "hardware": ["a100", "l4"]}  # fmt: skip
    assert row(d, "chat")["head"]["hardware"] == ["l4"]
    # the busiest hour may come last; replicas then follow it, not the first hour
    late: list[Hour] = [(1.0, 2.0, [1, 0]), (3.0, 4.0, [0, 2])]
    assert row(diff_periods(plan({"chat": late}), plan({"chat": late})), "chat")["base"]["busiest_hour_replicas"] == 2


def test_statuses_and_signed_deltas_with_an_absent_side_counting_as_none() -> None:
    base = plan({"chat": [(4.0, 5.0, [1]), (8.0, 10.0, [2])], "old": [(1.0, 2.0, [1]), (1.0, 2.0, [1])]})
    head = plan({"chat": [(4.0, 5.0, [1]), (12.0, 15.0, [3])], "new": [(2.0, 4.0, [2]), (0.5, 2.0, [1])]})
    d = diff_periods(base, head)
    assert [(r["workload"], r["status"]) for r in d["workloads"]] == [("chat", "changed"), ("new", "added"), ("old", "removed")]
    assert row(d, "chat")["delta"] == {"busiest_hour_replicas": 1, "max_replicas": 1, "min_replicas": 0,
                                       "busiest_hour_capacity_requests_per_s": 5.0, "busiest_hour_demand_requests_per_s": 4.0}  # fmt: skip
    added, removed = row(d, "new"), row(d, "old")
    assert added["base"] is None and removed["head"] is None
    assert added["delta"] == {"busiest_hour_replicas": 2, "max_replicas": 2, "min_replicas": 1,
                              "busiest_hour_capacity_requests_per_s": 4.0, "busiest_hour_demand_requests_per_s": 2.0}  # fmt: skip
    assert removed["delta"] == {"busiest_hour_replicas": -1, "max_replicas": -1, "min_replicas": -1,
                                "busiest_hour_capacity_requests_per_s": -2.0, "busiest_hour_demand_requests_per_s": -1.0}  # fmt: skip
    same = diff_periods(base, base)
    assert [r["status"] for r in same["workloads"]] == ["unchanged", "unchanged"]
    assert all(v == 0 for r in same["workloads"] for v in r["delta"].values())
    # another device type alone is a change
    other = plan({"chat": [(4.0, 5.0, [1]), (8.0, 10.0, [2])], "old": [(1.0, 2.0, [1]), (1.0, 2.0, [1])]}, hardware={"old": ["h100"]})
    assert row(diff_periods(base, other), "old")["status"] == "changed"


def test_totals_headline_and_reservations() -> None:
    res = [{"instance_type": "v6e-8", "pricing": "reserved_1y", "count": 2, "usd_per_month": 1234.567},
           {"instance_type": "a3", "pricing": "reserved_3y", "count": 1, "usd_per_month": 100.0}]  # fmt: skip
    hours: list[Hour] = [(1.0, 2.0, [1])]
    base = plan({"chat": hours}, usd_month=1000.0, peak_devices=4, static=2000.0)
    head = plan({"chat": hours}, usd_month=1234.56, peak_devices=6, static=2500.0, reserved=res)
    d = diff_periods(base, head)
    assert d["schema_version"] == 2 and d["kind"] == "periods"
    assert d["headline"] == "+$235/month (+23%) over the demand profile"
    assert d["totals"]["delta_pct"] == 23.46
    assert d["totals"]["head"] == {"usd_per_month": 1234.56, "reserved_usd_per_month": 1334.57, "static_peak_usd_per_month": 2500.0,
                                   "on_demand_only_usd_per_month": None, "peak_devices": 6}  # fmt: skip
    assert d["totals"]["base"]["reserved_usd_per_month"] == 0
    assert d["totals"]["delta"] == {"usd_per_month": 234.56, "reserved_usd_per_month": 1334.57, "static_peak_usd_per_month": 500.0,
                                    "on_demand_only_usd_per_month": None, "peak_devices": 2}  # fmt: skip
    assert d["reserved"] == {"base": [], "head": ["1× a3 (reserved_3y)", "2× v6e-8 (reserved_1y)"]}
    assert d["notes"] == ["reservations change: none → 1× a3 (reserved_3y), 2× v6e-8 (reserved_1y) ($1,335/month committed for the term, "
                          "whatever the demand)"]  # fmt: skip
    back = diff_periods(head, base)
    assert back["headline"] == "-$235/month (-19%) over the demand profile"
    assert back["notes"] == ["reservations change: 1× a3 (reserved_3y), 2× v6e-8 (reserved_1y) → none ($0/month committed for the term, "
                             "whatever the demand)"]  # fmt: skip
    assert diff_periods(base, base)["headline"] == "+$0/month (+0%) over the demand profile"
    committed = plan({"chat": hours}, reserved=[res[1] | {"usd_per_month": 10.4049}])
    assert diff_periods(committed, base)["totals"]["base"]["reserved_usd_per_month"] == 10.4
    free = plan({"chat": hours}, usd_month=0.0)
    d0 = diff_periods(free, base)
    assert d0["headline"] == "+$1,000/month over the demand profile" and d0["totals"]["delta_pct"] is None


def test_notes_name_another_catalogue_and_another_horizon() -> None:
    day = plan({"chat": [(1.0, 2.0, [1])] * 24}, version="abc")
    week = plan({"chat": [(1.0, 2.0, [1])] * 168}, version="def")
    assert diff_periods(day, day)["notes"] == []
    notes = diff_periods(day, week)["notes"]
    assert notes == ["plans were made with different catalogues (abc → def); part of the change may be prices or efficiency factors",
                     "the plans cover different horizons (24 and 168 hours); monthly totals still compare"]  # fmt: skip


@pytest.mark.parametrize("usd", [999.4, 1000.6])
def test_the_headline_rounds_money_to_whole_dollars(usd: float) -> None:
    hours: list[Hour] = [(1.0, 2.0, [1])]
    d = diff_periods(plan({"chat": hours}, usd_month=0.5), plan({"chat": hours}, usd_month=usd + 0.5))
    assert d["headline"].startswith(f"+${usd:,.0f}/month (+")


def test_a_plan_without_periods_or_deployments_still_diffs() -> None:
    p = plan({"chat": [(1.0, 2.0, [1])]})
    assert diff_periods(p.model_copy(update={"periods": []}), p.model_copy(update={"periods": []}))["workloads"] == []
    # a hand-edited plan that lost a workload's deployments still diffs: no device types to name
    bare = p.model_copy(update={"deployments": {}})
    assert row(diff_periods(bare, p), "chat")["base"]["hardware"] == []


def promise(name: str, ttft: float | None, tpot: float | None, percentile: str = "p99") -> dict[str, Any]:
    return {"name": name, "percentile": percentile, "ttft_ms": ttft, "tpot_ms": tpot, "ttft_target_ms": 1000.0, "tpot_target_ms": 50.0,
            "ttft_margin_pct": None if ttft is None else round(100 * (1000 - ttft) / 1000, 1),
            "tpot_margin_pct": None if tpot is None else round(100 * (50 - tpot) / 50, 1)}  # fmt: skip


def test_the_promised_latency_is_diffed_and_an_absent_side_has_none() -> None:
    hours: list[Hour] = [(1.0, 2.0, [1])]
    base = plan({"chat": hours, "old": hours}, promises=[promise("chat", 400.0, 30.0), promise("old", 100.0, None)])
    head = plan({"chat": hours, "new": hours}, promises=[promise("chat", 520.5, 30.0, "p90"), promise("new", 90.0, 20.0)])
    d = diff_periods(base, head)
    chat = row(d, "chat")
    assert chat["status"] == "changed" and chat["base"]["percentile"] == "p99" and chat["head"]["percentile"] == "p90"
    assert chat["delta"]["ttft_ms"] == 120.5 and chat["delta"]["tpot_ms"] == 0 and "percentile" not in chat["delta"]
    assert row(d, "new")["delta"]["ttft_ms"] is None and row(d, "new")["delta"]["tpot_ms"] is None
    assert row(d, "old")["delta"]["ttft_ms"] is None and row(d, "old")["delta"]["tpot_ms"] is None
    assert row(d, "new")["delta"]["busiest_hour_replicas"] == 1  # counts still count from nothing
    # a plan written before period plans stated their promises has no latency figures, and diffs as before
    assert "ttft_ms" not in row(diff_periods(plan({"chat": hours}), plan({"chat": hours})), "chat")["base"]


def test_each_workloads_chargeback_is_diffed_and_an_absent_workload_costs_nothing() -> None:
    hours: list[Hour] = [(1.0, 2.0, [1])]

    def costed(name: str, usd: float) -> dict[str, Any]:
        return {**promise(name, 100.0, 20.0), "usd_per_month": usd}

    base = plan({"chat": hours, "old": hours}, promises=[costed("chat", 600.0), costed("old", 150.25)])
    head = plan({"chat": hours, "new": hours}, promises=[costed("chat", 700.5), costed("new", 200.0)])
    d = diff_periods(base, head)
    assert (row(d, "chat")["base"]["usd_per_month"], row(d, "chat")["head"]["usd_per_month"]) == (600.0, 700.5)
    assert row(d, "chat")["delta"]["usd_per_month"] == 100.5 and row(d, "chat")["status"] == "changed"
    assert row(d, "new")["delta"]["usd_per_month"] == 200.0 and row(d, "old")["delta"]["usd_per_month"] == -150.25
    # a side written before the chargeback states none: no delta to give, and the key still appears in the delta
    stale = plan({"chat": hours}, promises=[promise("chat", 100.0, 20.0)])
    d = diff_periods(stale, plan({"chat": hours}, promises=[costed("chat", 700.5)]))
    assert "usd_per_month" not in row(d, "chat")["base"] and row(d, "chat")["delta"]["usd_per_month"] is None
