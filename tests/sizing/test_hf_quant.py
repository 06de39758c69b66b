"""A checkpoint's quantisation: read from its config, the default weight format, its bytes."""

from __future__ import annotations

from typing import Any

import pytest

from aicap.sizing.core.hf_config import from_hf_config
from aicap.sizing.core.hf_quant import read_quantisation

LLAMA_8B = {
    "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}  # fmt: skip


@pytest.mark.parametrize(
    ("quant", "expected"),
    [
        ({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}, "fp8"),  # DeepSeek-V3
        ({"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0}, "fp8"),  # Llama-3.1-405B-Instruct-FP8
        ({"quant_method": "mxfp4"}, "mxfp4"),  # gpt-oss
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "int4"),
        ({"quant_method": "awq", "w_bit": 4, "q_group_size": 128}, "int4"),  # older AutoAWQ key names
        ({"quant_method": "gptq", "bits": 8, "group_size": 128, "desc_act": False}, "int8"),
        ({"quant_method": "gptq", "bits": 3}, None),  # no 3-bit format: taken at torch_dtype
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "int4"),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8"),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "float-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}},
            },
            "fp8",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "group_size": 128}}},
            },
            "int4",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "nvfp4-pack-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "float", "group_size": 16}}},
            },
            "nvfp4",
        ),
        ({"quant_method": "compressed-tensors", "config_groups": {}}, None),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "mxfp4-pack-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "float", "group_size": 32}}},
            },
            "mxfp4",
        ),
        ({"quant_method": "modelopt", "quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8"}, "nvfp4"),
        ({"quant_method": "modelopt", "quant_algo": "FP8_PER_CHANNEL_PER_TOKEN"}, "fp8"),
        ({"quant_method": "modelopt", "quant_algo": "W4A8_NVFP4_FP8"}, "nvfp4"),
        ({"quant_method": "modelopt", "quant_algo": "W4A16_AWQ"}, "int4"),
        ({"quant_method": "quark", "global_quant_config": {"weight": {"dtype": "fp4", "group_size": 32}}}, "mxfp4"),  # AMD MXFP4
        ({"quant_method": "quark", "global_quant_config": {"weight": {"dtype": "fp8_e4m3"}}}, "fp8"),
        ({"quant_method": "quark"}, None),
        ({"quant_method": "awq"}, "int4"),  # AWQ is 4-bit only
        ({"quant_method": "gptq", "bits": "4"}, "int4"),
        ({"quant_method": "gptq"}, None),
        ({"quant_method": "auto-round", "bits": 4, "group_size": 128}, "int4"),
        ({"quant_method": "hqq", "nbits": 4}, None),
        ("mxfp4", None),  # not a mapping
    ],
)
def test_checkpoint_format_names_what_the_config_declares(quant: Any, expected: str | None) -> None:
    assert read_quantisation({"quantization_config": quant}).format == expected
    assert read_quantisation({}).format is None
    named = expected is None  # a method aicap cannot name, or a value that is not a mapping at all: both are said
    unread = read_quantisation({"quantization_config": quant}).unread
    assert (unread is not None) == named
    assert unread is None or unread.startswith(repr(str(quant.get("quant_method"))) if isinstance(quant, dict) else repr(quant))


def test_a_method_read_by_its_bits_names_the_bits_it_cannot_read() -> None:
    # 3-bit GPTQ was noted as "quant_method 'gptq' is not one aicap reads", which aicap does read at 4 and 8 bits
    assert read_quantisation({"quantization_config": {"quant_method": "gptq", "bits": 3}}).unread == "'gptq', 3 bits"


def test_older_compressed_tensors_exports_are_read_and_unknown_methods_noted() -> None:
    old = {"compression_config": {"quant_method": "compressed-tensors",
                                  "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float"}}}}}  # fmt: skip
    assert read_quantisation(old).format == "fp8"
    hqq = from_hf_config({**LLAMA_8B, "quantization_config": {"quant_method": "hqq", "nbits": 4}})
    assert hqq.checkpoint_dtype is None and hqq.notes is not None and "'hqq' is not one aicap reads" in hqq.notes


