"""Per-request overhead: fitted per engine on cases under load, and added to TTFT in the simulator, load model and estimate."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate.overheads import fit_overheads
from aicap.sizing.calibrate.validation import ScoredMetric, ValidationReport
from aicap.sizing.core.engines import engine_for
from aicap.sizing.serve.estimate import EstimateRequest, estimate
from aicap.sizing.serve.load import at_arrivals
from aicap.sizing.serve.loaded import Traffic
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate


def _report(residuals_ms: dict[str, list[float]], predicted: float = 100.0) -> tuple[list[dict[str, object]], ValidationReport]:
    cases, rows = [], []
    for src, rs in residuals_ms.items():
        for k, r in enumerate(rs):
            cid = f"{src}-{k}"
            cases.append({"id": cid, "source_key": src, "framework": "vLLM"})
            rows.append(ScoredMetric(cid, "server", "m", "h100-sxm", "ttft_ms_mean", predicted + r, predicted))
    return cases, ValidationReport(rows)


def test_the_fit_is_the_median_over_sources_of_their_median_residuals_net_of_the_overhead_applied(cat: Catalogue) -> None:
    now = engine_for(cat, "vllm").runtime.request_overhead_ms
    cases, report = _report({"A": [10.0, 20.0, 30.0], "B": [40.0, 50.0]})
    (fit,) = [f for f in fit_overheads(cases, report, cat) if f.engine == "vllm"]
    assert fit.overhead_ms == pytest.approx((20.0 + 45.0) / 2 + now)  # residuals are taken against predictions that carry `now`
    assert fit.sources == ("A", "B") and fit.cases == 5
    assert fit.loso["B"][0] == pytest.approx(20.0 + now)  # refit on A alone


def test_a_source_with_many_runs_does_not_carry_the_fit_alone(cat: Catalogue) -> None:
    now = engine_for(cat, "vllm").runtime.request_overhead_ms
    cases, report = _report({"A": [100.0] * 7, "B": [0.0], "C": [10.0]})  # metric-wise the median would be A's 100
    (fit,) = [f for f in fit_overheads(cases, report, cat) if f.engine == "vllm"]
    assert fit.overhead_ms == pytest.approx(10.0 + now)
    assert "median over 3 sources of each source's median TTFT residual" in fit.source_note()


def test_a_negative_median_residual_fits_no_overhead(cat: Catalogue) -> None:
    now = engine_for(cat, "vllm").runtime.request_overhead_ms
    cases, report = _report({"A": [-now - 50.0] * 3})
    (fit,) = [f for f in fit_overheads(cases, report, cat) if f.engine == "vllm"]
    assert fit.overhead_ms == 0.0


def test_the_simulator_adds_the_overhead_to_ttft_and_e2e_only() -> None:
    reqs = Requests(np.arange(20) * 0.5, np.full(20, 100), np.full(20, 10))

    def run(overhead: float):  # type: ignore[no-untyped-def]
        cfg = EngineConfig(max_num_seqs=8, max_batched_tokens=512, kv_capacity_tokens=1 << 16, request_overhead_s=overhead)
        return simulate(lambda d, p: 0.01 + 1e-5 * p, reqs, cfg)

    a, b = run(0.0), run(0.03)
    np.testing.assert_allclose(b.ttft_s - a.ttft_s, 0.03)
    np.testing.assert_allclose(b.e2e_s - a.e2e_s, 0.03)
    np.testing.assert_allclose(b.tpot_s, a.tpot_s)


def test_the_load_model_adds_the_overhead_to_ttft(deploy) -> None:
    from aicap.sizing.serve.step_model import Hardware, StepModel

    d = deploy("llama-3.1-8b", "h100-sxm")
    step = StepModel.build(
        d, Hardware.of([(d.device, d.efficiency)], "bf16"), np.ones(1), np.ones(1), 1.0, np.array([600.0]), np.array([500.0])
    )
    base = [np.array([v]) for v in (500.0, 200.0, 500.0, 256.0, 0.99, 1.0, 1.0)]
    cold = at_arrivals(step, np.ones(1), 8192.0, Traffic(*base), np.array([0.5]))
    warm = at_arrivals(step, np.ones(1), 8192.0, Traffic(*base, np.array([0.04])), np.array([0.5]))
    assert float(warm.ttft_s[0] - cold.ttft_s[0]) == pytest.approx(0.04)
    assert float(warm.tpot_s[0]) == pytest.approx(float(cold.tpot_s[0]))


def test_estimate_under_an_engine_pays_its_overhead(cat: Catalogue) -> None:
    dev = cat.device("h100-sxm")

    def ttft(engine: str, without: bool = False) -> float:
        e = engine_for(cat, engine)
        rt = e.on(dev).model_copy(update={"request_overhead_ms": 0.0}) if without else e.on(dev)
        r = EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), rt, batch=1, engine=e.spec)
        return float(estimate(r).metrics.ttft_s)

    gap = ttft("vllm") - ttft("vllm", without=True)  # the same engine's steps, with and without its overhead
    assert gap == pytest.approx(engine_for(cat, "vllm").runtime.request_overhead_ms * 1e-3, rel=1e-6)
    assert engine_for(cat, "trtllm").runtime.request_overhead_ms == 0.0 and ttft("trtllm") < ttft("vllm")
