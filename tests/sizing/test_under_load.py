"""Cases measured under load are replayed through the simulator (``aicap validate --set server``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.under_load import CACHE_BLOCK_TOKENS, case_lengths, predict_under_load, request_lengths, warm_prefix_tokens
from aicap.sizing.calibrate.validation import load_cases, predict, score
from aicap.sizing.core.errors import InputError
from aicap.sizing.serve.estimate import EstimateRequest, estimate

CAT = load_catalogue()
SHAREGPT = (161.0, 338.0)
A100 = CAT.device("a100-80gb-sxm")


def case(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "t", "model": "llama-3.1-8b", "hardware": "a100-80gb-sxm", "kind": "server", "devices": 1, "tp": 1,
                            "pp": 1, "weights_dtype": "bf16", "request_rate": 1.0, "num_requests": 300, "input_tokens": 1000,
                            "output_tokens": 100, "metrics": {"ttft_ms_p50": 1.0}}  # fmt: skip
    return {**base, **kw}


def test_shipped_server_cases_load_and_route_to_the_simulator() -> None:
    cases = load_cases(which="server")
    assert len(cases) == 77 and {c["kind"] for c in cases} == {"server", "closed_loop"}
    assert sum(1 for c in cases if c.get("num_requests")) >= 60
    rep = score([c for c in cases if c["model"] == "llama-3.1-8b"], CAT)
    assert {r.kind for r in rep.scored} == {"server", "closed_loop"} and len(rep.scored) >= 30


def test_lengths_keep_the_case_means() -> None:
    share = {"name": "ShareGPT", "mean_input_tokens": 225.0, "mean_output_tokens": 190.0}
    lin, lout = case_lengths(case(input_tokens=None, output_tokens=None, dataset=share), SHAREGPT)
    assert lin.mean == pytest.approx(225, rel=0.01) and lout.mean == pytest.approx(190, rel=0.01) and len(lin.values) > 5
    # ShareGPT's first turns, as every shipped sampler draws them: mostly short prompts and a long tail
    # (whole conversations, sharegpt-8k, have a median near the mean).
    assert np.median(lin.draw(20_000, 0)) < 0.5 * lin.mean and np.median(lout.draw(20_000, 0)) < 0.8 * lout.mean
    rand = {"name": "sglang random", "mean_input_tokens": 512.0, "mean_output_tokens": 256.0}
    lin, lout = case_lengths(case(input_tokens=None, output_tokens=None, dataset=rand), SHAREGPT)
    assert lin.mean == pytest.approx(512, rel=0.01) and min(lin.values) == 1 and max(lin.values) == 1023
    lin, lout = case_lengths(case(input_tokens=None, output_tokens=None), SHAREGPT)
    assert (lin.mean, lout.mean) == pytest.approx(SHAREGPT, rel=0.01)
    lin, lout = case_lengths(case(), SHAREGPT)
    assert (lin.values, lout.values) == ((1000,), (100,))


def test_a_harness_without_the_length_filter_draws_the_unfiltered_first_turns() -> None:
    """GPUStack's benchmark-runner sends ShareGPT first turns without a length filter: the prompts keep a tail the
    filtering samplers cut at 1,024 tokens, and the outputs are the replies' own lengths; the case means are kept."""
    base = {"name": "ShareGPT", "mean_input_tokens": 342.1, "mean_output_tokens": 281.4}
    filtered = case_lengths(case(input_tokens=None, output_tokens=None, dataset=base), SHAREGPT)
    lin, lout = case_lengths(case(input_tokens=None, output_tokens=None, dataset={**base, "lengths": "sharegpt-first-turn-unfiltered"}),
                             SHAREGPT)  # fmt: skip
    assert lin.mean == pytest.approx(342.1, rel=0.01) and lout.mean == pytest.approx(281.4, rel=0.01)
    p99 = [float(np.percentile(x.draw(50_000, 0), 99)) for x in (filtered[0], lin)]
    assert p99[1] > 2 * p99[0] and max(lin.values) > 3000  # prompts of thousands of tokens
    # the replies' own lengths: no mass of near-empty outputs an EOS-honouring model leaves
    assert float(np.mean(lout.draw(50_000, 0) < 10)) < 0.02 < float(np.mean(filtered[1].draw(50_000, 0) < 10))
    with pytest.raises(Exception, match="sharegpt-first-turn-unfiltered"):
        case_lengths(case(input_tokens=None, output_tokens=None, dataset={**base, "lengths": "sharegpt-unfiltred"}), SHAREGPT)


