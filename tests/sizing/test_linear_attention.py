"""Hybrid decoders (Gated DeltaNet linear attention + full attention): weights, KV cache and state, step costs, HF configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from aicap.hardware_db import Catalogue
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.hf_config import from_hf_config, load_model_file
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.perf import memory
from aicap.sizing.perf.describe import describe_model
from aicap.sizing.perf.operators import transformer_step
from aicap.sizing.perf.params import inventory, kv_cache_bytes_per_token, linear_state_bytes_per_layer
from aicap.sizing.serve.disaggregated import transfer_ms

# Qwen3.5-9B's text_config inside its multimodal wrapper; the outer config holds tie_word_embeddings.
QWEN35_9B: dict[str, Any] = {
    "model_type": "qwen3_5", "tie_word_embeddings": False, "_name_or_path": "Qwen/Qwen3.5-9B",
    "text_config": {
        "model_type": "qwen3_5_text", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 16,
        "num_key_value_heads": 4, "head_dim": 256, "intermediate_size": 12288, "vocab_size": 248320,
        "max_position_embeddings": 262144, "attn_output_gate": True, "dtype": "bfloat16",
        "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
        "linear_conv_kernel_dim": 4, "full_attention_interval": 4,
    },
}  # fmt: skip
# Qwen3.5-35B-A3B's text_config: every layer MoE, no dense-MLP width, explicit layer_types.
QWEN35_35B_TEXT: dict[str, Any] = {
    "model_type": "qwen3_5_moe_text", "hidden_size": 2048, "num_hidden_layers": 40, "num_attention_heads": 16,
    "num_key_value_heads": 2, "head_dim": 256, "vocab_size": 248320, "max_position_embeddings": 262144,
    "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
    "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "num_experts": 256, "num_experts_per_tok": 8,
    "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(40)],
}  # fmt: skip


def test_parameter_count_and_cache_shapes(cat: Catalogue) -> None:
    m = cat.model("qwen3.5-9b")
    assert isinstance(m, DecoderModel) and m.attention_layers == 8
    assert inventory(m).total == pytest.approx(8.95e9, rel=0.002)  # the text decoder's count from its GGUF metadata
    assert kv_cache_bytes_per_token(m, 2) == 8 * 2 * 4 * 256 * 2  # 8 full-attention layers only: 32,768 B
    # vLLM's per-layer, per-sequence GDN state: 32·128·128 fp32 + 3·(2·16·128 + 32·128) bf16.
    assert linear_state_bytes_per_layer(m) == 2_146_304
    assert linear_state_bytes_per_layer(m, tp=2) == 2_146_304 / 2
    moe = cat.model("qwen3.5-35b-a3b")
    assert inventory(moe).total == pytest.approx(34.66e9, rel=0.002)
    assert inventory(moe).active == pytest.approx(3.45e9, rel=0.01)
    shown = describe_model(m)
    assert shown["kv_cache_bytes_per_token"] == 32_768


def test_the_state_is_per_sequence_and_the_kv_cache_per_token(deploy) -> None:
    d = deploy("qwen3.5-9b", "h100-sxm")
    state = float(memory.state_bytes_per_sequence(d, 1, 1))
    assert state == 24 * 2_146_304
    per_token = float(memory.kv_bytes_per_token(d, 1, 1, 1.0))
    assert float(memory.kv_bytes_per_sequence(d, 1, 1, 1000)) == pytest.approx(1000 * per_token + state)
    assert float(memory.state_tokens(d, 1, 1)) == np.ceil(state / per_token)
    # The pool counts tokens without the state; a batch pays the state once per sequence.
    free = float(memory.kv_budget_bytes(d, 1, 1) - memory.logits_bytes(d, 1, 1.0))
    assert float(memory.kv_cache_tokens(d, 1, 1)) == np.floor(free / per_token)
    budget, logits = float(memory.kv_budget_bytes(d, 1, 1)), float(memory.logits_bytes(d, 1, 1.0))
    batch = float(memory.max_batch(d, 1, 1, 500, 1000))
    assert batch == np.floor(budget / (1000 * per_token + state + logits))
    assert batch < 0.6 * np.floor(budget / (1000 * per_token + logits))  # the state (1,572 tokens' worth) dominates at 1,000
    # Pipeline stages split the state with the layers.
    assert float(memory.state_bytes_per_sequence(d, 1, 2)) == pytest.approx(state / 2)
    plain = deploy("qwen3-8b", "h100-sxm")
    assert float(memory.state_bytes_per_sequence(plain, 1, 1)) == 0.0 and float(memory.state_tokens(plain, 1, 1)) == 0.0


def test_context_costs_attention_on_full_layers_only_and_decode_reads_the_state(deploy) -> None:
    d = deploy("qwen3.5-9b", "h100-sxm")
    full = dataclasses.replace(d, model=d.model.model_copy(update={"linear_attention": None}))

    def attention(dep: Any, context: float) -> tuple[float, float]:
        cost = transformer_step(dep, 4.0, 1.0, context, 1.0)["attention"]
        return float(cost.flops), float(cost.bytes)

    (f0, q0), (f1, q1) = attention(d, 1000.0), attention(d, 2000.0)
    (g0, r0), (g1, r1) = attention(full, 1000.0), attention(full, 2000.0)
    assert (f1 - f0) == pytest.approx((g1 - g0) * 8 / 32)  # softmax attention on 8 of 32 layers
    assert (q1 - q0) == pytest.approx((r1 - r0) * 8 / 32)
    # A decode step reads and writes each sequence's state once per GDN layer, whatever the context.
    assert q0 - (r0 * 8 / 32) > 2 * 4 * 24 * 2_146_304
    # Prefill: the delta rule's FLOPs grow linearly in the prompt, not quadratically.
    pre = [float(transformer_step(d, 1.0, float(i), 0.0, 1.0)["attention"].flops) for i in (4096, 8192)]
    pre_full = [float(transformer_step(full, 1.0, float(i), 0.0, 1.0)["attention"].flops) for i in (4096, 8192)]
    assert pre[1] / pre[0] < pre_full[1] / pre_full[0]


def test_hf_configs_of_the_hybrids_match_the_catalogue(cat: Catalogue) -> None:
    spec = from_hf_config(QWEN35_9B)
    shipped = cat.model("qwen3.5-9b")
    assert isinstance(spec, DecoderModel) and spec.linear_attention == shipped.linear_attention
    assert spec.attention_output_gate and not spec.tied_embeddings and spec.native_dtype == "bf16"
    assert inventory(spec).total == pytest.approx(inventory(shipped).total)
    moe = from_hf_config(QWEN35_35B_TEXT)
    assert isinstance(moe, DecoderModel) and moe.moe is not None and moe.linear_attention is not None
    assert moe.linear_attention.layers == 30 and moe.moe.num_shared_experts == 1
    assert inventory(moe).total == pytest.approx(inventory(cat.model("qwen3.5-35b-a3b")).total)
    nxt = from_hf_config({**QWEN35_35B_TEXT, "model_type": "qwen3_next", "intermediate_size": 5120, "layer_types": None,
                          "full_attention_interval": 4, "num_hidden_layers": 48, "num_experts": 512, "num_experts_per_tok": 10,
                          "vocab_size": 151936})  # fmt: skip
    assert isinstance(nxt, DecoderModel) and nxt.linear_attention is not None and nxt.linear_attention.layers == 36
    assert inventory(nxt).total == pytest.approx(inventory(cat.model("qwen3-next-80b-a3b")).total)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layer_types": ["linear_attention"] * 39 + ["sliding_attention"]}, "layer_types must list"),
        ({"layer_types": ["linear_attention"] * 40}, "leave no full-attention layer"),
        ({"linear_num_value_heads": None}, "missing required keys: linear_num_value_heads"),
        ({"linear_key_head_dim": 0}, "linear_key_head_dim: expected a positive integer"),
    ],
)
def test_bad_hybrid_configs_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        from_hf_config({**QWEN35_35B_TEXT, **change}, source="config.json")


def test_a_spec_must_keep_a_full_attention_layer(cat: Catalogue) -> None:
    m = cat.model("qwen3.5-9b")
    doc = m.model_dump()
    doc["linear_attention"]["layers"] = 32
    with pytest.raises(ValueError, match="at least one"):
        DecoderModel.model_validate(doc)


def test_disaggregation_moves_the_state_with_the_kv_cache(cat: Catalogue) -> None:
    m = cat.model("qwen3.5-9b")
    assert isinstance(m, DecoderModel)
    assert transfer_ms(m, "bf16", 1000, 100.0) == pytest.approx((32_768 * 1000 + 24 * 2_146_304) * 8 / 100e9 * 1e3)


def test_models_show_document_reads_back(cat: Catalogue, tmp_path: Path) -> None:
    for model_id in ("qwen3.5-9b", "qwen3.5-35b-a3b", "qwen3-next-80b-a3b"):
        path = tmp_path / f"{model_id}.yaml"
        path.write_text(yaml.safe_dump(describe_model(cat.model(model_id))))
        back = load_model_file(path)
        assert isinstance(back, DecoderModel) and back.linear_attention == cat.model(model_id).linear_attention
        assert inventory(back).total == inventory(cat.model(model_id)).total
