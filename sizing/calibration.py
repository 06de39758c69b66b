"""Fitting efficiency factors to measurements (``aicap calibrate``).

For each device family with measurements, three factors are fitted, the ones a roofline cannot know
from a datasheet: the compute efficiency ``η_c`` (and ``η_c,fp8`` when fp8 cases exist), the memory
efficiency ``η_m`` and the fixed per-step overhead ``t_0``, and, where int8/int4 weight-only cases exist, a multiplier on
``η_m`` for that format (de-quantising kernels stream weights more slowly). The loss is the mean of
``ρ(ln(pred/meas))`` over every scored metric of the family, with ``ρ(x) = 2(√(1 + (x/0.1)²) − 1)``
(soft-L1, so one odd case does not drag the fit). Bounds keep the factors physical:
``0.01 ≤ η_c ≤ 0.98`` (CPU runtimes reach a few percent of the AMX peak), ``0.1 ≤ η_m ≤ 0.98``,
``0 ≤ t_0 ≤ 30 ms``, ``1 ≤ λ ≤ 200 µs``. Where the family's cases include MoE models the MoE
multiplier ``η_moe`` is fitted too, and where they include tensor parallelism the collective latency
``λ``. Optimiser: Nelder-Mead on the clipped parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from aicap.sizing.specs import EfficiencySpec
from aicap.sizing.validation import score

_BOUNDS = {
    "compute": (0.01, 0.98),
    "compute_fp8": (0.01, 0.98),
    "memory": (0.1, 0.98),
    "step_overhead_ms": (0.0, 30.0),
    "moe_compute": (0.05, 1.0),
    "link_latency_us": (1.0, 200.0),
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


def _initial(base: EfficiencySpec, name: str) -> float:
    if name.startswith("memory_"):
        return base.memory_by_dtype.get(name.removeprefix("memory_"), 1.0)
    value = getattr(base, name)
    if name == "step_overhead_ms":
        return max(float(value), 1.0)  # a zero start gives Nelder-Mead a degenerate simplex
    return float(base.compute if value is None else value)


def _loss(report: Any) -> float:
    errs = [np.log(r.predicted / r.measured) for r in report.scored if r.predicted and r.predicted > 0]
    if not errs:
        return 1e9
    x = np.asarray(errs) / 0.1
    return float(np.mean(2.0 * (np.sqrt(1.0 + x * x) - 1.0)))


def _median(report: Any) -> float:
    e = [r.error_pct for r in report.scored]
    return float(np.median(e)) if e else float("nan")


def fit_family(family: str, cases: list[dict[str, Any]], cat: Any, label: str) -> FamilyFit | None:
    """Fit one family's factors on the cases whose device belongs to it; ``None`` if it has none."""
    from scipy.optimize import minimize

    mine = [c for c in cases if c.get("hardware") in cat.devices and cat.devices[c["hardware"]].family == family]
    mine = [c for c in mine if c.get("comparable", True) is not False]
    if not mine or family not in cat.efficiency:
        return None
    base = cat.efficiency[family]
    names = ["memory", "compute", "step_overhead_ms"]
    if any(c.get("weights_dtype") == "fp8" for c in mine):
        names.append("compute_fp8")
    if any(c.get("model") in cat.models and getattr(cat.models[c["model"]], "moe", None) is not None for c in mine):
        names.append("moe_compute")
    if any((c.get("tp") or 1) > 1 for c in mine):
        names.append("link_latency_us")
    quant = sorted({c["weights_dtype"] for c in mine if c.get("weights_dtype") in {"int8", "int4"}})
    names += [f"memory_{q}" for q in quant]
    # Never fit more factors than half the measurements support; the rest keep their prior.
    n_metrics = sum(1 for c in mine for k in c["metrics"] if k != "output_tok_s_per_device")
    names = names[: max(1, n_metrics // 2)]
    quant = [q for q in quant if f"memory_{q}" in names]
    x0 = np.array([_initial(base, n) for n in names], dtype=float)

    def spec(x: np.ndarray) -> EfficiencySpec:
        vals: dict[str, Any] = {n: float(np.clip(v, *_BOUNDS.get(n, (0.2, 1.0)))) for n, v in zip(names, x, strict=True)}
        by_dtype = dict(base.memory_by_dtype)
        for q in quant:
            by_dtype[q] = vals.pop(f"memory_{q}")
        spec_: EfficiencySpec = base.model_copy(update={**vals, "memory_by_dtype": by_dtype})
        return spec_

    def loss(x: np.ndarray) -> float:
        return _loss(score(mine, cat, {family: spec(x)}))

    res = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-5, "maxiter": 300 * len(names)})
    fitted = spec(res.x)
    rounded: dict[str, Any] = {n: round(float(getattr(fitted, n)), 3) for n in names if not n.startswith("memory_")}
    rounded["memory_by_dtype"] = {k: round(v, 3) for k, v in fitted.memory_by_dtype.items()}
    n_cases = len(mine)
    n_metrics_all = sum(len(c["metrics"]) for c in mine)
    note = f"fitted by aicap calibrate on {label}: {n_metrics_all} metrics of {n_cases} cases, {dt.date.today().isoformat()}"
    after = fitted.model_copy(update={**rounded, "source": note})
    before_r, after_r = score(mine, cat), score(mine, cat, {family: after})
    return FamilyFit(family, base, after, len(after_r.scored), _median(before_r), _median(after_r))


def calibrate(cases: list[dict[str, Any]], cat: Any, label: str) -> list[FamilyFit]:
    """Fit every family that has measurements in ``cases``."""
    families = sorted({cat.devices[c["hardware"]].family for c in cases if c.get("hardware") in cat.devices})
    return [f for f in (fit_family(fam, cases, cat, label) for fam in families) if f is not None]


def overlay_yaml(fits: list[FamilyFit]) -> str:
    """A catalogue overlay file with the fitted factors (``--catalog`` picks it up)."""
    import yaml

    doc = {"schema_version": 1, "efficiency": [f.after.model_dump(exclude_defaults=False) for f in fits]}
    return "# Efficiency overlay written by `aicap calibrate`; use with --catalog or AICAP_CATALOG.\n" + yaml.safe_dump(
        doc, sort_keys=False
    )
