"""Fitting efficiency factors to measurements (``aicap calibrate``).

For each device family with measurements, three factors are fitted, the ones a roofline cannot know
from a datasheet: the compute efficiency ``η_c`` (and ``η_c,fp8`` when fp8 cases exist), the memory
efficiency ``η_m`` and the fixed per-step overhead ``t_0``, and, where int8/int4 weight-only cases exist, a multiplier on
``η_m`` for that format (de-quantising kernels stream weights more slowly). The loss is the mean of
``ρ(ln(pred/meas))`` over every scored metric of the family, with ``ρ(x) = 2(√(1 + (x/0.1)²) − 1)``
(soft-L1, so one odd case does not drag the fit).

The family's default factors are fitted on all its cases. Where a serving stack's cases stay more
than 2× off under those defaults (one set of factors cannot describe both stacks, e.g. ggml without
AMX next to Intel's AMX runtime on the same Xeon), that stack gets its own entry,
``family@framework``, fitted on its cases alone; validation uses it for cases of that framework. When
the stack's cases span several release series (``major.minor`` of ``framework_version``), the entry is
per series, ``family@framework series``, for each series with a case 2× off: TensorRT-LLM 0.12's MoE
kernels run Mixtral 2.3× faster on H100 than 0.9's, which no single factor describes (:func:`~aicap.sizing.calibrate.validation.stack_of`).
Bounds keep the factors physical:
``0.01 ≤ η_c ≤ 0.98`` (CPU runtimes reach a few percent of the AMX peak), ``0.1 ≤ η_m ≤ 0.98``,
``0 ≤ t_0 ≤ 30 ms`` (at most a modern engine's sourced host cost per step on NVIDIA GPUs:
``step_overhead`` in ``efficiency_priors.yaml``), ``1 ≤ λ ≤ 200 µs`` (at most the published latency of one
small all-reduce over the family's links: ``link_latency`` there), ``0.2 ≤`` int8/int4 memory
multipliers ``≤ 1``. Where the family's cases include MoE models the MoE multiplier ``η_moe`` is
fitted too, where they include tensor parallelism the collective latency ``λ``, and where
``efficiency_priors.yaml`` bounds it with a measurement (``kernel_latency``: NVIDIA GPUs) the fixed time
``0 ≤ τ_k`` of one graphed kernel (:func:`~aicap.sizing.perf.launches.kernel_floor_s`). Last, where
the measurements support one more factor, the exposed share ``0 ≤ α ≤ 1`` of the roofline's shorter time per
operator group (:mod:`aicap.sizing.perf.roofline`: ``max(c, m) + α·min(c, m)``), else it keeps 0. Optimiser:
bounded Powell from two fixed starting points (the better result wins), so the fit does not depend on
the factors already in the catalogue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicap.sizing.calibrate.validation import robust_loss, score, series, stack_of, with_layout
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import EfficiencySpec
from aicap.sizing.core.specs.model import AnyModel, DecoderModel

_BOUNDS = {
    "compute": (0.01, 0.98),
    "compute_fp8": (0.01, 0.98),
    "memory": (0.1, 0.98),
    "step_overhead_ms": (0.0, 30.0),
    "moe_compute": (0.05, 1.0),
    "link_latency_us": (1.0, 200.0),
    "kernel_latency_us": (0.0, 20.0),
    "exposed_share": (0.0, 1.0),
}


@dataclass(frozen=True)
class FamilyFit:
    """Fitted factors of one family and the fit's quality."""

    family: str
    before: EfficiencySpec
    after: EfficiencySpec
    metrics: int
    median_error_before_pct: float
    median_error_after_pct: float
    at_bound: tuple[str, ...] = ()  # fitted factors that ended on a bound: the model cannot absorb the data there


