"""Model specs from a Hugging Face ``config.json`` (or an aicap model YAML file).

Supported ``model_type`` values: llama, mistral, mixtral, qwen2, qwen2_moe, deepseek_v2,
deepseek_v3, gemma2, phi3, gptj, gpt_neox, falcon, bert. When ``model.safetensors.index.json`` or
``*.safetensors`` files sit beside the config, the exact checkpoint size is read from their headers
(the 8-byte length and the JSON header only; tensor data is never read).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from aicap.sizing.core.documents import load_yaml, read_text, validate
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import ModelSpec

_MODEL: TypeAdapter[Any] = TypeAdapter(ModelSpec)
SUPPORTED = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "deepseek_v2", "deepseek_v3",
    "gemma2", "phi3", "gptj", "gpt_neox", "falcon", "bert",
)  # fmt: skip
_SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "I32": 4, "I64": 8, "BOOL": 1}
_TORCH_DTYPE = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def load_model_file(path: Path) -> Any:
    """Load a model spec from a ``config.json`` or an aicap YAML model file."""
    text = read_text(path)
    if path.suffix == ".json":
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
        if not isinstance(cfg, dict):
            raise InputError(f"{path}: expected a JSON object")
        spec = from_hf_config(cfg, source=str(path))
        size = checkpoint_bytes(path.parent)
        return spec.model_copy(update={"checkpoint_bytes": size}) if size else spec
    doc = load_yaml(path, text)
    if isinstance(doc, dict) and isinstance(doc.get("models"), list) and len(doc["models"]) == 1:
        return validate(_MODEL, doc["models"][0], str(path), text, ("models", 0))
    return validate(_MODEL, doc, str(path), text)


def _need(cfg: dict[str, Any], keys: list[str], model_type: str, source: str) -> None:
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise InputError(f"{source}: {model_type} config is missing required keys: {', '.join(missing)}")


def from_hf_config(cfg: dict[str, Any], source: str = "config.json") -> Any:
    """Translate a Hugging Face config dictionary into a model spec.

    Raises
    ------
    InputError
        For an unsupported ``model_type`` (naming the supported ones) or missing keys (listing them).
    """
    mt = cfg.get("model_type")
    if mt not in SUPPORTED:
        raise InputError(f"{source}: unsupported model_type {mt!r}; supported: {', '.join(SUPPORTED)}")
    name = cfg.get("_name_or_path") or Path(source).parent.name or mt
    ident = "".join(c if c.isalnum() or c in "._-" else "-" for c in str(name).lower()).strip("-.") or mt
    base: dict[str, Any] = {
        "id": ident[:64],
        "name": str(name),
        "family": mt,
        "source": source,
        "native_dtype": _TORCH_DTYPE.get(str(cfg.get("torch_dtype")), "bf16"),
    }
    if mt == "gptj":
        _need(cfg, ["n_embd", "n_layer", "n_head", "vocab_size", "n_positions"], mt, source)
        h = cfg["n_embd"]
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": h, "num_layers": cfg["n_layer"],
            "num_heads": cfg["n_head"], "intermediate_size": cfg.get("n_inner") or 4 * h, "vocab_size": cfg["vocab_size"],
            "max_context": cfg["n_positions"], "mlp": "plain", "norm": "layernorm", "norms_per_layer": 1,
            "mlp_bias": True, "lm_head_bias": True}, source)  # fmt: skip
    if mt == "bert":
        _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings"], mt, source)  # fmt: skip
        return validate(_MODEL, {**base, "kind": "encoder", "native_dtype": _TORCH_DTYPE.get(str(cfg.get("torch_dtype")), "fp32"),
            "hidden_size": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"], "num_heads": cfg["num_attention_heads"],
            "intermediate_size": cfg["intermediate_size"], "vocab_size": cfg["vocab_size"],
            "max_context": cfg["max_position_embeddings"], "mlp": "plain", "norm": "layernorm", "position": "learned",
            "attention_bias": True, "attention_out_bias": True, "mlp_bias": True, "tied_embeddings": True,
            "type_vocab_size": cfg.get("type_vocab_size", 2), "pooler": True}, source)  # fmt: skip
    if mt == "falcon":
        _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"], mt, source)
        h = cfg["hidden_size"]
        new = bool(cfg.get("new_decoder_architecture"))
        kv = cfg.get("num_kv_heads") if new else (1 if cfg.get("multi_query", True) else cfg["num_attention_heads"])
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": h, "num_layers": cfg["num_hidden_layers"],
            "num_heads": cfg["num_attention_heads"], "num_kv_heads": kv, "intermediate_size": cfg.get("ffn_hidden_size") or 4 * h,
            "vocab_size": cfg["vocab_size"], "max_context": cfg.get("max_position_embeddings", 2048), "mlp": "plain",
            "norm": "layernorm", "norms_per_layer": 2 if new else 1, "position": "alibi" if cfg.get("alibi") else "rope",
            "attention_bias": bool(cfg.get("bias")), "attention_out_bias": bool(cfg.get("bias")), "mlp_bias": bool(cfg.get("bias")),
            "tied_embeddings": cfg.get("tie_word_embeddings", True)}, source)  # fmt: skip
    if mt == "gpt_neox":
        _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings"], mt, source)  # fmt: skip
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"],
            "num_heads": cfg["num_attention_heads"], "intermediate_size": cfg["intermediate_size"], "vocab_size": cfg["vocab_size"],
            "max_context": cfg["max_position_embeddings"], "mlp": "plain", "norm": "layernorm", "attention_bias": True,
            "attention_out_bias": True, "mlp_bias": True, "tied_embeddings": cfg.get("tie_word_embeddings", False)}, source)  # fmt: skip
    # Llama-like families share the key names below.
    keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings"]
    _need(cfg, keys, mt, source)
    spec: dict[str, Any] = {**base, "kind": "decoder", "hidden_size": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"],
        "num_heads": cfg["num_attention_heads"], "num_kv_heads": cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
        "intermediate_size": cfg["intermediate_size"], "vocab_size": cfg["vocab_size"],
        "max_context": cfg["max_position_embeddings"], "tied_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "attention_bias": bool(cfg.get("attention_bias", mt in {"qwen2", "qwen2_moe"}))}  # fmt: skip
    head_dim = cfg.get("head_dim")
    if head_dim and head_dim != cfg["hidden_size"] // cfg["num_attention_heads"]:
        spec["head_dim"] = head_dim
    if mt == "mistral" and cfg.get("sliding_window"):
        spec["sliding_window"] = cfg["sliding_window"]
    if mt == "gemma2":
        spec.update(norms_per_layer=4, tied_embeddings=True, sliding_window=cfg.get("sliding_window"), global_every=2)
    if mt == "mixtral":
        _need(cfg, ["num_local_experts", "num_experts_per_tok"], mt, source)
        spec["moe"] = {"num_experts": cfg["num_local_experts"], "experts_per_token": cfg["num_experts_per_tok"],
                       "expert_intermediate_size": cfg["intermediate_size"]}  # fmt: skip
    if mt == "qwen2_moe":
        _need(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], mt, source)
        spec["moe"] = {"num_experts": cfg["num_experts"], "experts_per_token": cfg["num_experts_per_tok"],
                       "expert_intermediate_size": cfg["moe_intermediate_size"], "num_shared_experts": 1,
                       "shared_expert_intermediate_size": cfg.get("shared_expert_intermediate_size")}  # fmt: skip
    if mt in {"deepseek_v2", "deepseek_v3"}:
        need = ["n_routed_experts", "num_experts_per_tok", "moe_intermediate_size", "kv_lora_rank", "qk_rope_head_dim",
                "qk_nope_head_dim", "v_head_dim"]  # fmt: skip
        _need(cfg, need, mt, source)
        spec["moe"] = {"num_experts": cfg["n_routed_experts"], "experts_per_token": cfg["num_experts_per_tok"],
                       "expert_intermediate_size": cfg["moe_intermediate_size"],
                       "num_shared_experts": cfg.get("n_shared_experts") or 0,
                       "dense_layers": cfg.get("first_k_dense_replace", 0)}  # fmt: skip
        spec["mla"] = {"q_lora_rank": cfg.get("q_lora_rank"), "kv_lora_rank": cfg["kv_lora_rank"],
                       "qk_nope_head_dim": cfg["qk_nope_head_dim"], "qk_rope_head_dim": cfg["qk_rope_head_dim"],
                       "v_head_dim": cfg["v_head_dim"]}  # fmt: skip
        spec.pop("head_dim", None)
    return validate(_MODEL, spec, source)


def checkpoint_bytes(folder: Path) -> float | None:
    """Exact weight bytes from safetensors headers beside a config, or ``None``.

    Uses ``model.safetensors.index.json``'s ``metadata.total_size`` when present; otherwise sums
    ``prod(shape) · bytes(dtype)`` over the JSON header of each ``*.safetensors`` file (the first
    ``8 + N`` bytes, where N is the little-endian u64 at offset 0).
    """
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            total = json.loads(index.read_text(encoding="utf-8")).get("metadata", {}).get("total_size")
        except (OSError, json.JSONDecodeError):
            total = None
        if total:
            return float(total)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total_bytes = 0
    for f in files:
        with f.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError(f"{f}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            try:
                header = json.loads(fh.read(n))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(f"{f}: malformed safetensors header") from None
        for name, t in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in t["shape"]:
                count *= dim
            total_bytes += count * _SAFETENSORS_BYTES.get(t["dtype"], 2)
    return float(total_bytes)
