"""The roofline's kinks under a normal spread of the running count: closed forms against numerical expectations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from aicap.sizing.serve.smoothing import DecodeKinks, smoothed_max, upper_tail
from aicap.sizing.serve.step_model import StepModel
from tests.sizing.test_load import replica

SEVENTY_ON_H200 = ("llama-3.1-70b", "h200-sxm", 1, 1, 256, 600, 5.0, 0.085, "fp8")  # a decode kink near 195 sequences (α = 0)
MIXTRAL = ("mixtral-8x7b", "h100-sxm", 2, 1, 1000, 200, 2.0, 0.060, "fp8")


def _roofline(case: tuple[str, str, int, int, int, int, float, float, str], alpha: float = 0.0) -> StepModel:
    """The case's replica with exposed share ``alpha``: at 0 the plain roofline, whose kinks these tests smooth.

    (Hopper's fitted share is 1, no overlap: ``c + m`` has no kink at all.) Hopper's rates as fitted with the exposed
    share on 2026-12-06, before the graphed kernels' fixed time was fitted beside them: the kink near 195 sequences.
    """
    from tests.sizing.test_load import CAT

    hopper = CAT.efficiency["nvidia-hopper"].model_copy(update={"compute": 0.627, "compute_fp8": 0.62, "memory": 0.745,
                                                                "kernel_latency_us": 0.0})  # fmt: skip
    step = replica(case, hopper)[0]
    return dataclasses.replace(step, exposed=np.full(step.bandwidth.shape, alpha) if alpha else None)


GRID = np.linspace(-8.0, 8.0, 40001)
WEIGHTS = np.exp(-0.5 * GRID**2) / np.exp(-0.5 * GRID**2).sum()


def test_the_upper_tail_is_the_normal_distributions() -> None:
    a = np.linspace(0.0, 8.0, 801)
    tail, density = upper_tail(a)
    exact = np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in a])
    assert np.max(np.abs(tail - exact)) < 1e-7
    assert density == pytest.approx(np.exp(-0.5 * a**2) / math.sqrt(2.0 * math.pi), rel=1e-12)


@pytest.mark.parametrize("gap", [-3.0, -1.0, -0.2, 0.0, 0.5, 2.0])
@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_the_smoothed_max_is_the_mean_of_the_max_over_the_spread(gap: float, scale: float) -> None:
    excess, weight = smoothed_max(np.array([gap]), np.array([scale]))
    samples = gap + scale * GRID
    assert float(excess[0]) == pytest.approx(float((WEIGHTS * np.maximum(samples, 0.0)).sum()) - max(gap, 0.0), abs=1e-6 * scale)
    assert float(weight[0]) == pytest.approx(float(WEIGHTS[samples >= 0.0].sum()), abs=1e-4)


def test_without_a_spread_the_max_is_the_hard_roofline() -> None:
    excess, weight = smoothed_max(np.array([-1.0, 0.0, 2.0]), np.zeros(3))
    assert excess.tolist() == [0.0, 0.0, 0.0]
    assert weight.tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize(("d", "spread"), [(190.0, 30.0), (300.0, 60.0), (120.0, 30.0)])
def test_the_decode_kinks_give_the_decode_rounds_mean_over_a_spread(d: float, spread: float, alpha: float) -> None:
    """Llama-3.1-70B fp8 on one H200: near 195 sequences compute starts to bind (0.04 -> 0.16 ms per sequence).

    With an exposed share ``α`` each group is ``(1 − α)·max(c, m) + α·(c + m)``: the kinks are ``1 − α`` as sharp.
    """
    step = _roofline(SEVENTY_ON_H200, alpha)
    kinks = step.decode_kinks(np.array([d]))
    excess, excess_slope = kinks.over(np.array([spread]))
    hard, hard_slope, _ = step.seconds_and_slope(np.array([d]), 0.0)
    seconds, slope, _ = step.seconds_and_slope((d + spread * GRID)[:, None], 0.0)
    mean, mean_slope = float((WEIGHTS * seconds[:, 0]).sum()), float((WEIGHTS * slope[:, 0]).sum())
    assert float(hard[0] + excess[0]) == pytest.approx(mean, rel=1e-6)
    assert float(hard_slope[0] + excess_slope[0]) == pytest.approx(mean_slope, rel=1e-3)
    if d == 190.0 and not alpha:  # at the kink the slope at the mean is a third off the mean slope: what the spread corrects
        assert abs(float(hard_slope[0]) / mean_slope - 1.0) > 0.3


def test_a_kink_at_or_below_no_running_request_is_out_of_reach() -> None:
    """Attention's compute and memory both start at zero sequences: their crossing is no kink a count can reach."""
    step = _roofline(SEVENTY_ON_H200)
    near, far = (float(step.decode_kinks(np.array([d])).reach()[0]) for d in (150.0, 60.0))
    assert far == pytest.approx(near + 90.0, rel=1e-9)  # the kink at 186 sequences, not the crossing at 0


def test_the_secant_to_a_count_ahead_is_the_step_between_them() -> None:
    for case in (SEVENTY_ON_H200, MIXTRAL):
        step = _roofline(case)
        for d, ahead in ((150.0, 60.0), (190.0, 20.0), (300.0, 50.0)):
            _, slope, _ = step.seconds_and_slope(np.array([d]), 0.0)
            secant = float(slope[0] + step.decode_kinks(np.array([d])).rise(np.array([ahead]))[0])
            rise = float(step.seconds(np.array([d + ahead]), 0.0)[0] - step.seconds(np.array([d]), 0.0)[0]) / ahead
            assert secant == pytest.approx(rise, rel=1e-9)


def test_an_eager_engine_has_no_kinks_to_smooth() -> None:
    """Its host time may bind instead of the device's: the decode round is left as it is."""
    step = dataclasses.replace(_roofline(SEVENTY_ON_H200), host_s=np.array([0.01]))
    kinks = step.decode_kinks(np.array([190.0]))
    assert kinks.gap.shape == (0, 1)
    assert kinks.over(np.array([30.0]))[0].tolist() == [0.0]


def test_kinks_of_many_candidates_are_each_their_own() -> None:
    kinks = DecodeKinks(np.array([[-1.0, 0.5], [2.0, -3.0]]), np.array([[0.1, -0.2], [0.0, 0.3]]))
    alone = kinks.take(np.array([1])).over(np.array([4.0]))
    together = kinks.over(np.array([1.0, 4.0]))
    assert float(alone[0][0]) == float(together[0][1]) and float(alone[1][0]) == float(together[1][1])
