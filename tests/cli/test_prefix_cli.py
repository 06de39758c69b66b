"""``--prefix-cached`` on estimate, size and simulate, through the CLI."""

from __future__ import annotations

ARGS = ("--model", "llama-3.1-8b", "--input-tokens", "4000", "--output-tokens", "200")


def test_size_with_a_cached_prefix_is_cheaper_and_records_it(aicap) -> None:
    common = ("size", *ARGS, "--rate", "12", "--ttft-ms", "1500", "--cloud", "aws", "-f", "json")
    cold, warm = aicap(*common).json(), aicap(*common, "--prefix-cached", "0.75").json()
    assert warm["inputs"]["workloads"][0]["prefix_cached_share"] == 0.75
    assert warm["totals"]["usd_per_month"] < cold["totals"]["usd_per_month"]


def test_simulate_with_a_cached_prefix_keeps_up_where_recomputing_does_not(aicap) -> None:
    common = ("simulate", *ARGS, "--hardware", "h100-sxm", "--rate", "9", "--requests", "1500", "-f", "json")
    assert aicap(*common).json()["stable"] is False
    warm = aicap(*common, "--prefix-cached", "0.75").json()
    assert warm["stable"] is True and warm["ttft_ms"]["p99"] < 1000


def test_prefix_cached_out_of_range_is_exit_2(aicap) -> None:
    for cmd in (("estimate", "--hardware", "h100-sxm"), ("size", "--rate", "1")):
        r = aicap(*cmd, *ARGS, "--prefix-cached", "1")
        assert r.code == 2 and "--prefix-cached 1" in r.stderr and "[0, 1)" in r.stderr
