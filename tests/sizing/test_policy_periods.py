"""Policy limits on hand-made plans over demand periods: the per-workload promises, stale plans and baselines."""

from __future__ import annotations

from typing import Any

from aicap.hardware_db import load_catalogue
from aicap.sizing.plan.policy import Policy, Row, blocking, evaluate_periods
from tests.sizing.test_diff_periods import Hour, plan, promise

CAT = load_catalogue()
HOURS: list[Hour] = [(1.0, 2.0, [1]), (3.0, 4.0, [2])]


def policy(**limits: Any) -> Policy:
    return Policy.model_validate({"schema_version": 1, "limits": limits})


def rows_of(pol: Policy, **kw: Any) -> dict[str, Row]:
    base = kw.pop("baseline", None)
    rows = evaluate_periods(pol, plan({"chat": HOURS, "code": HOURS}, **kw), CAT, base)
    return {r.limit: r for r in rows}


PROMISED = [promise("chat", 400.0, 45.0), promise("code", 250.0, 30.0, "p90")]


def test_latency_limits_judge_each_workloads_worst_deployment() -> None:
    r = rows_of(policy(max_ttft_ms={"value": 399.9}, max_tpot_ms={"value": 45.0, "action": "warn"}), promises=PROMISED)
    assert (r["max_ttft_ms"].status, r["max_ttft_ms"].actual, r["max_ttft_ms"].detail) == ("fail", 400.0, "over the limit: chat")
    assert (r["max_tpot_ms"].status, r["max_tpot_ms"].actual, r["max_tpot_ms"].detail) == ("pass", 45.0, "worst: chat 45.0 ms")


def test_percentile_and_margin_limits_on_a_period_plan() -> None:
    r = rows_of(policy(required_percentile={"value": "p99"}, min_slo_margin_pct={"value": 10.0, "action": "warn"}), promises=PROMISED)
    assert (r["required_percentile"].status, r["required_percentile"].actual) == ("fail", ["p90", "p99"])
    assert r["required_percentile"].detail == "targets below p99: code"
    # chat's TPOT 45 ms against 50: a 10.0% margin, at the limit
    assert (r["min_slo_margin_pct"].status, r["min_slo_margin_pct"].actual) == ("pass", 10.0)


def test_latency_increases_against_a_baseline_period_plan() -> None:
    before = plan({"chat": HOURS, "code": HOURS}, promises=[promise("chat", 300.0, 45.0), promise("code", 250.0, 30.0)])
    r = rows_of(policy(max_ttft_increase_pct={"value": 30.0}, max_tpot_increase_pct={"value": 0.0}), promises=PROMISED, baseline=before)
    assert (r["max_ttft_increase_pct"].status, r["max_ttft_increase_pct"].actual) == ("fail", 33.33)
    assert r["max_ttft_increase_pct"].detail == "chat 300 → 400 ms"
    assert (r["max_tpot_increase_pct"].status, r["max_tpot_increase_pct"].actual) == ("pass", 0.0)
    # without a baseline they cannot be judged, and a fail limit among them blocks the gate
    alone = rows_of(policy(max_ttft_increase_pct={"value": 30.0}), promises=PROMISED)
    assert alone["max_ttft_increase_pct"].status == "unchecked" and blocking(list(alone.values()))