def test_hf_config_keeps_the_checkpoint_format_unless_it_is_the_native_one() -> None:
    awq = from_hf_config({**LLAMA_8B, "quantization_config": {"quant_method": "awq", "bits": 4}})
    assert awq.checkpoint_dtype == "int4" and awq.native_dtype == "bf16"
    assert from_hf_config(LLAMA_8B).checkpoint_dtype is None
    # a multimodal wrapper keeps its quantization_config at the top level, beside text_config
    wrapped = {"model_type": "llama4", "torch_dtype": "bfloat16", "quantization_config": {"quant_method": "fbgemm_fp8"},
               "text_config": {**{k: v for k, v in LLAMA_8B.items() if k != "torch_dtype"}, "model_type": "llama4_text",
                               "head_dim": 128, "intermediate_size_mlp": 14336, "num_local_experts": 16, "num_experts_per_tok": 1,
                               "interleave_moe_layer_step": 1}}  # fmt: skip
    assert from_hf_config(wrapped).checkpoint_dtype == "fp8"


def test_the_released_checkpoint_is_the_default_where_the_device_runs_it(aicap: Any) -> None:
    def est(*args: str) -> dict[str, Any]:
        r = aicap("estimate", *args, "--batch", "1", "-f", "json")
        assert r.code == 0, r.stderr
        doc: dict[str, Any] = r.json()
        return doc

    one = est("-m", "gpt-oss-120b", "--hardware", "h100-sxm", "--tp", "1", "--pp", "1")
    # 117B parameters in MXFP4 fit one 80 GB H100 (the model card's claim); in bf16 they need four
    assert (one["weights_dtype"], one["kv_dtype"], one["fits"]) == ("mxfp4", "bf16", True)
    assert one["memory_gib"]["weights"] < 64
    bf16 = est("-m", "gpt-oss-120b", "--hardware", "h100-sxm", "--tp", "4", "--pp", "1", "--weights-dtype", "bf16")
    assert bf16["weights_dtype"] == "bf16" and 4 * bf16["memory_gib"]["weights"] > 3.5 * one["memory_gib"]["weights"]
    kv8 = est("-m", "gpt-oss-120b", "--hardware", "h100-sxm", "--tp", "1", "--pp", "1", "--kv-dtype", "fp8")
    assert (kv8["weights_dtype"], kv8["kv_dtype"]) == ("mxfp4", "fp8")
    named = est("-m", "gpt-oss-120b", "--hardware", "h100-sxm", "--tp", "1", "--pp", "1", "--weights-dtype", "mxfp4")
    assert (named["weights_dtype"], named["kv_dtype"]) == ("mxfp4", "bf16")  # as released, whether named or not
    assert est("-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--pp", "1")["weights_dtype"] == "fp8"
    # no fp8 tensor cores on an A100: the checkpoint is served in its 16-bit dtype, as before
    v3 = est("-m", "deepseek-v3", "--hardware", "a100-80gb-sxm", "--tp", "8", "--pp", "4")
    assert (v3["weights_dtype"], v3["kv_dtype"]) == ("bf16", "bf16")


def test_checkpoint_bytes_are_the_weights_at_the_checkpoint_format() -> None:
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.core.deployment import Deployment
    from aicap.sizing.perf.memory import total_weight_bytes

    cat = load_catalogue()
    awq = from_hf_config({**LLAMA_8B, "quantization_config": {"quant_method": "awq", "bits": 4}}).model_copy(
        update={"checkpoint_bytes": 5.73e9}
    )
    dev = cat.device("a100-80gb-sxm")

    def weights(dtype: str) -> float:
        return total_weight_bytes(Deployment(awq, dev, cat.efficiency_for(dev), cat.runtime_spec, weights_dtype=dtype, kv_dtype="bf16"))

    assert weights("int4") == 5.73e9  # the file's bytes, scales and all, at the format it stores
    assert weights("bf16") == pytest.approx(2 * 8.03e9, rel=0.01)  # de-quantised to bf16: computed from the shapes


