"""Invariants of the performance model (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.perf import memory
from aicap.sizing.serve.serving import serve

CAT = load_catalogue()
MODELS = ["llama-3-8b", "llama-3.1-70b", "mixtral-8x7b", "mistral-7b", "qwen2.5-72b", "gemma-2-27b"]
DEVICES = ["h100-sxm", "a100-80gb-sxm", "l40s", "h200-sxm", "tpu-v5e", "mi300x"]


def _dep(model: str, device: str, tp: int = 1, pp: int = 1, w: str = "bf16") -> Deployment:
    dev = CAT.device(device)
    w = w if w in dev.peak_tflops else "fp16"
    return Deployment(CAT.model(model), dev, CAT.efficiency_for(dev), CAT.runtime_spec, tp, pp, 1, w, w)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.sampled_from([1, 2, 4]), st.integers(1, 64),
       st.integers(16, 4000), st.integers(1, 1000))  # fmt: skip
def test_more_devices_never_stop_a_fitting_deployment(model: str, device: str, tp: int, batch: int, i: int, o: int) -> None:
    d = _dep(model, device)
    if d.model.num_heads % (tp * 2):
        return
    fits_small = bool(memory.breakdown(d, tp, 1, batch, i, i + o).fits)
    fits_big = bool(memory.breakdown(d, tp * 2, 1, batch, i, i + o).fits)
    fits_pp = bool(memory.breakdown(d, tp, 2, batch, i, i + o).fits)
    assert not fits_small or (fits_big and fits_pp)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 256), st.integers(16, 4000), st.integers(1, 1000))
def test_larger_batch_never_lowers_throughput_while_it_fits(model: str, device: str, batch: int, i: int, o: int) -> None:
    d = _dep(model, device, tp=2 if CAT.model(model).num_heads % 2 == 0 else 1)
    a, b = serve(d, batch, i, o), serve(d, batch + 1, i, o)
    if bool(b.fits):
        assert float(b.output_tokens_per_s) >= float(a.output_tokens_per_s) * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(DEVICES), st.integers(1, 8000), st.integers(1, 4000))
def test_ttft_grows_with_input_length(model: str, device: str, i: int, extra: int) -> None:
    d = _dep(model, device)
    assert float(serve(d, 1, i + extra, 16).ttft_s) > float(serve(d, 1, i, 16).ttft_s)


@pytest.mark.parametrize("model", MODELS)
def test_estimates_are_finite(model: str) -> None:
    m = serve(_dep(model, "h100-sxm", tp=4 if CAT.model(model).num_heads % 4 == 0 else 1), 16, 1000, 200)
    assert float(m.ttft_s) > 0 and float(m.tpot_s) > 0 and float(m.output_tokens_per_s) > 0
