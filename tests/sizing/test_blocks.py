"""Independent programs solved side by side (aicap.sizing.solve.blocks) give each one's own optimum."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.solve import blocks
from aicap.sizing.solve.milp import Problem, Solution, SolveStatus, solve
from tests.sizing.test_milp import brute_force, check_plan, floats, ints, make, problems


@settings(max_examples=25, deadline=None)
@given(st.lists(problems(caps=True), min_size=2, max_size=4))
def test_each_block_gets_its_own_optimum(ps: list[Problem]) -> None:
    alone = [solve(p) for p in ps]
    together = blocks.solve_blocks(ps)
    for p, a, b in zip(ps, alone, together, strict=True):
        assert a.has_solution == b.has_solution
        if b.has_solution:
            best = brute_force(p)
            assert best is not None and abs(b.cost_per_hour - best) <= 1e-6 * max(best, 1.0)
            assert abs(b.cost_per_hour - a.cost_per_hour) <= 1e-6 * max(a.cost_per_hour, 1.0)
            check_plan(p, b)  # demand met, packing respected, shares sum to 1: on the block's own indices
            assert b.replicas.shape == (len(p.cand_workload),) and b.instances.shape == (len(p.type_devices),)


def _one(demand: float, capacity: float, cap: float = np.inf) -> Problem:
    return make(floats(demand), ints(0), ints(0), ints(1), floats(capacity), ints(1), floats(2.0), type_cap=floats(cap))


def test_an_infeasible_block_does_not_sink_the_others() -> None:
    ok, stuck = _one(3.0, 1.0), _one(3.0, 1.0, cap=1.0)  # three replicas needed, one instance allowed
    out = blocks.solve_blocks([ok, stuck, ok])
    assert [s.status for s in out] == [SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE, SolveStatus.OPTIMAL]
    assert out[0].cost_per_hour == out[2].cost_per_hour == 6.0


@pytest.fixture
def solved_alone(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Workloads of each program ``solve_blocks`` hands to ``solve`` (a combined one counts all its blocks')."""
    seen: list[int] = []
    real = blocks.solve

    def spy(p: Problem) -> Solution:
        seen.append(len(p.demand))
        return real(p)

    monkeypatch.setattr(blocks, "solve", spy)
    return seen


def test_programs_that_couple_blocks_are_solved_alone(solved_alone: list[int]) -> None:
    seen = solved_alone
    budgeted = replace(_one(2.0, 1.0), budget_per_hour=100.0)
    out = blocks.solve_blocks([_one(2.0, 1.0), budgeted, _one(1.0, 1.0)])
    assert seen == [2, 1]  # the two cost programs together, the budgeted one alone
    assert [s.cost_per_hour for s in out] == [4.0, 4.0, 2.0]


def test_large_blocks_are_solved_alone(solved_alone: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    seen = solved_alone
    monkeypatch.setattr(blocks, "COMBINE_MAX_CANDIDATES", 1)
    two = make(floats(2.0, 1.0), ints(0, 1), ints(0, 0), ints(1, 1), floats(1.0, 1.0), ints(1), floats(2.0))  # two candidates
    out = blocks.solve_blocks([_one(2.0, 1.0), two, _one(1.0, 1.0)])
    assert seen == [2, 2]  # the two one-candidate programs together, the two-candidate one alone
    assert [s.cost_per_hour for s in out] == [4.0, 6.0, 2.0]


def test_a_block_whose_demand_outgrows_its_caps_is_solved_alone(solved_alone: list[int]) -> None:
    """Three replicas of one device needed, one instance of one device allowed: infeasible whatever the layout, so it is
    not put in the combined program (where it made the whole program infeasible and every block was solved again)."""
    ok, stuck = _one(3.0, 1.0), _one(3.0, 1.0, cap=1.0)
    assert blocks.surely_infeasible(stuck) and not blocks.surely_infeasible(ok)
    out = blocks.solve_blocks([ok, stuck, ok])
    assert solved_alone == [2, 1]  # the two feasible blocks together, the stuck one alone (was [3, 1, 1, 1])
    assert [s.status for s in out] == [SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE, SolveStatus.OPTIMAL]


@settings(max_examples=60, deadline=None)
@given(problems(caps=True))
def test_surely_infeasible_is_a_proof(p: Problem) -> None:
    """Never says so of a program that has a plan (it is a necessary condition of feasibility)."""
    if blocks.surely_infeasible(p):
        assert brute_force(p) is None