def test_an_idle_server_sees_the_idle_latencies() -> None:
    """At a trickle of load each request runs alone: TTFT and TPOT are the estimate's batch-1 figures."""
    got = predict_under_load(case(request_rate=0.05, num_requests=40), CAT, CAT.efficiency_for(A100), SHAREGPT)
    one = estimate(EstimateRequest(model=CAT.model("llama-3.1-8b"), device=A100, efficiency=CAT.efficiency_for(A100),
                                   runtime=CAT.runtime_spec, tp=1, pp=1, batch=1, input_tokens=1000, output_tokens=100))  # fmt: skip
    assert got["ttft_ms_p50"] == pytest.approx(float(one.metrics.ttft_s) * 1e3, rel=0.05)
    assert got["tpot_ms_p50"] == pytest.approx(float(one.metrics.tpot_s) * 1e3, rel=0.1)
    assert got["requests_s"] == pytest.approx(0.05, rel=0.3)


def test_an_unsaturated_run_carries_its_offered_rate() -> None:
    """300 Poisson arrivals at 1 req/s end near 300 s whatever the benchmark's draw was: the replay's n-th arrival
    is at n/λ (seed 0's own first 300 gaps sum to 348 s, which put throughput 14% under the offered rate)."""
    for rate, n, arrival in ((1.0, 300, "poisson"), (4.0, 200, "poisson"), (2.0, 300, "gamma")):
        got = predict_under_load(case(request_rate=rate, num_requests=n, arrival={"process": arrival, "cv": 2.0}), CAT,
                                 CAT.efficiency_for(A100), SHAREGPT)  # fmt: skip
        drain = got["e2e_ms_mean"] / 1e3  # the last request's latency, after the last arrival
        assert got["requests_s"] == pytest.approx(n / (n / rate + drain), rel=0.03)


def test_more_load_means_more_latency_and_saturated_throughput() -> None:
    lo = predict(case(request_rate=2.0, num_requests=600), CAT)
    hi = predict(case(request_rate=40.0, num_requests=600), CAT)
    assert hi["ttft_ms_p50"] > lo["ttft_ms_p50"] and hi["tpot_ms_p50"] > lo["tpot_ms_p50"]
    assert hi["requests_s"] < 40.0  # it cannot keep up: throughput is the replica's, not the offered rate
    closed = predict(case(kind="closed_loop", batch=8, request_rate=None, num_requests=200), CAT)
    assert closed["requests_s"] > 0 and closed["ttft_ms_p50"] > 0


def test_knees_of_sweeps() -> None:
    from aicap.sizing.calibrate.under_load import knees

    def c(i: int, rate: float, ttft: float, src: str = "S") -> dict[str, Any]:
        return {"id": f"{src}{i}", "kind": "server", "source_key": src, "model": "m", "hardware": "h", "framework": "f", "tp": 1,
                "pp": 1, "request_rate": rate, "metrics": {"ttft_ms_p50": ttft}}  # fmt: skip

    sweep = [c(0, 1, 100), c(1, 2, 120), c(2, 4, 350), c(3, 8, 900)]  # measured knee at 4 req/s
    short = [c(0, 1, 100, "T"), c(1, 2, 500, "T")]  # two rates: not a sweep
    pred = {("S0", "ttft_ms_p50"): 50.0, ("S1", "ttft_ms_p50"): 60.0, ("S2", "ttft_ms_p50"): 200.0, ("S3", "ttft_ms_p50"): 300.0,
            ("T0", "ttft_ms_p50"): 1.0, ("T1", "ttft_ms_p50"): 9.0}  # fmt: skip
    (k,) = knees(sweep + short, pred)
    assert (k.rates, k.measured, k.predicted) == ((1.0, 2.0, 4.0, 8.0), 4.0, 4.0) and k.within_one_step
    pred["S2", "ttft_ms_p50"] = 60.0
    pred["S3", "ttft_ms_p50"] = 60.0  # never explodes within the sweep: two steps past the measured knee
    (k,) = knees(sweep, pred)
    assert k.predicted is None and not k.within_one_step


