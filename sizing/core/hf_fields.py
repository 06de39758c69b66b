"""Reading a Hugging Face ``config.json``'s fields: required keys, integers in range, flags, layer lists and head counts.

Each reader raises :class:`~aicap.sizing.core.errors.InputError` naming the file (``source``), the config's own key and
the value, so that a converted model's error reads in the config's terms (:mod:`aicap.sizing.core.hf_config`).
"""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.errors import InputError, excerpt


def need_keys(cfg: dict[str, Any], keys: list[str], model_type: str, source: str) -> None:
    """Refuse a config of ``model_type`` without every one of ``keys`` (absent or null), naming those missing."""
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise InputError(f"{source}: {model_type} config is missing required keys: {', '.join(missing)}")


#: Largest integer a config field may hold: every model dimension is far below it, and above it a float
#: (the parameter counts, the roofline) no longer holds the integer exactly or at all.
MAX_CONFIG_INT = 2**53


def int_field(cfg: dict[str, Any], key: str, source: str, minimum: int = 1) -> int | None:
    """The integer at ``cfg[key]`` (``None`` when absent or null), at least ``minimum``."""
    value = cfg.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{source}: {key}: expected an integer, got {excerpt(value)}")
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise InputError(f"{source}: {key}: expected {what}, got {value}")
    if value > MAX_CONFIG_INT:
        raise InputError(f"{source}: {key}: {value:.4g} is too large (at most {MAX_CONFIG_INT:,}, 2^53)")
    return value


def layer_indices(cfg: dict[str, Any], key: str, layers: int, source: str) -> list[int]:
    """The distinct layer indices listed at ``cfg[key]`` (absent or null: none), each in ``[0, layers)``."""
    value = cfg.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in value):
        raise InputError(f"{source}: {key}: expected a list of layer indices (integers), got {excerpt(value)}")
    bad = [x for x in value if not 0 <= x < layers]
    if bad:
        raise InputError(f"{source}: {key}: layer {bad[0]} is not one of the model's {layers} layers (0 to {layers - 1})")
    return sorted(set(value))


def qwen_dense_layers(cfg: dict[str, Any], layers: int, source: str) -> int:
    """Layers of a Qwen MoE config whose MLP is dense, by the rule its modelling code applies.

    transformers' Qwen2-MoE, Qwen3-MoE and Qwen3-Next decoder layers build a sparse block where
    ``i ∉ mlp_only_layers`` and ``(i + 1) mod decoder_sparse_step = 0`` (``decoder_sparse_step`` default 1), and
    a dense MLP of ``intermediate_size`` elsewhere; so the dense count is
    ``|{i < L : i ∈ mlp_only_layers or (i + 1) mod s ≠ 0}|``.
    """
    step = int_field(cfg, "decoder_sparse_step", source) or 1
    only = set(layer_indices(cfg, "mlp_only_layers", layers, source))
    return sum(1 for i in range(layers) if i in only or (i + 1) % step != 0)


def check_experts_per_token(k: int, experts: int, source: str, keys: tuple[str, str]) -> None:
    """Refuse a router that picks more experts a token than there are, naming the config's keys and values."""
    if k > experts:
        raise InputError(f"{source}: {keys[0]} ({k}) exceeds {keys[1]} ({experts}): a token is routed to at most every expert")


def int_fields(cfg: dict[str, Any], keys: list[str], source: str) -> dict[str, int]:
    """Required positive integers (presence already checked by :func:`_need`)."""
    out: dict[str, int] = {}
    for k in keys:
        value = int_field(cfg, k, source)
        assert value is not None
        out[k] = value
    return out


def bool_field(cfg: dict[str, Any], key: str, default: bool, source: str) -> bool:
    """The boolean at ``cfg[key]`` (``default`` when absent or null); anything else is refused."""
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{source}: {key}: expected true or false, got {excerpt(value)}")
    return value


ATTENTION_WIDTH_RATIO = 8.0  # heads × head_dim within 8× of the hidden size either way (Gemma 2: 1.14×, Qwen3-0.6B: 2×)


def check_heads(hidden: int, heads: int, kv: int | None, head_dim: int | None, source: str, names: tuple[str, str, str]) -> None:
    """Check that the attention shapes of a config agree, naming the config's own keys."""
    h_key, n_key, kv_key = names
    if kv is not None and kv > heads:
        raise InputError(f"{source}: {kv_key} ({kv}) exceeds {n_key} ({heads})")
    if kv is not None and heads % kv:
        raise InputError(f"{source}: {n_key} ({heads}) is not a multiple of {kv_key} ({kv})")
    if head_dim is None and hidden < heads:
        raise InputError(f"{source}: {h_key} ({hidden}) is smaller than {n_key} ({heads}): a head would have no dimensions")
    if head_dim is None and hidden % heads:
        raise InputError(f"{source}: {h_key} ({hidden}) is not divisible by {n_key} ({heads}) and no head_dim is given")
    if head_dim is not None and not hidden / ATTENTION_WIDTH_RATIO <= heads * head_dim <= hidden * ATTENTION_WIDTH_RATIO:
        raise InputError(f"{source}: {n_key} × head_dim ({heads} × {head_dim} = {heads * head_dim}) is more than "
                         f"{ATTENTION_WIDTH_RATIO:g}× away from {h_key} ({hidden}): the shapes disagree")  # fmt: skip


def rope_context(cfg: dict[str, Any], positions: int, source: str) -> int:
    """The context a config serves: ``max_position_embeddings`` (``positions``), extended by a YaRN ``rope_scaling``.

    YaRN states the context it was trained at, so the context it serves is unambiguous, as vLLM and SGLang derive it
    (``_get_and_verify_max_len``): ``L = original_max_position_embeddings · factor``, never below ``positions``
    (Qwen3's 40,960 positions with ``{rope_type: yarn, factor: 4, original_max_position_embeddings: 32768}`` serve
    131,072 tokens; DeepSeek-V3's 4,096 x 40 is its 163,840). Other types keep ``positions``: vLLM multiplies linear and
    dynamic scalings too, but configs such as Gemma 3's (131,072 positions, linear factor 8) already give the extended
    context there, and a second scaling would read 1,048,576 (vllm-project/vllm PR #33958); ``llama3``, ``longrope``
    and ``su`` are never scaled.
    """
    rs = cfg.get("rope_scaling")
    if rs is None:
        return positions
    if not isinstance(rs, dict):
        raise InputError(f"{source}: rope_scaling: expected a mapping (rope_type, factor, ...) or null, got {excerpt(rs)}")
    if rs.get("rope_type", rs.get("type")) != "yarn":
        return positions
    factor = rs.get("factor")
    if factor is None:
        return positions
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1.0 <= factor <= 1024.0:
        raise InputError(f"{source}: rope_scaling.factor: expected a number from 1 to 1,024, got {excerpt(factor)}")
    original = int_field(rs, "original_max_position_embeddings", f"{source}: rope_scaling")
    return positions if original is None else max(positions, min(int(original * factor), MAX_CONFIG_INT))
