"""`aicap estimate|explain|validate|calibrate` through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

KEYS = {"schema_version", "model", "hardware", "devices", "tp", "pp", "batch", "fits", "memory_gib", "kv_cache_tokens", "ttft_s",
        "tpot_s", "e2e_s", "throughput", "bound", "error_band_pct"}  # fmt: skip


def test_estimate_json_contract(aicap) -> None:
    r = aicap("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "--tp", "4", "--pp", "1",
              "--input-tokens", "1500", "--output-tokens", "300", "--format", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    doc = r.json()
    assert set(doc) >= KEYS
    assert set(doc["memory_gib"]) >= {"weights", "kv_cache", "activations", "overhead", "total", "capacity"}
    assert set(doc["throughput"]) == {"output_tokens_per_s", "total_tokens_per_s", "requests_per_s"}
    assert doc["devices"] == 8 and doc["replicas"] == 2 and doc["fits"]
    assert doc["bound"]["decode"] in {"compute", "memory", "network", "overhead"}
    assert set(doc["error_band_pct"]) >= {"ttft", "tpot", "throughput"}


def test_replicas_multiply_throughput(aicap) -> None:
    base = ["estimate", "-m", "llama-3-8b", "--hardware", "h100-sxm", "--tp", "1", "--batch", "32", "-f", "json"]
    one, four = aicap(*base).json(), aicap(*base, "--devices", "4").json()
    assert four["throughput"]["output_tokens_per_s"] == pytest.approx(4 * one["throughput"]["output_tokens_per_s"], rel=1e-3)


def test_layout_search_picks_a_fitting_layout(aicap) -> None:
    doc = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "-f", "json").json()
    assert doc["fits"] and doc["tp"] * doc["pp"] * doc["replicas"] <= 8


def test_a_layout_barely_ahead_on_throughput_loses_to_the_quicker_one(aicap) -> None:  # type: ignore[no-untyped-def]
    # TP1·PP2 x 2 replicas was chosen over TP1 x 4 for a 0.5% edge in throughput, at 1.7x the TPOT under load
    from aicap.sizing.serve.estimate import LAYOUT_TIE

    base = ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "4", "-f", "json")
    chosen = aicap(*base).json()
    assert (chosen["tp"], chosen["pp"], chosen["replicas"]) == (1, 1, 4)
    assert aicap(*base, "--tp", "1").json() == chosen
    piped = aicap(*base, "--tp", "1", "--pp", "2").json()
    ahead = piped["throughput"]["output_tokens_per_s"] / chosen["throughput"]["output_tokens_per_s"] - 1
    assert 0 < ahead < LAYOUT_TIE and chosen["tpot_s"] < piped["tpot_s"]  # the tie the rule breaks, not a faster layout lost
    wide = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "-f", "json").json()
    for tp, pp in ((4, 1), (8, 1)):  # a layout further ahead than the tie keeps its place
        other = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "--tp", str(tp), "--pp", str(pp),
                      "-f", "json").json()  # fmt: skip
        assert wide["throughput"]["output_tokens_per_s"] > (1 + LAYOUT_TIE) * other["throughput"]["output_tokens_per_s"]


def test_not_fitting_says_why_and_exits_3(aicap) -> None:
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "1", "--batch", "1", "-f", "json")
    assert r.code == 3
    doc = r.json()
    assert not doc["fits"] and "GiB usable" in doc["advice"]
    # a deployment that cannot start runs at no speed: the JSON gave the roofline's TTFT, TPOT and throughput beside fits: false
    assert doc["ttft_s"] is doc["tpot_s"] is doc["e2e_s"] is None and set(doc["throughput"].values()) == {None}
    assert r.stderr.startswith("aicap: error: llama-3.1-70b on h100-sxm: does not fit") and "GiB" in r.stderr
    # The table showed TTFT, TPOT and throughput of a deployment that cannot run, with error bands.
    table = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "1", "--batch", "1").stdout
    assert "– (it does not fit: see above)" in table and "TPOT (mean" not in table and "output tokens/s" not in table


def test_missed_tpot_target_exits_3_with_numbers(aicap) -> None:
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "l40s", "--tp", "4", "--tpot-ms", "5", "-f", "json")
    assert r.code == 3
    assert r.json()["fits"] and "TPOT" in r.json()["advice"]
    assert "> target 5 ms" in r.stderr and "try" in r.stderr


def test_batch_auto_respects_tpot(aicap) -> None:
    args = ["estimate", "-m", "llama-3-8b", "--hardware", "a100-80gb-sxm", "-f", "json"]
    free, capped = aicap(*args).json(), aicap(*args, "--tpot-ms", "30").json()
    assert capped["tpot_s"] <= 0.030 and capped["batch"] <= free["batch"]


def test_encoder_and_generic_models(aicap) -> None:
    bert = aicap("estimate", "-m", "bge-large-en", "--hardware", "l4", "--input-tokens", "256", "-f", "json").json()
    assert bert["throughput"]["requests_per_s"] > 0 and bert["tpot_s"] is None
    cnn = aicap("estimate", "-m", "resnet-50", "--hardware", "t4", "-f", "json").json()
    assert cnn["throughput"]["requests_per_s"] > 0
    table = aicap("estimate", "-m", "bge-large-en", "--hardware", "l4", "--input-tokens", "256").stdout
    assert "requests/s" in table and "output tokens/s" not in table and "KV" not in table  # no token made, no cache kept


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--batch", "-3"], "--batch -3"),
        (["--batch", "lots"], "--batch 'lots'"),
        (["--tp", "3"], "--tp 3"),
        (["--devices", "-1"], "--devices -1"),
        (["--weights-dtype", "fp5"], "--weights-dtype 'fp5'"),
        (["--input-tokens", "0"], "lengths must be positive"),
    ],
)
def test_estimate_bad_input_exit_2(aicap, args: list[str], needle: str) -> None:
    r = aicap("estimate", "-m", "llama-3-8b", "--hardware", "h100-sxm", *args)
    assert r.code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "csv", "markdown"])
def test_estimate_every_format(aicap, fmt: str) -> None:
    r = aicap("estimate", "-m", "mistral-7b", "--hardware", "l40s", "-f", fmt)
    assert r.code == 0 and r.stdout.strip()


def test_estimate_json_is_deterministic(aicap) -> None:
    args = ("estimate", "-m", "mixtral-8x7b", "--hardware", "h100-sxm", "--devices", "2", "-f", "json")
    assert aicap(*args).stdout == aicap(*args).stdout


def test_explain_decode_rows(aicap) -> None:
    doc = aicap("explain", "-m", "llama-3-8b", "--hardware", "h100-sxm", "--batch", "1", "-f", "json").json()
    ops = {r["operator"]: r for r in doc["operators"]}
    assert {"attn_proj", "attention", "mlp", "lm_head", "network", "overhead"} <= set(ops)
    assert ops["mlp"]["bound"] == "memory"
    assert sum(r["share_pct"] for r in doc["operators"]) == pytest.approx(100, abs=0.5)


@pytest.mark.parametrize("hardware", ["h100-sxm", "a100-80gb-sxm", "l40s"])
def test_explain_rows_follow_from_its_roofline_and_exposed_share(aicap, hardware: str) -> None:
    # Each operator's time is max(c, m) + α·min(c, m) at the stated rates: a reader can redo every row from the document.
    doc = aicap("explain", "-m", "llama-3.1-8b", "--hardware", hardware, "--batch", "64", "-f", "json").json()
    roof = doc["roofline"]
    alpha = roof["exposed_share"]
    for r in doc["operators"]:
        if r["operator"] in {"attn_proj", "mlp", "lm_head"}:  # at the weights' rates (attention runs at the KV cache's)
            c, m = r["gflops"] * 1e9 / roof["peak_flops"], r["mbytes"] * 1e6 / roof["bandwidth_bytes_per_s"]
            assert r["time_ms"] == pytest.approx((max(c, m) + alpha * min(c, m)) * 1e3, rel=1e-3), r
    table = aicap("explain", "-m", "llama-3.1-8b", "--hardware", hardware, "--batch", "64").stdout
    assert ("plus " + f"{alpha:g} of the shorter" if alpha else "the longer of its compute and memory times") in " ".join(table.split())


def test_explain_exits_3_where_estimate_does_and_states_what_its_step_assumes(aicap) -> None:
    # It exited 0 for 810 GB of weights on one 80 GB card, a batch whose KV cache cannot fit, and a missed --tpot-ms.
    for args in (("-m", "llama-3.1-405b", "--batch", "8"), ("-m", "llama-3.1-8b", "--batch", "5000"),
                 ("-m", "llama-3.1-8b", "--batch", "64", "--tpot-ms", "1")):  # fmt: skip
        est = aicap("estimate", *args, "--hardware", "h100-sxm")
        exp = aicap("explain", *args, "--hardware", "h100-sxm")
        assert est.code == exp.code == 3 and exp.stderr.splitlines()[-1] == est.stderr.splitlines()[-1]
        assert exp.stdout  # the table still shows where the time goes
    assert "--batch 5,000 is above" in aicap("explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "5000").stderr
    doc = aicap("explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "64", "--input-tokens", "1000",
                "--output-tokens", "300", "-f", "json").json()  # fmt: skip
    assert doc["context_tokens"] == 1150.0  # decode: every request at input + output/2
    table = aicap("explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "64", "--phase", "prefill").stdout
    assert "64 prompts of 1,024 tokens in one pass" in " ".join(table.split())


def test_decode_options_are_refused_for_a_model_that_generates_nothing(aicap) -> None:
    # estimate ignored them (its JSON said output_tokens 0); explain too
    for command in ("estimate", "explain"):
        r = aicap(command, "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "256", "--output-tokens", "999", "--tpot-ms", "5")
        assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
        assert "--output-tokens applies to a model that generates tokens; bert-base is an encoder" in r.stderr
        assert r.stderr.rstrip().endswith("drop --output-tokens and --tpot-ms")
    assert aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "256").code == 0


def test_explain_refuses_the_decode_phase_of_an_encoder(aicap) -> None:
    r = aicap("explain", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "256", "--phase", "decode")
    assert r.code == 2 and r.stdout == "" and "--phase decode: bert-base is an encoder and runs no decode step" in r.stderr
    assert aicap("explain", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "256", "--phase", "prefill").code == 0


def test_explain_plot_without_matplotlib_or_with_it(aicap, tmp_path) -> None:
    out = tmp_path / "roof.png"
    r = aicap("explain", "-m", "llama-3-8b", "--hardware", "h100-sxm", "--phase", "prefill", "--plot", str(out))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert r.code == 2 and "pip install '.[plot]' from the aicap repository" in r.stderr
    else:
        assert r.code == 0 and out.stat().st_size > 1000


def test_validate_table_and_json(aicap) -> None:
    r = aicap("validate", "-f", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["summary"]["by_kind"]["all"]["median"] <= 20.0
    assert {"offline_throughput", "static_batch", "single_stream", "prefill_latency"} <= set(doc["summary"]["by_kind"])


def test_calibrate_writes_an_overlay_that_loads(aicap, tmp_path) -> None:
    cases = tmp_path / "mine.csv"
    cases.write_text("id,model,hardware,devices,tp,pp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
                     "a,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,single_stream,5,200,1,single_stream_tok_s,90\n"
                     "b,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,prefill_latency,2048,1,1,ttft_ms_mean,140\n")  # fmt: skip
    out = tmp_path / "overlay.yaml"
    r = aicap("calibrate", str(cases), "--output", str(out), "-f", "json")
    assert r.code == 0, r.stderr
    fams = {row["family"] for row in r.json()}
    assert fams == {"nvidia-ampere"}
    est = aicap("--catalog", str(out), "estimate", "-m", "llama-2-7b", "--hardware", "a100-80gb-sxm", "--batch", "1",
                "--input-tokens", "5", "--output-tokens", "200", "-f", "json").json()  # fmt: skip
    assert 1 / est["tpot_s"] == pytest.approx(90, rel=0.15)


def test_calibrate_refines_the_shipped_factors_from_a_few_measurements(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One TTFT measurement moves compute (what it measures), keeps every other shipped factor, and the error before
    is the catalogue's: it used to refit from the priors, wipe the fitted factors and fit memory first (A100's
    published median error went from 5% to 78% with the overlay)."""
    import yaml

    cases = tmp_path / "ttft.csv"
    cases.write_text("id,model,hardware,devices,tp,pp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
                     "b,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,prefill_latency,2048,1,1,ttft_ms_mean,150\n")  # fmt: skip
    before = aicap("validate", str(cases), "-f", "json").json()["rows"][0]["abs_error_pct"]
    out = tmp_path / "overlay.yaml"
    r = aicap("calibrate", str(cases), "--output", str(out), "-f", "json")
    assert r.code == 0, r.stderr
    (row,) = r.json()
    assert row["median_err_before_%"] == pytest.approx(before, abs=0.1)  # the catalogue's error, not the priors'
    (fitted,) = yaml.safe_load(out.read_text())["efficiency"]
    from aicap.hardware_db import load_catalogue

    ampere = load_catalogue().efficiency["nvidia-ampere"]
    assert fitted["memory"] == ampere.memory and fitted["step_overhead_ms"] == ampere.step_overhead_ms  # kept
    assert fitted["memory_by_dtype"] == dict(ampere.memory_by_dtype) and fitted["moe_compute"] == ampere.moe_compute
    assert fitted["compute"] != ampere.compute  # what a prefill measures
    base = ("estimate", "-m", "llama-2-7b", "--hardware", "a100-80gb-sxm", "--batch", "1", "--input-tokens", "5", "--output-tokens",
            "200", "-f", "json")  # fmt: skip
    tpot = aicap(*base).json()["tpot_s"]
    assert aicap("--catalog", str(out), *base).json()["tpot_s"] == pytest.approx(tpot, rel=0.02)  # decode untouched


