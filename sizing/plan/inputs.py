"""What the sizer admits of a fleet: the instance types its constraints allow, and its workloads checked against the catalogue.

:func:`allowed_instances` filters the instance catalogue by the constraints (saying which instance types a pricing model
drops), :func:`per_item` reads a generic model's workload as one item a request, and :func:`check_workloads` refuses
what a workload's model or engine cannot take, naming the workload and the field, before any candidate is built.
"""

from __future__ import annotations

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InfeasibleError, InputError, UnknownIdError, did_you_mean, excerpt
from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.core.ownership import ON_PREM
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.specs.model import GenericModel
from aicap.sizing.plan.generate import allowed


def allowed_instances(fleet: Fleet, cat: CatalogueLike, models: tuple[str, ...] | None = None) -> tuple[list[InstanceSpec], list[str]]:
    """Instance types that meet the constraints and have a price under every one of ``models``, and warnings.

    ``models`` defaults to the static plan's pricing model. A type without a published price under them
    is excluded, and a warning says how many types and which clouds dropped out.
    """
    c = fleet.constraints
    need = models or (c.price_model,)
    for h in [*(c.hardware or []), *(h for w in fleet.workloads for h in w.hardware or [])]:
        cat.device(h)
    for name in c.availability:
        cat.instance(name)
    for kind, given, known in (("region", c.regions, {i.region for i in cat.instances.values()}),
                               ("instance family", c.instance_families, {i.family for i in cat.instances.values()})):  # fmt: skip
        for x in given or []:
            if x not in known:  # a typo is an input error naming the choices, not an "infeasible" fleet
                raise UnknownIdError(kind, x, sorted(known))
    out: list[InstanceSpec] = []
    unpriced: dict[str, int] = {}
    dropped_kinds: set[str] = set()  # the device kinds of the types dropped for want of a price
    capped: list[str] = []  # types that met every other constraint but have no instance available
    for inst in sorted(cat.instances.values(), key=lambda i: (i.cloud, i.name)):
        if c.clouds and inst.cloud not in c.clouds:
            continue
        if c.regions and inst.region not in c.regions:
            continue
        if c.instance_families and inst.family not in c.instance_families:
            continue
        if c.hardware and inst.device not in c.hardware:
            continue
        if c.cap(inst.name) == 0:
            capped.append(inst.name)
            continue
        if any(inst.price(m) is None for m in need):
            if inst.cloud != ON_PREM:  # owned machines no cloud rents: only --pricing owned considers them
                unpriced[inst.cloud] = unpriced.get(inst.cloud, 0) + 1
                dropped_kinds.add(cat.device(inst.device).kind)
            continue
        out.append(inst)
    warnings = []
    if "owned" in need:
        warnings.append("owned: each instance type is priced as the same hardware bought and run in a colocation facility "
                        "(straight-line depreciation, power at the facility's PUE, space per kW: hardware_db/ownership); it leaves out "
                        "the cost of capital, networking between servers, staff and support")  # fmt: skip
    if unpriced:
        per_cloud = ", ".join(f"{n} on {cloud}" for cloud, n in sorted(unpriced.items()))
        accelerated = [i for i in out if cat.device(i.device).kind != "cpu"]
        # spot on AWS became 173 CPU servers at 317x the GPU plan's cost, said only as "19 types have no spot price" (a fleet
        # that allows CPUs alone is not told: it lost no accelerator to the price)
        cpus_only = ("; none of the accelerator types is left, so the plan can use server CPUs only (size with --pricing on_demand "
                     "to compare)" if out and not accelerated and dropped_kinds - {"cpu"} else "")  # fmt: skip
        warnings.append(
            f"{sum(unpriced.values())} instance types have no published {' or '.join(need)} price and were excluded ({per_cloud})"
            + cpus_only
        )
    if not out and c.clouds and set(c.clouds) <= {ON_PREM} and "owned" not in need:  # contradictory inputs, not an infeasible fleet
        raise InputError(f"constraints.clouds {c.clouds} with pricing {'/'.join(need)}: on-prem machines are bought outright and have "
                         "only an owned price; set pricing: owned (aicap size --pricing owned) or add a cloud")  # fmt: skip
    if not out:
        raise InfeasibleError(
            f"no instance type matches the constraints (clouds={c.clouds or 'any'}, regions={c.regions or 'any'}, "
            f"families={c.instance_families or 'any'}, hardware={c.hardware or 'any'}, pricing={'/'.join(need)})"
            + (f"; {warnings[-1]}" if unpriced else "")
            + (f"; availability caps of 0 exclude {', '.join(capped)}" if capped else "")
        )
    return out, warnings


