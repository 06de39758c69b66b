"""Checkpoint size from safetensors headers: the exact bytes of the weights beside a ``config.json``.

Only the 8-byte header length and the JSON header of each file are read; tensor data never is.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from aicap.sizing.core.documents import MAX_DOCUMENT_BYTES, load_json
from aicap.sizing.core.errors import InputError, excerpt

_SAFETENSORS_BYTES: dict[str, float] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
    "F4": 0.5, "C64": 8, "I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
#: Largest total a checkpoint's headers may describe (1 PiB); beyond it the headers are not a real checkpoint's.
_MAX_CHECKPOINT_BYTES = 2**50


def checkpoint_bytes(folder: Path) -> float | None:
    """Exact weight bytes from safetensors headers beside a config, or ``None``.

    Uses ``model.safetensors.index.json``'s ``metadata.total_size`` when present; otherwise sums
    ``prod(shape) · bytes(dtype)`` over the JSON header of each ``*.safetensors`` file (the first
    ``8 + N`` bytes, where N is the little-endian u64 at offset 0; N above 16 MiB is refused).

    Raises
    ------
    InputError
        For an unreadable file, a truncated or malformed header, or a tensor entry whose ``dtype``
        or ``shape`` is missing or of the wrong type (naming the file, the tensor and the field).
    """
    index = folder / "model.safetensors.index.json"
    try:
        has_index = index.is_file()
    except OSError:
        has_index = False
    if has_index:
        doc = load_json(index)
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        total = meta.get("total_size") if isinstance(meta, dict) else None
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, int | float) or not 0 < total <= _MAX_CHECKPOINT_BYTES:
                raise InputError(f"{index}: metadata.total_size: expected a positive number of bytes, got {excerpt(total)}")
            return float(total)
    try:
        files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    except OSError:
        return None
    if not files:
        return None
    total_bytes = sum(_safetensors_bytes(f) for f in files)
    if total_bytes > _MAX_CHECKPOINT_BYTES:
        raise InputError(f"{folder}: safetensors headers describe more than 1 PiB of weights; not a real checkpoint")
    return float(total_bytes)


def _safetensors_bytes(f: Path) -> float:
    """Bytes of the tensors listed in one safetensors file's header."""
    try:
        with f.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError(f"{f}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_DOCUMENT_BYTES:
                raise InputError(f"{f}: safetensors header length {n} is over the 16 MiB limit (not a safetensors file?)")
            raw = fh.read(n)
    except OSError as exc:
        raise InputError(f"{f}: cannot read: {exc.strerror or exc}") from None
    if len(raw) < n:
        raise InputError(f"{f}: truncated safetensors header ({len(raw)} of {n} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{f}: malformed safetensors header (not UTF-8 JSON)") from None
    header = load_json(f, text)
    if not isinstance(header, dict):
        raise InputError(f"{f}: malformed safetensors header: expected a JSON object of tensors")
    total = 0.0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        where = f"{f}: tensor {excerpt(name)}"
        if not isinstance(t, dict):
            raise InputError(f"{where}: expected an object with 'dtype' and 'shape', got {excerpt(t)}")
        dtype, shape = t.get("dtype"), t.get("shape")
        if not isinstance(dtype, str) or dtype not in _SAFETENSORS_BYTES:
            raise InputError(f"{where}: dtype: unknown {excerpt(dtype)}; known: {', '.join(_SAFETENSORS_BYTES)}")
        if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
            raise InputError(f"{where}: shape: expected a list of non-negative integers, got {excerpt(shape)}")
        count = math.prod(shape)
        if count > _MAX_CHECKPOINT_BYTES:
            raise InputError(f"{where}: shape: {excerpt(shape)} has more than 2**50 elements; not a real checkpoint")
        total += count * _SAFETENSORS_BYTES[dtype]
    return total