def test_calibrate_warns_when_a_factor_ends_on_its_bound(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cases = tmp_path / "odd.csv"  # 20 tokens/s for a 7B model on an A100: no factor in range explains it
    cases.write_text("id,model,hardware,devices,tp,pp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
                     "a,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,single_stream,5,200,1,single_stream_tok_s,2\n")  # fmt: skip
    r = aicap("calibrate", str(cases), "--output", str(tmp_path / "o.yaml"), "-f", "json")
    assert r.code == 0, r.stderr
    assert "fitted to the end of its range" in r.stderr and f"aicap validate {cases}" in r.stderr


@pytest.mark.parametrize(
    ("column", "bad", "says"),
    [
        ("hardware", "l40x", "unknown hardware 'l40x': did you mean l40"),
        ("model", "llama-2-7x", "unknown model 'llama-2-7x': did you mean llama-2-7b"),
    ],
)
def test_calibrate_names_an_unknown_id_at_its_row(aicap, tmp_path, column: str, bad: str, says: str) -> None:  # type: ignore[no-untyped-def]
    # it said "no case can be predicted (unknown device or model ids, ...)" for the whole file
    row = {"model": "llama-2-7b", "hardware": "a100-80gb-sxm", column: bad}
    cases = tmp_path / "m.csv"
    cases.write_text("id,model,hardware,devices,tp,pp,weights_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
                     f"a,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,single_stream,5,200,1,single_stream_tok_s,80\n"
                     f"b,{row['model']},{row['hardware']},1,1,1,bf16,single_stream,5,200,1,single_stream_tok_s,80\n")  # fmt: skip
    r = aicap("calibrate", str(cases), "--output", str(tmp_path / "o.yaml"))
    assert r.code == 2 and f"{cases}:3: {says}" in r.stderr, r.stderr
    r = aicap("calibrate", str(cases), "--output", str(tmp_path / "o.csv"))  # it wrote YAML into o.csv
    assert r.code == 2 and "the overlay is a YAML catalogue file" in r.stderr and not (tmp_path / "o.csv").exists()


def test_estimates_say_whether_factors_were_fitted(aicap) -> None:
    fitted = aicap("estimate", "-m", "llama-3-8b", "--hardware", "h100-sxm", "-f", "json").json()
    prior = aicap("estimate", "-m", "llama-3-8b", "--hardware", "b200", "-f", "json").json()
    assert fitted["efficiency_calibrated"] is True and prior["efficiency_calibrated"] is False
    table = aicap("estimate", "-m", "llama-3-8b", "--hardware", "b200").stdout
    assert "not fitted on measurements of it" in table


def test_a_hybrid_model_reports_its_state_per_sequence(aicap) -> None:
    base = ["estimate", "--hardware", "h100-sxm", "--input-tokens", "1000", "--output-tokens", "300", "-f", "json"]
    hybrid, plain = aicap(*base, "-m", "qwen3.5-9b").json(), aicap(*base, "-m", "qwen3-8b").json()
    # 24 GDN layers x 2,146,304 B of state against 32,768 B per token of KV cache (8 attention layers): 1,572 tokens.
    assert hybrid["state_tokens_per_sequence"] == 1572 and plain["state_tokens_per_sequence"] == 0
    # The batch at this context pays the state: fewer sequences than the tokens alone would hold.
    assert hybrid["max_batch_at_context"] < hybrid["kv_cache_tokens"] / 1300 / 2
    table = aicap(*base[:-2], "-m", "qwen3.5-9b")
    assert "1,572 of those tokens" in table.stdout


def test_a_layout_whose_kv_pool_is_empty_does_not_fit(aicap) -> None:
    # gpt-oss-120b in fp16 over 8 V100s: weights and overhead leave 0.1 GiB, enough for one request's bytes but not for
    # the workspace of a whole 8,192-token step that the engine reserves before it sizes the KV pool (0 tokens).
    r = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "v100-sxm", "--tp", "8", "-f", "json")
    assert r.code == 3 and r.json()["fits"] is False and r.json()["kv_cache_tokens"] == 0
    assert "the KV cache the engine allocates holds 0 tokens" in r.stderr and "PP=2" in r.stderr
    ok = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "v100-sxm", "--tp", "8", "--pp", "2", "-f", "json")
    assert ok.code == 0 and ok.json()["fits"] and ok.json()["kv_cache_tokens"] > 0


