"""An engine run without CUDA graphs: each step takes at least the host time of launching its kernels."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from aicap.cli.app import app
from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.under_load import predict_under_load
from aicap.sizing.calibrate.validation import load_cases
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.perf.launches import eager_host_s, kernel_floor_s, launches_per_step
from aicap.sizing.serve.context_step import ContextStep
from aicap.sizing.serve.step import decode_step, engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.sim.costs import memoised, step_seconds

CAT = load_catalogue()
COUNTS = CAT.runtime_spec.eager_launches
EAGER = CAT.runtime_spec.model_copy(update={"eager": True})
runner = CliRunner()


def dep(model: str = "llama-3.1-8b", device: str = "h100-sxm", *, eager: bool = True, tp: int = 1, pp: int = 1) -> Deployment:
    dev = CAT.device(device)
    return Deployment(CAT.model(model), dev, CAT.efficiency_for(dev), EAGER if eager else CAT.runtime_spec, tp, pp, 1, "bf16", "bf16")


def test_launch_counts_follow_the_model_structure() -> None:
    assert COUNTS is not None
    c = COUNTS
    llama = CAT.model("llama-3.1-8b")  # 32 dense layers of GQA
    dense = llama.num_layers * (c.per_layer + c.attention + c.dense_mlp) + c.per_step
    assert launches_per_step(llama, c, 1) == pytest.approx(dense)
    # Tensor parallel adds two all-reduces a layer; pipeline stages do not change the count (the model is walked once).
    assert launches_per_step(llama, c, np.array([2.0, 8.0])) == pytest.approx([dense + 2 * 32 * c.all_reduce] * 2)
    ds = CAT.model("deepseek-v2.5")  # MLA, MoE with shared experts after its dense first layers
    assert ds.mla is not None and ds.moe is not None and ds.moe.num_shared_experts > 0
    moe_layers = ds.num_layers - ds.moe.dense_layers
    want = (ds.num_layers * (c.per_layer + c.mla_attention + 2 * c.all_reduce) + ds.moe.dense_layers * c.dense_mlp
            + moe_layers * (c.moe_mlp + c.shared_experts) + c.per_step)  # fmt: skip
    assert float(launches_per_step(ds, c, 8)) == pytest.approx(want)
    assert 2_000 < want < 2_500  # about 37 a layer, as vLLM's DeepSeek-V2 decoder layer launches
    hybrid = CAT.model("qwen3.5-9b")  # three linear-attention layers in four
    assert hybrid.linear_attention is not None
    lin = hybrid.linear_attention.layers
    assert float(launches_per_step(hybrid, c, 1)) == pytest.approx(
        hybrid.num_layers * (c.per_layer + c.dense_mlp) + (hybrid.num_layers - lin) * c.attention + lin * c.linear_attention + c.per_step
    )
    assert float(launches_per_step(CAT.model("resnet-50"), c, 1)) == 0.0  # a generic model has no layers to count


def test_host_time_only_for_an_eager_engine() -> None:
    assert float(eager_host_s(dep(eager=False))) == 0.0
    assert COUNTS is not None
    k = float(launches_per_step(CAT.model("llama-3.1-8b"), COUNTS, 1))
    assert float(eager_host_s(dep())) == pytest.approx(COUNTS.launch_us * 1e-6 * k)
    with pytest.raises(InputError, match="eager_launches"):
        eager_host_s(replace(dep(), runtime=EAGER.model_copy(update={"eager_launches": None})))


def test_a_step_takes_the_longer_of_device_and_host() -> None:
    graphs, eager = dep(eager=False), dep()
    host = float(eager_host_s(eager))
    for d, p in ((1, 0), (4, 0), (0, 200), (256, 0), (0, 8192), (64, 2048)):
        g, e = engine_step(graphs, d, 1000.0, p, max(p, 1.0)), engine_step(eager, d, 1000.0, p, max(p, 1.0))
        device = float(g.total) - float(g.overhead_s)
        assert float(e.total) == pytest.approx(max(device, host) + float(g.overhead_s), rel=1e-12)
        assert float(e.shares()["launch"]) == pytest.approx(max(host - device, 0.0), abs=1e-15)
    # A lone decoder is host-bound (launch), a full prefill step device-bound: eager costs it nothing.
    assert str(decode_step(eager, 1, 1000.0).bound()) == "launch"
    big = engine_step(eager, 0, 0.0, 8192, 8192.0)
    assert float(big.total) == pytest.approx(float(engine_step(graphs, 0, 0.0, 8192, 8192.0).total), rel=1e-12)
    # Without eager the step time is the sum as before, bit for bit (no max taken).
    st = engine_step(graphs, 8, 500.0, 100, 100.0)
    t = st.network_s + st.kernels_s + st.overhead_s
    for op in st.ops.values():
        t = t + op.seconds
    assert float(st.total) == float(t)


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "deepseek-v2.5"])
def test_step_model_and_context_step_carry_the_host_floor(model_id: str) -> None:
    d_ = dep(model_id, "a100-80gb-sxm", tp=8)
    dev, eff = d_.device, d_.efficiency
    n = 3
    sm = StepModel.build(d_, Hardware.of([(dev, eff)] * n, "bf16"), 8, 1, 1, np.full(n, 800.0), np.full(n, 300.0))
    assert sm.host_s is not None
    d, p = np.array([1, 64, 512]), np.array([0, 300, 4096])
    exact = engine_step(d_, d, 800.0, p, 300.0, tp=8).total
    np.testing.assert_allclose(sm.seconds(d, p), exact, rtol=1e-9)
    # Where the host binds, more work costs nothing more; where the device binds, the slope is the device's.
    _, dd, dp = sm.seconds_and_slope(d, p)
    host = sm.host_s
    plain = StepModel.build(replace(d_, runtime=CAT.runtime_spec), Hardware.of([(dev, eff)] * n, "bf16"), 8, 1, 1, np.full(n, 800.0),
                            np.full(n, 300.0))  # fmt: skip
    tg, pd, pp_ = plain.seconds_and_slope(d, p)
    device = tg - plain.overhead_s
    bound = device >= host
    assert not bound.all() and np.all(dd[~bound] == 0.0) and np.all(dp[~bound] == 0.0)
    np.testing.assert_allclose(dd[bound], pd[bound], rtol=1e-12)
    np.testing.assert_allclose(dp[bound], pp_[bound], rtol=1e-12)
    both = StepModel.concat([sm, plain]).host_s
    assert both is not None and np.all(both[:n] == host) and np.all(both[n:] == 0.0)
    assert sm.take(np.array([1])).host_s == pytest.approx(host[1:2])
    # A lower bound on the slope in d: zero where the host may bind (it does at small batches).
    assert np.all(sm.slope_floor() == 0.0) and np.all(plain.slope_floor() > 0.0)
    # The simulator's per-context costs end with (H, t_0) and price the step as the step model does.
    cs = ContextStep.build(d_, Hardware.of([(dev, eff)], "bf16"), 8, 1, 1, 800.0, 300.0)
    _cache, timed = memoised(cs)
    floor = float(host[0] + sm.overhead_s[0])
    for dec, pre in ((1, 0), (32, 0), (0, 300), (2048, 0), (0, 16384)):
        c = timed(dec, pre)
        assert len(c) == 16 and c[14] == pytest.approx(float(host[0]))
        ve = _Engine(800.0, dec, pre, 300.0)
        assert step_seconds(c, ve, dec) == pytest.approx(cs(dec, pre), rel=1e-9)
        assert step_seconds(c, ve, dec) >= floor * (1 - 1e-12)
    assert cs(2048, 0) > floor * 1.05 and cs(0, 16384) > floor * 1.05  # device-bound steps: the host floor does not bind


class _Engine:
    """The fields :func:`step_seconds` reads of a virtual engine: decoders at one context, prefill in whole prompts of ``prompt``."""

    def __init__(self, context: float, decoders: int, prefill: int, prompt: float) -> None:
        self.context, self.gain, self.tick = context * decoders, 0.0, 0
        self.decoders = [0] * decoders
        # ContextStep prices prefill tokens at the span of whole prompts of the built length: p/I chunks of I tokens.
        self.span_mo = self.span_o = 0.0
        self.span_mm, self.chunks = prefill * prompt, prefill / prompt

    def decode_context(self, d: int) -> float:
        return self.context


def test_the_eager_deepseek_runs_are_predicted_from_their_launches() -> None:
    """llm-k8s ran DeepSeek-V2.5 at TP8·PP2 on A100-40GB with vLLM 0.8.3 eager (its server log): 137 ms a token at
    1 req/s. With CUDA graphs assumed aicap said 15 ms; costing the ~2,200 launches of a step at the per-launch time
    published for vLLM's (V1) eager engine, not fitted on these runs, puts it within a third (0.8.3's V0 launched faster)."""
    (c,) = [c for c in load_cases(which="server") if c["id"] == "llmk8s-a100-40gb-vllm-deepseek-v2.5-tp8-pp2-sharegpt-qps1"]
    assert c["engine_options"]["eager"] is True
    eff = CAT.efficiency_for(CAT.device("a100-40gb-sxm"))
    got = predict_under_load(c, CAT, eff, (161.0, 338.0))
    graphs = predict_under_load({**c, "engine_options": {**c["engine_options"], "eager": False}}, CAT, eff, (161.0, 338.0))
    m = c["metrics"]
    assert got["tpot_ms_p50"] == pytest.approx(m["tpot_ms_p50"], rel=1 / 3) and graphs["tpot_ms_p50"] < m["tpot_ms_p50"] / 5
    assert got["ttft_ms_p50"] == pytest.approx(m["ttft_ms_p50"], rel=0.4) and graphs["ttft_ms_p50"] < m["ttft_ms_p50"] / 1.8


def test_cli_eager_flag() -> None:
    args = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "1", "-f", "json"]
    plain = json.loads(runner.invoke(app, ["estimate", *args]).stdout)
    res = runner.invoke(app, ["estimate", *args, "--eager"])
    assert res.exit_code == 0, res.output
    eager = json.loads(res.stdout)
    assert eager["engine"]["eager"] is True and plain["engine"]["eager"] is False
    assert eager["tpot_s"] > 2 * plain["tpot_s"] and eager["bound"]["decode"] == "launch"
    ex = json.loads(runner.invoke(app, ["explain", *args, "--eager"]).stdout)
    assert ex["bound"] == "launch" and "eager_launches" in [r["operator"] for r in ex["operators"]]
    sim = runner.invoke(app, ["--quiet", "simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1",
                              "--requests", "200", "--eager", "-f", "json"])  # fmt: skip
    assert sim.exit_code == 0, sim.output
    doc = json.loads(sim.stdout)
    assert doc["setup"]["eager"] is True
    # At 1 req/s a token waits for one host-bound step: TPOT is the estimate's.
    assert doc["tpot_ms"]["p50"] == pytest.approx(eager["tpot_s"] * 1e3, rel=0.15)
    bad = runner.invoke(app, ["estimate", *args, "--eager", "--disaggregate"])
    assert bad.exit_code == 2 and "--eager" in bad.stderr


def test_eager_is_refused_where_it_means_nothing() -> None:
    base = ["estimate", "--eager"]
    for extra, why in (
        (["--model", "llama-3.1-8b", "--hardware", "tpu-v5e"], "tpu"),
        (["--model", "resnet-50", "--hardware", "h100-sxm"], "generic model"),
        (["--model", "deepseek-v3", "--tp", "8", "--hardware", "h200-sxm", "--speculative", "mtp"], "--speculative"),
    ):
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 2 and why in r.stderr, r.output
    r = runner.invoke(app, ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1", "--disaggregate", "--eager"])
    assert r.exit_code == 2 and "--eager" in r.stderr


def test_size_runs_an_eager_workload_on_gpus_only() -> None:
    # It sized a TPU, a CPU or a generic model "eager" and labelled the plan so, with nothing modelled (review).
    base = ["--quiet", "size", "-m", "llama-3.1-8b", "--rate", "3", "--tpot-ms", "60", "--ttft-ms", "1000", "--eager"]
    tpu = runner.invoke(app, [*base, "--hardware", "tpu-v5e"])
    assert tpu.exit_code == 2 and "none of the hardware these workloads may use is a GPU" in tpu.stderr
    generic = runner.invoke(app, ["--quiet", "size", "-m", "resnet-50", "--rate", "3", "--eager"])
    assert generic.exit_code == 2 and "generic model" in generic.stderr
    mixed = runner.invoke(app, [*base, "--hardware", "h100-sxm,tpu-v5e", "-f", "json"])
    assert mixed.exit_code == 0, mixed.output
    plan = json.loads(mixed.stdout)
    assert plan["workloads"][0]["eager"] and {d["hardware"] for d in plan["workloads"][0]["deployments"]} == {"h100-sxm"}
    lost = {a["hardware"]: a["why"] for a in plan["alternatives"]}
    assert "eager" in lost["tpu-v5e"] and "not a GPU" in lost["tpu-v5e"]


def test_an_eager_prefill_launches_every_chunk() -> None:
    """A batch of prompts over the step budget runs in chunks, each a step that launches every kernel again."""
    from aicap.sizing.serve.serving import prefill_time

    eager, graphs = dep("bge-large-en"), dep("bge-large-en", eager=False)
    t, st = prefill_time(eager, 2048, 256, 1, 1, 1)
    chunks = 2048 * 256 / eager.runtime.max_prefill_tokens
    host = float(eager_host_s(eager))
    t0 = float(prefill_time(graphs, 2048, 256, 1, 1, 1)[0])
    assert float(t) == pytest.approx(max(float(st.device_s), chunks * host) + chunks * float(st.overhead_s / chunks), rel=1e-12)
    assert float(t) == pytest.approx(float(st.total)) and float(t) > t0 and float(st.shares()["launch"]) > 0.2 * float(t)


def test_a_fleet_workload_sized_eager_keeps_its_promise_and_launches_eager(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`size --eager` sizes the workload with each step at least its launch time; the plan says so, `simulate PLAN`
    replays it eager, and the export launches the engine without CUDA graphs."""
    args = ["--quiet", "size", "--model", "llama-3.1-8b", "--rate", "2", "--input-tokens", "500", "--output-tokens", "200",
            "--tpot-ms", "40", "--hardware", "h100-sxm", "--cloud", "aws", "--engine", "vllm", "-f", "json"]  # fmt: skip
    plain = json.loads(runner.invoke(app, args).stdout)
    plan_file = tmp_path / "plan.json"
    res = runner.invoke(app, [*args, "--eager", "--verify", "-o", str(plan_file)])
    assert res.exit_code == 0, res.output
    eager = json.loads(res.stdout)
    (pw,), (pw0,) = eager["workloads"], plain["workloads"]
    assert pw["eager"] is True and pw0["eager"] is False
    host = float(eager_host_s(dep("llama-3.1-8b", "h100-sxm", tp=pw["deployments"][0]["tp"])))
    assert pw["tpot_ms"] >= host * 1e3 > 2 * pw0["tpot_ms"]
    (v,) = eager["verification"]["workloads"]
    assert v["holds"] and v["simulated_tpot_ms"] == pytest.approx(v["promised_tpot_ms"], rel=0.1)
    sim = json.loads(runner.invoke(app, ["--quiet", "simulate", str(plan_file), "-f", "json"]).stdout)
    assert sim["deployments"][0]["setup"]["eager"] is True
    assert "--enforce-eager" in runner.invoke(app, ["export", str(plan_file), "--to", "vllm"]).stdout
    assert "--disable-cuda-graph" in runner.invoke(app, ["export", str(plan_file), "--to", "sglang"]).stdout
    # A target the launches alone miss is infeasible (exit 3), and a fleet file says eager per workload.
    tight = [a if a != "40" else "20" for a in args]
    assert runner.invoke(app, [*tight, "--eager"]).exit_code == 3 and runner.invoke(app, tight).exit_code == 0
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("workloads:\n  - {name: w, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 100, output_tokens: 100,\n"
                     "     eager: true, speculative: {method: ngram}}\n")  # fmt: skip
    bad = runner.invoke(app, ["size", str(fleet)])
    assert bad.exit_code == 2 and "eager with speculative" in bad.stderr
    assert runner.invoke(app, ["size", str(fleet), "--eager"]).exit_code == 2


