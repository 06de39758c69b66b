"""``aicap train``: evaluate a layout, search for a job, and refuse bad input with one line."""

from __future__ import annotations

from typing import Any

import pytest


def test_lora_70b_on_one_80gb_gpu_does_not_fit_but_qlora_does(aicap: Any) -> None:
    lora = aicap("train", "-m", "llama-3.1-70b", "--method", "lora", "--hardware", "a100-80gb-sxm", "--devices", "1",
                 "--seq-len", "2048", "--recompute", "full", "-f", "json")  # fmt: skip
    assert lora.code == 3
    doc = lora.json()
    assert doc["fits"] is False and doc["memory_gib_per_device"]["total"] > doc["memory_gib_per_device"]["capacity"] == 80
    assert "weights" in doc["advice"][1] and "qlora" in doc["advice"][1]
    assert "does not fit" in lora.stderr and lora.stderr.count("\n") == 1
    qlora = aicap("train", "-m", "llama-3.1-70b", "--method", "qlora", "--hardware", "a100-80gb-sxm", "--devices", "1",
                  "--seq-len", "2048", "--recompute", "full", "--tokens", "100M", "-f", "json")  # fmt: skip
    assert qlora.code == 0, qlora.stderr
    q = qlora.json()
    assert q["fits"] is True and q["instance"] == "a2-ultragpu-1g"  # the cheapest instance holding one A100 80GB
    assert q["steps"] == -(-100_000_000 // q["tokens_per_step"])
    assert q["wall_clock_days"] == pytest.approx(q["steps"] * q["step_time_s"] / 86400)
    assert q["device_hours"] == pytest.approx(q["wall_clock_days"] * 24)
    low, high = q["error_band"]["tokens_per_s_per_device"]
    assert low < q["tokens_per_s_per_device"] < high


def test_qlora_is_neither_run_nor_suggested_where_no_nf4_kernel_runs(aicap: Any) -> None:
    """bitsandbytes' NF4 has no TPU backend (hardware_db/training/factors.yaml nf4_vendors): QLoRA there is a job no one can run."""
    lora = aicap("train", "-m", "llama-3.1-8b", "--method", "lora", "--hardware", "tpu-v5e", "--devices", "1", "-f", "json")
    assert lora.code == 3 and any("weights" in line for line in lora.json()["advice"]), lora.stderr
    assert not any("qlora" in line for line in lora.json()["advice"])  # the A100 case above does suggest it
    one = aicap("train", "-m", "llama-3.1-8b", "--method", "qlora", "--hardware", "tpu-v5e", "--devices", "1")
    assert one.code == 2 and "method qlora on tpu-v5e" in one.stderr and "valid methods on tpu-v5e: full, lora" in one.stderr
    searched = aicap("train", "-m", "llama-3.1-8b", "--method", "qlora", "--hardware", "tpu-v5e,tpu-v6e", "--tokens", "1B")
    assert searched.code == 2 and "none matches --hardware tpu-v5e, tpu-v6e" in searched.stderr, searched.stderr
    mixed = aicap("train", "-m", "llama-3.1-8b", "--method", "qlora", "--hardware", "tpu-v6e,l4", "--tokens", "1B", "-f", "json")
    assert mixed.code == 0 and mixed.json()["plan"]["hardware"] == "l4", mixed.stderr  # the search passes the TPU over


def test_json_carries_the_documented_fields_and_is_deterministic(aicap: Any) -> None:
    args = ("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "16", "--fsdp", "full", "--tokens", "1T",
            "--seq-len", "8192", "--global-batch-tokens", "4M", "-f", "json")  # fmt: skip
    a, b = aicap(*args), aicap(*args)
    assert a.code == 0 and a.stdout == b.stdout
    doc = a.json()
    for key in ("schema_version", "fits", "step_time_s", "tokens_per_s_per_device", "tflops_per_device", "mfu_pct",
                "wall_clock_days", "device_hours", "usd", "error_band", "energy_kwh"):  # fmt: skip
        assert key in doc
    assert set(doc["memory_gib_per_device"]) == {"weights", "gradients", "optimizer", "activations", "overhead", "total", "capacity",
                                                 "host_offload", "host_capacity"}  # fmt: skip
    assert doc["instances"] == 2 and doc["usd"]["on_demand"] == pytest.approx(2 * 55.04 * doc["wall_clock_days"] * 24)
    assert doc["energy_kwh"] == pytest.approx(16 * 700 * doc["wall_clock_days"] * 24 / 1000)
    assert doc["tokens_per_step"] == 31 * 16 * 8192  # 4M rounded to whole micro-batches on the 16 replicas (noted on stderr)
    assert "--global-batch-tokens 4,000,000 is costed as 4,063,232" in a.stderr


def test_train_refuses_before_it_prints_and_rejects_fractional_tokens(aicap: Any) -> None:
    base = ("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8")
    r = aicap(*base, "--budget", "10")  # it printed the whole table, then the error
    assert r.code == 2 and r.stdout == "" and "--budget need --tokens" in r.stderr
    r = aicap(*base, "--tokens", "1.5")
    assert r.code == 2 and r.stdout == "" and "not a whole number of tokens" in r.stderr
    r = aicap(*base, "--seq-len", "100000000")  # 311,429 GiB a device was costed and printed (exit 3)
    assert r.code == 2 and r.stdout == "" and "--seq-len 100000000: Input should be less than or equal to 16777216" in r.stderr


def test_a_search_held_back_by_the_global_batch_says_so(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1T", "--deadline-days", "0.01", "--cloud", "aws", "--max-devices", "1000000")
    assert r.code == 3 and "raise --global-batch-tokens" in r.stderr


def test_a_missed_short_deadline_names_the_fastest_job_to_three_figures(aicap: Any) -> None:
    # "the fastest job takes 0.0 days ... over the 0.02-day deadline" read as if the deadline were met
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "100B", "--deadline-days", "0.02", "--cloud", "aws")
    assert r.code == 3
    took = float(r.stderr.split("the fastest job takes ")[1].split(" days")[0])
    assert 0.02 < took < 1 and len(str(took).replace("0.", "").lstrip("0")) <= 3


def test_search_meets_the_deadline_and_lists_each_device_type(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1T", "--deadline-days", "20", "--cloud", "aws", "-f", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    plan = doc["plan"]
    assert plan["fits"] and plan["wall_clock_days"] <= 20
    devices = [a["hardware"] for a in doc["alternatives"]]
    assert len(devices) == len(set(devices)) >= 3
    assert all(a["usd"]["on_demand"] >= plan["usd"]["on_demand"] - 1e-6 for a in doc["alternatives"])
    assert plan["instance"].startswith(("p", "g"))  # aws only
    assert "searched" in r.stderr


def test_search_within_a_budget_is_the_fastest_that_fits_it(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "200B", "--budget", "50000", "--cloud", "aws", "-f", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["plan"]["usd"]["on_demand"] <= 50000
    assert doc["objective"] == "fastest within the budget"
    assert all(a["wall_clock_days"] >= doc["plan"]["wall_clock_days"] - 1e-9 for a in doc["alternatives"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--tokens", "15T", "--deadline-days", "1", "-m", "llama-3.1-405b"), "deadline"),
        (("--tokens", "1T", "--budget", "10", "-m", "llama-3.1-8b"), "budget"),
    ],
)
def test_infeasible_searches_exit_3_with_the_binding_reason(aicap: Any, args: tuple[str, ...], needle: str) -> None:
    r = aicap("train", *args)
    assert r.code == 3 and needle in r.stderr and r.stdout == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-m", "llama-3.1-8b", "--tokens", "lots"), "--tokens 'lots'"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "6", "--tp", "4"), "multiple of tp"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--tp", "2"), "need --devices"),
        (("-m", "llama-3.1-8b", "--hardware", "a100-80gb-sxm", "--devices", "8", "--precision", "fp8"), "fp8"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tp", "3", "--dp", "1"), "multiple of tp"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--recompute", "some"), "recompute"),
        (("-m", "llama-3.1-8b", "--hardware", "nope", "--devices", "8"), "nope"),
        (("-m", "bert-base", "--hardware", "h100-sxm", "--devices", "1"), "decoder"),
        (("-m", "llama-3.1-8b"), "--tokens"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--fsdp", "full", "--zero", "2"), "give one of them"),
        (("-m", "llama-3.1-8b", "--tokens", "1B", "--method", "lora", "--global-batch-tokens", "2Ki"), "below one sequence"),  # was exit 3
        (("-m", "llama-3.2-1b", "--tokens", "1M", "--method", "lora", "--lora-rank", "100000"), "above llama-3.2-1b's hidden size"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(aicap: Any, args: tuple[str, ...], needle: str) -> None:
    r = aicap("train", *args)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_table_output_names_the_band_and_the_terms(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "10B")
    assert r.code == 0
    for text in ("memory per device", "step time", "MFU", "wall clock", "leave-one-source-out"):
        assert text in r.stdout


def test_validate_training_reports_in_sample_and_out_of_source_and_rewrites_the_factors(aicap: Any, tmp_path: Any) -> None:
    from importlib import resources

    out = tmp_path / "factors.yaml"
    r = aicap("validate", "--set", "training", "--write-factors", str(out), "-f", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["summary"]["in_sample"]["throughput"]["median_pct"] <= 15
    assert doc["summary"]["leave_one_source_out"]["throughput"]["n"] == doc["summary"]["in_sample"]["throughput"]["n"] >= 60
    assert {u["case"] for u in doc["unscored"]} >= {"mlperf-v40-gpt3-175b-h100-11616"}
    shipped = resources.files("aicap.hardware_db").joinpath("training/factors.yaml").read_text(encoding="utf-8")
    strip = [line for line in shipped.splitlines() if "source:" not in line and "published runs)" not in line]
    fresh = [line for line in out.read_text(encoding="utf-8").splitlines() if "source:" not in line and "published runs)" not in line]
    assert fresh == strip  # the shipped file is exactly what the fit writes (bar the date)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--hardware", "nope"), "nope"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--cloud", "oracle"), "oracle"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--max-devices", "0"), "--max-devices"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--hardware", "epyc-9654"), "CPU"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--hardware", "a100-80gb-sxm", "--precision", "fp8"), "fp8"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--offload", "all"), "--offload"),
        (("-m", "llama-3.1-8b", "--tokens", "0"), "at least 1 token"),
        (("-m", "llama-3.1-8b", "--tokens", "1e-3"), "at least 1 token"),
        (("-m", "llama-3.1-8b", "--hardware", "v100-sxm", "--devices", "8"), "--precision fp16"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--cloud", "gcp"), "--cloud"),
        (("-m", "llama-3.1-8b", "--hardware", "epyc-9654", "--devices", "1"), "CPU"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "100000000"), "65,536"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--virtual-pipeline", "2"), "virtual_pipeline"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--comm-sm-share", "1"), "--comm-sm-share 1"),
        (("-m", "llama-3.1-8b", "--tokens", "1T", "--comm-sm-share", "-0.1"), "--comm-sm-share"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--mtp-depth", "9"), "--mtp-depth 9"),
        (("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--method", "lora", "--mtp-depth", "1"), "--method lora"),
        (("-m", "llama-3.1-8b", "--tokens", "1B", "--method", "qlora", "--mtp-depth", "1"), "--method qlora"),
        # LoRA's shape without LoRA: it was costed as full training, nothing said
        (
            ("-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--lora-rank", "8", "--lora-targets", "all"),
            "--lora-rank and --lora-targets shape LoRA adapters, which --method full trains without",
        ),
        (("-m", "llama-3.1-8b", "--tokens", "1B", "--lora-targets", "qv"), "--lora-targets shapes LoRA adapters"),
    ],
)
def test_more_bad_input_is_one_line_and_exit_2(aicap: Any, args: tuple[str, ...], needle: str) -> None:
    r = aicap("train", *args)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_a_layout_is_checked_against_a_deadline_a_budget_and_host_memory(aicap: Any) -> None:
    late = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "1T", "--deadline-days", "3")
    assert late.code == 3 and "deadline" in late.stderr and late.stdout
    dear = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "1T", "--budget", "10")
    assert dear.code == 3 and "budget" in dear.stderr
    host = aicap("train", "-m", "llama-3.1-8b", "--hardware", "a10g", "--devices", "1", "--offload", "all", "--recompute", "full")
    assert host.code == 3 and "host memory" in host.stderr
    spot = aicap("train", "-m", "llama-3.1-8b", "--hardware", "a100-80gb-sxm", "--devices", "1", "--tokens", "1B", "--method", "qlora",
                 "--pricing", "spot", "-f", "json")  # fmt: skip
    assert spot.code == 0 and spot.json()["usd"]["spot"] is not None


