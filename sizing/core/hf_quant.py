"""The storage format of a Hugging Face checkpoint's linear weights, read from its ``quantization_config``.

A quantised checkpoint keeps ``torch_dtype`` for what stays unquantised (embeddings, norms, often the
attention of an MoE) and for the activations, and says how its linear weights are stored in
``quantization_config`` (``compression_config`` in older compressed-tensors exports). aicap reads the
methods the serving engines load (vLLM ``model_executor/layers/quantization``) and maps each to one of
its weight formats:

* ``fp8``, ``fbgemm_fp8`` (DeepSeek-V3, Qwen3-FP8, Llama-3.1-405B-FP8): ``fp8``;
* ``mxfp4`` (gpt-oss): ``mxfp4``;
* ``awq`` and ``awq_marlin`` (4-bit only), ``gptq``, ``gptq_marlin``, ``auto-round``: ``bits`` 4 or 8
  (``w_bit`` in older AWQ configs) give ``int4`` or ``int8``;
* ``bitsandbytes``: ``load_in_4bit`` or ``load_in_8bit`` give ``int4`` or ``int8``;
* ``compressed-tensors``: the first config group's ``weights``: 8-bit floats ``fp8``, 8- and 4-bit
  integers ``int8``/``int4``, 4-bit floats in groups of 16 ``nvfp4`` and of 32 ``mxfp4``;
* ``modelopt``: ``quant_algo`` starting ``FP8`` gives ``fp8``, ``NVFP4`` or ``W4A8_NVFP4`` ``nvfp4``,
  ``W4A16_AWQ`` or ``W4A8_AWQ`` ``int4``;
* ``quark`` (AMD): ``global_quant_config.weight.dtype``: ``fp8_e4m3`` gives ``fp8``, ``fp4`` ``mxfp4``,
  ``int4``/``uint4`` ``int4``, ``int8`` ``int8``.

Anything else gives no format, and :func:`read_quantisation` names the method it could not read: the
weights are then taken at ``torch_dtype`` unless ``--weights-dtype`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from aicap.sizing.core.dtypes import WeightDtype
from aicap.sizing.core.errors import excerpt

_FIXED: dict[str, WeightDtype] = {"fp8": "fp8", "fbgemm_fp8": "fp8", "mxfp4": "mxfp4"}
_BY_BITS = frozenset({"awq", "awq_marlin", "gptq", "gptq_marlin", "auto-round", "intel/auto-round"})
_FOUR_BIT_ONLY = frozenset({"awq", "awq_marlin"})
_MODELOPT: tuple[tuple[str, WeightDtype], ...] = (("FP8", "fp8"), ("NVFP4", "nvfp4"), ("W4A8_NVFP4", "nvfp4"),
                                                  ("W4A16_AWQ", "int4"), ("W4A8_AWQ", "int4"))  # fmt: skip
_QUARK: dict[str, WeightDtype] = {"fp8_e4m3": "fp8", "fp4": "mxfp4", "int4": "int4", "uint4": "int4", "int8": "int8"}
_INT_BITS: dict[int, WeightDtype] = {4: "int4", 8: "int8"}


class Quantisation(NamedTuple):
    """What a config says of its checkpoint's quantisation."""

    format: WeightDtype | None
    """The linear weights' storage format (``None``: unquantised, or a method aicap cannot name)."""
    keeps_attention: bool
    """Whether the attention projections stay in ``torch_dtype`` (``modules_to_not_convert`` or compressed-tensors'
    ``ignore`` names every layer's ``self_attn``, as gpt-oss's config does)."""
    unread: str | None
    """The quoted ``quant_method`` (and its ``bits``, where given) of a quantisation config whose format aicap cannot
    name (``'unnamed'`` where it gives none), for a note to the user; ``None`` otherwise."""


def read_quantisation(cfg: Mapping[str, object]) -> Quantisation:
    """Read a config's ``quantization_config`` (or ``compression_config``).

    Parameters
    ----------
    cfg
        The parsed ``config.json``.

    Returns
    -------
    Quantisation
        The weights' format (the list in the module docstring), whether attention stays unquantised, and
        the method where the format could not be named.
    """
    q = cfg.get("quantization_config", cfg.get("compression_config"))
    if q is None:
        return Quantisation(None, False, None)
    if not isinstance(q, Mapping):  # "quantization_config": "awq" names a method but says nothing aicap can read
        return Quantisation(None, False, excerpt(q))
    fmt = _format(q)
    skipped = q.get("modules_to_not_convert", q.get("ignore"))
    keeps = isinstance(skipped, list) and any(isinstance(m, str) and "*" in m and m.rstrip(".*").endswith("self_attn") for m in skipped)
    if fmt is not None:
        return Quantisation(fmt, keeps, None)
    method = str(q.get("quant_method") or "unnamed")
    bits = q.get("bits", q.get("w_bit"))
    return Quantisation(None, keeps, repr(method) + (f", {bits} bits" if bits is not None else ""))


def _format(q: Mapping[str, object]) -> WeightDtype | None:
    """The weight format a quantisation config declares (``None``: one aicap cannot name)."""
    method = str(q.get("quant_method", "")).lower()
    if method in _FIXED:
        return _FIXED[method]
    if method in _BY_BITS:
        bits = _bits(q.get("bits", q.get("w_bit")))
        return "int4" if bits is None and method in _FOUR_BIT_ONLY else _INT_BITS.get(bits or 0)
    if method == "bitsandbytes":
        return "int4" if q.get("load_in_4bit") is True else "int8" if q.get("load_in_8bit") is True else None
    if method == "compressed-tensors":
        return _compressed_tensors(q)
    if method == "modelopt":
        algo = str(q.get("quant_algo", "")).upper()
        return next((fmt for prefix, fmt in _MODELOPT if algo.startswith(prefix)), None)
    if method == "quark":
        glob = q.get("global_quant_config")
        weight = glob.get("weight") if isinstance(glob, Mapping) else None
        return _QUARK.get(str(weight.get("dtype", "")).lower()) if isinstance(weight, Mapping) else None
    return None


def _bits(value: object) -> int | None:
    """An integer bit width, also when written as a string (``"4"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _compressed_tensors(q: Mapping[str, object]) -> WeightDtype | None:
    """The format of the first config group's weights (``num_bits``, ``type``, ``group_size``) of a compressed-tensors config."""
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        return None
    first = next(iter(groups.values()))
    weights = first.get("weights") if isinstance(first, Mapping) else None
    if not isinstance(weights, Mapping):
        return None
    bits, kind = _bits(weights.get("num_bits")), str(weights.get("type", "int")).lower()
    if kind != "float":
        return _INT_BITS.get(bits or 0)
    if bits == 8:
        return "fp8"
    if bits == 4:
        return "mxfp4" if weights.get("group_size") == 32 else "nvfp4"
    return None
