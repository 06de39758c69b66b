"""The engine-step API: the affine StepModel is engine_step to rounding; prefill/decode phases are its special cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.serve.step import OP_ORDER, decode_step, engine_step, prefill_step
from aicap.sizing.serve.step_model import Hardware, StepModel

CAT = load_catalogue()
REL = 1e-9  # the StepModel is exact algebra on the same costs


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "bge-large-en", "resnet-50"])
@pytest.mark.parametrize("device_id", ["h100-sxm", "tpu-v6e", "xeon-8480"])
def test_step_model_equals_engine_step(model_id: str, device_id: str) -> None:
    rng = np.random.default_rng(7)
    model, dev = CAT.model(model_id), CAT.device(device_id)
    eff = CAT.efficiency_for(dev)
    dep = Deployment(model, dev, eff, CAT.runtime_spec, 1, 1, 1, "bf16", "bf16")
    n = 40
    tp = rng.choice([1, 2, 4, 8], n) if model.kind != "generic" and model.num_heads % 8 == 0 else np.ones(n)
    pp = rng.choice([1, 2], n)
    ctx, prompt = rng.uniform(10, 8000, n), rng.uniform(10, 8000, n)
    sm = StepModel.build(dep, Hardware.of([(dev, eff)] * n, "bf16"), tp, pp, 1, ctx, prompt)
    d, p = rng.integers(0, 300, n), rng.integers(0, 8192, n)
    exact = engine_step(dep, d, ctx, p, prompt, tp=tp, pp=pp, ep=1).total
    np.testing.assert_allclose(sm.seconds(d, p), exact, rtol=REL)
    # leading axes evaluate many steps per candidate at once
    both = sm.seconds(np.stack([d, d]), np.stack([p, p // 2]))
    np.testing.assert_allclose(both[1], engine_step(dep, d, ctx, p // 2, prompt, tp=tp, pp=pp, ep=1).total, rtol=REL)


def test_phases_are_special_cases_and_grow_with_work() -> None:
    model, dev = CAT.model("llama-3.1-8b"), CAT.device("h100-sxm")
    dep = Deployment(model, dev, CAT.efficiency_for(dev), CAT.runtime_spec, 1, 1, 1, "bf16", "bf16")
    pre = prefill_step(dep, [1, 2, 4], 1000).total
    assert np.all(np.diff(pre) > 0)
    assert float(prefill_step(dep, 2, 1000).total) == pytest.approx(float(engine_step(dep, 0, 0, 2000, 1000).total))
    dec = decode_step(dep, [1, 64, 256], 2000).total
    assert np.all(np.diff(dec) > 0)
    # a mixed step costs less than its two phases run apart (the weights stream once)
    mixed = float(engine_step(dep, 64, 2000, 1000, 1000).total)
    assert mixed < float(decode_step(dep, 64, 2000).total) + float(prefill_step(dep, 1, 1000).total)


def test_one_gives_the_simulator_a_scalar_callable() -> None:
    model, dev = CAT.model("llama-3.1-8b"), CAT.device("l40s")
    eff = CAT.efficiency_for(dev)
    dep = Deployment(model, dev, eff, CAT.runtime_spec, 1, 1, 1, "fp8", "fp8")
    sm = StepModel.build(
        dep, Hardware.of([(dev, eff)] * 2, "fp8"), np.array([1, 2]), 1, 1, np.array([500.0, 900.0]), np.array([400.0, 800.0])
    )
    f = sm.one(1)
    assert f(10, 800) == pytest.approx(float(engine_step(dep, 10, 900.0, 800, 800.0, tp=2).total), rel=REL)


def _built(model_id: str, device_id: str, dtype: str = "bf16") -> tuple[Deployment, StepModel]:
    model, dev = CAT.model(model_id), CAT.device(device_id)
    eff = CAT.efficiency_for(dev)
    dep = Deployment(model, dev, eff, CAT.runtime_spec, 1, 1, 1, dtype, dtype)
    tp = np.array([1, 2, 4, 8])
    return dep, StepModel.build(dep, Hardware.of([(dev, eff)] * 4, dtype), tp, 1, 1, np.array([600.0, 1200.0, 3000.0, 9000.0]),
                                np.array([500.0, 1000.0, 2000.0, 8000.0]))  # fmt: skip


def test_concatenated_models_time_each_row_as_its_own_model_does() -> None:
    _, llama = _built("llama-3.1-8b", "h100-sxm")
    _, mistral = _built("mistral-7b", "a100-80gb-sxm")
    _, fp8 = _built("qwen2.5-7b", "h100-sxm", "fp8")
    both = StepModel.concat([llama, mistral, fp8])
    d, p = np.array([0, 3, 64, 200] * 3), np.array([512, 0, 2048, 100] * 3)
    alone = np.concatenate([m.seconds(d[:4], p[:4]) for m in (llama, mistral, fp8)])
    np.testing.assert_allclose(both.seconds(d, p), alone, rtol=1e-12)
    dd, dp = both.seconds_and_slope(d, p)[1:]
    np.testing.assert_allclose(dd, np.concatenate([m.seconds_and_slope(d[:4], p[:4])[1] for m in (llama, mistral, fp8)]), rtol=1e-12)
    np.testing.assert_allclose(dp, np.concatenate([m.seconds_and_slope(d[:4], p[:4])[2] for m in (llama, mistral, fp8)]), rtol=1e-12)
    # A subset keeps its parent's times; models of another form (experts) cannot be joined.
    np.testing.assert_array_equal(both.take(np.array([5, 9])).seconds(d[[5, 9]], p[[5, 9]]), both.seconds(d, p)[[5, 9]])
    assert StepModel.concat([llama]) is llama
    with pytest.raises(ValueError, match="differ in operator groups, experts"):
        StepModel.concat([llama, _built("mixtral-8x7b", "h100-sxm")[1]])


def _fresh(sm: StepModel, ix: np.ndarray) -> StepModel:
    """The candidates at ``ix`` as a model built from its arrays alone (nothing derived carried along)."""
    return StepModel(sm.flops[:, :, ix].copy(), sm.bytes[:, :, ix].copy(), sm.peak[:, ix].copy(), sm.bandwidth[ix].copy(),
                     sm.expert_fixed[ix].copy(), sm.expert_per_touched[ix].copy(), sm.expert_per_token[ix].copy(), sm.num_experts,
                     sm.experts_per_token, sm.net[:, ix].copy(), sm.overhead_s[ix].copy(), sm.decode_tokens,
                     exposed=None if sm.exposed is None else sm.exposed[ix].copy())  # fmt: skip


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "mixtral-8x7b"])
def test_a_subset_of_a_subset_times_as_a_fresh_model_bit_for_bit(model_id: str) -> None:
    _, sm = _built(model_id, "h100-sxm")
    head = OP_ORDER.index("lm_head")
    dead = replace(sm, flops=sm.flops.copy(), bytes=sm.bytes.copy())
    dead.flops[:, head, :2] = 0.0  # the LM head is zero for the first two candidates: a subset of them has one group fewer
    dead.bytes[:, head, :2] = 0.0
    d, p = np.array([[0.0, 5.0, 64.0, 7.0]]), np.array([[512.0], [0.0], [3000.0]])
    cases = ((sm, np.array([3, 1, 2]), np.array([2, 0])), (dead, np.array([0, 1, 3]), np.array([0, 1])))
    for parent, ix, inner in cases:
        parent.seconds_and_slope(d, p)  # derive the parent's coefficients first, as the bisections do
        taken = parent.take(ix).take(inner)
        fresh = _fresh(parent, ix[inner])
        for a, b in zip(taken.seconds_and_slope(d[:, ix[inner]], p), fresh.seconds_and_slope(d[:, ix[inner]], p), strict=True):
            np.testing.assert_array_equal(a, b)
    few = _built(model_id, "h100-sxm")[1].take(np.array([2]))  # a quarter of a model that derived nothing: derives its own
    np.testing.assert_array_equal(few.seconds(d[:, [2]], p), _fresh(sm, np.array([2])).seconds(d[:, [2]], p))


@pytest.mark.parametrize("model_id", ["qwen3-30b-a3b", "deepseek-v3", "llama-3.1-8b"])
def test_a_moe_step_pays_its_expert_gemms_latency_once_per_moe_layer(model_id: str) -> None:
    """``L_moe · τ`` on top of the roofline in every path that times a step; nothing for a dense model."""
    model, dev = CAT.model(model_id), CAT.device("h100-sxm")
    eff = CAT.efficiency_for(dev)
    assert eff.moe_latency_us > 0
    without = eff.model_copy(update={"moe_latency_us": 0.0})
    moe_layers = 0 if model.moe is None else model.num_layers - model.moe.dense_layers
    expected = moe_layers * eff.moe_latency_us * 1e-6
    dep, dep0 = (Deployment(model, dev, e, CAT.runtime_spec, 1, 1, 1, "bf16", "bf16") for e in (eff, without))
    for d, p in ((1, 0), (64, 0), (8, 2048)):
        gap = engine_step(dep, d, 500.0, p, 1000.0).total - engine_step(dep0, d, 500.0, p, 1000.0).total
        assert float(gap) == pytest.approx(expected, rel=1e-9, abs=1e-15)
        sm, sm0 = (StepModel.build(x, Hardware.of([(dev, x.efficiency)], "bf16"), 1, 1, 1, 500.0, 1000.0) for x in (dep, dep0))
        assert float((sm.seconds(d, p) - sm0.seconds(d, p))[0]) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    from aicap.sizing.perf.roofline import step_time

    assert float(step_time(dep, 4, 1, 500.0).total - step_time(dep0, 4, 1, 500.0).total) == pytest.approx(expected, abs=1e-15)
    # it is what a small decode step of a fine-grained MoE mostly waits for on a Hopper GPU
    if model_id == "qwen3-30b-a3b":
        assert expected > 0.2 * float(engine_step(dep, 1, 500.0, 0, 1.0).total)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "mixtral-8x7b"])
def test_slopes_are_the_step_times_differences_at_any_exposed_share(model_id: str, alpha: float) -> None:
    # T = Σ (1 − α)·max(c, m) + α·(c + m): piecewise affine in d and p, its slope the binding sides' (1 − α) plus α of both.
    # The experts' bytes are concave in the tokens: their slope is the difference over one more whole token, as the
    # load model reads it; a dense model's is exact wherever no group changes side within the step taken.
    _, sm = _built(model_id, "h100-sxm")
    sm = replace(sm, exposed=np.full(sm.bandwidth.shape, alpha) if alpha else None)
    d, p = np.array([[1.0, 37.0, 150.0, 400.0]]), np.array([[0.0], [300.0], [2048.0]])
    t, dd, dp = sm.seconds_and_slope(d, p)
    h = 1.0 if model_id == "mixtral-8x7b" else 1e-3
    np.testing.assert_allclose(dd, (sm.seconds(d + h, p) - t) / h, rtol=2e-3 if h == 1.0 else 1e-6)
    np.testing.assert_allclose(dp, (sm.seconds(d, p + h) - t) / h, rtol=2e-3 if h == 1.0 else 1e-6)
    assert np.all(sm.slope_floor() <= dd * (1 + 1e-12))  # the floor bounds every slope in d
    if alpha:  # α of the shorter side costs time: never faster than the plain roofline
        assert np.all(t >= replace(sm, exposed=None).seconds(d, p))