def test_mfu_stays_under_100_percent_at_long_sequences(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1T", "--deadline-days", "30", "--seq-len", "131072", "--cloud", "aws",
              "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    for job in [r.json()["plan"], *r.json()["alternatives"]]:
        assert 0 < job["mfu_pct"] <= job["hfu_pct"] < 100


def test_search_counts_whole_steps_against_the_deadline(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "4.3M", "--deadline-days", "0.002", "--hardware", "h100-sxm", "-f", "json")
    assert r.code in (0, 3), r.stderr
    if r.code == 0:
        assert r.json()["plan"]["wall_clock_days"] <= 0.002


def test_fsdp_gathers_one_expert_shard_not_every_expert(aicap: Any) -> None:
    base = ("-m", "deepseek-v3", "--hardware", "h100-sxm", "--devices", "2048", "--pp", "16", "--ep", "64", "--precision", "fp8",
            "--seq-len", "4096", "--global-batch-tokens", "15728640", "-f", "json")  # fmt: skip
    zero1 = aicap("train", *base).json()["memory_gib_per_device"]
    fsdp = aicap("train", *base, "--fsdp", "full").json()["memory_gib_per_device"]
    assert fsdp["weights"] < zero1["weights"] and fsdp["gradients"] < zero1["gradients"]


def test_binary_suffixes_and_the_default_batch(aicap: Any) -> None:
    a = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--global-batch-tokens", "4Mi", "-f", "json")
    b = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "-f", "json")
    assert a.code == b.code == 0
    assert a.json()["tokens_per_step"] == 2**22 == b.json()["tokens_per_step"]


