"""The training factors are a fit, not a tuning: the shipped values equal a fresh fit and meet the targets."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate.training import fit_factors, leave_one_source_out, score_all, summarise
from aicap.sizing.calibrate.training_cases import load_cases
from aicap.sizing.train.factors import load_factors


@pytest.fixture(scope="module")
def cases(cat: Catalogue) -> list:  # type: ignore[type-arg]
    return load_cases(cat)


def test_every_public_case_loads_and_most_are_scored(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    assert len(cases) == 96
    scores, unscored = score_all(cases, cat, load_factors())
    assert len({s.case for s in scores}) + len(unscored) == 96
    assert len(unscored) <= 14, [u.case for u in unscored]


def test_tpu_runs_make_tpu_a_measured_training_family(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    """Google's tpu-recipes MaxText runs (v6e, v5p) are scored, so a TPU plan's step model is no longer extrapolated."""
    tpu = [c for c in cases if c.source == "S_TPU_RECIPES"]
    assert {c.device.id for c in tpu} == {"tpu-v6e", "tpu-v5p"}
    scores, unscored = score_all(tpu, cat, load_factors())
    assert len({s.case for s in scores}) == 13 and [u.case for u in unscored] == ["tpurecipes-llama-3.1-405b-v6e-512-dcn"]
    assert all(abs(s.error) < 0.25 for s in scores), [(s.case, s.error) for s in scores]
    assert "google-tpu" in load_factors().measured_families


def test_shipped_factors_equal_a_fresh_fit(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    shipped = load_factors()
    fitted = fit_factors(cases, cat, shipped)
    assert (fitted.step_efficiency, fitted.dp_overlap, fitted.logits_bytes) == pytest.approx(
        (shipped.step_efficiency, shipped.dp_overlap, shipped.logits_bytes), abs=1e-6
    )


def test_accuracy_targets_in_sample(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    """Issue targets: median throughput error <= 15 %, peak memory <= 15 % median, every fit answer right."""
    summary = summarise(score_all(cases, cat, load_factors())[0])
    assert summary["throughput"].median_pct <= 15.0
    assert summary["memory"].median_pct <= 15.0
    assert summary["fits"].max_pct == 0.0


def test_leave_one_source_out_matches_the_recorded_accuracy(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    factors = load_factors()
    loso = summarise(leave_one_source_out(cases, cat, factors))
    assert factors.accuracy is not None
    assert round(loso["throughput"].median_pct, 1) == factors.accuracy.throughput_median_pct
    assert round(loso["throughput"].p90_pct, 1) == factors.accuracy.throughput_p90_pct
    assert loso["throughput"].median_pct <= 15.0
    assert loso["fits"].max_pct == 0.0


def test_a_fit_would_notice_a_broken_model(cat: Catalogue, cases: list) -> None:  # type: ignore[type-arg]
    """Halving the step efficiency must break the throughput target: the test above can fail."""
    broken = load_factors().model_copy(update={"step_efficiency": load_factors().step_efficiency / 2})
    assert summarise(score_all(cases, cat, broken)[0])["throughput"].median_pct > 15.0
