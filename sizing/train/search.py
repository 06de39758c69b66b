"""Search layouts × instance types × instance counts for the cheapest (or fastest) training job.

For every priced accelerator instance type the search builds one :class:`~aicap.sizing.train.grid.Grid`
of all layouts over whole-instance counts ``1, 2, 4, …`` up to ``max_devices``: tensor parallel
within the fast-link domain (dividing the heads), pipeline stages ``1 … 32`` (at most the layers),
ZeRO-1 or FSDP, no / selective / full recomputation, micro-batches ``1 … 8``, expert parallel for
MoE models, and context parallel for sequences of 16k tokens or more. Data parallel takes the rest
of the devices; a layout whose micro-batches on every replica exceed the global batch is dropped.
Memory and step time are computed for the whole grid at once; layouts that do not fit, or span
instances without a sourced network, are dropped. Where no layout of an instance type fits its devices,
the grid is evaluated again with the optimizer states offloaded to host memory (``offload: optimizer``),
if the type's host memory is catalogued: the offloaded states must fit its share per device.

Objective: with a deadline, the cheapest job that meets it; with a budget, the fastest job within
it; with both, the cheapest meeting both; with neither, the cheapest. Ties go to the faster job,
then to fewer devices, then to the instance name (deterministic).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import generic_runtime
from aicap.sizing.core.errors import InfeasibleError, InputError, did_you_mean, excerpt
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.specs.instance import PricingModel
from aicap.sizing.core.specs.model import AnyModel, DecoderModel
from aicap.sizing.train.estimate import Hardware, evaluate
from aicap.sizing.train.fabric import fabric_of, is_full_host
from aicap.sizing.train.factors import TrainingFactors
from aicap.sizing.train.grid import Col, Grid, Recipe, whole_rounds
from aicap.sizing.train.job import PRICINGS
from aicap.sizing.train.setup import OFFLOADS, RECOMPUTES, TrainSetup, check_lora_rank
from aicap.sizing.train.shape import ModelShape, shape_of

TP_CHOICES = (1, 2, 4, 8, 16)
PP_CHOICES = (1, 2, 4, 8, 16, 32)
MICRO_BATCHES = (1, 2, 4, 8)
EP_CHOICES = (1, 8, 16, 32, 64)
LONG_SEQUENCE = 16384
CLOUDS = ("aws", "gcp", "azure", "on-prem")


@dataclass(frozen=True)
class SearchSpec:
    """What to search for: the job and the constraints on its plan."""

    model: AnyModel
    tokens: float
    recipe: Recipe
    seq_len: int
    global_batch_tokens: int
    deadline_days: float | None = None
    budget_usd: float | None = None
    pricing: PricingModel = "on_demand"
    clouds: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    max_devices: int = 4096


@dataclass(frozen=True)
class Option:
    """The best job found on one instance type."""

    instance: InstanceSpec
    setup: TrainSetup
    instances: int
    days: float
    usd: float
    tokens_per_s_per_device: float


@dataclass(frozen=True)
class SearchOutcome:
    """The chosen job, the best job per device type, and how many layouts were evaluated."""

    best: Option
    per_device: list[Option]
    evaluated: int
    feasible: int


def _instances(cat: CatalogueLike, spec: SearchSpec, *, any_price: bool = False) -> list[InstanceSpec]:
    """The accelerator instances the search's filters leave, those without a ``spec.pricing`` price dropped unless ``any_price``."""
    rows = []
    for inst in cat.instances.values():
        dev = cat.devices.get(inst.device)
        if dev is None or dev.kind == "cpu" or (inst.price(spec.pricing) is None and not any_price):
            continue
        if spec.clouds and inst.cloud not in spec.clouds:
            continue
        if spec.hardware and inst.device not in spec.hardware and inst.name not in spec.hardware:
            continue
        rows.append(inst)
    return sorted(rows, key=lambda i: i.name)