def test_what_the_figures_assume_is_said(aicap: Any) -> None:
    # Each once passed silently: a token count under one global batch (priced as a whole batch), offload to a host
    # whose memory is unknown ("fits"), TP beyond the fast link, and layers that do not divide into the chunks.
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "100k", "-f", "json")
    assert r.code == 0 and r.json()["steps"] == 1
    assert "100,000 tokens is not a whole number of global batches of 4,194,304" in r.json()["notes"][0] and "note:" in r.stderr
    r = aicap("train", "-m", "llama-3.1-405b", "--hardware", "rtx-4090", "--devices", "1", "--method", "qlora", "--offload", "all",
              "--recompute", "full", "--tokens", "1M", "-f", "json")  # fmt: skip
    assert r.code == 0 and r.json()["memory_gib_per_device"]["host_capacity"] is None
    assert any("not checked against host memory" in n for n in r.json()["notes"])
    r = aicap("train", "-m", "llama-2-7b", "--hardware", "h100-sxm", "--devices", "16", "--tp", "16", "--tokens", "1B", "-f", "json")
    assert any("tensor parallel 16 spans more devices than h100-sxm's fast link joins (8)" in n for n in r.json()["notes"])
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "16", "--tp", "16", "--tokens", "1B", "-f", "json")
    assert r.code == 2 and "tp 16 does not divide llama-3.1-8b's 8 key-value heads" in r.stderr  # whole query groups a rank
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--pp", "8", "--virtual-pipeline", "3",
              "--tokens", "1B", "-f", "json")  # fmt: skip
    assert any("24 chunks is 1.33 layers a chunk" in n for n in r.json()["notes"])
    quiet = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "4194304", "-f", "json")
    assert quiet.json()["notes"] == []


