"""Model specs from a Hugging Face ``config.json`` (or an aicap model YAML file).

Supported ``model_type`` values: llama, llama4 (its ``text_config``), mistral, mixtral, qwen2,
qwen2_moe, qwen3, qwen3_moe, qwen3_next, qwen3_5 and qwen3_5_moe (their ``text_config``), deepseek_v2,
deepseek_v3, gemma2, gemma3 (its ``text_config``), gpt_oss, phi3, gptj, gpt_neox, falcon, bert.
Multimodal configs (Gemma 3, Llama 4, Qwen3.5) are read for their text decoder; the vision tower is
not modelled. Where a family mixes layer kinds the spec counts them: ``layer_types`` (or Gemma 3's
``sliding_window_pattern``, Llama 4's chunked attention on three of four layers) sets how many layers
keep a windowed KV cache, Llama 4's ``interleave_moe_layer_step`` how many layers are
mixture-of-experts, and a hybrid's ``layer_types`` (or ``full_attention_interval``) how many are Gated
DeltaNet linear attention (Qwen3-Next, Qwen3.5; their ``linear_*`` keys give the shapes). When ``model.safetensors.index.json`` or
``*.safetensors`` files sit beside the config, the exact checkpoint size is read from their headers
(:mod:`aicap.sizing.core.checkpoint`).

Every number a config or header gives is checked before it is used: sizes are positive integers
(never booleans), the shapes must agree (heads divide the hidden size unless ``head_dim`` is given,
key/value heads divide the heads), and a bad value is an :class:`InputError` naming the file, the
key and the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from aicap.sizing.core import show_document
from aicap.sizing.core.checkpoint import checkpoint_bytes
from aicap.sizing.core.doc_errors import line_of
from aicap.sizing.core.documents import load_json, load_yaml, read_text, validate
from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.hf_fields import (
    bool_field,
    check_experts_per_token,
    check_heads,
    int_field,
    int_fields,
    need_keys,
    qwen_dense_layers,
    rope_context,
)
from aicap.sizing.core.hf_quant import read_quantisation
from aicap.sizing.core.specs.model import AnyModel, GenericModel, ModelSpec

_MODEL: TypeAdapter[AnyModel] = TypeAdapter(ModelSpec)
SUPPORTED = (
    "llama", "llama4", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2",
    "deepseek_v3", "gemma2", "gemma3", "gemma3_text", "gpt_oss", "phi3", "gptj", "gpt_neox", "falcon", "bert",
    "qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text",
)  # fmt: skip
#: Multimodal configs whose text decoder sits under ``text_config``.
_WRAPPED = {"gemma3": "gemma3_text", "llama4": "llama4_text", "qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}
#: A config's family as the catalogue names it (``models list --family``): a wrapped text model by its outer type.
_FAMILY = {**{inner: outer for outer, inner in _WRAPPED.items()}, "gpt_neox": "gptneox"}
#: Hybrid decoders: Gated DeltaNet linear attention on most layers, gated softmax attention on the rest.
_HYBRID = {"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"}
_TORCH_DTYPE = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float": "fp32", "half": "fp16"}


def _native(cfg: dict[str, Any], default: str, source: str) -> str:
    """The checkpoint's released format from ``torch_dtype`` (or ``dtype``): ``default`` when absent or ``auto``.

    Raises
    ------
    InputError
        For a value that is not a 32- or 16-bit float format (it was read as the default, silently).
    """
    key = "torch_dtype" if cfg.get("torch_dtype") is not None else "dtype"
    value = cfg.get(key)
    if value is None or value == "auto":
        return default
    name = str(value).removeprefix("torch.")
    if name not in _TORCH_DTYPE:
        raise InputError(f"{source}: {key} {excerpt(value)} is not a format aicap reads; valid: float32, float16, bfloat16 (a quantised "
                         "checkpoint names its format in quantization_config)")  # fmt: skip
    return _TORCH_DTYPE[name]


def load_model_file(path: Path) -> AnyModel:
    """Load a model spec from a ``config.json`` or an aicap YAML model file.

    Parameters
    ----------
    path
        A Hugging Face ``config.json`` (any ``.json`` file), or a YAML file holding one model spec
        (or a catalogue-style ``models:`` list with exactly one entry).

    Returns
    -------
    AnyModel
        A validated :data:`~aicap.sizing.core.specs.model.ModelSpec`.

    Raises
    ------
    InputError
        When the file is unreadable, malformed or not a model document; its content is never
        echoed beyond a short excerpt.
    """
    text = read_text(path)
    if path.suffix.lower() == ".json":
        cfg = load_json(path, text)
        if not isinstance(cfg, dict):
            raise InputError(f"{path}:1: expected a JSON object (a Hugging Face config.json), got {_kind(cfg)}")
        if "model_type" not in cfg and show_document.is_show_document(cfg):  # `aicap models show -f json`, read back
            return _from_show_document(cfg, str(path), text)
        try:
            spec = from_hf_config(cfg, source=str(path))
        except InputError as exc:
            raise InputError(_placed(str(exc), str(path), text, cfg)) from None
        size = checkpoint_bytes(path.parent)
        if size:
            _check_checkpoint(spec, size, path.parent)
        return spec.model_copy(update={"checkpoint_bytes": size}) if size else spec
    doc = load_yaml(path, text)
    if isinstance(doc, dict) and isinstance(doc.get("models"), list) and len(doc["models"]) == 1:
        return validate(_MODEL, doc["models"][0], str(path), text, ("models", 0))
    if not isinstance(doc, dict):
        raise InputError(f"{path}:1: not a model document: expected a mapping with 'kind', 'id', 'name', ..., got {_kind(doc)}")
    if show_document.is_show_document(doc):
        return _from_show_document(doc, str(path), text)
    if "kind" not in doc:
        hint = " (this looks like a fleet file)" if "workloads" in doc else ""
        raise InputError(f"{path}:1: not a model document{hint}: no 'kind' field (decoder, encoder or generic)")
    return validate(_MODEL, doc, str(path), text)


def _from_show_document(doc: dict[str, Any], path: str, text: str) -> AnyModel:
    """The model of a ``models show`` document (YAML or JSON), its keys checked (:mod:`.show_document`)."""
    show_document.check_keys(doc, path, text)
    try:
        model: AnyModel = _MODEL.validate_python(show_document.spec_fields(doc))
    except ValidationError as exc:  # name the field where the document has it: under `architecture`, not flattened
        raise InputError(show_document.placed_error(exc, doc, path, text)) from None
    show_document.check_conflicts(doc, path, text)
    return model


CHECKPOINT_BYTES_PER_PARAM = (0.3, 6.0)
"""Plausible checkpoint bytes per derived parameter: 2-bit quantisation with scales to fp32 with extras."""


def _check_checkpoint(spec: AnyModel, size: float, folder: Path) -> None:
    """Refuse a checkpoint whose size disagrees with the config's shapes (a truncated index, a wrong folder)."""
    if isinstance(spec, GenericModel):
        return
    from aicap.sizing.perf.params import inventory

    params = inventory(spec).total
    lo, hi = CHECKPOINT_BYTES_PER_PARAM
    if not lo * params <= size <= hi * params:
        raise InputError(f"{folder}: the safetensors weigh {size:,.0f} bytes, {size / params:.3g} bytes per parameter of the "
                         f"{params:,.0f} the config implies (plausible: {lo:g} to {hi:g}); the index or the config is wrong")  # fmt: skip


