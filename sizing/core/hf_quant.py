"""The storage format of a Hugging Face checkpoint's linear weights, read from its ``quantization_config``.

A quantised checkpoint keeps ``torch_dtype`` for what stays unquantised (embeddings, norms, often the
attention of an MoE) and for the activations, and says how its linear weights are stored in
``quantization_config``. aicap reads the methods the serving engines load (the engines' quantisation
registries, e.g. vLLM ``model_executor/layers/quantization``) and maps each to one of its weight formats:

=====================  ===========================================================  ===========
``quant_method``       what decides the format                                      format
=====================  ===========================================================  ===========
``fp8``, ``fbgemm_fp8``  FP8 weights (DeepSeek-V3, Qwen3-FP8, Llama-3.1-405B-FP8)  ``fp8``
``mxfp4``              OCP microscaling FP4 (gpt-oss)                               ``mxfp4``
``awq``, ``gptq``,     ``bits`` 4 or 8 (``w_bit`` in older AWQ configs)             ``int4``/``int8``
``awq_marlin``, ``gptq_marlin``
``bitsandbytes``       ``load_in_4bit`` / ``load_in_8bit``                          ``int4``/``int8``
``compressed-tensors``  the first group's ``weights``: ``num_bits`` and ``type``    see below
``modelopt``           ``quant_algo`` (``FP8``, ``NVFP4``, ``W4A16_AWQ``, ``W4A8_AWQ``)  ``fp8``/``nvfp4``/``int4``
=====================  ===========================================================  ===========

compressed-tensors: 8-bit float weights are ``fp8``, 8-bit integers ``int8``, 4-bit integers ``int4`` and
4-bit floats (NVFP4, groups of 16) ``nvfp4``. Any other method or width gives ``None``: the weights are
then taken at ``torch_dtype`` unless ``--weights-dtype`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

from aicap.sizing.core.dtypes import WeightDtype

_FIXED: dict[str, WeightDtype] = {"fp8": "fp8", "fbgemm_fp8": "fp8", "mxfp4": "mxfp4"}
_BY_BITS = frozenset({"awq", "gptq", "awq_marlin", "gptq_marlin"})
_MODELOPT: dict[str, WeightDtype] = {"FP8": "fp8", "NVFP4": "nvfp4", "W4A16_AWQ": "int4", "W4A8_AWQ": "int4"}
_INT_BITS: dict[int, WeightDtype] = {4: "int4", 8: "int8"}
_FLOAT_BITS: dict[int, WeightDtype] = {4: "nvfp4", 8: "fp8"}


def checkpoint_format(cfg: Mapping[str, object]) -> WeightDtype | None:
    """The weight format a config's ``quantization_config`` declares, or ``None`` (none, or one aicap cannot name).

    Parameters
    ----------
    cfg
        The parsed ``config.json`` (its ``quantization_config``, if any, is read).

    Returns
    -------
    WeightDtype or None
        One of aicap's weight formats (table in the module docstring).
    """
    q = cfg.get("quantization_config")
    if not isinstance(q, Mapping):
        return None
    method = str(q.get("quant_method", "")).lower()
    if method in _FIXED:
        return _FIXED[method]
    if method in _BY_BITS:
        bits = q.get("bits", q.get("w_bit"))
        return _INT_BITS.get(bits) if isinstance(bits, int) else None
    if method == "bitsandbytes":
        return "int4" if q.get("load_in_4bit") is True else "int8" if q.get("load_in_8bit") is True else None
    if method == "compressed-tensors":
        return _compressed_tensors(q)
    if method == "modelopt":
        inner = q.get("quantization")
        algo = q.get("quant_algo", inner.get("quant_algo") if isinstance(inner, Mapping) else None)
        return _MODELOPT.get(str(algo).upper()) if algo is not None else None
    return None


def _compressed_tensors(q: Mapping[str, object]) -> WeightDtype | None:
    """The format of the first config group's weights (``num_bits``, ``type``) of a compressed-tensors config."""
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        return None
    first = next(iter(groups.values()))
    weights = first.get("weights") if isinstance(first, Mapping) else None
    if not isinstance(weights, Mapping):
        return None
    bits, kind = weights.get("num_bits"), str(weights.get("type", "int")).lower()
    if kind == "float":
        return _FLOAT_BITS.get(bits) if isinstance(bits, int) else None
    return _INT_BITS.get(bits) if isinstance(bits, int) else None