def test_hardware_and_clouds_take_commas_as_size_does_and_fsdp_reports_zero_3(aicap: Any) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm,l40s", "--cloud", "aws,gcp", "--tokens", "1B", "-f", "json")
    assert r.code == 0, r.stderr
    assert {a["hardware"] for a in r.json()["alternatives"]} == {"h100-sxm", "l40s"}
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "16", "--fsdp", "full", "--tokens", "1B",
              "-f", "json")  # fmt: skip
    assert r.json()["layout"]["fsdp"] == "full" and r.json()["layout"]["zero"] == 3


def test_csv_is_machine_readable_values_with_the_search_alternatives(aicap: Any) -> None:
    # It was the display table: "10,760 (band 6,090–15,429)" and "on_demand $178, owned $30" in one cell each.
    r = aicap("-q", "train", "-m", "llama-3.1-8b", "--tokens", "100B", "--cloud", "aws", "-f", "csv")
    assert r.code == 0, r.stderr
    rows = dict(line.split(",", 1) for line in r.stdout.splitlines()[1:])
    doc = aicap("-q", "train", "-m", "llama-3.1-8b", "--tokens", "100B", "--cloud", "aws", "-f", "json").json()
    assert float(rows["plan.tokens_per_s_per_device"]) == doc["plan"]["tokens_per_s_per_device"]
    assert float(rows["plan.usd.on_demand"]) == doc["plan"]["usd"]["on_demand"]
    assert rows["alternatives.0.hardware"] == doc["alternatives"][0]["hardware"]


