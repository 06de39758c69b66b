"""One training job priced end to end: memory, step time, days, device-hours, dollars and energy.

From a token budget ``T`` and the predicted throughput ``R = tokens/s/device · D``:

* steps ``= ⌈T / B⌉`` for ``B`` tokens per step; wall clock ``= steps · t_step`` (days = s / 86,400);
* device-hours ``= D · wall clock (h)``; instances ``= ⌈D / devices per instance⌉``;
* cost per pricing model ``= instances · price per instance-hour · wall clock (h)`` (whole
  instances are paid for, idle devices included); ``owned`` is the job's hours of what owning the
  same hardware costs per hour (:mod:`aicap.sizing.core.ownership`), its share of a bought fleet;
* energy ``= D · TDP · wall clock (h) / 1000`` kWh: an upper bound at board power, before PUE.

The error band scales throughput by ``1 ± e`` with ``e`` the p90 leave-one-source-out error of
the training model on published runs (``accuracy`` in the factors file); times and costs move
inversely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.specs.instance import PricingModel
from aicap.sizing.train.estimate import Evaluation
from aicap.sizing.train.memory import TERMS, MemoryColumns
from aicap.sizing.train.setup import TrainSetup

SCHEMA_VERSION = 1
PRICINGS: tuple[PricingModel, ...] = ("on_demand", "spot", "reserved_1y", "reserved_3y", "owned")


class MemoryReport(BaseModel):
    """Per-device memory in GiB."""

    model_config = ConfigDict(frozen=True)

    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float
    total: float
    capacity: float
    host_offload: float
    host_capacity: float | None


class StepReport(BaseModel):
    """Seconds of one step by term (they sum to ``step_time_s``)."""

    model_config = ConfigDict(frozen=True)

    compute: float
    tensor_parallel: float
    context_parallel: float
    expert_parallel: float
    pipeline_p2p: float
    pipeline_bubble: float
    data_parallel_exposed: float
    optimizer: float


class ErrorBand(BaseModel):
    """Low and high ends of throughput and wall clock at the model's p90 out-of-source error."""

    model_config = ConfigDict(frozen=True)

    error_pct: float
    tokens_per_s_per_device: tuple[float, float]
    wall_clock_days: tuple[float, float] | None
    basis: str


