"""The training library's entry points: evaluate one job, or search for the best one.

Both return :class:`~aicap.sizing.train.job.TrainResult` documents; the CLI only renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import generic_runtime
from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.specs import DeviceSpec, InstanceSpec
from aicap.sizing.core.specs.instance import PricingModel
from aicap.sizing.core.specs.model import AnyModel, DecoderModel
from aicap.sizing.train.estimate import Hardware, evaluate
from aicap.sizing.train.fabric import best_instance, fabric_of, is_full_host
from aicap.sizing.train.factors import TrainingFactors, load_factors
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.job import Pricing, TrainResult, result
from aicap.sizing.train.search import SearchOutcome, SearchSpec, check_hardware_ref, host_gib_per_device, search
from aicap.sizing.train.setup import TrainSetup, check_against_model
from aicap.sizing.train.shape import shape_of


@dataclass(frozen=True)
class Plan:
    """A searched plan: the chosen job and the best job per device type."""

    best: TrainResult
    alternatives: list[TrainResult]
    evaluated: int
    feasible: int


def resolve_hardware(
    cat: CatalogueLike, ref: str, devices: int, pricing: PricingModel = "on_demand"
) -> tuple[DeviceSpec, InstanceSpec | None]:
    """A device id or an instance name → the device and the instance the job runs (and is billed) on.

    For a bare device: when ``devices`` fit in one instance, the instance with the lowest price under
    ``pricing`` for them (whole instances billed; ties to the faster network, then the name); otherwise
    the instance carrying most of the device with the fastest network. Instances without a price
    under ``pricing`` are passed over while another one has it.

    Raises
    ------
    InputError
        For CPUs (training sizing covers accelerators).
    """
    check_hardware_ref(cat, ref)
    inst = cat.instances.get(ref)
    dev = cat.device(inst.device if inst is not None else ref)
    if dev.kind == "cpu":
        raise InputError(f"{dev.id} is a CPU; training sizing covers accelerators (GPUs, TPUs, Gaudi): see `aicap hardware list`")
    if inst is not None:
        return dev, inst
    rows = [i for i in cat.instances.values() if i.device == dev.id]
    priced = [i for i in rows if i.price(pricing) is not None] or rows
    holding = [i for i in priced if i.devices >= devices]
    if holding:

        def key(i: InstanceSpec) -> tuple[float, float, str]:
            net = 0.0 if i.network is None else i.network.gbps / i.devices
            return (i.price(pricing) or i.price_usd_per_hour.on_demand or math.inf, -net, i.name)

        return dev, min(holding, key=key)
    return dev, best_instance(dev, priced, pricing)


def _band(factors: TrainingFactors) -> tuple[float, str]:
    acc = factors.accuracy
    if acc is None:
        return 50.0, "no validation accuracy recorded; a 50% band is assumed"
    return acc.throughput_p90_pct, (f"p90 leave-one-source-out error of throughput on {acc.scored_throughput} published runs "
                                    f"(median {acc.throughput_median_pct:g}%)")  # fmt: skip


def estimate_job(cat: CatalogueLike, model: AnyModel, hardware: str, setup: TrainSetup, tokens: float | None,
                 factors: TrainingFactors | None = None, pricing: PricingModel = "on_demand") -> TrainResult:  # fmt: skip
    """Evaluate one layout of one job.

    Raises
    ------
    InputError
        When the layout does not divide the model, or spans instances without a sourced network.
    """
    factors = factors or load_factors()
    if not isinstance(model, DecoderModel):
        raise InputError(f"training sizing covers decoder models; {model.id} is an encoder or generic model (kind {model.kind})")
    check_against_model(setup, model)
    dev, inst = resolve_hardware(cat, hardware, setup.devices, pricing)
    if setup.method == "qlora" and dev.vendor not in factors.nf4_vendors:
        raise InputError(f"method qlora on {dev.id}: QLoRA's 4-bit NF4 base (bitsandbytes) has no kernels for {dev.vendor} accelerators, "
                         f"only for {', '.join(factors.nf4_vendors)} ones; valid methods on {dev.id}: full, lora")  # fmt: skip
    spread = [] if hardware in cat.instances or inst is None else spreads(cat, dev, inst, setup, pricing)
    if not spread:
        return _estimate_on(cat, model, dev, inst, setup, tokens, factors)
    # Smaller instances of the device that bill less an hour than the one that holds the job: the cheapest per token
    # that fits, their data-parallel (or pipeline) traffic crossing the instance network, as evaluated.
    runs = [_estimate_on(cat, model, dev, i, setup, tokens, factors) for i in [inst, *spread]]

    def per_token(r: TrainResult) -> float:
        price = r.instances * (cat.instances[r.instance].price(pricing) or math.inf) if r.instance and r.instances else math.inf
        return price / max(r.tokens_per_s_per_device * r.devices, 1e-12) if r.fits else math.inf

    best = min(runs, key=per_token)
    if best is not runs[0] and per_token(best) < per_token(runs[0]):
        held = runs[0]
        best.notes.append(f"{best.instances}× {best.instance} bill less per token than {held.instances}× {held.instance} for "
                          f"{setup.devices} devices, the instance network (included) carrying the traffic between them; name "
                          f"--hardware {held.instance} to size on that")  # fmt: skip
        return best
    return runs[0]


def spreads(cat: CatalogueLike, dev: DeviceSpec, held: InstanceSpec, setup: TrainSetup, pricing: PricingModel) -> list[InstanceSpec]:
    """Instance types of ``dev``, other than ``held``, whose whole count for the job bills less an hour than ``held``'s.

    ``⌈devices / n_i⌉ · price_i < ⌈devices / n_held⌉ · price_held`` for an instance of ``n_i`` devices; a type joins only
    with a network between its instances (or one instance holds the job) and with room for the tensor-parallel group
    inside one instance (``tp ≤ n_i``), so no all-reduce of a layer crosses the network.
    """
    d = setup.devices
    base = held.price(pricing)
    if base is None:
        return []
    base_hourly = math.ceil(d / held.devices) * base
    out = []
    for i in sorted(cat.instances.values(), key=lambda x: x.name):
        price = i.price(pricing)
        if i.device != dev.id or i.name == held.name or price is None or setup.tp > i.devices:
            continue
        n = math.ceil(d / i.devices)
        if n > 1 and i.network is None:
            continue
        if n * price < base_hourly - 1e-9:
            out.append(i)
    return out


def _estimate_on(cat: CatalogueLike, model: DecoderModel, dev: DeviceSpec, inst: InstanceSpec | None, setup: TrainSetup,
                 tokens: float | None, factors: TrainingFactors) -> TrainResult:  # fmt: skip
    """:func:`estimate_job` on one instance type (``None``: none in the catalogue)."""
    fabric = fabric_of(dev, inst, full_host=inst is None or is_full_host(dev, inst, cat.instances.values()))
    if setup.devices > fabric.node and fabric.network_gbs is None:
        where = f"{inst.name} has no sourced network bandwidth" if inst is not None else f"no catalogue instance carries {dev.id}"
        raise InputError(f"{setup.devices} devices span more than one instance of {fabric.node}, and {where}; "
                         f"use at most {fabric.node} devices or an instance with a network")  # fmt: skip
    host = None if inst is None else host_gib_per_device(cat, inst)
    hw = Hardware(dev, cat.efficiency_for(dev), generic_runtime(cat), fabric, host)
    ev = evaluate(shape_of(model), Grid.of([setup]), hw, factors)
    error, basis = _band(factors)
    billing = Pricing(inst, dev.tdp_w, hw.efficiency.calibrated, dev.family in factors.measured_families)
    notes = []
    if setup.tp > fabric.domain:
        notes.append(f"tensor parallel {setup.tp} spans more devices than {dev.id}'s fast link joins ({fabric.domain}): its all-reduces "
                     "run over the instance network; the search keeps TP within the link")  # fmt: skip
    if setup.ep_overlap > 0 and setup.ep == 1:
        notes.append(f"ep_overlap {setup.ep_overlap:g}: this layout has no expert-parallel all-to-all to hide (ep 1"
                     + ("" if model.moe is not None else f"; {model.id} has no experts") + ")")  # fmt: skip
    if setup.comm_sm_share > 0 and (setup.ep_overlap == 0 or setup.ep == 1):
        notes.append(f"comm_sm_share {setup.comm_sm_share:g}: compute runs on the rest of the compute units, but aicap hides only the "
                     "expert all-to-all (ep_overlap with ep > 1): here the share slows compute and hides nothing")  # fmt: skip
    if setup.mtp_depth and setup.pp > 1:
        notes.append(f"the {setup.mtp_depth} multi-token-prediction module(s) are spread over the {setup.pp} pipeline stages like the "
                     "model's layers; DeepSeek-V3 runs its module on the last stage, which then holds and computes more than this "
                     "(stage imbalance is not modelled)")  # fmt: skip
    stored = model.checkpoint_dtype
    if stored is not None and stored not in ("bf16", "fp16", "fp32"):  # a quantised release: training sizes a 16-bit base
        base = "a 4-bit NF4 base (qlora)" if setup.method == "qlora" else f"{model.native_dtype} weights, de-quantised"
        notes.append(f"{model.id} is released in {stored}; this {setup.method} run is sized with {base}, as the training "
                     "frameworks load it (a quantised checkpoint's own format is not trained in)")  # fmt: skip
    if setup.virtual_pipeline > 1 and model.num_layers % (setup.pp * setup.virtual_pipeline):
        chunks = setup.pp * setup.virtual_pipeline
        notes.append(f"{model.num_layers} layers over PP {setup.pp} × virtual pipeline {setup.virtual_pipeline} = {chunks} chunks is "
                     f"{model.num_layers / chunks:.2f} layers a chunk: Megatron-LM needs the layers to divide evenly (the model "
                     "assumes even stages)")  # fmt: skip
    return result(model.id, dev.id, setup, ev, 0, billing, tokens, error, basis, notes, qlora=dev.vendor in factors.nf4_vendors)


def plan_job(cat: CatalogueLike, spec: SearchSpec, factors: TrainingFactors | None = None) -> Plan:
    """Search for the best job (see :mod:`aicap.sizing.train.search`) and report it in full."""
    factors = factors or load_factors()
    if not isinstance(spec.model, DecoderModel):
        raise InputError(f"training sizing covers decoder models; {spec.model.id} is an encoder or generic model (kind {spec.model.kind})")
    outcome: SearchOutcome = search(cat, spec, factors)

    def full(o_inst: InstanceSpec, setup: TrainSetup) -> TrainResult:
        return estimate_job(cat, spec.model, o_inst.name, setup, spec.tokens, factors, spec.pricing)

    best = full(outcome.best.instance, outcome.best.setup)
    if not best.fits:
        raise InfeasibleError(f"internal: the chosen layout of {spec.model.id} does not fit")
    alts = [full(o.instance, o.setup) for o in outcome.per_device]
    return Plan(best, alts, outcome.evaluated, outcome.feasible)
