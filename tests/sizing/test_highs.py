"""How HiGHS is called (sizing/solve/highs.py): the priced solve of cost programs is exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from scipy.optimize import Bounds, LinearConstraint, milp

from aicap.sizing.solve import highs
from aicap.sizing.solve.highs import _relaxation
from aicap.sizing.solve.milp import Problem, SolveStatus, _formulate, solve
from tests.sizing.test_milp import assert_matches_brute_force, floats, ints, make, problems


@pytest.mark.parametrize("single", [False, True])
@settings(max_examples=40, deadline=None)
@given(data=problems(caps=True, budget=True), single_data=problems(single=True, caps=True))
def test_priced_solve_equals_brute_force(data: Problem, single_data: Problem, single: bool) -> None:
    """Every program priced (the threshold at 0): steps 1-3 of the module docstring never lose the optimum."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(highs, "PRICING_MIN_COLUMNS", 0)
        assert_matches_brute_force(single_data if single else data, "highs")


@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True, budget=True))
def test_a_column_forced_in_costs_at_least_the_bound_plus_its_reduced_cost(p: Problem) -> None:
    """The duality fact the pricing rests on, checked by solving with each priced column forced to 1."""
    m, _, _ = _formulate(p)
    lp = _relaxation(m)
    if lp is None:
        return
    bound, rho = lp
    for j in np.flatnonzero((rho > 1e-6) & (m.integrality == 1) & (m.ub >= 1)).tolist():
        lb = np.zeros(len(m.c))
        lb[j] = 1.0
        res = milp(m.c, integrality=m.integrality, bounds=Bounds(lb, m.ub), constraints=LinearConstraint(m.a, m.lo, m.hi),
                   options={"mip_rel_gap": 0.0})  # fmt: skip
        if res.x is not None:
            assert res.fun >= bound + rho[j] - 1e-6 * max(1.0, abs(bound))


def _fleet(n: int) -> Problem:
    """``n`` identical workloads of 1.5 requests/s; 1-device replicas of 1 request/s or 2-device ones of 2, on 4-device instances."""
    return make(floats(*[1.5] * n), ints(*np.repeat(np.arange(n), 2)), ints(*[0] * 2 * n), ints(*[1, 2] * n), floats(*[1.0, 2.0] * n),
                ints(4), floats(4.0))  # fmt: skip


def test_a_tight_relaxation_proves_the_restricted_plan() -> None:
    """Two workloads fill one instance exactly: LP bound = optimum, step 2 proves the restricted plan."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(highs, "PRICING_MIN_COLUMNS", 0)
        sol = solve(_fleet(2), method="highs")
    assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == pytest.approx(4.0)
    assert "holds every cheaper plan" in sol.message


def test_a_loose_relaxation_fixes_by_reduced_cost_and_solves_again() -> None:
    """Three workloads need 6 devices: LP 6, optimum 8 (two instances), so step 3 runs and keeps the optimum."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(highs, "PRICING_MIN_COLUMNS", 0)
        sol = solve(_fleet(3), method="highs")
    assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == pytest.approx(8.0)
    assert "reduced-cost fixing" in sol.message