def test_a_job_spanning_instances_of_a_device_is_billed_on_the_cheapest_type(aicap: Any) -> None:
    # Types of the same devices and network tied on the name: 16 H100s went to an Azure type at $98/h, not AWS's $55/h.
    one = aicap("-q", "train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "16", "--tokens", "100B", "-f", "json").json()
    named = aicap("-q", "train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "16", "--tokens", "100B",
                  "-f", "json").json()  # fmt: skip
    assert one["instance"] == "p5.48xlarge" and one["usd"]["on_demand"] == named["usd"]["on_demand"]


def test_a_deepseek_v3_style_recipe_is_said_and_costs_what_it_adds(aicap: Any) -> None:
    # DeepSeek-V3's report: 20 of 132 SMs kept for communication under DualPipe, one MTP module trained with the model.
    base = ("train", "-m", "qwen3-30b-a3b", "--hardware", "h100-sxm", "--devices", "64", "--ep", "64", "--seq-len", "4096",
            "--recompute", "full", "--ep-overlap", "1")  # fmt: skip
    plain = aicap(*base, "-f", "json")
    full = aicap(*base, "--comm-sm-share", "0.1515", "--mtp-depth", "1", "-f", "json")
    assert plain.code == 0 and full.code == 0, full.stderr
    p, f = plain.json(), full.json()
    assert f["layout"]["comm_sm_share"] == 0.1515 and f["layout"]["mtp_depth"] == 1 and p["layout"]["mtp_depth"] == 0
    assert f["step_breakdown_s"]["compute"] > p["step_breakdown_s"]["compute"] / (1 - 0.1515)  # fewer SMs, and more FLOPs
    assert f["memory_gib_per_device"]["weights"] > p["memory_gib_per_device"]["weights"]
    table = aicap(*base, "--comm-sm-share", "0.1515", "--mtp-depth", "1")
    assert "1 MTP module" in table.stdout and "15.2% of compute units kept for communication" in table.stdout
    assert "expert all-to-all 100% hidden" in table.stdout


def test_schedule_options_that_hide_nothing_say_so(aicap: Any) -> None:
    # --ep-overlap without an expert all-to-all and --comm-sm-share with nothing overlapped were taken without a word (review).
    r = aicap("train", "-m", "qwen3-30b-a3b", "--hardware", "h100-sxm", "--devices", "8", "--ep-overlap", "1", "--comm-sm-share", "0.2",
              "-f", "json")  # fmt: skip
    assert r.code in (0, 3), r.stderr
    notes = r.json()["notes"]
    assert any("no expert-parallel all-to-all to hide (ep 1)" in n for n in notes)
    assert any("comm_sm_share 0.2" in n and "hides nothing" in n for n in notes)
    table = aicap("train", "-m", "qwen3-30b-a3b", "--hardware", "h100-sxm", "--devices", "8", "--ep-overlap", "1").stdout
    assert "all-to-all" not in table.split("layout")[0]  # the recipe row names no overlap where there is no all-to-all
    # on a dense model it changes nothing whatever the layout: refused, as --ep is (a note said so, and the search took it)
    for args in (("--hardware", "h100-sxm", "--devices", "8"), ("--cloud", "aws")):
        r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1B", *args, "--ep-overlap", "0.5")
        assert r.code == 2 and "--ep-overlap 0.5: hides a mixture-of-experts model's expert all-to-all, and llama-3.1-8b" in r.stderr
    staged = aicap("train", "-m", "qwen3-30b-a3b", "--hardware", "h100-sxm", "--devices", "16", "--pp", "2", "--mtp-depth", "1",
                   "-f", "json")  # fmt: skip
    assert staged.code in (0, 3), staged.stderr
    assert any("pipeline stages" in n and "last stage" in n for n in staged.json()["notes"])


def test_train_notes_efficiency_factors_from_an_overlay(aicap: Any, tmp_path: Any) -> None:
    """A serving calibration's overlay moves training answers too: say so, since the band was not measured with it."""
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("efficiency:\n  - {family: nvidia-hopper, compute: 0.7, memory: 0.7, source: my benchmark}\n")
    args = ("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "8", "--tokens", "1T", "-f", "json")
    plain, mine = aicap(*args), aicap("--catalog", str(overlay), *args)
    assert plain.code == mine.code == 0
    assert "come from" not in plain.stderr
    assert f"nvidia-hopper's efficiency factors come from {overlay}" in mine.stderr
    assert mine.json()["tokens_per_s_per_device"] != plain.json()["tokens_per_s_per_device"]


def test_a_search_that_buys_idle_devices_to_meet_a_deadline_warns(aicap: Any) -> None:
    # 262,144 B200 at 1.1% MFU for $6.1 billion came back as the plan without a word
    r = aicap("train", "-m", "llama-3.1-405b", "--tokens", "15T", "--max-devices", "1000000", "--deadline-days", "70",
              "--hardware", "b200", "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    assert r.json()["plan"]["mfu_pct"] < 10 and "% MFU: most of each step is pipeline bubble" in r.stderr


def test_a_device_count_is_billed_on_the_instances_that_cost_least_per_token(aicap: Any) -> None:
    """3 H100s were billed as a whole p5.48xlarge ($331 for 1B LoRA tokens): three 1-GPU p5.4xlarge cost less."""
    base = ("train", "-m", "llama-3.1-8b", "--devices", "3", "--method", "lora", "--tokens", "1B", "-f", "json")
    r = aicap(*base, "--hardware", "h100-sxm")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert (doc["instance"], doc["instances"]) == ("p5.4xlarge", 3)
    assert any(n.startswith("3× p5.4xlarge bill less per token than 1× p5.48xlarge for 3 devices") for n in doc["notes"])
    held = aicap(*base, "--hardware", "p5.48xlarge").json()  # an instance named is the one billed
    assert (held["instance"], held["instances"]) == ("p5.48xlarge", 1)
    assert doc["usd"]["on_demand"] < held["usd"]["on_demand"]
    eight = aicap("train", "-m", "llama-3.1-8b", "--devices", "8", "--tokens", "1B", "--hardware", "h100-sxm", "-f", "json").json()
    assert (eight["instance"], eight["instances"]) == ("p5.48xlarge", 1)  # eight 1-GPU instances bill no less, and talk slower


def test_a_short_job_prints_its_fractions_of_an_hour_a_dollar_and_a_kwh_not_zeros(aicap: Any) -> None:
    args = ("train", "-m", "llama-3.2-1b", "--method", "lora", "--hardware", "h100-sxm", "--devices", "1", "--tokens", "1M")
    doc = aicap(*args, "-f", "json").json()
    assert 0 < doc["device_hours"] < 0.1 and 0 < doc["usd"]["on_demand"] < 1 and 0 < doc["energy_kwh"] < 0.1
    table = aicap(*args, "-f", "table")
    assert table.code == 0, table.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.stdout.splitlines() if line.count("│") == 3}
    assert rows["device-hours"] == f"{doc['device_hours']:.3g}"
    assert rows["cost"].startswith(f"on_demand ${doc['usd']['on_demand']:.3g}")
    assert rows["energy"].startswith(f"{doc['energy_kwh']:.3g} kWh")
    assert rows["wall clock"].startswith(f"{doc['wall_clock_days'] * 86400:.1f} seconds")
    over = aicap(*args, "--budget", "0.001")
    assert over.code == 3 and f"the job costs ${doc['usd']['on_demand']:.3g} (on_demand), over the $0.001 budget" in over.stderr


def test_token_counts_read_as_people_say_them() -> None:
    from aicap.cli.commands.train_cmd import token_count

    assert [token_count(x) for x in (1e8, 15e12, 2.5e9, 131072, 1234567, 999.96e6, 1e18)] == [
        "100M", "15T", "2.5B", "131,072", "1.235M", "1B", "1,000,000T"]  # fmt: skip


def test_a_job_that_fits_nowhere_on_the_devices_alone_is_searched_with_its_optimizer_offloaded(aicap: Any) -> None:
    # A full fine-tune of a 70B model on one 8-GPU H100 machine needs ~140 GiB a device with its Adam states on the GPUs:
    # the search found nothing on H100, where ZeRO-Offload-style training runs it with the states in host memory.
    args = ("train", "-m", "llama-3.1-70b", "--tokens", "10M", "--max-devices", "8", "--cloud", "aws", "--hardware", "h100-sxm")
    doc = aicap("-q", *args, "-f", "json").json()
    plan = doc["plan"]
    assert plan["fits"] and plan["devices"] == 8 and plan["layout"]["offload"] == "optimizer"
    mem = plan["memory_gib_per_device"]
    assert mem["optimizer"] == 0 and mem["host_offload"] > 50 and mem["total"] <= mem["capacity"]
    # a job that fits on the devices is not offloaded
    small = aicap("-q", "train", "-m", "llama-3.1-8b", "--tokens", "10M", "--max-devices", "8", "--cloud", "aws", "--hardware", "h100-sxm",
                  "-f", "json").json()  # fmt: skip
    assert small["plan"]["layout"]["offload"] == "none"
    out = aicap(*args).stdout
    assert "offload optimizer" in out


def test_a_pricing_the_named_instance_lacks_is_said_and_prices_carry_their_date(aicap: Any) -> None:
    # --pricing spot on p5.48xlarge (no spot price) printed the on-demand cost, exit 0, nothing said; no figure had a date
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "8", "--tokens", "10B", "--pricing", "spot",
              "-f", "json")  # fmt: skip
    assert r.code == 0
    doc = r.json()
    assert doc["usd"]["spot"] is None and doc["price_date"] == "2026-08-01"
    assert (
        "p5.48xlarge has no spot price in the catalogue (--pricing spot): the cost shows the prices it has (on_demand, owned)" in r.stderr
    )
    table = aicap("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarge", "--devices", "8", "--tokens", "10B")
    assert "(cloud prices of 2026-08-01)" in table.stdout and "warning" not in table.stderr


def test_whole_instances_billed_beyond_the_devices_are_said() -> None:
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.train.api import estimate_job
    from aicap.sizing.train.setup import TrainSetup

    cat = load_catalogue()
    res = estimate_job(cat, cat.model("llama-3.1-8b"), "p5.48xlarge", TrainSetup(dp=12), 1e10)
    assert res.instances == 2 and res.usd["on_demand"] is not None and res.device_hours is not None
    rate = res.usd_per_device_hour["on_demand"]
    assert rate is not None and res.usd["on_demand"] == pytest.approx(rate * res.device_hours * 16 / 12)
    assert "billed for 2 whole p5.48xlarge (16 devices), 4 of them idle" in " ".join(res.notes)
    whole = estimate_job(cat, cat.model("llama-3.1-8b"), "p5.48xlarge", TrainSetup(dp=16), 1e10)
    assert not any("idle" in n for n in whole.notes)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # both said "(a device bought outright: --pricing owned)", which fails again
        (("--hardware", "tpu-v5e", "--pricing", "spot"), "matching --hardware tpu-v5e and --cloud any has a price under --pricing spot; "
                                                          "valid for them: on_demand"),
        (("--hardware", "p5.48xlarge", "--cloud", "gcp"), "no accelerator instance matches --hardware p5.48xlarge and --cloud gcp; "
                                                           "p5.48xlarge is offered on: aws"),
    ],
)  # fmt: skip
def test_a_search_with_nothing_to_search_names_what_would_help(aicap: Any, args: tuple[str, ...], needle: str) -> None:
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "10B", "--deadline-days", "30", *args)
    assert r.code == 2 and needle in r.stderr and "bought outright" not in r.stderr


