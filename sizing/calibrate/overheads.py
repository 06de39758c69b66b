"""Per-request overhead of each serving engine, fitted on published measurements under load.

A request pays latency outside the accelerator's steps: the HTTP server, tokenisation and
detokenisation, hand-offs between the API process and the engine. It adds to TTFT and end-to-end
latency, not to the steps, so it is a constant per engine and version rather than an efficiency.

For each engine profile the server and closed-loop cases of its ``frameworks`` are predicted (the
simulator at the case's load); each mean or median TTFT metric gives a residual
``r = measured − (predicted − o_now)`` (``o_now`` the overhead the prediction already carries, so the
fit does not depend on it). The fit is ``o = max(median_s(median(r_s)), 0)``; p99 metrics are left out (their
residuals are queueing errors). Each source counts once: ``o`` is the median over sources of each
source's median residual (as the engine factors take the median of each source's optimum), so a source
with many runs cannot carry the fit alone. Leave-one-source-out refits without each source and reports that
source's median absolute TTFT error at the refitted overhead next to the in-sample one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from aicap.sizing.calibrate.validation import ValidationReport
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for

TTFT_METRICS = ("ttft_ms_mean", "ttft_ms_p50")


@dataclass(frozen=True)
class Residual:
    """One TTFT metric's residual (ms) without any request overhead."""

    case: str
    source: str
    measured_ms: float
    predicted_ms: float  # without the overhead

    @property
    def residual_ms(self) -> float:
        """``measured − predicted``."""
        return self.measured_ms - self.predicted_ms


@dataclass(frozen=True)
class OverheadFit:
    """The fitted overhead of one engine, its evidence and its leave-one-source-out check.

    ``loso`` maps each source to ``(overhead without it [ms], its median |error| % in-sample, out of sample)``.
    """

    engine: str
    overhead_ms: float
    residuals: tuple[Residual, ...]
    loso: dict[str, tuple[float, float, float]]

    @property
    def cases(self) -> int:
        """Cases behind the fit."""
        return len({r.case for r in self.residuals})

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources behind the fit, sorted."""
        return tuple(sorted({r.source for r in self.residuals}))

    def source_note(self) -> str:
        """The provenance line for the engine profile's ``request_overhead_source`` (add the date of the fit)."""
        return (f"fitted by `aicap validate --set server --fit-overheads`: median over {len(self.sources)} sources of each source's "
                f"median TTFT residual ({len(self.residuals)} mean/median TTFT metrics of {self.cases} published cases under load: "
                f"{', '.join(self.sources)})")  # fmt: skip


def _fit(rs: list[Residual]) -> float:
    """``max(median over sources of each source's median residual, 0)`` [ms]."""
    if not rs:
        return 0.0
    by: dict[str, list[float]] = {}
    for r in rs:
        by.setdefault(r.source, []).append(r.residual_ms)
    return max(statistics.median(statistics.median(v) for v in by.values()), 0.0)


def _error(rs: list[Residual], overhead_ms: float) -> float:
    return statistics.median(abs(r.predicted_ms + overhead_ms - r.measured_ms) / r.measured_ms * 100.0 for r in rs)


def fit_overheads(cases: list[dict[str, Any]], report: ValidationReport, cat: CatalogueLike) -> list[OverheadFit]:
    """Fit every engine profile's request overhead on the scored ``cases`` (see the module docstring)."""
    by_id = {c["id"]: c for c in cases}
    out = []
    for spec in sorted(cat.engines.values(), key=lambda e: e.id):
        now = engine_for(cat, spec.id).runtime.request_overhead_ms
        rs = [
            Residual(r.case_id, str(by_id[r.case_id].get("source_key") or r.case_id), r.measured, r.predicted - now)
            for r in report.scored
            if r.metric in TTFT_METRICS and r.kind in ("server", "closed_loop") and r.predicted is not None
            and by_id.get(r.case_id, {}).get("framework") in spec.frameworks and r.measured > 0
        ]  # fmt: skip
        if not rs:
            continue
        fit = _fit(rs)
        loso = {}
        for src in sorted({r.source for r in rs}):
            mine = [r for r in rs if r.source == src]
            without = _fit([r for r in rs if r.source != src])
            loso[src] = (without, _error(mine, fit), _error(mine, without))
        out.append(OverheadFit(spec.id, fit, tuple(rs), loso))
    return out