@pytest.mark.parametrize("device", ["a100-80gb-sxm", "t4", "xeon-8480"])
def test_fp8_weights_need_fp8_tensor_cores_as_plans_do(aicap, device: str) -> None:
    # size refuses fp8 there ("supports none of the allowed precisions fp8"); estimate and simulate must agree.
    one = ("-m", "llama-3.1-8b", "--hardware", device, "--weights-dtype", "fp8")
    for args in (("estimate", *one), ("simulate", *one, "--rate", "1", "--requests", "50")):
        r = aicap(*args)
        assert r.code == 2 and f"{device} has no fp8 tensor cores" in r.stderr and "--weights-dtype int8" in r.stderr
    r = aicap("size", "-m", "llama-3.1-8b", "--rate", "1", "--hardware", device, "--precision", "fp8")
    assert r.code == 3 and "supports none of the allowed precisions fp8" in r.stderr


def test_devices_that_do_not_make_whole_replicas_are_refused_or_noted(aicap) -> None:
    base = ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "9", "--tp", "8")
    r = aicap(*base, "--pp", "1", "-f", "json")
    assert r.code == 2 and "not a whole number of TP8·PP1 replicas" in r.stderr
    r = aicap(*base, "-f", "json")  # PP is chosen: the best layout leaves one device over, and says so
    assert r.code == 0 and r.json()["devices"] == 8 and "uses 8 of the 9 devices" in r.stderr


