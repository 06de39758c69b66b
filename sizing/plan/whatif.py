"""What-ifs: size the same demand under alternatives and compare them with the baseline (``aicap whatif``).

An alternative is one change applied to every workload it concerns, then a full :func:`~aicap.sizing.plan.sizer.size`
of the changed fleet, so each row is a real plan (whole instances, latency percentiles at the planned
load):

* ``weights`` — serve in one weight format (fp8, int8 weight-only, int4 weight-only as AWQ/GPTQ
  kernels run, nvfp4, mxfp4) where the baseline allows its list of formats;
* ``kv`` — hold the KV cache of decoders in fp8 or int8;
* ``student`` — serve a smaller model of the same tokenizer in place of each larger decoder
  (distillation: the student is just another catalogue model);
* ``speculative`` — add speculative decoding to the decoders (draft model, MTP or EAGLE heads, n-gram),
  with the method's published acceptance unless one is given;
* ``sparse`` — serve each decoder 2:4-sparse (``sparse-2:4``): compressed and faster only where the
  workload's engine has sparse kernels for the device, with the engine's published speed-up
  (:mod:`aicap.sizing.perf.sparsity`); elsewhere the row costs what the dense model costs;
* ``prune`` — serve each decoder with its MLP width pruned until its parameters fall by a fraction
  (``prune-30``: 30%), the assumption :mod:`aicap.sizing.plan.variants` states;
* ``disaggregate`` — serve each decoder with a TTFT target and one demand rate on separate prefill and
  decode pools (:mod:`aicap.sizing.plan.disaggregate`); its row's TTFT is the composed one users see.

Each alternative carries a quality note: the published figure for that technique whose model is
closest by name to the workload's (:class:`~aicap.sizing.core.specs.quality.QualityData`), labelled as
that publication's figure for that model. Speculative decoding keeps the target's output distribution
(rejection sampling), so its note says so instead.

Memory headroom is the share of usable device memory a deployment leaves for the KV cache and
activations after weights and reserves, ``(C − W − R)/C``, the least over the plan's deployments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs import ModelSpec
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.core.specs.quality import QualityData
from aicap.sizing.core.specs.speculative import SpeculativeConfig
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.perf import memory
from aicap.sizing.plan import variants
from aicap.sizing.plan.disaggregate import user_ttfts

Kind = Literal["weights", "kv", "student", "speculative", "sparse", "prune", "disaggregate"]
#: Techniques of the quality data that describe each weight format (int8 in aicap is weight-only: the
#: published W8A8 figures quantise activations too, so they bound its loss from above).
WEIGHT_TECHNIQUES = {"fp8": ("fp8",), "int8": ("int8-w8a8",), "int4": ("int4-gptq", "int4-awq"), "nvfp4": ("nvfp4",), "mxfp4": ("mxfp4",)}
KV_TECHNIQUES = {"fp8": ("kv-fp8",), "int8": ("kv-int8",)}
#: Alternatives named on the command line (``--alternatives``).
NAMED = ("fp8", "int8", "int4", "nvfp4", "mxfp4", "kv-fp8", "kv-int8", "spec-eagle", "spec-mtp", "spec-ngram", "sparse-2:4", "prune-N",
         "disaggregate")  # fmt: skip
DEFAULT_ALTERNATIVES = ("fp8", "int4", "kv-fp8", "spec-eagle")


@dataclass(frozen=True)
class Change:
    """One alternative: what it changes, and its value (a format, a student model id, a speculative configuration, a pruned fraction)."""

    name: str
    kind: Kind
    value: str | float | SpeculativeConfig


def named_change(name: str) -> Change:
    """The change of a name in :data:`NAMED`; raises :class:`InputError` naming the valid ones."""
    if name in WEIGHT_TECHNIQUES:
        return Change(f"weights {name}", "weights", name)
    if name.startswith("kv-") and name[3:] in KV_TECHNIQUES:
        return Change(f"KV cache {name[3:]}", "kv", name[3:])
    if name.startswith("spec-") and name[5:] in ("eagle", "mtp", "ngram"):
        method: Literal["eagle", "mtp", "ngram"] = name[5:]  # type: ignore[assignment]
        return Change(f"speculative {method}", "speculative", SpeculativeConfig(method=method))
    if name == "disaggregate":
        return Change("disaggregated prefill/decode", "disaggregate", "")
    if name in ("sparse-2:4", "sparse-2of4"):
        return Change("2:4 sparse", "sparse", "2:4")
    pct = re.fullmatch(r"prune-(\d{1,2})", name)
    if pct and int(pct.group(1)) > 0:
        return Change(f"pruned {int(pct.group(1))}%", "prune", int(pct.group(1)) / 100.0)
    if name.startswith("prune-"):
        raise InputError(f"--alternatives '{name}': prune-N takes N from 1 to 99, the percent of the model's parameters removed "
                         "(each model allows at most its MLP share)")  # fmt: skip
    raise InputError(f"--alternatives '{name}': valid: {', '.join(NAMED)}")


def with_acceptance(changes: list[Change], draft_model: str | None, acceptance: float | None) -> list[Change]:
    """``changes`` with ``acceptance`` set on every speculative one, and a draft-model alternative when ``draft_model`` is given.

    Raises :class:`InputError` for an acceptance outside [0, 1], a draft model without an acceptance
    (no published figure pairs a draft model with a target), or an acceptance with nothing speculative to apply it to.
    """
    if acceptance is not None and not 0.0 <= acceptance <= 1.0:
        raise InputError(f"--acceptance {acceptance}: must be between 0 and 1")
    if acceptance is not None and not draft_model and not any(c.kind == "speculative" for c in changes):
        raise InputError(f"--acceptance {acceptance:g} applies to speculative alternatives: add a spec-* alternative to --alternatives "
                         "(spec-ngram, spec-eagle, spec-mtp) or --draft-model, or drop it")  # fmt: skip
    out = []
    for c in changes:
        if c.kind == "speculative" and acceptance is not None:
            assert isinstance(c.value, SpeculativeConfig)
            c = Change(c.name, c.kind, c.value.model_copy(update={"acceptance": acceptance}))
        out.append(c)
    if draft_model:
        if acceptance is None:
            raise InputError(f"--draft-model {draft_model}: give --acceptance (no published figure pairs a draft model with its target)")
        out.append(Change(f"speculative draft {draft_model}", "speculative",
                          SpeculativeConfig(method="draft", draft_model=draft_model, acceptance=acceptance)))  # fmt: skip
    return out


class Alternative(BaseModel):
    """One sized alternative (or the baseline) and how it compares with the baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    usd_per_month: float | None = Field(description="None: no plan meets the targets under this alternative")
    devices: int | None = None
    hardware: str | None = Field(None, description="devices bought, by type, e.g. '16× a100-40gb-sxm'")
    ttft_ms: float | None = Field(None, description="worst workload's promised TTFT at its percentile")
    tpot_ms: float | None = Field(None, description="worst workload's promised TPOT at its percentile")
    memory_headroom_pct: float | None = Field(None, description="least share of usable memory left for KV cache and activations")
    delta_usd_per_month: float | None = None
    quality_note: str = Field(description="published quality of the technique, for the model the publication names")
    quality_source: str | None = Field(None, description="where the quality figure (or the acceptance rate) was published")
    assumption: str | None = Field(None, description="what the alternative assumes (sparse kernels used or not, parameters after pruning)")
    infeasible: str | None = None


