"""How fast each serving engine streams memory on each device family, fitted on its published runs under load.

The efficiency factors of a device family are fitted on published runs without load, almost all of them
TensorRT-LLM's (:mod:`aicap.sizing.calibrate.calibration`). Other engines read weights and KV cache at
their own rates: their attention kernels, sampling and per-sequence host work differ. For each engine
profile and device family with published runs under load (``server`` and ``closed_loop`` cases whose
``framework`` the profile names) one multiplier ``m`` on the family's memory efficiency is fitted. Runs
of one source share a setup (stack version, cluster, client), so the source, not the run, is the unit
of evidence: each source ``s`` gets its own optimum

    m̂_s = argmin_m  Σ_k ρ(ln(ŷ_k(m) / y_k) / 0.1),   ρ(x) = 2(√(1 + x²) − 1)   (pseudo-Huber),

over its runs' per-token latencies and throughputs ``y_k``, what the speed of memory sets directly, each
run replayed by the simulator with
``η_m · m``, ``m`` bounded to [0.5, 1.5]; the engine's is the median over its ``S`` sources, shrunk toward 1,

    m = exp(S / (S + 2) · median_s ln m̂_s),

so that one source that ran an unusual setup cannot move the engine's factor alone, and an engine seen
by few sources keeps most of its family's no-load fit (two sources weigh as much as the family's own
factors). The engine profile stores ``m`` per family (``factors``), and every prediction for that engine
applies it (:meth:`~aicap.sizing.core.specs.engine.EngineSpec.adjust`).

TTFT is left to the request overhead (:mod:`aicap.sizing.calibrate.overheads`), and so are end-to-end
latencies, ``TTFT + (n − 1)·TPOT``: their TTFT part is the overhead's and, near saturation, the queue's,
where a capacity error of a few per cent turns into a latency several times off. Fitted on them too,
the multiplier traded per-token accuracy for queueing delays (SGLang on H200: the DataCrunch source's
optimum went from x0.944 to x0.898 with its saturated runs' end-to-end latencies in the fit) and moved
with the overhead fitted after it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aicap.sizing.calibrate.accuracy import metric_class
from aicap.sizing.calibrate.validation import EngineMemory, ScoredMetric, robust_loss, score
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for_framework

SHRINK_SOURCES = 2.0  # sources whose evidence weighs as much as the family's no-load fit
BOUNDS = (0.5, 1.5)


@dataclass(frozen=True)
class EngineFactorFit:
    """One (engine, family) multiplier: each source's optimum, their median, the shrunk value and the runs behind it."""

    engine: str
    family: str
    cases: int
    metrics: int
    by_source: dict[str, float]
    fitted: float
    multiplier: float
    median_before_pct: float
    median_after_pct: float

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources behind the fit, sorted."""
        return tuple(sorted(self.by_source))

    def source_note(self) -> str:
        """The provenance line for the profile's ``factors`` entry (add the date of the fit)."""
        each = ", ".join(f"{s} x{m:.3f}" for s, m in sorted(self.by_source.items()))
        return (f"fitted by `aicap validate --set server --fit-engine-factors`: per-token and throughput metrics "
                f"({self.metrics}) of {self.cases} published runs under load; optimum per source {each}; median x{self.fitted:.3f} "
                f"shrunk by S/(S + 2) to x{self.multiplier:.3f}; the runs' median error {self.median_before_pct:.1f}% at x1, "
                f"{self.median_after_pct:.1f}% at x{self.multiplier:.3f}")  # fmt: skip


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


FITTED_CLASSES = ("tpot", "throughput")  # metric classes the multiplier is fitted on (module docstring)


def _fitted_rows(rows: list[ScoredMetric]) -> list[ScoredMetric]:
    return [r for r in rows if r.predicted is not None and metric_class(r.metric) in FITTED_CLASSES]


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
        predicted = {r.case_id for r in before}
        logs: dict[str, float] = {}
        for src in sorted({_source(c) for c in mine}):
            runs = [c for c in mine if _source(c) == src]
            if not any(c["id"] in predicted for c in runs):
                continue  # no run of this source can be predicted (each is skipped with its reason)
            res = minimize_scalar(lambda x, runs=runs: robust_loss(rows_at(math.exp(x), mine=runs)),
                                  bounds=tuple(math.log(b) for b in BOUNDS), method="bounded", options={"xatol": 0.005})  # fmt: skip
            logs[src] = float(res.x)
        centre = statistics.median(logs.values())
        shrunk = round(math.exp(len(logs) / (len(logs) + SHRINK_SOURCES) * centre), 3)
        by_source = {s: round(math.exp(v), 3) for s, v in logs.items()}
        out.append(EngineFactorFit(engine, family, len(mine), len(before), by_source, round(math.exp(centre), 3), shrunk, _median(before),
                                   _median(rows_at(shrunk))))  # fmt: skip
    return out


def _source(case: dict[str, Any]) -> str:
    return str(case.get("source_key") or case["id"])


def as_engine_memory(fits: list[EngineFactorFit]) -> EngineMemory:
    """The fitted multipliers as ``engine id → family → multiplier``, for :func:`~aicap.sizing.calibrate.validation.score`."""
    out: dict[str, dict[str, float]] = {}
    for f in fits:
        out.setdefault(f.engine, {})[f.family] = f.multiplier
    return out