#: How a converted model's ``notes`` begin when its ``quantization_config`` could not be read (the CLI warns of it).
UNREAD_QUANT = "quantization_config quant_method"


def _kind(value: Any) -> str:
    if value is None:
        return "an empty document"
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


#: Gemma3TextConfig's defaults for the keys the official Gemma 3 checkpoints' ``text_config`` omits (transformers
#: src/transformers/models/gemma3/configuration_gemma3.py @ 008f5c8c29be84d4721dc6d1e0fcd72300580be4: vocab_size=262_208,
#: max_position_embeddings=131_072; google/gemma-3-27b-it config.json gives neither).
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262208, "max_position_embeddings": 131072}


def _placed(message: str, source: str, text: str, cfg: dict[str, Any]) -> str:
    """``message`` (``SOURCE: key: ...``) with the line of the config key it names: ``SOURCE:9: hidden_size: ...``.

    Keys of a wrapped config's ``text_config`` (Gemma 3, Llama 4) are looked up there; a message naming no key of the
    config is returned as it is.
    """
    head = f"{source}: "
    if not message.startswith(head):
        return message
    key = message[len(head) :].split(":", 1)[0].split(" ", 1)[0]
    text_config = cfg.get("text_config")
    loc: tuple[str, ...] = (key,) if key in cfg else ("text_config", key) if isinstance(text_config, dict) and key in text_config else ()
    line = line_of(text, loc) if loc else None
    return f"{source}:{line}: {message[len(head) :]}" if line else message


