"""`aicap size` and `aicap schema plan` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
PLAN_KEYS = {"schema_version", "totals", "workloads", "alternatives"}
DEPLOYMENT_KEYS = {"instance_type", "hardware", "instances", "devices", "tp", "pp", "replicas", "max_running", "weights_dtype", "kv_dtype",
                   "ttft_ms", "tpot_ms", "capacity_requests_per_s", "usd_per_hour"}  # fmt: skip


def test_size_without_arguments_sizes_the_builtin_example(aicap) -> None:
    r = aicap("size", "-f", "json")
    assert r.code == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "built-in example" in lines[0] and all(line.startswith("aicap: ") for line in lines)
    doc = r.json()
    assert set(doc) >= PLAN_KEYS
    assert {w["name"] for w in doc["workloads"]} == {"chat", "summariser", "embeddings"}
    assert set(doc["totals"]) >= {"usd_per_hour", "usd_per_month", "devices", "instances"}
    for w in doc["workloads"]:
        assert w["capacity_requests_per_s"] >= w["requests_per_s"]
        for d in w["deployments"]:
            assert set(d) >= DEPLOYMENT_KEYS
    assert sum(w["usd_per_hour"] for w in doc["workloads"]) == pytest.approx(doc["totals"]["usd_per_hour"], abs=0.05)


def test_size_flags_one_workload(aicap) -> None:
    r = aicap("size", "--model", "llama-3.1-70b", "--rate", "20", "--input-tokens", "1500", "--output-tokens", "300",
              "--ttft-ms", "2000", "--tpot-ms", "60", "--cloud", "aws", "--hardware", "h100-sxm,l40s", "--precision", "bf16,fp8",
              "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    doc = r.json()
    assert {d["hardware"] for w in doc["workloads"] for d in w["deployments"]} <= {"h100-sxm", "l40s"}
    assert "no TTFT or TPOT target" not in r.stderr


def test_a_workload_without_latency_targets_is_told_what_its_latency_means(aicap) -> None:
    """Sized with no target, a 131k-token prompt was promised a p99 TTFT of 120,900 ms without a word."""
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "5", "--cloud", "aws", "-f", "json")
    assert r.code == 0 and "'llama-3.1-8b': no TTFT or TPOT target" in r.stderr and "--ttft-ms, --tpot-ms" in r.stderr
    assert any("no TTFT or TPOT target" in w for w in r.json()["warnings"])
    timed = aicap("size", "--model", "llama-3.1-8b", "--rate", "5", "--cloud", "aws", "--tpot-ms", "80", "-f", "json")
    assert timed.code == 0 and "no TTFT or TPOT target" not in timed.stderr


def test_size_output_file_and_determinism(aicap, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    a = aicap("size", "--model", "llama-3-8b", "--rate", "5", "--cloud", "gcp", "-f", "json", "--output", str(out))
    b = aicap("size", "--model", "llama-3-8b", "--rate", "5", "--cloud", "gcp", "-f", "json")
    assert a.code == 0 and a.stdout == b.stdout
    assert json.loads(out.read_text())["totals"] == a.json()["totals"]


def test_size_jobs_gives_the_same_plan_and_refuses_zero(aicap, monkeypatch: pytest.MonkeyPatch) -> None:
    from aicap.sizing.plan import evaluation

    monkeypatch.setattr(evaluation, "PARALLEL_MIN_ROWS", 0)  # share out even the built-in example's evaluation
    monkeypatch.setattr(evaluation, "PART_ROWS", 128)
    one, two = aicap("size", "--jobs", "1", "-f", "json"), aicap("size", "--jobs", "2", "-f", "json")
    assert one.code == two.code == 0 and one.stdout == two.stdout
    bad = aicap("size", "--jobs", "0")
    assert bad.code == 2 and "--jobs" in bad.stderr


@pytest.mark.parametrize("fmt", ["table", "yaml", "csv", "markdown"])
def test_size_every_format(aicap, fmt: str) -> None:
    r = aicap("size", "--model", "mistral-7b", "--rate", "3", "--cloud", "aws", "-f", fmt)
    assert r.code == 0 and r.stdout.strip()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_size(aicap, path: Path) -> None:
    r = aicap("size", str(path), "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["totals"]["usd_per_month"] > 0


def test_infeasible_exit_3(aicap) -> None:
    r = aicap("size", "--model", "llama-3.1-405b", "--rate", "1", "--hardware", "l4", "--precision", "bf16")
    assert r.code == 3 and "GiB" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "llama-3-8b", "--rate", "-2"], "--rate -2: must be a positive"),
        (["--model", "llama-3-8b"], "--rate is required"),
        (["--model", "llama-3-8b", "--rate", "1", "--cloud", "ibm"], "--cloud 'ibm'"),
        (["--model", "nope", "--rate", "1"], "unknown model 'nope'"),
        (["--model", "llama-3-8b", "--rate", "1", "--percentile", "p42"], "--percentile 'p42'"),
        # an engine pinned to devices it does not run on is a conflict in the input, as estimate says (it exited 3)
        (
            ["--model", "llama-3-8b", "--rate", "1", "--engine", "jetstream", "--hardware", "h100-sxm"],
            "JetStream (MaxText) does not run on h100-sxm (nvidia gpu); it runs on: tpu",
        ),
        (["--model", "", "--rate", "1"], "an empty model id; give a catalogue id"),  # was ": a folder without config.json"
        (["--model", "llama-3-8b", "--rate", "1", "-o", "plan.csv"], "--output plan.csv: writes the plan document, JSON"),  # JSON in a .csv
        (
            ["--model", "bge-large-en", "--rate", "2", "--input-tokens", "256", "--tpot-ms", "50"],  # it was dropped in silence
            "--tpot-ms 50: bge-large-en is an encoder model and emits no tokens",
        ),
        (
            ["--model", "llama-3-8b", "--rate", "1", "--input-tokens", "1000000"],
            "its longest request (input_tokens + output_tokens) is 1,000,256 tokens, over llama-3-8b's max context of 8,192",
        ),
    ],
)
def test_size_bad_input_exit_2(aicap, args: list[str], needle: str) -> None:
    r = aicap("size", *args)
    assert r.code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_fleet_file_names_line(aicap, tmp_path: Path) -> None:
    p = tmp_path / "aicap.yaml"
    p.write_text("workloads:\n  - name: a\n    model: llama-3-8b\n    requests_per_s: -1\n")
    r = aicap("size", str(p))
    assert r.code == 2 and "aicap.yaml:4: workloads[0].requests_per_s" in r.stderr


def test_schema_plan_is_json_schema(aicap) -> None:
    doc = aicap("schema", "plan").json()
    assert doc["type"] == "object" and "workloads" in doc["properties"]


def test_a_period_plan_validates_against_its_published_schema(aicap) -> None:
    # CI consumers had no contract for plans over demand periods: `schema plan` describes static plans only.
    import jsonschema

    plan = aicap("size", str(next(p for p in EXAMPLES if p.stem == "diurnal-chat")), "-f", "json").json()
    assert plan["kind"] == "periods"
    jsonschema.validate(plan, aicap("schema", "period-plan").json())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, aicap("schema", "plan").json())


def test_throughput_objective_with_a_budget_that_buys_nothing_exit_3(aicap) -> None:
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "1", "--hardware", "h100-sxm", "--objective", "throughput", "--budget", "100")
    assert r.code == 3 and "buys no instance" in r.stderr


def test_size_csv_is_one_value_a_cell_and_agrees_with_the_json(aicap) -> None:
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(aicap("size", "-f", "csv").stdout)))
    plan = aicap("size", "-f", "json").json()
    deps = [(w, d) for w in plan["workloads"] for d in w["deployments"]]
    assert len(rows) == len(deps)
    for row, (w, d) in zip(rows, deps, strict=True):
        got = (row["workload"], row["hardware"], int(row["tp"]), int(row["replicas"]))
        assert got == (w["name"], d["hardware"], d["tp"], d["replicas"])
        assert float(row["ttft_ms"]) == d["ttft_ms"] and float(row["ttft_band_pct"]) == w["error_band_pct"]["ttft"]
        assert float(row["usd_per_hour"]) == d["usd_per_hour"] and row["percentile"] == w["percentile"]
        assert (row["tpot_ms"] == "") == (d["tpot_ms"] is None)  # an encoder has no TPOT: a blank cell, not "-"
        # an encoder emits no tokens: its unit price is per request (the column of output tokens carried it, mislabelled)
        # the unit prices are the workload's, blended over its deployments: the columns say so (workload_...)
        blank = row["workload_usd_per_million_output_tokens"] == ""
        assert blank == (w["usd_per_million_output_tokens"] is None) == (d["tpot_ms"] is None)
        assert float(row["workload_usd_per_million_requests"]) == w["usd_per_million_requests"]
        per_request = w["usd_per_hour"] / (w["served_requests_per_s"] * 3600) * 1e6
        assert w["usd_per_million_requests"] == pytest.approx(per_request, rel=0.01)


def test_a_period_plan_csv_is_long_format_and_agrees_with_the_json(aicap) -> None:
    import csv
    import io

    example = str(next(p for p in EXAMPLES if p.stem == "diurnal-chat"))
    rows = list(csv.DictReader(io.StringIO(aicap("size", example, "-f", "csv").stdout)))
    plan = aicap("size", example, "-f", "json").json()
    n_deps = sum(len(v) for v in plan["deployments"].values())
    assert len(rows) == len(plan["periods"]) * n_deps  # one row per hour, workload and deployment
    for r in rows:
        p = plan["periods"][int(r["hour"])]
        w = next(x for x in p["workloads"] if x["name"] == r["workload"])
        assert int(r["replicas"]) == w["replicas"][int(r["deployment"])] and float(r["fleet_usd_per_hour"]) == p["usd_per_hour"]
        assert r["instance_type"] == plan["deployments"][r["workload"]][int(r["deployment"])]["instance_type"]
        # The hour's instances of its type by pricing model (the hourly CSV had no pricing at all)
        held = {m: sum(i["count"] for i in p["instances"] if i["instance_type"] == r["instance_type"] and i["pricing"] == m)
                for m in plan["pricing_models"]}  # fmt: skip
        assert {m: int(r[f"{m}_instances_of_type"]) for m in plan["pricing_models"]} == held
    assert len(plan["pricing_models"]) > 1 and any(int(r["on_demand_instances_of_type"]) > 0 for r in rows)


def test_workload_costs_add_up_to_the_fleet_total(aicap, tmp_path: Path) -> None:
    # Each workload's month was its deployments' hourly costs rounded to cents x 730: two workloads sharing three
    # instances summed to $4,073.40 against a total of $4,075.59, which chargeback could not reconcile.
    f = tmp_path / "f.yaml"
    f.write_text("schema_version: 1\nworkloads:\n"
                 "  - {name: chat, model: llama-3.1-8b, requests_per_s: 12, input_tokens: 1200, output_tokens: 250,\n"
                 "     slo: {ttft_ms: 1500, tpot_ms: 50}}\n"
                 "  - {name: rag, model: qwen2.5-7b, requests_per_s: 5, input_tokens: 1000, output_tokens: 200,\n"
                 "     slo: {ttft_ms: 2000, tpot_ms: 60, percentile: p95}}\n"
                 "constraints: {clouds: [aws, gcp]}\n")  # fmt: skip
    r = aicap("-q", "size", str(f), "-f", "json")
    assert r.code == 0, r.stderr
    d = r.json()
    assert len(d["workloads"]) == 2 and d["totals"]["instances"] > 1
    assert abs(sum(w["usd_per_month"] for w in d["workloads"]) - d["totals"]["usd_per_month"]) <= 0.01


def test_infeasible_for_want_of_prices_names_the_types_the_pricing_left_out(aicap) -> None:
    # No AWS GPU type has a spot price in the catalogue: the error blamed the CPUs' TPOT and nothing else.
    r = aicap("-q", "size", "--model", "llama-3.1-70b", "--rate", "2", "--tpot-ms", "50", "--cloud", "aws", "--pricing", "spot")
    assert r.code == 3 and "have no published spot price and were excluded" in r.stderr and r.stderr.count("\n") == 1


def _bursty_mix(tmp_path: Path, *, rate: float, cv: float, ttft_ms: float) -> Path:
    """A fleet file of one llama-3.1-8b workload with a mix of short and long requests, bursty arrivals and a p99 target."""
    f = tmp_path / "f.yaml"
    f.write_text(f"schema_version: 1\nworkloads:\n  - name: w\n    model: llama-3.1-8b\n    requests_per_s: {rate:g}\n"
                 "    input_tokens: [{tokens: 300, weight: 6}, {tokens: 2000, weight: 3}, {tokens: 7000, weight: 1}]\n"
                 "    output_tokens: [{tokens: 50, weight: 5}, {tokens: 400, weight: 4}, {tokens: 1500, weight: 1}]\n"
                 f"    arrival_cv: {cv:g}\n    slo: {{ttft_ms: {ttft_ms:g}, tpot_ms: 20, percentile: p99}}\n"
                 "constraints: {clouds: [aws], hardware: [h100-sxm]}\n")  # fmt: skip
    return f


def test_a_plan_verify_accepts_near_its_target_holds_at_other_seeds(aicap, tmp_path: Path) -> None:
    # One 6,000-request run put this bursty workload's p99 TTFT at 266 ms against 270: accepted, it missed at 7 of 8
    # other seeds. A tail within 10% of its target is now replicated, and the worst run judged.
    f = _bursty_mix(tmp_path, rate=6, cv=2, ttft_ms=270)
    plan = tmp_path / "p.json"
    r = aicap("-q", "size", str(f), "--verify", "-f", "json", "--output", str(plan))
    assert r.code == 0 and r.json()["verification"]["holds"], r.stderr
    for seed in (1, 2, 3, 4):
        again = aicap("-q", "simulate", str(plan), "--seed", str(seed), "-f", "json")
        assert again.code == 0, (seed, again.stderr)


def test_an_option_that_replaces_a_fleet_constraint_says_so(aicap, tmp_path: Path) -> None:
    # --cloud azure on a fleet of clouds [aws, gcp] planned on Azure without a word (it replaces, it does not narrow).
    f = tmp_path / "f.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - {name: a, model: llama-3.1-8b, requests_per_s: 2}\n"
                 "constraints: {clouds: [aws, gcp]}\n")  # fmt: skip
    for command in ("size", "whatif"):  # whatif moved its baseline to Azure without a word
        r = aicap(command, str(f), "--cloud", "azure", "-f", "json")
        assert r.code == 0 and "--cloud azure replaces f.yaml's constraints.clouds (['aws', 'gcp'])" in r.stderr, (command, r.stderr)
        assert "replaces" not in aicap(command, str(f), "-f", "json").stderr


def test_a_plan_verify_cannot_make_hold_names_the_tail_and_the_burstiness(aicap, tmp_path: Path) -> None:
    # It named the workload alone after the re-solves; with cv 3 arrivals cutting capacity cannot fix a burst-set tail
    # (a 7,000-token prompt in a burst takes most of 100 ms on any H100 layout).
    f = _bursty_mix(tmp_path, rate=10, cv=3, ttft_ms=100)
    r = aicap("-q", "size", str(f), "--verify")
    assert r.code == 3 and "w (TTFT p99 " in r.stderr and "vs 100; its arrivals are bursty (cv 3)" in r.stderr
    assert "after 8 re-solves" in r.stderr


def test_a_bursty_plan_is_cut_from_the_load_it_missed_at_and_holds(aicap, tmp_path: Path) -> None:
    # The same mix against 350 ms missed after four re-solves: each round cut a replica's capacity by the miss (0.5 at most),
    # while whole instances left it running at a third of that capacity, so the re-solved plan ran the same load and
    # missed again. Cut from the load it missed at, it holds, and the simulated tail it states is within the target.
    f = _bursty_mix(tmp_path, rate=10, cv=3, ttft_ms=350)
    r = aicap("-q", "size", str(f), "--verify", "-f", "json")
    assert r.code == 0, r.stderr
    v = r.json()["verification"]
    assert v["holds"] and v["resolves"] >= 1 and all(0 < f < 0.5 for f in v["derated"].values())
    (w,) = r.json()["workloads"]
    assert w["ttft_ms"] <= 350 and w["ttft_ms"] == pytest.approx(max(x["simulated_ttft_ms"] for x in v["workloads"]), rel=1e-3)


def test_size_warns_of_a_fleet_model_file_reusing_a_catalogue_id_with_other_shapes(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(aicap("models", "show", "llama-3.1-8b", "-f", "yaml").stdout)
    doc["architecture"]["num_layers"] = 16
    (tmp_path / "half.yaml").write_text(yaml.safe_dump(doc))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("workloads:\n  - {name: chat, model: half.yaml, requests_per_s: 2, input_tokens: 512, output_tokens: 128,"
                     " slo: {ttft_ms: 2000, tpot_ms: 100}}\n")  # fmt: skip
    r = aicap("size", str(fleet), "-f", "json")
    assert r.code == 0, r.stderr
    assert "names itself 'llama-3.1-8b', a catalogue model, but differs from it" in r.stderr
    plain = aicap("size", "--model", "llama-3.1-8b", "--rate", "2", "-f", "json")  # a catalogue id: nothing to say
    assert plain.code == 0 and "names itself" not in plain.stderr


def test_min_replicas_on_a_static_fleet_keeps_that_many_replicas(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # min_replicas: 3 on a 1 req/s workload gave one replica without a word (then it was refused); a static plan now keeps 3
    fleet = tmp_path / "f.yaml"
    base = ("workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 500, output_tokens: 100, "
            "min_replicas: %d}\nconstraints: {clouds: [aws], hardware: [l40s]}\n")  # fmt: skip
    plans = {}
    for k in (1, 3):
        fleet.write_text(base % k)
        r = aicap("size", str(fleet), "-f", "json")
        assert r.code == 0, r.stderr
        plans[k] = r.json()
    (one,), (three,) = plans[1]["workloads"], plans[3]["workloads"]
    assert sum(d["replicas"] for d in one["deployments"]) == 1
    assert sum(d["replicas"] for d in three["deployments"]) == 3
    assert plans[3]["totals"]["usd_per_hour"] == pytest.approx(3 * plans[1]["totals"]["usd_per_hour"])


def test_the_unit_price_column_prices_an_encoder_per_request_and_leaves_a_prefill_pool_blank(aicap) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2] / "examples"
    mixed = aicap("size", str(root / "mixed-embedding-llm.yaml"), "-f", "table")
    assert mixed.code == 0, mixed.stderr
    assert any("per 1M requests" in line for line in mixed.stdout.splitlines() if "bge" in line or "embed" in line)
    split = aicap("size", str(root / "disaggregated-chat.yaml"), "-f", "table")
    assert split.code == 0, split.stderr
    prefill = [line for line in split.stdout.splitlines() if ".prefill" in line and "│" in line and "p5" in line]
    assert prefill and all(x.rstrip().rstrip("│").rstrip().endswith("–") for x in prefill) and "per 1M requests" not in split.stdout


def test_a_seed_without_verify_is_refused(aicap) -> None:  # type: ignore[no-untyped-def]
    # size --seed 3 was accepted and changed nothing: only --verify draws traffic
    for seed in ("3", "0"):
        r = aicap("size", "--seed", seed)
        assert r.code == 2 and r.stdout == "" and "add --verify or drop --seed" in r.stderr


def test_plans_give_the_price_dates_of_the_instances_they_buy(aicap) -> None:  # type: ignore[no-untyped-def]
    # a static plan's header gave the whole catalogue's range (2025-01-31...2026-11-09), hourly plans no date at all
    static = aicap("size", "-f", "json").json()
    used = sorted(i["price_date"] for i in static["instances"])
    assert static["catalogue"]["price_dates"] == [used[0], used[-1]]
    hourly = aicap("size", str(Path(__file__).resolve().parents[2] / "examples" / "diurnal-chat.yaml"), "-f", "json").json()
    counts = [i for p in hourly["periods"] for i in p["instances"]]
    assert counts and all(i["price_date"] for i in counts)
    dates = sorted({i["price_date"] for i in counts})
    assert dates[0] >= hourly["catalogue"]["price_dates"][0] and dates[-1] <= hourly["catalogue"]["price_dates"][1]
    table = aicap("size", str(Path(__file__).resolve().parents[2] / "examples" / "diurnal-chat.yaml"))
    assert f"prices of {hourly['catalogue']['price_dates'][0]}" in table.stdout


def test_a_static_spot_plan_keeps_its_spot_headroom(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # pricing: spot with spot_headroom 0.5 bought a3-highgpu-8g with every device loaded, headroom ignored, nothing said
    def plan(pricing: str, headroom: float) -> dict:  # type: ignore[type-arg]
        fleet = tmp_path / f"{pricing}-{headroom}.yaml"
        fleet.write_text(f"workloads:\n  - {{name: chat, model: llama-3.1-8b, requests_per_s: 20, input_tokens: 500, output_tokens: 200,\n"
                         f"     slo: {{ttft_ms: 2000, tpot_ms: 60}}}}\nconstraints: {{clouds: [gcp], hardware: [h100-sxm],"
                         f" pricing: [{pricing}], spot_headroom: {headroom}, spot_max_share: 0.3}}\n")  # fmt: skip
        r = aicap("size", str(fleet), "-f", "json")
        assert r.code == 0, r.stderr
        return r.json()  # type: ignore[no-any-return]

    full, spot = plan("on_demand", 0.5), plan("spot", 0.5)
    cap = {(d["tp"], d["pp"], d["weights_dtype"]): d["capacity_requests_per_s"] / d["replicas"]
           for d in full["workloads"][0]["deployments"]}  # fmt: skip
    same = [d for d in spot["workloads"][0]["deployments"] if (d["tp"], d["pp"], d["weights_dtype"]) in cap]
    assert same  # a layout both plans use: on spot each replica is planned at half its capacity
    for d in same:
        assert d["capacity_requests_per_s"] / d["replicas"] == pytest.approx(cap[(d["tp"], d["pp"], d["weights_dtype"])] * 0.5, rel=1e-3)
    said = [w for w in spot["warnings"] if w.startswith("spot: each replica is planned at 50% of its capacity")]
    assert said and "spot_max_share applies to plans over demand periods" in said[0]
    assert not [w for w in full["warnings"] if w.startswith("spot:")]


@pytest.mark.parametrize(("model", "rate", "lengths", "tpot_ms"), [
    # under SGLang's graph cap of 256; 10.0% under (promised 12.47 ms, simulated 13.72) while the load model ran one prefill
    # step a round, where the engine runs a chain of them (test_prefill_first_load): now 10.45 ms against 10.89
    ("llama-3.1-8b", "150", ("512", "512"), "40"),
    ("qwen3-30b-a3b", "40", ("800", "200"), "50"),  # the load model had put it past the cap, on the slower branch (98 ms promised)
    ("llama-3.1-70b", "20", ("1024", "256"), "60"),
])  # fmt: skip
def test_sglang_plans_promise_the_tpot_the_simulator_finds(aicap, model: str, rate: str, lengths: tuple[str, str], tpot_ms: str) -> None:
    """SGLang prefills before it decodes and graphs decode batches up to a cap: its plans promised TPOT p99 20-30% under the
    simulated one while the load model priced mixed steps; now within 10%, before --verify has anything to correct."""
    r = aicap("-q", "size", "--model", model, "--rate", rate, "--engine", "sglang", "--hardware", "h100-sxm", "--tpot-ms", tpot_ms,
              "--ttft-ms", "3000", "--input-tokens", lengths[0], "--output-tokens", lengths[1], "--verify", "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    v = r.json()["verification"]
    (w,) = v["workloads"]
    assert v["resolves"] == 0 and w["holds"]
    assert w["simulated_tpot_ms"] == pytest.approx(w["promised_tpot_ms"], rel=0.10)
    assert w["simulated_ttft_ms"] <= w["promised_ttft_ms"] * 1.05  # TTFT is not promised under the simulated


def test_a_cpu_plan_fits_the_instance_s_host_memory_not_the_socket_s_maximum(aicap) -> None:
    # An EPYC 9654 socket carries up to 768 GiB; AWS c7a.48xlarge has 384 GiB over its 2 sockets. Llama-3.1-405B in bf16
    # (756 GiB of weights) was planned there, TP2, as if each socket had 768 GiB; it fits only where the host memory holds it.
    from aicap.hardware_db import load_catalogue

    cat = load_catalogue()
    c7a, c3d = cat.instance("c7a.48xlarge"), cat.instance("c3d-standard-360")
    epyc = cat.device("epyc-9654")
    assert (c7a.memory_gib_per_device(epyc), c3d.memory_gib_per_device(epyc)) == (192.0, 720.0) and epyc.memory_gib == 768
    assert cat.instance("p5.48xlarge").memory_gib_per_device(cat.device("h100-sxm")) == 80  # an accelerator keeps its own
    args = ("size", "--model", "llama-3.1-405b", "--rate", "0.001", "--input-tokens", "200", "--output-tokens", "50", "--ttft-ms",
            "3600000", "--tpot-ms", "60000", "--hardware", "epyc-9654", "--precision", "bf16")  # fmt: skip
    aws = aicap(*args, "--cloud", "aws")
    assert aws.code == 3 and "the largest allowed instance (m7a.48xlarge) has 2×384 GiB" in aws.stderr, aws.stderr
    anywhere = aicap(*args, "-f", "json")
    assert anywhere.code == 0, anywhere.stderr
    [dep] = anywhere.json()["workloads"][0]["deployments"]
    assert dep["instance_type"] == "c3d-standard-360" and dep["tp"] == 2


def test_output_over_the_input_fleet_is_refused_before_sizing(aicap, tmp_path: Path) -> None:
    # `size fleet.yaml -o fleet.yaml` replaced the fleet with its plan, exit 0, without a word.
    fleet = tmp_path / "fleet.yaml"
    text = "workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2, input_tokens: 500, output_tokens: 100}\n"
    fleet.write_text(text)
    (tmp_path / "alias.yaml").symlink_to(fleet)
    for target in (fleet, tmp_path / "alias.yaml"):
        r = aicap("size", str(fleet), "-o", str(target))
        assert r.code == 2 and f"--output {target}: is the input {fleet}; writing there would replace it" in r.stderr, r.stderr
    assert fleet.read_text() == text


def test_a_fleet_on_standard_input_is_read_with_a_dash(aicap, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # `cat fleet.yaml | aicap size -` said "-: no such file"; `-o -` wrote a file named "-"
    text = "workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2, input_tokens: 500, output_tokens: 100}\n"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text)
    piped = aicap("size", "-", "-f", "json", stdin=text)
    assert piped.code == 0, piped.stderr
    assert piped.json()["totals"] == aicap("size", str(fleet), "-f", "json").json()["totals"]
    monkeypatch.chdir(tmp_path)
    r = aicap("size", str(fleet), "-o", "-")
    assert r.code == 2 and "--output -: give a file name" in r.stderr and not (tmp_path / "-").exists()
    bad = aicap("size", "-", stdin=text + "  - {name: batch, model: llama-3.1-8b}\n")
    assert bad.code == 2 and bad.stderr.startswith("aicap: error: <stdin>:3: workloads[1]: workload 'batch' gives no requests_per_s")


WORKLOAD = "workloads:\n  - name: chat\n    model: llama-3.1-8b\n    requests_per_s: 2\n    slo: {ttft_ms: 1000, tpot_ms: 50}\n"


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        # a misspelt instance type left the workload no instance: exit 3, "no deployment ... on the allowed instances:" and nothing
        ("    instance_types: [p5.48xlarg]\n", 2, "fleet.yaml:6: unknown instance 'p5.48xlarg': did you mean p5.48xlarge"),
        # one the constraints exclude: exit 3 naming the filter
        ("    instance_types: [a3-highgpu-8g]\n", 3, "passes its filters (instance_types a3-highgpu-8g); none of its instance_types is"),
        ("    network_kinds: [infiniband9]\n", 2, "fleet.yaml:6: workloads[0].network_kinds[0]: Input should be 'efa', 'infiniband'"),
        # aicap sets it on the pools it splits: given by hand, a prefill role dropped the TPOT target without a word
        ("    disaggregated_role: prefill\n", 2, "fleet.yaml:6: workloads[0].disaggregated_role: set by aicap on the pools"),
        # formats the workload's engine does not serve: every device "supported none of the allowed precisions bf16, fp8"
        ("    engine: vllm\n    kv_dtype: int8\n", 2, "workload 'chat': kv_dtype int8: vLLM keeps the KV cache in fp32, bf16, fp16, fp8"),
        ("    engine: lmdeploy\n    precisions: [int8]\n", 2, "workload 'chat': precisions int8: LMDeploy (TurboMind) serves weights in"),
    ],
)
def test_a_workloads_own_filters_are_checked_by_name(aicap, tmp_path: Path, extra: str, code: int, says: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(WORKLOAD + extra + "constraints: {clouds: [aws]}\n")
    r = aicap("-q", "size", str(fleet))
    assert r.code == code and says in r.stderr, r.stderr


def test_a_plan_over_periods_on_demand_only_says_so_in_its_totals(aicap, tmp_path: Path) -> None:
    # "the same profile on on-demand only │ -" where the plan is on demand already
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "diurnal-chat.yaml").read_text())
    doc["constraints"] = {"clouds": ["aws", "gcp"], "pricing": ["on_demand"]}
    fleet = tmp_path / "od.yaml"
    fleet.write_text(yaml.safe_dump(doc))
    r = aicap("-q", "size", str(fleet))
    assert r.code == 0 and "this plan (priced on demand only)" in r.stdout, r.stderr


def test_a_pricing_model_that_leaves_only_cpus_says_so(aicap, tmp_path: Path) -> None:
    # --pricing spot on AWS (no GPU type has a published spot price here) planned 173 CPU servers at 317x the GPU plan's cost,
    # said only as "19 instance types have no published spot price"
    fleet = tmp_path / "f.yaml"
    fleet.write_text(WORKLOAD + "constraints: {clouds: [aws]}\n")
    r = aicap("size", str(fleet), "--pricing", "spot")
    assert "none of the accelerator types is left, so the plan can use server CPUs only" in r.stderr, r.stderr
    assert "server CPUs only" not in aicap("size", str(fleet), "-f", "json").stderr
    # a fleet that allows CPUs alone lost no accelerator to the price: nothing to say
    cpus = aicap("size", str(Path(__file__).resolve().parents[2] / "examples" / "cpu-only.yaml"), "--pricing", "spot")
    assert "server CPUs only" not in cpus.stderr
