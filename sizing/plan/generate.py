"""Every candidate of every workload of a fleet on the allowed instance types.

Workloads are grouped by model; each distinct workload *shape* (lengths, targets, percentile,
burstiness) is evaluated once per storage format over all devices and layouts, every model's jobs in
one call (:func:`aicap.sizing.plan.evaluation.evaluate_jobs`), then the rows are expanded to each workload of that
shape and each instance type whose size admits the layout. Three prunings keep the integer program small
without changing its optimum:

* an instance type is dropped when another type of the same device, device count and availability cap
  costs no more (first by name on ties): a replica placed on it could move to the cheaper one;
* a CPU's rows in instances of one host memory are not evaluated where the same rows in no dearer
  instances of another memory hold as many requests (:func:`shadows`): the same replica for less;
* dominated candidates are dropped (:func:`~aicap.sizing.plan.candidates.prune`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment, group_runtime
from aicap.sizing.core.dtypes import checkpoint_kv
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.core.specs import DeviceSpec, InstanceSpec, ModelSpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.model import GenericModel
from aicap.sizing.core.specs.speculative import SpeculativeConfig
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.perf import memory
from aicap.sizing.plan.candidates import Candidate, DeviceOption, Job, Shape, formats
from aicap.sizing.plan.evaluation import available_cores, evaluate_jobs
from aicap.sizing.plan.layouts import MAX_SPAN, dp_attention_layouts, layouts, scale_out_bps


def cheapest_types(fleet: Fleet, insts: list[InstanceSpec], cat: CatalogueLike) -> list[InstanceSpec]:
    """Instance types not dominated by a cheaper one of the same device, device count, cap, network and host memory.

    A type with its own availability cap is never merged: two types capped at N each supply 2N (a merge
    left N). Nor are types of different networks: a disaggregated pool's floor, or a replica spanning
    instances, tells them apart; nor CPU types of different host memory, which is their devices' memory
    (:func:`device_key`; an accelerator's is its own, whatever the host has).
    """
    c = fleet.constraints
    best: dict[tuple[str, int, float, float | None, str, str, float], InstanceSpec] = {}
    for inst in insts:
        own = inst.name if inst.name in c.availability else ""  # capped on its own: a key of its own
        kind = "" if inst.network is None else inst.network.kind  # an RDMA network is not an Ethernet of the same speed
        key = (inst.device, inst.devices, c.cap(inst.name), inst.network_gbs_per_device, own, kind, device_key(cat, inst)[1])
        price = float(inst.price(c.price_model) or 0.0)
        old = best.get(key)
        if old is None or (price, inst.name) < (float(old.price(c.price_model) or 0.0), old.name):
            best[key] = inst
    keep = set(id(i) for i in best.values())
    return [i for i in insts if id(i) in keep]


#: A device as an instance type holds it: its id and the memory of each device [GiB] (a CPU's is the instance's host memory).
DevKey = tuple[str, float]


def device_key(cat: CatalogueLike, inst: InstanceSpec) -> DevKey:
    """The device of ``inst`` with the memory each of its devices holds (:meth:`InstanceSpec.memory_gib_per_device`)."""
    return inst.device, inst.memory_gib_per_device(cat.device(inst.device))


def device_of(cat: CatalogueLike, key: DevKey) -> DeviceSpec:
    """The catalogue's device of ``key``, with ``key``'s memory (a CPU in an instance with less than its socket's maximum)."""
    dev = cat.device(key[0])
    return dev if float(dev.memory_gib) == key[1] else dev.model_copy(update={"memory_gib": key[1]})


def shadows(fleet: Fleet, keys: Sequence[DevKey], by_device: Mapping[DevKey, list[InstanceSpec]],
            ws: Sequence[Workload]) -> dict[int, list[int]]:  # fmt: skip
    """Which device options' rows may stand in for another's where they hold as many slots (``b -> [a, ...]``).

    Each ``a`` is the same device with another memory per device (a CPU in instances of other host
    memory), whose instance types *cover* ``b``'s: each type of ``b`` has one of ``a`` with the same
    devices, cap and network that costs no more (the pairing :func:`cheapest_types` merges on, less the
    network where no workload asks for one: a CPU replica never spans instances), none of them capped
    by name. Where two options cover each other (equal prices), the first stands in for the second,
    never both ways. None where a workload names its instance types (it may allow ``b``'s only).
    :func:`~aicap.sizing.plan.screen.shadowed` drops ``b``'s rows that an ``a``'s match.
    """
    if any(w.instance_types is not None for w in ws):
        return {}
    c = fleet.constraints
    networked = any(w.min_network_gbps or w.network_kinds for w in ws)  # else a CPU's network is never read: it spans no instances

    def pairing(i: InstanceSpec) -> tuple[int, float | None, str | None]:  # no type here is capped by name: their caps are alike
        if not networked:
            return i.devices, None, None
        return i.devices, i.network_gbs_per_device, None if i.network is None else i.network.kind

    def covers(a: DevKey, b: DevKey) -> bool:
        if a[0] != b[0] or any(i.name in c.availability for i in (*by_device[a], *by_device[b])):
            return False
        cheapest: dict[tuple[int, float | None, str | None], float] = {}
        for i in by_device[a]:
            cheapest[pairing(i)] = min(cheapest.get(pairing(i), math.inf), float(i.price(c.price_model) or 0.0))
        return all(cheapest.get(pairing(i), math.inf) <= float(i.price(c.price_model) or 0.0) for i in by_device[b])

    out: dict[int, list[int]] = {}
    for b, kb in enumerate(keys):
        under = [a for a, ka in enumerate(keys) if a != b and covers(ka, kb) and (a < b or not covers(kb, ka))]
        if under:
            out[b] = under
    return out


#: A model whose weights at its smallest allowed format take more than this share of one instance's memory
#: may span instances: one instance would leave too little for the KV cache.
SPAN_WEIGHT_SHARE = 0.8


def _outgrows_an_instance(model: ModelSpec, dev: DeviceSpec, insts: list[InstanceSpec], ws: list[Workload], cat: CatalogueLike) -> bool:
    """Whether ``model``'s weights, at the smallest format its workloads allow on ``dev``, outgrow the largest instance of ``dev``."""
    if model.kind != "decoder" or dev.kind != "gpu":
        return False
    fmts = [f for p in {p for w in ws for p in allowed(w, model)} if (f := formats(p, dev, kv_of(model, p))) is not None]
    if not fmts:
        return False
    rt = cat.runtime_for("generic")
    smallest = min(memory.total_weight_bytes(Deployment(model, dev, cat.efficiency_for(dev), rt, 1, 1, 1, w, k)) for w, k in fmts)
    return smallest > SPAN_WEIGHT_SHARE * max(i.devices for i in insts) * dev.memory_gib * 2**30 * rt.usable_memory_fraction


def allowed(w: Workload, model: ModelSpec) -> list[str]:
    """The weight formats ``w`` may be served in (:meth:`Workload.allowed_precisions` for its model's checkpoint)."""
    return w.allowed_precisions(None if isinstance(model, GenericModel) else model.checkpoint_dtype)


def kv_of(model: ModelSpec, weights_dtype: str) -> str | None:
    """The KV format ``model`` keeps when served in ``weights_dtype``, unless a workload names one.

    16 bit where ``weights_dtype`` is the format the checkpoint was released in (:func:`checkpoint_kv`); ``None``
    (the format's own rule) otherwise.
    """
    return None if isinstance(model, GenericModel) else checkpoint_kv(weights_dtype, model.checkpoint_dtype, model.native_dtype)


def _infeasible(w: Workload, inst: InstanceSpec, reason: str) -> Candidate:
    return Candidate(w.name, inst.name, inst.device, 0, 0, "-", "-", 0, 0, 0.0, 0.0, None, reason=reason)


@dataclass
class _ModelJobs:
    """One model group's evaluation jobs, each with the workloads of each of its shapes, and what expanding rows needs."""

    model: ModelSpec
    engine: EngineSpec | None
    workloads: list[Workload]
    layouts: dict[DevKey, dict[str, list[tuple[int, int]]]]
    dp_layouts: dict[DevKey, dict[str, list[int]]]
    jobs: list[tuple[Job, dict[Shape, list[Workload]]]] = field(default_factory=list)


def _model_jobs(fleet: Fleet, cat: CatalogueLike, key: tuple[str, str | None, SpeculativeConfig | None, str | None, bool],
                ws: list[Workload], by_device: dict[DevKey, list[InstanceSpec]]) -> _ModelJobs:  # fmt: skip
    """The evaluation jobs of the workloads ``ws`` of one model, engine, speculative decoding, KV format and eagerness."""
    ref, engine_ref, spec_config, kv_dtype, eager = key
    model = cat.model(ref)
    if eager:  # without CUDA graphs: a GPU engine's setting, costed by a transformer's kernel launches (Deployment._check_eager)
        names = ", ".join(f"'{w.name}'" for w in ws)
        if model.kind == "generic":
            raise InputError(f"workload(s) {names}: eager: {model.id} is a generic model, with no layers whose kernel launches "
                             "could be counted; drop eager")  # fmt: skip
        if not any(cat.device(d).kind == "gpu" for d, _ in by_device):
            raise InputError(f"workload(s) {names}: eager (no CUDA graphs) is a GPU engine's setting and none of the hardware these "
                             "workloads may use is a GPU; drop eager or allow a GPU")  # fmt: skip
    spec = speculative_for(cat, model, spec_config, f"workload '{ws[0].name}': speculative")
    resolved = engine_for(cat, engine_ref, eager=eager)
    engine = resolved.spec
    decoder = model.kind == "decoder"
    shape_of = {w.name: Shape.of(w, decoder) for w in ws}
    lay: dict[DevKey, dict[str, list[tuple[int, int]]]] = {}
    dpa: dict[DevKey, dict[str, list[int]]] = {}  # stage sizes with data-parallel attention, per device and instance type
    networks: dict[str, float] = {}
    runs_dpa = (engine is None or engine.dp_attention is not None) and spec is None  # no drafter inside attention groups (Deployment)
    for dk, dinsts in by_device.items():
        dev = device_of(cat, dk)
        if eager and dev.kind != "gpu":  # an eager workload runs on GPUs only (above): no layout elsewhere
            lay[dk], dpa[dk] = {i.name: [] for i in dinsts}, {i.name: [] for i in dinsts}
            continue
        span = MAX_SPAN if _outgrows_an_instance(model, dev, dinsts, ws, cat) else 1
        # Over several instances only on engines whose export starts such a replica (EngineSpec.spans_instances).
        tp_span = span if engine is None or engine.spans_instances else 1
        lay[dk] = {i.name: layouts(model, i, dev, tp_span) for i in dinsts}
        # Over several instances too where the model outgrows one (wide EP), on engines whose export starts such a replica
        # (vLLM, SGLang: multi-node flags on each machine; TensorRT-LLM's MPI start is not recorded).
        dpa_span = span if engine is None or (engine.dp_attention is not None and engine.dp_attention.spans_instances) else 1
        dpa[dk] = {i.name: dp_attention_layouts(model, i, dev, dpa_span) if runs_dpa else [] for i in dinsts}
        net = scale_out_bps(dinsts, dev, cat.efficiency_for(dev).link) if span > 1 else None
        if net is not None:
            networks[dev.id] = net  # GPUs only (a CPU never spans instances): one memory per id
    out = _ModelJobs(model, engine, ws, lay, dpa)
    formats_of = {w.name: allowed(w, model) for w in ws}
    for precision in sorted({p for f in formats_of.values() for p in f}):
        mine = [w for w in ws if precision in formats_of[w.name]]
        shapes = list(dict.fromkeys(shape_of[w.name] for w in mine))
        members: dict[Shape, list[Workload]] = {}
        for w in mine:
            members.setdefault(shape_of[w.name], []).append(w)
        groups: dict[tuple[tuple[str, str], int, int, bool], list[DeviceOption]] = {}
        keys: dict[tuple[tuple[str, str], int, int, bool], list[DevKey]] = {}  # each option's device and memory
        runtimes: dict[tuple[tuple[str, str], int, int, bool], RuntimeSpec] = {}
        wide: dict[tuple[tuple[tuple[str, str], int, int, bool], int], list[DeviceOption]] = {}  # data-parallel attention, per stage size
        for dk in by_device:
            dev = device_of(cat, dk)
            fmt = formats(precision, dev, kv_dtype or kv_of(model, precision))
            union = sorted({x for ls in lay[dk].values() for x in ls})
            if fmt is None or not union or (engine is not None and not engine.runs(dev, *fmt)):
                continue
            per_device = min(float(i.price(fleet.constraints.price_model) or 0.0) / i.devices for i in by_device[dk])
            eff = resolved.efficiency(cat, dev)
            rt = resolved.on(dev)  # engines may pick scheduler limits by device
            group = (fmt, rt.max_prefill_tokens, rt.max_batch, rt.eager)
            runtimes[group] = rt
            groups.setdefault(group, []).append((dev, eff, union, per_device))
            keys.setdefault(group, []).append(dk)
            for size in sorted({x for ls in dpa[dk].values() for x in ls}):  # one job per group count: D = tp
                wide.setdefault((group, size), []).append((dev, eff, [(size, 1)], per_device))
        for group, devs in groups.items():
            shadow = shadows(fleet, keys[group], by_device, ws)
            out.jobs.append((Job(model, runtimes[group], group[0], shapes, devs, networks, spec, shadows=shadow), members))
        for (group, size), devs in wide.items():
            rt = group_runtime(runtimes[group], size)  # an attention group's engine: its share of a shared step budget
            out.jobs.append((Job(model, rt, group[0], shapes, devs, networks, spec, dp_attention=size), members))
    return out


def all_candidates(fleet: Fleet, cat: CatalogueLike, insts: list[InstanceSpec], *,
                   workers: int | None = None) -> dict[str, list[Candidate]]:  # fmt: skip
    """Candidates per workload name on instance types ``insts``.

    Every feasible candidate, and of the infeasible ones, where the workload has no feasible layout on
    their device (for one storage format), one per instance type and reason: all that the diagnostics,
    the plan's rejected devices and "why it lost" read. ``workers``: processes a large evaluation may use
    (:func:`~aicap.sizing.plan.evaluation.evaluate_jobs`; ``None``: every available core); the
    candidates are the same whatever it is.
    """
    types = cheapest_types(fleet, insts, cat)
    by_device: dict[DevKey, list[InstanceSpec]] = {}  # a CPU in instances of different host memory is evaluated once per memory
    for inst in types:
        by_device.setdefault(device_key(cat, inst), []).append(inst)
    out: dict[str, list[Candidate]] = {w.name: [] for w in fleet.workloads}
    latency = fleet.constraints.objective == "latency"
    by_model: dict[tuple[str, str | None, SpeculativeConfig | None, str | None, bool], list[Workload]] = {}
    for w in fleet.workloads:
        by_model.setdefault((w.model, fleet.constraints.engine_of(w), w.speculative, w.kv_dtype, w.eager), []).append(w)
    said: set[tuple[str, str, str]] = set()
    # Every model's evaluation jobs first, then one batched evaluation, then the rows expanded in job order.
    plans: list[_ModelJobs] = [_model_jobs(fleet, cat, key, ws, by_device) for key, ws in by_model.items()]
    n = available_cores() if workers is None else workers
    results = iter(evaluate_jobs([job for mj in plans for job, _ in mj.jobs], latency, workers=n))
    for mj in plans:
        model, lay, engine, ws = mj.model, mj.layouts, mj.engine, mj.workloads
        fits: dict[tuple[DevKey, int, int, int], list[InstanceSpec]] = {}  # instance types of a device that take a layout
        for job, members in mj.jobs:
            told: set[tuple[int, int, str, str]] = set()  # (shape, device, instance, reason) already given to every member
            rows = next(results)
            # An infeasible row's reason is read only where its shape has no feasible layout on its device (the
            # diagnostics, the plan's rejected devices, "why it lost"): elsewhere it makes no candidate. Not for a
            # shape whose workloads need a network, whose instance filter may yet drop the feasible ones.
            served = {(r.shape, r.device) for r in rows if r.reason is None and r.capacity_rps > 0
                      and not any(w.min_network_gbps for w in members[job.shapes[r.shape]])}  # fmt: skip
            for row in rows:
                if row.reason is not None and (row.shape, row.device) in served:
                    continue
                dev = job.devices[row.device][0]
                dk = (dev.id, float(dev.memory_gib))
                at = (dk, row.tp, row.pp, job.dp_attention)
                if at not in fits:
                    fits[at] = [inst for inst in by_device[dk] if ((row.tp, row.pp) in lay[dk][inst.name] if job.dp_attention == 1
                                                                   else row.tp in mj.dp_layouts[dk][inst.name])]  # fmt: skip
                takers = fits[at]
                if row.reason is not None:  # one infeasible candidate per reason is all its readers need
                    fresh = [inst for inst in takers if (row.shape, row.device, inst.name, row.reason) not in told]
                    told.update((row.shape, row.device, inst.name, row.reason) for inst in fresh)
                    takers = fresh
                if not takers:
                    continue
                base = Candidate.of_row(dev.id, row, job.fmt[0], job.fmt[1], job.dp_attention)
                for w in members[job.shapes[row.shape]]:
                    for inst in takers:
                        if row.reason is not None:
                            key = (w.name, inst.name, row.reason)
                            if key in said:
                                continue
                            said.add(key)
                        out[w.name].append(base.placed(w.name, inst.name))
        for w in ws:
            seen = {x.hardware for x in out[w.name]}
            for dk, dinsts in by_device.items():
                dev_id = dk[0]
                if dev_id in seen:
                    continue
                dev = cat.device(dev_id)
                if engine is not None and not engine.serves(dev):
                    why = f"{engine.name} does not run on {dev_id} ({dev.vendor} {dev.kind})"
                elif w.eager and dev.kind != "gpu":
                    why = f"the workload runs eager (no CUDA graphs), a GPU engine's setting; {dev_id} is not a GPU ({dev.kind})"
                elif not any(lay[dk].values()):
                    heads = 1 if model.kind == "generic" else model.num_heads
                    why = f"no tensor-parallel degree divides {heads} heads within one instance's fast-link domain"
                elif engine is not None and not any(engine.runs(dev, *f) for p in allowed(w, model)
                                                    if (f := formats(p, dev, kv_of(model, p)))):  # fmt: skip
                    why = f"{engine.name} serves none of the allowed precisions {', '.join(allowed(w, model))} on {dev_id}"
                else:
                    why = f"{dev_id} supports none of the allowed precisions {', '.join(allowed(w, model))}"
                out[w.name] += [_infeasible(w, inst, why) for inst in dinsts]
    by_name = {i.name: i for i in insts}
    for w in fleet.workloads:  # a workload limited to some devices or networks (a disaggregated pool) keeps only their candidates
        if keep := [passes for _, passes in instance_filters(w)]:
            out[w.name] = [c for c in out[w.name] if all(p(by_name[c.instance]) for p in keep)]
    return out


InstanceFilter = tuple[str, Callable[[InstanceSpec], bool]]
"""A workload's filter on the instance types it may use: what it asks, in words, and whether an instance type passes."""


def instance_filters(w: Workload) -> list[InstanceFilter]:
    """The filters ``w`` sets on its instance types (none for most workloads): devices, a network's speed or kind, names.

    A disaggregated pool's instance types are those aicap kept in one cloud and region with its other pool: said so, not
    listed. :func:`all_candidates` keeps the candidates whose instance type passes them all; "why it lost" names the
    ones a device's types fail (:func:`~aicap.sizing.plan.alternatives.filters_of`).
    """
    out: list[InstanceFilter] = []
    if w.instance_types is not None:
        kept = "the cloud and region its other pool is kept in" if w.disaggregated_role else f"instance_types {', '.join(w.instance_types)}"
        out.append((kept, lambda i: i.name in (w.instance_types or [])))
    if w.hardware:
        out.append((f"hardware {', '.join(w.hardware)}", lambda i: i.device in (w.hardware or [])))
    if w.min_network_gbps:
        need = w.min_network_gbps / 8.0  # GB/s a device
        out.append((f"a scale-out network of at least {w.min_network_gbps:g} Gbit/s a device",
                    lambda i: (i.network_gbs_per_device or 0.0) >= need * (1 - 1e-9)))  # fmt: skip
    if w.network_kinds:
        out.append((f"network kinds {', '.join(w.network_kinds)}",
                    lambda i: i.network is not None and i.network.kind in (w.network_kinds or [])))  # fmt: skip
    return out
