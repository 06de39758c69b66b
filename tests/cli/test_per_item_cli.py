"""Generic (per-item) models through the CLI: one item a request in `estimate`, `size` and `simulate` alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ITEM = "resnet-50 is a generic model whose cost is per item (one 224x224 RGB image a request)"


def test_estimate_names_the_item_and_reads_one(aicap) -> None:
    r = aicap("estimate", "-m", "resnet-50", "--hardware", "h100-sxm")
    assert r.code == 0 and "(one 224x224 RGB image a request)" in r.stdout and "1024 in" not in r.stdout
    assert aicap("estimate", "-m", "resnet-50", "--hardware", "h100-sxm", "-f", "json").json()["input_tokens"] == 1


def test_size_plans_what_one_device_carries(aicap) -> None:
    one = aicap("estimate", "-m", "resnet-50", "--hardware", "h100-sxm", "-f", "json").json()["throughput"]["requests_per_s"]
    r = aicap("size", "-m", "resnet-50", "--rate", "2000", "--ttft-ms", "100", "--hardware", "h100-sxm", "--cloud", "aws", "-f", "json")
    assert r.code == 0, r.stderr
    plan = r.json()
    assert plan["totals"]["devices"] == 1 and one > 2000  # was twenty-odd H100s: 1,024 "tokens" a request read as items
    assert plan["inputs"]["workloads"][0]["input_tokens"] == 1
    assert plan["workloads"][0]["usd_per_million_output_tokens"] is None


@pytest.mark.parametrize("command", ["size", "whatif"])
@pytest.mark.parametrize("flag", ["--input-tokens", "--output-tokens"])
def test_size_and_whatif_refuse_token_lengths_by_flag(aicap, command: str, flag: str) -> None:
    r = aicap(command, "-m", "resnet-50", "--rate", "2000", "--ttft-ms", "100", flag, "8")
    assert r.code == 2 and f"{flag} applies to a model that reads or writes tokens; {ITEM}: drop {flag}" in r.stderr


def test_simulate_runs_one_item_a_request(aicap) -> None:
    r = aicap("simulate", "-m", "resnet-50", "--hardware", "h100-sxm", "--rate", "100", "--requests", "2000", "-f", "json")
    assert r.code == 0, r.stderr
    d = r.json()
    assert d["setup"]["mean_input_tokens"] == 1.0 and d["setup"]["traffic"].startswith("one item a request")
    assert d["throughput"]["requests_per_s"] == pytest.approx(100.0, rel=0.1)  # 72 req/s, unstable, at 1,024 items a request
    assert d["ttft_ms"]["p99"] < 100.0


@pytest.mark.parametrize("extra", [["--input-tokens", "3"], ["--dataset", "sharegpt-8k"]])
def test_simulate_refuses_lengths_by_flag(aicap, extra: list[str]) -> None:
    r = aicap("simulate", "-m", "resnet-50", "--hardware", "h100-sxm", "--rate", "100", *extra)
    assert r.code == 2 and f"{extra[0]} applies to a model that reads tokens; {ITEM}: drop it" in r.stderr


def test_a_trace_replays_its_arrivals_one_item_each(aicap, tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n0.01,5000,5\n0.5,200,3\n")
    r = aicap("simulate", "-m", "resnet-50", "--hardware", "h100-sxm", "--trace", str(trace), "-f", "json")
    assert r.code == 0, r.stderr
    assert "each request of t.csv is one item, its input_tokens and output_tokens unread" in r.stderr
    d = json.loads(r.stdout)
    assert d["setup"]["mean_input_tokens"] == 1.0 and d["setup"]["mean_output_tokens"] == 0.0
