"""2:4 sparsity and width pruning: compressed storage and faster linear layers only where an engine has sparse kernels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.perf import memory, sparsity
from aicap.sizing.perf.params import inventory
from aicap.sizing.plan import variants
from aicap.sizing.serve.step import engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel


def _dep(cat: Catalogue, model: DecoderModel, device: str, engine: str | None, wdt: str = "bf16") -> Deployment:
    dev = cat.device(device)
    return Deployment(model, dev, cat.efficiency_for(dev), cat.runtime_for(engine, dev), 1, 1, 1, wdt, "bf16")


def _decoder(cat: Catalogue, ref: str) -> DecoderModel:
    m = cat.model(ref)
    assert isinstance(m, DecoderModel)
    return m


def test_the_vllm_profile_has_sparse_kernels_on_hopper_only(cat: Catalogue) -> None:
    assert cat.runtime_for("vllm", cat.device("h100-sxm")).sparse_speedup == {"bf16": 1.2, "fp16": 1.2, "fp8": 1.2, "int8": 1.2}
    for device in ("a100-80gb-sxm", "l4", "b200"):
        assert cat.runtime_for("vllm", cat.device(device)).sparse_speedup == {}
    assert cat.runtime_for(None, cat.device("h100-sxm")).sparse_speedup == {}  # the generic profile claims none


@pytest.mark.parametrize(("wdt", "share"), [("bf16", 0.5625), ("fp8", 0.625)])
def test_compressed_storage_is_the_kept_half_plus_two_index_bits_per_kept_weight(cat: Catalogue, wdt: str, share: float) -> None:
    dense = _decoder(cat, "llama-3.1-8b")
    sparse = variants.sparse(dense)
    on, off = _dep(cat, sparse, "h100-sxm", "vllm", wdt), _dep(cat, dense, "h100-sxm", "vllm", wdt)
    assert sparsity.storage_factor(on) == pytest.approx(share)
    inv = inventory(dense)
    body = inv.total - inv.embedding - inv.lm_head
    saved = memory.total_weight_bytes(off) - memory.total_weight_bytes(on)
    assert saved == pytest.approx(body * memory.bytes_per_weight(wdt, off) * (1 - share), rel=1e-9)


def test_linear_layers_run_faster_by_the_published_speed_up_and_attention_does_not(cat: Catalogue) -> None:
    dense = _decoder(cat, "llama-3.1-8b")
    on, off = _dep(cat, variants.sparse(dense), "h100-sxm", "vllm"), _dep(cat, dense, "h100-sxm", "vllm")
    d = np.array([1.0, 64.0, 256.0])
    fast, slow = engine_step(on, d, 2000, 0.0, 2000).total, engine_step(off, d, 2000, 0.0, 2000).total
    assert (fast < slow).all()
    assert (slow / fast <= 1.2 + 1e-9).all()  # attention and the LM head stay dense: the end-to-end gain is below 1.2


@pytest.mark.parametrize(("device", "engine"), [("a100-80gb-sxm", "vllm"), ("h100-sxm", None), ("h100-sxm", "sglang")])
def test_without_sparse_kernels_a_sparse_model_costs_what_the_dense_one_does(cat: Catalogue, device: str, engine: str | None) -> None:
    dense = _decoder(cat, "llama-3.1-8b")
    on, off = _dep(cat, variants.sparse(dense), device, engine), _dep(cat, dense, device, engine)
    assert memory.total_weight_bytes(on) == memory.total_weight_bytes(off)
    d = np.array([1.0, 64.0])
    assert engine_step(on, d, 1000, 512.0, 1000).total == pytest.approx(engine_step(off, d, 1000, 512.0, 1000).total, rel=1e-12)


def test_the_step_model_reproduces_engine_step_for_a_sparse_model(cat: Catalogue) -> None:
    dep = dataclasses.replace(_dep(cat, variants.sparse(_decoder(cat, "llama-3.1-70b")), "h100-sxm", "vllm", "fp8"), tp=4)
    sm = StepModel.build(dep, Hardware.of([(dep.device, dep.efficiency)], "fp8", dep.kv_dtype), 4, 1, 1, 1500, 1000)
    d = np.array([1.0, 32.0])
    for p in (0.0, 512.0):
        assert sm.seconds(d, p) == pytest.approx(engine_step(dep, d, 1500, p, 1000).total, rel=1e-6)


@pytest.mark.parametrize(("ref", "fraction"), [("llama-3.1-8b", 0.3), ("llama-3.1-70b", 0.5), ("qwen3-30b-a3b", 0.25)])
def test_pruning_removes_the_fraction_of_parameters_from_the_mlp_only(cat: Catalogue, ref: str, fraction: float) -> None:
    dense = _decoder(cat, ref)
    pruned = variants.pruned(dense, fraction)
    before, after = inventory(dense), inventory(pruned)
    assert after.total == pytest.approx((1 - fraction) * before.total, rel=0.01)
    assert after.attn_per_layer == before.attn_per_layer and after.embedding == before.embedding
    assert pruned.num_kv_heads == dense.num_kv_heads and pruned.id == f"{ref}-pruned{round(100 * fraction)}"
    assert pruned.published_params is None and pruned.checkpoint_bytes is None


def test_pruning_past_what_the_mlp_holds_is_refused(cat: Catalogue) -> None:
    dense = _decoder(cat, "llama-3.1-8b")
    limit = variants.max_prune(dense)
    assert 0.5 < limit < 0.7
    with pytest.raises(InputError, match=r"removes between 0% and 6\d% of its parameters"):
        variants.pruned(dense, limit + 0.01)


def test_a_catalogue_with_variants_resolves_them_and_everything_else_from_the_base(cat: Catalogue) -> None:
    v = variants.sparse(_decoder(cat, "llama-3.1-8b"))
    both = variants.WithModels(cat, {v.id: v})
    assert both.model(v.id) is v and both.model("llama-3.1-8b") is cat.model("llama-3.1-8b")
    assert v.id in both.models and both.version == cat.version and both.device("l4") is cat.device("l4")