def test_engine_options_replay_the_engine_the_source_ran() -> None:
    """LMDeploy 0.1's static benchmark (16 clients, 2048-token prompts on Llama-2-7B): TurboMind prefilled every
    admitted prompt before the iteration's decode step, so the clients stay together (TTFT of seconds, pure
    decode steps). Replayed with the vLLM-like defaults instead, prompts mix into decode steps: TTFT is 7x low,
    the p99 inter-token gap 15x high and TPOT 1.5x."""
    (c,) = [c for c in load_cases(which="server") if c["id"] == "lmdeploy-a100-turbomind-llama-2-7b-tp1-2048-128-conc16"]
    assert c["engine_options"]["chunked_prefill"] is False and c["engine_options"]["kv_cache_tokens"] == 128_000
    eff = CAT.efficiency_for(A100)
    got = predict_under_load(c, CAT, eff, SHAREGPT)
    plain = predict_under_load({k: v for k, v in c.items() if k != "engine_options"}, CAT, eff, SHAREGPT)
    m = c["metrics"]
    assert got["ttft_ms_mean"] == pytest.approx(m["ttft_ms_mean"], rel=0.35) and plain["ttft_ms_mean"] < m["ttft_ms_mean"] / 4
    # The source's per-token latency percentiles are inter-token gaps (itl_ms_*), the simulator's over tokens too.
    # Mixed into decode steps, each 2,048-token prompt stalls the decoders' next token: a p99 gap 15x the measured one.
    assert got["itl_ms_p50"] == pytest.approx(m["itl_ms_p50"], rel=0.2) and got["itl_ms_p99"] == pytest.approx(m["itl_ms_p99"], rel=0.2)
    assert plain["itl_ms_p99"] > 10 * m["itl_ms_p99"] and plain["tpot_ms_p50"] > 1.5 * got["tpot_ms_p50"]


def test_turbomind_0_1_all_reduces_with_nccl_and_pays_for_it_at_tp_above_one() -> None:
    """TurboMind 0.1 calls NCCL for each layer's two all-reduces (engine_options all_reduce: nccl): at TP 4 a decode
    step of Llama-2-70B pays 160 x 44 us more than with a custom kernel, the inter-token gap grows by that and the
    throughput falls; at TP 1 there is nothing to all-reduce and nothing changes."""
    cases = {c["id"]: c for c in load_cases(which="server")}
    tp4 = cases["lmdeploy-a100-turbomind-llama-2-70b-tp4-128-2048-conc16"]
    assert tp4["engine_options"]["all_reduce"] == "nccl"
    eff = CAT.efficiency_for(A100)
    assert eff.nccl_all_reduce_us == 44.0
    custom = dict(tp4, engine_options={**tp4["engine_options"], "all_reduce": "custom"})
    got, plain = predict_under_load(tp4, CAT, eff, SHAREGPT), predict_under_load(custom, CAT, eff, SHAREGPT)
    step_s = 2 * CAT.model("llama-2-70b").num_layers * eff.nccl_all_reduce_us * 1e-6
    assert got["itl_ms_p50"] - plain["itl_ms_p50"] == pytest.approx(1e3 * step_s, rel=0.1)
    assert got["output_tok_s_total"] < 0.9 * plain["output_tok_s_total"]
    # The measured inter-token gap (33 ms) lies closer to the NCCL replay than to the custom-kernel one.
    m = tp4["metrics"]["itl_ms_p50"]
    assert abs(got["itl_ms_p50"] - m) < abs(plain["itl_ms_p50"] - m)
    tp1 = cases["lmdeploy-a100-turbomind-llama-2-7b-tp1-128-2048-conc16"]
    assert tp1["engine_options"]["all_reduce"] == "nccl"
    same = dict(tp1, engine_options={**tp1["engine_options"], "all_reduce": "custom"})
    assert predict_under_load(tp1, CAT, eff, SHAREGPT) == predict_under_load(same, CAT, eff, SHAREGPT)