def test_an_on_prem_search_held_to_one_machine_says_so_not_the_batch(aicap: Any) -> None:
    # "a step of 64,000,000 tokens spreads over at most 4 devices here: raise --global-batch-tokens": raising it changed nothing
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "100B", "--cloud", "on-prem", "--deadline-days", "10", "--pricing", "owned",
              "--global-batch-tokens", "64M")  # fmt: skip
    assert r.code == 3 and "no job here spans machines" in r.stderr and "raise --global-batch-tokens" not in r.stderr


def test_the_default_batch_is_whole_rounds_as_a_given_one_is(aicap: Any) -> None:
    # the default 4Mi at --seq-len 3000 on 8 replicas was costed as 174.76 rounds; given explicitly, as 175 (another answer)
    base = ("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--seq-len", "3000", "--tokens", "1B", "-f", "json")
    default, given = aicap(*base).json(), aicap(*base, "--global-batch-tokens", "4Mi").json()
    assert default["tokens_per_step"] == given["tokens_per_step"] == 175 * 8 * 3000
    assert default["step_time_s"] == given["step_time_s"]


def test_an_unknown_hardware_names_devices_and_instances(aicap: Any) -> None:
    for args in (("--devices", "8"), ("--tokens", "1B")):
        r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "p5.48xlarg", *args)
        assert r.code == 2 and r.stderr.count("\n") == 1
        assert "did you mean p5.48xlarge" in r.stderr and "give an accelerator id (a100-40gb-sxm" in r.stderr
        assert "or an instance name (`aicap instances list`)" in r.stderr