def test_the_tpot_verdict_row_appears_only_for_a_target(aicap) -> None:
    base = ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm")
    assert "meets --tpot-ms" not in aicap(*base).stdout  # no target given: nothing to meet
    assert "meets --tpot-ms" in aicap(*base, "--tpot-ms", "30").stdout


def test_write_bands_stores_the_bands_without_load_and_under_load(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    out = tmp_path / "accuracy.yaml"
    r = aicap("validate", "--write-bands", str(out), "-f", "json")
    assert r.code == 0
    doc = yaml.safe_load(out.read_text())
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "hardware_db" / "validation" / "accuracy.yaml").read_text())
    assert doc["p90_abs_error_pct"] == shipped["p90_abs_error_pct"] and doc["under_load"] == shipped["under_load"]
    assert doc["scored_metrics"] == 92 and doc["under_load"]["scored_metrics"] == 475
    r = aicap("validate", str(tmp_path / "cases.yaml"), "--write-bands", str(out))
    assert r.code == 2 and "takes no cases file" in r.stderr


@pytest.mark.parametrize(("model", "ep", "needle"), [
    ("deepseek-v3", "16", "--ep 16: the expert-parallel group is carved from the tensor-parallel one, so it must divide --tp 8"),
    ("llama-3.1-8b", "2", "--ep 2: expert parallelism needs a mixture-of-experts model; llama-3.1-8b has no experts"),
])  # fmt: skip
def test_an_expert_parallel_degree_that_cannot_run_names_the_rule_it_breaks(aicap, model: str, ep: str, needle: str) -> None:
    # One message served both rules: an MoE model was told expert parallelism needs a mixture-of-experts model.
    r = aicap("estimate", "-m", model, "--hardware", "h200-sxm", "--tp", "8", "--ep", ep)
    assert r.code == 2 and needle in r.stderr


