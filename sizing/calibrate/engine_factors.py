"""How fast each serving engine streams memory on each device family, fitted on its published runs under load.

The efficiency factors of a device family are fitted on published runs without load, almost all of them
TensorRT-LLM's (:mod:`aicap.sizing.calibrate.calibration`). Other engines read weights and KV cache at
their own rates: their attention kernels, sampling and per-sequence host work differ. For each engine
profile and device family with published runs under load (``server`` and ``closed_loop`` cases whose
``framework`` the profile names) one multiplier ``m`` on the family's memory efficiency is fitted,

    m̂ = argmin_m  Σ_k ρ(ln(ŷ_k(m) / y_k) / 0.1),   ρ(x) = 2(√(1 + x²) − 1)   (pseudo-Huber),

over the runs' per-token latencies, end-to-end latencies and throughputs ``y_k`` (TTFT is left to the
request overhead, :mod:`aicap.sizing.calibrate.overheads`), each run replayed by the simulator with
``η_m · m``; ``m`` is bounded to [0.5, 1.5]. The profile keeps it shrunk toward 1 by the number of runs
``n`` behind it,

    m = exp(n / (n + 4) · ln m̂),

so that a family an engine was measured on a few times keeps most of its no-load fit (four runs weigh as
much as the family's own factors). The engine profile stores ``m`` per family (``factors``), and every
prediction for that engine applies it (:meth:`~aicap.sizing.core.specs.engine.EngineSpec.adjust`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicap.sizing.calibrate.accuracy import metric_class
from aicap.sizing.calibrate.validation import EngineMemory, ScoredMetric, score
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for_framework

SHRINK_RUNS = 4.0  # runs whose evidence weighs as much as the family's no-load fit
BOUNDS = (0.5, 1.5)
SCALE = 0.1  # the log-ratio at which the loss turns from quadratic to linear (a 10% miss)


@dataclass(frozen=True)
class EngineFactorFit:
    """One (engine, family) multiplier: the raw optimum, the shrunk value and the runs behind it."""

    engine: str
    family: str
    cases: int
    metrics: int
    fitted: float
    multiplier: float
    sources: tuple[str, ...]
    median_before_pct: float
    median_after_pct: float

    def source_note(self) -> str:
        """The provenance line for the profile's ``factors`` entry (add the date of the fit)."""
        return (f"fitted by `aicap validate --set server --fit-engine-factors`: per-token, end-to-end and throughput metrics "
                f"({self.metrics}) of {self.cases} published runs under load ({', '.join(self.sources)}), optimum x{self.fitted:.3f} "
                f"shrunk by n/(n + 4) to x{self.multiplier:.3f}; their median error {self.median_before_pct:.1f}% at x1, "
                f"{self.median_after_pct:.1f}% at x{self.multiplier:.3f}")  # fmt: skip


def robust_loss(rows: list[ScoredMetric]) -> float:
    """Mean pseudo-Huber loss of the rows' log ratios, ``ρ(ln(ŷ/y)/0.1)`` (module docstring); 1e9 without rows."""
    x = np.array([math.log(r.predicted / r.measured) for r in rows if r.predicted and r.predicted > 0 and r.measured > 0]) / SCALE
    return float(np.mean(2.0 * (np.sqrt(1.0 + x * x) - 1.0))) if x.size else 1e9


def groups(cases: list[dict[str, Any]], cat: CatalogueLike) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The comparable cases under load of each (engine profile, device family) pair."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cases:
        if c.get("kind") not in ("server", "closed_loop") or c.get("comparable") is False or c.get("hardware") not in cat.devices:
            continue
        engine = engine_for_framework(cat, c.get("framework"))
        if engine.spec is not None:
            out.setdefault((engine.id, cat.devices[c["hardware"]].family), []).append(c)
    return dict(sorted(out.items()))


def _fitted_rows(rows: list[ScoredMetric]) -> list[ScoredMetric]:
    return [r for r in rows if r.predicted is not None and metric_class(r.metric) != "ttft"]


def _median(rows: list[ScoredMetric]) -> float:
    errs = [r.error_pct for r in rows if r.error_pct is not None]
    return statistics.median(errs) if errs else math.nan


def fit_engine_factors(cases: list[dict[str, Any]], cat: CatalogueLike, request_overheads: Mapping[str, float] | None = None,
                       progress: Callable[[str], None] | None = None) -> list[EngineFactorFit]:  # fmt: skip
    """Fit every (engine, family) multiplier that ``cases`` hold runs for (module docstring)."""
    from scipy.optimize import minimize_scalar

    out = []
    for (engine, family), mine in groups(cases, cat).items():
        if progress is not None:
            progress(f"{engine} on {family}: {len(mine)} runs")

        def rows_at(m: float, engine: str = engine, family: str = family, mine: list[dict[str, Any]] = mine) -> list[ScoredMetric]:
            memory: EngineMemory = {engine: {family: m}}
            return _fitted_rows(score(mine, cat, request_overheads=request_overheads, engine_memory=memory).rows)

        before = rows_at(1.0)
        if not before:
            continue
        res = minimize_scalar(lambda x: robust_loss(rows_at(math.exp(x))), bounds=tuple(math.log(b) for b in BOUNDS), method="bounded",
                              options={"xatol": 0.005})  # fmt: skip
        n = len(mine)
        fitted = math.exp(float(res.x))
        shrunk = round(math.exp(n / (n + SHRINK_RUNS) * float(res.x)), 3)
        sources = tuple(sorted({str(c.get("source_key") or c["id"]) for c in mine}))
        out.append(EngineFactorFit(engine, family, n, len(before), round(fitted, 3), shrunk, sources, _median(before),
                                   _median(rows_at(shrunk))))  # fmt: skip
    return out


def as_engine_memory(fits: list[EngineFactorFit]) -> EngineMemory:
    """The fitted multipliers as ``engine id → family → multiplier``, for :func:`~aicap.sizing.calibrate.validation.score`."""
    out: dict[str, dict[str, float]] = {}
    for f in fits:
        out.setdefault(f.engine, {})[f.family] = f.multiplier
    return out
