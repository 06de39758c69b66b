"""Configs of the models people serve now (Qwen3, Qwen3-MoE, Gemma 3, Llama 4, gpt-oss), model folders, the local
Hugging Face cache, and the `models show` document read back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.hf_cache import model_path
from aicap.sizing.core.hf_config import from_hf_config
from aicap.sizing.perf.params import inventory

GPT_OSS_120B = {
    "model_type": "gpt_oss", "hidden_size": 2880, "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 64, "intermediate_size": 2880, "vocab_size": 201088, "max_position_embeddings": 131072, "num_local_experts": 128,
    "num_experts_per_tok": 4, "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 18,
    "attention_bias": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
}  # fmt: skip
QWEN3_8B = {
    "model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 128, "intermediate_size": 12288, "vocab_size": 151936, "max_position_embeddings": 40960,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}  # fmt: skip
LLAMA4_SCOUT = {
    "model_type": "llama4", "torch_dtype": "bfloat16",
    "text_config": {"model_type": "llama4_text", "hidden_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 40,
                    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
                    "vocab_size": 202048, "max_position_embeddings": 10485760, "num_local_experts": 16, "num_experts_per_tok": 1,
                    "interleave_moe_layer_step": 1, "attention_chunk_size": 8192},
}  # fmt: skip
GEMMA3_27B = {
    "model_type": "gemma3", "torch_dtype": "bfloat16",
    "text_config": {"model_type": "gemma3_text", "hidden_size": 5376, "num_hidden_layers": 62, "num_attention_heads": 32,
                    "num_key_value_heads": 16, "head_dim": 128, "intermediate_size": 21504, "vocab_size": 262208,
                    "max_position_embeddings": 131072, "sliding_window": 1024, "sliding_window_pattern": 6},
}  # fmt: skip
QWEN3_30B_A3B = {**QWEN3_8B, "model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48, "num_attention_heads": 32,
                 "num_key_value_heads": 4, "intermediate_size": 6144, "num_experts": 128, "num_experts_per_tok": 8,
                 "moe_intermediate_size": 768, "mlp_only_layers": []}  # fmt: skip


def test_configs_match_the_catalogue_entries_read_from_them(cat: Catalogue) -> None:
    assert inventory(from_hf_config(GPT_OSS_120B)).total == inventory(cat.model("gpt-oss-120b")).total
    # google/gemma-3-27b-it's config.json gives neither vocab_size nor max_position_embeddings: Gemma3TextConfig's defaults
    # apply (it was refused, "missing required keys"), and the model is the catalogue's
    text = {k: v for k, v in GEMMA3_27B["text_config"].items() if k not in ("vocab_size", "max_position_embeddings")}
    official = from_hf_config({**GEMMA3_27B, "text_config": text})
    assert official.vocab_size == 262208 and official.max_context == 131072
    assert inventory(official).total == inventory(cat.model("gemma-3-27b")).total
    assert from_hf_config(GPT_OSS_120B).checkpoint_dtype == cat.model("gpt-oss-120b").checkpoint_dtype == "mxfp4"
    assert inventory(from_hf_config(QWEN3_8B)).total == inventory(cat.model("qwen3-8b")).total


@pytest.mark.parametrize(
    ("cfg", "total", "active"),
    [
        (LLAMA4_SCOUT, 109e9, 17e9),  # Meta: Llama 4 Scout, 17B active of 109B total
        (QWEN3_30B_A3B, 30.5e9, 3.3e9),  # Qwen: Qwen3-30B-A3B, 30.5B total, 3.3B activated
        (GEMMA3_27B, 27e9, 27e9),  # the text decoder of Gemma 3 27B (the 0.4B vision tower is not modelled)
    ],
)
def test_new_families_give_their_published_sizes(cfg: dict[str, Any], total: float, active: float) -> None:
    inv = inventory(from_hf_config(cfg))
    assert inv.total == pytest.approx(total, rel=0.04)
    assert inv.active == pytest.approx(active, rel=0.06)


def test_windowed_and_moe_layers_are_counted() -> None:
    oss = from_hf_config(GPT_OSS_120B)
    assert (oss.sliding_window, oss.global_every, oss.windowed_layers) == (128, 2, 18)
    gemma = from_hf_config(GEMMA3_27B)
    assert (gemma.sliding_window, gemma.global_every, gemma.windowed_layers) == (1024, 6, 62 - 62 // 6)
    scout = from_hf_config(LLAMA4_SCOUT)
    assert scout.moe is not None and scout.moe_layers == 48 and scout.moe.num_shared_experts == 1
    maverick = from_hf_config({**LLAMA4_SCOUT, "text_config": {**LLAMA4_SCOUT["text_config"], "num_local_experts": 128,  # type: ignore[dict-item]
                                                                "interleave_moe_layer_step": 2}})  # fmt: skip
    assert maverick.moe_layers == 24 and inventory(maverick).total == pytest.approx(400e9, rel=0.02)


def test_bad_layer_types_and_missing_text_config_are_one_line() -> None:
    with pytest.raises(InputError, match="layer_types"):
        from_hf_config({**GPT_OSS_120B, "layer_types": ["sliding_attention"] * 3})
    with pytest.raises(InputError, match="text_config"):
        from_hf_config({"model_type": "gemma3"})


def test_folders_and_the_hf_cache_resolve_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cat: Catalogue) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    repo = tmp_path / "hf" / "hub" / "models--Qwen--Qwen3-8B"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps({**QWEN3_8B, "_name_or_path": "Qwen/Qwen3-8B"}))
    assert model_path("Qwen/Qwen3-8B") == repo / "snapshots" / "abc123" / "config.json"
    assert inventory(cat.model("Qwen/Qwen3-8B")).total == inventory(cat.model("qwen3-8b")).total
    # a config without _name_or_path (as the Hub's are) was named by its snapshot hash: "abc123" titled every table
    (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps(QWEN3_8B))
    assert (cat.model("Qwen/Qwen3-8B").id, cat.model("Qwen/Qwen3-8B").name) == ("qwen-qwen3-8b", "Qwen/Qwen3-8B")
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN3_8B))
    assert inventory(cat.model(str(folder))).total == inventory(cat.model("qwen3-8b")).total
    with pytest.raises(InputError, match=r"not in the Hugging Face cache at .*models--Qwen--Nope"):
        cat.model("Qwen/Nope")
    with pytest.raises(InputError, match=r"without config\.json"):
        cat.model(str(tmp_path))


@pytest.mark.parametrize("model", ["llama-3.1-8b", "deepseek-v3", "gpt-oss-120b", "bert-base", "resnet-50"])
def test_models_show_yaml_reads_back(aicap: Any, tmp_path: Path, cat: Catalogue, model: str) -> None:
    out = tmp_path / "m.yaml"
    r = aicap("models", "show", model, "-f", "yaml")
    assert r.code == 0
    out.write_text(r.stdout)
    again = aicap("models", "show", str(out), "-f", "json")
    assert again.code == 0, again.stderr
    first = aicap("models", "show", model, "-f", "json").json()
    second = again.json()
    assert second["params"] == first["params"] and second.get("architecture") == first.get("architecture")
    assert second.get("checkpoint_dtype") == first.get("checkpoint_dtype") == {"deepseek-v3": "fp8", "gpt-oss-120b": "mxfp4"}.get(model)
    # MLA has head dimensions of its own (mla.*): hidden/heads (56 for DeepSeek-V3) was shown as its head_dim
    assert ("head_dim" in (first.get("architecture") or {})) == (model in ("llama-3.1-8b", "gpt-oss-120b", "bert-base"))


def test_a_model_documents_bad_native_format_is_named_where_it_is(aicap: Any, tmp_path: Path) -> None:
    # "native_dtype: fp4" in a model file was blamed on --weights-dtype, which the user never gave, with no place
    doc = aicap("models", "show", "llama-3.1-8b", "-f", "yaml").stdout
    assert "  native_dtype: bf16" in doc
    bad = tmp_path / "m.yaml"
    bad.write_text(doc.replace("  native_dtype: bf16", "  native_dtype: fp4", 1))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "native_dtype: fp4" in text)
    r = aicap("estimate", "-m", str(bad), "--hardware", "h100-sxm")
    assert r.code == 2 and f"{bad}:{line}: " in r.stderr and "native_dtype" in r.stderr and "got 'fp4'" in r.stderr
    assert "--weights-dtype" not in r.stderr


def test_moe_layer_lists_and_router_widths_are_checked_in_the_config_s_terms() -> None:
    # mlp_only_layers [0, 1, 999] on 48 layers counted 3 dense layers; "all" was ignored; top-16 of 8 experts said
    # "moe: experts_per_token must not exceed num_experts" in aicap's own field names, without the values
    import pytest

    from aicap.sizing.core.errors import InputError

    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
           "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "num_attention_heads": 32,
           "num_key_value_heads": 4, "head_dim": 128, "num_hidden_layers": 48, "vocab_size": 151936,
           "max_position_embeddings": 40960, "torch_dtype": "bfloat16"}  # fmt: skip
    assert from_hf_config({**cfg, "mlp_only_layers": [0, 1, 1]}).moe.dense_layers == 2  # type: ignore[union-attr]
    for bad, msg in (({"mlp_only_layers": [0, 1, 999]}, "mlp_only_layers: layer 999 is not one of the model's 48 layers (0 to 47)"),
                     ({"mlp_only_layers": "all"}, "mlp_only_layers: expected a list of layer indices (integers), got 'all'"),
                     ({"num_experts_per_tok": 16, "num_experts": 8}, "num_experts_per_tok (16) exceeds num_experts (8)")):  # fmt: skip
        with pytest.raises(InputError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            from_hf_config({**cfg, **bad})


def test_a_shape_of_more_parameters_than_any_model_is_refused() -> None:
    # hidden_size 1e9 x 1e6 layers was accepted and printed "> 0.0 GiB usable" (the capacity lost to float rounding)
    import pytest

    from aicap.sizing.core.errors import InputError

    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
           "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 16, "vocab_size": 128256,
           "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}  # fmt: skip
    from_hf_config(cfg)
    with pytest.raises(InputError, match=r"make at least 2\.4e\+28 parameters, over 1e\+15: no model is that large"):
        from_hf_config({**cfg, "hidden_size": 10**9, "num_hidden_layers": 10**6, "intermediate_size": 8 * 10**12,
                        "num_attention_heads": 1000})  # fmt: skip


def test_a_qwen_moe_config_s_sparse_step_makes_the_other_layers_dense() -> None:
    # decoder_sparse_step 2 was ignored: every one of 48 layers was read as MoE (30.5B parameters, not ~17B).
    # transformers' Qwen2/Qwen3-MoE layer i is sparse where i is not in mlp_only_layers and (i + 1) % step == 0.
    base = from_hf_config(QWEN3_30B_A3B)
    step2 = from_hf_config({**QWEN3_30B_A3B, "decoder_sparse_step": 2})
    both = from_hf_config({**QWEN3_30B_A3B, "decoder_sparse_step": 2, "mlp_only_layers": [0, 1, 3]})
    assert base.moe.dense_layers == 0  # type: ignore[union-attr]
    assert step2.moe.dense_layers == 24  # type: ignore[union-attr]  # layers 0, 2, ..., 46
    assert both.moe.dense_layers == 26  # type: ignore[union-attr]  # and layers 1 and 3 (0 was dense already)
    # each layer turned dense swaps 128 experts of 3·2048·768 and their 2048×128 router for one MLP of 3·2048·6144 parameters
    swap = 128 * 3 * 2048 * 768 + 2048 * 128 - 3 * 2048 * 6144
    assert inventory(base).total - inventory(step2).total == 24 * swap
    qwen2 = {**QWEN3_30B_A3B, "model_type": "qwen2_moe", "shared_expert_intermediate_size": 5632, "decoder_sparse_step": 4}
    assert from_hf_config(qwen2).moe.dense_layers == 36  # type: ignore[union-attr]
    with pytest.raises(InputError, match="decoder_sparse_step: expected a positive integer, got 0"):
        from_hf_config({**QWEN3_30B_A3B, "decoder_sparse_step": 0})


def test_a_model_document_s_errors_name_the_field_where_the_file_has_it(aicap: Any, tmp_path: Path) -> None:
    # num_layerz under architecture was reported at line 1 without its block, "(and 1 more error)" for the num_layers it
    # misspells; a hand-written file learnt its missing fields one run at a time; a misspelt kind was placed at line 1.
    doc = aicap("models", "show", "llama-3.1-8b", "-f", "yaml").stdout
    bad = tmp_path / "m.yaml"
    bad.write_text(doc.replace("  num_layers: 32", "  num_layerz: 32", 1))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "num_layerz" in text)
    r = aicap("models", "show", str(bad))
    assert r.code == 2 and r.stderr.startswith(f"aicap: error: {bad}:{line}: architecture.num_layerz: unknown field")
    assert "more" not in r.stderr
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("id: tiny\nkind: decoder\nfamily: llama\narchitecture:\n  hidden_size: 512\n  num_layers: 2\n  num_heads: 8\n"
                    "  intermediate_size: 1024\n  vocab_size: 1000\n  max_context: 2048\n")  # fmt: skip
    assert aicap("models", "show", str(tiny)).stderr == f"aicap: error: {tiny}:1: name, source: required fields are missing\n"
    tiny.write_text(tiny.read_text().replace("kind: decoder", "kind: decodr"))
    assert aicap("models", "show", str(tiny)).stderr.startswith(f"aicap: error: {tiny}:2: kind: must be one of")


@pytest.mark.parametrize(
    ("scaling", "context"),
    [
        ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, 131072),  # Qwen3's documented YaRN
        ({"type": "yarn", "factor": 4, "original_max_position_embeddings": 32768}, 131072),  # the older key
        ({"rope_type": "yarn", "factor": 40, "original_max_position_embeddings": 4096}, 163840),  # DeepSeek-V3: its positions
        ({"rope_type": "yarn", "factor": 1.0, "original_max_position_embeddings": 4096}, 40960),  # never below the positions
        ({"rope_type": "linear", "factor": 8.0}, 40960),  # Gemma 3's: the positions already extended (not 327,680)
        ({"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}, 40960),
        ({"rope_type": "yarn", "factor": None}, 40960),
        (None, 40960),
    ],
)
def test_a_yarn_rope_scaling_extends_the_context(scaling: dict[str, Any] | None, context: int) -> None:
    """A Qwen3 config with YaRN read 40,960 tokens of context and refused the 131,072-token requests engines serve with it."""
    spec = from_hf_config({**QWEN3_8B, "rope_scaling": scaling})
    assert spec.max_context == context


@pytest.mark.parametrize(
    ("scaling", "says"),
    [
        ("yarn", "rope_scaling: expected a mapping (rope_type, factor, ...) or null, got 'yarn'"),
        ({"rope_type": "yarn", "factor": 0.5, "original_max_position_embeddings": 32768}, "rope_scaling.factor: expected a number"),
        ({"rope_type": "yarn", "factor": "4", "original_max_position_embeddings": 32768}, "rope_scaling.factor: expected a number"),
        ({"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": "32k"}, "original_max_position_embeddings: expected an"),
    ],
)
def test_a_bad_rope_scaling_is_named(scaling: object, says: str) -> None:
    with pytest.raises(InputError, match=re.escape(says)):
        from_hf_config({**QWEN3_8B, "rope_scaling": scaling}, "c.json")


def test_a_vocabulary_past_any_model_is_named_at_its_own_line(aicap: Any, tmp_path: Path) -> None:
    """The error pointed at hidden_size's line (the first field the message named) for a vocab_size of 1e12."""
    cfg = {**QWEN3_8B, "vocab_size": 10**12}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg, indent=1))
    line = next(k for k, text in enumerate(path.read_text().splitlines(), start=1) if '"vocab_size"' in text)
    r = aicap("models", "show", str(path))
    assert r.code == 2 and f"{path}:{line}: vocab_size 1,000,000,000,000, hidden_size 4,096" in r.stderr
    deep = aicap("models", "show", str(_write(tmp_path, {**QWEN3_8B, "num_hidden_layers": 10**9})))  # the layers' term leads
    assert deep.code == 2 and ": hidden_size 4,096, num_layers 1,000,000,000" in deep.stderr


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "deep" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(cfg, indent=1))
    return path


