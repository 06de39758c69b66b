"""Engine multipliers on a family's memory efficiency: applied by the engine, fitted on its runs under load, shrunk."""

from __future__ import annotations

import math

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate.accuracy import metric_class
from aicap.sizing.calibrate.engine_factors import SHRINK_SOURCES, fit_engine_factors, groups
from aicap.sizing.calibrate.validation import load_cases, predict
from aicap.sizing.core.engines import engine_for


def test_an_engine_applies_its_multiplier_to_the_family_it_was_fitted_on(cat: Catalogue) -> None:
    a100, h100, l4 = cat.device("a100-80gb-sxm"), cat.device("h100-sxm"), cat.device("l4")
    vllm = engine_for(cat, "vllm")
    assert vllm.spec is not None
    m = vllm.spec.memory_multiplier("nvidia-ampere")
    assert m != 1.0 and vllm.spec.memory_multiplier("nvidia-ada") == 1.0
    assert vllm.efficiency(cat, a100).memory == pytest.approx(cat.efficiency_for(a100).memory * m)
    assert "memory x" in vllm.efficiency(cat, a100).source and vllm.efficiency(cat, a100).calibrated
    assert vllm.efficiency(cat, l4) == cat.efficiency_for(l4)  # no runs of vLLM on Ada: the family's own factors
    assert engine_for(cat, "generic").efficiency(cat, h100) == cat.efficiency_for(h100)
    assert vllm.spec.adjust(cat.efficiency_for(h100), 5.0).memory == 1.0  # never above the peak


def test_groups_hold_the_runs_under_load_of_engines_with_a_profile(cat: Catalogue) -> None:
    found = groups(load_cases(which="server") + load_cases(which="published"), cat)
    assert set(found) == {("vllm", "nvidia-ampere"), ("vllm", "nvidia-hopper"), ("sglang", "nvidia-ampere"), ("sglang", "nvidia-hopper")}
    assert all(c["kind"] in ("server", "closed_loop") for runs in found.values() for c in runs)


def test_the_fit_recovers_a_planted_multiplier_and_shrinks_it_by_the_runs_behind_it(cat: Catalogue) -> None:
    # Measurements made by the model itself at x0.8: the optimum is x0.8; one source keeps exp(1/(1 + 2)·ln 0.8).
    runs = [c for c in load_cases(which="server") if c["source_key"] == "S_GUIDELLM"][:3]
    planted = []
    for c in runs:
        truth = predict(c, cat, engine_memory={"vllm": {"nvidia-ampere": 0.8}})
        planted.append({**c, "metrics": {k: truth[k] for k in c["metrics"] if k in truth}})
    (fit,) = fit_engine_factors(planted, cat)
    assert (fit.engine, fit.family, fit.cases) == ("vllm", "nvidia-ampere", 3)
    assert fit.fitted == pytest.approx(0.8, abs=0.01)
    assert fit.by_source.keys() == {"S_GUIDELLM"}
    assert fit.multiplier == pytest.approx(math.exp(1 / (1 + SHRINK_SOURCES) * math.log(fit.fitted)), abs=1e-3)
    assert fit.median_after_pct < fit.median_before_pct
    assert "3 published runs" in fit.source_note() and "S_GUIDELLM x0.8" in fit.source_note()


def test_the_engine_factor_is_the_median_of_its_sources_so_one_odd_source_cannot_carry_it(cat: Catalogue) -> None:
    # Three sources' runs made by the model at x0.9, x0.95 and x0.5: the median source (x0.9) sets it, not the odd one.
    planted = []
    for src, m in (("S_GUIDELLM", 0.9), ("S_SGL_V060", 0.95), ("S_LLMK8S", 0.5)):
        runs = [c for c in load_cases(which="server") if c["source_key"] == src and c["framework"] == "vLLM" and "a100" in c["hardware"]]
        runs = runs[:2]
        for c in runs:
            truth = predict(c, cat, engine_memory={"vllm": {"nvidia-ampere": m}})
            planted.append({**c, "metrics": {k: truth[k] for k in c["metrics"] if k in truth}})
    (fit,) = fit_engine_factors(planted, cat)
    assert fit.by_source["S_LLMK8S"] == pytest.approx(0.5, abs=0.02)
    assert fit.fitted == pytest.approx(0.9, abs=0.02)
    assert fit.multiplier == pytest.approx(math.exp(3 / (3 + SHRINK_SOURCES) * math.log(fit.fitted)), abs=1e-3)


FITTED = ("tpot", "throughput")


def test_the_fit_reads_per_token_and_throughput_metrics_only(cat: Catalogue) -> None:
    # TTFT and end-to-end latencies are the request overhead's (and the queue's): made at another multiplier, they move nothing.
    cases = load_cases(which="server")
    runs = [c for c in cases if c["source_key"] == "S_GUIDELLM"][:2]
    runs += [c for c in cases if c["source_key"] == "S_SGL_V060" and c["framework"] == "vLLM" and "a100" in c["hardware"]][:1]
    assert any("e2e_ms_p50" in c["metrics"] for c in runs)
    planted = []
    for c in runs:
        truth = predict(c, cat, engine_memory={"vllm": {"nvidia-ampere": 0.8}})
        other = predict(c, cat, engine_memory={"vllm": {"nvidia-ampere": 0.6}})
        kept = [k for k in c["metrics"] if k in truth]
        assert any(metric_class(k) in FITTED for k in kept) and not all(metric_class(k) in FITTED for k in kept)
        planted.append({**c, "metrics": {k: truth[k] if metric_class(k) in FITTED else other[k] for k in kept}})
    (fit,) = fit_engine_factors(planted, cat)
    assert fit.fitted == pytest.approx(0.8, abs=0.01)
    assert fit.metrics == sum(1 for c in planted for k in c["metrics"] if metric_class(k) in FITTED)