def per_item(fleet: Fleet, cat: CatalogueLike) -> Fleet:
    """``fleet`` with each workload of a generic (per-item) model at one item a request: input and output lengths of 1.

    A generic model's cost is per item (its FLOPs and bytes per request: one image), so token counts mean nothing to it;
    the defaults (1,024 in, 256 out) were read as 1,024 items a request against the step's token budget, and a ResNet
    fleet came out about 1,000 times too large. Lengths given other than 1 are refused (:class:`InputError`); a model
    that does not load is left to :func:`check_workloads` to report.
    """
    out: list[Workload] = []
    for w in fleet.workloads:
        try:
            model = cat.model(w.model)
        except InputError:
            model = None
        if not isinstance(model, GenericModel):
            out.append(w)
            continue
        given = [k for k in ("input_tokens", "output_tokens") if k in w.model_fields_set and getattr(w, k) != 1]
        if given:
            raise InputError(f"workload '{w.name}': {model.id} is a generic model whose cost is per item (one {model.item} a request), "
                             f"not per token: drop {' and '.join(given)}")  # fmt: skip
        out.append(w.model_copy(update={"input_tokens": 1, "output_tokens": 1}))
    return fleet if out == fleet.workloads else fleet.model_copy(update={"workloads": out})


def check_workloads(fleet: Fleet, cat: CatalogueLike) -> None:
    """Refuse a workload its model cannot take (:class:`InputError`, naming the workload and the field).

    An unknown engine, a misspelt instance type, a KV-cache format or weight formats the workload's engine does not serve,
    a TPOT target on a model that emits no tokens, or a request longer than the model's context.
    """
    for w in fleet.workloads:
        engine = fleet.constraints.engine_of(w)
        if engine is not None and engine != "generic" and engine not in cat.engines:
            where = f"workload '{w.name}'" if w.engine else "constraints"
            valid = sorted([*cat.engines, "generic"])
            raise InputError(f"{where}: unknown engine '{engine}'; {did_you_mean(engine, valid)}valid engines: {', '.join(valid)}")
        try:
            model = cat.model(w.model)
        except UnknownIdError:
            raise
        except InputError as exc:  # a model file that is missing or bad: name the value as written (its line in a fleet file)
            raise InputError(f"model {excerpt(w.model)} of workload {excerpt(w.name)}: {exc}") from None
        for name in w.instance_types or ():  # a misspelt one left the workload no instance: "infeasible" with no reason given
            cat.instance(name)
        spec = cat.engines[engine] if engine is not None and engine != "generic" else None
        if spec is not None and w.kv_dtype is not None and w.kv_dtype not in spec.kv_dtypes:  # every device then "supported none"
            raise InputError(f"workload '{w.name}': kv_dtype {w.kv_dtype}: {spec.name} keeps the KV cache in {', '.join(spec.kv_dtypes)} "
                             f"(aicap engines show {spec.id}): give one of them, or another engine")  # fmt: skip
        if spec is not None and not set(formats := allowed(w, model)) & set(spec.weights_dtypes):
            raise InputError(f"workload '{w.name}': precisions {', '.join(formats)}: {spec.name} serves weights in "
                             f"{', '.join(spec.weights_dtypes)} (aicap engines show {spec.id}): allow one of them, or another "
                             "engine")  # fmt: skip
        if model.kind != "decoder" and w.slo.tpot_ms is not None:  # the target was dropped without a word
            raise InputError(f"workload '{w.name}': {model.id} is an {model.kind} model and emits no tokens, so has no TPOT: drop "
                             "slo.tpot_ms (its latency target is slo.ttft_ms)")  # fmt: skip
        if model.kind == "generic":
            continue
        longest = w.max_context if model.kind == "decoder" else w.max_input
        if longest > model.max_context:
            what = "input_tokens + output_tokens" if model.kind == "decoder" else "input_tokens"
            unset = [k for k in ("input_tokens", "output_tokens") if k in what and k not in w.model_fields_set]  # defaults, not typed
            values = " and ".join(f"{Workload.model_fields[k].default:,}" for k in unset)
            default = f"; {' and '.join(unset)} left at the default{'s' if len(unset) > 1 else ''} ({values}): give the lengths it serves"
            raise InputError(f"workload '{w.name}': its longest request ({what}) is {longest:,} tokens, over {model.id}'s max context "
                             f"of {model.max_context:,}{default if unset else ''}")  # fmt: skip