def test_options_estimate_would_otherwise_ignore_or_misread_are_refused_or_flagged(aicap, tmp_path: Path) -> None:
    base = ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm")
    # a decoder with no output token: it reported a TPOT and 37.6 output tokens/s
    r = aicap(*base, "--output-tokens", "0")
    assert r.code == 2 and "--output-tokens 0: a decoder generates at least one token" in r.stderr
    # --disaggregate dropped these silently (TTFT and TPOT as without them)
    for extra in (("--prefix-cached", "0.5"), ("--speculative", "eagle")):
        r = aicap(*base, "--disaggregate", *extra)
        assert r.code == 2 and f"{extra[0]} is not applied by estimate --disaggregate" in r.stderr
    # a batch above the engine's default cap is estimated as asked, and the assumption said
    r = aicap("estimate", "-m", "llama-3.2-1b", "--hardware", "h200-sxm", "--engine", "tgi", "--batch", "3000", "-f", "json")
    assert r.code == 0 and r.json()["batch"] == 3000
    assert "--batch 3,000 is above TGI's default cap of 128 running requests" in r.stderr
    assert "max-num-seqs" not in r.stderr and "max_batch_size" not in r.stderr  # TGI has no flag map: no other engine's flag
    r = aicap("estimate", "-m", "llama-3.2-1b", "--hardware", "h200-sxm", "--engine", "trtllm", "--batch", "3000", "-f", "json")
    assert "(trtllm --max_batch_size)" in r.stderr and "max-num-seqs" not in r.stderr, r.stderr  # its own flag, from its flag map
    at_cap = aicap("estimate", "-m", "llama-3.2-1b", "--hardware", "h200-sxm", "--engine", "tgi", "--batch", "128")
    assert "default cap" not in at_cap.stderr
    # a plot into a missing folder was an internal error (exit 4) after the work
    r = aicap("explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--plot", str(tmp_path / "no" / "x.png"))
    assert r.code == 2 and "the folder" in r.stderr and "does not exist" in r.stderr
    # whatif named an option it does not have
    r = aicap("whatif", "--model", "llama-3.1-8b", "--tpot-ms", "40")
    assert r.code == 2 and r.stderr.strip() == "aicap: error: --rate is required with --model (requests per second)"


def test_an_encoders_auto_batch_is_the_knee_and_its_latency_is_the_batchs(aicap) -> None:
    # BERT-base at 512 tokens ran batch 2,048 by default, 533 ms a batch, labelled "TTFT (one request, idle)", for the
    # requests/s batch 64 already reached.
    doc = aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "512", "-f", "json").json()
    full = aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "512", "--batch", "2048", "-f", "json").json()
    assert doc["batch"] < 2048 and doc["throughput"]["requests_per_s"] >= 0.99 * full["throughput"]["requests_per_s"]
    smaller = aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "512", "--batch", str(doc["batch"] - 1),
                    "-f", "json").json()  # fmt: skip
    assert smaller["throughput"]["requests_per_s"] < 0.99 * full["throughput"]["requests_per_s"]  # the smallest such batch
    assert doc["ttft_s"] < full["ttft_s"] / 10
    table = aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "512").stdout
    assert f"latency (a batch of {doc['batch']:,}, all together)" in table and "one request, idle" not in table


def test_a_decoders_auto_batch_is_the_knee_of_its_throughput(aicap) -> None:
    # Llama-3.1-8B on an EPYC socket ran batch 2,048 by default, TPOT 32.6 s, for the 63 tokens/s batch 32 already decoded.
    common = ("estimate", "-m", "llama-3.1-8b", "--hardware", "epyc-9654", "-f", "json")
    doc = aicap(*common).json()
    full = aicap(*common, "--batch", str(doc["max_batch_at_context"])).json()
    best = full["throughput"]["output_tokens_per_s"]
    assert doc["batch"] < 64 and doc["throughput"]["output_tokens_per_s"] >= 0.99 * best and doc["tpot_s"] < full["tpot_s"] / 20
    smaller = aicap(*common, "--batch", str(doc["batch"] - 1)).json()
    assert smaller["throughput"]["output_tokens_per_s"] < 0.99 * best  # the smallest such batch
    gpu = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-f", "json").json()
    assert 64 < gpu["batch"] <= gpu["max_batch_at_context"]  # where throughput still climbs, the knee is far up


def test_an_item_model_takes_no_token_count(aicap) -> None:
    # ResNet-50 ran 67,040 images/s at --input-tokens 1 and 82 at 100,000: the "tokens" went through the prefill budget; then
    # its speed ignored them but its total tokens/s did not (556,200,000 at --input-tokens 100000): the flag is refused
    for n in ("1", "100000"):
        r = aicap("estimate", "-m", "resnet-50", "--hardware", "h100-sxm", "--input-tokens", n)
        assert r.code == 2 and "--input-tokens applies to a model that reads tokens; resnet-50 is a generic model" in r.stderr
    assert aicap("estimate", "-m", "bge-large-en", "--hardware", "h100-sxm", "--input-tokens", "256").code == 0  # an encoder reads them


