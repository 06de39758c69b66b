"""How HiGHS is called (sizing/solve/highs.py): the priced solve of cost programs is exact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from scipy.optimize import Bounds, LinearConstraint, milp

from aicap.sizing.solve import covers, highs
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


@pytest.mark.parametrize(
    ("n", "cost", "proof"),
    [
        (2, 4.0, "holds every cheaper plan"),  # two workloads fill one instance exactly: LP bound = optimum, step 2 proves
        (3, 8.0, "reduced-cost fixing"),  # three need 6 devices: LP 6, optimum 8 (two instances), so step 3 runs
    ],
)
def test_a_priced_solve_proves_its_plan_by_the_step_the_relaxation_allows(n: int, cost: float, proof: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(highs, "PRICING_MIN_COLUMNS", 0)
        sol = solve(_fleet(n), method="highs")
    assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == pytest.approx(cost)
    assert proof in sol.message


@pytest.mark.parametrize("limit", [0, covers.COLUMN_LIMIT])
@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True, budget=True))
def test_the_relaxation_is_the_lp_optimum(p: Problem, limit: int) -> None:
    """The rows split for linprog (equalities, upper and lower sides) state the same LP as milp without integrality,
    in the replica form (demand rows: lower sides) and the cover form (partition rows: equalities)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(covers, "COLUMN_LIMIT", limit)
        m, _, _ = _formulate(p)
    lp = _relaxation(m)
    ref = milp(m.c, bounds=Bounds(np.zeros(len(m.c)), m.ub), constraints=LinearConstraint(m.a, m.lo, m.hi))
    assert (lp is None) == (ref.status != 0)
    if lp is not None:
        assert lp[0] == pytest.approx(ref.fun, rel=1e-7, abs=1e-7)
        assert (lp[1] >= 0).all() and lp[1].shape == m.c.shape


def _spy(mp: pytest.MonkeyPatch, edits: list[Callable[[highs.Outcome], highs.Outcome]] | None = None) -> list[np.ndarray]:
    """Price every program; record the upper bounds of every MIP solve and edit their outcomes, in turn, when given."""
    seen: list[np.ndarray] = []
    real = highs._mip

    def mip(m: highs.Model, ub: np.ndarray, *args: Any) -> highs.Outcome:
        seen.append(ub.copy())
        out = real(m, ub, *args)
        return edits.pop(0)(out) if edits else out

    mp.setattr(highs, "_mip", mip)
    mp.setattr(highs, "PRICING_MIN_COLUMNS", 0)
    return seen


def _priced_fleet() -> Problem:
    """Five workloads of 1.5 requests/s on one 4-device type (1 USD/device), a 1-device type at 1.5 capped at two, one at
    2.2 and one at 6: relaxation 9, a first plan of 9.5 on the columns of zero reduced cost, an optimum of 9.2 that needs
    the 2.2 type (reduced cost 0.2, between the two thresholds)."""
    n = 5
    return make(floats(*[1.5] * n), ints(*np.repeat(np.arange(n), 5)), ints(*[0, 0, 1, 2, 3] * n), ints(*[1, 2, 1, 1, 1] * n),
                floats(*[1.0, 2.0, 2.0, 2.0, 2.0] * n), ints(4, 1, 1, 1), floats(4.0, 1.5, 6.0, 2.2),
                type_cap=floats(np.inf, 2.0, np.inf, np.inf))  # fmt: skip


def test_the_restricted_programs_fix_exactly_the_priced_out_columns() -> None:
    """Step 1 fixes the choice columns with ρ > _DELTA·gap·|L|; step 3 those with ρ > U − L (plus a tolerance)."""
    p = _priced_fleet()
    m, keep, _ = _formulate(p)
    bound, rho = _relaxation(m) or (0.0, np.zeros(0))
    choice = np.ones(len(m.c), dtype=bool)
    choice[keep.size : keep.size + len(p.type_devices)] = False
    with pytest.MonkeyPatch.context() as mp:
        seen = _spy(mp)
        sol = solve(p, method="highs")
    assert bound == pytest.approx(9.0) and sol.cost_per_hour == pytest.approx(9.2) and sol.status is SolveStatus.OPTIMAL
    assert len(seen) == 2
    delta = highs._DELTA * p.mip_rel_gap * abs(bound)
    assert ((seen[0] == 0) == ((choice & (rho > delta)) | (m.ub == 0))).all()
    upper, tol = 9.5, 1e-7 * max(1.0, abs(bound))  # the first plan's cost
    assert ((seen[1] == 0) == ((choice & (rho > upper - bound + tol)) | (m.ub == 0))).all()
    assert ((seen[0] == 0) & (seen[1] > 0)).any() and (seen[1] == 0).any()  # the thresholds differ, and both fix columns
    assert not (seen[1] == 0)[~choice].any()  # the instances are never fixed
    assert f"{delta:.3g}" in sol.message and f"{upper - bound:.3g}" in sol.message


def test_pricing_starts_at_its_column_threshold() -> None:
    p = _fleet(2)
    m, _, _ = _formulate(p)
    columns = len(m.c) - len(p.type_devices)
    for threshold, priced in ((columns, True), (columns + 1, False)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(highs, "PRICING_MIN_COLUMNS", threshold)
            assert ("pricing" in solve(p, method="highs").message) is priced


def test_a_restricted_solve_out_of_time_reports_the_lp_gap() -> None:
    """Step 1 at its time limit: its plan, with the gap to the relaxation (the only bound known for the whole program)."""
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, [lambda o: o._replace(status=SolveStatus.TIME_LIMIT, gap=0.01)])
        sol = solve(_fleet(3), method="highs")
    assert sol.status is SolveStatus.TIME_LIMIT and sol.cost_per_hour == pytest.approx(8.0)
    assert sol.gap == pytest.approx((8.0 - 6.0) / 8.0)  # relaxation 6 (six devices), plan 8


def test_a_second_solve_without_a_plan_keeps_the_first_plan_with_the_lp_gap() -> None:
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, [lambda o: o, lambda o: o._replace(status=SolveStatus.TIME_LIMIT, x=None, message="time limit reached")])
        sol = solve(_fleet(3), method="highs")
    assert sol.status is SolveStatus.TIME_LIMIT and sol.cost_per_hour == pytest.approx(8.0)
    assert sol.gap == pytest.approx(0.25) and "time limit reached" in sol.message


def test_a_second_solve_proving_nothing_cheaper_keeps_the_first_plan_as_optimal() -> None:
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, [lambda o: o, lambda o: o._replace(x=None, gap=0.0, message="nothing cheaper")])
        sol = solve(_fleet(3), method="highs")
    assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == pytest.approx(8.0) and sol.gap == 0.0