class WhatIf(BaseModel):
    """The baseline and every alternative, sized for the same demand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    alternatives: list[Alternative]
    notes: list[str] = []


def _decoders(fleet: Fleet, cat: CatalogueLike) -> set[str]:
    return {w.name for w in fleet.workloads if isinstance(cat.model(w.model), DecoderModel)}


def apply(fleet: Fleet, change: Change, cat: CatalogueLike) -> tuple[Fleet, CatalogueLike]:
    """``fleet`` with ``change`` made to every workload it concerns, and the catalogue to size it against.

    KV formats, students, drafters, sparsity and pruning change decoders only; the catalogue is ``cat``
    with the compressed variants the changed fleet names.
    """
    doc: dict[str, Any] = fleet.model_dump(mode="json", exclude_none=True)
    dec = _decoders(fleet, cat)
    touched = 0
    extra: dict[str, ModelSpec] = {}
    why: list[str] = []  # per workload left as it is, the reason
    for w in doc["workloads"]:
        if change.kind == "weights":
            w["precisions"] = [change.value]
        elif w["name"] not in dec:
            why.append(f"'{w['name']}': {w['model']} is not a decoder")
            continue
        elif change.kind == "kv":
            w["kv_dtype"] = change.value
        elif change.kind == "speculative":
            assert isinstance(change.value, SpeculativeConfig)
            model = cat.model(w["model"])
            if change.value.method == "mtp" and not (isinstance(model, DecoderModel) and model.mtp_layers > 0):
                why.append(f"'{w['name']}': {model.id} ships no multi-token-prediction heads")
                continue  # MTP runs the heads a checkpoint ships: only models that have them change
            if w.get("eager"):
                why.append(f"'{w['name']}': drafting on an eager engine is not modelled")
                continue  # an eager engine's drafter launches are not modelled (Workload refuses both)
            w["speculative"] = change.value.model_dump(exclude_none=True)
        elif change.kind == "disaggregate":
            rate = w.get("requests_per_s")
            skip = ("it has no TTFT target" if (w.get("slo") or {}).get("ttft_ms") is None else "it is split already"
                    if "disaggregation" in w else "its demand is not one rate" if rate is None or isinstance(rate, list | dict)
                    else "an eager engine's split is not modelled" if w.get("eager") else None)  # fmt: skip
            if skip is not None:
                why.append(f"'{w['name']}': {skip}")
                continue
            w["disaggregation"] = {}
        elif change.kind in ("sparse", "prune"):
            model = cat.model(w["model"])
            assert isinstance(model, DecoderModel)
            if change.kind == "sparse":
                variant = variants.sparse(model)
            else:
                assert isinstance(change.value, float)
                variant = variants.pruned(model, change.value)
            extra[variant.id] = variant
            w["model"] = variant.id
        else:
            student, teacher = cat.model(str(change.value)), cat.model(w["model"])
            if not isinstance(student, DecoderModel):
                why.append(f"'{w['name']}': the student {student.id} is not a decoder")
                continue
            assert isinstance(teacher, DecoderModel)  # a decoder workload (above)
            if student.vocab_size != teacher.vocab_size:
                why.append(f"'{w['name']}': {student.id} has a {student.vocab_size:,}-token vocabulary and {teacher.id} "
                           f"{teacher.vocab_size:,}: not the same tokenizer")  # fmt: skip
                continue
            if _params(student) >= _params(teacher):
                why.append(f"'{w['name']}': {student.id} is not smaller than {teacher.id}")
                continue
            w["model"] = str(change.value)
        touched += 1
    if not touched:
        shown = "; ".join(why[:3]) + (f"; {len(why) - 3} more" if len(why) > 3 else "")
        raise InputError(f"alternative '{change.name}' changes no workload: {shown or 'the fleet has none'}")
    return Fleet.model_validate(doc), (variants.WithModels(cat, extra) if extra else cat)


def applies(fleet: Fleet, change: Change, cat: CatalogueLike) -> bool:
    """Whether ``change`` changes any workload of ``fleet`` (a KV format, for one, changes decoders only)."""
    try:
        apply(fleet, change, cat)
    except InputError:
        return False
    return True


def _params(model: DecoderModel) -> float:
    """Parameters of a decoder (published, else counted from its shapes)."""
    from aicap.sizing.perf.params import inventory

    return float(model.published_params or inventory(model).total)


def _released_quantised(model_id: str, cat: CatalogueLike) -> str | None:
    """The weight format a model's checkpoint is released in, when it is released quantised (``None`` otherwise or unknown)."""
    try:
        spec = cat.model(model_id)
    except InputError:
        return None
    return spec.checkpoint_dtype if isinstance(spec, DecoderModel) else None