def test_a_workload_naming_no_formats_may_be_served_as_released(aicap: Any) -> None:
    from aicap.sizing.core.fleet import Workload

    w = Workload(name="w", model="m", requests_per_s=1.0)
    assert w.allowed_precisions(None) == ["bf16", "fp8"] and w.allowed_precisions("fp8") == ["fp8", "bf16"]
    assert w.allowed_precisions("mxfp4") == ["mxfp4", "bf16"]  # not re-quantised to fp8: engines load the checkpoint's method
    assert Workload(name="w", model="m", requests_per_s=1.0, precisions=["int4"]).allowed_precisions("mxfp4") == ["int4"]
    with pytest.raises(ValueError, match="at least one format"):
        Workload(name="w", model="m", requests_per_s=1.0, precisions=[])

    def plan(*extra: str) -> dict[str, Any]:
        r = aicap("size", "--model", "gpt-oss-120b", "--rate", "1", "--hardware", "h100-sxm", "--cloud", "aws", *extra, "-f", "json")
        assert r.code == 0, r.stderr
        doc: dict[str, Any] = r.json()
        return doc

    released, sixteen_or_eight = plan(), plan("--precision", "bf16,fp8")
    deps = released["workloads"][0]["deployments"]
    # MXFP4 on one H100 (KV in bf16, as released) against fp8 at TP 2 at the least: the checkpoint's format wins
    assert {(d["weights_dtype"], d["kv_dtype"], d["tp"]) for d in deps} == {("mxfp4", "bf16", 1)}
    assert {d["weights_dtype"] for d in sixteen_or_eight["workloads"][0]["deployments"]} <= {"bf16", "fp8"}
    assert released["totals"]["usd_per_month"] < sixteen_or_eight["totals"]["usd_per_month"] / 2


def test_an_engine_without_the_checkpoint_format_serves_a_16_bit_copy_and_exports_say_so(aicap: Any, tmp_path: Any) -> None:
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.export.llmd import checkpoint_gib

    r = aicap("estimate", "-m", "gpt-oss-120b", "--hardware", "h100-sxm", "--engine", "tgi", "--tp", "4", "--batch", "1")
    assert r.code == 0, r.stderr  # TGI lists no MXFP4 kernels: the default falls back, it does not fail
    assert "weights bf16 (the checkpoint is mxfp4: this needs a bf16 copy)" in r.stdout
    plan = tmp_path / "plan.json"
    made = aicap("size", "--model", "gpt-oss-120b", "--rate", "1", "--hardware", "h100-sxm", "--cloud", "aws", "--precision", "bf16",
                 "-o", str(plan))  # fmt: skip
    assert made.code == 0, made.stderr
    out = aicap("export", str(plan), "--to", "vllm")
    assert out.code == 0 and "openai/gpt-oss-120b is released in mxfp4" in out.stdout
    # the llm-d model volume holds the checkpoint as released: MXFP4, not the 218 GiB of a bf16 copy
    assert 55 < checkpoint_gib(load_catalogue(), "gpt-oss-120b") < 64


def test_attention_a_checkpoint_leaves_unquantised_is_read_at_16_bit() -> None:
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.core.deployment import Deployment
    from aicap.sizing.perf.memory import linear_bytes_per_weight, total_weight_bytes, unquantised_attention_bytes
    from aicap.sizing.perf.operators import transformer_step
    from aicap.sizing.perf.params import inventory

    kept = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "lm_head"]}
    assert read_quantisation({"quantization_config": kept}).keeps_attention
    assert read_quantisation(
        {"quantization_config": {"quant_method": "compressed-tensors", "ignore": ["lm_head", "re:.*self_attn.*"]}}
    ).keeps_attention
    assert not read_quantisation({"quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}}).keeps_attention
    assert not read_quantisation({}).keeps_attention
    cat = load_catalogue()
    oss = cat.model("gpt-oss-120b")
    assert oss.unquantised_attention
    dev = cat.device("h100-sxm")

    def dep(dtype: str, model: Any = oss) -> Deployment:
        return Deployment(model, dev, cat.efficiency_for(dev), cat.runtime_spec, weights_dtype=dtype, kv_dtype="bf16")

    released, int4 = dep("mxfp4"), dep("int4")
    assert unquantised_attention_bytes(released) == 2.0 and unquantised_attention_bytes(int4) is None
    inv = inventory(oss)
    attn = inv.layers * inv.attn_per_layer  # 0.96B parameters of 116.8B, 1.5 bytes more each
    assert total_weight_bytes(released) - total_weight_bytes(int4) == pytest.approx(attn * (2.0 - linear_bytes_per_weight(int4)), rel=1e-6)
    step = transformer_step(released, 1.0, 1.0, 0.0, 1.0)["attn_proj"].bytes
    lower = float(transformer_step(int4, 1.0, 1.0, 0.0, 1.0)["attn_proj"].bytes)
    assert float(step) == pytest.approx(lower + attn * (2.0 - linear_bytes_per_weight(int4)), rel=1e-6)  # read at 16 bit
    plain = oss.model_copy(update={"unquantised_attention": False})
    assert total_weight_bytes(dep("mxfp4", plain)) == pytest.approx(total_weight_bytes(int4))
