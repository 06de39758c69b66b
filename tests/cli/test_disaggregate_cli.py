"""``aicap size --disaggregate``: two pools in the plan, verified by simulation, and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

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
    # Each pool names its role; the prefill pool (one token a request) promises no TPOT and prices no output token (it
    # showed TPOT 0.0 and $1,529 per million), and the decode pool's output tokens cost both pools (it counted its own).
    pool = {w["disaggregated_role"]: w for w in doc["workloads"]}
    assert pool["prefill"]["tpot_ms"] is None and pool["prefill"]["usd_per_million_output_tokens"] is None
    assert all(d["tpot_ms"] is None for d in pool["prefill"]["deployments"])
    tokens_per_h = pool["decode"]["served_requests_per_s"] * 300 * 3600
    both = (pool["prefill"]["usd_per_hour"] + pool["decode"]["usd_per_hour"]) / tokens_per_h * 1e6
    assert pool["decode"]["usd_per_million_output_tokens"] == pytest.approx(both, abs=0.01)


def test_pool_options_need_disaggregate_and_one_workload(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "1", "--prefill-hardware", "h100-sxm")
    assert r.code == 2 and "add it" in r.stderr
    fleet = tmp_path / "f.yaml"
    fleet.write_text("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: 1}]\n")
    r = aicap("size", str(fleet), "--disaggregate")
    assert r.code == 2 and "disaggregation" in r.stderr
    r = aicap("size", "--model", "llama-3.1-8b", "--rate", "1", "--disaggregate", "--tpot-ms", "50")
    assert r.code == 2 and "give slo.ttft_ms (--ttft-ms)" in r.stderr and r.stderr.count("\n") == 1


def test_estimate_disaggregate_composes_ttft_and_sizes_the_pool_ratio(aicap) -> None:
    doc = aicap("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--decode-hardware", "a100-80gb-sxm", "--tp", "4",
                "--input-tokens", "2000", "--output-tokens", "300", "--tpot-ms", "40", "--disaggregate", "--transfer-gbps", "50",
                "-f", "json").json()  # fmt: skip
    pre, dec = doc["prefill"], doc["decode"]
    assert (pre["hardware"], dec["hardware"]) == ("h100-sxm", "a100-80gb-sxm") and pre["output_tokens"] == 1
    assert dec["prefix_cached_share"] == pytest.approx(1 - 1 / 2000)
    kv = {"bf16": 2, "fp8": 1}[pre["kv_dtype"]]
    # each of the 4 devices of a TP4 replica moves its own 2 of the 8 KV heads over its own 50 Gbit/s link
    assert doc["kv_transfer"]["ms"] == pytest.approx(80 * 2 * (8 // 4) * 128 * kv * 2000 * 8 / 50e9 * 1e3, rel=1e-4)
    assert doc["ttft_s"] == pytest.approx(pre["ttft_s"] + doc["kv_transfer"]["ms"] / 1e3 + dec["ttft_s"], rel=1e-3)  # parts at 4 digits
    ratio = dec["throughput"]["requests_per_s"] / pre["throughput"]["requests_per_s"]
    assert doc["prefill_replicas_per_decode_replica"] == pytest.approx(ratio, rel=1e-3) and doc["tpot_s"] <= 0.040 + 1e-9
    r = aicap("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--transfer-gbps", "50")
    assert r.code == 2 and "shape --disaggregate" in r.stderr
    r = aicap("estimate", "--model", "bge-large-en", "--hardware", "l4", "--disaggregate")
    assert r.code == 2 and "not a decoder" in r.stderr


def test_simulating_a_disaggregated_plan_checks_the_composed_ttft(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "pd.json"
    assert aicap(*ARGS, "-o", str(plan)).code == 0
    doc = aicap("simulate", str(plan), "-f", "json").json()
    (c,) = doc["disaggregated"]
    assert c["workload"] == "llama-3.1-70b" and c["ttft_target_ms"] == 1500.0 and c["holds"] and doc["holds"]
    kv = {d["kv_dtype"] for w in json.loads(plan.read_text())["workloads"] if w["name"].endswith(".prefill") for d in w["deployments"]}
    per_token = 327_680 * (0.5 if kv == {"fp8"} else 1.0)  # the prefill pool's KV format: 16 bit is 327,680 bytes a token
    assert c["transfer_ms"] == pytest.approx(per_token * 2000 * 8 / 50e9 * 1e3, abs=1e-3)
    # The composed percentile lies between the larger part and the sum of the parts for these light-tailed waits (a
    # percentile is not subadditive in general: the sum's p99 may pass the parts' by a hair, so 0.5% of slack).
    parts = (c["prefill_ttft_ms"], c["decode_ttft_ms"])
    # each part is its pool's own p99 over all its requests (it was the p99 of a subsample): a pool of one deployment gives
    # that row's p99, a pool of several (the idle devices of its instance filled with another layout) lies between theirs
    by_pool: dict[str, list[float]] = {}
    for d in doc["deployments"]:
        by_pool.setdefault(d["workload"].rsplit(".", 1)[1], []).append(d["ttft_ms"]["p99"])
    for part, pool in zip(parts, ("prefill", "decode"), strict=True):  # (the report keeps 5 figures)
        assert min(by_pool[pool]) * (1 - 1e-4) <= part <= max(by_pool[pool]) * (1 + 1e-4), (pool, part, by_pool[pool])
    assert all(v[0] == pytest.approx(part, rel=1e-4) for v, part in zip(by_pool.values(), parts, strict=True) if len(v) == 1)
    assert max(parts) + c["transfer_ms"] <= c["composed_ttft_ms"] <= (sum(parts) + c["transfer_ms"]) * 1.005
    # CSV: both pools' rows carry the composed TTFT users see, as the JSON gives it (it was left out)
    rows = list(csv.DictReader(io.StringIO(aicap("simulate", str(plan), "-f", "csv").stdout)))
    assert {r["workload"] for r in rows} == {"llama-3.1-70b.decode", "llama-3.1-70b.prefill"} and len(rows) == len(doc["deployments"])
    for r in rows:
        assert float(r["composed_ttft_ms"]) == c["composed_ttft_ms"] and float(r["composed_ttft_target_ms"]) == 1500.0
        assert r["composed_holds"] == "true"


def test_pools_that_nothing_can_host_say_why(aicap) -> None:
    base = ("size", "--model", "llama-3.1-8b", "--rate", "2", "--ttft-ms", "1000", "--tpot-ms", "50", "--disaggregate")
    r = aicap(*base, "--cloud", "gcp", "--prefill-hardware", "nosuch")
    assert r.code == 2 and "unknown hardware 'nosuch'" in r.stderr
    r = aicap(*base, "--pricing", "owned", "--cloud", "on-prem", "--transfer-gbps", "10")
    assert r.code == 3 and "needs at least 10 Gbit/s of sourced scale-out network per device" in r.stderr
    r = aicap(*base, "--pricing", "owned", "--cloud", "on-prem")
    assert r.code == 2 and "--transfer-gbps" in r.stderr


def test_simulate_disaggregate_runs_each_request_through_both_pools(aicap) -> None:
    args = ("simulate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--decode-hardware", "a100-40gb-sxm", "--devices", "8",
            "--disaggregate", "--prefill-replicas", "4", "--replicas", "1", "--rate", "5", "--input-tokens", "2000", "--output-tokens",
            "300", "--ttft-ms", "1500", "--tpot-ms", "40", "--requests", "1500", "--transfer-gbps", "50")  # fmt: skip
    doc = aicap(*args, "-f", "json").json()
    assert (doc["prefill"]["hardware"], doc["decode"]["hardware"]) == ("h100-sxm", "a100-40gb-sxm")
    assert (doc["prefill"]["replicas"], doc["decode"]["replicas"]) == (4, 1) and doc["stable"] and doc["holds"]

    # the busiest device's share of 327,680 bytes a token (80 layers, 8 KV heads): its stage's layers and its heads
    def share(pool: dict[str, int]) -> float:
        return -(-80 // pool["pp"]) * 2 * -(-8 // pool["tp"]) * 128 * 2 * 2000

    busiest = max(share(doc["prefill"]), share(doc["decode"]))
    assert busiest < 327_680 * 2000  # the whole cache over one link was the old figure
    assert doc["kv_transfer"]["ms"] == pytest.approx(busiest * 8 / 50e9 * 1e3, abs=1e-3)
    # Each request's TTFT is its own prefill + transfer + decode: the composed tail is at least the transfer above each part's.
    assert doc["ttft_ms"] >= max(doc["prefill_ttft_ms"], doc["decode_ttft_ms"]) + doc["kv_transfer"]["ms"] - 1e-6
    assert doc["ttft_ms"] <= doc["prefill_ttft_ms"] + doc["decode_ttft_ms"] + doc["kv_transfer"]["ms"] + 1e-6
    r = aicap(*args[:5], "--rate", "5", "--prefill-replicas", "2")
    assert r.code == 2 and "shape --disaggregate" in r.stderr


def test_estimate_disaggregated_with_a_replica_that_does_not_fit_exits_3_not_a_crash(aicap) -> None:  # type: ignore[no-untyped-def]
    # a decode replica that does not fit divided None req/s by its replicas: "internal error: TypeError", exit 4
    for fmt in ("table", "json", "csv"):
        r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "mi300x", "--disaggregate", "--decode-hardware", "rtx-4090",
                  "--transfer-gbps", "100", "-f", fmt)  # fmt: skip
        assert r.code == 3 and "decode does not fit" in r.stderr and "internal error" not in r.stderr
    doc = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "mi300x", "--disaggregate", "--decode-hardware", "rtx-4090",
                "--transfer-gbps", "100", "-f", "json").json()  # fmt: skip
    # the composed figures need both replicas: a TTFT and a pool ratio of a replica that does not fit were printed
    assert (doc["fits"], doc["ttft_s"], doc["tpot_s"], doc["prefill_replicas_per_decode_replica"]) == (False, None, None, None)


def test_estimate_disaggregated_exits_3_on_a_missed_tpot_target(aicap) -> None:  # type: ignore[no-untyped-def]
    # --tpot-ms 5 against a 41.6 ms decode step exited 0 without a word
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "mi300x", "--disaggregate", "--transfer-gbps", "100", "--tpot-ms", "5")
    assert r.code == 3 and "> target 5 ms" in r.stderr
    ok = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "mi300x", "--disaggregate", "--transfer-gbps", "100", "--tpot-ms", "100")
    assert ok.code == 0


def test_dp_attention_on_devices_alone_searches_layouts_within_one_machine(aicap) -> None:  # type: ignore[no-untyped-def]
    # --devices 16 --dp-attention 8 on mi300x (no scale-out network) tried TP16 and failed "--tp 16: ... use --tp 8", a --tp
    # the user never gave; TP8 with two replicas was there to find
    doc = aicap("estimate", "-m", "deepseek-v3", "--hardware", "mi300x", "--devices", "16", "--dp-attention", "8", "-f", "json").json()
    assert (doc["tp"], doc["replicas"], doc["dp_attention"]) == (8, 2, 8)
    wide = aicap("estimate", "-m", "deepseek-v3", "--hardware", "h100-sxm", "--devices", "16", "--dp-attention", "8", "-f", "json").json()
    assert wide["tp"] == 16  # where instances have a scale-out network, one replica may span two of them
