"""Policy limits on small typed plans: every limit breached by the least amount, passed at the limit, and its row."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aicap.sizing.core.errors import InputError, UnknownIdError
from aicap.sizing.core.plan import Plan
from aicap.sizing.plan.policy import Limit, Policy, Row, blocking, check_ids, evaluate, verdict


def wl(name: str, usd_per_month: float = 0.0, *, ttft: float | None = None, tpot: float | None = None, ttft_margin: float | None = None,
       tpot_margin: float | None = None, percentile: str = "p99") -> dict[str, Any]:  # fmt: skip
    return {"name": name, "model": "m", "percentile": percentile, "arrival_cv": 1.0, "served_requests_per_s": 1.0,
            "capacity_requests_per_s": 1.0, "ttft_ms": ttft, "tpot_ms": tpot, "ttft_margin_pct": ttft_margin,
            "tpot_margin_pct": tpot_margin, "error_band_pct": {}, "usd_per_hour": round(usd_per_month / 730.0, 2),
            "usd_per_month": usd_per_month, "deployments": []}  # fmt: skip


def inst(name: str, cloud: str, hardware: str, count: int, per_instance: int) -> dict[str, Any]:
    return {"instance_type": name, "cloud": cloud, "region": "r", "hardware": hardware, "count": count, "devices": count * per_instance,
            "devices_used": count * per_instance, "usd_per_hour": 1.0, "price_date": "2026-01-01"}  # fmt: skip


def plan(total: float = 0.0, workloads: list[dict[str, Any]] | None = None, instances: list[dict[str, Any]] | None = None) -> Plan:
    return Plan.model_validate({
        "generated_by": "aicap test", "catalogue": {"version": "abc", "price_dates": ["2026-01-01", "2026-01-01"], "pricing": "on_demand"},
        "objective": "cost", "hours_per_month": 730.0, "solver": {"status": "optimal", "gap_pct": 0.0},
        "totals": {"usd_per_hour": round(total / 730.0, 2), "usd_per_month": total, "devices": 0, "devices_used": 0, "instances": 0},
        "instances": instances or [], "workloads": workloads or [],
        "inputs": {"workloads": [{"name": "chat", "model": "m", "requests_per_s": 1.0}]},
    })  # fmt: skip


def policy(**limits: Any) -> Policy:
    return Policy.model_validate({"schema_version": 1, "limits": limits})


def one(rows: list[Row]) -> Row:
    assert len(rows) == 1
    return rows[0]


# --- money -----------------------------------------------------------------------------------------------------------


def test_fleet_budget_breached_by_one_cent_fails() -> None:
    row = one(evaluate(policy(max_usd_per_month={"value": 60000.0}), plan(60000.01)))
    assert row == Row("max_usd_per_month", "fail", "fail", 60000.01, 60000.0, "fleet $60,000.01/month vs limit $60,000.00")


def test_fleet_budget_met_exactly_passes() -> None:
    row = one(evaluate(policy(max_usd_per_month={"value": 60000.0, "action": "warn"}), plan(60000.0)))
    assert row == Row("max_usd_per_month", "warn", "pass", 60000.0, 60000.0, "fleet $60,000/month vs limit $60,000")


def test_fleet_budget_actual_is_rounded_to_cents() -> None:
    p = plan(1234.5).model_copy(update={"totals": plan(1234.5).totals.model_copy(update={"usd_per_month": 1234.5678})})
    row = one(evaluate(policy(max_usd_per_month={"value": 2000.0}), p))
    assert row.actual == 1234.57 and row.status == "pass" and row.detail == "fleet $1,235/month vs limit $2,000"


def test_per_workload_cap_names_every_workload_over_it() -> None:
    p = plan(0.0, [wl("a", 30000.01), wl("b", 30000.0), wl("c", 45000.0)])
    row = one(evaluate(policy(max_usd_per_month_per_workload={"value": 30000.0, "action": "warn"}), p))
    assert row == Row("max_usd_per_month_per_workload", "warn", "warn", 45000.0, 30000.0, "over the limit: a, c")


def test_per_workload_cap_within_reports_the_largest() -> None:
    p = plan(0.0, [wl("a", 100.0), wl("b", 2500.4), wl("c", 30000.0)])
    row = one(evaluate(policy(max_usd_per_month_per_workload={"value": 30000.0}), p))
    assert row == Row("max_usd_per_month_per_workload", "fail", "pass", 30000.0, 30000.0, "largest: c $30,000")
    p = plan(0.0, [wl("a", 100.0), wl("b", 2500.4)])
    assert one(evaluate(policy(max_usd_per_month_per_workload={"value": 3000.0}), p)).detail == "largest: b $2,500"


def test_per_workload_cap_without_workloads_adds_no_row() -> None:
    assert evaluate(policy(max_usd_per_month_per_workload={"value": 1.0}), plan(5.0)) == []


def test_increase_limits_need_a_baseline_and_without_one_are_unchecked_rows() -> None:
    pol = policy(max_increase_usd_per_month={"value": 1.0}, max_increase_pct={"value": 1.0, "action": "warn"})
    rows = evaluate(pol, plan(1000.0))
    assert [(r.limit, r.status, r.action) for r in rows] == [("max_increase_usd_per_month", "unchecked", "fail"),
                                                             ("max_increase_pct", "unchecked", "warn")]  # fmt: skip
    assert all(r.detail == "needs a baseline plan (--baseline)" and r.threshold == 1.0 for r in rows)
    assert verdict(rows) == "pass"  # the verdict judges what was checked; a gate refuses the unchecked fail limit:
    assert [r.limit for r in blocking(rows)] == ["max_increase_usd_per_month"]


def test_increase_in_dollars_breached_by_one_cent() -> None:
    pol = policy(max_increase_usd_per_month={"value": 5000.0})
    row = one(evaluate(pol, plan(15000.01), plan(10000.0)))
    assert row == Row("max_increase_usd_per_month", "fail", "fail", 5000.01, 5000.0, "$10,000 → $15,000/month")
    assert one(evaluate(pol, plan(15000.0), plan(10000.0))).status == "pass"


def test_increase_in_percent_at_and_over_the_limit() -> None:
    pol = policy(max_increase_pct={"value": 10.0, "action": "warn"})
    assert one(evaluate(pol, plan(1100.0), plan(1000.0))) == Row(
        "max_increase_pct", "warn", "pass", 10.0, 10.0, "+10.0% against the baseline"
    )
    row = one(evaluate(pol, plan(1100.2), plan(1000.0)))
    assert row == Row("max_increase_pct", "warn", "warn", 10.02, 10.0, "+10.0% against the baseline")
    assert one(evaluate(pol, plan(900.0), plan(1000.0))).detail == "-10.0% against the baseline"


def test_increase_rows_come_in_order_dollars_then_percent() -> None:
    pol = policy(max_increase_pct={"value": 50.0}, max_increase_usd_per_month={"value": 50.0})
    rows = evaluate(pol, plan(300.0), plan(200.0))
    assert [(r.limit, r.status, r.actual) for r in rows] == [
        ("max_increase_usd_per_month", "fail", 100.0),
        ("max_increase_pct", "pass", 50.0),
    ]


def test_increase_from_a_free_baseline_is_infinite_and_from_nothing_to_nothing_zero() -> None:
    pol = policy(max_increase_pct={"value": 1000.0})
    assert one(evaluate(pol, plan(10.0), plan(0.0))).status == "fail"
    assert one(evaluate(pol, plan(10.0), plan(0.0))).actual == float("inf")
    assert one(evaluate(pol, plan(0.0), plan(0.0))) == Row("max_increase_pct", "fail", "pass", 0.0, 1000.0, "+0.0% against the baseline")


# --- devices, percentile, clouds, hardware ---------------------------------------------------------------------------


def test_max_devices_sums_instances_of_one_device_type() -> None:
    p = plan(0.0, instances=[inst("p5.48xlarge", "aws", "h100-sxm", 3, 8), inst("a3-highgpu-8g", "gcp", "h100-sxm", 1, 8),
                             inst("g6e.xlarge", "aws", "l40s", 40, 1)])  # fmt: skip
    row = one(evaluate(policy(max_devices={"value": {"h100-sxm": 31, "l4": 0}}), p))
    assert row == Row("max_devices", "fail", "fail", {"h100-sxm": 32, "l40s": 40}, {"h100-sxm": 31, "l4": 0}, "h100-sxm: 32 > 31")
    row = one(evaluate(policy(max_devices={"value": {"h100-sxm": 32, "l40s": 40}}), p))
    assert (row.status, row.detail) == ("pass", "within limits")


def test_required_percentile_names_weaker_targets() -> None:
    p = plan(0.0, [wl("a", percentile="p90"), wl("b", percentile="p99"), wl("c", percentile="p50"), wl("d", percentile="p95")])
    row = one(evaluate(policy(required_percentile={"value": "p95"}), p))
    assert row == Row("required_percentile", "fail", "fail", ["p50", "p90", "p95", "p99"], "p95", "targets below p95: a, c")
    row = one(evaluate(policy(required_percentile={"value": "p90"}), plan(0.0, [wl("a", percentile="p90"), wl("b", percentile="p99")])))
    assert (row.status, row.actual, row.detail) == ("pass", ["p90", "p99"], "all targets at or above")


def test_required_percentile_orders_every_percentile() -> None:
    order = ["p50", "p90", "p95", "p99"]
    for k, need in enumerate(order):
        for j, have in enumerate(order):
            row = one(evaluate(policy(required_percentile={"value": need}), plan(0.0, [wl("a", percentile=have)])))
            assert row.status == ("fail" if j < k else "pass"), (need, have)


def test_allowed_clouds_and_hardware() -> None:
    p = plan(0.0, instances=[inst("x", "gcp", "l4", 1, 1), inst("y", "aws", "h100-sxm", 1, 8), inst("z", "azure", "l4", 2, 1)])
    rows = evaluate(policy(allowed_clouds={"value": ["aws", "gcp"], "action": "warn"}, allowed_hardware={"value": ["l4"]}), p)
    assert rows == [
        Row("allowed_clouds", "warn", "warn", ["aws", "azure", "gcp"], ["aws", "gcp"], "not allowed: azure"),
        Row("allowed_hardware", "fail", "fail", ["h100-sxm", "l4"], ["l4"], "not allowed: h100-sxm"),
    ]
    rows = evaluate(policy(allowed_clouds={"value": ["aws", "gcp", "azure"]}, allowed_hardware={"value": ["l4", "h100-sxm"]}), p)
    assert [(r.status, r.detail) for r in rows] == [("pass", "ok"), ("pass", "ok")]


# --- latency ---------------------------------------------------------------------------------------------------------


def test_latency_limits_strictly_over_breach() -> None:
    p = plan(0.0, [wl("a", ttft=2000.0, tpot=80.01), wl("b", ttft=2000.5, tpot=10.0), wl("c")])
    rows = evaluate(policy(max_ttft_ms={"value": 2000.0}, max_tpot_ms={"value": 80.0, "action": "warn"}), p)
    assert rows == [
        Row("max_ttft_ms", "fail", "fail", 2000.5, 2000.0, "over the limit: b"),
        Row("max_tpot_ms", "warn", "warn", 80.01, 80.0, "over the limit: a"),
    ]


def test_latency_limits_within_report_the_worst() -> None:
    p = plan(0.0, [wl("a", ttft=1234.56, tpot=40.0), wl("b", ttft=99.0, tpot=79.94), wl("c")])
    rows = evaluate(policy(max_ttft_ms={"value": 2000.0}, max_tpot_ms={"value": 80.0}), p)
    assert rows == [
        Row("max_ttft_ms", "fail", "pass", 1234.56, 2000.0, "worst: a 1,234.6 ms"),
        Row("max_tpot_ms", "fail", "pass", 79.94, 80.0, "worst: b 79.9 ms"),
    ]


def test_latency_limits_without_values() -> None:
    rows = evaluate(policy(max_tpot_ms={"value": 80.0}, min_slo_margin_pct={"value": 5.0}), plan(0.0, [wl("embed", ttft=5.0)]))
    assert rows == [
        Row("max_tpot_ms", "fail", "pass", None, 80.0, "no values"),
        Row("min_slo_margin_pct", "fail", "pass", None, 5.0, "no targets"),
    ]


def test_slo_margin_below_the_minimum_names_each_thin_target() -> None:
    p = plan(0.0, [wl("a", ttft_margin=9.9, tpot_margin=10.0), wl("b", ttft_margin=50.0, tpot_margin=-3.0), wl("c", ttft_margin=12.0)])
    row = one(evaluate(policy(min_slo_margin_pct={"value": 10.0, "action": "warn"}), p))
    assert row == Row("min_slo_margin_pct", "warn", "warn", -3.0, 10.0, "below the margin: a ttft, b tpot")


def test_slo_margin_at_the_minimum_reports_the_thinnest() -> None:
    p = plan(0.0, [wl("a", ttft_margin=10.0, tpot_margin=10.04), wl("b", ttft_margin=50.0), wl("c", tpot_margin=22.0)])
    row = one(evaluate(policy(min_slo_margin_pct={"value": 10.0}), p))
    assert row == Row("min_slo_margin_pct", "fail", "pass", 10.0, 10.0, "thinnest: a ttft 10.0%")


def test_latency_increase_against_a_baseline() -> None:
    base = plan(0.0, [wl("a", ttft=1000.0, tpot=50.0), wl("b", ttft=200.0, tpot=40.0), wl("gone", ttft=1.0, tpot=1.0), wl("e", ttft=9.0)])
    head = plan(0.0, [wl("a", ttft=1200.0, tpot=60.01), wl("b", ttft=240.2, tpot=40.0), wl("new", ttft=9e9, tpot=9e9), wl("e", ttft=90.0)])
    pol = policy(max_ttft_increase_pct={"value": 20.0, "action": "warn"}, max_tpot_increase_pct={"value": 20.0})
    rows = evaluate(pol, head, base)
    assert rows == [
        Row("max_ttft_increase_pct", "warn", "warn", 900.0, 20.0, "b 200 → 240 ms; e 9 → 90 ms"),
        Row("max_tpot_increase_pct", "fail", "fail", 20.02, 20.0, "a 50 → 60 ms"),
    ]


def test_latency_increase_within_reports_the_largest() -> None:
    base = plan(0.0, [wl("a", ttft=1000.0, tpot=50.0), wl("b", ttft=200.0, tpot=40.0)])
    head = plan(0.0, [wl("a", ttft=1200.0, tpot=45.0), wl("b", ttft=230.0, tpot=30.0)])
    rows = evaluate(policy(max_ttft_increase_pct={"value": 20.0}, max_tpot_increase_pct={"value": 0.0}), head, base)
    assert rows == [
        Row("max_ttft_increase_pct", "fail", "pass", 20.0, 20.0, "largest: a +20.0%"),
        Row("max_tpot_increase_pct", "fail", "pass", -10.0, 0.0, "largest: a -10.0%"),
    ]


def test_latency_increase_rounds_to_two_decimals_and_without_common_workloads() -> None:
    base = plan(0.0, [wl("a", ttft=300.0, tpot=30.0)])
    row = one(evaluate(policy(max_ttft_increase_pct={"value": 50.0}), plan(0.0, [wl("a", ttft=301.0)]), base))
    assert row.actual == 0.33 and row.detail == "largest: a +0.3%"
    row = one(evaluate(policy(max_tpot_increase_pct={"value": 5.0}), plan(0.0, [wl("z", ttft=1.0, tpot=1.0)]), base))
    assert row == Row("max_tpot_increase_pct", "fail", "pass", None, 5.0, "no common workloads")


def test_latency_increase_without_baseline_is_unchecked() -> None:
    rows = evaluate(policy(max_ttft_increase_pct={"value": 1.0}), plan(0.0, [wl("a", ttft=1.0)]))
    assert [(r.limit, r.status) for r in rows] == [("max_ttft_increase_pct", "unchecked")] and blocking(rows) == rows


def test_rows_follow_the_documented_order() -> None:
    p = plan(10.0, [wl("a", 10.0, ttft=1.0, tpot=1.0, ttft_margin=50.0, tpot_margin=50.0)], [inst("x", "aws", "l4", 1, 1)])
    lim = {k: {"value": v} for k, v in {
        "max_tpot_increase_pct": 1.0, "max_ttft_increase_pct": 1.0, "min_slo_margin_pct": 1.0, "max_tpot_ms": 1.0, "max_ttft_ms": 1.0,
        "allowed_hardware": ["l4"], "allowed_clouds": ["aws"], "required_percentile": "p50", "max_devices": {"l4": 1},
        "max_increase_pct": 1.0, "max_increase_usd_per_month": 1.0, "max_usd_per_month_per_workload": 20.0, "max_usd_per_month": 20.0,
    }.items()}  # fmt: skip
    rows = evaluate(policy(**lim), p, p)
    assert [r.limit for r in rows] == [
        "max_usd_per_month", "max_usd_per_month_per_workload", "max_increase_usd_per_month", "max_increase_pct", "max_devices",
        "required_percentile", "allowed_clouds", "allowed_hardware", "max_ttft_ms", "max_tpot_ms", "min_slo_margin_pct",
        "max_ttft_increase_pct", "max_tpot_increase_pct",
    ]  # fmt: skip
    assert verdict(rows) == "pass"


# --- verdict and ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [((), "pass"), (("pass",), "pass"), (("pass", "warn"), "warn"), (("warn", "fail", "pass"), "fail"), (("fail",), "fail")],
)
def test_verdict(statuses: tuple[str, ...], expected: str) -> None:
    assert verdict([Row("x", "fail", s, None, None, "") for s in statuses]) == expected


def test_check_ids_accepts_known_and_names_unknown_devices() -> None:
    known = {"h100-sxm", "l4"}
    check_ids(policy(max_devices={"value": {"h100-sxm": 1}}, allowed_hardware={"value": ["l4"]}), known, "p.yaml")
    check_ids(policy(), known, "p.yaml")
    with pytest.raises(InputError) as e:
        check_ids(policy(max_devices={"value": {"h100-sxm": 1, "h200": 2}}), known, "p.yaml")
    assert str(e.value) == f"p.yaml: limits.max_devices: {UnknownIdError('hardware', 'h200', ['h100-sxm', 'l4'])}"
    with pytest.raises(InputError) as e:
        check_ids(policy(allowed_hardware={"value": ["l4", "l40"]}), known, "pol")
    assert str(e.value) == f"pol: limits.allowed_hardware: {UnknownIdError('hardware', 'l40', ['h100-sxm', 'l4'])}"


def test_check_ids_names_the_line_of_an_unknown_device() -> None:
    """Schema errors named file:line; an unknown device in a policy named only the file."""
    known = {"h100-sxm", "l4"}
    text = (
        "schema_version: 1\nlimits:\n  max_devices:\n    value:\n      h100-sxm: 1\n      h200: 2\n  allowed_hardware: {value: [l4, l40]}\n"
    )
    pol = Policy.model_validate(yaml.safe_load(text))
    with pytest.raises(InputError, match=r"^p\.yaml:6: limits\.max_devices: unknown hardware 'h200'"):
        check_ids(pol, known, "p.yaml", text)
    text = "schema_version: 1\nlimits:\n  allowed_hardware:\n    value:\n      - l4\n      - l40\n"
    with pytest.raises(InputError, match=r"^p\.yaml:6: limits\.allowed_hardware: unknown hardware 'l40'"):
        check_ids(Policy.model_validate(yaml.safe_load(text)), known, "p.yaml", text)


# --- survivors of the mutation run (docs/mutation.md) ----------------------------------------------------------------


def test_lists_in_details_are_comma_separated() -> None:
    p = plan(0.0, [wl("a", ttft=5.0), wl("b", ttft=6.0)],
             [inst("x", "azure", "l4", 3, 1), inst("y", "oci", "h200", 2, 1), inst("z", "aws", "l40s", 1, 1)])  # fmt: skip
    rows = evaluate(policy(max_ttft_ms={"value": 1.0}, max_devices={"value": {"l4": 1, "h200": 1}}, allowed_clouds={"value": ["aws"]},
                           allowed_hardware={"value": ["l40s"]}), p)  # fmt: skip
    assert {r.limit: r.detail for r in rows} == {
        "max_ttft_ms": "over the limit: a, b", "max_devices": "l4: 3 > 1, h200: 2 > 1", "allowed_clouds": "not allowed: azure, oci",
        "allowed_hardware": "not allowed: h200, l4",
    }  # fmt: skip


def test_increases_round_to_cents_and_hundredths_of_a_percent() -> None:
    pol = policy(max_increase_usd_per_month={"value": 1.0}, max_increase_pct={"value": 1.0})
    rows = evaluate(pol, plan(1000.1234), plan(1000.0))
    assert [r.actual for r in rows] == [0.12, 0.01]


def test_latency_increase_skips_a_metric_missing_on_either_side() -> None:
    base = plan(0.0, [wl("a", ttft=100.0, tpot=None), wl("b", ttft=100.0, tpot=10.0)])
    head = plan(0.0, [wl("a", ttft=100.0, tpot=10.0), wl("b", ttft=100.0, tpot=None)])
    assert one(evaluate(policy(max_tpot_increase_pct={"value": 1.0}), head, base)).detail == "no common workloads"


def test_a_bare_threshold_is_a_fail_limit() -> None:
    # "max_usd_per_month: 50000" was refused with pydantic's "instance of Limit[float]"
    pol = Policy.model_validate({"limits": {"max_usd_per_month": 50000.0, "allowed_clouds": ["aws"],
                                            "max_ttft_ms": {"value": 900.0, "action": "warn"}}})  # fmt: skip
    assert pol.limits.max_usd_per_month == Limit[float](value=50000.0, action="fail")
    assert pol.limits.allowed_clouds is not None and pol.limits.allowed_clouds.value == ["aws"]
    assert pol.limits.max_ttft_ms is not None and pol.limits.max_ttft_ms.action == "warn"


def _verified(*holds: bool) -> Plan:
    vw = [{"workload": f"w{k}", "percentile": "p99", "promised_ttft_ms": 100.0, "simulated_ttft_ms": 90.0 if ok else 300.0,
           "holds": ok} for k, ok in enumerate(holds)]  # fmt: skip
    return plan(100.0).model_copy(update={"verification": Plan.model_validate(
        {**plan(100.0).model_dump(), "verification": {"requests_per_deployment": 100, "seed": 0, "resolves": 0,
                                                      "holds": all(holds), "workloads": vw}}).verification})  # fmt: skip


def test_a_plan_whose_own_verification_missed_fails_whatever_the_limits() -> None:
    rows = evaluate(policy(max_usd_per_month={"value": 1000.0}), _verified(True, False, False))
    assert [r.limit for r in rows] == ["max_usd_per_month", "verification"]
    assert rows[1] == Row("verification", "fail", "fail", "does not hold", "holds",
                          "aicap size --verify simulated the plan and 'w1', 'w2' missed its targets")  # fmt: skip
    assert verdict(rows) == "fail"
    held = evaluate(policy(max_usd_per_month={"value": 1000.0}), _verified(True, True))
    assert [r.limit for r in held] == ["max_usd_per_month"] and verdict(held) == "pass"  # a plan that held adds no row
    assert [r.limit for r in evaluate(policy(max_usd_per_month={"value": 1000.0}), plan(100.0))] == ["max_usd_per_month"]
    unstable = _verified(True)  # the run failed (an unstable queue) though no workload's tail is named
    unstable = unstable.model_copy(update={"verification": unstable.verification.model_copy(update={"holds": False})})  # type: ignore[union-attr]
    assert evaluate(policy(max_usd_per_month={"value": 1000.0}), unstable)[1].detail == (
        "aicap size --verify simulated the plan and a workload missed its targets"
    )


@pytest.mark.parametrize(("limits", "ok"), [({"min_slo_margin_pct": {"value": 150}}, False),
                                             ({"min_slo_margin_pct": {"value": 100}}, False),
                                             ({"min_slo_margin_pct": {"value": 99.5}}, True),
                                             ({"max_usd_per_month": {"value": -5}}, False)])  # fmt: skip
def test_a_limit_no_plan_can_pass_is_refused_when_read(limits: dict[str, Any], ok: bool) -> None:
    # min_slo_margin_pct 150 was accepted and then failed every plan: a margin is (target - latency) / target
    if ok:
        Policy.model_validate({"schema_version": 1, "limits": limits})
        return
    with pytest.raises(ValueError, match="can never pass"):
        Policy.model_validate({"schema_version": 1, "limits": limits})