def test_a_plan_without_stated_promises_leaves_them_unchecked_and_says_why() -> None:
    pol = policy(max_ttft_ms={"value": 1.0}, required_percentile={"value": "p99", "action": "warn"}, max_ttft_increase_pct={"value": 1.0},
                 max_usd_per_month={"value": 1.0, "action": "warn"})  # fmt: skip
    r = rows_of(pol)  # a plan written before period plans stated their promises: nothing to judge, not a pass
    assert {k: v.status for k, v in r.items()} == {"max_usd_per_month": "warn", "max_ttft_ms": "unchecked",
                                                    "required_percentile": "unchecked", "max_ttft_increase_pct": "unchecked"}  # fmt: skip
    assert all("size it again" in v.detail for k, v in r.items() if k != "max_usd_per_month")
    assert [x.limit for x in blocking(list(r.values()))] == ["max_ttft_ms", "max_ttft_increase_pct"]
    # a stale baseline: the plan's own limits are judged, the increases are not
    stale = plan({"chat": HOURS, "code": HOURS})
    r = rows_of(policy(max_ttft_ms={"value": 500.0}, max_ttft_increase_pct={"value": 1.0}), promises=PROMISED, baseline=stale)
    assert r["max_ttft_ms"].status == "pass" and r["max_ttft_increase_pct"].status == "unchecked"
    assert r["max_ttft_increase_pct"].detail.startswith("the baseline states no per-workload promises")


def test_per_workload_money_judges_each_workloads_chargeback() -> None:
    costed = [{**PROMISED[0], "usd_per_month": 600.0}, {**PROMISED[1], "usd_per_month": 400.0}]
    rows = evaluate_periods(policy(max_usd_per_month_per_workload={"value": 599.99}), plan({"chat": HOURS, "code": HOURS},
                                                                                                  promises=costed), CAT)  # fmt: skip
    (r,) = rows
    assert (r.status, r.actual, r.detail) == ("fail", 600.0, "over the limit: chat")
    rows = evaluate_periods(policy(max_usd_per_month_per_workload={"value": 600.0, "action": "warn"}),
                               plan({"chat": HOURS, "code": HOURS}, promises=costed), CAT)  # fmt: skip
    assert (rows[0].status, rows[0].actual, rows[0].detail) == ("pass", 600.0, "largest: chat $600")
    # beside the total's limit: both judged, in the order a static plan lists them
    rows = evaluate_periods(policy(max_usd_per_month={"value": 999.0}, max_usd_per_month_per_workload={"value": 500.0}),
                            plan({"chat": HOURS, "code": HOURS}, usd_month=1000.0, promises=costed), CAT)  # fmt: skip
    assert [(x.limit, x.status) for x in rows] == [("max_usd_per_month", "fail"), ("max_usd_per_month_per_workload", "fail")]
    # a plan that states its promises but no costs (or not every workload's) cannot be judged on them: size it again
    for stale in (PROMISED, [costed[0], PROMISED[1]]):
        rows = evaluate_periods(policy(max_usd_per_month_per_workload={"value": 1.0}), plan({"chat": HOURS, "code": HOURS},
                                                                                                  promises=stale), CAT)  # fmt: skip
        assert [(x.status, x.threshold) for x in rows] == [("unchecked", 1.0)]
        assert rows[0].detail == "the plan states no per-workload cost (written by an aicap before it was added): size it again"
        assert blocking(rows)


def test_money_devices_and_clouds_of_every_hour() -> None:
    # hour 0: eight H100s; hour 1: two l40s instances of two types (1 + 4 devices) and an H100. Busiest hour per device.
    held = [[("p5.48xlarge", 1)], [("g6e.xlarge", 1), ("g6e.12xlarge", 1), ("p5.4xlarge", 1)]]  # H100s fall to one in hour 1
    base = plan({"chat": HOURS}, usd_month=900.0, instances=held, promises=PROMISED[:1])
    pol = policy(max_usd_per_month={"value": 999.99}, max_increase_usd_per_month={"value": 100.0},
                 max_increase_pct={"value": 10.0, "action": "warn"}, max_devices={"value": {"l40s": 4, "h100-sxm": 8}},
                 allowed_clouds={"value": ["gcp"], "action": "warn"}, allowed_hardware={"value": ["l40s"]})  # fmt: skip
    rows = evaluate_periods(pol, plan({"chat": HOURS}, usd_month=1000.0, instances=held, promises=PROMISED[:1]), CAT, base)
    r = {x.limit: x for x in rows}
    assert (r["max_usd_per_month"].status, r["max_usd_per_month"].actual) == ("fail", 1000.0)
    assert r["max_usd_per_month"].detail == "fleet $1,000.00/month (all hours) vs limit $999.99"
    assert (r["max_increase_usd_per_month"].status, r["max_increase_usd_per_month"].actual) == ("pass", 100.0)
    assert (r["max_increase_pct"].status, r["max_increase_pct"].actual) == ("warn", 11.11)
    assert (r["max_devices"].status, r["max_devices"].actual) == ("fail", {"l40s": 5, "h100-sxm": 8})
    assert r["max_devices"].detail == "l40s: 5 > 4 in its busiest hour"
    assert (r["allowed_clouds"].status, r["allowed_clouds"].actual) == ("warn", ["aws"])
    assert (r["allowed_hardware"].status, r["allowed_hardware"].actual) == ("fail", ["h100-sxm", "l40s"])
    assert [x.limit for x in rows] == ["max_usd_per_month", "max_increase_usd_per_month", "max_increase_pct", "max_devices",
                                       "allowed_clouds", "allowed_hardware"]  # fmt: skip


