"""Memory per device: weights, KV cache (GQA/MLA/window, replicated heads), fit and limits."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.perf import memory
from aicap.sizing.perf.params import inventory

GIB = 2**30


def test_weights_split_over_tp(deploy) -> None:
    d = deploy("llama-3.1-70b", "h100-sxm")
    w1, w4 = memory.weight_bytes_per_device(d, 1, 1), memory.weight_bytes_per_device(d, 4, 1)
    assert float(w1) == pytest.approx(inventory(d.model).total * 2, rel=1e-9)
    assert float(w4) == pytest.approx(float(w1) / 4, rel=1e-9)


def test_int4_weights_carry_group_scale_overhead(deploy) -> None:
    d = deploy("llama-2-7b", "a100-80gb-sxm", weights_dtype="int4")
    assert memory.bytes_per_weight("int4", d) == pytest.approx(0.5 + 4 / 128)


def test_kv_heads_replicate_when_tp_exceeds_them(deploy) -> None:
    d = deploy("llama-3.1-70b", "h100-sxm")  # 8 KV heads
    per_seq = [float(memory.kv_bytes_per_sequence(d, tp, 1, 1000)) for tp in (1, 8, 16)]
    assert per_seq[1] == pytest.approx(per_seq[0] / 8)
    assert per_seq[2] == pytest.approx(per_seq[1])  # one head per device either way


def test_mla_cache_is_replicated_not_split(deploy) -> None:
    d = deploy("deepseek-v3", "h200-sxm")
    assert float(memory.kv_bytes_per_sequence(d, 8, 1, 100)) == pytest.approx(61 * 576 * 2 * 100)


def test_sliding_window_caps_the_cache(deploy) -> None:
    d = deploy("mistral-7b", "l40s")  # 4096-token window on every layer
    at_window = float(memory.kv_bytes_per_sequence(d, 1, 1, 4096))
    assert float(memory.kv_bytes_per_sequence(d, 1, 1, 16000)) == pytest.approx(at_window)


def test_gemma2_windows_only_half_the_layers(deploy) -> None:
    d = deploy("gemma-2-9b", "l40s")
    short, long = (float(memory.kv_bytes_per_sequence(d, 1, 1, c)) for c in (4096, 8192))
    assert long / short == pytest.approx(1.5)


def test_70b_bf16_does_not_fit_one_h100_and_says_why(deploy) -> None:
    from aicap.sizing.serve.estimate import advise

    d = deploy("llama-3.1-70b", "h100-sxm")
    mb = memory.breakdown(d, 1, 1, 1, 1000, 1200)
    assert not bool(mb.fits)
    msg = advise(d, {"weights": float(mb.weights) / GIB, "kv_cache": 0.0, "activations": float(mb.activations) / GIB,
                     "overhead": float(mb.overhead) / GIB, "capacity": mb.capacity / GIB})  # fmt: skip
    assert msg.startswith("weights 131.") and "> 72.0 GiB usable" in msg and "TP=2" in msg


def test_max_batch_fills_memory_and_one_more_does_not_fit(deploy) -> None:
    d = deploy("llama-3-8b", "h100-sxm")
    b = int(memory.max_batch(d, 1, 1, 1024, 2048))
    assert b > 10
    rt = d.runtime.max_prefill_tokens
    assert bool(memory.breakdown(d, 1, 1, b, rt / b, 2048).fits)
    assert not bool(memory.breakdown(d, 1, 1, b + 1, rt / (b + 1), 2048).fits)


def test_vectorised_over_tp(deploy) -> None:
    d = deploy("llama-3.1-70b", "h100-sxm")
    fits = memory.breakdown(d, np.array([1, 2, 4, 8]), 1, 8, 1000, 2000).fits
    assert fits.tolist() == [False, True, True, True]


def test_max_context_at_batch_is_the_fit_boundary(deploy) -> None:
    d = deploy("llama-3-8b", "h100-sxm")
    c = memory.max_context(d, 1, 1, 64)
    assert 0 < c < d.model.max_context
    rt = d.runtime.max_prefill_tokens
    assert bool(memory.breakdown(d, 1, 1, 64, rt / 64, c).fits)
    assert not bool(memory.breakdown(d, 1, 1, 64, rt / 64, c + 64).fits)
