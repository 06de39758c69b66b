"""``aicap size --disaggregate``: two pools in the plan, verified by simulation, and one-line errors."""

from __future__ import annotations

ARGS = ("size", "--model", "llama-3.1-70b", "--rate", "5", "--input-tokens", "2000", "--output-tokens", "300", "--ttft-ms", "1500",
        "--tpot-ms", "40", "--cloud", "aws", "--disaggregate", "--transfer-gbps", "50", "-f", "json")  # fmt: skip


def test_the_plan_has_a_prefill_and_a_decode_pool_and_holds_in_simulation(aicap) -> None:
    doc = aicap(*ARGS, "--verify").json()
    names = [w["name"] for w in doc["workloads"]]
    assert names == ["llama-3.1-70b.prefill", "llama-3.1-70b.decode"]
    assert doc["verification"]["holds"]
    pre = next(v for v in doc["verification"]["workloads"] if v["workload"].endswith(".prefill"))
    assert pre["simulated_tpot_ms"] is None and pre["simulated_ttft_ms"] <= pre["ttft_target_ms"]
    assert any("served disaggregated" in w for w in doc["warnings"])


def test_pool_options_need_disaggregate_and_one_workload(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "1", "--prefill-hardware", "h100-sxm")
    assert r.code == 2 and "add it" in r.stderr
    fleet = tmp_path / "f.yaml"
    fleet.write_text("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: 1}]\n")
    r = aicap("size", str(fleet), "--disaggregate")
    assert r.code == 2 and "disaggregation" in r.stderr
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "1", "--disaggregate", "--tpot-ms", "50")
    assert r.code == 2 and "give slo.ttft_ms (--ttft-ms)" in r.stderr and r.stderr.count("\n") == 1
