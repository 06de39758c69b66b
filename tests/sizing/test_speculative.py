"""Speculative decoding: tokens per step, drafter costs, memory, the load model and the simulator agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pydantic import ValidationError

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.specs.speculative import SpeculativeConfig, SpeculativeDefault
from aicap.sizing.core.speculative import Speculative, resolve, speculative_for, tokens_per_step
from aicap.sizing.perf import memory
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.serving import serve
from aicap.sizing.serve.step import engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.sim.engine import EngineConfig, Requests, in_steps, simulate


def _dep(cat: Catalogue, model: str, device: str, tp: int, wdt: str, spec: Speculative | None) -> Deployment:
    dev = cat.device(device)
    return Deployment(cat.model(model), dev, cat.efficiency_for(dev), cat.runtime_for(None, dev), tp, 1, 1, wdt, wdt, speculative=spec)


@pytest.mark.parametrize(("a", "k", "e"), [(0.0, 3, 1.0), (1.0, 3, 4.0), (0.5, 1, 1.5), (0.5, 2, 1.75)])
def test_tokens_per_step_is_the_expected_accepted_prefix_plus_one(a: float, k: int, e: float) -> None:
    assert tokens_per_step(a, k) == pytest.approx(e)


def test_shipped_defaults_carry_sources_and_match_their_published_lengths(cat: Catalogue) -> None:
    assert {"mtp", "eagle", "ngram"} <= set(cat.speculative)
    for d in cat.speculative.values():
        assert d.source and d.conditions
        if d.published_tokens_per_step is not None:
            assert tokens_per_step(d.acceptance, d.draft_tokens) == pytest.approx(d.published_tokens_per_step, rel=0.01)
    with pytest.raises(ValidationError, match="published"):
        SpeculativeDefault(method="eagle", draft_tokens=5, acceptance=0.5, published_tokens_per_step=3.61, conditions="c", source="s")


def test_a_draft_model_must_share_the_vocabulary_and_draft_needs_a_model(cat: Catalogue) -> None:
    with pytest.raises(InputError, match="same tokenizer"):
        speculative_for(cat, cat.model("llama-3.1-8b"), SpeculativeConfig(method="draft", draft_model="qwen3-8b", acceptance=0.6))
    with pytest.raises(InputError, match="needs draft_model"):
        speculative_for(cat, cat.model("llama-3.1-8b"), SpeculativeConfig(method="draft", acceptance=0.6))
    # a drafter no smaller than its target was planned (a 70B drafting for an 8B: eight A100s where one L40S serves it plain)
    with pytest.raises(InputError, match=r"draft model 'llama-3.1-70b' is no smaller than 'llama-3.1-8b' \(70.6B parameters a token"):
        speculative_for(cat, cat.model("llama-3.1-8b"), SpeculativeConfig(method="draft", draft_model="llama-3.1-70b", acceptance=0.6))
    assert speculative_for(cat, cat.model("llama-3.1-8b"), SpeculativeConfig(method="draft", draft_model="llama-3.2-1b", acceptance=0.6))
    with pytest.raises(InputError, match="decoder"):
        speculative_for(cat, cat.model("bert-base"), SpeculativeConfig(method="mtp"))
    spec = speculative_for(cat, cat.model("deepseek-v3"), SpeculativeConfig(method="mtp"))
    assert spec is not None and spec.acceptance == 0.85 and "2412.19437" in spec.source


def test_drafter_memory_is_its_own_weights_and_kv_and_one_layer_heads_share_the_embeddings(cat: Catalogue) -> None:
    target = cat.model("llama-3.1-70b")
    base = _dep(cat, "llama-3.1-70b", "h100-sxm", 4, "bf16", None)
    draft = _dep(cat, "llama-3.1-70b", "h100-sxm", 4, "bf16", resolve(target, "draft", 4, 0.7, "t", cat.model("llama-3.2-1b"), "1b"))
    eagle = _dep(cat, "llama-3.1-70b", "h100-sxm", 4, "bf16", resolve(target, "eagle", 4, 0.7, "t"))
    w0 = float(memory.weight_bytes_per_device(base, 4, 1))
    # Llama 3.2 1B holds 1.24e9 bf16 weights (tied embeddings), split over TP4.
    assert float(memory.weight_bytes_per_device(draft, 4, 1)) - w0 == pytest.approx(1.236e9 * 2 / 4, rel=0.02)
    # One Llama-70B layer (0.856e9 weights) without a second embedding or LM head.
    assert float(memory.weight_bytes_per_device(eagle, 4, 1)) - w0 == pytest.approx(0.856e9 * 2 / 4, rel=0.02)
    assert float(memory.kv_bytes_per_sequence(draft, 4, 1, 1000)) > float(memory.kv_bytes_per_sequence(base, 4, 1, 1000))
    assert float(memory.kv_cache_tokens(draft, 4, 1)) < float(memory.kv_cache_tokens(base, 4, 1))


def test_speculation_speeds_memory_bound_decode_and_costs_when_nothing_is_accepted(cat: Catalogue) -> None:
    target = cat.model("llama-3.1-70b")
    base = _dep(cat, "llama-3.1-70b", "h100-sxm", 4, "fp8", None)
    good = dataclasses.replace(base, speculative=resolve(target, "eagle", 3, 0.8, "t"))
    none = dataclasses.replace(base, speculative=resolve(target, "eagle", 3, 0.0, "t"))
    b = np.array([1.0, 8.0])
    m0, m1, m2 = (serve(d, b, 1000, 300) for d in (base, good, none))
    assert (m1.tpot_s < 0.6 * m0.tpot_s).all()  # E = 2.95 tokens per step for little more than one weight read
    assert (m2.tpot_s > m0.tpot_s).all()  # verifying and drafting 3 tokens that are all rejected only costs
    # Tokens per second follow TPOT: the same requests, fewer steps.
    assert (m1.output_tokens_per_s > m0.output_tokens_per_s).all()


def test_a_drafters_passes_all_reduce_as_its_layers_do_and_a_self_draft_gains_nothing(cat: Catalogue) -> None:
    # Each of the k drafter passes runs its layers at the target's tp, two all-reduces a layer: without them an 8B drafter of
    # Llama-3.1-70B at TP4 decoded at 4.4 ms a token where the layers' all-reduces alone add 1.5 ms, and drafting with the
    # model itself (k passes and a verify, k + 1 tokens) came out 30% faster than not drafting.
    from aicap.sizing.perf.roofline import network_time

    target = cat.model("llama-3.1-70b")
    base = _dep(cat, "llama-3.1-70b", "h100-sxm", 4, "fp8", None)
    small = dataclasses.replace(base, speculative=resolve(target, "draft", 4, 0.8, "t", cat.model("llama-3.1-8b")))
    tokens, tp = np.array([5.0, 40.0]), np.array([4.0, 4.0])
    drafter_s = network_time(small, tokens, tp, 1.0, 1.0) - network_time(base, tokens, tp, 1.0, 1.0)
    link = base.device.interconnect.bw_gbps * 1e9 * base.efficiency.link
    one = 2 * 3 / 4 * (tokens / 5) * 4096 * 2 / link + base.efficiency.link_latency_us * 1e-6  # one all-reduce of a pass
    assert drafter_s == pytest.approx(4 * 2 * 32 * one, rel=1e-9)
    assert (network_time(small, tokens, np.array([1.0, 1.0]), 1.0, 1.0) == 0.0).all()  # one device: nothing to all-reduce
    same = dataclasses.replace(base, speculative=resolve(target, "draft", 4, 1.0, "t", target))
    b = np.array([1.0, 8.0])
    assert (serve(same, b, 1000, 300).tpot_s >= 0.9 * serve(base, b, 1000, 300).tpot_s).all()
    # ...and launches its kernels k times: each pass pays the graphed kernels' fixed time K_g,d·τ_k (without it the self-draft
    # above came out 25% faster than not drafting)
    from aicap.sizing.perf.launches import graph_kernels, kernel_floor_s

    counts = base.runtime.eager_launches
    assert counts is not None and base.efficiency.kernel_latency_us > 0
    assert kernel_floor_s(small) - kernel_floor_s(base) == pytest.approx(
        4 * graph_kernels(cat.model("llama-3.1-8b"), counts) * base.efficiency.kernel_latency_us * 1e-6, rel=1e-12
    )


@pytest.mark.parametrize(("model", "device", "method", "rel"), [("llama-3.1-70b", "h100-sxm", "eagle", 1e-6),
                                                              ("deepseek-v3", "h200-sxm", "mtp", 0.03)])  # fmt: skip
def test_step_model_reproduces_engine_step_with_a_drafter_and_its_slopes(cat: Catalogue, model: str, device: str, method: str,
                                                                         rel: float) -> None:  # fmt: skip
    # Exact for a dense drafter; an MoE drafter's touched experts are concave in the batch, and the step
    # model interpolates them from d = 0 and 1 (over-estimating by a few per cent: conservative).
    dep = _dep(cat, model, device, 8, "fp8", resolve(cat.model(model), method, 2, 0.8, "t"))  # type: ignore[arg-type]
    hw = Hardware.of([(dep.device, dep.efficiency)], "fp8")
    sm = StepModel.build(dep, hw, 8, 1, 1, 1500, 1000)
    d = np.array([1.0, 16.0, 64.0])
    for p in (0.0, 512.0):
        want = engine_step(dep, d, 1500, p, 1000).total
        assert sm.seconds(d, p) == pytest.approx(want, rel=rel)
        assert (sm.seconds(d, p) >= want * (1 - 1e-9)).all()
    t, dd, _ = sm.seconds_and_slope(d, 0.0)
    assert dd == pytest.approx((sm.seconds(d + 1.0, 0.0) - t), rel=0.05)
    assert sm.decode_tokens == 3.0


def test_in_steps_keeps_the_peak_kv_need_and_removes_emitted_steps() -> None:
    r = Requests(np.array([0.0, 1.0]), np.array([100, 50]), np.array([201, 1]), cached_tokens=np.array([10, 0]))
    s = in_steps(r, 2.5)
    assert s.output_tokens.tolist() == [81, 1]  # 1 + ceil(200/2.5)
    assert (s.input_tokens + s.output_tokens).tolist() == (r.input_tokens + r.output_tokens).tolist()
    assert (s.input_tokens - s.cached_tokens).tolist() == (r.input_tokens - r.cached_tokens).tolist()  # nothing more to prefill
    assert in_steps(r, 1.0) is r


def test_an_isolated_request_decodes_e_tokens_per_step_in_the_simulator() -> None:
    reqs = Requests(np.array([0.0]), np.array([64]), np.array([401]))
    plain = simulate(lambda d, p: 0.01, reqs, EngineConfig(8, 512, 100_000))
    spec = simulate(lambda d, p: 0.01, reqs, EngineConfig(8, 512, 100_000, verify_tokens=4, tokens_per_step=2.5))
    assert plain.tpot_s[0] == pytest.approx(0.01)
    assert spec.tpot_s[0] == pytest.approx(0.01 / 2.5)
    with pytest.raises(ValueError, match="tokens_per_step"):
        EngineConfig(8, 512, 100_000, verify_tokens=2, tokens_per_step=2.5)


def test_a_speculative_plan_costs_less_for_a_tight_tpot_and_holds_in_simulation(cat: Catalogue) -> None:
    from aicap.sizing.sim.verify import verify

    def fleet(spec: dict[str, object] | None) -> Fleet:
        w: dict[str, object] = {"name": "chat", "model": "llama-3.1-70b", "requests_per_s": 10, "input_tokens": 1000, "output_tokens": 300,
                                "slo": {"ttft_ms": 2000, "tpot_ms": 20, "percentile": "p99"}}  # fmt: skip
        if spec is not None:
            w["speculative"] = spec
        return Fleet.model_validate({"schema_version": 1, "workloads": [w], "constraints": {"clouds": ["aws"], "hardware": ["h100-sxm"]}})

    p0 = size(fleet(None), cat)
    p1 = size(fleet({"method": "eagle", "acceptance": 0.8, "draft_tokens": 3}), cat)
    assert p1.workloads[0].speculative is not None and "eagle" in p1.workloads[0].speculative
    assert p1.totals.usd_per_month < p0.totals.usd_per_month
    for check in verify(p1, cat, requests=1500):
        assert check.stable and check.meets_targets, check


def test_mtp_needs_a_model_that_ships_its_heads(cat) -> None:  # type: ignore[no-untyped-def]
    # Llama has no multi-token-prediction module: sizing it with DeepSeek-V3's acceptance promised a speed-up no
    # engine can run, and the export launched vLLM with method mtp.
    assert cat.model("deepseek-v3").mtp_layers == 1 and cat.model("qwen3-next-80b-a3b").mtp_layers == 1
    assert cat.model("llama-3.1-70b").mtp_layers == 0
    with pytest.raises(InputError, match="ships no multi-token-prediction module"):
        speculative_for(cat, cat.model("llama-3.1-70b"), SpeculativeConfig(method="mtp"))
    assert speculative_for(cat, cat.model("llama-3.1-70b"), SpeculativeConfig(method="eagle")) is not None
