"""`aicap check` and `aicap diff` through the real CLI, every exit code, and a bash + jq CI job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

FLEET = """schema_version: 1
workloads:
  - {name: chat, model: llama-3.1-8b, requests_per_s: RATE, input_tokens: 800, output_tokens: 200, slo: {ttft_ms: 2000, tpot_ms: 60}}
constraints: {clouds: [gcp]}
"""


@pytest.fixture
def plans(aicap, tmp_path: Path) -> tuple[Path, Path]:
    for name, rate in (("base", 4), ("head", 16)):
        (tmp_path / f"{name}.yaml").write_text(FLEET.replace("RATE", str(rate)))
        r = aicap("-q", "size", str(tmp_path / f"{name}.yaml"), "--output", str(tmp_path / f"{name}.json"), "-f", "json")
        assert r.code == 0, r.stderr
    return tmp_path / "base.json", tmp_path / "head.json"


def test_check_pass_exit_0(aicap, plans) -> None:
    r = aicap("check", str(plans[1]), "--budget-monthly", "1000000", "-f", "json")
    assert r.code == 0 and r.json()["verdict"] == "pass"


def test_check_warn_exit_0(aicap, plans, tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("limits:\n  max_increase_pct: {value: 5, action: warn}\n")
    r = aicap("check", str(plans[1]), "--policy", str(pol), "--baseline", str(plans[0]), "-f", "json")
    assert r.code == 0 and r.json()["verdict"] == "warn"


def test_check_fail_exit_1(aicap, plans) -> None:
    r = aicap("check", str(plans[1]), "--budget-monthly", "1", "-f", "json")
    assert r.code == 1 and r.json()["verdict"] == "fail" and "max_usd_per_month" in r.stderr


def test_the_check_table_writes_money_as_the_detail_does(aicap, plans) -> None:  # type: ignore[no-untyped-def]
    # "actual 48923.14" stood beside "threshold 45000" and a detail of "$48,923"
    usd = aicap("check", str(plans[1]), "--budget-monthly", "1000000", "-f", "json").json()["usd_per_month"]
    table = aicap("check", str(plans[1]), "--budget-monthly", "1000000").stdout
    assert f"{usd:,.0f}" in table and "1,000,000" in table
    rows = aicap("check", str(plans[1]), "--budget-monthly", "1000000", "-f", "csv").stdout.splitlines()
    assert [float(x) for x in rows[1].split(",")[3:5]] == [usd, 1_000_000]  # the CSV keeps the figures bare


def test_the_diff_table_writes_latencies_as_the_size_table_does(aicap, plans) -> None:  # type: ignore[no-untyped-def]
    # TPOT 6.3 -> 22.4 ms read "6 → 22" where size showed 6.3 and 22.4
    doc = aicap("diff", str(plans[0]), str(plans[1]), "-f", "json").json()
    table = aicap("diff", str(plans[0]), str(plans[1])).stdout
    pairs = [(w["base"]["tpot_ms"], w["head"]["tpot_ms"]) for w in doc["workloads"]
             if w["base"] and w["head"] and w["base"].get("tpot_ms") is not None and w["head"].get("tpot_ms") is not None]  # fmt: skip
    assert pairs and all(max(p) < 100 and round(a) != a for p in pairs for a in p)  # TPOTs with tenths: the case the rule changes
    for a, b in pairs:
        assert f"{a:,.1f} → {b:,.1f}" in table  # the size table's TPOT, to a tenth


def test_check_sizes_a_fleet_file(aicap, tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(FLEET.replace("RATE", "2"))
    r = aicap("check", str(tmp_path / "f.yaml"), "--budget-monthly", "1000000", "-f", "json")
    assert r.code == 0 and r.json()["usd_per_month"] > 0


def test_check_bad_policy_exit_2(aicap, plans, tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("limits:\n  max_usd_per_month: {value: 10, action: explode}\n")
    r = aicap("check", str(plans[1]), "--policy", str(pol))
    assert r.code == 2 and "p.yaml:2" in r.stderr and "action" in r.stderr


@pytest.mark.parametrize(
    ("text", "extra", "needle"),
    [
        ("", (), "sets no limits"),  # an empty (truncated) policy file opened the gate: PASS, exit 0
        ("schema_version: 1\n# limits: moved elsewhere\n", (), "sets no limits"),
        ("limits:\n  max_usd_per_month: {value: 1}\n", ("--budget-monthly", "1000000"), "both set the monthly limit"),  # the flag won
    ],
)
def test_check_refuses_a_policy_that_would_open_the_gate(aicap, plans, tmp_path: Path, text: str, extra: tuple[str, ...],
                                                         needle: str) -> None:  # fmt: skip
    pol = tmp_path / "p.yaml"
    pol.write_text(text)
    r = aicap("check", str(plans[1]), "--policy", str(pol), *extra)
    assert r.code == 2 and needle in r.stderr and r.stdout == ""


def test_check_csv_cells_are_values_not_python_reprs(aicap, plans, tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("limits:\n  max_devices: {value: {l4: 0}, action: warn}\n  allowed_clouds: {value: [aws, azure], action: warn}\n")
    r = aicap("check", str(plans[1]), "--policy", str(pol), "-f", "csv")
    assert r.code == 0, r.stderr
    rows = {line.split(",", 1)[0]: line for line in r.stdout.splitlines()}
    assert "{" not in r.stdout and "[" not in r.stdout and "None" not in r.stdout
    assert ",l4: 0," in rows["max_devices"] and '"aws, azure"' in rows["allowed_clouds"]


def test_check_infeasible_exit_3(aicap, tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(FLEET.replace("RATE", "2").replace("tpot_ms: 60", "tpot_ms: 0.1"))
    r = aicap("check", str(tmp_path / "f.yaml"), "--budget-monthly", "100")
    assert r.code == 3


def test_check_warns_on_catalogue_change(aicap, plans) -> None:
    import json

    doc = json.loads(plans[0].read_text())
    doc["catalogue"]["version"] = "000000000000"
    plans[0].write_text(json.dumps(doc))
    r = aicap("check", str(plans[1]), "--baseline", str(plans[0]), "--budget-monthly", "10000000", "-f", "json")
    assert r.code == 0
    assert "baseline was made with catalogue 000000000000" in r.json()["notes"][0]
    assert "catalogue 000000000000" in r.stderr


def test_check_without_any_limit_is_an_input_error(aicap, plans) -> None:
    # it passed (exit 0, "limits": []) with a note on stderr only: a CI gate that judged nothing opened
    for extra in ((), ("--baseline", str(plans[0]))):
        r = aicap("check", str(plans[1]), *extra, "-f", "json")
        assert r.code == 2 and r.stdout == ""
        assert r.stderr.strip() == (
            "aicap: error: no limits to check: give --policy FILE, --budget-monthly USD or --strict (or a fleet whose "
            "constraints.budget_usd_per_month sets one)"
        )


def test_diff_json_and_markdown(aicap, plans) -> None:
    doc = aicap("diff", str(plans[0]), str(plans[1]), "-f", "json").json()
    assert doc["totals"]["delta"]["usd_per_month"] > 0 and doc["headline"].startswith("+$")
    assert doc["workloads"][0]["status"] == "changed"
    md = aicap("diff", str(plans[0]), str(plans[1]), "-f", "markdown").stdout
    assert md.startswith("**aicap: +$") and "| chat |" in md
    assert md == aicap("diff", str(plans[0]), str(plans[1]), "-f", "markdown").stdout
    table = aicap("diff", str(plans[0]), str(plans[1])).stdout  # dollars to the cent: the delta is head - base as printed
    row = next(line for line in table.splitlines() if "usd_per_hour" in line)
    base, head, delta = (float(c.strip().replace(",", "")) for c in row.split("│")[2:5])
    assert delta == pytest.approx(head - base, abs=0.011) and all(f"{v:.2f}" in row for v in (base, head))


def test_schema_policy(aicap) -> None:
    assert "limits" in aicap("schema", "policy").json()["properties"]


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs bash and jq")
def test_shell_ci_job(tmp_path: Path) -> None:
    script = Path(__file__).with_name("ci_job.sh")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AICAP_CATALOG", None)
    r = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ci job ok" in r.stdout


def test_ci_examples_install_aicap_from_its_repository() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in (root / "examples" / "ci").glob("*.yml"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "pip install" in line:
                assert "git+" in line, f"{path.name}: {line.strip()}"
                assert not line.split("#")[0].strip().endswith("pip install aicap"), f"{path.name} installs the unrelated index package"


def test_diff_csv_has_every_figure_per_workload(aicap, plans) -> None:
    # It wrote the four totals rows of the table and nothing per workload.
    r = aicap("diff", str(plans[0]), str(plans[1]), "-f", "csv")
    assert r.code == 0, r.stderr
    rows = dict(line.split(",", 1) for line in r.stdout.splitlines()[1:])
    doc = aicap("diff", str(plans[0]), str(plans[1]), "-f", "json").json()
    assert rows["workloads.0.workload"] == doc["workloads"][0]["workload"] == "chat"
    assert float(rows["totals.head.usd_per_month"]) == doc["totals"]["head"]["usd_per_month"]


def test_diff_names_the_layouts_that_changed(aicap, plans) -> None:
    # It showed money, devices and latencies, but not what an operator redeploys: parallelism, weights, batch cap, instance.
    doc = aicap("diff", str(plans[0]), str(plans[1]), "-f", "json").json()
    base, head = (json.loads(p.read_text()) for p in plans)
    row = doc["workloads"][0]
    for side, plan in (("base", base), ("head", head)):
        deps = plan["workloads"][0]["deployments"]
        engine = plan["workloads"][0]["engine"]
        each = [f"{d['replicas']}× TP{d['tp']}·PP{d['pp']} {d['weights_dtype']} (KV {d['kv_dtype']}) batch {d['max_running']} "
                f"on {d['instance_type']}" for d in deps]  # fmt: skip
        want = f"{engine}: " + "; ".join(sorted(each))
        assert row[side]["layout"] == want
    assert row["base"]["layout"] != row["head"]["layout"]
    table = aicap("diff", str(plans[0]), str(plans[1])).stdout
    assert "Layouts that changed" in table and row["head"]["instances"] > 0
    same = aicap("diff", str(plans[1]), str(plans[1]), "-f", "json").json()
    assert same["workloads"][0]["status"] == "unchanged"
    assert "Layouts that changed" not in aicap("diff", str(plans[1]), str(plans[1])).stdout


@pytest.mark.parametrize(("edit", "says"), [
    (lambda d: d["totals"].update(usd_per_month=1.0), "totals.usd_per_month 1.00 is not totals.usd_per_hour × hours_per_month"),
    (lambda d: d["totals"].update(usd_per_hour=1.0, usd_per_month=730.0), "is not the instances' sum"),
    (lambda d: d["workloads"][0].update(usd_per_month=1.0), "the workloads' usd_per_month sum to"),
    (lambda d: d["workloads"][0]["deployments"][0].update(replicas=50), "50 replica(s) of TP"),
    # export and simulate read the model from the inputs: an edited one was launched as the model it replaced (exit 0)
    (lambda d: d["workloads"][0].update(model="llama-9.9-70b"), "model 'llama-9.9-70b' is not the one it was sized for"),
    (lambda d: d["workloads"][0].update(name="renamed"), "workload 'renamed' is not one of the fleet's it was sized for"),
    # simulate replays the workload's rate: one edited to 100x was simulated against the capacity sized for the other
    (lambda d: d["workloads"][0].update(requests_per_s=d["workloads"][0]["requests_per_s"] * 100), "is not the rate it was sized for"),
])  # fmt: skip
def test_an_edited_plan_does_not_pass_the_budget_gate(aicap, plans, edit, says) -> None:  # type: ignore[no-untyped-def]
    """check judged a plan by its own totals: one edited to $1/month passed a $30,000 budget (exit 0)."""
    base, _ = plans
    doc = json.loads(base.read_text())
    edit(doc)
    edited = base.with_name("edited.json")
    edited.write_text(json.dumps(doc))
    r = aicap("check", str(edited), "--budget-monthly", "30000")
    assert r.code == 2 and says in r.stderr and "size it again" in r.stderr
    assert aicap("check", str(base), "--budget-monthly", "30000").code == 0  # the plan as sized passes


@pytest.mark.parametrize(("edit", "says"), [
    (lambda d: d["totals"].update(usd_per_month=1.0), "totals.usd_per_month 1.00 is not the periods' usd_per_hour over the horizon"),
    (lambda d: [p.update(usd_per_hour=0.001) for p in d["periods"]], "is not the periods' usd_per_hour over the horizon"),
    (lambda d: d["workloads"][0].update(usd_per_month=1.0), "the workloads' usd_per_month sum to"),
    (lambda d: d["periods"][5]["workloads"][0]["replicas"].__setitem__(0, 99), "capacity_requests_per_s"),
])  # fmt: skip
def test_an_edited_period_plan_does_not_pass_the_budget_gate(aicap, tmp_path: Path, edit, says) -> None:  # type: ignore[no-untyped-def]
    """A period plan was read as written: one edited to $1/month passed any budget (exit 0)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "diurnal-chat.yaml"
    plan = tmp_path / "periods.json"
    assert aicap("-q", "size", str(example), "-o", str(plan), "-f", "json").code == 0
    assert aicap("check", str(plan), "--budget-monthly", "1e6").code == 0  # the plan as sized passes
    doc = json.loads(plan.read_text())
    edit(doc)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    r = aicap("check", str(edited), "--budget-monthly", "1e6")
    assert r.code == 2 and says in r.stderr and "size it again" in r.stderr, r.stderr
    assert aicap("diff", str(plan), str(edited)).code == 2