def test_whatif_leaves_drafting_and_disaggregation_out_of_an_eager_workload() -> None:
    from aicap.sizing.core.fleet import Fleet
    from aicap.sizing.plan.whatif import applies, named_change

    doc = {"workloads": [{"name": "w", "model": "llama-3.1-8b", "requests_per_s": 2, "input_tokens": 500, "output_tokens": 200,
                          "slo": {"ttft_ms": 500, "tpot_ms": 40}}]}  # fmt: skip
    graphs = Fleet.model_validate(doc)
    eager = Fleet.model_validate({"workloads": [{**doc["workloads"][0], "eager": True}]})
    for name in ("spec-ngram", "disaggregate"):
        assert applies(graphs, named_change(name), CAT) and not applies(eager, named_change(name), CAT)
    assert applies(eager, named_change("kv-fp8"), CAT)


def test_tables_say_the_engine_runs_eager() -> None:
    sim = runner.invoke(app, ["--quiet", "simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1",
                              "--requests", "100", "--eager"])  # fmt: skip
    assert sim.exit_code == 0 and "eager (no CUDA graphs)" in sim.stdout
    size = runner.invoke(app, ["--quiet", "size", "--model", "llama-3.1-8b", "--rate", "1", "--tpot-ms", "40", "--hardware", "h100-sxm",
                               "--engine", "vllm", "--eager"])  # fmt: skip
    assert size.exit_code == 0 and "vllm (eager: no CUDA graphs)" in " ".join(size.stdout.split())
    plain = runner.invoke(app, ["--quiet", "size", "--model", "llama-3.1-8b", "--rate", "1", "--tpot-ms", "40", "--hardware", "h100-sxm",
                                "--engine", "vllm"])  # fmt: skip
    assert plain.exit_code == 0 and "eager" not in plain.stdout