def test_nccl_all_reduces_need_a_measured_cost_for_the_family() -> None:
    """A family without a published NCCL-versus-custom measurement refuses the option rather than assume it free."""
    eff = CAT.efficiency_for(CAT.device("h100-sxm"))
    assert eff.nccl_all_reduce_us is None
    nccl = case(model="llama-3.1-70b", hardware="h100-sxm", devices=4, tp=4,
                engine_options={"all_reduce": "nccl", "source": "test"})  # fmt: skip
    with pytest.raises(InputError, match="case t: engine_options all_reduce nccl: device family nvidia-hopper has no measured"):
        predict_under_load(nccl, CAT, eff, SHAREGPT)
    # At TP 1 nothing is all-reduced: the option costs nothing and needs no figure.
    one = case(model="llama-3.1-8b", hardware="h100-sxm", engine_options={"all_reduce": "nccl", "source": "test"})
    assert predict_under_load(one, CAT, eff, SHAREGPT) == predict_under_load(dict(one, engine_options=None), CAT, eff, SHAREGPT)
    with pytest.raises(ValueError, match="all_reduce"):  # the case file's loader names the file and line
        predict_under_load(case(engine_options={"all_reduce": "gloo", "source": "test"}), CAT, CAT.efficiency_for(A100), SHAREGPT)


def test_sglang_0_4_runs_a_step_ahead_and_0_3_did_not() -> None:
    """DataCrunch's SGLang 0.4.1 runs pay the overlap scheduler's step in TTFT (the light-load TTFT was 20-25% low
    without it); the SGLang 0.3.0 runs of the vLLM 0.6 comparison predate it, as their engine_options say."""
    cases = {c["id"]: c for c in load_cases(which="server")}
    old = cases["sgl060-h100-sglang-llama-3.1-70b-tp4-sharegpt-rps4"]
    assert old["engine_options"]["overlap_scheduling"] is False
    new = cases["dc-h200-sglang-llama-3.3-70b-tp4-random-rps1"]
    assert "overlap_scheduling" not in (new.get("engine_options") or {})  # the profile's default: on
    eff = CAT.efficiency_for(CAT.device("h200-sxm"))
    got = predict_under_load(new, CAT, eff, SHAREGPT)
    off = dict(new, engine_options={"overlap_scheduling": False, "source": "test"})
    plain = predict_under_load(off, CAT, eff, SHAREGPT)
    step = got["itl_ms_p50"]
    assert got["ttft_ms_p50"] - plain["ttft_ms_p50"] == pytest.approx(step, rel=0.35)  # about one decode step
    assert got["ttft_ms_p50"] == pytest.approx(new["metrics"]["ttft_ms_p50"], rel=0.10)


def test_a_cached_prompt_keeps_its_full_blocks_but_the_last_token() -> None:
    """A hit caches ``B·⌊(L − 1)/B⌋`` tokens (vLLM recomputes the block holding the last token); a miss none."""
    b = CACHE_BLOCK_TOKENS
    prompt = np.array([1, b - 1, b, b + 1, 2 * b, 2 * b + 5, 1000], dtype=np.int64)
    assert warm_prefix_tokens(prompt, 1.0).tolist() == [0, 0, 0, b, b, 2 * b, 992]
    assert warm_prefix_tokens(prompt, 0.0).tolist() == [0] * prompt.size
    many = np.full(20_000, 200, dtype=np.int64)
    hits = warm_prefix_tokens(many, 0.75) > 0
    assert hits.mean() == pytest.approx(0.75, abs=0.01)
    assert np.array_equal(warm_prefix_tokens(many, 0.75), warm_prefix_tokens(many, 0.75))  # the replay's seed: the same hits
    assert not np.array_equal(warm_prefix_tokens(many, 0.75, seed=1), warm_prefix_tokens(many, 0.75))


