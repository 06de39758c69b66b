"""The cost-versus-latency front: non-dominated full plans, the chosen plan among them."""

from __future__ import annotations

import itertools

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.plan.fleet_io import build_fleet
from aicap.sizing.plan.pareto import _dominated, pareto
from aicap.sizing.plan.sizer import size

FLEET = {"model": "llama-3.1-70b", "rate": 5.0, "input_tokens": 1000, "output_tokens": 300, "ttft_ms": 2000.0, "tpot_ms": 40.0,
         "percentile": "p99", "precision": None, "cloud": "aws"}  # fmt: skip


@pytest.fixture(scope="module")
def front(cat: Catalogue):  # type: ignore[no-untyped-def]
    return pareto(build_fleet(**FLEET), cat)  # type: ignore[arg-type]


def test_the_chosen_plan_is_the_sizers_plan(front, cat: Catalogue) -> None:  # type: ignore[no-untyped-def]
    chosen = [p for p in front.pareto if p.chosen]
    assert len(chosen) == 1
    assert chosen[0].usd_per_month == size(build_fleet(**FLEET), cat, alternatives=False).totals.usd_per_month  # type: ignore[arg-type]


def test_no_point_of_the_front_is_beaten_on_cost_and_both_latencies(front) -> None:  # type: ignore[no-untyped-def]
    pts = [p for p in front.pareto if not p.chosen]
    assert len(front.pareto) >= 4
    for p in pts:
        assert not any(_dominated(p, q) for q in front.pareto), p


def test_lower_latency_costs_more_along_the_front(front) -> None:  # type: ignore[no-untyped-def]
    pts = sorted(front.pareto, key=lambda p: p.usd_per_month)
    for cheap, dear in itertools.pairwise(pts):
        assert dear.usd_per_month >= cheap.usd_per_month
        assert dear.tpot_ms < cheap.tpot_ms or dear.ttft_ms < cheap.ttft_ms
    assert pts[0].tpot_ms > pts[-1].tpot_ms and pts[0].ttft_ms > pts[-1].ttft_ms
    for p in pts:
        assert p.tokens_per_s_per_user == pytest.approx(1000.0 / p.tpot_ms, rel=1e-3)
        assert p.tokens_per_s_per_device == pytest.approx(5.0 * 300 / p.devices, rel=1e-3)
