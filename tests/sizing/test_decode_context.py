"""The mean context of a decode step: output-weighted, and what makes a plan's TPOT agree with the simulator."""

from __future__ import annotations

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.plan.sizer import size
from aicap.sizing.sim.verify import verify

CAT = load_catalogue()
OUTPUTS = [{"tokens": 50, "weight": 0.5}, {"tokens": 300, "weight": 0.35}, {"tokens": 1500, "weight": 0.15}]


def _workload(output: int | list[dict[str, float]], inputs: int | list[dict[str, float]] = 800) -> Workload:
    return Workload.model_validate({"name": "w", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": inputs,
                                    "output_tokens": output})  # fmt: skip


def test_fixed_lengths_decode_at_the_middle_of_the_output() -> None:
    assert _workload(400).decode_context == 1000.0


def test_varied_outputs_weigh_each_request_by_its_decode_steps() -> None:
    w = _workload(OUTPUTS, [{"tokens": 200, "weight": 1.0}, {"tokens": 1400, "weight": 1.0}])
    e1 = 50 * 0.5 + 300 * 0.35 + 1500 * 0.15
    e2 = 50**2 * 0.5 + 300**2 * 0.35 + 1500**2 * 0.15
    assert w.decode_context == pytest.approx(800.0 + e2 / (2 * e1))
    assert w.decode_context > w.mean_input + w.mean_output / 2.0 + 300  # long outputs dominate the steps


def test_a_plan_with_varied_outputs_promises_the_tpot_the_simulator_sees() -> None:
    """Built at the mean output's middle, this plan promised a TPOT 21% under the simulated one; now within 15%."""
    fleet = Fleet.model_validate({
        "workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 8,
                       "input_tokens": [{"tokens": 200, "weight": 0.5}, {"tokens": 1500, "weight": 0.4}, {"tokens": 6000, "weight": 0.1}],
                       "output_tokens": OUTPUTS, "slo": {"ttft_ms": 1500, "tpot_ms": 40, "percentile": "p90"}}],
        "constraints": {"clouds": ["aws"]},
    })  # fmt: skip
    plan = size(fleet, CAT, alternatives=False)
    for check in verify(plan, CAT, requests=4000):
        assert check.tpot_promised_ms is not None and check.tpot_simulated_ms is not None
        assert check.tpot_promised_ms == pytest.approx(check.tpot_simulated_ms, rel=0.15)