def test_a_warm_prefix_cache_takes_the_prefill_out_of_ttft() -> None:
    """llm-k8s sent the same 200 prompts at qps 1, 4 and 16 to one vLLM 0.8.3 server with prefix caching: from
    qps 4 on, its V1 engine finds every prompt cached, and TTFT is the request overhead plus about a step;
    replayed cold, the 70B TP8 run's TTFT is 1.5x what was measured."""
    cases = {c["id"]: c for c in load_cases(which="server")}
    warm = cases["llmk8s-a100-40gb-vllm-llama-3.3-70b-tp8-pp1-sharegpt-qps4"]
    assert warm["engine_options"]["prompt_cache_hits"] == 1.0
    assert "engine_options" not in cases["llmk8s-a100-40gb-vllm-llama-3.3-70b-tp8-pp1-sharegpt-qps1"]  # the sweep's first run: cold
    pp2 = [cases[f"llmk8s-a100-40gb-vllm-llama-3.3-70b-tp4-pp2-sharegpt-qps{q}"]["engine_options"]["prompt_cache_hits"] for q in (4, 16)]
    assert pp2 == [0.5, 0.75]  # V0's two virtual engines, one prefix cache each: 1 - 2^-k after k earlier runs
    eff = CAT.efficiency_for(CAT.device("a100-40gb-sxm"))
    got = predict_under_load(warm, CAT, eff, SHAREGPT)
    cold = predict_under_load(dict(warm, engine_options=None), CAT, eff, SHAREGPT)
    measured = warm["metrics"]
    assert got["ttft_ms_mean"] == pytest.approx(measured["ttft_ms_mean"], rel=0.15)
    assert cold["ttft_ms_mean"] > 1.4 * measured["ttft_ms_mean"]
    assert got["itl_ms_p99"] < cold["itl_ms_p99"]  # no prompt stretches the decode steps it joins
    with pytest.raises(ValueError, match="prompt_cache_hits"):
        predict_under_load(dict(warm, engine_options={"prompt_cache_hits": 1.5, "source": "x"}), CAT, eff, SHAREGPT)


def test_engine_options_are_checked() -> None:
    bad = case(engine_options={"max_running_requests": 8, "prefil_first": True, "source": "x"})
    with pytest.raises(ValueError, match="prefil_first"):
        predict_under_load(bad, CAT, CAT.efficiency_for(A100), SHAREGPT)
    with pytest.raises(ValueError, match="source"):
        predict_under_load(case(engine_options={"scheduler_steps": 4}), CAT, CAT.efficiency_for(A100), SHAREGPT)


def test_recorded_requests_replay_in_the_order_sent() -> None:
    """A case whose source publishes every request's lengths is replayed with exactly those requests."""
    cases = {c["id"]: c for c in load_cases(which="server")}
    recorded = {cid: request_lengths(cid) for cid in cases}
    have = {cid: r for cid, r in recorded.items() if r is not None}
    assert len(have) >= 9
    assert {cid for cid, c in cases.items() if c.get("recorded_requests")} == set(have)  # every entry is claimed by its case
    for cid, (lin, lout) in have.items():  # the file matches its cases: their request count and published mean lengths
        c = cases[cid]
        assert lin.size == c["num_requests"]
        assert float(lin.mean()) == pytest.approx(c["dataset"]["mean_input_tokens"], abs=0.6)
        assert float(lout.mean()) == pytest.approx(c["dataset"]["mean_output_tokens"], abs=0.6)
    cid = "llmk8s-a100-40gb-vllm-llama-3.3-70b-tp8-pp1-sharegpt-qps16"
    lin, lout = have[cid]
    got = predict(cases[cid], CAT)
    # Every request finishes, so tokens per request over the run are the recorded mean, to the last digit
    # (a length histogram scaled to the same mean would draw another total).
    assert got["output_tok_s_total"] / got["requests_s"] == pytest.approx(float(lout.mean()), rel=1e-9)
    assert (got["total_tok_s_total"] - got["output_tok_s_total"]) / got["requests_s"] == pytest.approx(float(lin.mean()), rel=1e-9)
    assert request_lengths("not-a-case") is None
    # Only a case that says its requests are recorded replays them (a case of the same id in another file does not).
    unclaimed = predict({**cases[cid], "recorded_requests": False}, CAT)
    assert unclaimed["output_tok_s_total"] / unclaimed["requests_s"] != pytest.approx(float(lout.mean()), rel=1e-6)
    with pytest.raises(InputError, match="recorded_requests"):
        predict({**cases[cid], "id": "elsewhere", "recorded_requests": True}, CAT)


