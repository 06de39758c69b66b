"""The exact search for small cost problems against HiGHS, its limits, its tie-breaks, and that it never imports scipy."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.solve import exact
from aicap.sizing.solve.covers import covers
from aicap.sizing.solve.milp import Problem, SolveStatus, _violated, solve
from aicap.sizing.solve.problem import _arrays, _bounds
from aicap.sizing.solve.reduce import cost_dominated
from tests.sizing.test_milp import _random_problem, brute_force, check_plan, floats, ints, make, problems


def _small(nw: int, seed: int, scale: float) -> Problem:
    """:func:`_random_problem` with its demand scaled (a few replicas per workload) and candidates thinned by seed."""
    p = _random_problem(nw, seed)
    return replace(p, demand=np.asarray(p.demand) * scale)


@settings(max_examples=40, deadline=None)
@given(nw=st.integers(1, 6), seed=st.integers(0, 10_000), scale=st.sampled_from([0.1, 0.3, 1.0]),
       limits=st.sampled_from(["none", "budget", "single"]))  # fmt: skip
def test_the_exact_search_finds_highs_optimum(nw: int, seed: int, scale: float, limits: str) -> None:
    p = _small(nw, seed, scale)
    if limits == "budget":
        p = replace(p, budget_per_hour=float(solve(p, method="highs").cost_per_hour) * 1.2 + 1.0)
    elif limits == "single":
        p = replace(p, single_type=True)
    highs = solve(replace(p, mip_rel_gap=0.0), method="highs")
    found = exact.search(p)
    if found is None:  # too large: nothing to compare, but auto still solves it
        assert solve(p).status is highs.status
        return
    sol = solve(p, method="exact")
    if highs.status is SolveStatus.INFEASIBLE:
        assert sol.status is SolveStatus.INFEASIBLE
        return
    assert sol.status is SolveStatus.OPTIMAL and sol.gap == 0.0
    check_plan(p, sol)
    assert sol.cost_per_hour == pytest.approx(highs.cost_per_hour, rel=1e-9, abs=1e-9)


def test_most_small_random_problems_are_in_scope() -> None:
    """The comparison above is not vacuous: the search answers most problems of up to six workloads."""
    answered = sum(exact.search(_small(nw, seed, 0.3)) is not None for nw in range(1, 7) for seed in range(10))
    assert answered >= 45


def test_it_gives_up_on_many_workloads_and_auto_falls_back_to_highs() -> None:
    p = _small(exact.PART_LIMIT + 1, seed=3, scale=0.3)
    assert exact.search(p) is None
    assert solve(p, method="exact").status is SolveStatus.NO_SOLUTION
    auto, highs = solve(p), solve(p, method="highs")
    assert auto.status is SolveStatus.OPTIMAL and auto.cost_per_hour == highs.cost_per_hour and auto.message == highs.message


def test_it_gives_up_past_the_node_limit() -> None:
    p = _small(5, seed=7, scale=0.3)
    assert exact.search(p) is not None
    assert exact.search(p, node_limit=1) is None


def test_workloads_without_shared_types_are_searched_apart() -> None:
    # Two blocks of PART_LIMIT workloads each, on disjoint types: 2·PART_LIMIT workloads, each part small.
    n = exact.PART_LIMIT
    cw = np.arange(2 * n, dtype=np.int64)
    ones = np.ones(2 * n, dtype=np.int64)
    p = make(np.ones(2 * n), cw, (cw >= n).astype(np.int64), ones, np.full(2 * n, 0.6), ints(8, 8), floats(8.0, 16.0))
    sol = solve(p, method="exact")
    assert sol.status is SolveStatus.OPTIMAL
    # each workload needs two 1-device replicas: 2n devices per type, ⌈2n/8⌉ instances of each
    assert sol.instances.tolist() == [-(-2 * n // 8)] * 2
    assert exact.search(replace(p, budget_per_hour=1e6)) is None  # a budget couples every workload: one part, too large


def test_of_equal_cost_fewer_kinds_then_more_capacity() -> None:
    # Three 2-device replicas or one 2-device and one 4-device: the same six devices and cost.
    p = make(floats(10.0), ints(0, 0), ints(0, 0), ints(2, 4), floats(3.5, 7.0), ints(8), floats(10.0), cand_latency=floats(2.0, 1.0))
    sol = solve(p, method="exact")
    assert sol.replicas.tolist()[0] >= 3 and sol.cost_per_hour == 10.0  # one kind (polish may add replicas on idle devices)
    # Two candidates of the same devices, both carrying the whole demand: the one with more headroom.
    p = make(floats(0.5), ints(0, 0), ints(0, 0), ints(16, 16), floats(16.5, 26.4), ints(8), floats(98.0), cand_latency=floats(1.5, 2.1))
    assert solve(p, method="exact").replicas.tolist() == [0, 1]


def test_a_small_solve_does_not_import_scipy() -> None:
    code = ("import sys, numpy as np; from aicap.sizing.solve.milp import Problem, solve; "
            "p = Problem(demand=np.array([2.0]), cand_workload=np.array([0]), cand_type=np.array([0]), cand_devices=np.array([1]), "
            "cand_capacity=np.array([1.0]), cand_latency=np.array([1.0]), type_devices=np.array([4]), type_price=np.array([1.0]), "
            "type_group=np.array([0]), type_cap=np.array([np.inf])); s = solve(p); "
            "print(s.status.value, s.instances.tolist(), any(m.split('.')[0] == 'scipy' for m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["optimal", "[1]", "False"]


@settings(max_examples=60, deadline=None)
@given(p=st.one_of(problems(caps=True), problems(budget=True, caps=True), problems(single=True, caps=True)))
def test_the_search_alone_is_feasible_and_optimal(p: Problem) -> None:
    """search() itself, without solve()'s check that falls back to HiGHS on a violated plan."""
    found = exact.search(p)
    assert found is not None  # these problems are small
    best = brute_force(p)
    if found.replicas is None or found.instances is None:
        assert best is None
        return
    assert best is not None and _violated(p, found.replicas, found.instances) == ""
    assert float(p.type_price @ found.instances) == pytest.approx(best, rel=1e-9, abs=1e-9)
    sol = solve(p, method="exact")
    assert sol.message == "optimal (exact search)" and 0.0 <= sol.seconds < 60.0