def test_a_model_document_refuses_keys_it_does_not_have_and_says_when_a_derived_figure_changes_nothing(aicap: Any, tmp_path: Path) -> None:
    # A misspelt checkpoint_dtyp left the model in bf16, twice the weights, with exit 0; edits of the derived
    # figures (kv_cache_bytes_per_token, attention, params.derived) were read and silently ignored.
    doc = aicap("models", "show", "llama-3.1-8b", "-f", "yaml").stdout.replace("id: llama-3.1-8b", "id: my-llama", 1)
    path = tmp_path / "m.yaml"
    path.write_text(doc + "checkpoint_dtyp: fp8\n")
    r = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm")
    line = len(path.read_text().splitlines())
    assert r.code == 2 and r.stderr.startswith(f"aicap: error: {path}:{line}: unknown field 'checkpoint_dtyp'")
    assert "did you mean checkpoint_dtype" in r.stderr
    path.write_text(doc.replace("  num_layers: 32", "  num_layer: 32", 1))  # under architecture too
    assert "architecture.num_layer: unknown field; did you mean 'num_layers'?" in aicap("models", "show", str(path)).stderr
    path.write_text(doc.replace("family: llama", "famly: llama", 1))
    assert "unknown field 'famly' in a models show document: did you mean family?" in aicap("models", "show", str(path)).stderr
    path.write_text(doc.replace("  published: 8030000000", "  published: -5", 1))
    r = aicap("models", "show", str(path))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "published: -5" in text)
    assert r.code == 2 and r.stderr.startswith(f"aicap: error: {path}:{line}: params.published: ")
    # a native format given twice, differently: which one wins was silent (the architecture's)
    path.write_text(doc.replace("\nnative_dtype: bf16", "\nnative_dtype: fp8", 1))
    r = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm")
    assert r.code == 2 and "native_dtype 'fp8' disagrees with architecture.native_dtype 'bf16'" in r.stderr
    # a derived figure is read for nothing: said once, at its line, and the model is the architecture's
    path.write_text(doc.replace("kv_cache_bytes_per_token: 131072", "kv_cache_bytes_per_token: 5", 1))
    r = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "-f", "json")
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "kv_cache_bytes_per_token" in text)
    assert (
        r.code == 0
        and f"{path}:{line}: derived figures" in r.stderr
        and "kv_cache_bytes_per_token '5' (the fields give 131072)" in r.stderr
    )
    same = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-f", "json").json()
    assert {k: v for k, v in r.json().items() if k != "model"} == {k: v for k, v in same.items() if k != "model"}
    # an edited architecture leaves them stale: one warning, not one per figure
    path.write_text(doc.replace("  num_layers: 32", "  num_layers: 40", 1))
    r = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "-f", "json")
    assert r.code == 0 and r.stderr.count("derived figures") == 1 and "params.derived '8030261248'" in r.stderr
    # and untouched, the document reads back without a word
    path.write_text(doc)
    assert aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "-f", "json").stderr == ""


def test_a_models_show_json_document_reads_back(aicap: Any, tmp_path: Path) -> None:
    # Any .json was read as a Hugging Face config: "unsupported model_type None"
    path = tmp_path / "m.json"
    path.write_text(aicap("models", "show", "qwen3-8b", "-f", "json").stdout)
    a = aicap("estimate", "-m", str(path), "--hardware", "h100-sxm", "-f", "json")
    assert a.code == 0, a.stderr
    assert a.json() == aicap("estimate", "-m", "qwen3-8b", "--hardware", "h100-sxm", "-f", "json").json()
