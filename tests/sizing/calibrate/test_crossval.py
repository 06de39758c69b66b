"""Leave-one-source-out over the public sets: a held-out source is predicted with what was fitted without it."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate import crossval
from aicap.sizing.calibrate.engine_factors import fit_engine_factors
from aicap.sizing.calibrate.overheads import fit_overheads
from aicap.sizing.calibrate.validation import load_cases, score
from aicap.sizing.core.engines import engine_for


def _pick(source: str, kind: str, n: int) -> list[dict[str, object]]:
    cases = [c for c in load_cases(which="server") if c["source_key"] == source and c["kind"] == kind and c["framework"] == "vLLM"]
    return cases[:n]


def _scaled(cases: list[dict[str, object]], source: str, factor: float) -> list[dict[str, object]]:
    """The cases with every measurement of ``source`` multiplied by ``factor``."""
    out = []
    for c in cases:
        metrics = c["metrics"]
        assert isinstance(metrics, dict)
        if c["source_key"] == source:
            c = {**c, "metrics": {k: (None if v is None else float(v) * factor) for k, v in metrics.items()}}
        out.append(c)
    return out


def test_a_held_out_source_is_predicted_from_what_was_fitted_without_it(cat: Catalogue) -> None:
    # Two vLLM sources on A100 under open-loop load. Each fold refits the engine's memory multiplier and
    # request overhead on the other source, so a held-out source's predictions cannot depend on its own
    # measurements: tripling them changes nothing out of sample, while the in-sample fits move.
    cases = _pick("S_GUIDELLM", "server", 2) + _pick("S_LLMK8S", "server", 2)
    held = {h.source: h for h in crossval.server(cases, cat)}
    assert set(held) == {"S_GUIDELLM", "S_LLMK8S"}
    report = score(cases, cat)
    for src in held:
        ids = {c["id"] for c in cases if c["source_key"] == src}
        shipped = tuple(float(r.predicted or 0.0) for r in report.scored if r.case_id in ids)
        assert held[src].predicted != pytest.approx(shipped, rel=1e-3)  # the fold refitted, not the catalogue's fit
        moved = _scaled(cases, src, 3.0)
        again = {h.source: h for h in crossval.server(moved, cat)}
        assert again[src].predicted == pytest.approx(held[src].predicted, rel=1e-9)
        assert again[src].measured == pytest.approx(tuple(3.0 * m for m in held[src].measured))
    # ...and the folds are not the shipped fit: the in-sample overhead and multiplier follow the tripled data
    moved = _scaled(cases, "S_LLMK8S", 3.0)
    (fit,) = [f for f in fit_overheads(moved, score(moved, cat), cat) if f.engine == "vllm"]
    assert fit.overhead_ms > engine_for(cat, "vllm").runtime.request_overhead_ms + 5.0
    (mult,) = [f for f in fit_engine_factors(moved, cat) if f.engine == "vllm"]
    assert mult.by_source["S_LLMK8S"] < 0.6 and mult.fitted < 0.8


def test_a_source_no_engine_was_fitted_on_keeps_its_in_sample_predictions(cat: Catalogue) -> None:
    # LMDeploy's cases map to no engine profile (the generic one, no fitted overhead): nothing to refit.
    cases = [c for c in load_cases(which="server") if c["source_key"] == "S_LMDEPLOY"][:1]
    report = score(cases, cat)
    (h,) = crossval.server(cases, cat, report)
    assert h.predicted == tuple(float(r.predicted or 0.0) for r in report.scored)


def test_errors_within_2x_and_summaries() -> None:
    h = crossval.HeldOut("server", "S", (100.0, 100.0, 100.0, 100.0), (110.0, 50.0, 300.0, 100.0))
    np.testing.assert_allclose(h.errors_pct, [10.0, 50.0, 200.0, 0.0])
    assert h.within_2x == 3
    s = crossval.summary([h, crossval.HeldOut("training", "T", (2.0,), (1.0,))])
    assert (s.n, s.median, s.max) == (5, 50.0, 200.0)
    assert s.p90 == pytest.approx(float(np.percentile([10.0, 50.0, 200.0, 0.0, 50.0], 90)))
    assert crossval.Summary.of([]).n == 0 and np.isnan(crossval.Summary.of([]).median)


def test_training_folds_leave_out_the_fits_answers(cat: Catalogue) -> None:
    held = crossval.training(cat)
    assert len({h.source for h in held}) == len(held) >= 5
    assert all(h.case_set == "training" and h.measured and all(m > 0 for m in h.measured) for h in held)
    assert all(len(h.labels) == len(h.measured) and all(" " in x for x in h.labels) for h in held)  # "case-id metric"


def test_the_metrics_off_by_more_than_a_share_are_listed_worst_first_with_their_labels(cat: Catalogue) -> None:
    h = crossval.HeldOut("server", "S", (100.0, 100.0, 100.0), (150.0, 39.0, 141.0), ("a ttft_ms_mean", "b tpot_ms_p50", "c x"))
    t = crossval.HeldOut("training", "T", (2.0,), (1.0,))
    off = crossval.worst([h, t], 40.0)
    assert [(round(e, 6), fold.source, k) for e, fold, k in off] == [(61.0, "S", 1), (50.0, "S", 0), (50.0, "T", 0), (41.0, "S", 2)]
    assert [off[0][1].labels[off[0][2]]] == ["b tpot_ms_p50"]
    cases = [c for c in load_cases(which="server") if c["source_key"] == "S_LMDEPLOY"][:1]
    (fold,) = crossval.server(cases, cat, score(cases, cat))
    assert fold.labels and all(x.startswith(cases[0]["id"] + " ") for x in fold.labels)