def check_hardware_ref(cat: CatalogueLike, ref: str) -> None:
    """Refuse a ``--hardware`` that is neither a device id nor an instance name, naming both kinds of choice."""
    if ref in cat.instances or ref in cat.devices:
        return
    accelerators = sorted(d.id for d in cat.devices.values() if d.kind != "cpu")
    raise InputError(f"unknown hardware {excerpt(ref)}: {did_you_mean(ref, [*cat.devices, *cat.instances])}give an accelerator id "
                     f"({', '.join(accelerators)}) or an instance name (`aicap instances list`)")  # fmt: skip


def _check(cat: CatalogueLike, spec: SearchSpec, factors: TrainingFactors) -> None:
    """Refuse filters that name nothing, or leave nothing to search, with one line naming the value."""
    for ref in spec.hardware:
        check_hardware_ref(cat, ref)
        if ref in cat.instances:
            continue
        dev = cat.device(ref)
        if dev.kind == "cpu":
            raise InputError(f"--hardware {ref}: a CPU; training sizing covers accelerators (GPUs, TPUs, Gaudi)")
    for cloud in spec.clouds:
        if cloud not in CLOUDS:
            raise InputError(f"--cloud {cloud!r}: valid: {', '.join(CLOUDS)}")
    if spec.max_devices < 1:
        raise InputError(f"--max-devices {spec.max_devices}: must be at least 1")
    if isinstance(spec.model, DecoderModel):
        check_lora_rank(spec.recipe.method, spec.recipe.lora_rank, spec.model)
    if spec.global_batch_tokens < spec.seq_len:  # no layout runs a whole sequence: every one would be dropped, as "no fit"
        raise InputError(f"--global-batch-tokens {spec.global_batch_tokens:,}: below one sequence of --seq-len {spec.seq_len:,} tokens; "
                         "a step trains whole sequences")  # fmt: skip
    rows = _instances(cat, spec)
    if not rows:
        raise InputError(_no_instance(cat, spec))
    if not any(spec.recipe.precision in cat.devices[i.device].peak_tflops for i in rows):
        raise InputError(f"--precision {spec.recipe.precision}: none of the matching devices has that tensor rate")
    if spec.recipe.method == "qlora" and not any(cat.devices[i.device].vendor in factors.nf4_vendors for i in rows):
        raise InputError(f"--method qlora: QLoRA's 4-bit NF4 base (bitsandbytes) runs on {', '.join(factors.nf4_vendors)} accelerators, "
                         f"and none matches --hardware {', '.join(spec.hardware) or 'any'}; valid methods there: full, lora")  # fmt: skip
    if not any(i.devices <= spec.max_devices for i in rows):
        smallest = min(i.devices for i in rows)
        raise InputError(f"--max-devices {spec.max_devices}: the smallest matching instance holds {smallest} devices")


def _no_instance(cat: CatalogueLike, spec: SearchSpec) -> str:
    """Why no instance is left to search: the filters match none, or those they match have no price under ``spec.pricing``.

    The hint names only what would help: the pricings the matching instances do have, or, where the filters match none,
    the clouds that carry the named hardware.
    """
    filters = f"--hardware {', '.join(spec.hardware) or 'any'} and --cloud {', '.join(spec.clouds) or 'any'}"
    matching = _instances(cat, spec, any_price=True)
    if matching:
        have = sorted({p for i in matching for p in PRICINGS if i.price(p) is not None}, key=PRICINGS.index)
        return (f"no accelerator instance matching {filters} has a price under --pricing {spec.pricing}; "
                f"valid for them: {', '.join(have) or 'none'}")  # fmt: skip
    clouds = sorted({i.cloud for i in _instances(cat, replace(spec, clouds=()), any_price=True)})
    hint = f"; {', '.join(spec.hardware)} is offered on: {', '.join(clouds)}" if clouds and spec.clouds else ""
    return f"no accelerator instance matches {filters}{hint}"


