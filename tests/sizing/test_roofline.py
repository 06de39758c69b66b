"""Roofline step times: memory-bound decode, compute-bound prefill, MoE expert reads, communication."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicap.sizing.perf.launches import kernel_floor_s
from aicap.sizing.perf.memory import total_weight_bytes
from aicap.sizing.perf.operators import expected_distinct_experts
from aicap.sizing.perf.roofline import step_time

REL_10PCT = 0.10


def test_single_stream_decode_is_weights_over_effective_bandwidth(deploy) -> None:
    d = deploy("llama-2-7b", "a100-80gb-sxm", weights_dtype="fp16")
    st = step_time(d, 1, 1, 256)
    bw = d.device.memory_bw_gbps * 1e9 * d.efficiency.memory
    expected = total_weight_bytes(d) / bw + d.efficiency.step_overhead_ms / 1e3 + kernel_floor_s(d)  # + the kernels' K_g·τ_k
    assert kernel_floor_s(d) > 0.1 * expected  # a tenth of a batch-1 step: what the fitted τ_k says the boundaries take
    assert float(st.total) == pytest.approx(expected, rel=REL_10PCT)
    assert str(st.bound()) in {"memory", "overhead"}


def test_long_prefill_is_compute_bound(deploy) -> None:
    d = deploy("llama-3.1-8b", "h100-sxm")
    assert str(step_time(d, 1, 4096, 0).bound()) == "compute"


def test_expected_distinct_experts_limits() -> None:
    assert float(expected_distinct_experts(1, 8, 2)) == pytest.approx(2.0)
    assert float(expected_distinct_experts(10_000, 8, 2)) == pytest.approx(8.0)
    assert np.all(np.diff(expected_distinct_experts(np.arange(1, 50), 256, 8)) > 0)


def test_moe_decode_reads_fewer_bytes_at_batch_one(deploy) -> None:
    d = deploy("mixtral-8x7b", "h100-sxm", tp=2)
    small, large = step_time(d, 1, 1, 512, 2), step_time(d, 256, 1, 512, 2)
    assert float(small.ops["experts"].bytes) < 0.5 * float(large.ops["experts"].bytes)


def test_tensor_parallel_adds_network_time(deploy) -> None:
    d = deploy("llama-3.1-70b", "h100-sxm")
    assert float(step_time(d, 8, 1, 1000, 1).network_s) == 0.0
    assert float(step_time(d, 8, 1, 1000, 4).network_s) > 0.0


@pytest.mark.parametrize(("model", "device", "weights", "kv"), [("llama-3.1-8b", "b200", "nvfp4", "bf16"),
                                                                ("llama-3.1-8b", "h100-sxm", "fp8", "bf16"),
                                                                ("gpt-oss-120b", "mi355x", "mxfp4", "bf16")])  # fmt: skip
def test_attention_runs_at_the_kv_caches_rate_not_the_weights(deploy, model: str, device: str, weights: str, kv: str) -> None:
    # fp4/fp8 weights costed QK^T and PV against a 16-bit KV cache at the fp4/fp8 peak: a 128k-token prefill on b200 came
    # out at 1.31 s, below the 1.91 s its attention alone needs at the bf16 peak (gpt-oss's bf16 projections likewise)
    d = deploy(model, device, weights_dtype=weights, kv_dtype=kv)
    st = step_time(d, 1, 32768, 0)
    bf16 = d.device.peak_tflops["bf16"] * 1e12 * d.efficiency.compute_for("bf16")
    low = d.device.peak_tflops["fp4" if weights != "fp8" else "fp8"] * 1e12 * d.efficiency.compute_for("fp4" if weights != "fp8" else "fp8")
    assert low > bf16  # the weights' format is the faster one here
    att = st.ops["attention"]
    assert float(att.compute_s) == pytest.approx(float(att.flops) / bf16, rel=1e-9)
    proj = st.ops["attn_proj"]
    expected = bf16 if model == "gpt-oss-120b" else low  # gpt-oss's checkpoint leaves attention unquantised
    assert float(proj.compute_s) == pytest.approx(float(proj.flops) / expected, rel=1e-9)
    same = deploy(model, device, weights_dtype=weights, kv_dtype="fp8")  # a KV cache in the weights' 8-bit format
    if weights == "fp8":
        att8 = step_time(same, 1, 32768, 0).ops["attention"]
        assert float(att8.compute_s) == pytest.approx(float(att8.flops) / low, rel=1e-9)


def test_mla_prefills_as_multi_head_attention_and_decodes_absorbed(deploy) -> None:
    # a 128k-token DeepSeek-V3 prefill was costed in the absorbed form, qk 576 and values 512 wide a head: 3.4x the FLOPs
    from aicap.sizing.perf.operators import transformer_step

    d = deploy("deepseek-v3", "h200-sxm", weights_dtype="fp8", tp=8)
    mla, heads, layers = d.decoder.mla, d.model.num_heads, d.decoder.attention_layers
    n = 8192.0
    pre = transformer_step(d, 1.0, n, 0.0, 8.0)["attention"]
    span = (n + 1) / 2
    assert float(pre.flops) == pytest.approx(2 * n * span * heads * (128 + 64 + 128) * layers / 8, rel=1e-12)
    # a chunk after 4096 cached tokens also up-projects their latents to per-head K and V
    chunk = transformer_step(d, 1.0, 1024.0, 4096.0, 8.0)["attention"]
    up = 2 * 4096 * mla.kv_lora_rank * heads * (128 + 128) * layers / 8
    assert float(chunk.flops) == pytest.approx(2 * 1024 * (4096 + 1025 / 2) * heads * 320 * layers / 8 + up, rel=1e-12)
    dec = transformer_step(d, 64.0, 1.0, 4096.0, 8.0)["attention"]  # decode: scores against the cached latent
    assert float(dec.flops) == pytest.approx(2 * 64 * (4096 + 1) * heads * (512 + 64 + 512) * layers / 8, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_each_group_pays_its_longer_time_and_the_exposed_share_of_its_shorter(deploy, alpha: float) -> None:
    # t = max(c, m) + α·min(c, m): 0 the plain roofline, 1 compute and memory one after the other.
    d = deploy("llama-3.1-8b", "h100-sxm")
    d = replace(d, efficiency=d.efficiency.model_copy(update={"exposed_share": alpha}))
    st = step_time(d, 8, 512, 1024)
    want = float(st.network_s + st.overhead_s + st.kernels_s)
    for op in st.ops.values():
        c, m = float(op.compute_s), float(op.memory_s)
        assert float(op.seconds) == pytest.approx(max(c, m) + alpha * min(c, m), rel=1e-12)
        want += max(c, m) + alpha * min(c, m)
    assert float(st.total) == pytest.approx(want, rel=1e-12)
    if alpha == 1.0:  # at the ridge the two times add: prefill pays its weights' reads on top of its math
        assert float(st.ops["mlp"].seconds) == pytest.approx(float(st.ops["mlp"].compute_s + st.ops["mlp"].memory_s), rel=1e-12)


def test_the_fitted_families_expose_part_of_the_shorter_time(cat) -> None:  # type: ignore[no-untyped-def]
    # Fitted with the other factors on the published cases (hardware_db/data/efficiency.yaml); unmeasured families keep 0
    # or inherit their neighbour's with its other factors.
    devices = (("ampere", "a100-80gb-sxm"), ("hopper", "h100-sxm"), ("ada", "l40s"), ("tpu", "tpu-v5e"), ("b200", "b200"))
    share = {f: cat.efficiency_for(cat.device(d)).exposed_share for f, d in devices}
    assert 0.0 < share["ampere"] < 1.0 and share["hopper"] == 1.0 and share["ada"] == share["tpu"] == 0.0
    assert share["b200"] == share["hopper"]  # Blackwell inherits Hopper's factors