def test_a_searched_job_steps_whole_rounds_of_micro_batches() -> None:
    # the search costed 4Mi tokens a step at --seq-len 3000 as 174.76 rounds of one micro-batch on 8 replicas
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.train.api import plan_job
    from aicap.sizing.train.grid import Recipe
    from aicap.sizing.train.search import SearchSpec
    from aicap.sizing.train.setup import TrainSetup

    cat = load_catalogue()
    spec = SearchSpec(model=cat.model("llama-3.1-8b"), tokens=1e10, recipe=Recipe.of(TrainSetup(seq_len=3000)), seq_len=3000,
                      global_batch_tokens=4 * 2**20, deadline_days=5, clouds=("aws",))  # fmt: skip
    plan = plan_job(cat, spec)
    for job in (plan.best, *plan.alternatives):
        lay = job.layout
        per_round = int(lay["dp"]) * int(lay["micro_batch"]) * 3000  # type: ignore[call-overload]
        assert job.tokens_per_step % per_round == 0 and abs(job.tokens_per_step - 4 * 2**20) <= per_round / 2
        assert job.steps == -(-(10**10) // job.tokens_per_step)


def test_a_search_held_back_by_max_devices_says_so(aicap: Any) -> None:
    # "no job here spans machines (... no instance network ...)": p5.48xlarge has one; --max-devices 100 held the search
    # to 8 instances (64 devices), the next power of two being 128
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "10T", "--deadline-days", "1", "--max-devices", "100", "--hardware", "p5.48xlarge",
              "--global-batch-tokens", "1B")  # fmt: skip
    assert r.code == 3 and "at most 64 devices within --max-devices 100: raise --max-devices" in r.stderr
    assert "spans machines" not in r.stderr and "raise --global-batch-tokens" not in r.stderr