def _grid(shape: ModelShape, spec: SearchSpec, inst: InstanceSpec, domain: int, *, spans: bool = True, offload: int = 0,
          node: int | None = None) -> Grid | None:  # fmt: skip
    """Layouts on 1, 2, 4, ... instances of ``inst``: as many as its network joins, or ``node`` devices without one (a TPU slice)."""
    counts = _instance_counts(spec, inst, spans, node)
    tps = [t for t in TP_CHOICES if t <= domain and shape.heads % t == 0 and (shape.kv_groups == 0 or shape.kv_groups % t == 0)]
    pps = [p for p in PP_CHOICES if p <= shape.layers]
    cps = [1, 2, 4] if spec.seq_len >= LONG_SEQUENCE else [1]
    eps = [e for e in EP_CHOICES if shape.num_experts and shape.num_experts % e == 0] if shape.moe_layers else [1]
    combos = np.array(list(itertools.product(counts, tps, pps, cps, eps, (1, 3), (0, 1, 2), MICRO_BATCHES)), dtype=np.float64)
    if combos.size == 0:
        return None
    n, tp, pp, cp, ep, zero, rc, mb = combos.T
    devices = n * inst.devices
    dp = devices / (tp * pp * cp)
    seq = float(spec.seq_len)
    batch = float(spec.global_batch_tokens)
    keep = (dp == np.floor(dp)) & (dp >= 1) & (dp * mb * seq <= batch) & (((dp * cp) % ep) == 0) & (spec.seq_len % cp == 0)
    if not keep.any():
        return None

    def col(x: Col) -> Col:
        out: Col = x[keep]
        return out

    ones = np.ones(int(keep.sum()))
    # a step is whole rounds of one micro-batch on every replica (gradient accumulation), as `train --devices` costs a
    # given batch: the global batch rounded to the nearest whole number of rounds, at least one
    rounded = whole_rounds(batch, col(dp * mb) * seq)
    return Grid(
        tp=col(tp), pp=col(pp), dp=col(dp), cp=col(cp), ep=col(ep), vp=ones, sp=(col(tp) > 1).astype(np.float64),
        zero=col(zero), shard=col(dp * cp), recompute=col(rc), micro_batch=col(mb), seq_len=ones * seq,
        batch_tokens=rounded, offload=float(offload) * ones, opt_in_bwd=0.0 * ones, flash=ones, recipe=spec.recipe,
    )  # fmt: skip


def setup_of_row(g: Grid, i: int, spec: SearchSpec) -> TrainSetup:
    """The :class:`TrainSetup` of row ``i`` of a search grid."""
    r = spec.recipe
    return TrainSetup(
        tp=int(g.tp[i]), pp=int(g.pp[i]), dp=int(g.dp[i]), cp=int(g.cp[i]), ep=int(g.ep[i]),
        zero=1, fsdp="full" if g.zero[i] >= 3 else "none", recompute=RECOMPUTES[int(g.recompute[i])],
        micro_batch=int(g.micro_batch[i]), seq_len=spec.seq_len, global_batch_tokens=int(g.batch_tokens[i]),
        precision=r.precision, optimizer=r.optimizer, master_weights=r.master_weights, method=r.method,
        offload=OFFLOADS[int(g.offload[i])], lora_rank=r.lora_rank, lora_targets=r.lora_targets, ep_overlap=r.ep_overlap,
        comm_sm_share=r.comm_sm_share, mtp_depth=r.mtp_depth,
    )  # fmt: skip


def _choose(days: Col, usd: Col, devices: Col, spec: SearchSpec) -> int | None:
    ok = np.ones(days.shape, dtype=bool)
    if spec.deadline_days is not None:
        ok &= days <= spec.deadline_days
    if spec.budget_usd is not None:
        ok &= usd <= spec.budget_usd
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    fastest_first = spec.budget_usd is not None and spec.deadline_days is None
    keys = (devices[idx], usd[idx], days[idx]) if fastest_first else (devices[idx], days[idx], usd[idx])
    return int(idx[np.lexsort(keys)[0]])