def from_hf_config(cfg: dict[str, Any], source: str = "config.json") -> AnyModel:
    """Translate a Hugging Face config dictionary into a model spec.

    Parameters
    ----------
    cfg
        The parsed ``config.json``.
    source
        Where it came from (named in errors and stored as the spec's ``source``).

    Returns
    -------
    AnyModel
        A validated model spec.

    Raises
    ------
    InputError
        For an unsupported ``model_type`` (naming the supported ones), missing keys (listing them),
        a key of the wrong type or sign, or shapes that disagree (naming the keys and values).
    """
    mt = cfg.get("model_type")
    if not isinstance(mt, str) or mt not in SUPPORTED:
        raise InputError(f"{source}: unsupported model_type {excerpt(mt)}; supported: {', '.join(SUPPORTED)}")
    if mt in _WRAPPED:
        text = cfg.get("text_config")
        if not isinstance(text, dict):
            raise InputError(f"{source}: {mt} config has no 'text_config' mapping (the language model's shapes)")
        outer: dict[str, Any] = {k: cfg[k] for k in ("_name_or_path", "torch_dtype", "dtype", "tie_word_embeddings",
                                                     "quantization_config") if k in cfg}  # fmt: skip
        cfg = {**outer, **text, "model_type": _WRAPPED[mt]}
        mt = _WRAPPED[mt]
    # Named as the config says, else by its folder (a config.json, wherever it was read from), else by the file's own name.
    path = Path(source)
    if path.name.lower() == "config.json":
        fallback = path.parent.name or (path.resolve().parent.name if path.exists() else "")
    else:
        fallback = path.stem
    name = cfg.get("_name_or_path") or fallback or mt
    name = name if isinstance(name, str) else mt
    ident = "".join(c if c.isalnum() or c in "._-" else "-" for c in name.lower()).strip("-.") or mt
    base: dict[str, Any] = {
        "id": ident[:64].strip("-.") or mt,
        "name": name[:200],
        "family": _FAMILY.get(mt, mt),
        "source": source,
        "native_dtype": _native(cfg, "bf16", source),
    }
    quant = read_quantisation(cfg)
    if quant.format is not None and quant.format != base["native_dtype"]:
        base["checkpoint_dtype"] = quant.format
        base["unquantised_attention"] = quant.keeps_attention
    if quant.unread is not None:
        base["notes"] = (f"{UNREAD_QUANT} {quant.unread} is not one aicap reads: the weights are taken at "
                         f"{base['native_dtype']} unless --weights-dtype (or a workload's precisions) names their format")  # fmt: skip
    if mt == "gptj":
        need_keys(cfg, ["n_embd", "n_layer", "n_head", "vocab_size", "n_positions"], mt, source)
        v = int_fields(cfg, ["n_embd", "n_layer", "n_head", "vocab_size", "n_positions"], source)
        h = v["n_embd"]
        check_heads(h, v["n_head"], None, None, source, ("n_embd", "n_head", ""))
        inner = int_field(cfg, "n_inner", source)
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": h, "num_layers": v["n_layer"],
            "num_heads": v["n_head"], "intermediate_size": 4 * h if inner is None else inner, "vocab_size": v["vocab_size"],
            "max_context": v["n_positions"], "mlp": "plain", "norm": "layernorm", "norms_per_layer": 1,
            "mlp_bias": True, "lm_head_bias": True}, source)  # fmt: skip
    if mt == "bert":
        keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings"]
        need_keys(cfg, keys, mt, source)
        v = int_fields(cfg, keys, source)
        check_heads(v["hidden_size"], v["num_attention_heads"], None, None, source, ("hidden_size", "num_attention_heads", ""))
        type_vocab = int_field(cfg, "type_vocab_size", source, minimum=0)
        return validate(_MODEL, {**base, "kind": "encoder", "native_dtype": _native(cfg, "fp32", source),
            "hidden_size": v["hidden_size"], "num_layers": v["num_hidden_layers"], "num_heads": v["num_attention_heads"],
            "intermediate_size": v["intermediate_size"], "vocab_size": v["vocab_size"],
            "max_context": v["max_position_embeddings"], "mlp": "plain", "norm": "layernorm", "position": "learned",
            "attention_bias": True, "attention_out_bias": True, "mlp_bias": True, "tied_embeddings": True,
            "type_vocab_size": 2 if type_vocab is None else type_vocab, "pooler": True}, source)  # fmt: skip
    if mt == "falcon":
        keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"]
        need_keys(cfg, keys, mt, source)
        v = int_fields(cfg, keys, source)
        h, heads = v["hidden_size"], v["num_attention_heads"]
        new = bool_field(cfg, "new_decoder_architecture", False, source)
        kv = int_field(cfg, "num_kv_heads", source) if new else (1 if bool_field(cfg, "multi_query", True, source) else heads)
        check_heads(h, heads, kv, None, source, ("hidden_size", "num_attention_heads", "num_kv_heads"))
        ffn = int_field(cfg, "ffn_hidden_size", source)
        ctx = int_field(cfg, "max_position_embeddings", source)
        bias = bool_field(cfg, "bias", False, source)
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": h, "num_layers": v["num_hidden_layers"],
            "num_heads": heads, "num_kv_heads": kv, "intermediate_size": 4 * h if ffn is None else ffn,
            "vocab_size": v["vocab_size"], "max_context": 2048 if ctx is None else ctx, "mlp": "plain",
            "norm": "layernorm", "norms_per_layer": 2 if new else 1,
            "position": "alibi" if bool_field(cfg, "alibi", False, source) else "rope",
            "attention_bias": bias, "attention_out_bias": bias, "mlp_bias": bias,
            "tied_embeddings": bool_field(cfg, "tie_word_embeddings", True, source)}, source)  # fmt: skip
    if mt == "gpt_neox":
        keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings"]
        need_keys(cfg, keys, mt, source)
        v = int_fields(cfg, keys, source)
        check_heads(v["hidden_size"], v["num_attention_heads"], None, None, source, ("hidden_size", "num_attention_heads", ""))
        return validate(_MODEL, {**base, "kind": "decoder", "hidden_size": v["hidden_size"], "num_layers": v["num_hidden_layers"],
            "num_heads": v["num_attention_heads"], "intermediate_size": v["intermediate_size"], "vocab_size": v["vocab_size"],
            "max_context": v["max_position_embeddings"], "mlp": "plain", "norm": "layernorm", "attention_bias": True,
            "attention_out_bias": True, "mlp_bias": True,
            "tied_embeddings": bool_field(cfg, "tie_word_embeddings", False, source)}, source)  # fmt: skip
    # Llama-like families share the key names below.
    if mt in _HYBRID and cfg.get("intermediate_size") is None and cfg.get("moe_intermediate_size") is not None:
        cfg = {**cfg, "intermediate_size": cfg["moe_intermediate_size"]}  # every layer MoE: no dense-MLP width given
    if mt == "gemma3_text":  # the official Gemma 3 configs leave these to the class defaults
        cfg = {**GEMMA3_TEXT_DEFAULTS, **{k: x for k, x in cfg.items() if x is not None}}
    keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings"]
    need_keys(cfg, keys, mt, source)
    v = int_fields(cfg, keys, source)
    hidden, heads = v["hidden_size"], v["num_attention_heads"]
    kv = int_field(cfg, "num_key_value_heads", source)
    head_dim = int_field(cfg, "head_dim", source)
    mla = mt in {"deepseek_v2", "deepseek_v3"}
    if not mla:
        check_heads(hidden, heads, kv, head_dim, source, ("hidden_size", "num_attention_heads", "num_key_value_heads"))
    spec: dict[str, Any] = {**base, "kind": "decoder", "hidden_size": hidden, "num_layers": v["num_hidden_layers"],
        "num_heads": heads, "num_kv_heads": heads if kv is None else kv,
        "intermediate_size": v["intermediate_size"], "vocab_size": v["vocab_size"],
        "max_context": rope_context(cfg, v["max_position_embeddings"], source),
        "tied_embeddings": bool_field(cfg, "tie_word_embeddings", False, source),
        "attention_bias": bool_field(cfg, "attention_bias", mt in {"qwen2", "qwen2_moe", "gpt_oss"}, source)}  # fmt: skip
    if head_dim is not None and (hidden % heads or head_dim != hidden // heads):
        spec["head_dim"] = head_dim
    mtp = int_field(cfg, "num_nextn_predict_layers", source, minimum=0) or int_field(cfg, "mtp_num_hidden_layers", source, minimum=0)
    if mtp:
        spec["mtp_layers"] = mtp  # DeepSeek-V3's and Qwen3-Next's multi-token-prediction modules
    window = int_field(cfg, "sliding_window", source) if mt in {"mistral", "mixtral", "phi3", "gemma2", "gemma3_text", "gpt_oss"} else None
    if mt in {"mistral", "mixtral", "phi3"} and window and window < v["max_position_embeddings"]:  # a window past the context is none
        spec["sliding_window"] = window
    if mt == "gemma2":
        spec.update(norms_per_layer=4, tied_embeddings=True, sliding_window=window, global_every=2)
    if mt == "gemma3_text":
        every = _global_every(cfg, v["num_hidden_layers"], source) or int_field(cfg, "sliding_window_pattern", source) or 6
        spec.update(norms_per_layer=4, tied_embeddings=bool_field(cfg, "tie_word_embeddings", True, source), sliding_window=window,
                    global_every=every)  # fmt: skip
    if mt == "gpt_oss":
        need = ["num_local_experts", "intermediate_size"]
        need_keys(cfg, need, mt, source)
        k = int_field(cfg, "num_experts_per_tok", source) or int_field(cfg, "experts_per_token", source)
        if k is None:
            raise InputError(f"{source}: gpt_oss config is missing required keys: num_experts_per_tok")
        spec.update(attention_out_bias=True, mlp_bias=True, sliding_window=window,
                    global_every=_global_every(cfg, v["num_hidden_layers"], source) or 2)  # fmt: skip
        spec["moe"] = {"num_experts": int_field(cfg, "num_local_experts", source), "experts_per_token": k,
                       "expert_intermediate_size": v["intermediate_size"]}  # fmt: skip
    if mt in _HYBRID:
        spec.update(attention_output_gate=bool_field(cfg, "attn_output_gate", True, source),
                    linear_attention=_linear_attention(cfg, v["num_hidden_layers"], mt, source))  # fmt: skip
    if mt in {"qwen3_moe", "qwen3_next", "qwen3_5_moe_text"}:
        need_keys(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], mt, source)
        e = int_fields(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], source)
        check_experts_per_token(e["num_experts_per_tok"], e["num_experts"], source, ("num_experts_per_tok", "num_experts"))
        # Qwen3.5-MoE builds a sparse block in every layer (modeling_qwen3_5_moe: no mlp_only_layers, no step)
        dense_mlps = 0 if mt == "qwen3_5_moe_text" else qwen_dense_layers(cfg, v["num_hidden_layers"], source)
        spec["moe"] = {"num_experts": e["num_experts"], "experts_per_token": e["num_experts_per_tok"],
                       "expert_intermediate_size": e["moe_intermediate_size"], "dense_layers": dense_mlps}  # fmt: skip
        shared = int_field(cfg, "shared_expert_intermediate_size", source, minimum=0)
        if shared:
            spec["moe"].update(num_shared_experts=1, shared_expert_intermediate_size=shared)
    if mt == "llama4_text":
        need_keys(cfg, ["num_local_experts", "num_experts_per_tok"], mt, source)
        e = int_fields(cfg, ["num_local_experts", "num_experts_per_tok"], source)
        step = int_field(cfg, "interleave_moe_layer_step", source) or 1
        layers = v["num_hidden_layers"]
        spec["intermediate_size"] = int_field(cfg, "intermediate_size_mlp", source) or v["intermediate_size"]
        spec["moe"] = {"num_experts": e["num_local_experts"], "experts_per_token": e["num_experts_per_tok"],
                       "expert_intermediate_size": v["intermediate_size"], "num_shared_experts": 1,
                       "shared_expert_intermediate_size": v["intermediate_size"], "dense_layers": layers - layers // step}  # fmt: skip
        chunk = int_field(cfg, "attention_chunk_size", source)
        if chunk:
            spec.update(sliding_window=chunk, global_every=4)
    if mt == "mixtral":
        need_keys(cfg, ["num_local_experts", "num_experts_per_tok"], mt, source)
        e = int_fields(cfg, ["num_local_experts", "num_experts_per_tok"], source)
        check_experts_per_token(e["num_experts_per_tok"], e["num_local_experts"], source, ("num_experts_per_tok", "num_local_experts"))
        spec["moe"] = {"num_experts": e["num_local_experts"], "experts_per_token": e["num_experts_per_tok"],
                       "expert_intermediate_size": v["intermediate_size"]}  # fmt: skip
    if mt == "qwen2_moe":
        need_keys(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], mt, source)
        e = int_fields(cfg, ["num_experts", "num_experts_per_tok", "moe_intermediate_size"], source)
        spec["moe"] = {"num_experts": e["num_experts"], "experts_per_token": e["num_experts_per_tok"],
                       "expert_intermediate_size": e["moe_intermediate_size"], "num_shared_experts": 1,
                       "shared_expert_intermediate_size": int_field(cfg, "shared_expert_intermediate_size", source),
                       "dense_layers": qwen_dense_layers(cfg, v["num_hidden_layers"], source)}  # fmt: skip
    if mla:
        need = ["n_routed_experts", "num_experts_per_tok", "moe_intermediate_size", "kv_lora_rank", "qk_rope_head_dim",
                "qk_nope_head_dim", "v_head_dim"]  # fmt: skip
        need_keys(cfg, need, mt, source)
        e = int_fields(cfg, need, source)
        shared = int_field(cfg, "n_shared_experts", source, minimum=0)
        dense = int_field(cfg, "first_k_dense_replace", source, minimum=0)
        spec["moe"] = {"num_experts": e["n_routed_experts"], "experts_per_token": e["num_experts_per_tok"],
                       "expert_intermediate_size": e["moe_intermediate_size"], "num_shared_experts": shared or 0,
                       "dense_layers": dense or 0}  # fmt: skip
        spec["mla"] = {"q_lora_rank": int_field(cfg, "q_lora_rank", source), "kv_lora_rank": e["kv_lora_rank"],
                       "qk_nope_head_dim": e["qk_nope_head_dim"], "qk_rope_head_dim": e["qk_rope_head_dim"],
                       "v_head_dim": e["v_head_dim"]}  # fmt: skip
        spec.pop("head_dim", None)
    return validate(_MODEL, spec, source)


