"""`aicap models|hardware|instances` through the real CLI, parsing JSON rather than prose."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

FORMATS = ["table", "json", "yaml", "csv", "markdown"]


def test_models_show_json_llama_3_1_70b(aicap) -> None:
    r = aicap("models", "show", "llama-3.1-70b", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["architecture"]["num_layers"] == 80
    assert doc["params"]["derived"] == pytest.approx(70.6e9, rel=0.01)
    assert doc["kv_cache_bytes_per_token"] == 327_680


def test_models_show_deepseek_total_and_active(aicap) -> None:
    doc = aicap("models", "show", "deepseek-v3", "-f", "json").json()
    assert doc["params"]["derived"] == pytest.approx(671e9, rel=0.01)
    assert doc["params"]["derived_active"] == pytest.approx(37e9, rel=0.02)  # see tests/sizing/test_params.py
    assert doc["attention"] == "MLA"


def test_models_show_writes_published_counts_as_integers(aicap) -> None:
    r = aicap("models", "show", "llama-3.1-8b", "-f", "yaml")
    assert r.code == 0, r.stderr
    assert "published: 8030000000\n" in r.stdout  # not 8030000000.0
    assert aicap("models", "show", "deepseek-v3", "-f", "json").json()["params"]["published_active"] == 37_000_000_000


def test_hardware_show_h100(aicap) -> None:
    doc = aicap("hardware", "show", "h100-sxm", "--format", "json").json()
    assert doc["memory_gib"] == 80 and doc["memory_bw_tbps"] == pytest.approx(3.35)
    assert doc["peak_tflops"]["bf16"] == pytest.approx(989, rel=0.01)
    assert doc["sources"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("group", ["models", "hardware", "instances"])
def test_every_list_renders_in_every_format(aicap, group: str, fmt: str) -> None:
    r = aicap(group, "list", "--format", fmt)
    assert r.code == 0, r.stderr
    assert r.stdout.strip()
    if fmt == "json":
        assert isinstance(json.loads(r.stdout), list)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(r.stdout)))
        assert len(rows) > 5


def test_instances_filter_by_cloud(aicap) -> None:
    docs = aicap("instances", "list", "--cloud", "gcp", "-f", "json").json()
    assert docs and {d["cloud"] for d in docs} == {"gcp"}
    prices = [d["usd_per_device_hour"] for d in docs]
    assert prices == sorted(prices)
    table = aicap("instances", "list", "--cloud", "aws").stdout  # to the cent, as the plan's tables show it (113.93, not 114)
    b200 = next(d for d in aicap("instances", "list", "--cloud", "aws", "-f", "json").json() if d["name"] == "p6-b200.48xlarge")
    assert f"{b200['price_usd_per_hour']['on_demand']:,.2f}" in next(line for line in table.splitlines() if "p6-b200.48xlarge" in line)
    # every pricing model a fleet may name has its column (reserved_3y was in the JSON only)
    header = aicap("instances", "list", "--cloud", "aws", "-f", "csv").stdout.splitlines()[0].split(",")
    assert {"spot", "reserved_1y", "reserved_3y", "owned"} <= set(header)


def test_models_list_filter_by_kind(aicap) -> None:
    docs = aicap("models", "list", "--kind", "encoder", "-f", "json").json()
    assert {d["kind"] for d in docs} == {"encoder"}


def test_catalogue_filters_ignore_case_as_the_format_option_does(aicap) -> None:
    # `-f JSON` was accepted where `--kind GPU` was refused: a closed vocabulary's spelling carries no meaning.
    assert aicap("hardware", "list", "--kind", "GPU", "--vendor", "NVIDIA", "-f", "json").json() == aicap(
        "hardware", "list", "--kind", "gpu", "--vendor", "nvidia", "-f", "json").json()  # fmt: skip
    docs = aicap("instances", "list", "--cloud", "AWS", "--region", "US-EAST-1", "-f", "json").json()
    assert docs and {(d["cloud"], d["region"]) for d in docs} == {("aws", "us-east-1")}
    assert {d["kind"] for d in aicap("models", "list", "--kind", "Encoder", "-f", "json").json()} == {"encoder"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["models", "show", "llama-9"], "unknown model 'llama-9'"),
        (["hardware", "show", "h1000"], "unknown hardware 'h1000'"),
        (["instances", "list", "--cloud", "ibm"], "--cloud 'ibm': valid choices: aws, gcp, azure, on-prem"),
        (["instances", "list", "--max-price", "-3"], "--max-price -3.0: must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2(aicap, args: list[str], needle: str) -> None:
    r = aicap(*args)
    assert r.code == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


def test_malformed_overlay_yaml_exit_2(aicap, tmp_path) -> None:
    (tmp_path / "x.yaml").write_text("devices: [\n")
    r = aicap("--catalog", str(tmp_path), "hardware", "list")
    assert r.code == 2 and "malformed YAML" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_missing_field_in_overlay_exit_2(aicap, tmp_path) -> None:
    (tmp_path / "x.yaml").write_text("models:\n  - kind: decoder\n    id: t\n    name: T\n    family: llama\n    source: s\n")
    r = aicap("--catalog", str(tmp_path), "models", "list")
    assert r.code == 2 and "required fields are missing" in r.stderr  # every one the model lacks, at once


def test_verbose_reports_overrides(aicap, tmp_path) -> None:
    (tmp_path / "e.yaml").write_text("efficiency:\n  - {family: nvidia-hopper, compute: 0.5, memory: 0.5, source: mine}\n")
    r = aicap("--verbose", "--catalog", str(tmp_path), "hardware", "list", "-f", "json")
    assert r.code == 0 and "efficiency 'nvidia-hopper'" in r.stderr and "overridden" in r.stderr
    json.loads(r.stdout)
    # once a run, every run: size read the catalogue several times and said each override 4-8 times
    for _ in range(2):
        r = aicap("--verbose", "--catalog", str(tmp_path), "size", "-m", "llama-3.1-8b", "--rate", "1", "--hardware", "h100-sxm")
        assert r.code == 0 and r.stderr.count("efficiency 'nvidia-hopper'") == 1, r.stderr


def test_version(aicap) -> None:
    r = aicap("--version")
    assert r.code == 0 and r.stdout.startswith("aicap ")


def test_help_does_not_import_scipy_numpy_or_pydantic() -> None:
    code = "import sys; from aicap.cli.app import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print('HEAVY:' + ','.join(m for m in ('scipy', 'numpy', 'pydantic') if m in sys.modules))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY:\n" in out


def test_on_prem_machines_list_their_owned_price(aicap) -> None:
    docs = aicap("instances", "list", "--cloud", "on-prem", "-f", "json").json()
    assert {d["name"] for d in docs} >= {"jetson-agx-orin-64gb-devkit", "workstation-1x-rtx-4090"}
    for d in docs:
        assert d["priced_as"] == "owned" and d["price_usd_per_hour"]["on_demand"] is None
        assert d["usd_per_device_hour"] == pytest.approx(d["price_usd_per_hour"]["owned"] / d["devices"], abs=1e-3)


def test_train_prices_the_jobs_hours_of_owned_hardware(aicap) -> None:
    doc = aicap("train", "--model", "llama-3.1-8b", "--tokens", "10B", "--hardware", "h100-sxm", "--devices", "8", "--pricing", "owned",
                "-f", "json").json()  # fmt: skip
    assert 0 < doc["usd"]["owned"] < doc["usd"]["on_demand"]
    assert doc["usd"]["owned"] == pytest.approx(doc["usd_per_device_hour"]["owned"] * doc["device_hours"], rel=0.01)


def test_on_prem_without_owned_pricing_is_an_input_error_that_says_how(aicap) -> None:
    # exit 3 "no instance type matches the constraints (... pricing=on_demand)": contradictory inputs, not an infeasible fleet
    for cmd in (("size",), ("whatif",), ("whatif", "--buy-vs-rent")):
        r = aicap("-q", cmd[0], "--model", "llama-3.1-8b", "--rate", "5", "--cloud", "on-prem", *cmd[1:])
        assert r.code == 2 and r.stdout == "", cmd
        assert "on-prem machines are bought outright and have only an owned price; set pricing: owned" in r.stderr
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "5", "--cloud", "on-prem", "--pricing", "owned").code == 0


def test_instances_show_gives_every_price_with_its_date_and_sources(aicap) -> None:  # type: ignore[no-untyped-def]
    # `instances list` promised sources and showed none outside JSON, and there was no `instances show`
    d = aicap("instances", "show", "p5.48xlarge", "-f", "json").json()
    assert d["name"] == "p5.48xlarge" and d["devices"] == 8 and d["price_date"] and d["source"] and d["network"]["source"]
    assert d["usd_per_device_hour"] == round(d["price_usd_per_hour"]["on_demand"] / 8, 4)
    # the owned price comes from the ownership data, not the instance row: its own basis, date and source
    assert d["owned_basis"]["date"] != d["price_date"] and d["owned_basis"]["source"] and d["owned_basis"]["device_usd"] > 0
    table = aicap("instances", "show", "p5.48xlarge").stdout
    assert "price_usd_per_hour.on_demand" in table and "network.source" in table
    bad = aicap("instances", "show", "p5.48xlarg")
    assert bad.code == 2 and "did you mean p5.48xlarge" in bad.stderr
    assert "aicap instances show NAME" in aicap("instances", "list", "--cloud", "aws").stdout.replace("\n", " ")
