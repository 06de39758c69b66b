"""Roofline step times: memory-bound decode, compute-bound prefill, MoE expert reads, communication."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.perf.memory import total_weight_bytes
from aicap.sizing.perf.operators import expected_distinct_experts
from aicap.sizing.perf.roofline import step_time

REL_10PCT = 0.10


def test_single_stream_decode_is_weights_over_effective_bandwidth(deploy) -> None:
    d = deploy("llama-2-7b", "a100-80gb-sxm", weights_dtype="fp16")
    st = step_time(d, 1, 1, 256)
    bw = d.device.memory_bw_gbps * 1e9 * d.efficiency.memory
    expected = total_weight_bytes(d) / bw + d.efficiency.step_overhead_ms / 1e3
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
