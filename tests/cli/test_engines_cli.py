"""``aicap engines`` and ``--engine`` on estimate, size and simulate, through the CLI."""

from __future__ import annotations

from pathlib import Path


def test_engines_list_names_every_profile_and_the_default(aicap) -> None:
    r = aicap("engines", "list", "-f", "json")
    assert r.code == 0
    docs = r.json()
    ids = [d["id"] for d in docs]
    assert {"generic", "vllm", "sglang", "trtllm", "tgi", "lmdeploy", "llamacpp", "jetstream"} <= set(ids)
    assert [d["id"] for d in docs if d["default"]] == ["generic"]


def test_engines_show_gives_sources(aicap) -> None:
    doc = aicap("engines", "show", "trtllm", "-f", "json").json()
    assert doc["memory"]["policy"] == "free" and "serve.py" in doc["memory"]["source"]


def test_every_engine_listed_can_be_shown_generic_too(aicap) -> None:
    """`engines list` names generic (the default) and says "aicap engines show ID": show said "unknown engine 'generic'"."""
    listed = {d["id"]: d for d in aicap("engines", "list", "-f", "json").json()}
    for engine in listed:
        r = aicap("engines", "show", engine, "-f", "json")
        assert r.code == 0 and r.json()["id"] == engine, (engine, r.stderr)
    generic = aicap("engines", "show", "generic", "-f", "json").json()
    assert generic["usable_memory_fraction"] == listed["generic"]["memory_fraction"] and generic["source"]


def test_engines_show_unknown_is_exit_2_with_choices(aicap) -> None:
    r = aicap("engines", "show", "vlm")
    assert r.code == 2 and "did you mean vllm" in r.stderr


def test_estimate_engine_changes_the_kv_cache_and_is_reported(aicap) -> None:
    common = ("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "1", "--weights-dtype", "fp8", "-f", "json")
    v, t = aicap(*common, "--engine", "vllm").json(), aicap(*common, "--engine", "trtllm").json()
    assert (v["engine"]["id"], t["engine"]["id"]) == ("vllm", "trtllm")
    assert t["kv_cache_tokens"] > 4 * v["kv_cache_tokens"]
    assert t["throughput"]["output_tokens_per_s"] > 2 * v["throughput"]["output_tokens_per_s"]


def test_estimate_table_names_the_engine(aicap) -> None:
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "l4", "--engine", "vllm")
    assert r.code == 0 and "vLLM 0.11: 90% of memory, ≤256 running, 2,048-token steps" in r.stdout


def test_estimate_engine_on_a_device_it_does_not_run_on_is_exit_2(aicap) -> None:
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "tpu-v5e", "--engine", "sglang")
    assert r.code == 2
    assert r.stderr.strip() == (
        "aicap: error: --engine sglang: SGLang does not run on tpu-v5e (google tpu); it runs on: nvidia, amd "
        "(a vendor's accelerators, not its CPUs)"
    )
    # "amd" is AMD's GPUs: an EPYC CPU ran SGLang at batch 2,048 (and sized a fleet on it) before
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "epyc-9654", "--engine", "sglang")
    assert r.code == 2 and "does not run on epyc-9654 (amd cpu)" in r.stderr
    assert aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "epyc-9654", "--engine", "vllm").code == 0  # vLLM lists cpu


def test_size_engine_flag_reaches_the_plan(aicap) -> None:
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "2", "--engine", "trtllm", "--cloud", "gcp", "-f", "json")
    assert r.code == 0, r.stderr
    plan = r.json()
    assert plan["workloads"][0]["engine"] == "trtllm"
    assert plan["inputs"]["constraints"]["engine"] == "trtllm"


