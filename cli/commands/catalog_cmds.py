"""``aicap models``, ``aicap hardware`` and ``aicap instances``: browse the catalogues."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from aicap.cli.render import Cents, Format, FormatOpt, Table, View, emit
from aicap.cli.state import catalogue, guarded, warn_shadowing

models_app = typer.Typer(help="Model catalogue: list and show architectures with derived parameter counts.", no_args_is_help=True)
hardware_app = typer.Typer(help="Device catalogue: accelerators and CPUs with datasheet figures and sources.", no_args_is_help=True)
engines_app = typer.Typer(
    help="Serving-engine profiles: memory policy, scheduler defaults, devices and formats, with sources.", no_args_is_help=True
)
instances_app = typer.Typer(help="Cloud instance catalogue with prices, price dates and sources.", no_args_is_help=True)


@models_app.command("list")
@guarded
def models_list(
    fmt: FormatOpt = Format.table,
    kind: Annotated[str | None, typer.Option(help="Only this kind: decoder, encoder or generic.")] = None,
    family: Annotated[str | None, typer.Option(help="Only this family (llama, mixtral, bert, ...).")] = None,
) -> None:
    """List models, grouped by family and ordered by size."""
    from aicap.sizing.perf.describe import attention_kind, params

    cat = catalogue()
    kind = _choice("--kind", kind, ["decoder", "encoder", "generic"])
    family = _choice("--family", family, sorted({m.family for m in cat.models.values()}))
    rows = []
    for m in cat.models.values():
        if (kind and m.kind != kind) or (family and m.family != family):
            continue
        total, active = params(m)
        layers = getattr(m, "num_layers", None)
        ctx = getattr(m, "max_context", None)
        rows.append((m.family, total, [m.id, m.kind, round(total / 1e9, 3), round(active / 1e9, 3), layers, attention_kind(m), ctx]))
    rows.sort(key=lambda r: (r[0], r[1]))
    cols = ["id", "kind", "params_b", "active_params_b", "layers", "attention", "max_context"]
    doc = [dict(zip(cols, r[2], strict=True)) for r in rows]
    emit(View(doc, [Table("Models", cols, [r[2] for r in rows])]), fmt)


@models_app.command("show")
@guarded
def models_show(
    model: Annotated[str, typer.Argument(help="Model id, or a path to a config.json / model YAML.")], fmt: FormatOpt = Format.table
) -> None:
    """Show one model: architecture, derived and published parameter counts, KV-cache bytes per token."""
    from aicap.sizing.perf.describe import describe_model

    spec = catalogue().model(model)
    warn_shadowing(model, spec)
    doc = describe_model(spec)
    emit(View(doc, [_kv_table(f"Model {doc['id']}", doc)]), fmt)


@hardware_app.command("list")
@guarded
def hardware_list(
    fmt: FormatOpt = Format.table,
    kind: Annotated[str | None, typer.Option(help="Only this kind: gpu, tpu, cpu or accelerator.")] = None,
    vendor: Annotated[str | None, typer.Option(help="Only this vendor: nvidia, amd, google, intel, aws.")] = None,
) -> None:
    """List devices by vendor, then by 16-bit peak."""
    cat = catalogue()
    kind = _choice("--kind", kind, ["gpu", "tpu", "cpu", "accelerator"])
    vendor = _choice("--vendor", vendor, sorted({d.vendor for d in cat.devices.values()}))
    cols = ["id", "kind", "memory_gib", "memory_bw_gbps", "bf16_tflops", "fp8_tflops", "link", "link_gbps", "domain"]
    rows = []
    for d in cat.devices.values():
        if (kind and d.kind != kind) or (vendor and d.vendor != vendor):
            continue
        p16 = d.peak_tflops.get("bf16") or d.peak_tflops.get("fp16")
        rows.append((d.vendor, -(p16 or 0), [d.id, d.kind, d.memory_gib, d.memory_bw_gbps, p16, d.peak_tflops.get("fp8"),
                                             d.interconnect.kind, None if d.interconnect.kind == "none" else d.interconnect.bw_gbps,
                                             d.interconnect.domain_size]))  # fmt: skip  # no link: its bw_gbps is a placeholder
    rows.sort(key=lambda r: (r[0], r[1]))
    doc = [dict(zip(cols, r[2], strict=True)) for r in rows]
    emit(View(doc, [Table("Devices (dense peaks; bf16 column shows fp16 where bf16 is absent)", cols, [r[2] for r in rows])]), fmt)


@hardware_app.command("show")
@guarded
def hardware_show(
    device: Annotated[str, typer.Argument(help="Device id (see `aicap hardware list`).")], fmt: FormatOpt = Format.table
) -> None:
    """Show one device with every figure and its sources."""
    from aicap.sizing.perf.describe import describe_device

    doc = describe_device(catalogue().device(device))
    emit(View(doc, [_kv_table(f"Device {doc['id']}", doc)]), fmt)


@instances_app.command("list")
@guarded
def instances_list(
    fmt: FormatOpt = Format.table,
    cloud: Annotated[str | None, typer.Option(help="Only this cloud: aws, gcp, azure or on-prem (owned machines).")] = None,
    device: Annotated[str | None, typer.Option("--hardware", help="Only instances with this device id.")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Only instances at or under this on-demand USD/hour (for an on-prem machine, which no cloud rents, its cost of owning it).")] = None,
) -> None:  # fmt: skip
    """List instances by cloud, then by on-demand price per device-hour."""
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.perf.describe import describe_instance

    cat = catalogue()
    cloud = _choice("--cloud", cloud, ["aws", "gcp", "azure", "on-prem"])
    if device:
        cat.device(device)
    region = _choice("--region", region, sorted({i.region for i in cat.instances.values() if not cloud or i.cloud == cloud}))
    if max_price is not None and not (math.isfinite(max_price) and max_price > 0):
        raise InputError(f"--max-price {max_price}: must be positive")
    docs = [
        describe_instance(i)
        for i in cat.instances.values()
        if (not cloud or i.cloud == cloud) and (not device or i.device == device) and (not region or i.region == region)
        and (max_price is None or (i.price_usd_per_hour.on_demand or i.price_usd_per_hour.owned or math.inf) <= max_price)
    ]  # fmt: skip
    docs.sort(key=lambda d: (d["cloud"], d["usd_per_device_hour"] if d["usd_per_device_hour"] is not None else math.inf, d["name"]))
    cols = ["cloud", "name", "device", "devices", "region", "usd_per_hour", "usd_per_device_hour", "spot", "reserved_1y", "reserved_3y",
            "owned", "price_date"]  # fmt: skip

    def usd(x: float | None) -> float | None:  # to the cent from $1 (113.93, where a plain cell gives 114); 0.526 below it
        return None if x is None else Cents(x) if x >= 1 else x

    prices = [d["price_usd_per_hour"] for d in docs]
    rows = [[d["cloud"], d["name"], d["device"], d["devices"], d["region"], usd(p["on_demand"]), usd(d["usd_per_device_hour"]),
             usd(p["spot"]), usd(p["reserved_1y"]), usd(p["reserved_3y"]), usd(p["owned"]), d["price_date"]]
            for d, p in zip(docs, prices, strict=True)]  # fmt: skip
    caption = ("USD per device-hour: on demand; for on-prem machines (owned hardware no cloud rents), the cost of owning it. owned: "
               "the same hardware bought (hardware_db/ownership). Sources of every price: `aicap instances show NAME` (or -f json).")  # fmt: skip
    emit(View(docs, [Table("Instances (USD/hour, list prices)", cols, rows, caption)]), fmt)


@instances_app.command("show")
@guarded
def instances_show(
    instance: Annotated[str, typer.Argument(help="Instance type (see `aicap instances list`).")], fmt: FormatOpt = Format.table
) -> None:
    """Show one instance type with every price, its date and its sources, and its network."""
    from aicap.hardware_db.loader import ownership
    from aicap.sizing.perf.describe import describe_instance

    inst = catalogue().instance(instance)
    doc = describe_instance(inst)
    buy = ownership().price(inst.device)
    if doc["price_usd_per_hour"].get("owned") is not None and buy is not None:  # the owned price is not the instance row's
        doc["owned_basis"] = {"device_usd": buy.usd, "basis": buy.basis, "date": buy.date, "source": buy.source,
                              "derivation": "the purchase (and a host share) over the depreciation years, plus power and space "
                                            "(sizing/core/ownership.py; hardware_db/ownership/ownership.yaml)"}  # fmt: skip
    emit(View(doc, [_kv_table(f"Instance {doc['name']}", doc)]), fmt)


@engines_app.command("list")
@guarded
def engines_list(fmt: FormatOpt = Format.table) -> None:
    """List serving-engine profiles and the limits each sets (the default engine first)."""
    cat = catalogue()
    default = cat.runtime_spec.engine
    cols = ["id", "engine", "version", "memory", "max_running", "step_tokens", "runs_on", "default"]
    docs, rows = [], []
    g = cat.runtime_for("generic")
    generic = {"id": "generic", "name": "catalogue runtime conventions", "version": None, "memory_policy": g.kv_memory_policy,
               "memory_fraction": g.usable_memory_fraction, "max_running_requests": g.max_batch, "max_prefill_tokens": g.max_prefill_tokens,
               "source": g.source, "default": default == "generic"}  # fmt: skip
    docs.append(generic)
    rows.append(["generic", generic["name"], "-", f"{g.usable_memory_fraction:.0%} of memory", f"{g.max_batch:,}", f"{g.max_prefill_tokens:,}",
                 "any", "yes" if default == "generic" else ""])  # fmt: skip
    for e in sorted(cat.engines.values(), key=lambda e: (e.id != default, e.id)):
        mem = f"{e.memory.fraction:.0%} of " + ("memory" if e.memory.policy == "total" else "free memory for KV")
        ruled = " (by device)" if e.device_rules else ""
        running = f"{e.scheduler.max_running_requests:,}" + (ruled if any(r.max_running_requests for r in e.device_rules) else "")
        step = f"{e.scheduler.max_prefill_tokens:,}" + (ruled if any(r.max_prefill_tokens for r in e.device_rules) else "")
        docs.append({**e.model_dump(mode="json"), "default": e.id == default})
        rows.append([e.id, e.name, e.version, mem, running, step, ", ".join(e.runs_on), "yes" if e.id == default else ""])
    emit(View(docs, [Table("Serving engines (aicap engines show ID for sources)", cols, rows)]), fmt)


@engines_app.command("show")
@guarded
def engines_show(
    engine: Annotated[str, typer.Argument(help="Engine id (see `aicap engines list`).")], fmt: FormatOpt = Format.table
) -> None:
    """Show one engine profile with every default and its source (``generic``: the catalogue's runtime conventions)."""
    cat = catalogue()
    if engine == "generic":  # not a profile: the conventions every engine starts from (hardware_db/data/runtime.yaml)
        doc = {"id": "generic", "name": "catalogue runtime conventions", **cat.runtime_for("generic").model_dump(mode="json")}
    else:
        doc = cat.engine(engine).model_dump(mode="json")
    emit(View(doc, [_kv_table(f"Engine {doc['id']}", doc)]), fmt)


def _choice(flag: str, value: str | None, choices: list[str]) -> str | None:
    """The catalogue's spelling of a filter value, matched without regard to case (as ``-f JSON`` is).

    A value that matches nothing is refused, listing the valid ones.
    """
    from aicap.sizing.core.errors import InputError, excerpt

    if value is None:
        return None
    for c in choices:
        if c.casefold() == value.casefold():
            return c
    raise InputError(f"{flag} {excerpt(value)}: valid choices: {', '.join(choices)}")


def _kv_table(title: str, doc: dict[str, object]) -> Table:
    rows: list[list[object]] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and any(isinstance(x, dict) for x in value):  # a list of records: a row per field, numbered
            for i, x in enumerate(value):
                walk(f"{prefix}.{i}", x)
        elif isinstance(value, list):
            rows.append([prefix, "; ".join(str(x) for x in value)])
        else:
            rows.append([prefix, value])

    walk("", doc)
    return Table(title, ["field", "value"], rows, left=True)
