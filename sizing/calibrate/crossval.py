"""Leave-one-source-out accuracy over every public set: each source predicted by what was fitted without it.

The three sets of published measurements shipped with aicap fit different things, and each is checked
the same way: refit without one source, predict that source's cases, score them.

* **published** (serving without load; :mod:`aicap.sizing.calibrate.calibration`): the efficiency factors
  of every device family are refitted from their priors without the source's cases. A family left
  without cases takes the factors its declared nearest family got in the same fold
  (:func:`~aicap.sizing.calibrate.calibration.held_out_factors`), else keeps its prior; a family declared
  with its platform's own per-step host cost (TPUs: XLA programs, not CUDA graphs) keeps that cost.
* **server** (serving under load, simulated): what these cases fit is each engine's multiplier on its
  device families' memory efficiency (:mod:`aicap.sizing.calibrate.engine_factors`) and then its
  per-request overhead (:mod:`aicap.sizing.calibrate.overheads`), so both are refitted without the source
  (an engine or family left without runs gets no multiplier and no overhead) and the source's cases are
  simulated with them. The families' own factors come from the published set, which holds none of these
  sources.
* **training** (:func:`aicap.sizing.calibrate.training.leave_one_source_out`): the training factors. Its
  fits-in-memory answers are right or wrong, not a percentage, and are left out here.

Each metric's error is ``100·|predicted − measured|/measured``. A source's cases are predicted in one
fold, so a source that is the only evidence for a family, an engine or a chip shows what a new stack
costs: the honest number for a user whose stack aicap has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.calibrate.validation import ScoredMetric, ValidationReport, score
from aicap.sizing.core.catalogue import CatalogueLike

F = NDArray[np.float64]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class HeldOut:
    """One source's metrics predicted without it: measured and predicted values, in the order scored.

    ``labels``: each metric's case id and metric name (``"case-id metric"``), where known.
    """

    case_set: str
    source: str
    measured: tuple[float, ...]
    predicted: tuple[float, ...]
    labels: tuple[str, ...] = ()

    @property
    def errors_pct(self) -> F:
        """``100·|predicted − measured|/measured`` per metric."""
        m, p = np.asarray(self.measured, dtype=float), np.asarray(self.predicted, dtype=float)
        return np.asarray(100.0 * np.abs(p - m) / m, dtype=float)

    @property
    def within_2x(self) -> int:
        """Metrics predicted within a factor of two (``0.5 ≤ predicted/measured ≤ 2``)."""
        r = np.asarray(self.predicted, dtype=float) / np.asarray(self.measured, dtype=float)
        return int(((r >= 0.5) & (r <= 2.0)).sum())


@dataclass(frozen=True)
class Summary:
    """Absolute errors [%] of a group of metrics: count, median, p90 (linear interpolation) and worst."""

    n: int
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, errors: Sequence[float] | F) -> Summary:
        """The summary of ``errors`` (all ``nan`` when empty)."""
        a = np.asarray(errors, dtype=float)
        if a.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"))
        return cls(int(a.size), float(np.median(a)), float(np.percentile(a, 90)), float(a.max()))


def worst(held: Sequence[HeldOut], above_pct: float) -> list[tuple[float, HeldOut, int]]:
    """The metrics of ``held`` off by more than ``above_pct`` [%], worst first: ``(error %, fold, index in the fold)``."""
    out = [(float(e), h, k) for h in held for k, e in enumerate(h.errors_pct.tolist()) if e > above_pct]
    return sorted(out, key=lambda t: (-t[0], t[1].source, t[2]))


def summary(held: Sequence[HeldOut]) -> Summary:
    """The :class:`Summary` of every metric of ``held`` together."""
    return Summary.of(np.concatenate([h.errors_pct for h in held]) if held else np.zeros(0))


def _of_report(case_set: str, source: str, rows: Sequence[ScoredMetric]) -> HeldOut:
    scored = [r for r in rows if r.predicted is not None]
    return HeldOut(case_set, source, tuple(r.measured for r in scored), tuple(float(r.predicted or 0.0) for r in scored),
                   tuple(f"{r.case_id} {r.metric}" for r in scored))  # fmt: skip


def _source(case: dict[str, Any]) -> str:
    """A case's source (a case without one is its own)."""
    return str(case.get("source_key") or case["id"])


