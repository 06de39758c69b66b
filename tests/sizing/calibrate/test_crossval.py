"""Leave-one-source-out over the public sets: a held-out source is predicted with what was fitted without it."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate import crossval
from aicap.sizing.calibrate.overheads import fit_overheads
from aicap.sizing.calibrate.validation import load_cases, score
from aicap.sizing.core.engines import engine_for


def _pick(source: str, kind: str, n: int) -> list[dict[str, object]]:
    cases = [c for c in load_cases(which="server") if c["source_key"] == source and c["kind"] == kind and c["framework"] == "vLLM"]
    return cases[:n]


def test_a_held_out_source_is_simulated_with_the_overhead_fitted_without_it(cat: Catalogue) -> None:
    # Two vLLM sources under open-loop load: the overhead is latency outside the engine, so a held-out
    # source's TTFT moves from its in-sample value by exactly (overhead without it − the shipped overhead).
    cases = _pick("S_GUIDELLM", "server", 2) + _pick("S_LLMK8S", "server", 2)
    report = score(cases, cat)
    held = {h.source: h for h in crossval.server(cases, cat, report)}
    (fit,) = [f for f in fit_overheads(cases, report, cat) if f.engine == "vllm"]
    now = engine_for(cat, "vllm").runtime.request_overhead_ms
    assert set(held) == {"S_GUIDELLM", "S_LLMK8S"}
    for src, h in held.items():
        ids = {c["id"] for c in cases if c["source_key"] == src}
        inside = [r for r in report.scored if r.case_id in ids]
        assert h.measured == tuple(r.measured for r in inside)
        shift = fit.loso[src][0] - now
        assert abs(shift) > 0.5  # the fold really changes the overhead, or the check below proves nothing
        for r, p in zip(inside, h.predicted, strict=True):
            if r.metric.startswith(("ttft", "e2e")):
                assert p - float(r.predicted or 0.0) == pytest.approx(shift, abs=1e-6)
            elif not r.metric.startswith("itl"):
                assert p == pytest.approx(float(r.predicted or 0.0), rel=1e-9)  # throughput and TPOT do not pay it


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