def test_a_measurement_window_counts_what_streamed_inside_it() -> None:
    from aicap.sizing.calibrate.under_load import _windowed

    # Three requests of 11 tokens: done by 10 s; half streamed at 10 s; not started by 10 s.
    arrival = np.array([0.0, 4.0, 9.5])
    ttft, e2e = np.array([1.0, 1.0, 1.0]), np.array([6.0, 11.0, 8.0])
    out, done = _windowed(arrival, np.array([100, 100, 100]), np.array([11, 11, 11]), ttft, e2e, 10.0)
    assert done.tolist() == [True, False, False]
    # Request 2: first token at 5 s, last at 15 s, so at 10 s 1 + 10·(5/10) = 6 tokens.
    assert out["output_tok_s_total"] == pytest.approx((11 + 6) / 10.0)
    assert out["total_tok_s_total"] == pytest.approx((11 + 6 + 200) / 10.0)
    assert out["requests_s"] == pytest.approx(0.1)


def test_a_windowed_run_streams_less_than_it_is_offered_by_the_ramp_up() -> None:
    # A light constant-rate run scored over its 120 s window: about λ·n·(1 − E/(2T)), not λ·n.
    c = case(request_rate=0.5, num_requests=60, measurement_window_s=120.0, arrival={"process": "constant", "cv": 0.0},
             metrics={"output_tok_s_total": 1.0, "e2e_ms_mean": 1.0})  # fmt: skip
    got = predict(c, CAT)
    e = got["e2e_ms_mean"] / 1e3
    assert got["output_tok_s_total"] == pytest.approx(0.5 * 100 * (1 - e / 240), rel=0.03)
    plain = predict({k: v for k, v in c.items() if k != "measurement_window_s"}, CAT)
    assert plain["output_tok_s_total"] < got["output_tok_s_total"]  # all 60 finished, over a longer run with its drain


def test_a_case_s_dataset_is_typed_its_shape_checked_against_the_shipped_datasets(tmp_path: Path) -> None:
    # A misspelt `lengths: sharegpt-unfiltred` skipped the case quietly (exit 0 beside another case), a misspelt key
    # `lenghts:` ran it with the default shape, and a CSV `dataset` cell (text) was an internal error.
    body = ("- {id: c, model: llama-3.1-8b, hardware: h100-sxm, kind: server, devices: 1, tp: 1, request_rate: 1,\n"
            "   num_requests: 100, metrics: {ttft_ms_p50: 50},\n"
            "   dataset: {name: ShareGPT, mean_input_tokens: 300, mean_output_tokens: 200, LINE}}\n")  # fmt: skip
    path = tmp_path / "cases.yaml"
    for line, needle in (("lengths: sharegpt-unfiltred", "did you mean sharegpt-first-turn-unfiltered"),
                         ("lenghts: sharegpt-first-turn", "dataset.lenghts: unknown field; did you mean 'lengths'?"),
                         ("mean_input_tokens: -3", "dataset.mean_input_tokens")):  # fmt: skip
        path.write_text(body.replace("mean_input_tokens: 300, ", "" if line.startswith("mean_input") else "mean_input_tokens: 300, ")
                        .replace("LINE", line))  # fmt: skip
        with pytest.raises(InputError, match=rf"{path}:3: cases\[0\]\.dataset\.") as err:
            load_cases(path)
        assert needle in str(err.value)
    path.write_text(body.replace("LINE", "lengths: sharegpt-first-turn-unfiltered"))
    (case,) = load_cases(path)
    assert case["dataset"]["lengths"] == "sharegpt-first-turn-unfiltered" and case["dataset"]["mean_input_tokens"] == 300