def _sources(cases: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({_source(c) for c in cases})


def published(cases: list[dict[str, Any]], cat: CatalogueLike, progress: Progress | None = None) -> list[HeldOut]:
    """Each source of the serving cases without load, predicted by factors fitted on the others (module docstring).

    Minutes per source: every fold refits every family (``aicap calibrate``).
    """
    from aicap.sizing.calibrate.calibration import calibrate, held_out_factors, load_neighbours, load_own_step_overheads, load_priors

    priors, neighbours, own = load_priors(), load_neighbours(), load_own_step_overheads()
    out = []
    for src in _sources(cases):
        if progress is not None:
            progress(f"published: refitting without {src}")
        train = [c for c in cases if _source(c) != src]
        test = [c for c in cases if _source(c) == src]
        fits = calibrate(train, cat, f"all sources but {src}")
        # Families without training cases take their declared nearest family's factors as fitted in this fold,
        # else their priors; never the catalogue's, which were fitted on every source including the held-out one.
        eff = held_out_factors({f.family: f.after for f in fits}, priors, neighbours, own)
        eff.update({k: v for k, v in cat.efficiency.items() if k not in eff and "@" not in k})
        out.append(_of_report("published", src, score(test, cat, eff).rows))
    return out


def server(cases: list[dict[str, Any]], cat: CatalogueLike, report: ValidationReport | None = None,
           progress: Progress | None = None) -> list[HeldOut]:  # fmt: skip
    """Each source of the cases under load, simulated with engine factors and request overheads fitted on the others (module docstring).

    ``report``: the in-sample :func:`~aicap.sizing.calibrate.validation.score` of ``cases``, when already known.
    A source with no run of an engine profile keeps its in-sample predictions (nothing was fitted on it).
    A minute or two per source: each fold refits every (engine, family) multiplier by simulation.
    """
    from aicap.sizing.calibrate.engine_factors import as_engine_memory, fit_engine_factors, groups
    from aicap.sizing.calibrate.overheads import fit_overheads

    report = score(cases, cat) if report is None else report
    engines = {e for e, _ in groups(cases, cat)}
    out = []
    for src in _sources(cases):
        mine = [c for c in cases if _source(c) == src]
        train = [c for c in cases if _source(c) != src]
        if not groups(mine, cat):
            ids = {c["id"] for c in mine}
            out.append(_of_report("server", src, [r for r in report.rows if r.case_id in ids]))
            continue
        if progress is not None:
            progress(f"server: refitting engine factors and overheads without {src}")
        memory = as_engine_memory(fit_engine_factors(train, cat))
        fitted = {f.engine: f.overhead_ms for f in fit_overheads(train, score(train, cat, engine_memory=memory), cat)}
        overheads = {e: fitted.get(e, 0.0) for e in engines}
        out.append(_of_report("server", src, score(mine, cat, request_overheads=overheads, engine_memory=memory).rows))
    return out


def training(cat: CatalogueLike) -> list[HeldOut]:
    """Each source of the training cases, predicted by training factors fitted on the others (fits answers left out)."""
    from aicap.sizing.calibrate.training import leave_one_source_out
    from aicap.sizing.calibrate.training_cases import load_cases
    from aicap.sizing.train.factors import load_factors

    scores = [s for s in leave_one_source_out(load_cases(cat), cat, load_factors()) if s.metric != "fits"]
    out = []
    for src in sorted({s.source for s in scores}):
        mine = [s for s in scores if s.source == src]
        out.append(HeldOut("training", src, tuple(s.measured for s in mine), tuple(s.predicted for s in mine),
                           tuple(f"{s.case} {s.metric}" for s in mine)))  # fmt: skip
    return out