def test_an_unknown_format_in_a_plan_is_an_input_error(aicap, plans) -> None:  # type: ignore[no-untyped-def]
    base, _ = plans  # simulate raised an internal error (KeyError: 'fp7')
    doc = json.loads(base.read_text())
    doc["workloads"][0]["deployments"][0]["weights_dtype"] = "fp7"
    edited = base.with_name("fp7.json")
    edited.write_text(json.dumps(doc, indent=2))
    for cmd in ("simulate", "export"):
        r = aicap(cmd, str(edited), *(["--to", "vllm"] if cmd == "export" else []))
        assert r.code == 2 and "weights_dtype" in r.stderr and "'fp7'" in r.stderr and "mxfp4" in r.stderr


def test_check_fails_a_plan_whose_own_verification_failed(aicap, plans) -> None:  # type: ignore[no-untyped-def]
    base, _ = plans
    r = aicap("-q", "size", str(base.with_name("base.yaml")), "--verify", "--output", str(base.with_name("v.json")))
    assert r.code == 0, r.stderr
    doc = json.loads(base.with_name("v.json").read_text())
    assert doc["verification"]["holds"] is True
    assert aicap("check", str(base.with_name("v.json")), "--budget-monthly", "1e6").code == 0
    doc["verification"]["holds"] = False
    doc["verification"]["workloads"][0]["holds"] = False
    base.with_name("vf.json").write_text(json.dumps(doc))
    r = aicap("check", str(base.with_name("vf.json")), "--budget-monthly", "1e6", "-f", "json")
    assert r.code == 1
    (row,) = [x for x in r.json()["limits"] if x["limit"] == "verification"]
    assert row["status"] == "fail" and "'chat' missed its targets" in row["detail"]


