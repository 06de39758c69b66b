"""The running count's spread across a kink of the decode round: the fixed point, and promises against the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.serve import fluctuation
from aicap.sizing.serve.capacity import capacity
from aicap.sizing.serve.fluctuation import peakedness, settle_spread
from aicap.sizing.serve.load import at_arrivals
from aicap.sizing.serve.loaded import Traffic
from aicap.sizing.serve.rate import at_rate
from aicap.sizing.serve.smoothing import DecodeKinks
from aicap.sizing.serve.step_model import StepModel
from aicap.sizing.sim.arrivals import arrival_times
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from tests.sizing.test_load import BUDGET, CASES, CAT, _stacked, replica

# Llama-3.1-70B fp8 on one H200 under the plain roofline (α = 0; Hopper's fitted exposed share 1 leaves no kink, and these
# tests are about one): its decode round turns compute-bound near 195 sequences, and at its capacity (TPOT p99
# within 0.85 x 85 ms) the mean running count sits just below that. Qwen2.5-7B on an EPYC 9654: a CPU whose decode round
# turns compute-bound near 18 sequences and then grows 3 ms per sequence, almost in proportion to the count.
SEVENTY = ("llama-3.1-70b", "h200-sxm", 1, 1, 256, 600, 5.0, 0.085, "fp8")
EPYC = ("qwen2.5-7b", "epyc-9654", 1, 1, 256, 600, 10.0, 0.3, "bf16")
REQUESTS = 6000


def _replica(case: tuple[str, str, int, int, int, int, float, float, str]) -> tuple[StepModel, Traffic, EngineConfig]:
    """The case's replica; :data:`SEVENTY` with Hopper's factors as fitted on the plain roofline (2026-12-02, ``α = 0``, no ``τ_k``)."""
    if case != SEVENTY:
        return replica(case)
    hopper = CAT.efficiency["nvidia-hopper"]
    return replica(case, hopper.model_copy(update={"compute": 0.573, "compute_fp8": 0.54, "memory": 0.629, "moe_compute": 0.294,
                                                   "exposed_share": 0.0, "kernel_latency_us": 0.0}))  # fmt: skip


def _at_capacity(case: tuple[str, str, int, int, int, int, float, float, str]) -> tuple[float, float, float, float, float]:
    """Promised TPOT p99 and running count at the replica's capacity, the simulated ones, and the rate."""
    step, tr, cfg = _replica(case)
    rate = float(capacity(step, np.ones(1), BUDGET, tr, case[6], case[7]).rate[0])
    promised = at_rate(step, np.ones(1), BUDGET, tr, np.array([rate]))
    requests = Requests(arrival_times(rate, REQUESTS, seed=3), np.full(REQUESTS, case[4]), np.full(REQUESTS, case[5]))
    res = simulate(step.one(0), requests, cfg)
    return float(promised.tpot_s[0]), float(promised.running[0]), res.percentile("tpot", 0.99), res.mean_running, rate


def _without_spread(case: tuple[str, str, int, int, int, int, float, float, str], rate: float, monkeypatch: pytest.MonkeyPatch) -> float:
    """The TPOT p99 the rounds at the mean count promise (no kink in reach of any spread)."""
    step, tr, _ = _replica(case)
    with monkeypatch.context() as m:
        m.setattr(fluctuation, "REACH", 0.0)
        return float(at_rate(step, np.ones(1), BUDGET, tr, np.array([rate])).tpot_s[0])


def test_at_capacity_a_replica_near_its_kink_is_promised_what_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds at the mean count promised a TPOT p99 a quarter under the simulated one (and a running count 23% under):
    the count's excursions past the kink run rounds four times as steep. Over the spread, within 6%."""
    promised, running, simulated, sim_running, rate = _at_capacity(SEVENTY)
    assert promised == pytest.approx(simulated, rel=0.06)
    assert running == pytest.approx(sim_running, rel=0.15)
    assert _without_spread(SEVENTY, rate, monkeypatch) < 0.8 * simulated


def test_a_cpu_crossing_into_compute_is_promised_nearer_its_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the EPYC's capacity the rounds at the mean count promised 59% under the simulated TPOT p99 (73% before the
    drift took the secant); over the spread, 20% under. What is left is the count's excursions above a kink where the
    round grows almost in proportion to it (the feedback near 1 there): they are not normal, and the linearised
    spread under-states them."""
    promised, _, simulated, _, rate = _at_capacity(EPYC)
    hard = _without_spread(EPYC, rate, monkeypatch)
    assert abs(promised / simulated - 1.0) < 0.5 * abs(hard / simulated - 1.0)
    assert promised > 0.75 * simulated


def test_the_spread_is_a_fixed_point_of_the_feedback_it_implies() -> None:
    """One kink 20 sequences above a mean of 100, where the feedback is 0.83: the spread grows until the slope it
    blends in implies it back."""
    kinks = DecodeKinks(np.array([[-0.002]]), np.array([[1e-4]]))
    args = [np.array([v]) for v in (0.9, 0.03, 2.5e-4, 0.1, 0.01, 1.0, 100.0)]  # idle share, τ, ∂τ/∂d, lumps, c, pp, d
    share, tau, dtau_dd, lumps, slope, pp, d = args
    chain = np.array([False])
    _, _, _, feedback, peak = peakedness(tau, dtau_dd, lumps, slope, pp, d * pp, 1.0, chain)
    spread, excess, excess_slope = settle_spread(kinks, share, tau, dtau_dd, lumps, slope, pp, d, 1.0, chain, feedback, peak)
    again = peakedness(tau + share * excess, dtau_dd + share * excess_slope, lumps, slope, pp, d * pp, 1.0, chain)[4]
    assert float(np.sqrt(d * again)[0]) == pytest.approx(float(spread[0]), rel=1e-2)
    assert float(spread[0]) > 1.05 * float(np.sqrt(d * peak)[0])  # the spread at the mean slope was too narrow
    assert (excess, excess_slope) == (pytest.approx(kinks.over(spread)[0]), pytest.approx(kinks.over(spread)[1]))


def test_rows_with_no_kink_in_reach_are_the_rounds_at_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    step, tr, _ = replica(CASES[1])  # Llama-3.1-70B fp8 on two H100s, 1,500/300 tokens: compute-bound from the first prompt
    rate = np.array([0.5 * float(capacity(step, np.ones(1), BUDGET, tr, CASES[1][6], CASES[1][7]).rate[0])])
    spread = at_rate(step, np.ones(1), BUDGET, tr, rate)
    monkeypatch.setattr(fluctuation, "REACH", 0.0)
    assert at_rate(step, np.ones(1), BUDGET, tr, rate) == spread


def test_a_rows_spread_does_not_depend_on_the_rows_evaluated_with_it() -> None:
    cases = [SEVENTY, EPYC, CASES[0]]
    step, tr, pp = _stacked(cases)
    x = np.array([0.35, 0.02, 0.9])  # the first two near their kinks, where the spread moves their rounds
    together = at_arrivals(step, pp, BUDGET, tr, x)
    for k in range(len(cases)):
        alone = at_arrivals(step.take([k]), pp[[k]], BUDGET, tr.take([k]), x[[k]])
        for name in ("ttft_s", "tpot_s", "rate", "round_s", "running", "slot_use"):
            assert float(getattr(alone, name)[0]) == pytest.approx(float(getattr(together, name)[k]), rel=1e-9), (k, name)