# Fixed starting points (not the current catalogue values), so a calibration is reproducible.
_START: list[dict[str, float]] = [
    {"memory": 0.75, "compute": 0.6, "step_overhead_ms": 1.0, "compute_fp8": 0.6, "moe_compute": 0.6, "link_latency_us": 20.0,
     "kernel_latency_us": 2.0, "memory_int8": 0.8, "memory_int4": 0.6, "exposed_share": 0.1},
    {"memory": 0.4, "compute": 0.15, "step_overhead_ms": 8.0, "compute_fp8": 0.3, "moe_compute": 0.3, "link_latency_us": 60.0,
     "kernel_latency_us": 4.0, "memory_int8": 0.6, "memory_int4": 0.4, "exposed_share": 0.5},
]  # fmt: skip


def _loss(report: Any) -> float:
    return robust_loss(report.scored)


def _median(report: Any) -> float:
    e = [r.error_pct for r in report.scored]
    return float(np.median(e)) if e else float("nan")


def _priors_document() -> dict[str, Any]:
    """``hardware_db/validation/efficiency_priors.yaml``, parsed: priors, neighbours and the sourced bounds."""
    from importlib import resources
    from pathlib import Path

    from aicap.sizing.core.documents import load_yaml

    node = resources.files("aicap.hardware_db").joinpath("validation/efficiency_priors.yaml")
    doc: dict[str, Any] = load_yaml(Path("efficiency_priors.yaml"), node.read_text(encoding="utf-8"))
    return doc


def load_priors() -> dict[str, EfficiencySpec]:
    """The pre-calibration factors per family (``hardware_db/validation/efficiency_priors.yaml``)."""
    from aicap.sizing.core.documents import validate_model

    doc = _priors_document()
    specs = [validate_model(EfficiencySpec, e, "efficiency_priors.yaml") for e in doc["efficiency"]]
    return {s.key: s for s in specs}


def load_neighbours() -> dict[str, str | None]:
    """Per measured family, the fitted family whose factors it takes when its own cases are all held out.

    From ``neighbours`` in ``hardware_db/validation/efficiency_priors.yaml`` (``None``: keep the prior). Every
    family and neighbour named there must have a prior.

    Raises
    ------
    InputError
        When an entry names a family without a prior.
    """
    doc = _priors_document()
    known = {s.family for s in load_priors().values()}
    out: dict[str, str | None] = {}
    for entry in doc.get("neighbours") or []:
        family, nearest = str(entry["family"]), entry.get("nearest")
        for name in (family, nearest):
            if name is not None and name not in known:
                raise InputError(f"efficiency_priors.yaml: neighbours names '{name}', which has no prior; "
                                 f"known: {', '.join(sorted(known))}")  # fmt: skip
        out[family] = None if nearest is None else str(nearest)
    return out


# Sections of ``efficiency_priors.yaml`` that bound a fitted factor per family with a sourced figure:
# section -> (factor, key of the bound in an entry).
_SOURCED_BOUNDS = {
    "step_overhead": ("step_overhead_ms", "max_ms"),
    "link_latency": ("link_latency_us", "max_us"),
    "kernel_latency": ("kernel_latency_us", "max_us"),
}


def load_fit_bounds() -> dict[str, dict[str, float]]:
    """Per factor and family, the most a fit may give it (``step_overhead``, ``link_latency``, ``kernel_latency`` in the priors file).

    ``{"step_overhead_ms": {family: ms}, "link_latency_us": {family: µs}, "kernel_latency_us": {family: µs}}``: the
    engine's host cost per step, the latency of one small tensor-parallel all-reduce and the fixed time of one graphed
    kernel, each bounded by published measurements where they exist. Families not listed keep the general bound of
    :data:`_BOUNDS`, except the kernel latency, which only a family with a sourced bound fits (others keep 0).

    Raises
    ------
    InputError
        When an entry names a family without a prior, or a bound outside the general one.
    """
    doc = _priors_document()
    known = {s.family for s in load_priors().values()}
    out: dict[str, dict[str, float]] = {}
    for section, (factor, key) in _SOURCED_BOUNDS.items():
        lo, hi = _BOUNDS[factor]
        per_family = out.setdefault(factor, {})
        for entry in doc.get(section) or []:
            most = float(entry[key])
            if not lo <= most <= hi:
                raise InputError(f"efficiency_priors.yaml: {section} {key} {most:g} is outside {lo:g}-{hi:g}")
            for family in entry["families"]:
                if family not in known:
                    raise InputError(f"efficiency_priors.yaml: {section} names '{family}', which has no prior; "
                                     f"known: {', '.join(sorted(known))}")  # fmt: skip
                per_family[str(family)] = most
    return out


