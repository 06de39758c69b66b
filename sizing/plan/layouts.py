"""Replica layouts: tensor and pipeline degrees inside one instance, or across instances over their network.

A replica is ``tp·pp`` devices: tensor parallel inside the fast-link domain, pipeline stages in
sequence. Inside one instance the sizes are powers of two dividing its device count. A model too large
for one instance may span 2, 4 … whole instances: tensor parallel inside each and pipeline stages
across them, the hand-offs at instance boundaries over the instance's scale-out network, or one
tensor-parallel group over all of them, every all-reduce at the network's rate
(:func:`aicap.sizing.perf.roofline.network_time`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs import DeviceSpec, InstanceSpec, ModelSpec
from aicap.sizing.perf.roofline import stage_crossings

F = NDArray[np.float64]


#: Most instances one replica may span (pipeline stages over the instance network).
MAX_SPAN = 4


def layouts(model: ModelSpec, inst: InstanceSpec, device: DeviceSpec, span: int = 1) -> list[tuple[int, int]]:
    """(tp, pp) pairs of one replica: powers of two, tp within the fast-link domain or over whole instances.

    Inside one instance, and with ``span > 1`` also across ``n`` = 2 … ``span`` whole instances (powers of
    two): tensor parallel inside each instance and pipeline stages across them over the instance network,
    or tensor parallel ``n·D`` over all of them where the head count allows. Only
    GPU instances that fill one fast-link domain and have a sourced scale-out ``network`` span.
    """
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if inst.devices % s == 0]
    heads = 1 if model.kind == "generic" else model.num_heads
    layers = 1 if model.kind == "generic" else model.num_layers
    out = []
    for size in sizes:
        for tp in (t for t in sizes if t <= size and size % t == 0):
            pp = size // tp
            if tp <= device.interconnect.domain_size and heads % tp == 0 and pp <= layers:
                out.append((tp, pp))
    if span > 1 and spans_instances(inst, device):
        tps = [t for t in sizes if heads % t == 0 and t <= device.interconnect.domain_size]
        for n in (k for k in (2, 4, 8) if k <= span):
            for tp in tps[-2:]:  # the widest tensor-parallel degrees: pipeline stages only where they must
                pp = n * inst.devices // tp
                if pp <= layers:
                    out.append((tp, pp))
            if heads % (n * inst.devices) == 0:  # one tensor-parallel group over the n instances (SGLang's multi-node TP)
                out.append((n * inst.devices, 1))
    return out


def dp_attention_layouts(model: ModelSpec, inst: InstanceSpec, device: DeviceSpec, span: int = 1) -> list[int]:
    """Stage sizes ``tp`` at which a replica runs data-parallel attention, one attention group per device (``D = tp``).

    Only where it pays: a mixture-of-experts decoder whose KV cache tensor parallelism would replicate
    at ``tp`` (MLA's latent, or fewer KV heads than ``tp``), so that each group keeping its own sequences
    holds more of them (:mod:`aicap.sizing.core.deployment`). Powers of two from 2 up to the instance's
    devices inside its fast-link domain, and with ``span > 1`` whole instances over their network (wide EP).
    """
    if model.kind != "decoder" or model.moe is None or device.kind != "gpu":  # the engines that run it, sourced, are GPU engines
        return []
    replicated = model.mla is not None
    sizes = [s for s in (2, 4, 8, 16, 32, 64) if inst.devices % s == 0 and s <= device.interconnect.domain_size]
    if span > 1 and spans_instances(inst, device):
        sizes += [n * inst.devices for n in (2, 4, 8) if n <= span]
    return [s for s in sizes if replicated or model.kv_heads < s]


def spans_instances(inst: InstanceSpec, device: DeviceSpec) -> bool:
    """Whether replicas may span instances of this type: a GPU instance filling its fast-link domain, with a sourced network."""
    return inst.network is not None and device.kind == "gpu" and inst.devices == device.interconnect.domain_size


def crossings(tp: ArrayLike, pp: ArrayLike, device_counts: ArrayLike) -> F:
    """Pipeline boundaries crossing the instance network, ``D`` devices each (:func:`~aicap.sizing.perf.roofline.stage_crossings`)."""
    return stage_crossings(tp, pp, device_counts)


def scale_out_bps(insts: list[InstanceSpec], device: DeviceSpec, link_efficiency: float) -> float | None:
    """Achieved scale-out bytes/s per device for replicas of ``device`` spanning instances; ``None`` if none may span.

    The slowest network of its instance types that may span (one figure per device, conservative):
    the instance's per-device share times the link efficiency.
    """
    rates = [i.network_gbs_per_device * 1e9 * link_efficiency for i in insts
             if i.network_gbs_per_device is not None and spans_instances(i, device)]  # fmt: skip
    return min(rates) if rates else None


def unstartable_spans(plan: Plan, cat: CatalogueLike) -> list[str]:
    """Deployments of ``plan`` whose replica spans instances on an engine with no recorded multi-node start, one line each.

    The sizer never places one (:attr:`~aicap.sizing.core.specs.engine.EngineSpec.spans_instances`); a hand-edited or
    relabelled plan may hold one, which ``aicap export`` refuses and a simulation cannot vouch for.
    """
    out = []
    for w in plan.workloads:
        spec = None if w.engine == "generic" else cat.engines.get(w.engine)
        if spec is None or spec.spans_instances:
            continue
        for d in w.deployments:
            inst = cat.instances.get(d.instance_type)
            per = d.devices // max(d.replicas, 1)
            if inst is not None and per > inst.devices:
                out.append(f"{w.name}: a replica of {per} devices spans {-(-per // inst.devices)} instances of {d.instance_type}, and "
                           f"{spec.name}'s profile records no start of a replica over several machines: aicap export refuses it; "
                           "size the workload again")  # fmt: skip
    return out