def _quality(change: Change, fleet: Fleet, cat: CatalogueLike, quality: QualityData) -> tuple[str, str | None]:
    """A short quality note and its source, for each model of the fleet the change touches (named when there are several)."""
    decoders = _decoders(fleet, cat)
    if change.kind == "speculative":
        assert isinstance(change.value, SpeculativeConfig)
        mtp = change.value.method == "mtp"
        ws = [w for w in fleet.workloads if w.name in decoders and (not mtp or getattr(cat.model(w.model), "mtp_layers", 0) > 0)]
        spec = speculative_for(cat, cat.model(ws[0].model), change.value)
        assert spec is not None
        scope = "" if len(ws) == len(decoders) else f". Applies to {', '.join(w.name for w in ws)}" + (
            ": the models with MTP heads" if mtp else "")  # fmt: skip
        already = [w.name for w in ws if w.speculative is not None]
        scope += f"; {', '.join(already)} already speculate(s) as the fleet says, replaced here" if already else ""
        return (f"lossless (verification keeps the output distribution); acceptance {spec.acceptance:g} at k={spec.draft_tokens}, "
                f"{spec.tokens_per_step:.2f} tokens/step{scope}", spec.source)  # fmt: skip
    if change.kind == "disaggregate":
        return "the same model and outputs: a serving layout, no quality change", None
    if change.kind == "student":
        return _model_quality(change, str(change.value), ("distill",), cat, quality)
    touched = [w.model for w in fleet.workloads if change.kind == "weights" or w.name in decoders]
    models = list(dict.fromkeys(touched)) or [fleet.workloads[0].model]  # each model once, in fleet order
    if change.kind in ("sparse", "prune"):
        techniques: tuple[str, ...] = ("sparse-2-4",) if change.kind == "sparse" else ("prune-width",)
    else:
        techniques = (WEIGHT_TECHNIQUES if change.kind == "weights" else KV_TECHNIQUES)[str(change.value)]
    notes = [(m, *_model_quality(change, m, techniques, cat, quality)) for m in models]
    if len(notes) == 1:
        return notes[0][1], notes[0][2]
    sources = list(dict.fromkeys(src for _, _, src in notes if src))
    return "; ".join(f"{m}: {n}" for m, n, _ in notes), "; ".join(sources) or None


