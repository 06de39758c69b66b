"""`aicap simulate`: JSON contract, policy comparison, traces, plans, determinism and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aicap.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
BASE = ["simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["-q", *args])
    return r.exit_code, r.stdout, r.stderr


def doc(*args: str) -> Any:
    code, out, err = run(*args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def test_json_has_the_documented_keys() -> None:
    d = doc(*BASE, "--rate", "6", "--dataset", "azure-conv-2023", "--requests", "2000", "--ttft-ms", "2000", "--tpot-ms", "80")
    assert d["schema_version"] == 1 and d["requests"] == 2000
    for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "queue_ms"):
        assert set(d[k]) == {"mean", "p50", "p90", "p95", "p99"} and d[k]["p50"] <= d[k]["p95"] <= d[k]["p99"]
    # Inter-token gaps: a chunk of a new prompt riding in a step lengthens the gap of every token it delays,
    # so the tokens' tail is far above the per-request means' (each request averages its stalls away).
    assert d["itl_ms"]["p99"] > 2 * d["tpot_ms"]["p99"] and d["itl_ms"]["p50"] < d["tpot_ms"]["p50"]
    assert set(d["throughput"]) >= {"output_tokens_per_s", "requests_per_s"}
    assert d["slo_attainment"] == 1.0 and d["preemptions"] == 0 and 0 < d["utilisation"] <= 1
    assert d["setup"]["traffic"].startswith("dataset azure-conv-2023") and d["setup"]["rate_per_s"] == pytest.approx(6, rel=0.1)
    assert d["setup"]["requested_rate_per_s"] == 6 and d["setup"]["rate_per_s"] != 6  # the draw's rate and the one asked for


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    args = [*BASE, "--rate", "12", "--arrival", "gamma", "--cv", "3", "--requests", "1500", "--policy", "sjf", "-f", "json"]
    a, b, c = run(*args), run(*args), run(*args, "--seed", "9")
    assert a[0] == 0 and a[1] == b[1] and a[1] != c[1]


def test_target_missed_exits_3_with_the_numbers() -> None:
    code, out, err = run(*BASE, "--rate", "4", "--requests", "500", "--ttft-ms", "1", "--tpot-ms", "1000")
    assert code == 3 and err.startswith("aicap: error: the simulated run misses a target: TTFT p99 ")
    assert err.rstrip().endswith("ms > target 1 ms") and "TPOT" not in err  # only the target missed, with its bound
    assert "Simulated latency: 500 requests" in out  # the result is still shown


def test_compare_policies_lists_every_policy_with_replicas_for_slo() -> None:
    # One replica is too few under every policy: the table is still printed, then exit 3 names the fewest replicas found.
    code, out, err = run(*BASE, "--rate", "30", "--requests", "600", "--max-num-seqs", "32", "--ttft-ms", "1000", "--tpot-ms", "80",
                         "--compare-policies", "-f", "json")  # fmt: skip
    d = json.loads(out)
    assert [p["policy"] for p in d["policies"]] == ["fcfs", "sjf", "srtf", "rr", "priority", "edf"]
    for p in d["policies"]:
        assert set(p) >= {"policy", "ttft_ms", "tpot_ms", "queue_ms", "slo_attainment", "replicas_for_slo"}
        assert isinstance(p["replicas_for_slo"], int) and p["replicas_for_slo"] >= 2
    fewest = min(p["replicas_for_slo"] for p in d["policies"])
    who = ", ".join(sorted(p["policy"] for p in d["policies"] if p["replicas_for_slo"] == fewest))
    assert code == 3 and err.startswith("aicap: error: no policy meets the targets at p99 on 1 replica (nearest: ")
    assert err.rstrip().endswith(f"the fewest replicas that meet them: {fewest} ({who})")


def test_compare_policies_exits_0_when_one_policy_meets_the_targets() -> None:
    # The same traffic on enough replicas: every policy's run holds, so nothing is missed.
    code, out, err = run(*BASE, "--rate", "30", "--requests", "600", "--max-num-seqs", "32", "--ttft-ms", "1000", "--tpot-ms", "80",
                         "--compare-policies", "--replicas", "8", "-f", "json")  # fmt: skip
    assert code == 0, err
    assert all(p["replicas_for_slo"] is not None and p["replicas_for_slo"] <= 8 for p in json.loads(out)["policies"])


def test_compare_policies_notes_when_every_request_is_alike() -> None:
    r = CliRunner().invoke(app, [*BASE, "--rate", "5", "--requests", "200", "--compare-policies", "-f", "json"])
    assert r.exit_code == 0 and "so sjf, srtf, priority order them as fcfs does" in r.stderr  # edf is skipped without --ttft-ms
    r = CliRunner().invoke(app, [*BASE, "--rate", "5", "--requests", "200", "--compare-policies", "--dataset", "sharegpt-8k", "-f", "json"])
    assert r.exit_code == 0 and "order them as fcfs does" not in r.stderr


def test_compare_without_targets_skips_edf_and_has_no_replica_count() -> None:
    d = doc(*BASE, "--rate", "5", "--requests", "300", "--compare-policies")
    assert "edf" not in [p["policy"] for p in d["policies"]]
    assert all(p["replicas_for_slo"] is None for p in d["policies"])


def test_trace_replay_and_closed_loop() -> None:
    d = doc(*BASE, "--trace", str(ROOT / "examples" / "traces" / "azure-conv-2023-10min.csv"))
    assert d["requests"] > 2000 and d["setup"]["traffic"] == "trace azure-conv-2023-10min.csv"
    d = doc(*BASE, "--concurrency", "16", "--requests", "400", "--input-tokens", "500", "--output-tokens", "50", "--replicas", "2",
            "--router", "least_outstanding")  # fmt: skip
    assert d["setup"]["concurrency"] == 16 and d["setup"]["rate_per_s"] is None and d["setup"]["replicas"] == 2
    assert d["finished"] == 400


def test_priority_classes_in_the_table(tmp_path: Path) -> None:
    code, out, _ = run(*BASE, "--rate", "20", "--requests", "1500", "--max-num-seqs", "16", "--classes", "0.3,0.7", "--policy", "priority")
    assert code == 0 and "Per priority class" in out


def test_a_plan_is_simulated_deployment_by_deployment(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-f", "json", "--output", str(plan))
    assert code == 0, err
    d = doc("simulate", str(plan))
    assert d["holds"] is True
    planned = json.loads(plan.read_text())
    assert [x["workload"] for x in d["deployments"]] == [w["name"] for w in planned["workloads"] for _ in w["deployments"]]
    assert {x["workload"] for x in d["deployments"]} == {"chat", "summariser", "embeddings"}
    assert all(x["slo_attainment"] is not None for x in d["deployments"])
    # Each deployment is read at its workload's percentile (the summariser's target is at p90), behind the router named.
    pctl = {w["name"]: w["percentile"] for w in planned["workloads"]}
    assert all(x["percentile"] == pctl[x["workload"]] and x["router"] == "round_robin" for x in d["deployments"])
    _, table, _ = run("simulate", str(plan))
    assert "p90" in table and "round robin router" in table and "size --verify" in table
    # its JSON is the document `aicap schema simulation-plan` describes (schema simulation rejected its names)
    import jsonschema

    jsonschema.validate(d, json.loads(run("schema", "simulation-plan")[1]))
    # CSV: one row a deployment, every figure bare (it carried the table's "1,234.5" and "99.0%" strings)
    code, out, _ = run("simulate", str(plan), "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(d["deployments"])
    for row, x in zip(rows, d["deployments"], strict=True):
        assert row["workload"] == x["workload"] and row["percentile"] == x["percentile"]
        assert float(row["ttft_ms"]) == x["ttft_ms"][x["percentile"]] and float(row["slo_attainment"]) == x["slo_attainment"]
        assert int(row["replicas"]) == x["setup"]["replicas"] and row["holds"] == "true"


def test_list_datasets() -> None:
    d = doc("simulate", "--list-datasets")
    names = [x["name"] for x in d["datasets"]]
    assert names == sorted(names) and "azure-code-2023" in names and all(x["source"] for x in d["datasets"])


@pytest.mark.parametrize(("args", "msg"), [
    ([*BASE], "--rate R"),
    ([*BASE, "--rate", "1", "--policy", "lifo"], "valid policies: fcfs"),
    ([*BASE, "--rate", "1", "--router", "random"], "valid routers"),
    ([*BASE, "--rate", "1", "--policy", "edf"], "--ttft-ms"),
    ([*BASE, "--rate", "1", "--dataset", "sharegpt"], "did you mean"),
    ([*BASE, "--rate", "-2"], "--rate -2: must be a positive"),
    ([*BASE, "--rate", "1", "--classes", "a,b"], "--classes"),
    ([*BASE, "--rate", "1", "--classes", "0.5,0.6"], "sum to 1.1, not 1; give shares that sum to 1 (e.g. 0.455,0.545)"),
    ([*BASE, "--rate", "1", "--percentile", "p97"], "--percentile"),
    ([*BASE, "--trace", "nope.csv"], "nope.csv"),
    (["simulate", "nope.json"], "nope.json"),
    (["simulate", str(ROOT / "examples" / "chat-service.yaml")], "a fleet file, not a plan"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: list[str], msg: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and msg in err, err


def test_queue_length_counts_arrived_minus_admitted() -> None:
    import numpy as np

    from aicap.sizing.sim.plot import queue_length
    from aicap.sizing.sim.result import SimResult

    nan = float("nan")
    res = SimResult(ttft_s=np.zeros(3), tpot_s=np.zeros(3), e2e_s=np.zeros(3), finished=np.ones(3, bool), preemptions=0, steps=1,
                    mean_running=0.0, mean_step_s=0.0, duration_s=5.0, arrival_s=np.array([0.0, 1.0, 2.0]),
                    queue_s=np.array([0.0, 2.0, nan]))  # fmt: skip
    t, q = queue_length(res)
    assert t.tolist() == [0.0, 0.0, 1.0, 3.0] and q.tolist() == [1, 0, 1, 0]  # the never-admitted request is left out


def test_plot_writes_a_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run.svg"
    code, _, err = run(*BASE, "--rate", "5", "--requests", "300", "--plot", str(out))
    assert code == 0, err
    assert out.read_text().lstrip().startswith("<?xml")


def test_plot_suffix_is_checked() -> None:
    code, _, err = run(*BASE, "--rate", "5", "--plot", "run.pdf")
    assert code == 2 and ".png or .svg" in err


def test_sjf_options_change_the_run() -> None:
    base = [*BASE, "--rate", "25", "--requests", "1500", "--max-num-seqs", "16", "--policy", "sjf", "--dataset", "azure-code-2023"]
    work, prompt = doc(*base), doc(*base, "--sjf-by", "prompt", "--aging", "0")
    assert work["ttft_ms"] != prompt["ttft_ms"]
    code, _, err = run(*base, "--sjf-by", "size")
    assert code == 2 and "--sjf-by" in err


def test_schema_of_the_report_validates_a_run() -> None:
    from aicap.sizing.sim.report import SimulationReport

    code, out, _ = run("schema", "simulation")
    schema = json.loads(out)
    assert code == 0 and {"ttft_ms", "throughput", "slo_attainment", "timeline"} <= set(schema["properties"])
    d = doc(*BASE, "--rate", "3", "--requests", "300")
    assert SimulationReport.model_validate(d).requests == 300


@pytest.mark.parametrize(("args", "msg"), [
    ([*BASE, "--rate", "20", "--classes", "0.5,0.5", "--policy", "priority", "--class-weights", "4"], "give one weight per class"),
    ([*BASE, "--rate", "1", "--class-weights", "0,1", "--policy", "priority"], "must be > 0"),
    ([*BASE, "--rate", "1", "--max-num-seqs", "-1"], "--max-num-seqs -1"),
    ([*BASE, "--rate", "1", "--max-batched-tokens", "0"], "--max-batched-tokens 0"),
    ([*BASE, "--rate", "1", "--plot", "/nonexistent-dir/x.png"], "does not exist"),
    # a router with one replica routes nothing (it ran, the option echoed as if it had)
    ([*BASE, "--rate", "1", "--router", "shortest_queue"], "--router shortest_queue spreads requests over replicas and this run has one"),
])  # fmt: skip
def test_review_input_errors_are_one_line(args: list[str], msg: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == "" and err.count("\n") == 1 and msg in err, err


def test_trace_input_errors_and_rejections(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens,priority\n0,100,10,3\n1,100,10,0\n")
    code, _, err = run(*BASE, "--trace", str(trace), "--policy", "priority", "--class-weights", "1,1")
    assert code == 2 and "--class-weights '1,1': 2 weights for the 4 priority classes of t.csv (priority 0 to 3)" in err
    # one weight too many was accepted and echoed as if it weighed (--classes refused the same mismatch)
    trace.write_text("arrival_s,input_tokens,output_tokens,priority\n0,100,10,1\n1,100,10,0\n")
    code, _, err = run(*BASE, "--trace", str(trace), "--policy", "priority", "--class-weights", "2,1,1")
    assert code == 2 and "3 weights for the 2 priority classes of t.csv" in err
    code, _, err = run(*BASE, "--trace", str(trace), "--concurrency", "0")
    assert code == 2 and "--concurrency 0" in err
    huge = tmp_path / "h.jsonl"
    huge.write_text('{"arrival_s": 0, "input_tokens": 1e20, "output_tokens": 1}\n')
    code, _, err = run(*BASE, "--trace", str(huge))
    assert code == 2 and "from 1 to" in err
    # Within the model's context (128k tokens) but beyond what one L4's KV cache holds (about 37k): rejected at arrival.
    small = ["simulate", "-m", "llama-3.1-8b", "--hardware", "l4"]
    long = tmp_path / "l.csv"
    long.write_text("arrival_s,input_tokens,output_tokens\n" + "".join(f"{k},{100 if k else 120_000},10\n" for k in range(50)))
    code, out, err = run(*small, "--trace", str(long), "--ttft-ms", "1000")
    assert code == 3 and "1 request(s) rejected" in err and "rejected" in out
    code, out, err = run(*small, "--trace", str(long), "--ttft-ms", "1000", "--compare-policies", "-f", "json")
    assert all(p["replicas_for_slo"] is None for p in json.loads(out)["policies"])  # rejections: more replicas cannot help
    assert code == 3 and "no policy meets them with more replicas either" in err


def test_requests_beyond_the_models_context_are_refused_where_they_are(tmp_path: Path) -> None:
    # A server rejects a request longer than the model's context (vLLM: "maximum context length"): a run that replayed it
    # reported it served (a 200,000-token prompt on a 4,096-token model finished with a TTFT).
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,50\n0.5,4000,97\n")
    code, out, err = run("simulate", "-m", "llama-2-7b", "--hardware", "h100-sxm", "--trace", str(trace))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{trace}:3: input_tokens + output_tokens = 4,097 tokens exceeds llama-2-7b's max context of 4,096" in err
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,50\n0.5,4000,96\n")  # exactly the context: served
    code, out, err = run("simulate", "-m", "llama-2-7b", "--hardware", "h100-sxm", "--trace", str(trace), "-f", "json")
    assert code == 0 and json.loads(out)["finished"] == 2, err
    # Drawn lengths: the dataset is named (not --input-tokens, which was not given), with how many and how long.
    code, out, err = run("simulate", "-m", "llama-2-7b", "--hardware", "h100-sxm", "--rate", "1", "--requests", "2000",
                         "--dataset", "sharegpt-8k")  # fmt: skip
    assert code == 2 and out == "" and err.startswith("aicap: error: --dataset sharegpt-8k: ") and "max context of 4,096" in err
    code, _, err = run("simulate", "-m", "bge-large-en", "--hardware", "t4", "--rate", "1", "--requests", "500", "--dataset",
                       "azure-conv-2023")  # fmt: skip
    assert code == 2 and "--dataset azure-conv-2023" in err and "(prompt up to" in err and "--input-tokens" not in err


def test_scheduler_flags_replay_a_v0_style_engine() -> None:
    args = [*BASE, "--rate", "4", "--dataset", "azure-conv-2023", "--requests", "1500"]
    v1 = doc(*args)
    v0 = doc(*args, "--no-chunked-prefill", "--prefill-first", "--scheduler-steps", "8")
    assert (v1["setup"]["chunked_prefill"], v1["setup"]["prefill_first"], v1["setup"]["scheduler_steps"]) == (True, False, 1)
    assert (v0["setup"]["chunked_prefill"], v0["setup"]["prefill_first"], v0["setup"]["scheduler_steps"]) == (False, True, 8)
    # Whole prompts in prefill-only steps stall every decoder for a whole prompt; rounds of 8 make arrivals wait.
    assert v0["itl_ms"]["p99"] > v1["itl_ms"]["p99"] and v0["ttft_ms"]["p50"] > v1["ttft_ms"]["p50"]
    code, _, err = run(*args, "--scheduler-steps", "0")
    assert code == 2 and "--scheduler-steps 0" in err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--rate", "1", "--cv", "3"), "--cv shapes gamma arrivals: add --arrival gamma"),
        (("--rate", "5", "--concurrency", "4"), "--rate 5 and --concurrency 4 are two kinds of traffic"),
        (("--concurrency", "4", "--arrival", "gamma"), "--concurrency runs a closed loop"),
        (("--rate", "1", "--dataset", "azure-conv-2023", "--input-tokens", "500"), "draws the lengths: drop --input-tokens"),
        (("--rate", "1", "--quantum", "4"), "--quantum does not apply to --policy fcfs: it shapes rr"),
        (("--rate", "1", "--policy", "rr", "--aging", "5"), "--aging does not apply to --policy rr: it shapes sjf"),
        (
            ("--rate", "1", "--speculative", "ngram", "--draft-tokens", "8", "--max-batched-tokens", "4"),
            "a step budget of 4 tokens cannot hold one speculative decode step of 9 tokens",
        ),  # every request was lost, silently
        (("--rate", "1", "--percentile", "p90"), "--percentile p90 is where --ttft-ms/--tpot-ms are checked"),  # ran as p99's twin
        (("--rate", "1", "--policy", "priority", "--class-weights", "2,1"), "--policy priority orders requests by class: give --classes"),
        (("--rate", "1", "--policy", "priority"), "--policy priority orders requests by class"),  # ran as FCFS, without a word
        (("--rate", "1", "--policy", "sjf", "--compare-policies"), "--policy sjf picks one policy; --compare-policies runs every one"),
        (("--rate", "1", "--seed", "-1"), "--seed -1: must be >= 0"),  # an internal error
        (("--rate", "1", "--jobs", "2"), "--jobs 2 runs the policies of --compare-policies, or a plan's deployments, in parallel"),
        (("--rate", "1", "--disaggregate", "--plot", "x.png"), "--disaggregate simulates the two pools"),
        (("--rate", "1", "--disaggregate", "--prefix-cached", "0.5"), "drop --prefix-cached"),  # the prefill pool dropped it
        (("--rate", "1", "--disaggregate", "--compare-policies", "--max-num-seqs", "8"), "drop --max-num-seqs, --compare-policies"),
        (("--rate", "1", "--devices", "2", "--replicas", "3"), "not --replicas 3: give one of them"),  # 2 devices make 1 or 2
        (("--rate", "1", "--input-tokens", "0"), "--input-tokens 0: a prompt has at least one token"),
        (("--rate", "1", "--output-tokens", "-1"), "--output-tokens -1: a decoder generates at least one token"),
        (("--rate", "1", "--ttft-ms", "1e12"), "--ttft-ms 1e+12: must be a positive number of milliseconds, at most 86,400,000 (a day)"),
        (("--rate", "1", "--tpot-ms", "1e9", "--compare-policies"), "--tpot-ms 1e+09: must be a positive number"),
    ],
)
def test_options_the_run_would_ignore_are_refused(extra: tuple[str, ...], needle: str) -> None:
    # Each once ran with the option silently ignored (Poisson for --cv, the dataset's lengths for --input-tokens, ...).
    code, _, err = run(*BASE, "--requests", "100", *extra)
    assert code == 2 and needle in err and err.count("\n") == 1


def test_a_prompt_over_an_unchunked_step_budget_is_infeasible_whoever_set_the_budget() -> None:
    # Every request was once rejected, blamed on the KV cache; then the user's own settings exited 2 where an engine profile's
    # (JetStream's 1,024 tokens) exited 3 for the same condition. Both are a deployment that cannot serve the workload: 3.
    code, out, err = run(*BASE, "--requests", "100", "--rate", "1", "--input-tokens", "6000", "--max-batched-tokens", "4096",
                         "--no-chunked-prefill")  # fmt: skip
    assert code == 3 and out == "" and err.count("\n") == 1
    assert "without chunked prefill a prompt is prefilled in one step: the longest here (6,000 tokens" in err
    assert "exceeds the step budget of 4,096" in err
    code, _, err = run("simulate", "-m", "llama-3.1-8b", "--hardware", "tpu-v5e", "--engine", "jetstream", "--requests", "50",
                       "--rate", "1", "--input-tokens", "6000", "--output-tokens", "100")  # fmt: skip
    assert code == 3 and "jetstream does not chunk prefill: a prompt of 6,000 tokens exceeds its step budget of 1,024" in err


def test_options_that_apply_still_run() -> None:
    assert doc(*BASE, "--requests", "100", "--rate", "1", "--arrival", "gamma", "--cv", "3")["requests"] == 100
    assert doc(*BASE, "--requests", "100", "--rate", "1", "--policy", "sjf", "--aging", "5")["requests"] == 100


def test_csv_has_every_figure_of_the_run_in_long_format() -> None:
    # It held the latency table alone: throughput, attainment, preemptions and the classes were lost.
    code, out, _ = run(*BASE, "--requests", "200", "--rate", "2", "--classes", "0.5,0.5", "--policy", "priority", "--ttft-ms", "100",
                       "-f", "csv")  # fmt: skip
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["scope", "metric", "statistic", "value"]
    got = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    d = doc(*BASE, "--requests", "200", "--rate", "2", "--classes", "0.5,0.5", "--policy", "priority", "--ttft-ms", "100")
    assert float(got[("all", "throughput", "output_tokens_per_s")]) == d["throughput"]["output_tokens_per_s"]
    assert float(got[("all", "ttft_ms", "p99")]) == d["ttft_ms"]["p99"]
    assert got[("all", "stable", "value")] == "true" and got[("all", "preemptions", "value")] == str(d["preemptions"])
    assert float(got[("class 1", "queue_ms", "p90")]) == d["classes"][1]["queue_ms"]["p90"]
    # and it names its run: a CSV without its setup could not say which model, device, rate or policy it measured
    assert rows[1][0] == "setup" and got[("setup", "model", "value")] == "llama-3.1-8b" and got[("setup", "policy", "value")] == "priority"
    assert float(got[("setup", "requested_rate_per_s", "value")]) == 2 and got[("setup", "class_shares", "value")].count(";") == 1


def test_the_policy_comparison_as_csv_has_bare_figures() -> None:
    args = (*BASE, "--rate", "5", "--requests", "300", "--ttft-ms", "500", "--compare-policies")
    code, out, _ = run(*args, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    d = doc(*args)
    assert code == 0 and [r["policy"] for r in rows] == [p["policy"] for p in d["policies"]]
    for row, p in zip(rows, d["policies"], strict=True):
        assert float(row["ttft_ms_p99"]) == p["ttft_ms"]["p99"] and float(row["queue_ms_p99"]) == p["queue_ms"]["p99"]
        assert float(row["slo_attainment"]) == p["slo_attainment"] and row["stable"] in ("true", "false")
        assert row["replicas_for_slo"] == ("" if p["replicas_for_slo"] is None else str(p["replicas_for_slo"]))
        assert d["setup"]["requested_rate_per_s"] == 5  # the rate asked, beside the draw's own in setup.rate_per_s
        # the comparison's rows carry throughput and utilisation as a single run's report does
        assert float(row["output_tokens_per_s"]) == p["throughput"]["output_tokens_per_s"] > 0
        assert float(row["utilisation"]) == p["utilisation"] and 0 < p["utilisation"] <= 1


def test_a_trace_row_with_more_fields_than_its_header_is_refused(tmp_path: Path) -> None:
    # The 4th field of "0.1,100,10,5" under a 3-column header was dropped silently (the priority lost).
    t = tmp_path / "t.csv"
    t.write_text("arrival_s,input_tokens,output_tokens\n0.1,100,10,5\n")
    code, _, err = run(*BASE, "--trace", str(t))
    assert code == 2 and f"{t}:2: more fields than the header's 3" in err


def test_state_aware_routers_break_ties_in_rotation() -> None:
    # Equal counts went to the lowest index: at a load where counts tie most of the time, least-outstanding and
    # shortest-queue put more arrivals on replica 0 than round-robin does, and their p99 TTFT was 45-60% worse.
    # (36 req/s: at 40, since each step pays its graphed kernels' fixed time, the replicas run near saturation and counts
    # seldom tie)
    args = ("--weights-dtype", "fp8", "--rate", "36", "--input-tokens", "1000", "--output-tokens", "200", "--requests", "4000",
            "--replicas", "4", "--seed", "1")  # fmt: skip
    rr = doc(*BASE, *args, "--router", "round_robin")["ttft_ms"]["p99"]
    for router in ("least_outstanding", "shortest_queue"):
        assert doc(*BASE, *args, "--router", router)["ttft_ms"]["p99"] <= 1.05 * rr


@pytest.mark.parametrize("mode", [("--disaggregate",), ("--compare-policies",)])
def test_percentile_applies_where_the_tables_report_at_it(mode: tuple[str, ...]) -> None:
    # Refused as ignored without a target, but these modes print their latencies at --percentile.
    code, out, err = run(*BASE, "--rate", "2", "--requests", "200", "--percentile", "p90", *mode)
    assert code == 0, err
    assert "p90" in out


def test_the_setup_records_the_classes_and_their_weights() -> None:
    # Strict priority and --class-weights 4,1 gave byte-identical setups: runs could not be told apart.
    args = (*BASE, "--rate", "2", "--requests", "200", "--classes", "0.2,0.8", "--policy", "priority")
    strict, weighted = doc(*args)["setup"], doc(*args, "--class-weights", "4,1")["setup"]
    assert strict["class_weights"] is None and weighted["class_weights"] == [4.0, 1.0]
    assert len(strict["class_shares"]) == 2 and abs(sum(strict["class_shares"]) - 1) < 1e-3
    assert doc(*BASE, "--rate", "2", "--requests", "100")["setup"]["class_shares"] is None


def test_devices_the_layout_leaves_over_are_named() -> None:
    # --devices 3 --tp 2 simulated one TP2 replica without a word (estimate says it)
    r = CliRunner().invoke(app, [*BASE, "--rate", "6", "--requests", "300", "--devices", "3", "--tp", "2"])  # not quiet: a note
    assert r.exit_code == 0 and "the layout uses 2 of the 3 devices: TP2·PP1 replicas of 2 leave 1 over" in r.stderr


def test_the_report_names_the_engine_and_sglangs_admission() -> None:
    v = doc(*BASE, "--engine", "vllm", "--rate", "4", "--requests", "300")["setup"]
    s = doc(*BASE, "--engine", "sglang", "--rate", "4", "--requests", "300")["setup"]
    x = doc(*BASE, "--engine", "sglang", "--rate", "4", "--requests", "300", "--ignore-eos", "--no-prefix-cache")["setup"]
    assert (v["engine"], v["admission"]) == ("vllm", "prompt")
    assert (s["engine"], s["admission"]) == ("sglang", "projected")
    assert x["admission"] == "exact"
    code, out, _ = run(*BASE, "--engine", "sglang", "--rate", "4", "--requests", "300")
    assert code == 0 and "engine sglang" in out and "KV room" in out


def test_sglang_with_ignore_eos_and_no_prefix_cache_never_preempts_where_vllm_does() -> None:
    tight = [*BASE[:-1], "l4", "--input-tokens", "6000", "--output-tokens", "1000", "--rate", "3", "--requests", "300"]
    vllm = doc(*tight, "--engine", "vllm")
    exact = doc(*tight, "--engine", "sglang", "--ignore-eos", "--no-prefix-cache")
    assert vllm["preemptions"] > 0 and exact["preemptions"] == 0
    code, _, err = run(*tight, "--engine", "sglang", "--no-prefix-cache", "--prefix-cached", "0.5")
    assert code == 2 and "needs a prefix cache" in err


def test_a_long_prompt_without_chunking_is_judged_under_the_runs_own_step_budget() -> None:
    long = [*BASE, "--engine", "trtllm", "--input-tokens", "10000", "--rate", "1", "--requests", "40"]
    code, _, err = run(*long, "-f", "json")
    assert code == 3 and "exceeds its step budget of 8,192 tokens" in err  # TensorRT-LLM's default budget
    raised = doc(*long, "--max-batched-tokens", "16384")
    assert raised["setup"]["max_batched_tokens"] == 16384 and not raised["setup"]["chunked_prefill"] and raised["finished"] == 40
    chunked = doc(*long, "--chunked-prefill")
    assert chunked["setup"]["chunked_prefill"] and chunked["finished"] == 40


def test_a_closed_loop_burst_is_not_called_an_unbounded_queue() -> None:
    r = CliRunner().invoke(app, [*BASE, "--concurrency", "100", "--requests", "100"])  # not quiet: the note is wanted
    code, out, err = r.exit_code, r.stdout, r.stderr
    assert code == 0 and "mostly that burst" in err
    assert "grows without bound" not in out and "yes (closed loop)" in out
    assert doc(*BASE, "--concurrency", "100", "--requests", "100")["stable"] is True


def test_a_trace_clash_names_only_the_options_given(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n0.5,200,20\n")
    code, _, err = run(*BASE, "--trace", str(trace), "--dataset", "azure-conv-2023")
    assert code == 2 and err.strip() == "aicap: error: --trace replays its own arrivals and lengths: drop --dataset"


def test_per_replica_repeats_the_check_size_verify_made_and_routing_spreads_the_bursts(tmp_path: Path) -> None:
    # verify stated TTFT p99 198 ms (target 200) for a plan simulate PLAN put at 39 ms, and nothing reproduced verify's figure
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-m", "llama-3.1-8b", "--rate", "20", "--arrival-cv", "3", "--ttft-ms", "400", "--tpot-ms", "40",
                       "--hardware", "h100-sxm", "--cloud", "aws", "--verify", "--seed", "3", "-f", "json",
                       "--output", str(plan))  # fmt: skip
    assert code == 0, err
    verified = json.loads(plan.read_text())["verification"]["workloads"][0]
    d = doc("simulate", str(plan), "--per-replica", "--seed", "3")
    (one,) = d["replicas"]
    assert one["ttft_simulated_ms"] == pytest.approx(verified["simulated_ttft_ms"], abs=0.05)
    assert one["tpot_simulated_ms"] == pytest.approx(verified["simulated_tpot_ms"], abs=0.05)
    assert d["holds"] is True and one["holds"] is True and d["seed"] == 3
    import jsonschema

    jsonschema.validate(d, json.loads(run("schema", "simulation-replicas")[1]))  # the document its schema describes
    routed = doc("simulate", str(plan), "--seed", "3")["deployments"][0]
    replicas = json.loads(plan.read_text())["workloads"][0]["deployments"][0]["replicas"]
    assert replicas > 1 and routed["ttft_ms"]["p99"] < one["ttft_simulated_ms"]  # a router spreads cv 3 bursts over the replicas
    _, table, _ = run("simulate", str(plan), "--per-replica")
    assert "one replica of each deployment alone" in table and "whole burstiness" in table
    code, _, err = run("simulate", str(plan), "--per-replica", "--router", "least_outstanding")
    assert code == 2 and "--router does not apply with --per-replica" in err
    code, _, err = run(*BASE, "--rate", "2", "--per-replica")
    assert code == 2 and "--per-replica checks a plan's replicas" in err


def test_a_plan_that_cannot_take_a_policy_or_carries_nothing_is_refused_not_passed(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-m", "llama-3.1-8b", "--rate", "2", "-f", "json", "--output", str(plan))
    assert code == 0, err
    # priority needs classes (--classes, a trace's column), which a plan does not take: one message, not two that contradict
    code, _, err = run("simulate", str(plan), "--policy", "priority")
    assert code == 2 and "a plan's replay has none: choose fcfs, sjf, srtf, rr, edf for a plan" in err
    code, _, err = run("simulate", str(plan), "--policy", "edf")  # its deadlines are the plan's TTFT targets: here none
    assert code == 2 and "workload 'llama-3.1-8b' of the plan has no TTFT target (slo.ttft_ms)" in err and "--ttft-ms" not in err
    timed = tmp_path / "timed.json"
    assert run("size", "-m", "llama-3.1-8b", "--rate", "2", "--ttft-ms", "2000", "-f", "json", "--output", str(timed))[0] == 0
    assert run("simulate", str(timed), "--policy", "edf")[0] == 0
    # a plan emptied of workloads "held" (exit 0) and a CI gate passed on it
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**json.loads(plan.read_text()), "workloads": []}))
    code, _, err = run("simulate", str(empty))
    assert code == 2 and f"{empty}: the plan has no workloads: nothing to simulate" in err


def test_an_unknown_engine_in_a_plan_names_the_file_and_field(tmp_path: Path) -> None:
    code, out, err = run("size", "-f", "json")
    assert code == 0, err
    plan = json.loads(out)
    plan["workloads"][1]["engine"] = "nope"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    code, _, err = run("simulate", str(path))
    assert code == 2 and err.startswith(f"aicap: error: {path}: workloads[1].engine: unknown engine 'nope': ") and "vllm" in err


def test_a_model_or_a_stray_document_given_as_a_plan_is_named(tmp_path: Path) -> None:
    # simulate called any non-plan file "a fleet file" and told the user to size it, which then failed
    import json as _json

    cfg = tmp_path / "config.json"
    cfg.write_text(_json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048}))
    model = tmp_path / "m.yaml"
    model.write_text(run("models", "show", "llama-3.1-8b", "-f", "yaml")[1])
    for path in (cfg, model):
        code, _, err = run("simulate", str(path))
        assert code == 2 and "a model (a Hugging Face config.json or a model YAML), not a plan or a fleet file: give it with --model" in err
    stray = tmp_path / "x.json"
    stray.write_text('{"foo": 1}')
    code, _, err = run("simulate", str(stray))
    assert code == 2 and "neither a plan (what `aicap size --output` writes) nor a fleet file" in err and "its keys: foo" in err


def test_a_context_too_long_for_the_output_alone_asks_for_fewer_output_tokens() -> None:
    code, _, err = run(*BASE, "--rate", "1", "--input-tokens", "100", "--output-tokens", "200000")
    assert code == 2 and err.rstrip().endswith("give --output-tokens of at most 130,972") and "-68,928" not in err


def test_a_plan_that_misses_in_simulation_names_the_target_and_the_figure(tmp_path: Path) -> None:
    # exit 3 said "misses its targets or builds an unbounded queue" while the table showed TTFT 665.8 > 500, stable
    plan = tmp_path / "plan.json"
    code, _, err = run("size", "-m", "llama-3.1-8b", "--rate", "5", "--ttft-ms", "500", "--tpot-ms", "40", "--hardware", "l40s",
                       "-f", "json", "--output", str(plan))  # fmt: skip
    assert code == 0, err
    d = json.loads(plan.read_text())
    d["inputs"]["workloads"][0]["arrival_cv"] = 4.0  # far burstier traffic than the plan was sized for
    plan.write_text(json.dumps(d))
    code, _, err = run("simulate", str(plan))
    assert code == 3 and "in simulation, llama-3.1-8b on " in err and "TTFT p99 " in err and "ms > target 500 ms" in err


def test_a_simulated_plan_shows_the_planned_rate_and_keeps_the_draw(tmp_path: Path) -> None:
    # the req/s column showed 10.04, 1.973 and 201 (the run's sampled arrivals) where the plan says 10, 2 and 200
    plan = tmp_path / "plan.json"
    assert run("size", "-f", "json", "--output", str(plan))[0] == 0
    planned = [dep["requests_per_s"] for w in json.loads(plan.read_text())["workloads"] for dep in w["deployments"]]
    d = doc("simulate", str(plan))
    assert [x["planned_requests_per_s"] for x in d["deployments"]] == planned
    assert any(x["setup"]["rate_per_s"] != x["planned_requests_per_s"] for x in d["deployments"])  # the draw is kept beside it
    rows = list(csv.DictReader(io.StringIO(run("simulate", str(plan), "-f", "csv")[1])))
    assert [float(r["requests_per_s"]) for r in rows] == planned


def test_a_short_run_of_long_outputs_that_keeps_up_is_stable() -> None:
    # counting requests to their last token, the backlog climbed to rate x e2e (26 s) through a 40 s run: "the queue grows
    # without bound" beside a 63 ms TTFT p99
    d = doc(*BASE, "--devices", "8", "--tp", "1", "--rate", "10", "--output-tokens", "2000", "--requests", "400")
    assert d["stable"] is True and d["ttft_ms"]["p99"] < 200


def test_an_overloaded_replica_is_unstable_under_every_policy() -> None:
    # SRTF at 20 req/s on an L4 serving well under 1: "stable queue yes" (its TTFT did not grow in arrival order), and so
    # --compare-policies gave SRTF "replicas for SLO 1" where FCFS needed 4.
    for policy in ("fcfs", "sjf", "srtf", "rr"):
        d = doc("simulate", "-m", "llama-3.1-8b", "--hardware", "l4", "--rate", "20", "--dataset", "sharegpt-8k", "--policy", policy,
                "--requests", "400", "--seed", "38")  # fmt: skip
        assert d["stable"] is False, policy
        assert d["throughput"]["requests_per_s"] < 0.5 * 20


def loud(*args: str) -> tuple[int, str, str]:
    """A run without -q: its notes and warnings on stderr."""
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_an_unbounded_queue_is_a_warning_on_stderr_not_only_a_cell_of_the_table() -> None:
    # exit 0 and nothing on stderr: "stable queue NO" only inside the table, which a script does not read
    code, out, err = loud(*BASE, "--rate", "40", "--requests", "1500", "-f", "json")
    assert code == 0 and json.loads(out)["stable"] is False
    assert "warning: the queue grows without bound under fcfs: more arrives than one replica can serve (it served" in err
    served = float(err.split("it served ")[1].split(" req/s")[0])
    assert served == pytest.approx(json.loads(out)["throughput"]["requests_per_s"], rel=0.01)
    code, out, err = loud(*BASE, "--rate", "40", "--requests", "1500", "--compare-policies", "-f", "json")
    assert code == 0 and "warning: the queue grows without bound under fcfs, sjf, srtf, rr, priority" in err
    code, _, err = loud(*BASE, "--rate", "4", "--requests", "600")
    assert code == 0 and "grows without bound" not in err


def test_a_comparison_says_priority_is_fcfs_when_every_request_is_in_one_class() -> None:
    args = (*BASE, "--rate", "8", "--requests", "600", "--dataset", "azure-conv-2023", "--compare-policies")
    code, out, err = loud(*args, "-f", "json")
    rows = {p["policy"]: p for p in json.loads(out)["policies"]}
    assert code == 0 and rows["priority"]["ttft_ms"] == rows["fcfs"]["ttft_ms"]
    assert "every request is in one priority class, so priority orders them as fcfs does" in err
    code, out, err = loud(*args, "--classes", "0.3,0.7", "-f", "json")
    assert code == 0 and "one priority class" not in err


def test_a_trace_out_of_arrival_order_is_replayed_in_order_and_said_so(tmp_path: Path) -> None:
    rows = "".join(f"{t},300,40\n" for t in (0.5, 0.2, 0.9, 1.4, 1.1))
    (tmp_path / "shuffled.csv").write_text("arrival_s,input_tokens,output_tokens\n" + rows)
    (tmp_path / "sorted.csv").write_text(
        "arrival_s,input_tokens,output_tokens\n" + "".join(f"{t},300,40\n" for t in (0.2, 0.5, 0.9, 1.1, 1.4))
    )
    code, shuffled, err = loud(*BASE, "--trace", str(tmp_path / "shuffled.csv"), "-f", "json")
    assert code == 0 and "the rows of shuffled.csv are not in arrival order: they are replayed by arrival_s" in err
    code, ordered, err = loud(*BASE, "--trace", str(tmp_path / "sorted.csv"), "-f", "json")
    assert code == 0 and "arrival order" not in err
    a, b = json.loads(shuffled), json.loads(ordered)
    a["setup"].pop("traffic")
    b["setup"].pop("traffic")
    assert a == b


def test_disaggregated_edf_schedules_by_the_target_given() -> None:
    # "policy 'edf' orders requests by their TTFT deadline: give a TTFT target (--ttft-ms)" though --ttft-ms 100 was given
    args = (*BASE, "--rate", "8", "--requests", "300", "--disaggregate", "--ttft-ms", "100")
    edf = doc(*args, "--policy", "edf")
    assert edf["ttft_target_ms"] == 100 and edf["holds"] is True and edf["ttft_ms"] <= 100
    code, _, err = run(*BASE, "--rate", "8", "--requests", "300", "--disaggregate", "--policy", "edf")
    assert code == 2 and "give a TTFT target (--ttft-ms)" in err


def test_an_encoder_takes_no_tpot_target_nor_output_tokens() -> None:
    # bge-large-en with --tpot-ms 10 reported "100.0% of requests meet TPOT <= 10 ms" with no TPOT measured, and the traffic
    # line said "fixed 256 in / 256 out" beside "mean 256 in / 0 out"
    enc = ["simulate", "-m", "bge-large-en", "--hardware", "t4", "--rate", "50", "--requests", "300", "--input-tokens", "256"]
    code, _, err = run(*enc, "--tpot-ms", "10")
    assert code == 2 and "--tpot-ms 10: bge-large-en is an encoder model and emits no tokens, so has no TPOT" in err
    code, _, err = run(*enc, "--output-tokens", "999")
    assert code == 2 and "--output-tokens 999: bge-large-en is an encoder model and emits no tokens: drop it" in err
    d = doc(*enc, "--ttft-ms", "500")
    assert "fixed 256 in / 0 out" in d["setup"]["traffic"]


def test_the_percentile_the_targets_are_checked_at_is_in_every_format() -> None:
    # the table said "targets checked at p50" and the exit code followed it, but JSON and CSV did not say which statistic
    args = (*BASE, "--rate", "5", "--requests", "200", "--ttft-ms", "50", "--percentile", "p50")
    assert doc(*args)["slo"] == {"ttft_ms": 50.0, "tpot_ms": None, "percentile": "p50"}
    _, out, _ = run(*args, "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert ["all", "slo", "percentile", "p50"] in rows and ["all", "slo", "ttft_ms", "50.0"] in rows
    assert doc(*BASE, "--rate", "5", "--requests", "200")["slo"]["percentile"] is None  # nothing checked


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--ignore-eos",), "--ignore-eos only changes an engine that projects admission (--engine sglang)"),
        (("--ignore-eos", "--no-prefix-cache"), "--ignore-eos and --no-prefix-cache only change an engine that projects admission"),
        (("--engine", "sglang", "--ignore-eos"), "--ignore-eos: SGLang admits exactly what fits only with both"),
        (("--engine", "sglang", "--no-prefix-cache"), "--no-prefix-cache: SGLang admits exactly what fits only with both"),
    ],
)
def test_admission_flags_that_would_change_nothing_are_refused(extra: tuple[str, ...], needle: str) -> None:
    # each gave byte-identical JSON to the run without it, and the output did not say it was given
    code, out, err = run(*BASE, "--rate", "4", "--requests", "100", *extra)
    assert code == 2 and out == "" and needle in err


def test_a_disaggregated_run_writes_long_csv_and_counts_each_pools_devices() -> None:
    # the CSV was the table's key/value rows (",value" header, "KV transfer,10.7 ms at 100 Gbit/s"); --devices bounds one replica
    args = (*BASE, "--rate", "9", "--requests", "300", "--disaggregate", "--devices", "4")
    _, out, _ = run(*args, "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["scope", "metric", "statistic", "value"]
    assert ["kv_transfer", "link_gbps", "value", "100.0"] in rows and ["all", "stable", "value", "true"] in rows
    d = doc(*args)
    _, table, _ = run(*args)
    for pool in ("prefill", "decode"):
        x = d[pool]
        n = x["replicas"] * x["tp"] * x["pp"]
        assert f"{x['replicas']}× TP{x['tp']}·PP{x['pp']} h100-sxm ({n} device{'s' if n > 1 else ''})" in table


@pytest.mark.parametrize(("mode", "schema"), [(("--compare-policies",), "simulation-compare"),
                                              (("--disaggregate",), "simulation-disaggregated")])  # fmt: skip
def test_the_compare_and_disaggregated_documents_have_schemas(mode: tuple[str, ...], schema: str) -> None:
    # both carried schema_version 1 but failed `aicap schema simulation` and had no schema of their own; the comparison
    # did not say which deployment, traffic and targets its "replicas for SLO" referred to
    import jsonschema

    d = doc(*BASE, "--rate", "5", "--requests", "200", "--ttft-ms", "500", *mode)
    code, out, _ = run("schema", schema)
    assert code == 0
    jsonschema.validate(d, json.loads(out))
    if schema == "simulation-compare":
        assert d["setup"]["model"] == "llama-3.1-8b" and d["setup"]["replicas"] == 1 and d["slo"]["ttft_ms"] == 500.0
        assert d["requests"] == 200


def test_a_short_run_says_its_percentiles_rest_on_few_requests() -> None:
    # 110 requests leave 99 after the 10% warm-up (int(0.1 * 110) = 11): too few for a p99; 111 leave 100.
    short = CliRunner().invoke(app, [*BASE, "--rate", "5", "--requests", "110", "-f", "json"])
    assert short.exit_code == 0 and json.loads(short.stdout)["requests"] == 110
    assert "aicap: note: the statistics rest on 99 requests after the 10% warm-up: a p99 needs 100" in short.stderr
    assert "give --requests 1,000 or more" in short.stderr
    enough = CliRunner().invoke(app, [*BASE, "--rate", "5", "--requests", "111", "-f", "json"])
    assert enough.exit_code == 0 and "statistics rest on" not in enough.stderr
    quiet = CliRunner().invoke(app, ["-q", *BASE, "--rate", "5", "--requests", "110", "-f", "json"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_a_trace_row_without_output_tokens_is_refused_for_a_decoder_where_it_is(tmp_path: Path) -> None:
    # It was blamed on "--output-tokens 0", a flag nobody gave, without the file or the line.
    for name, text, line in (("t.csv", "arrival_s,input_tokens,output_tokens\n0,100,5\n1,100,0\n", 3),
                             ("t.jsonl", '{"arrival_s": 0, "input_tokens": 100, "output_tokens": 0}\n', 1)):  # fmt: skip
        trace = tmp_path / name
        trace.write_text(text)
        code, _, err = run(*BASE, "--trace", str(trace))
        assert code == 2 and err.startswith(f"aicap: error: {trace}:{line}: output_tokens") and "from 1 to" in err, err
        assert "--output-tokens" not in err
    encoder = tmp_path / "e.csv"  # an encoder's rows carry no output
    encoder.write_text("arrival_s,input_tokens,output_tokens\n0,100,0\n1,200,0\n")
    assert doc("simulate", "-m", "bge-large-en", "--hardware", "t4", "--trace", str(encoder))["finished"] == 2


def test_a_tiny_rate_is_reported_not_rounded_to_zero() -> None:
    # rate_per_s kept six decimals: 1e-9 req/s was reported as a load of 0 beside a throughput of 8.5e-10.
    d = doc(*BASE, "--rate", "1e-9", "--requests", "150")
    assert 0.5e-9 < d["setup"]["rate_per_s"] < 2e-9 and d["throughput"]["requests_per_s"] > 0


def test_a_short_trace_or_disaggregated_run_says_so_too_and_a_trace_takes_no_input_token_note(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n" + "".join(f"{k / 4},{100 + k},20\n" for k in range(30)))
    note = "statistics rest on 27 requests after the 10% warm-up"
    for extra in ((), ("--compare-policies",), ("--disaggregate",)):
        r = CliRunner().invoke(app, [*BASE, "--trace", str(trace), *extra, "-f", "json"])
        assert r.exit_code == 0 and note in r.stderr and "give a longer trace" in r.stderr, (extra, r.stderr)
    encoder = tmp_path / "e.csv"  # an encoder's trace brings its lengths: no note on --input-tokens, which it does not read
    encoder.write_text("arrival_s,input_tokens,output_tokens\n" + "".join(f"{k},{200},0\n" for k in range(150)))
    r = CliRunner().invoke(app, ["simulate", "-m", "bge-large-en", "--hardware", "t4", "--trace", str(encoder), "-f", "json"])
    assert r.exit_code == 0 and "--input-tokens" not in r.stderr, r.stderr


def test_a_single_request_run_says_it_has_no_rate() -> None:
    # `--rate 2 --requests 1` showed "load 0 req/s": the rate of one arrival is (n - 1)/span = 0
    code, out, _ = run(*BASE, "--rate", "2", "--requests", "1")
    assert code == 0 and "one request: no arrival rate" in out and "0 req/s" not in out.split("throughput")[0]


def test_a_policy_run_whose_waiting_queue_stays_empty_says_a_policy_has_little_to_order() -> None:
    # Strict priority changed nothing at default settings (class 0 p99 TTFT 679 ms, class 1 620): requests waited for the
    # step in flight, never behind each other, and a policy orders only the waiting queue. A note says so; with a queue
    # (--max-num-seqs 8), or a burst that leaves requests waiting at a few steps, the policy acts and no note is given.
    args = [*BASE, "--rate", "4", "--requests", "1500", "--dataset", "azure-conv-2023", "--classes", "0.2,0.8", "--policy", "priority",
            "-f", "json"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "no step began with a request left waiting" in r.stderr
    r = CliRunner().invoke(app, [*args, "--max-num-seqs", "8"])
    d = json.loads(r.stdout)
    assert r.exit_code == 0 and "left waiting" not in r.stderr
    p99 = {c["priority"]: c["ttft_ms"]["p99"] for c in d["classes"]}
    assert p99[0] < 0.5 * p99[1]
    fcfs = CliRunner().invoke(app, [*args[:-4], "-f", "json"])
    assert fcfs.exit_code == 0 and "left waiting" not in fcfs.stderr  # fcfs is no policy choice to explain
    # a burst: the slice means of the timeline read 0.07 waiting, the note said "changes little", and priority cut class 0's
    # p99 TTFT by 62%
    bursty = [*BASE, "--rate", "6", "--arrival", "gamma", "--cv", "4", "--requests", "3000", "--dataset", "azure-conv-2023",
              "--classes", "0.2,0.8", "-f", "json"]  # fmt: skip
    pri = CliRunner().invoke(app, [*bursty, "--policy", "priority"])
    first = json.loads(CliRunner().invoke(app, bursty).stdout)
    assert pri.exit_code == 0 and "left waiting" not in pri.stderr
    assert json.loads(pri.stdout)["classes"][0]["ttft_ms"]["p99"] < 0.6 * first["classes"][0]["ttft_ms"]["p99"]


def test_compare_policies_says_so_when_every_policy_lands_within_5_percent_of_fcfs() -> None:
    calm = [*BASE, "--rate", "4", "--requests", "1500", "--dataset", "azure-conv-2023", "--compare-policies", "-f", "json"]
    r = CliRunner().invoke(app, calm)
    assert r.exit_code == 0 and "every policy's TTFT p99 is within 5% of fcfs's" in r.stderr
    bursty = [*BASE, "--rate", "6", "--arrival", "gamma", "--cv", "4", "--requests", "3000", "--dataset", "azure-conv-2023",
              "--compare-policies", "-f", "json"]  # fmt: skip
    r = CliRunner().invoke(app, bursty)
    ttft = {p["policy"]: p["ttft_ms"]["p99"] for p in json.loads(r.stdout)["policies"]}
    assert r.exit_code == 0 and "within 5% of fcfs" not in r.stderr and ttft["sjf"] < 0.9 * ttft["fcfs"]


def test_a_replica_that_served_nothing_is_null_in_json_and_said_in_words() -> None:
    # NaN went into the document, which JSON refuses (a traceback), and the message read "TTFT nan ms > target"
    import math

    from aicap.cli.commands.simulate_views import check_misses, per_replica_view
    from aicap.sizing.sim.verify import Check

    c = Check(workload="chat", instance_type="p5.4xlarge", hardware="h100-sxm", tp=1, pp=1, requests_per_s_per_replica=1.0,
              ttft_promised_ms=100.0, ttft_simulated_ms=math.nan, tpot_promised_ms=10.0, tpot_simulated_ms=None, ttft_target_ms=200.0,
              tpot_target_ms=None, stable=False, preemptions=0)  # fmt: skip
    view = per_replica_view([c], 0)
    json.dumps(view.document, allow_nan=False)
    assert view.document["replicas"][0]["ttft_simulated_ms"] is None and view.document["holds"] is False
    assert check_misses(c) == ["nothing served", "the queue grows without bound"]
    assert view.csv is not None and view.csv.rows[0][view.csv.columns.index("holds")] is False