def load_own_step_overheads() -> dict[str, tuple[float, str]]:
    """Per family, the platform's own per-step host cost [ms] and its source, kept over an inherited one.

    From the ``step_overhead_ms`` and ``step_overhead_source`` of ``neighbours`` entries in
    ``hardware_db/validation/efficiency_priors.yaml``: a family whose serving stacks' host path differs
    from its neighbour's (XLA programs dispatched from a host loop against CUDA graphs) takes the
    neighbour's kernel factors but not its host cost.

    Raises
    ------
    InputError
        When an entry gives the cost without a source, or outside the general bound of a fitted one.
    """
    lo, hi = _BOUNDS["step_overhead_ms"]
    out: dict[str, tuple[float, str]] = {}
    for entry in _priors_document().get("neighbours") or []:
        if entry.get("step_overhead_ms") is None:
            continue
        ms, source = float(entry["step_overhead_ms"]), str(entry.get("step_overhead_source") or "")
        if not source or not lo <= ms <= hi:
            raise InputError(f"efficiency_priors.yaml: neighbours entry of '{entry['family']}': step_overhead_ms {ms:g} "
                             f"needs a step_overhead_source and a value within {lo:g}-{hi:g}")  # fmt: skip
        out[str(entry["family"])] = (ms, source)
    return out


def held_out_factors(fitted: dict[str, EfficiencySpec], priors: dict[str, EfficiencySpec],
                     neighbours: dict[str, str | None],
                     own_step_overheads: Mapping[str, tuple[float, str]] | None = None) -> dict[str, EfficiencySpec]:  # fmt: skip
    """Factors per family for a fold: fitted where the fold has cases, else the nearest fitted neighbour's, else the prior.

    A family without cases takes the factors of its neighbour (:func:`load_neighbours`), followed along the
    chain until a fitted family, as the catalogue's ``inherits`` does for unmeasured families; without one it
    keeps its prior. A family in ``own_step_overheads`` (:func:`load_own_step_overheads`) keeps that per-step
    host cost [ms] instead of the neighbour's, and no graphed kernels' latency ``τ_k`` (its steps are not CUDA graphs).
    """
    own = own_step_overheads or {}
    out = {**priors, **fitted}
    for key, prior in priors.items():
        if key in fitted:
            continue
        near, seen = neighbours.get(prior.family), {prior.family}
        while near is not None and near not in fitted and near not in seen:
            seen.add(near)
            near = neighbours.get(near)
        if near is not None and near in fitted:
            update: dict[str, object] = {"family": prior.family, "framework": prior.framework,
                                         "source": f"held out: inherited from {near} as fitted in this fold"}  # fmt: skip
            if prior.family in own:  # not a CUDA graph's host loop, nor its kernel boundaries
                ms, why = own[prior.family]
                update["step_overhead_ms"] = ms
                update["kernel_latency_us"] = 0.0
                update["source"] = f"{update['source']}, but the per-step host cost of its own platform ({why})"
            out[key] = fitted[near].model_copy(update=update)
    return out


def _is_moe(model: AnyModel) -> bool:
    return isinstance(model, DecoderModel) and model.moe is not None


