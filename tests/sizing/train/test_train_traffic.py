"""Element-wise activation traffic of a training step (aicap.sizing.train.traffic)."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.specs import DecoderModel
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.setup import TrainSetup
from aicap.sizing.train.shape import ModelShape, shape_of
from aicap.sizing.train.traffic import activation_bytes_per_token
from tests.sizing.train.conftest import run


def _bytes(shape: ModelShape, setup: TrainSetup) -> float:
    return float(activation_bytes_per_token(shape, Grid.of([setup]))[0])


def test_llama_3_8b_bf16_counts_norms_residuals_rope_swiglu_and_loss(cat: Catalogue) -> None:
    # h 4096, 32 query and 8 KV heads of 128, SwiGLU width 14336, 2 RMSNorms, vocabulary 128256 (config.json)
    shape = shape_of(cat.model("llama-3-8b"))
    h, q, kv, f, v = 4096, 4096, 1024, 14336, 128256
    forward = 2 * 2 * h + 6 * h + 2 * (q + kv) + 3 * f
    assert forward == 94_208
    expected = 32 * 3 * forward * 2 + 6 * v  # forward plus a backward of twice its traffic, 16-bit; the loss
    assert _bytes(shape, TrainSetup(recompute="selective")) == pytest.approx(expected)
    assert expected / 1e6 == pytest.approx(18.9, abs=0.05)


def test_fp8_adds_cast_transposes_full_recompute_a_forward_and_sequence_parallel_splits_norms(cat: Catalogue) -> None:
    shape = shape_of(cat.model("llama-3-8b"))
    h, q, kv, f = 4096, 4096, 1024, 14336
    base = _bytes(shape, TrainSetup(recompute="selective"))
    fp8 = _bytes(shape, TrainSetup(recompute="selective", precision="fp8"))
    casts = (2 * h + q + f) + (2 * h + q + 2 * kv + 2 * f)  # matmul inputs forward, output gradients backward
    assert fp8 - base == pytest.approx(32 * casts * 4)
    full = _bytes(shape, TrainSetup(recompute="full"))
    forward = 2 * 2 * h + 6 * h + 2 * (q + kv) + 3 * f
    assert full - base == pytest.approx(32 * forward * 2)
    # tensor parallel without sequence parallelism repeats the norms and residual adds on every rank
    tp4 = _bytes(shape, TrainSetup(tp=4, sequence_parallel=False, recompute="selective"))
    tp4_sp = _bytes(shape, TrainSetup(tp=4, sequence_parallel=True, recompute="selective"))
    assert tp4 - tp4_sp == pytest.approx(32 * 3 * 3 * (2 * 2 * h + 6 * h) * 2)
    assert tp4_sp == pytest.approx(base)


def test_moe_counts_the_routed_experts_and_the_dispatch(cat: Catalogue) -> None:
    model = cat.model("qwen3-30b-a3b")
    assert isinstance(model, DecoderModel) and model.moe is not None
    shape = shape_of(model)
    h, k, ef = model.hidden_size, model.moe.experts_per_token, model.moe.expert_intermediate_size
    assert shape.moe_layers == shape.layers and shape.shared_ffn == 0
    q, kv = shape.q_dim, shape.kv_dim
    forward = 2 * 2 * h + 6 * h + 2 * (q + kv) + 3 * k * ef + 4 * k * h
    assert _bytes(shape, TrainSetup(recompute="selective")) == pytest.approx(shape.layers * 3 * forward * 2 + 6 * model.vocab_size)


def test_the_traffic_slows_a_small_model_and_an_fp8_step_more(cat: Catalogue) -> None:
    """The traffic grows with h, the matmuls with h²: a larger share of an 8B step than a 70B one, and of fp8 than bf16."""

    def share(model_id: str, precision: str) -> float:
        ev = run(cat, cat.model(model_id), "h100-sxm", TrainSetup(dp=8, fsdp="full", seq_len=4096, precision=precision))
        return float(ev.step.raw.memory_bound[0] / (ev.step.raw.matmul[0] + ev.step.raw.memory_bound[0]))

    assert share("llama-3.1-8b", "bf16") > share("llama-3.1-70b", "bf16") > 0.0
    assert share("llama-3.1-8b", "fp8") > share("llama-3.1-8b", "bf16")