def test_unchecked_rows_keep_their_threshold_and_say_why() -> None:
    rows = evaluate_periods(policy(max_increase_pct={"value": 5.0}, max_ttft_increase_pct={"value": 7.0}),
                               plan({"chat": HOURS}, promises=PROMISED[:1]), CAT)  # fmt: skip
    assert [(x.limit, x.status, x.threshold, x.detail) for x in rows] == [
        ("max_increase_pct", "unchecked", 5.0, "needs a baseline plan (--baseline)"),
        ("max_ttft_increase_pct", "unchecked", 7.0, "needs a baseline plan (--baseline)")]  # fmt: skip
    # a stale baseline leaves both latency increases unchecked, the money ones judged
    stale = plan({"chat": HOURS})
    rows = evaluate_periods(policy(max_increase_pct={"value": 5.0}, max_ttft_increase_pct={"value": 7.0},
                                      max_tpot_increase_pct={"value": 7.0}),
                               plan({"chat": HOURS}, promises=PROMISED[:1]), CAT, stale)  # fmt: skip
    assert [(x.limit, x.status) for x in rows] == [("max_increase_pct", "pass"), ("max_ttft_increase_pct", "unchecked"),
                                                   ("max_tpot_increase_pct", "unchecked")]  # fmt: skip
    # a stated baseline with a stale plan: nothing about promises is judged
    rows = evaluate_periods(policy(max_ttft_increase_pct={"value": 7.0}), stale, CAT, plan({"chat": HOURS}, promises=PROMISED[:1]))
    assert [(x.limit, x.status) for x in rows] == [("max_ttft_increase_pct", "unchecked")]


def test_every_limit_of_a_policy_applies_to_a_period_plan() -> None:
    # each limit set gives a row (judged, or unchecked with a reason): none is silently left out
    from aicap.sizing.plan.policy import Limits

    values: dict[str, Any] = {"max_usd_per_month": 1.0, "max_usd_per_month_per_workload": 1.0, "max_increase_usd_per_month": 1.0,
                              "max_increase_pct": 1.0, "max_devices": {"l4": 1}, "required_percentile": "p99", "allowed_clouds": ["aws"],
                              "allowed_hardware": ["l4"], "max_ttft_ms": 1.0, "max_tpot_ms": 1.0, "min_slo_margin_pct": 1.0,
                              "max_ttft_increase_pct": 1.0, "max_tpot_increase_pct": 1.0}  # fmt: skip
    assert set(values) == set(Limits.model_fields)
    costed = [{**PROMISED[0], "usd_per_month": 600.0}, {**PROMISED[1], "usd_per_month": 400.0}]
    for base in (None, plan({"chat": HOURS, "code": HOURS}, promises=costed)):
        rows = evaluate_periods(policy(**{k: {"value": v} for k, v in values.items()}), plan({"chat": HOURS, "code": HOURS},
                                                                                             promises=costed), CAT, base)  # fmt: skip
        assert sorted(r.limit for r in rows) == sorted(values)