def test_a_plan_given_as_the_policy_is_named_as_such(aicap, plans) -> None:  # type: ignore[no-untyped-def]
    base, _ = plans  # it reported "schema_version: Input should be 1, got 2 (and 11 more errors)"
    r = aicap("check", str(base), "--policy", str(base))
    assert r.code == 2 and r.stdout == "" and "this is a plan (aicap size --output), not a policy" in r.stderr


def test_schemas_declare_their_dialect_and_the_fleet_s_hourly_lists_are_24_or_168(aicap) -> None:
    # The fleet schema accepted requests_per_s: [1, 2, 3], which aicap size refuses; no schema named its dialect.
    import jsonschema

    for name in ("plan", "period-plan", "fleet", "simulation", "simulation-plan", "policy"):
        assert aicap("schema", name).json()["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
    schema = aicap("schema", "fleet").json()

    def fleet(rates: object) -> dict[str, object]:
        return {"schema_version": 1, "workloads": [{"name": "a", "model": "llama-3.1-8b", "requests_per_s": rates}]}

    for rates, ok in (([1.0] * 24, True), ([1.0] * 168, True), ([1.0, 2.0, 3.0], False), ([1.0] * 25, False), ([-1.0] * 24, False)):
        assert jsonschema.Draft202012Validator(schema).is_valid(fleet(rates)) == ok, len(rates)  # type: ignore[arg-type]
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_check_of_a_fleet_takes_its_own_budget_as_the_limit(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a fleet with constraints.budget_usd_per_month got "no limits to check" (exit 2): the budget it states is its limit
    fleet = tmp_path / "fleet.yaml"
    body = ("workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2, input_tokens: 500, output_tokens: 200,\n"
            "     slo: {ttft_ms: 2000, tpot_ms: 60}}\nconstraints: {clouds: [aws], budget_usd_per_month: BUDGET}\n")  # fmt: skip
    fleet.write_text(body.replace("BUDGET", "1000000"))
    r = aicap("check", str(fleet), "-f", "json")
    assert r.code == 0 and r.json()["limits"][0]["threshold"] == 1000000.0
    assert "constraints.budget_usd_per_month ($1,000,000)" in r.stderr
    # Over it, the gate fails (exit 1) with the cheapest plan's cost: the budget is the check's limit, and a pipeline tells
    # "too dear" from "cannot be served" (it was exit 3, "budget $10/month is below the cheapest plan", as aicap size says)
    fleet.write_text(body.replace("BUDGET", "10"))
    r = aicap("check", str(fleet), "-f", "json")
    assert r.code == 1 and r.json()["verdict"] == "fail" and r.json()["usd_per_month"] > 10, r.stderr
    assert "policy check failed: max_usd_per_month" in r.stderr
    assert aicap("size", str(fleet)).code == 3  # sizing under its budget is still infeasible
    # --budget-monthly beside the fleet's budget: the plan was sized under the fleet's, $10, and the gate said "infeasible"
    # (exit 3) whatever the option's limit. Both are limits: the lower applies, and the note says which two
    r = aicap("check", str(fleet), "--budget-monthly", "100000", "-f", "json")
    assert r.code == 1 and [x["threshold"] for x in r.json()["limits"]] == [10.0], r.stderr
    assert f"two monthly limits, {fleet}'s constraints.budget_usd_per_month ($10) and --budget-monthly ($100,000)" in r.stderr
    # Beside a policy, the fleet's budget is a limit of the gate too (it was a constraint of the plan: exit 3 below it)
    policy = tmp_path / "policy.yaml"
    policy.write_text("limits:\n  max_ttft_ms: {value: 100000}\n")
    r = aicap("check", str(fleet), "--policy", str(policy), "-f", "json")
    assert r.code == 1 and {x["limit"] for x in r.json()["limits"]} == {"max_ttft_ms", "max_usd_per_month"}, r.stderr
    # a team's budget beneath a company-wide cap (the shipped pre-commit hook checks a fleet file against a policy): the lower
    policy.write_text("limits:\n  max_usd_per_month: {value: 100000}\n")
    r = aicap("check", str(fleet), "--policy", str(policy), "-f", "json")
    assert r.code == 1 and [x["threshold"] for x in r.json()["limits"]] == [10.0], r.stderr
    fleet.write_text(body.replace("BUDGET", "1000000"))
    r = aicap("check", str(fleet), "--policy", str(policy), "-f", "json")
    assert r.code == 0 and [x["threshold"] for x in r.json()["limits"]] == [100000.0], r.stderr
    # under the throughput (or latency) objective the budget is what the plan is sized to spend, not a second monthly limit
    fleet.write_text(body.replace("BUDGET", "5000").replace("clouds: [aws],", "clouds: [aws], objective: throughput,")
                     .replace("requests_per_s: 2, ", ""))  # fmt: skip
    r = aicap("check", str(fleet), "--policy", str(policy), "-f", "json")
    assert r.code == 0 and [x["threshold"] for x in r.json()["limits"]] == [100000.0], r.stderr


def test_diff_headline_counts_workloads_added_and_removed(aicap, tmp_path) -> None:
    # A renamed workload diffed as "+$0/month (+0%)", its removal and addition only in the table below
    fleet = "workloads:\n  - {name: %s, model: llama-3.1-8b, requests_per_s: 2, input_tokens: 500, output_tokens: 100}\n"
    base, head = tmp_path / "a.yaml", tmp_path / "b.yaml"
    base.write_text(fleet % "chat")
    head.write_text(fleet % "chat2")
    doc = aicap("diff", str(base), str(head), "-f", "json").json()
    assert doc["headline"] == "+$0/month (+0%); 1 workload added, 1 removed"
    assert aicap("diff", str(base), str(base), "-f", "json").json()["headline"] == "+$0/month (+0%)"


def test_check_of_a_plan_file_warns_of_another_catalogue_and_prices_not_the_catalogue_s(aicap, tmp_path) -> None:
    # A plan with every price edited down (consistently) passed the budget gate; so did one from another catalogue
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.core.plan import Plan
    from aicap.sizing.plan.prices import repriced

    plan = tmp_path / "plan.json"
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "5", "--cloud", "aws", "-o", str(plan)).code == 0
    clean = aicap("check", str(plan), "--budget-monthly", "100000")
    assert clean.code == 0 and "warning" not in clean.stderr, clean.stderr
    doc = json.loads(plan.read_text())
    doc["catalogue"]["version"] = "000000000000"
    plan.write_text(json.dumps(doc))
    r = aicap("check", str(plan), "--budget-monthly", "100000")
    assert r.code == 0 and f"warning: {plan} was made with catalogue 000000000000 and this aicap's is" in r.stderr
    made = Plan.model_validate(doc)
    inst = made.instances[0]
    cheap = made.model_copy(update={"instances": [inst.model_copy(update={"usd_per_hour": round(inst.usd_per_hour / 2, 2)})]})
    cat = load_catalogue()
    assert repriced(made, cat) == []
    [said] = repriced(cheap, cat)
    text = said.describe("on_demand")
    assert text.startswith(f"the plan prices {inst.count}× {inst.instance_type} at ${inst.usd_per_hour / 2:,.2f}/hour")


def _halved(plan: Path, out: Path) -> None:
    """Every money figure of a plan halved: prices edited by hand, the plan still consistent (its sums add up)."""

    def walk(x: object) -> object:
        if isinstance(x, dict):
            return {k: (v / 2 if k.startswith("usd") and isinstance(v, int | float) else walk(v)) for k, v in x.items()}
        return [walk(v) for v in x] if isinstance(x, list) else x

    out.write_text(json.dumps(walk(json.loads(plan.read_text()))))


def test_check_strict_fails_a_plan_whose_prices_are_not_the_catalogue_s(aicap, plans, tmp_path: Path) -> None:
    # A FinOps trial: a plan with its prices edited down passed the budget gate with a warning that -q hid
    edited = tmp_path / "edited.json"
    _halved(plans[1], edited)
    lax = aicap("-q", "check", str(edited), "--budget-monthly", "1000000", "-f", "json")
    assert lax.code == 0 and lax.json()["verdict"] == "pass" and lax.stderr == ""
    r = aicap("-q", "check", str(edited), "--budget-monthly", "1000000", "--strict", "-f", "json")
    assert r.code == 1 and r.stderr.strip() == "aicap: error: policy check failed: catalogue_prices"
    doc = r.json()
    assert doc["verdict"] == "fail" and doc["notes"] == []  # a row of the check, not a warning beside it
    rows = [x for x in doc["limits"] if x["limit"] == "catalogue_prices"]
    plan = json.loads(plans[1].read_text())
    assert len(rows) == len(plan["instances"]) and {x["status"] for x in rows} == {"fail"}
    first = plan["instances"][0]
    assert rows[0]["actual"] == round(first["usd_per_hour"] / 2, 2) and rows[0]["threshold"] == round(first["usd_per_hour"], 2)
    # --strict alone is a gate: the catalogue's own prices pass it
    ok = aicap("check", str(plans[1]), "--strict", "-f", "json")
    assert ok.code == 0 and ok.json()["verdict"] == "pass"
    assert [x["status"] for x in ok.json()["limits"]] == ["pass"]


def test_check_strict_refuses_a_plan_over_periods(aicap, tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    made = aicap("-q", "size", str(ROOT / "examples" / "diurnal-chat.yaml"), "-o", str(plan))
    assert made.code == 0 and json.loads(plan.read_text())["kind"] == "periods", made.stderr
    r = aicap("check", str(plan), "--strict")
    assert r.code == 2 and "--strict compares a static plan's prices" in r.stderr and r.stdout == ""


def test_every_schema_writes_its_bounds_as_json_schema_keywords(aicap) -> None:  # type: ignore[no-untyped-def]
    # The cases schema wrote pydantic's gt/le (29 places), which validators ignore: batch: -5 passed it, aicap refused it
    import jsonschema

    names = ("plan", "period-plan", "fleet", "simulation", "simulation-compare", "simulation-disaggregated", "simulation-plan",
             "simulation-replicas", "policy", "cases")  # fmt: skip
    for name in names:
        text = aicap("schema", name).stdout
        assert not any(f'"{k}":' in text for k in ("gt", "ge", "lt", "le")), name
    validator = jsonschema.Draft202012Validator(aicap("schema", "cases").json())
    case = {"id": "c", "model": "llama-3.1-8b", "hardware": "h100-sxm", "kind": "static_batch", "batch": 8, "input_tokens": 128,
            "output_tokens": 128, "metrics": {"output_tok_s_total": 100.0}}  # fmt: skip
    assert validator.is_valid(case)
    for bad in ({"batch": -5}, {"batch": 0}, {"tp": 10**9}, {"metrics": {"output_tok_s_total": -1.0}}):
        assert not validator.is_valid({**case, **bad}), bad