def test_a_proven_infeasible_problem_says_so() -> None:
    p = make(floats(10.0), ints(0), ints(0), ints(1), floats(1.0), ints(8), floats(10.0), type_cap=floats(1.0))
    sol = solve(p, method="exact")
    assert (sol.status, sol.message, sol.cost_per_hour) == (SolveStatus.INFEASIBLE, "infeasible (exact search)", 0.0)
    assert sol.replicas.tolist() == [0] and sol.instances.tolist() == [0] and sol.served.tolist() == [0.0]
    assert sol.share.tolist() == [0.0] and np.isnan(sol.gap) and 0.0 <= sol.seconds < 60.0


@settings(max_examples=80, deadline=None)
@given(q=st.lists(st.floats(0.2, 3.0), min_size=1, max_size=4), demand=st.floats(0.5, 6.0),
       dev=st.lists(st.sampled_from([1, 2, 4]), min_size=4, max_size=4),
       types=st.lists(st.integers(0, 1), min_size=4, max_size=4))  # fmt: skip
def test_every_minimal_cover_is_matched_by_a_kept_one_using_no_more_devices(q: list[float], demand: float, dev: list[int],
                                                                            types: list[int]) -> None:  # fmt: skip
    """Completeness of the covers a workload keeps: the search can only be optimal if no cheaper cover is missing."""
    n = len(q)
    p = make(floats(demand), np.zeros(n, dtype=np.int64), np.array(types[:n]), np.array(dev[:n]), np.array(q), ints(4, 4), floats(1.0, 3.0))
    a = _arrays(p)
    r_ub, _ = _bounds(p, a)
    kept = covers(p, a, r_ub, a.price / a.td, 0, ~cost_dominated(p), exact.COVER_LIMIT)
    assert kept is not None
    qc = np.minimum(a.q, demand)
    for reps in itertools.product(*(range(int(u) + 1) for u in r_ub)):
        r = np.array(reps)
        total = float(qc @ r)
        if total < demand * (1 - 1e-9) or any(total - qc[k] >= demand * (1 - 1e-9) for k in range(n) if r[k]):
            continue  # not a minimal cover
        devices = np.bincount(a.ct, weights=a.cd * r, minlength=2)
        assert (kept.devices <= devices + 1e-9).all(axis=1).any(), (reps, kept.devices)
    for c in kept.replicas:  # and every kept one covers the demand
        assert float(qc[kept.index] @ c) >= demand * (1 - 1e-9)


def test_of_equal_cost_and_kinds_more_capacity_then_lower_latency() -> None:
    # Two types priced alike: one 2-device replica on either covers the demand; the one with more capacity wins,
    # and with equal capacity the faster one.
    p = make(floats(5.0), ints(0, 0), ints(0, 1), ints(2, 2), floats(5.0, 6.0), ints(8, 8), floats(8.0, 8.0), cand_latency=floats(1.0, 2.0))
    assert solve(p, method="exact").instances.tolist() == [0, 1]
    p = make(floats(5.0), ints(0, 0), ints(0, 1), ints(2, 2), floats(6.0, 6.0), ints(8, 8), floats(8.0, 8.0), cand_latency=floats(2.0, 1.0))
    assert solve(p, method="exact").instances.tolist() == [0, 1]


def test_a_cap_binds_across_workloads() -> None:
    # Each workload alone fits the cheap type's single instance (4 devices); together they need 6: one moves.
    p = make(floats(3.0, 3.0), ints(0, 0, 1, 1), ints(0, 1, 0, 1), ints(1, 1, 1, 1), floats(1.0, 1.0, 1.0, 1.0), ints(4, 4),
             floats(4.0, 8.0), type_cap=floats(1.0, np.inf))  # fmt: skip
    found = exact.search(p)
    assert found is not None and found.instances is not None and found.replicas is not None
    assert found.instances.tolist() == [1, 1] and _violated(p, found.replicas, found.instances) == ""


def test_single_type_holds_when_the_first_choice_is_group_zero() -> None:
    # Workload 0 (searched first: its cheapest cover is the dearer) is cheapest on group 0 (4 vs 5), workload 1 on
    # group 1 (1 vs 5): mixing would cost 5, group 0 costs 9, group 1 costs 6.
    p = make(floats(1.0, 1.0), ints(0, 0, 1, 1), ints(0, 1, 0, 1), ints(1, 1, 1, 1), floats(0.25, 0.2, 0.2, 1.0), ints(1, 1),
             floats(1.0, 1.0), single_type=True, type_group=ints(0, 1))  # fmt: skip
    found = exact.search(p)
    assert found is not None and found.instances is not None and found.replicas is not None
    assert _violated(p, found.replicas, found.instances) == "" and found.instances.tolist() == [0, 6]