def test_a_quantised_checkpoint_estimated_in_another_format_says_so(aicap) -> None:  # type: ignore[no-untyped-def]
    # TGI has no MXFP4 path: gpt-oss-120b was upcast to bf16 without a word, then "does not fit"
    r = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "b200", "--engine", "tgi")
    assert "aicap: note: gpt-oss-120b's checkpoint is mxfp4 and TGI does not serve it on b200" in r.stderr
    assert "estimated with the weights in bf16 (--weights-dtype to choose)" in r.stderr
    plain = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "b200", "-f", "json")  # served as released: nothing to say
    assert plain.code == 0 and "note:" not in plain.stderr and plain.json()["weights_dtype"] == "mxfp4"
    asked = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "b200", "--engine", "tgi", "--weights-dtype", "fp8")
    assert "note:" not in asked.stderr  # the user chose the format


def test_a_model_file_reusing_a_catalogue_id_with_other_shapes_is_warned_of(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(aicap("models", "show", "llama-3.1-70b", "-f", "yaml").stdout)
    same, half = tmp_path / "same.yaml", tmp_path / "half.yaml"
    same.write_text(yaml.safe_dump(doc))
    doc["architecture"]["num_layers"] = 40
    half.write_text(yaml.safe_dump(doc))
    r = aicap("estimate", "--model", str(half), "--hardware", "h100-sxm", "--tp", "4")
    assert f"aicap: warning: {half} names itself 'llama-3.1-70b', a catalogue model, but differs from it" in r.stderr
    assert "warning" not in aicap("estimate", "--model", str(same), "--hardware", "h100-sxm", "--tp", "4").stderr  # read back unchanged


def test_estimate_csv_is_every_figure_of_the_json_by_its_path(aicap) -> None:  # type: ignore[no-untyped-def]
    # it wrote the table's prose ("28.0 ms ±43%")
    args = ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm")
    rows = dict(line.split(",", 1) for line in aicap(*args, "-f", "csv").stdout.splitlines()[1:])
    doc = aicap(*args, "-f", "json").json()
    assert float(rows["ttft_s"]) == doc["ttft_s"] and float(rows["memory_gib.kv_cache"]) == doc["memory_gib"]["kv_cache"]
    assert "ms ±" not in "".join(rows.values())


def test_a_context_over_the_models_names_the_flags_and_the_longest_that_fits(aicap) -> None:  # type: ignore[no-untyped-def]
    r = aicap("estimate", "-m", "bert-base", "--hardware", "h100-sxm", "--input-tokens", "1024")  # over BERT's 512 (typed: the default
    # is the context, test_an_encoder_reads_its_context_where_input_tokens_is_left_at_its_default)
    assert r.code == 2 and "--input-tokens = 1,024 tokens exceeds bert-base's max context of 512" in r.stderr
    assert r.stderr.rstrip().endswith("give --input-tokens of at most 512")
    r = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "200000")
    assert r.code == 2 and "--input-tokens + --output-tokens = 200,256 tokens" in r.stderr and "at most 130,816" in r.stderr


def test_an_engine_that_does_not_run_here_is_named_before_what_it_would_refuse(aicap) -> None:  # type: ignore[no-untyped-def]
    # A 10,000-token prompt for TensorRT-LLM on a TPU said "trtllm does not chunk prefill" and exited 3
    r = aicap("-q", "estimate", "-m", "llama-3.1-8b", "--hardware", "tpu-v6e", "--input-tokens", "10000", "--engine", "trtllm")
    assert r.code == 2 and "TensorRT-LLM does not run on tpu-v6e" in r.stderr


def test_a_replica_over_machines_on_an_engine_that_cannot_start_one_is_refused_or_avoided(aicap) -> None:  # type: ignore[no-untyped-def]
    # TGI at TP8 x PP2 on 8-GPU machines was estimated silently, while size refused the layout
    r = aicap("-q", "estimate", "-m", "llama-3.1-405b", "--hardware", "h100-sxm", "--tp", "8", "--pp", "2", "--engine", "tgi")
    assert r.code == 2 and "TGI's profile records no start of a replica over several machines" in r.stderr
    doc = aicap("-q", "estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "16", "--engine", "tgi",
                "-f", "json").json()  # fmt: skip
    assert doc["tp"] * doc["pp"] <= 8  # the layout search keeps its replicas on one machine
    doc = aicap("-q", "estimate", "-m", "llama-3.1-405b", "--hardware", "h100-sxm", "--tp", "8", "--pp", "2", "--engine", "vllm",
                "-f", "json").json()  # fmt: skip
    assert doc["tp"] * doc["pp"] == 16 and doc["fits"]