def _linear_attention(cfg: dict[str, Any], layers: int, mt: str, source: str) -> dict[str, Any]:
    """A hybrid's Gated DeltaNet layers: how many (``layer_types``, else one full layer in ``full_attention_interval``) and their shapes."""
    keys = ["linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim"]
    need_keys(cfg, keys, mt, source)
    v = int_fields(cfg, keys, source)
    types = cfg.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers or not all(t in ("linear_attention", "full_attention") for t in types):
            raise InputError(f"{source}: layer_types must list 'linear_attention' or 'full_attention' for each of the {layers} layers")
        linear = types.count("linear_attention")
    else:
        every = int_field(cfg, "full_attention_interval", source) or 4
        linear = layers - layers // every
    if linear >= layers:
        raise InputError(f"{source}: layer_types/full_attention_interval leave no full-attention layer of {layers}")
    kernel = int_field(cfg, "linear_conv_kernel_dim", source) or 4
    return {"layers": linear, "num_key_heads": v["linear_num_key_heads"], "num_value_heads": v["linear_num_value_heads"],
            "key_head_dim": v["linear_key_head_dim"], "value_head_dim": v["linear_value_head_dim"], "conv_kernel": kernel}  # fmt: skip


def _global_every(cfg: dict[str, Any], layers: int, source: str) -> int | None:
    """From ``layer_types`` (``sliding_attention`` / ``full_attention`` per layer): one global layer in every how many."""
    types = cfg.get("layer_types")
    if not isinstance(types, list) or not types:
        return None
    if len(types) != layers or not all(t in ("sliding_attention", "full_attention") for t in types):
        raise InputError(f"{source}: layer_types must list 'sliding_attention' or 'full_attention' for each of the {layers} layers")
    full = types.count("full_attention")
    return max(1, round(layers / full)) if full else None