def _model_quality(change: Change, model: str, techniques: tuple[str, ...], cat: CatalogueLike,
                   quality: QualityData) -> tuple[str, str | None]:  # fmt: skip
    """The quality note of ``change`` for one model: the format it is released in, else the nearest published figure."""
    released = _released_quantised(model, cat) if change.kind == "weights" else None
    if released is not None:
        if change.value == released:
            return f"the format {model} is released in: its published scores are for these weights", None
        return (f"{model} is released in {released}: {change.value} weights are a re-quantised copy, for which no quality "
                "figure is published (figures for other models compare with an unquantised original)", None)  # fmt: skip
    fig = quality.best(techniques, model)
    if fig is None:
        return f"no published quality figure for {'/'.join(techniques)} on a model of its family in the catalogue", None
    return fig.short(), fig.source


def _headroom(plan: Plan, fleet: Fleet, cat: CatalogueLike) -> float | None:
    inputs = {w.name: w for w in plan.inputs.workloads}  # as sized: a disaggregated workload's pools
    worst: float | None = None
    for pw in plan.workloads:
        w = inputs[pw.name]
        model = cat.model(w.model)
        engine = engine_for(cat, pw.engine, eager=pw.eager)
        spec = speculative_for(cat, model, w.speculative)
        for d in pw.deployments:
            dep = engine.planned(cat, model, d, spec)
            mb = memory.breakdown(dep, d.tp, d.pp, 1.0, w.mean_input, w.mean_input)
            share = 100.0 * float((mb.capacity - mb.weights - mb.overhead) / mb.capacity)
            worst = share if worst is None else min(worst, share)
    return None if worst is None else round(worst, 1)


