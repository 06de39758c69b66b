"""Plain, JSON-ready descriptions of catalogue entries with their derived quantities.

These are what ``aicap models|hardware|instances`` print; keeping them in the library lets a Python
user get the same numbers (``describe_model(cat.model("llama-3.1-70b"))``).
"""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.specs import DeviceSpec, InstanceSpec
from aicap.sizing.core.specs.model import AnyModel, DecoderModel, GenericModel
from aicap.sizing.perf.params import inventory, kv_cache_bytes_per_token, sequence_state_bytes


def attention_kind(model: AnyModel) -> str:
    """Name the attention variant: MHA, GQA, MQA or MLA (with sliding window when present)."""
    if model.kind == "generic":
        return "-"
    if isinstance(model, DecoderModel) and model.mla is not None:
        kind = "MLA"
    elif model.kv_heads == model.num_heads:
        kind = "MHA"
    elif model.kv_heads == 1:
        kind = "MQA"
    else:
        kind = "GQA"
    if isinstance(model, DecoderModel) and model.sliding_window:
        kind += f"+SWA{model.sliding_window}" + ("/global" if model.global_every else "")
    if isinstance(model, DecoderModel) and model.linear_attention is not None:
        kind += f"+GDN{model.linear_attention.layers}/{model.num_layers}"  # Gated DeltaNet on that many layers
    return kind


def params(model: AnyModel) -> tuple[float, float]:
    """Derived (total, active) parameter counts; generic models report their published count."""
    if model.kind == "generic":
        return float(model.published_params), float(model.published_params)
    inv = inventory(model)
    return inv.total, inv.active


def _count(n: float | None) -> float | int | None:
    """A parameter count as an integer where it is one (8.03e9 is written 8030000000, not 8030000000.0)."""
    return int(n) if n is not None and float(n).is_integer() else n


def describe_model(model: AnyModel) -> dict[str, Any]:
    """Architecture, derived parameter counts and KV-cache bytes per token of a model."""
    total, active = params(model)
    out: dict[str, Any] = {"id": model.id, "name": model.name, "kind": model.kind, "family": model.family}
    out["params"] = {
        "derived": round(total),
        "derived_active": round(active),
        "published": _count(model.published_params),
        "published_active": _count(model.published_active_params) if isinstance(model, DecoderModel) else None,
        "derived_vs_published_pct": None if not model.published_params else round(100 * (total / model.published_params - 1), 3) + 0.0,
    }
    if model.kind == "generic":
        out.update(flops_per_item=model.flops_per_item, item=model.item, native_dtype=model.native_dtype)
    else:
        arch = model.model_dump(exclude={"id", "name", "kind", "family", "source", "published_params", "published_params_source",
                                         "published_active_params", "notes", "checkpoint_bytes", "checkpoint_dtype"},
                                exclude_none=True)  # fmt: skip
        if getattr(model, "mla", None) is None:  # MLA's head dimensions are its own (mla.*); hidden/heads would mislead
            arch["head_dim"] = model.head_size
        arch["num_kv_heads"] = model.kv_heads
        out["attention"] = attention_kind(model)
        out["architecture"] = arch
        out["native_dtype"] = model.native_dtype
        if model.checkpoint_dtype is not None:
            out["checkpoint_dtype"] = model.checkpoint_dtype
        if model.kind == "decoder":
            out["kv_cache_bytes_per_token"] = int(kv_cache_bytes_per_token(model, BYTES_PER_ELEMENT[model.native_dtype]))
            if isinstance(model, DecoderModel) and model.linear_attention is not None:
                out["state_bytes_per_sequence"] = int(sequence_state_bytes(model))
    out["weights_gib_native"] = round(total * BYTES_PER_ELEMENT[model.native_dtype] / 2**30, 3)
    if not isinstance(model, GenericModel) and model.checkpoint_bytes:
        out["checkpoint_bytes"] = int(model.checkpoint_bytes)
    out["source"] = model.source
    out["published_params_source"] = model.published_params_source
    if model.notes:
        out["notes"] = model.notes
    return out


def describe_device(device: DeviceSpec) -> dict[str, Any]:
    """Datasheet facts of a device plus its ridge point (FLOP/B at the 16-bit peak)."""
    out = device.model_dump(mode="json")
    peak16 = device.peak_tflops.get("bf16") or device.peak_tflops.get("fp16") or device.peak_tflops.get("fp32", 0.0)
    out["memory_bw_tbps"] = round(device.memory_bw_gbps / 1000, 3)
    out["ridge_flop_per_byte"] = round(peak16 * 1e12 / (device.memory_bw_gbps * 1e9), 1)
    return out


def describe_instance(inst: InstanceSpec) -> dict[str, Any]:
    """An instance with its per-device price: on demand, or owned for machines no cloud rents (``priced_as`` says which)."""
    out = inst.model_dump(mode="json")
    prices = inst.price_usd_per_hour
    priced_as = "on_demand" if prices.on_demand is not None else "owned"
    hourly = prices.on_demand if prices.on_demand is not None else prices.owned
    out["priced_as"] = priced_as
    out["usd_per_device_hour"] = None if hourly is None else round(hourly / inst.devices, 4)
    return out
