"""The cover columns of the cost program (sizing/solve/covers.py): same optima as brute force, a tighter relaxation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from scipy.optimize import Bounds, LinearConstraint, milp

from aicap.sizing.solve import covers as covers_mod
from aicap.sizing.solve.covers import cover_columns
from aicap.sizing.solve.milp import Problem, _formulate, solve
from aicap.sizing.solve.problem import _arrays, _bounds
from aicap.sizing.solve.reduce import cost_dominated
from tests.sizing.test_milp import assert_matches_brute_force, floats, ints, make, problems


@pytest.mark.parametrize("limit", [0, 1, 2, covers_mod.COLUMN_LIMIT])
@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True, budget=True))
def test_cost_by_any_mix_of_cover_and_replica_columns_equals_brute_force(p: Problem, limit: int) -> None:
    """Limit 0 is the replica form alone; 1 and 2 mix both forms; the default covers every small workload."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(covers_mod, "COLUMN_LIMIT", limit)
        assert_matches_brute_force(p, "highs")


@settings(max_examples=30, deadline=None)
@given(p=problems(single=True, caps=True))
def test_cost_single_type_by_covers_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p, "highs")


def _relaxation(p: Problem) -> float:
    """The LP bound of the program ``p`` is solved by (``inf`` when even the relaxation is infeasible)."""
    m, _, _ = _formulate(p)
    res = milp(m.c, bounds=Bounds(np.zeros(len(m.c)), m.ub), constraints=LinearConstraint(m.a, m.lo, m.hi))
    if res.status == 2:
        return math.inf
    assert res.status == 0
    return float(res.fun)


@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True))
# Found by hypothesis: both covers of 4 requests/s take the one capped instance's 4 devices, the other workload needs a fifth.
@example(p=make(floats(4.0, 1.0), ints(0, 0, 1), ints(0, 0, 0), ints(4, 2, 1), floats(4.0, 3.0, 1.0), ints(4), floats(1.0),
                type_cap=floats(1.0)))  # fmt: skip
def test_the_cover_relaxation_is_never_weaker_than_the_replica_relaxation(p: Problem) -> None:
    """The reason for the cover form: its LP bound is the convex hull of each workload's choices."""
    if cost_dominated(p).all():
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(covers_mod, "COLUMN_LIMIT", 0)
        replica = _relaxation(p)
    if math.isinf(replica):  # LP infeasible: so is the cover form
        return
    cover = _relaxation(p)
    assert cover >= replica * (1 - 1e-7) - 1e-7
    if math.isinf(cover):  # the hull of every workload's covers fits nowhere: nor does any integer plan
        assert not solve(p).has_solution


def test_the_cover_relaxation_is_strictly_tighter_where_a_workload_buys_fractions() -> None:
    """1.5 requests/s on 1-device replicas of 1 request/s or 2-device replicas of 2: the replica LP buys 1.5 small
    replicas (1.5 devices), every cover takes 2 devices; one 4-device instance at 4 USD/hour."""
    p = make(floats(1.5), ints(0, 0), ints(0, 0), ints(1, 2), floats(1.0, 2.0), ints(4), floats(4.0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(covers_mod, "COLUMN_LIMIT", 0)
        assert _relaxation(p) == pytest.approx(1.5)
    assert _relaxation(p) == pytest.approx(2.0)


@settings(max_examples=60, deadline=None)
@given(p=problems(caps=True))
def test_every_column_is_a_minimal_cover_of_its_workload(p: Problem) -> None:
    cols = cover_columns(p, ~cost_dominated(p))
    q = np.minimum(np.asarray(p.cand_capacity), np.asarray(p.demand)[p.cand_workload])
    for k in range(len(cols.workload)):
        y = np.zeros(len(cols.workload))
        y[k] = 1.0
        r = cols.replicas(y, len(p.cand_workload))
        w = int(cols.workload[k])
        assert (r[np.asarray(p.cand_workload) != w] == 0).all()
        served = float(q @ r)
        assert served >= p.demand[w] * (1 - 1e-8)
        smallest = float(q[r > 0].min())
        assert served - smallest < p.demand[w]
        used = np.bincount(p.cand_type, weights=p.cand_devices * r, minlength=len(p.type_devices))
        assert (used == cols.devices[k]).all()


@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True))
def test_every_small_workload_with_a_cover_is_covered(p: Problem) -> None:
    """The enumeration's limits (covers and walk steps) never give up on a small workload."""
    cols = cover_columns(p, ~cost_dominated(p))
    has = {int(w) for w in cols.workload}
    assert {w for w in range(len(p.demand)) if cols.covered[w]} == has
    kept = covers_mod.covers(p, _arrays(p), _bounds(p, _arrays(p))[0], p.type_price / p.type_devices, 0, ~cost_dominated(p), 10**6)
    assert kept is not None and bool(cols.covered[0]) == (kept.cost.size > 0)


def test_a_workload_with_more_minimal_covers_than_the_limit_keeps_its_replica_columns() -> None:
    """1.5 requests/s over replicas of 1.0 and 0.8: covers {2·a}, {a, b}, {2·b} (three); at a limit of 2 it is not covered."""
    p = make(floats(1.5), ints(0, 0), ints(0, 0), ints(1, 1), floats(1.0, 0.8), ints(4), floats(4.0))
    a = _arrays(p)
    found = covers_mod.covers(p, a, _bounds(p, a)[0], a.price / a.td, 0, np.ones(2, dtype=bool), 3)
    assert found is not None and found.replicas.tolist() == [[2, 0]]  # the other two use as many devices, or more, and carry less
    assert covers_mod.covers(p, a, _bounds(p, a)[0], a.price / a.td, 0, np.ones(2, dtype=bool), 2) is None
    assert cover_columns(p, np.ones(2, dtype=bool), 3).covered.tolist() == [True]
    assert cover_columns(p, np.ones(2, dtype=bool), 2).covered.tolist() == [False]


def test_a_tiny_capacity_candidate_does_not_exhaust_the_walk() -> None:
    """7 requests/s over replicas of 7, 2 and 0.001: six minimal covers ({a}, {4·b}, {3·b, 1,000·c}, ...), two kept. The walk
    had tried every count of the 0.001 replica under each count of the others (7,000 of them) and gave up at a limit of 8
    (512 steps), leaving the workload its replica columns; it now skips counts the candidates after it cannot complete."""
    p = make(floats(7.0), ints(0, 0, 0), ints(0, 1, 1), ints(4, 1, 1), floats(7.0, 2.0, 0.001), ints(4, 8), floats(4.0, 8.0))
    a = _arrays(p)
    ub = _bounds(p, a)[0]
    assert ub.tolist() == [1.0, 4.0, 7000.0]
    whole = covers_mod.covers(p, a, ub, a.price / a.td, 0, np.ones(3, dtype=bool), 10**6)
    small = covers_mod.covers(p, a, ub, a.price / a.td, 0, np.ones(3, dtype=bool), 8)
    assert whole is not None and small is not None
    assert small.replicas.tolist() == whole.replicas.tolist() == [[0, 4, 0], [1, 0, 0]]