def _assumption(change: Change, plan: Plan | None, fleet: Fleet, cat: CatalogueLike) -> str | None:
    """What a sparse or pruned alternative assumes: whether sparse kernels run it, or the parameters pruning leaves."""
    if change.kind == "prune":
        from aicap.sizing.perf.params import inventory

        said = []
        for w in fleet.workloads:
            m = cat.model(w.model)
            if isinstance(m, DecoderModel) and re.search(r"-pruned\d+$", m.id):
                said.append(f"{m.name}: {inventory(m).total / 1e9:.2f} B parameters (MLP channels removed; attention, KV cache and "
                            "embeddings kept)")  # fmt: skip
        return "; ".join(dict.fromkeys(said)) or None
    if change.kind == "disaggregate" and plan is not None:
        return "; ".join(w for w in plan.warnings if "served disaggregated" in w) or None
    if change.kind == "weights" and plan is not None:
        return _weight_only(plan, cat)
    if change.kind != "sparse" or plan is None:
        return None
    where = "; ".join(f"--engine {e.id} on {', '.join(e.sparse_kernels.families)} ({', '.join(e.sparse_kernels.weights_dtypes)})"
                      for e in cat.engines.values() if e.sparse_kernels)  # fmt: skip
    said = []
    for pw in plan.workloads:
        engine = engine_for(cat, pw.engine, eager=pw.eager)
        for d in pw.deployments:
            speedup = engine.on(cat.device(d.hardware)).sparse_speedup.get(d.weights_dtype)
            said.append(f"{d.hardware} {d.weights_dtype}: {engine.runtime.engine} sparse kernels, linear layers {speedup:g}x faster, "
                        "stored compressed" if speedup else f"{d.hardware} {d.weights_dtype}: served dense ({engine.runtime.engine} has no "
                        f"2:4 kernels for it; engines that have: {where or 'none in the catalogue'})")  # fmt: skip
    return "; ".join(dict.fromkeys(said)) or None


def _weight_only(plan: Plan, cat: CatalogueLike) -> str | None:
    """Where a plan's quantised weights multiply at 16 bits on devices without their tensor-core format (weight-only kernels)."""
    from aicap.sizing.core.dtypes import FP4_FORMATS, compute_dtype

    said = []
    for pw in plan.workloads:
        for d in pw.deployments:
            on = compute_dtype(d.weights_dtype, cat.device(d.hardware).peak_tflops)
            unit = "fp4" if d.weights_dtype in FP4_FORMATS else d.weights_dtype  # the tensor-core rate the format multiplies at
            if unit in ("fp4", "fp8") and on != unit:
                said.append(f"{d.hardware} {d.weights_dtype}: weight-only, de-quantised to {on} for the matrix multiplies ({d.hardware} "
                            f"has no {unit.upper()} tensor cores): it saves memory and bandwidth, not compute")  # fmt: skip
    return "; ".join(dict.fromkeys(said)) or None


def _same_deployments(a: Plan, b: Plan) -> bool:
    """Whether two plans run the same replicas of the same layouts and formats on the same instances."""

    def sig(p: Plan) -> tuple[object, ...]:
        return (tuple((w.name, tuple((d.hardware, d.instance_type, d.tp, d.pp, d.ep, d.weights_dtype, d.kv_dtype, d.replicas)
                                     for d in w.deployments)) for w in p.workloads), round(p.totals.usd_per_month, 2))  # fmt: skip

    return sig(a) == sig(b)


