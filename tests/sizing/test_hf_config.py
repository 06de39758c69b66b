"""Model specs from Hugging Face config.json files, and exact checkpoint bytes from safetensors headers."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from aicap.sizing.core.errors import InputError
from aicap.sizing.core.hf_config import checkpoint_bytes, from_hf_config, load_model_file
from aicap.sizing.perf.params import inventory

LLAMA_3_8B = {
    "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16", "tie_word_embeddings": False, "_name_or_path": "meta-llama/Meta-Llama-3-8B",
}  # fmt: skip
MIXTRAL = {**LLAMA_3_8B, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
           "max_position_embeddings": 32768}  # fmt: skip


def test_llama_config_gives_published_count() -> None:
    spec = from_hf_config(LLAMA_3_8B)
    assert spec.kind == "decoder" and spec.kv_heads == 8
    assert inventory(spec).total == pytest.approx(8.03e9, rel=0.01)


def test_mixtral_config_gives_moe() -> None:
    spec = from_hf_config(MIXTRAL)
    assert spec.moe is not None and spec.moe.num_experts == 8
    assert inventory(spec).total == pytest.approx(46.7e9, rel=0.01)


def test_unsupported_architecture_names_supported_ones() -> None:
    with pytest.raises(InputError, match=r"unsupported model_type 'mamba'; supported: llama"):
        from_hf_config({"model_type": "mamba"})


def test_missing_keys_are_listed() -> None:
    cfg = {k: v for k, v in LLAMA_3_8B.items() if k not in {"hidden_size", "vocab_size"}}
    with pytest.raises(InputError, match=r"missing required keys: hidden_size, vocab_size"):
        from_hf_config(cfg, source="x/config.json")


def test_safetensors_headers_give_exact_bytes(tmp_path: Path) -> None:
    header = {"a": {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 64]},
              "b": {"dtype": "F32", "shape": [3], "data_offsets": [64, 76]}, "__metadata__": {"format": "pt"}}  # fmt: skip
    raw = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 76)
    assert checkpoint_bytes(tmp_path) == 4 * 8 * 2 + 3 * 4
    # 76 bytes of weights cannot be an 8B model: the checkpoint and the config disagree.
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_8B))
    with pytest.raises(InputError, match=r"safetensors weigh 76 bytes, .* bytes per parameter"):
        load_model_file(tmp_path / "config.json")


def test_a_checkpoint_that_matches_the_config_sets_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16060522496}, "weight_map": {}}))
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_8B))
    assert load_model_file(tmp_path / "config.json").checkpoint_bytes == 16060522496


def test_attention_width_far_from_the_hidden_size_is_refused() -> None:
    with pytest.raises(InputError, match=r"more than 8× away"):
        from_hf_config({**LLAMA_3_8B, "hidden_size": 16, "head_dim": 128})


def test_index_json_total_size_wins(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16060522496}, "weight_map": {}}))
    assert checkpoint_bytes(tmp_path) == 16060522496


def test_malformed_json_names_line(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text('{\n  "model_type": "llama",\n  oops\n}')
    with pytest.raises(InputError, match=r"config\.json:3: malformed JSON"):
        load_model_file(p)


def test_a_config_dimension_beyond_2_to_the_53_is_refused(tmp_path: Path) -> None:
    """A float too large for an exact integer (fuzz: 1e308 overflowed later, an internal error)."""
    cfg = {"model_type": "llama", "hidden_size": 1e308, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"hidden_size: 1e\+308 is too large"):
        load_model_file(tmp_path / "config.json")


def test_phi3_reads_its_sliding_window_as_the_catalogue_does(cat) -> None:  # type: ignore[no-untyped-def]
    # Phi-3-mini-4k's config: a 2,047-token window (the catalogue's phi-3-mini is MHA+SWA2047); the reader dropped it, so the
    # same checkpoint fitted half the batch of the catalogue entry at long contexts. A window past the context is none.
    cfg = {"model_type": "phi3", "hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
           "intermediate_size": 8192, "vocab_size": 32064, "max_position_embeddings": 4096, "sliding_window": 2047}  # fmt: skip
    assert from_hf_config(cfg).sliding_window == cat.model("phi-3-mini").sliding_window == 2047
    assert from_hf_config({**cfg, "max_position_embeddings": 131072, "sliding_window": 262144}).sliding_window is None


def test_mixtral_reads_its_sliding_window_as_mistral_does() -> None:
    # A Mixtral config with "sliding_window": 4096 loaded as plain GQA, its KV cache for the whole context; Mistral's did not.
    cfg = {**MIXTRAL, "max_position_embeddings": 32768, "sliding_window": 4096}
    assert from_hf_config(cfg).sliding_window == from_hf_config({**cfg, "model_type": "mistral"}).sliding_window == 4096
    assert from_hf_config({**cfg, "sliding_window": None}).sliding_window is None
    with pytest.raises(InputError, match="sliding_window: expected a positive integer, got -1"):
        from_hf_config({**cfg, "sliding_window": -1})


@pytest.mark.parametrize(("value", "native"), [("float16", "fp16"), ("torch.bfloat16", "bf16"), ("float32", "fp32"), ("auto", "bf16"),
                                               (None, "bf16")])  # fmt: skip
def test_torch_dtype_gives_the_released_format(value: str | None, native: str) -> None:
    assert from_hf_config({**LLAMA_3_8B, "torch_dtype": value}).native_dtype == native


@pytest.mark.parametrize("value", ["float8", "int4", "complex64"])
def test_a_torch_dtype_aicap_does_not_read_is_refused(value: str) -> None:
    # it was read as bf16 without a word
    with pytest.raises(InputError, match=rf"torch_dtype '{value}' is not a format aicap reads; valid: float32, float16, bfloat16"):
        from_hf_config({**LLAMA_3_8B, "torch_dtype": value})


def test_a_config_file_is_named_by_its_folder_if_config_json_else_by_its_own_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every config in one folder took the folder's name ("cfg"), and a bare file name read from the working folder took its
    # model_type: the same file had two ids depending on where aicap ran.
    folder = tmp_path / "cfg"
    folder.mkdir()
    unnamed = {k: v for k, v in MIXTRAL.items() if k != "_name_or_path"}
    for name in ("gptoss.json", "config.json"):
        (folder / name).write_text(json.dumps(unnamed))
    assert load_model_file(folder / "gptoss.json").id == "gptoss" and load_model_file(folder / "config.json").id == "cfg"
    monkeypatch.chdir(folder)
    assert load_model_file(Path("gptoss.json")).id == "gptoss" and load_model_file(Path("config.json")).id == "cfg"
    assert load_model_file(Path("gptoss.json")).name == "gptoss"
    named = folder / "named.json"
    named.write_text(json.dumps({**unnamed, "_name_or_path": "mistralai/Mixtral-8x7B-v0.1"}))
    assert load_model_file(named).id == "mistralai-mixtral-8x7b-v0.1"  # the config's own name first


def test_a_bad_config_value_is_placed_at_its_line(tmp_path: Path) -> None:
    # "b.json: hidden_size: expected an integer" named no line, where a fleet or model YAML names one
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**MIXTRAL, "hidden_size": "4096"}, indent=2))
    line = next(k for k, text in enumerate(path.read_text().splitlines(), start=1) if '"hidden_size"' in text)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:{line}: hidden_size: expected an integer, got '4096'$"):
        load_model_file(path)
    path.write_text(json.dumps({"model_type": "gemma3", "text_config": {**MIXTRAL, "model_type": "gemma3_text", "num_hidden_layers": 0}},
                               indent=2))  # fmt: skip
    line = next(k for k, text in enumerate(path.read_text().splitlines(), start=1) if '"num_hidden_layers"' in text)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:{line}: num_hidden_layers: expected a positive integer"):
        load_model_file(path)


def test_a_config_s_family_is_the_catalogue_s_name_for_it(cat) -> None:  # type: ignore[no-untyped-def]
    # A Gemma 3 config loaded as family gemma3_text, which `models list --family` does not know; GPT-NeoX as gpt_neox
    gemma = {"model_type": "gemma3", "text_config": {**MIXTRAL, "model_type": "gemma3_text", "sliding_window": 1024}}
    assert from_hf_config(gemma).family == cat.model("gemma-3-27b").family == "gemma3"
    neox = {"model_type": "gpt_neox", "hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64, "intermediate_size": 24576,
            "vocab_size": 50432, "max_position_embeddings": 2048}  # fmt: skip
    assert from_hf_config(neox).family == cat.model("gpt-neox-20b").family == "gptneox"