def test_a_checkpoint_format_aicap_cannot_read_is_a_warning_not_a_silence(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A 3-bit GPTQ config was costed as bf16 weights (5x the memory) with nothing said, even with -v
    import json

    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
           "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 16, "vocab_size": 128256,
           "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
           "quantization_config": {"quant_method": "gptq", "bits": 3}}  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm")
    assert r.code == 0 and f"aicap: warning: {path}: quantization_config quant_method 'gptq', 3 bits is not one aicap reads" in r.stderr
    # Every command that reads the model says so (models show, train and whatif were silent), and a quantization_config
    # that is not a mapping ("awq") is unread too (it was ignored without a word)
    for args in (("models", "show", str(path)), ("train", "-m", str(path), "--hardware", "h100-sxm", "--tokens", "1e8"),
                 ("whatif", "-m", str(path), "--rate", "1"), ("simulate", "-m", str(path), "--hardware", "h100-sxm", "--rate", "1",
                                                              "--requests", "100")):  # fmt: skip
        told = aicap(*args, "-f", "json").stderr
        assert told.count(f"aicap: warning: {path}: quantization_config quant_method 'gptq', 3 bits is not one aicap reads") == 1, args
    path.write_text(json.dumps({**cfg, "quantization_config": "awq"}))
    assert f"{path}: quantization_config quant_method 'awq' is not one aicap reads" in aicap("models", "show", str(path)).stderr
    cfg["quantization_config"]["bits"] = 4
    path.write_text(json.dumps(cfg))
    assert "warning" not in aicap("estimate", "-m", str(path), "--hardware", "h100-sxm").stderr


def test_estimate_names_the_engines_cuda_graph_cap(aicap) -> None:  # type: ignore[no-untyped-def]
    """SGLang graphs decode batches up to 256 below TP4 and 512 from it on an H200 (server_args.py); vLLM has no cap."""
    caps = {}
    for engine, tp in (("sglang", "2"), ("sglang", "4"), ("vllm", "4")):
        r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h200-sxm", "--tp", tp, "--engine", engine, "-f", "json")
        assert r.code == 0
        caps[(engine, tp)] = r.json()["engine"]["cuda_graph_max_batch"]
    assert caps == {("sglang", "2"): 256, ("sglang", "4"): 512, ("vllm", "4"): None}
    table = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h200-sxm", "--tp", "4", "--engine", "sglang")
    assert "CUDA graphs up to 512 decoding" in table.stdout
    eager = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h200-sxm", "--tp", "4", "--engine", "sglang", "--eager", "-f", "json")
    assert eager.json()["engine"]["cuda_graph_max_batch"] is None and eager.json()["engine"]["eager"] is True


def test_an_encoder_reads_its_context_where_input_tokens_is_left_at_its_default(aicap) -> None:  # type: ignore[no-untyped-def]
    # The default --input-tokens (1,024) is over BERT-class contexts (512): every command refused it as if typed.
    note = "aicap: note: --input-tokens defaults to 512 for bge-large-en (its max context, 512 tokens; the default, 1,024, is over it)"
    est = aicap("estimate", "-m", "bge-large-en", "--hardware", "t4", "-f", "json")
    assert est.code == 0 and json.loads(est.stdout)["input_tokens"] == 512 and note in est.stderr
    for args in (("explain", "-m", "bge-large-en", "--hardware", "t4"),  # also its one phase, prefill, by default
                 ("simulate", "-m", "bge-large-en", "--hardware", "t4", "--rate", "20", "--requests", "200"),
                 ("size", "-m", "bge-large-en", "--rate", "20"), ("whatif", "--model", "bge-large-en", "--rate", "20")):  # fmt: skip
        r = aicap(*args, "-f", "json")
        assert r.code == 0 and note in r.stderr, (args, r.stderr)
    assert json.loads(aicap("-q", "explain", "-m", "bge-large-en", "--hardware", "t4", "-f", "json").stdout)["phase"] == "prefill"
    typed = aicap("estimate", "-m", "bge-large-en", "--hardware", "t4", "--input-tokens", "1024")  # typed: still refused
    assert typed.code == 2 and "--input-tokens = 1,024 tokens exceeds bge-large-en's max context of 512" in typed.stderr
    decoder = aicap("-q", "estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-f", "json")  # decoders keep 1,024
    assert json.loads(decoder.stdout)["input_tokens"] == 1024


def test_a_short_context_decoder_takes_a_prompt_of_what_its_context_leaves_at_the_default(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A 1,024-position decoder cannot hold the default 1,024 + 256 tokens: the default prompt is what the context leaves.
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632,
              "num_attention_heads": 32, "num_key_value_heads": 4, "num_hidden_layers": 22, "max_position_embeddings": 1024,
              "vocab_size": 32000, "torch_dtype": "bfloat16"}  # fmt: skip
    path = tmp_path / "short" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config))
    note = "--input-tokens defaults to 768 for short (its max context, 1,024 tokens, less the 256 output tokens; the default, 1,024"
    est = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "-f", "json")
    assert est.code == 0 and json.loads(est.stdout)["input_tokens"] == 768 and note in est.stderr, est.stderr
    shorter = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "--output-tokens", "24", "-f", "json")
    assert json.loads(shorter.stdout)["input_tokens"] == 1000
    sim = aicap("simulate", "-m", str(path), "--hardware", "h100-sxm", "--rate", "5", "--requests", "200", "-f", "json")
    assert sim.code == 0 and "defaults to 768" in sim.stderr, sim.stderr
    typed = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "--input-tokens", "1024")  # typed: still refused
    assert typed.code == 2 and "--input-tokens + --output-tokens = 1,280 tokens exceeds short's max context of 1,024" in typed.stderr
    full = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "--output-tokens", "1024")  # the output alone fills it
    assert full.code == 2 and "give --input-tokens and --output-tokens that sum to at most 1,024" in full.stderr, full.stderr