def search(cat: CatalogueLike, spec: SearchSpec, factors: TrainingFactors) -> SearchOutcome:
    """Search every priced accelerator instance type (see the module docstring).

    Raises
    ------
    InfeasibleError
        With the binding reason when nothing fits, or no job meets the deadline or budget.
    """
    shape = shape_of(spec.model)
    _check(cat, spec, factors)
    options: list[Option] = []
    evaluated = feasible = 0
    fastest: tuple[float, str] | None = None
    cheapest: tuple[float, str] | None = None
    smallest_need: tuple[float, str] | None = None
    most_devices = 0  # the largest layout evaluated: the global batch caps data parallelism below --max-devices
    batch_capped = False  # whether the batch, not one machine (no instance network) or --max-devices, capped some instance's width
    single = True  # whether every instance evaluated stays on one machine (no instance network to span)
    for inst in _instances(cat, spec):
        dev = cat.devices[inst.device]
        # A multi-host TPU slice is built of full hosts (a v6e-128 is 16 v6e-8 hosts), not of one-chip VMs.
        full_host = is_full_host(dev, inst, cat.instances.values())
        fabric = fabric_of(dev, inst, full_host=full_host)
        spans = full_host or dev.interconnect.slice_size is None
        g = _grid(shape, spec, inst, fabric.domain, spans=spans, node=fabric.node)
        if g is None:
            continue
        if spec.recipe.precision not in dev.peak_tflops or (spec.recipe.method == "qlora" and dev.vendor not in factors.nf4_vendors):
            continue
        hw = Hardware(dev, cat.efficiency_for(dev), generic_runtime(cat), fabric)
        ev = evaluate(shape, g, hw, factors)
        evaluated += len(g)
        most_devices = max(most_devices, int(g.devices.max()))
        machines = max(_instance_counts(spec, inst, spans, fabric.node), default=1)
        widest = inst.devices * machines
        batch_capped = batch_capped or int(g.devices.max()) < widest
        single = single and machines == 1
        total = ev.memory.total
        need = float(total.min())
        if smallest_need is None or need - ev.memory.capacity < smallest_need[0]:
            smallest_need = (
                need - ev.memory.capacity,
                f"{inst.name} ({dev.id}): needs {need:.1f} GiB of {ev.memory.capacity:g} GiB per device",
            )
        ok = (total <= ev.memory.capacity) & np.isfinite(ev.step_time_s)
        host = host_gib_per_device(cat, inst)
        if not ok.any() and host is not None:  # nothing fits on the devices alone: the optimizer states in host memory
            offloaded = _grid(shape, spec, inst, fabric.domain, spans=spans, offload=OFFLOADS.index("optimizer"), node=fabric.node)
            if offloaded is not None:
                ev2 = evaluate(shape, offloaded, replace(hw, host_gib_per_device=host), factors)
                evaluated += len(offloaded)
                ok2 = ev2.memory.fits & np.isfinite(ev2.step_time_s)
                if ok2.any():
                    g, ev, ok = offloaded, ev2, ok2
        if not ok.any():
            continue
        feasible += int(ok.sum())
        idx = np.flatnonzero(ok)
        devices = g.devices[idx]
        steps = np.ceil(spec.tokens / g.batch_tokens[idx])
        days = steps * ev.step_time_s[idx] / 86400.0
        n_inst = devices / inst.devices
        price = inst.price(spec.pricing)
        assert price is not None
        usd = n_inst * price * days * 24.0
        if fastest is None or float(days.min()) < fastest[0]:
            fastest = (float(days.min()), inst.name)
        if cheapest is None or float(usd.min()) < cheapest[0]:
            cheapest = (float(usd.min()), inst.name)
        j = _choose(days, usd, devices, spec)
        if j is None:
            continue
        row = int(idx[j])
        options.append(Option(inst, setup_of_row(g, row, spec), int(n_inst[j]), float(days[j]), float(usd[j]),
                              float(ev.tokens_per_s_per_device[row])))  # fmt: skip
    if not options:
        raise InfeasibleError(_reason(spec, fastest, cheapest, smallest_need, most_devices, batch_capped, single))
    best = _best(options, spec)
    per_device: dict[str, Option] = {}
    for o in sorted(options, key=lambda o: _key(o, spec)):
        per_device.setdefault(o.instance.device, o)
    return SearchOutcome(best, list(per_device.values()), evaluated, feasible)