def test_expert_parallelism_on_a_dense_model_says_it_is_dense(aicap: Any) -> None:
    # "ep 2 does not divide llama-3.1-8b's 1 expert(s)": a dense model has no experts to divide
    r = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--ep", "2")
    assert r.code == 2 and "expert parallelism shards a mixture-of-experts model's experts, and llama-3.1-8b is dense" in r.stderr


def test_fine_tuning_a_quantised_release_says_the_base_is_sized_in_16_bit(aicap: Any, tmp_path: Any) -> None:
    # An AWQ int4 checkpoint was sized as a 16-bit base for LoRA and full fine-tuning without a word
    cfg = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_hidden_layers": 32, "max_position_embeddings": 8192, "vocab_size": 128256, "torch_dtype": "float16",
           "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}  # fmt: skip
    import json

    path = tmp_path / "awq.json"
    path.write_text(json.dumps(cfg))
    for method, base in (("lora", "fp16 weights, de-quantised"), ("qlora", "a 4-bit NF4 base (qlora)")):
        r = aicap("train", "-m", str(path), "--hardware", "h100-sxm", "--method", method, "--tokens", "1e8", "-f", "json")
        assert r.code == 0, r.stderr
        assert any(n.startswith(f"awq is released in int4; this {method} run is sized with {base}") for n in r.json()["plan"]["notes"])
    dense = aicap("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--method", "lora", "--tokens", "1e8", "-f", "json")
    assert not any("released in" in n for n in dense.json()["plan"]["notes"])


def test_the_search_spans_the_hosts_of_a_tpu_slice_as_a_given_layout_does(aicap: Any) -> None:
    # `train --budget 100000` answered "fastest within the budget: 8x v6e-8, 139.65 days" while the same tool priced 64 chips
    # over 8 v6e-8 hosts (one slice, joined by ICI) at 17.8 days for $73,953 when asked: the search kept an instance type without
    # an instance network on one host, though a TPU slice of full hosts needs none
    doc = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1T", "--budget", "100000", "--hardware", "tpu-v6e", "-f", "json").json()
    plan = doc["plan"]
    assert plan["instance"] == "v6e-8" and plan["instances"] > 1 and plan["wall_clock_days"] < 20
    given = aicap("train", "-m", "llama-3.1-8b", "--hardware", "tpu-v6e", "--devices", "64", "--tp", "2", "--pp", "2", "--recompute",
                  "none", "--tokens", "1T", "-f", "json").json()  # fmt: skip
    assert plan["wall_clock_days"] <= given["wall_clock_days"]  # the search finds at least what a given layout reaches


def test_the_batch_that_was_costed_is_in_the_document_too(aicap: Any) -> None:
    """The batch rounded to whole rounds of micro-batches was said on stderr only: a script reading the JSON saw "notes": []."""
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "2T", "--hardware", "h100-sxm", "--devices", "8", "--global-batch-tokens", "1K",
              "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    said = "--global-batch-tokens 1,000 is costed as 32,768"
    assert said in r.stderr and any(n.startswith(said) for n in r.json()["notes"])
    r = aicap("train", "-m", "llama-3.1-8b", "--tokens", "1B", "--cloud", "aws", "--global-batch-tokens", "10000", "-f", "json")
    assert r.code == 0, r.stderr
    said = "the global batch of 10,000 tokens is costed as "
    assert said in r.stderr and any(n.startswith(said) for n in r.json()["plan"]["notes"])
