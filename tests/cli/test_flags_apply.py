"""Options are applied or refused, never silently ignored; documents read as a user writes them.

Found by a new-user trial of the CLI: one-workload options beside a fleet file, traffic options beside a
plan, duplicate YAML keys, ``1e-5`` read as a string, model files beside a fleet, thousands separators in CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aicap.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
CHAT = str(ROOT / "examples" / "chat-service.yaml")


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["-q", *args])
    return r.exit_code, r.stdout, r.stderr


def refused(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 2 and out == "" and err.count("\n") == 1, (code, err)
    return err


@pytest.mark.parametrize("flag", [["--tpot-ms", "5"], ["--rate", "1000"], ["--input-tokens", "50000"], ["--precision", "int4"],
                                  ["--percentile", "p50"], ["--prefix-cached", "0.9"]])  # fmt: skip
def test_size_refuses_one_workload_options_beside_a_fleet_file(flag: list[str]) -> None:
    err = refused("size", CHAT, *flag)
    assert f"{flag[0]} describes the one workload of --model" in err and "fleet file" in err


def test_size_and_whatif_refuse_a_fleet_file_and_a_model_together() -> None:
    for cmd in ("size", "whatif"):
        assert "not both" in refused(cmd, CHAT, "--model", "llama-3.1-8b", "--rate", "5")


def test_size_refuses_a_rate_without_a_model() -> None:
    assert "--rate describes the one workload of --model; add --model" in refused("size", "--rate", "5")


def test_options_that_apply_to_a_fleet_file_still_do() -> None:
    code, out, err = run("size", CHAT, "--cloud", "aws", "-f", "json")
    assert code == 0, err
    assert {i["cloud"] for i in json.loads(out)["instances"]} == {"aws"}


def test_flag_values_are_checked_with_the_flag_s_name() -> None:
    assert "--pricing 'spott': valid choices: on_demand, spot" in refused("size", "-m", "llama-3.1-8b", "--rate", "5", "--pricing", "spott")
    assert "--precision 'fp9': valid choices: fp32" in refused("size", "-m", "llama-3.1-8b", "--rate", "5", "--precision", "fp9")
    assert "--objective 'bogus': valid choices: cost, latency, throughput" in refused(
        "size", "-m", "llama-3.1-8b", "--rate", "5", "--objective", "bogus"
    )
    assert "needs a budget: give --budget" in refused("size", "-m", "llama-3.1-8b", "--rate", "5", "--objective", "latency")
    assert "--search 'wide': valid choices: auto, fast, thorough" in refused(
        "size", "-m", "llama-3.1-8b", "--rate", "5", "--search", "wide"
    )


def test_search_replaces_the_fleet_file_s_and_is_recorded_in_the_plan(tmp_path: Path) -> None:
    doc = Path(CHAT).read_text(encoding="utf-8").replace("constraints:\n", "constraints:\n  search: thorough\n", 1)
    assert "search: thorough" in doc
    (tmp_path / "fleet.yaml").write_text(doc, encoding="utf-8")
    r = CliRunner().invoke(app, ["size", str(tmp_path / "fleet.yaml"), "--search", "fast", "-f", "json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["inputs"]["constraints"]["search"] == "fast"
    assert "--search fast replaces fleet.yaml's constraints.search (thorough)" in r.stderr


def test_whatif_refuses_buy_vs_rent_with_pareto() -> None:
    assert "choose one" in refused("whatif", "-m", "llama-3.1-8b", "--rate", "5", "--buy-vs-rent", "--pareto")


def test_simulate_a_plan_refuses_traffic_options(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-m", "llama-3.1-8b", "--rate", "2", "-o", str(plan))
    assert code == 0, err
    for flag in (["--rate", "50"], ["--dataset", "sharegpt-8k"], ["--ttft-ms", "1"], ["--compare-policies"], ["--requests", "10"]):
        assert f"{flag[0]} does not apply to a plan" in refused("simulate", str(plan), *flag)
    code, out, err = run("simulate", str(plan), "--seed", "3", "--policy", "sjf", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["holds"] is True


def test_simulate_bounds_requests_and_names_flags() -> None:
    base = ["simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"]
    assert "--requests 100,000,000: at most 5,000,000" in refused(*base, "--rate", "4", "--requests", "100000000")
    assert "--cv -1: gamma arrivals need" in refused(*base, "--rate", "4", "--arrival", "gamma", "--cv", "-1")
    assert "3 weights for the 2 classes" in refused(*base, "--rate", "4", "--classes", "0.2,0.8", "--class-weights", "4,1,1",
                                                    "--policy", "priority")  # fmt: skip


def test_csv_numbers_carry_no_thousands_separators() -> None:
    code, out, err = run("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-f", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    kv = next(r for r in rows if r[0] == "kv_cache_tokens")
    assert int(kv[1]) > 1000  # a figure the table groups (449,624), written bare


def test_duplicate_yaml_keys_are_an_error_on_their_line(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n    requests_per_s: 500\n")
    assert f"{f}:6: malformed YAML: duplicate key 'requests_per_s' (first given on line 5)" in refused("size", str(f))


def test_exponent_numbers_are_numbers(tmp_path: Path) -> None:
    f = tmp_path / "sci.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5e0\n    input_tokens: 1e3\n"
                 "constraints:\n  budget_usd_per_month: 1e5\n")  # fmt: skip
    code, out, err = run("size", str(f), "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["workloads"][0]["requests_per_s"] == 5 and d["inputs"]["workloads"][0]["input_tokens"] == 1000


def test_a_model_file_beside_the_fleet_file_is_found_from_anywhere(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    code, out, err = run("models", "show", "llama-3.1-8b", "-f", "yaml")
    assert code == 0, err
    (sub / "my8b.yaml").write_text(out)
    (sub / "fleet.yaml").write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: my8b.yaml\n    requests_per_s: 5\n")
    code, out, err = run("size", str(sub / "fleet.yaml"), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["workloads"][0]["model"] == str(sub / "my8b.yaml")


def test_a_union_field_reports_the_member_the_value_was_written_for(tmp_path: Path) -> None:
    f = tmp_path / "hist.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n    input_tokens:\n"
                 "      - {tokens: 100, weight: -1}\n      - {tokens: 200, weight: 1}\n")  # fmt: skip
    err = refused("size", str(f))
    assert "workloads[0].input_tokens[0].weight: Input should be greater than 0, got -1" in err and "constrained" not in err
    assert "more error" not in err  # the union's other member (an int) is the same problem, not "1 more error"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n    output_tokens: '350'\n")
    err = refused("size", str(f))
    assert err.rstrip().endswith("workloads[0].output_tokens: Input should be a valid integer, got '350'"), err
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n    output_tokens: '350'\n"
                 "    input_tokens: [{tokens: 100, weight: -1}]\n")  # fmt: skip
    err = refused("size", str(f))  # two places: one named, the other counted
    assert err.rstrip().endswith("(and 1 more error)"), err


@pytest.mark.parametrize(("body", "line", "what"), [
    ("    model: llama-3.1-8bx\n    requests_per_s: 5\n", 4, "unknown model 'llama-3.1-8bx'"),
    ("    model: llama-3.1-8b\n    requests_per_s: 5\n    engine: vllmx\n", 6, "unknown engine 'vllmx'"),
    ("    model: llama-3.1-8b\n    requests_per_s: 5\nconstraints:\n  hardware: [h100-sxx]\n", 7, "unknown hardware 'h100-sxx'"),
    ("    model: llama-3.1-8b\n    requests_per_s: 5\nconstraints:\n  availability: {p5.48xlargex: 2}\n", 7,
     "unknown instance 'p5.48xlargex'"),
])  # fmt: skip
def test_unknown_ids_in_a_fleet_file_name_their_line(tmp_path: Path, body: str, line: int, what: str) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n" + body)
    err = refused("size", str(f))
    assert err.startswith(f"aicap: error: {f}:{line}: ") and what in err, err


def test_estimate_names_a_tensor_parallel_degree_beyond_the_devices() -> None:
    err = refused("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "--tp", "16")
    assert "--tp 16 needs 16 devices but --devices is 8" in err


def test_a_plan_beside_its_model_file_is_read_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run("models", "show", "llama-3.1-8b", "-f", "yaml")
    assert code == 0, err
    work = tmp_path / "work"
    work.mkdir()
    (work / "m8.yaml").write_text(out)
    monkeypatch.chdir(work)
    code, _, err = run("size", "--model", "m8.yaml", "--rate", "2", "-o", "plan.json")
    assert code == 0, err
    monkeypatch.chdir(tmp_path)  # the plan says "m8.yaml": found beside the plan, not in this directory
    code, out, err = run("simulate", "work/plan.json", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["holds"] is True


def test_a_folder_named_like_a_catalogue_id_beside_the_fleet_does_not_shadow_it(tmp_path: Path) -> None:
    (tmp_path / "llama-3.1-8b").mkdir()  # downloaded weights, say
    f = tmp_path / "fleet.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n")
    code, out, err = run("size", str(f), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["workloads"][0]["model"] == "llama-3.1-8b"


@pytest.mark.parametrize(("args", "hint"), [
    (["models", "show", "llama-3.1-8b", "--quiet"], "(aicap --quiet models show ...)"),
    (["models", "list", "--version"], "(aicap --version)"),
    (["size", "--catalog", "x"], "(aicap --catalog DIR size ...)"),
])  # fmt: skip
def test_the_global_option_hint_names_the_whole_command(args: list[str], hint: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", *args], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stderr.endswith(f"is a global option: put it before the command {hint}\n"), r.stderr


def test_simulate_a_plan_names_the_option_as_typed_before_checking_values(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-m", "llama-3.1-8b", "--rate", "2", "-o", str(plan))
    assert code == 0, err
    assert "--no-chunked-prefill does not apply to a plan" in refused("simulate", str(plan), "--no-chunked-prefill")
    assert "--requests does not apply to a plan" in refused("simulate", str(plan), "--requests", "6000000")
    assert "--rate does not apply to a plan" in refused("simulate", str(plan), "--rate", "-2")


def test_options_a_run_cannot_use_are_refused_not_noted(tmp_path: Path) -> None:
    base = ["simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "4", "--requests", "200"]
    assert "--plot draws one run" in refused(*base, "--compare-policies", "--plot", str(tmp_path / "x.png"))
    assert "--class-weights weigh the classes of --policy priority, not of --policy fcfs" in refused(*base, "--class-weights", "1,2")
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n1,100,10\n")
    assert "a --trace brings its own" in refused("simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--trace", str(trace),
                                                 "--classes", "0.5,0.5")  # fmt: skip
    assert "--alternatives shapes the alternatives" in refused("whatif", "--buy-vs-rent", "--alternatives", "int4")


def test_estimate_names_a_pipeline_degree_beyond_the_devices() -> None:
    err = refused("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "2", "--pp", "4")
    assert "--pp 4 needs 4 devices but --devices is 2" in err


@pytest.mark.parametrize(("tail", "line", "what"), [
    ("    requests_per_s: 5\n    input_tokens: []\n", 6, "workloads[0].input_tokens: a length histogram lists at least one"),
    ("    requests_per_s: 5\n    output_tokens: []\n", 6, "workloads[0].output_tokens: a length histogram lists at least one"),
    ("    requests_per_s: 5\n    hardware: []\n", 6, "workloads[0].hardware: list at least one device id"),
    ("    requests_per_s: 5\nconstraints:\n  clouds: []\n", 7, "clouds: list at least one, or leave clouds out"),
    ("    requests_per_s: 5\nconstraints:\n  hardware: []\n", 7, "hardware: list at least one, or leave hardware out"),
])  # fmt: skip
def test_empty_lists_are_input_errors_not_crashes_or_no_constraint(tmp_path: Path, tail: str, line: int, what: str) -> None:
    """Fuzz found an empty length histogram crashing the sizer (max of nothing); an empty allow-list meant 'any'."""
    f = tmp_path / "f.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - name: a\n    model: llama-3.1-8b\n" + tail)
    err = refused("size", str(f))
    assert f"{f}:{line}: " in err and what in err, err


def test_a_latency_target_beyond_a_day_is_refused() -> None:
    """Fuzz: --ttft-ms 1e308 made the margins infinite and failed deep in validation (an internal error)."""
    assert "--ttft-ms 1e+308: must be a positive number of milliseconds, at most 86,400,000 (a day)" in refused(
        "size", "-m", "llama-3.1-8b", "--rate", "2", "--ttft-ms", "1e308"
    )


@pytest.mark.parametrize(("extra", "what"), [
    (["--arrival", "gamma", "--cv", "1e308"], "--cv 1e+308: gamma arrivals need a coefficient of variation above 0 and at most 10"),
    (["--replicas", "100000"], "--replicas 100,000: at most 4,096"),
    (["--predictor-error", "1e308", "--policy", "srtf"], "--predictor-error 1e+308: the log-normal σ must be from 0 to 5"),
])  # fmt: skip
def test_simulate_bounds_the_values_that_crashed_or_hung_it(extra: list[str], what: str) -> None:
    """Probing: --cv 1e308 divided by zero, --predictor-error 1e308 overflowed, --replicas 100000 ran for minutes on 50 requests."""
    assert what in refused("simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "4", "--requests", "50", *extra)


def test_a_repeated_workload_name_names_the_line_of_the_repeat(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    one = "  - name: a\n    model: llama-3.1-8b\n    requests_per_s: 5\n"
    f.write_text("schema_version: 1\nworkloads:\n" + one + one)
    assert f"{f}:6: workloads[1].name: 'a' is already the name of workloads[0]; workload names must be unique" in refused("size", str(f))