def fit_family(family: str, cases: list[dict[str, Any]], cat: CatalogueLike, label: str, framework: str | None = None,
               priors: dict[str, EfficiencySpec] | None = None, *, refine: bool = False) -> FamilyFit | None:  # fmt: skip
    """Fit one family's factors (or one stack's, with ``framework``: a framework or ``framework series``); ``None`` without cases.

    The fit starts from the family's prior (``priors``, default :func:`load_priors`), falling back to
    the catalogue entry for a family without one; factors that are not fitted keep the prior's value.
    With ``refine`` (a user's own measurements on top of the shipped factors, which ``priors`` then
    holds), the starting values are also a starting point of the search, and when the measurements
    support fewer factors than the family has, the ones fitted are those the measurements are most
    sensitive to (the loss change for ±10% of each), not the first in a fixed order: one TTFT
    measurement moves compute, not memory.
    """
    from scipy.optimize import minimize

    mine = [c for c in cases if c.get("hardware") in cat.devices and cat.devices[c["hardware"]].family == family]
    mine = [c for c in mine if c.get("comparable", True) is not False and (framework is None or framework in stack_of(c))]
    priors = load_priors() if priors is None else priors
    start = priors.get(family) or cat.efficiency.get(family)
    if not mine or start is None:
        return None
    base = start.model_copy(update={"framework": framework})
    if not score(mine, cat, {base.key: base}).scored:
        return None  # no case of this family can be predicted (each is skipped with its reason): nothing to fit
    # Fit only factors the cases can identify: 16-bit compute needs a non-fp8 case, fp8 compute an fp8 one.
    names = ["memory", "step_overhead_ms"]
    if any(c.get("weights_dtype") != "fp8" for c in mine):
        names.insert(1, "compute")
    if any(c.get("weights_dtype") == "fp8" for c in mine):
        names.append("compute_fp8")
    if any(c.get("model") in cat.models and _is_moe(cat.models[c["model"]]) for c in mine):
        names.append("moe_compute")
    if any((c.get("tp") or 1) > 1 for c in mine):
        names.append("link_latency_us")
    fit_bounds = load_fit_bounds()
    if family in fit_bounds.get("kernel_latency_us", {}):
        names.append("kernel_latency_us")
    quant = sorted({c["weights_dtype"] for c in mine if c.get("weights_dtype") in {"int8", "int4"}})
    names += [f"memory_{q}" for q in quant]
    names.append("exposed_share")  # last: the first factor to stay at its prior (0, the plain roofline) where cases are few
    # Never fit more factors than half the measurements support; the rest keep their prior.
    n_metrics = sum(1 for c in mine for k in c["metrics"] if k != "output_tok_s_per_device")
    limits = dict(_BOUNDS)
    for factor, most in fit_bounds.items():  # a sourced bound where one is given
        if family in most:
            limits[factor] = (_BOUNDS[factor][0], most[family])
    key = base.key
    # A case without its layout would search every layout at each evaluation: pin the one the prior picks.
    pinned = [with_layout(c, cat, {key: base}) for c in mine]
    keep = max(1, n_metrics // 2)
    if refine and keep < len(names):
        names = sorted(names, key=lambda n: -_sensitivity(n, base, pinned, cat, limits))[:keep]
    names = names[:keep]
    quant = [q for q in quant if f"memory_{q}" in names]
    box = np.array([limits.get(n, (0.2, 1.0)) for n in names]).T
    starts = [np.clip(np.array([_START[k][n] for n in names], dtype=float), *box) for k in range(len(_START))]
    if refine:
        starts.insert(0, np.clip(np.array([_value(base, n) for n in names], dtype=float), *box))

    def spec(x: np.ndarray) -> EfficiencySpec:
        vals: dict[str, Any] = {n: float(np.clip(v, *limits.get(n, (0.2, 1.0)))) for n, v in zip(names, x, strict=True)}
        by_dtype = dict(base.memory_by_dtype)
        for q in quant:
            by_dtype[q] = vals.pop(f"memory_{q}")
        spec_: EfficiencySpec = base.model_copy(update={**vals, "memory_by_dtype": by_dtype})
        return spec_

    def loss(x: np.ndarray) -> float:
        return _loss(score(pinned, cat, {key: spec(x)}))

    bounds = [limits.get(n, (0.2, 1.0)) for n in names]
    results = [minimize(loss, x0, method="Powell", bounds=bounds, options={"xtol": 1e-3, "ftol": 1e-6, "maxiter": 50 * len(names)})
               for x0 in starts]  # fmt: skip
    fitted = spec(min(results, key=lambda r: float(r.fun)).x)
    rounded: dict[str, Any] = {n: round(float(getattr(fitted, n)), 3) for n in names if not n.startswith("memory_")}
    rounded["memory_by_dtype"] = {k: round(v, 3) for k, v in fitted.memory_by_dtype.items()}
    n_cases = len(mine)
    n_metrics_all = sum(len(c["metrics"]) for c in mine)
    note = f"fitted by aicap calibrate on {label}: {n_metrics_all} metrics of {n_cases} cases, {dt.date.today().isoformat()}"
    after = fitted.model_copy(update={**rounded, "source": note})
    before_r, after_r = score(mine, cat, {key: start}), score(mine, cat, {key: after})
    edge = tuple(n for n, b in zip(names, bounds, strict=True) if min(abs(_value(fitted, n) - b[0]), abs(_value(fitted, n) - b[1])) < 1e-3)
    return FamilyFit(key, base, after, len(after_r.scored), _median(before_r), _median(after_r), edge)


def _value(spec: EfficiencySpec, name: str) -> float:
    """The factor ``name`` of ``spec`` (``memory_int4``: the int4 memory factor, the family's memory where it has none)."""
    if name.startswith("memory_"):
        return float(spec.memory_by_dtype.get(name.removeprefix("memory_"), spec.memory))
    return float(getattr(spec, name))


def _sensitivity(name: str, base: EfficiencySpec, cases: list[dict[str, Any]], cat: CatalogueLike,
                 limits: dict[str, tuple[float, float]]) -> float:  # fmt: skip
    """How much the cases' loss moves when factor ``name`` of ``base`` moves by ±10% (within its bounds)."""
    lo, hi = limits.get(name, (0.2, 1.0))
    v = _value(base, name)
    out = []
    for f in (0.9, 1.1):
        x = float(np.clip(v * f, lo, hi))
        if name.startswith("memory_"):
            spec = base.model_copy(update={"memory_by_dtype": {**base.memory_by_dtype, name.removeprefix("memory_"): x}})
        else:
            spec = base.model_copy(update={name: x})
        out.append(_loss(score(cases, cat, {base.key: spec})))
    return abs(out[1] - out[0])


def calibrate(cases: list[dict[str, Any]], cat: CatalogueLike, label: str, *, refine: bool = False) -> list[FamilyFit]:
    """Fit every family that has measurements in ``cases``, then any stack the family fit leaves 2× off.

    By default from the priors (how the shipped factors are fitted on the public cases); with ``refine``
    from the catalogue's current factors, as ``aicap calibrate`` fits a user's own measurements: factors
    the measurements cannot determine keep the catalogue's values, and the errors before are the catalogue's.
    """
    priors = {e.family: e for e in cat.efficiency.values() if e.framework is None} if refine else load_priors()
    families = sorted({cat.devices[c["hardware"]].family for c in cases if c.get("hardware") in cat.devices})
    fits = [f for f in (fit_family(fam, cases, cat, label, priors=priors, refine=refine) for fam in families) if f is not None]
    for fit in list(fits):
        mine = [c for c in cases if c.get("hardware") in cat.devices and cat.devices[c["hardware"]].family == fit.family]
        report = score(mine, cat, {fit.family: fit.after})
        by_id = {c["id"]: c for c in mine}
        far = [by_id[r.case_id] for r in report.scored if r.predicted is not None and not 0.5 <= r.predicted / r.measured <= 2.0]
        for fw in sorted({str(c["framework"]) for c in far if c.get("framework") is not None}):
            # One entry per release series with a case off where the framework's cases span several series.
            spans = {series(c) for c in mine if c.get("framework") == fw} - {None}
            keys = sorted({f"{fw} {series(c)}" for c in far if c.get("framework") == fw and series(c)}) if len(spans) > 1 else [fw]
            for key in keys:
                stack = fit_family(fit.family, cases, cat, label, framework=key, priors=priors, refine=refine)
                if stack is not None:
                    fits.append(stack)
    return fits


def overlay_yaml(fits: list[FamilyFit]) -> str:
    """A catalogue overlay file with the fitted factors (``--catalog`` picks it up)."""
    import yaml

    doc = {"schema_version": 1, "efficiency": [f.after.model_dump(exclude_none=True) for f in fits]}
    return "# Efficiency overlay written by `aicap calibrate`; use with --catalog or AICAP_CATALOG.\n" + yaml.safe_dump(
        doc, sort_keys=False
    )