def host_gib_per_device(cat: CatalogueLike, inst: InstanceSpec) -> float | None:
    """Host memory an instance gives each device's offloaded states [GiB]: ``host_memory_gib · cpu_usable_memory_fraction / devices``.

    ``None`` where the instance's host memory is not catalogued (offloaded states are then not checked, and not searched).
    """
    if inst.host_memory_gib is None:
        return None
    return float(inst.host_memory_gib) * generic_runtime(cat).cpu_usable_memory_fraction / inst.devices


def _instance_counts(spec: SearchSpec, inst: InstanceSpec, spans: bool, node: int | None) -> list[int]:
    """Instance counts a job may take (powers of two within --max-devices).

    One where the instances cannot span (a one-chip VM of a sliced accelerator); with no instance network, as many as
    the device's own link joins (``node`` devices: a TPU slice of full hosts over ICI, a v6e-64 being 8 v6e-8 hosts).
    """
    counts = [n for n in (2**k for k in range(17)) if n * inst.devices <= spec.max_devices]
    if not spans:
        return counts[:1]
    if inst.network is None:
        return [n for n in counts if n * inst.devices <= max(node or inst.devices, inst.devices)] or counts[:1]
    return counts


def _key(o: Option, spec: SearchSpec) -> tuple[float, float, int, str]:
    if spec.budget_usd is not None and spec.deadline_days is None:
        return (o.days, o.usd, o.setup.devices, o.instance.name)
    return (o.usd, o.days, o.setup.devices, o.instance.name)


def _best(options: Iterable[Option], spec: SearchSpec) -> Option:
    return min(options, key=lambda o: _key(o, spec))


def _reason(spec: SearchSpec, fastest: tuple[float, str] | None, cheapest: tuple[float, str] | None,
            smallest: tuple[float, str] | None, most_devices: int = 0, batch_capped: bool = True, single: bool = False) -> str:  # fmt: skip
    name = spec.model.id
    if fastest is None:
        where = f"; closest: {smallest[1]}" if smallest else ""
        return f"no layout of {name} fits in memory on any instance within {spec.max_devices} devices{where}"
    parts = []
    if spec.deadline_days is not None and fastest[0] > spec.deadline_days:
        if 0 < most_devices < spec.max_devices and batch_capped:  # the batch, not --max-devices, bounds how wide the job can go
            fix = (f"a step of {spec.global_batch_tokens:,.0f} tokens spreads over at most {most_devices:,} devices here: raise "
                   "--global-batch-tokens, or the deadline")  # fmt: skip
        elif 0 < most_devices < spec.max_devices and single:  # every instance left is one machine: no sourced network joins them
            fix = (f"no job here spans machines (the matching instances have no instance network in the catalogue), so at most "
                   f"{most_devices:,} devices: allow instances that do (--cloud, --hardware), or raise the deadline")  # fmt: skip
        elif 0 < most_devices < spec.max_devices:  # a power-of-two count of instances: the next one is over --max-devices
            fix = (f"jobs span a power-of-two count of instances, at most {most_devices:,} devices within --max-devices "
                   f"{spec.max_devices:,}: raise --max-devices (to twice that) or the deadline")  # fmt: skip
        else:
            fix = "raise --max-devices or the deadline"
        parts.append(f"the fastest job takes {fastest[0]:.3g} days (on {fastest[1]}), over the {spec.deadline_days:g}-day deadline; {fix}")
    if spec.budget_usd is not None and cheapest is not None and cheapest[0] > spec.budget_usd:
        parts.append(f"the cheapest job costs ${cheapest[0]:,.0f} (on {cheapest[1]}), over the ${spec.budget_usd:,.0f} budget")
    if not parts:
        parts.append("no job meets the deadline and the budget together")
    return "; ".join(parts)