def test_a_format_estimated_as_another_of_its_size_says_so(aicap) -> None:
    # bf16 on a T4 (no bf16 path) was estimated in fp16 without a word: an option is applied or refused, never changed silently
    r = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "t4", "--tp", "2", "--weights-dtype", "bf16", "-f", "json")
    assert r.code == 0 and r.json()["weights_dtype"] == "fp16"
    assert "aicap: note: --weights-dtype bf16: t4 has no bf16 path; estimated in fp16" in r.stderr
    plain = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--weights-dtype", "bf16")
    assert plain.code == 0 and "note:" not in plain.stderr


def test_a_drafter_that_does_not_fit_is_named_in_the_verdict(aicap) -> None:
    # A 405B drafter of a 70B target failed with "llama-3.1-70b on h100-sxm: does not fit: weights 112.4 GiB ...", never naming it
    args = ("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--weights-dtype", "fp8", "--batch", "1")
    r = aicap(*args, "--speculative", "draft", "--draft-model", "llama-3.1-405b", "--acceptance", "0.8")
    # a drafter no smaller than its target is refused before any layout is costed (exit 2, naming both sizes)
    assert r.code == 2 and "draft model 'llama-3.1-405b' is no smaller than 'llama-3.1-70b'" in r.stderr
    small = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "1", "--batch", "1", "--speculative", "draft",
                  "--draft-model", "llama-3.2-1b", "--acceptance", "0.8")  # fmt: skip  # bf16 on one device: the target binds
    assert small.code == 3 and "of which the drafter llama-3.2-1b's" in small.stderr and "larger than" not in small.stderr


def test_a_missed_tpot_names_its_remedies_as_the_memory_advice_does(aicap) -> None:
    # "try tp 8 or weights_dtype fp8" beside "try TP=8 or int4" in the memory advice: one spelling for both
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--tpot-ms", "0.1")
    # the widest TP that still misses is said as such (it read as a remedy: "try TP=8 (4.2 ms at batch 1)" for a 1 ms target)
    widest = r"try TP=8 \(the widest on its link: [\d.]+ ms at batch 1, still over the target\) or fp8 weights or a device with more"
    assert r.code == 3 and re.search(widest, r.stderr), r.stderr


def test_a_missed_tpot_shows_the_nearest_layout_and_the_tp_that_meets_it(aicap) -> None:
    """Every layout of 8 H100s misses 5 ms: it showed 4 replicas of TP2 (31.8 ms) and "try TP=4", where TP8 runs 13.4 ms."""
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8", "--tpot-ms", "5", "-f", "json")
    assert r.code == 3 and r.json()["tp"] == 8 and "TP=" not in r.stderr, r.stderr  # the nearest; no wider TP in one machine
    tp8 = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "1", "-f", "json").json()
    for tp in (1, 2, 4):
        other = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", str(tp), "--batch", "1", "-f", "json").json()
        assert other["tpot_s"] is None or other["tpot_s"] > tp8["tpot_s"]
    two = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "2", "--tpot-ms", "20")
    tp4 = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--batch", "1", "-f", "json").json()
    assert two.code == 3 and f"try TP=4 ({tp4['tpot_s'] * 1e3:,.1f} ms at batch 1)" in two.stderr  # the smallest TP that meets 20 ms


def test_eager_on_an_engine_without_its_own_launch_counts_says_whose_it_costs(aicap) -> None:
    """runtime.yaml's eager_launches are read from vLLM's model code: TensorRT-LLM's eager steps were costed with them silently."""
    trt = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--engine", "trtllm", "--eager", "-f", "json")
    assert trt.code == 0 and "--eager with TensorRT-LLM: each step's kernel launches are counted as vLLM's" in trt.stderr
    vllm = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--engine", "vllm", "--eager", "-f", "json")
    assert vllm.code == 0 and "kernel launches are counted" not in vllm.stderr


def test_explain_prefill_with_the_default_batch_is_one_requests_prompt_as_ttft_prices_it(aicap) -> None:  # type: ignore[no-untyped-def]
    # --phase prefill took --batch auto's decode batch: 320 prompts in one 8.5 s "step" beside a TTFT of 34 ms
    base = ("explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--phase", "prefill", "-f", "json")
    one = aicap(*base).json()
    est = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-f", "json").json()
    assert one["batch"] == 1 and (one["tp"], one["pp"]) == (est["tp"], est["pp"])
    assert one["step_time_ms"] == pytest.approx(est["ttft_s"] * 1e3, rel=1e-3)  # TTFT is that pass (no request overhead: generic)
    four = aicap(*base, "--batch", "4").json()
    assert four["batch"] == 4 and four["step_time_ms"] > 3 * one["step_time_ms"]
    assert aicap(*base, "--batch", "auto").json()["batch"] == 1  # typed or not, auto means one prompt here
    assert "one request's prompt of 1,024 tokens, as TTFT prices it" in " ".join(aicap(*base[:-2]).stdout.split())