def test_simulating_an_eager_plan_says_so_and_explain_counts_every_chunks_overhead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "plan.json"
    r = runner.invoke(app, ["--quiet", "size", "--model", "llama-3.1-8b", "--rate", "1", "--tpot-ms", "40", "--hardware", "h100-sxm",
                            "--eager", "--output", str(plan), "-f", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    sim = runner.invoke(app, ["--quiet", "simulate", str(plan)])
    assert sim.exit_code == 0 and "TP1·PP1 eager" in sim.stdout
    # A batch prefilled in 8 budget-sized chunks pays 8 step overheads with CUDA graphs too: explain's rows add up to its time.
    args = ["explain", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--phase", "prefill", "--batch", "64", "-f", "json"]
    graphs, eager = (json.loads(runner.invoke(app, [*args, *extra]).stdout) for extra in ([], ["--eager"]))
    over = {d["operator"]: d["time_ms"] for d in graphs["operators"]}["overhead"]
    assert over == {d["operator"]: d["time_ms"] for d in eager["operators"]}["overhead"] == pytest.approx(8.0)
    kernels = {d["operator"]: d["time_ms"] for d in graphs["operators"]}["kernel_latency"]  # so do its kernels, K_g·τ_k a chunk
    assert kernels == pytest.approx(8 * 1e3 * kernel_floor_s(dep(eager=False)), abs=1e-3)
    assert sum(d["time_ms"] for d in graphs["operators"]) == pytest.approx(graphs["step_time_ms"], rel=1e-4)
