"""Numeric formats: their storage size and the compute path they use.

Bytes per element are definitions of the formats, not measurements, so they live here rather than
in the catalogue. Quantisation group overheads (scales, zero points) are runtime conventions and
come from ``hardware_db/data/runtime.yaml``.
"""

from __future__ import annotations

from typing import Literal, get_args

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "nvfp4", "mxfp4"]
"""A numeric format name as it appears in catalogues, cases and options."""

WeightDtype = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "nvfp4", "mxfp4"]
"""A format weights can be stored in (:data:`WEIGHT_DTYPES`)."""

#: Storage bytes per element, before any quantisation scale overhead.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    # 4-bit floats (E2M1). ``fp4`` names the tensor-core rate in device peaks; the storage formats add
    # their block scales (runtime.yaml): NVFP4 one FP8 scale per 16 values, MXFP4 one E8M0 per 32.
    "fp4": 0.5,
    "nvfp4": 0.5,
    "mxfp4": 0.5,
}

#: Weight formats stored as 4-bit floats with block scales; they multiply on the ``fp4`` tensor path.
FP4_FORMATS: frozenset[str] = frozenset({"nvfp4", "mxfp4"})

KvDtype = Literal["fp32", "bf16", "fp16", "fp8", "int8"]

WEIGHT_DTYPES: tuple[str, ...] = get_args(WeightDtype)
KV_DTYPES: tuple[str, ...] = get_args(KvDtype)


def storage_formats(weights_dtype: str, peaks: dict[str, float], kv_dtype: str | None = None) -> tuple[str, str]:
    """Weight and KV-cache formats a device can hold, given the requested weight format.

    16-bit weights fall back bf16 → fp16 → fp32 on a device without bf16 (T4, V100). Unless given, the KV
    cache follows the weights: fp8 stays fp8, 16/32-bit floats keep their format, and int8/int4
    weight-only models keep a 16-bit cache (bf16, or fp16 where the device lacks bf16).
    """
    w = weights_dtype
    if w in {"bf16", "fp16"} and w not in peaks:
        w = next((d for d in ("bf16", "fp16", "fp32") if d in peaks), w)
    fp4_kv = "fp8" if "fp8" in peaks else "bf16"  # weights quantised to FP4 (NVFP4 exports) come with an FP8 cache where it runs
    kv = kv_dtype or (w if w in {"fp8", "bf16", "fp16", "fp32"} else fp4_kv if w in FP4_FORMATS else "bf16")
    if kv == "bf16" and "bf16" not in peaks and "fp16" in peaks:
        kv = "fp16"
    return w, kv


def compute_dtype(weights_dtype: str, peaks: dict[str, float]) -> str:
    """Return the dtype whose tensor-core peak bounds the matrix multiplies.

    fp8 weights run fp8 GEMMs (weights and activations in fp8, as TensorRT-LLM's fp8 mode does).
    int8 and int4 are weight-only: weights are de-quantised and multiplied in 16-bit, the way
    gpt-fast, llama.cpp-style and AWQ/GPTQ kernels run. A device without the preferred format
    falls back to bf16, then fp16, then fp32.

    Parameters
    ----------
    weights_dtype
        Storage format of the weights.
    peaks
        The device's dense peaks, keyed by dtype (TFLOP/s).

    Returns
    -------
    str
        A key of ``peaks``.
    """
    low = ["fp4", "bf16", "fp16", "fp32"]  # W4A4 on FP4 tensor cores, else weight-only de-quantisation to 16 bit
    preferred = {"fp8": ["fp8", "bf16", "fp16", "fp32"], "fp32": ["fp32"], "fp16": ["fp16", "bf16", "fp32"], "nvfp4": low, "mxfp4": low}
    for name in preferred.get(weights_dtype, ["bf16", "fp16", "fp32"]):
        if name in peaks:
            return name
    return next(iter(peaks))


def checkpoint_kv(weights_dtype: str, checkpoint_dtype: str | None, native_dtype: str) -> str | None:
    """The KV-cache format of a model served in its quantised checkpoint's format, unless asked otherwise.

    The engines keep the cache at the model's own dtype (vLLM and SGLang ``kv_cache_dtype='auto'``) whatever
    the weights are stored in, so a model served as released (``weights_dtype == checkpoint_dtype``) caches
    in its 16-bit dtype (bf16 for an fp32 model).

    Parameters
    ----------
    weights_dtype
        The format the weights are served in.
    checkpoint_dtype
        The format the checkpoint stores them in where it is quantised (``None``: the model's own dtype).
    native_dtype
        The model's own dtype (``torch_dtype``).

    Returns
    -------
    str or None
        ``bf16`` or ``fp16``; ``None`` where the weights are served in another format, for
        :func:`storage_formats` to decide.
    """
    if checkpoint_dtype is None or weights_dtype != checkpoint_dtype:
        return None
    return native_dtype if native_dtype in {"bf16", "fp16"} else "bf16"