class TrainResult(BaseModel):
    """Everything ``aicap train`` reports for one job (the JSON document, ``schema_version`` 1)."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    model: str
    hardware: str
    instance: str | None
    instances: int | None
    devices: int
    layout: dict[str, object]
    fits: bool
    memory_gib_per_device: MemoryReport
    advice: list[str]
    step_time_s: float
    step_breakdown_s: StepReport
    tokens_per_step: int
    tokens_per_s_per_device: float
    tokens_per_s: float
    tflops_per_device: float
    mfu_pct: float
    hfu_pct: float
    mfu_palm_pct: float
    tokens: float | None
    steps: int | None
    wall_clock_days: float | None
    device_hours: float | None
    usd: dict[str, float | None]
    usd_per_device_hour: dict[str, float | None]
    price_date: str | None = Field(None, description="the date the instance's hourly prices were read (ISO 8601); none without an instance")
    energy_kwh: float | None
    error_band: ErrorBand
    efficiency_calibrated: bool
    training_measured: bool = Field(True, description="whether the step model was fitted on published runs of the device's family")
    notes: list[str] = Field(default_factory=list, description="what the figures assume that the inputs did not say")


def advice(mem: MemoryColumns, i: int, setup: TrainSetup, *, qlora: bool = True) -> list[str]:
    """What to cut when a layout does not fit: the two largest terms, each with remedies not yet applied.

    ``qlora``: whether the device runs QLoRA's NF4 base (``TrainingFactors.nf4_vendors``); where not, it is not suggested.
    """
    if bool(mem.fits[i]):
        return []
    if mem.total[i] <= mem.capacity and mem.host_capacity is not None:
        return [f"offloaded states need {float(mem.host[i]):.1f} GiB of host memory per device, the instance has "
                f"{mem.host_capacity:.1f} GiB per device: offload less, shard more, or a larger instance"]  # fmt: skip
    sharded = setup.zero_stage >= 3
    remedies: dict[str, list[str]] = {
        "optimizer": (["shard optimizer states over more data-parallel devices"] if setup.zero_stage >= 1 else ["--zero 1"])
        + (["--optimizer adam8bit"] if setup.optimizer == "adamw" else []) + (["--offload optimizer"] if setup.offload == "none" else []),
        "gradients": ([] if setup.zero_stage >= 2 else ["--zero 2"]) + ["raise --tp/--pp"],
        "weights": ([] if sharded else ["--fsdp full"]) + ["raise --tp/--pp"]
        + (([f"--method lora{' or qlora' if qlora else ''}"] if setup.method == "full" else [])
           + (["--method qlora (4-bit base)"] if setup.method == "lora" and qlora else []))
        + ([] if setup.offload == "all" else ["--offload all"]),
        "activations": ([] if setup.recompute == "full" else ["--recompute full"])
        + (["lower --micro-batch"] if setup.micro_batch > 1 else []) + ["split the sequence (--tp with sequence parallel, --cp)"],
        "overhead": ["a device with more memory"],
    }  # fmt: skip
    terms = sorted(TERMS, key=lambda t: -float(getattr(mem, t)[i]))
    over = float(mem.total[i] - mem.capacity)
    lines = [f"needs {float(mem.total[i]):.1f} GiB per device of {mem.capacity:g} GiB ({over:.1f} GiB over)"]
    for term in terms[:2]:
        lines.append(f"{term} {float(getattr(mem, term)[i]):.1f} GiB: " + ", ".join(remedies[term] or ["a device with more memory"]))
    return lines


@dataclass(frozen=True)
class Pricing:
    """The instance a job is billed on (``None``: no instance carries the device; no dollars)."""

    instance: InstanceSpec | None
    tdp_w: float | None
    calibrated: bool
    measured: bool = True  # whether the device's family has a scored published training run


def result(model_id: str, hardware: str, setup: TrainSetup, ev: Evaluation, i: int, pricing: Pricing, tokens: float | None,
           error_pct: float, basis: str, notes: list[str] | None = None, *, qlora: bool = True) -> TrainResult:  # fmt: skip
    """Assemble the report of row ``i`` of an evaluation (equations in the module docstring); ``notes`` are passed on.

    ``qlora``: whether the device runs QLoRA's NF4 base, for the remedies of a layout that does not fit (:func:`advice`).
    """
    mem, st = ev.memory, ev.step
    d = setup.devices
    t_step = float(ev.step_time_s[i])
    tps = float(ev.tokens_per_s_per_device[i])
    batch = setup.batch_tokens
    steps = None if tokens is None else math.ceil(tokens / batch)
    seconds = None if steps is None else steps * t_step
    hours = None if seconds is None else seconds / 3600.0
    inst = pricing.instance
    n_inst = None if inst is None else math.ceil(d / inst.devices)
    usd: dict[str, float | None] = {}
    per_device_hour: dict[str, float | None] = {}
    for p in PRICINGS:
        price = None if inst is None else inst.price(p)
        per_device_hour[p] = None if price is None or inst is None else price / inst.devices
        usd[p] = None if price is None or hours is None or n_inst is None else n_inst * price * hours
    said = list(notes or [])
    if inst is not None and n_inst is not None and n_inst * inst.devices > d:
        idle = n_inst * inst.devices - d
        said.append(f"billed for {n_inst} whole {inst.name} ({n_inst * inst.devices} devices), {idle} of them idle: the cost is "
                    f"device-hours × the per-device rate × {n_inst * inst.devices / d:.3g}")  # fmt: skip
    if steps is not None and tokens is not None and tokens > 0 and steps * batch > 1.05 * tokens:
        said.append(f"{tokens:,.0f} tokens is not a whole number of global batches of {batch:,} tokens: the figures are for "
                    f"{steps:,} step(s), {steps * batch:,} tokens (lower --global-batch-tokens to train on fewer)")  # fmt: skip
    if float(mem.host[i]) > 0 and mem.host_capacity is None:
        where = "no instance" if pricing.instance is None else f"{pricing.instance.name}'s host memory is not in the catalogue"
        said.append(f"offloaded states ({float(mem.host[i]):.1f} GiB per device) are not checked against host memory: {where}")
    e = error_pct / 100.0
    band = ErrorBand(
        error_pct=error_pct,
        tokens_per_s_per_device=(tps * (1.0 - e), tps * (1.0 + e)),
        wall_clock_days=None if seconds is None else (seconds / 86400.0 / (1.0 + e), seconds / 86400.0 / max(1.0 - e, 1e-9)),
        basis=basis,
    )
    return TrainResult(
        model=model_id,
        hardware=hardware,
        instance=None if inst is None else inst.name,
        instances=n_inst,
        devices=d,
        layout={**setup.model_dump(), "zero": setup.zero_stage},  # FSDP shards as ZeRO-3 does: say so
        fits=bool(mem.fits[i]),
        memory_gib_per_device=MemoryReport(
            **{t: float(getattr(mem, t)[i]) for t in TERMS},
            total=float(mem.total[i]),
            capacity=mem.capacity,
            host_offload=float(mem.host[i]),
            host_capacity=mem.host_capacity,
        ),
        advice=advice(mem, i, setup, qlora=qlora),
        step_time_s=t_step,
        step_breakdown_s=StepReport(
            compute=float(st.compute[i]),
            tensor_parallel=float(st.tensor_parallel[i]),
            context_parallel=float(st.context_parallel[i]),
            expert_parallel=float(st.expert_parallel[i]),
            pipeline_p2p=float(st.pipeline_p2p[i]),
            pipeline_bubble=float(st.bubble[i]),
            data_parallel_exposed=float(st.data_parallel_exposed[i]),
            optimizer=float(st.optimizer[i]),
        ),
        tokens_per_step=batch,
        tokens_per_s_per_device=tps,
        tokens_per_s=tps * d,
        tflops_per_device=float(ev.tflops_per_device[i]),
        mfu_pct=float(ev.mfu_pct[i]),
        hfu_pct=float(ev.hfu_pct[i]),
        mfu_palm_pct=float(ev.mfu_palm_pct[i]),
        tokens=tokens,
        steps=steps,
        wall_clock_days=None if seconds is None else seconds / 86400.0,
        device_hours=None if hours is None else hours * d,
        usd=usd,
        usd_per_device_hour=per_device_hour,
        price_date=None if inst is None else inst.price_date.isoformat(),
        energy_kwh=None if hours is None or pricing.tdp_w is None else d * pricing.tdp_w * hours / 1000.0,
        error_band=band,
        efficiency_calibrated=pricing.calibrated,
        training_measured=pricing.measured,
        notes=said,
    )