def test_fleet_file_unknown_engine_is_exit_2_naming_the_workload(aicap, tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("workloads:\n  - name: chat\n    model: llama-3.1-8b\n    requests_per_s: 1\n    engine: tensorrt\n", encoding="utf-8")
    r = aicap("size", str(f))
    assert r.code == 2 and "workload 'chat': unknown engine 'tensorrt'" in r.stderr and "trtllm" in r.stderr


def test_fit_overheads_reports_each_engine_with_its_sources_and_matches_the_shipped_profiles(aicap) -> None:
    r = aicap("validate", "--set", "server", "--fit-overheads", "-f", "json")
    assert r.code == 0, r.stderr
    fits = {f["engine"]: f for f in r.json()["request_overheads"]}
    assert set(fits) == {"vllm", "sglang"}  # the engines with published cases under load
    shown = {e["id"]: e for e in aicap("engines", "list", "-f", "json").json()}
    for engine, f in fits.items():
        assert len(f["leave_one_source_out"]) == len(f["sources"]) >= 3
        assert abs(f["overhead_ms"] - shown[engine]["request_overhead_ms"]) < 0.5  # the profile holds the current fit


def test_fit_overheads_needs_the_cases_under_load(aicap) -> None:
    r = aicap("validate", "--fit-overheads")
    assert r.code == 2 and "--set server" in r.stderr
    r = aicap("validate", "--set", "published", "--fit-engine-factors")
    assert r.code == 2 and "--fit-engine-factors" in r.stderr and "--set server" in r.stderr
    for flag in ("--fit-overheads", "--fit-engine-factors"):  # --set training printed its table and fitted nothing, exit 0
        r = aicap("validate", "--set", "training", flag)
        assert r.code == 2 and r.stdout == "" and f"{flag} fits on the shipped cases under load" in r.stderr


def test_fit_engine_factors_matches_the_shipped_profiles(aicap) -> None:
    # The profiles hold the current fit (refit both with `validate --set server --fit-engine-factors --fit-overheads`).
    r = aicap("validate", "--set", "server", "--fit-engine-factors", "-f", "json")
    assert r.code == 0, r.stderr
    fits = r.json()["engine_factors"]
    assert {(f["engine"], f["family"]) for f in fits} == {("vllm", "nvidia-ampere"), ("vllm", "nvidia-hopper"),
                                                          ("sglang", "nvidia-ampere"), ("sglang", "nvidia-hopper")}  # fmt: skip
    shown = {e["id"]: e for e in aicap("engines", "list", "-f", "json").json()}
    for f in fits:
        held = {x["family"]: x["memory"] for x in shown[f["engine"]]["factors"]}
        assert abs(f["memory"] - held[f["family"]]) <= 0.005, f
        assert f["runs"] >= 2 and f["optimum_by_source"] and f["source_note"].startswith("fitted by")


def test_an_engine_without_chunked_prefill_refuses_prompts_over_its_budget(aicap) -> None:
    est = ("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--engine", "trtllm", "-f", "json")
    r = aicap(*est, "--input-tokens", "12000")
    assert r.code == 3 and r.stdout == ""
    assert "trtllm does not chunk prefill: a prompt of 12,000 tokens exceeds its step budget of 8,192 tokens" in r.stderr
    assert aicap(*est, "--input-tokens", "8192").code == 0
    size = ("size", "--model", "llama-3.1-8b", "--rate", "2", "--input-tokens", "12000", "--output-tokens", "100", "--cloud", "aws")
    r = aicap(*size, "--engine", "trtllm")
    assert r.code == 3 and "does not chunk prefill" in r.stderr
    assert aicap(*size, "--engine", "vllm", "-f", "json").code == 0  # vLLM chunks the prompt


def test_lmdeploy_caps_running_requests_by_device_and_gives_the_kv_cache_a_share_of_free_memory(aicap) -> None:
    # TurboMind's get_max_batch_size: 384 on A100, 1,024 on H100, 128 on other GPUs; a 1B model at short
    # contexts fills any of them, so the cap bounds the auto batch (the knee of its throughput, at most the cap).
    common = ("estimate", "--model", "llama-3.2-1b", "--input-tokens", "512", "--output-tokens", "128", "--engine", "lmdeploy",
              "-f", "json")  # fmt: skip
    docs = {hw: aicap(*common, "--hardware", hw).json() for hw in ("a100-80gb-sxm", "h100-sxm", "l40s")}
    caps = {hw: d["engine"]["max_running_requests"] for hw, d in docs.items()}
    assert caps == {"a100-80gb-sxm": 384, "h100-sxm": 1024, "l40s": 128}
    assert all(0.5 * caps[hw] < d["batch"] <= caps[hw] for hw, d in docs.items())
    doc = aicap("engines", "show", "lmdeploy", "-f", "json").json()
    assert doc["memory"]["policy"] == "free" and doc["memory"]["fraction"] == 0.8 and "1263d5cd" in doc["memory"]["source"]
    assert aicap("estimate", "--model", "llama-3.2-1b", "--hardware", "tpu-v5e", "--engine", "lmdeploy").code == 2


def test_engines_show_spells_lists_of_records_field_by_field(aicap) -> None:  # type: ignore[no-untyped-def]
    # factors and device_rules printed as Python dict reprs
    out = aicap("engines", "show", "vllm").stdout
    assert "{'" not in out and "factors.0.family" in out and "device_rules.0.max_prefill_tokens" in out


def test_an_unknown_engine_flag_is_named_as_the_flag_in_every_command(aicap) -> None:  # type: ignore[no-untyped-def]
    # size and whatif said "constraints: unknown engine", a place the user never wrote
    for args in (("size", "--model", "llama-3.1-8b", "--rate", "1"), ("whatif", "--model", "llama-3.1-8b", "--rate", "1"),
                 ("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"),
                 ("simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1")):  # fmt: skip
        r = aicap(*args, "--engine", "nosuch")
        assert r.code == 2 and r.stdout == "" and r.stderr.startswith("aicap: error: --engine 'nosuch': valid engines: generic, ")


def test_an_engine_spelt_with_capitals_is_suggested_in_lower_case(aicap) -> None:  # type: ignore[no-untyped-def]
    # 'SGLang' is how the project spells itself; the id is 'sglang', and the error said only "valid engines: ..."
    r = aicap("simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1", "--engine", "SGLang")
    assert r.code == 2 and r.stderr.startswith("aicap: error: --engine 'SGLang': did you mean sglang? valid engines: ")
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--engine", "TRTLLM")
    assert r.code == 2 and "did you mean trtllm?" in r.stderr