def _row(name: str, plan: Plan | None, fleet: Fleet, cat: CatalogueLike, note: tuple[str, str | None], base: float | None,
         why: str | None, assumption: str | None = None) -> Alternative:  # fmt: skip
    if plan is None:
        return Alternative(name=name, usd_per_month=None, quality_note=note[0], quality_source=note[1], assumption=assumption,
                           infeasible=why)  # fmt: skip
    usd = plan.totals.usd_per_month
    ttft = max(user_ttfts(plan, cat).values(), default=None)
    tpot = max((w.tpot_ms for w in plan.workloads if w.tpot_ms is not None), default=None)
    return Alternative(name=name, usd_per_month=usd, devices=plan.totals.devices, hardware=hardware_bought(plan), ttft_ms=ttft,
                       tpot_ms=tpot,
                       memory_headroom_pct=_headroom(plan, fleet, cat), delta_usd_per_month=None if base is None else round(usd - base, 2),
                       quality_note=note[0], quality_source=note[1], assumption=assumption)  # fmt: skip


def whatif(fleet: Fleet, cat: CatalogueLike, changes: list[Change], quality: QualityData,
           on_done: Callable[[], None] | None = None) -> WhatIf:  # fmt: skip
    """Size ``fleet`` and each alternative of ``changes``; the first row is the baseline.

    Raises :class:`InfeasibleError` when the baseline itself has no plan (nothing to compare with); an
    alternative without a plan is a row with ``usd_per_month`` None and the reason.
    """
    from aicap.sizing.plan.sizer import size

    notes = []
    if hourly := [w.name for w in fleet.workloads if w.profile is not None]:
        notes.append(f"whatif compares static plans: the hourly demand of {', '.join(hourly)} is sized at its peak hour "
                     "(`aicap size` plans it hour by hour, for less)")  # fmt: skip
    if len(models := fleet.constraints.pricing_models) > 1:
        notes.append(f"whatif prices static plans with one pricing model: {models[0]}, the first of {', '.join(models)}")
    base_plan = size(fleet, cat, alternatives=False)
    base = base_plan.totals.usd_per_month

    def caveats(plan: Plan | None, name: str) -> None:  # a row won on priors no measurement backs: say so, as size does
        for w in plan.warnings if plan is not None else []:
            if "are not fitted on measurements" in w and f"{name}: {w}" not in notes:
                notes.append(f"{name}: {w}")

    caveats(base_plan, "baseline")
    rows = [_row("baseline", base_plan, fleet, cat, ("as the fleet says", None), None, None)]
    if on_done is not None:
        on_done()
    for change in changes:
        changed, ccat = apply(fleet, change, cat)
        note = _quality(change, fleet, cat, quality)
        try:
            plan: Plan | None = size(changed, ccat, alternatives=False)
            why = None
        except InfeasibleError as exc:
            plan, why = None, str(exc)
        assumed = _assumption(change, plan, changed, ccat)
        if plan is not None and change.kind in ("weights", "kv") and _same_deployments(plan, base_plan):
            same = "the baseline plan already runs this: the alternative changes nothing"  # the sizer had picked that format
            assumed = same if assumed is None else f"{same}; {assumed}"
        rows.append(_row(change.name, plan, changed, ccat, note, base, why, assumed))
        caveats(plan, change.name)
        if on_done is not None:
            on_done()
    return WhatIf(alternatives=rows, notes=notes)


def hardware_bought(plan: Plan) -> str:
    """Devices bought, by type: ``16× a100-40gb-sxm``."""
    bought: dict[str, int] = {}
    for i in plan.instances:
        bought[i.hardware] = bought.get(i.hardware, 0) + i.devices
    return ", ".join(f"{n}× {h}" for h, n in sorted(bought.items()))
