"""Replica floors (``min_replicas``) in the static integer program, against brute-force enumeration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.solve.milp import I, Problem, SolveStatus, solve, validate
from tests.sizing.test_milp import _onehot, assert_matches_brute_force, floats, greedy_latency, ints, make, problems, weights


def _floored(draw: st.DrawFn, p: Problem) -> Problem:
    return replace(p, min_replicas=np.array([draw(st.integers(0, 3)) for _ in p.demand], dtype=np.int64))


@st.composite
def floored(draw: st.DrawFn, objective: str = "cost", **kw: bool) -> Problem:
    return _floored(draw, draw(problems(objective, **kw)))


def brute_force_floored(p: Problem) -> float | None:
    """Best objective over every replica vector up to ``max(⌈λ/q⌉, k_w)`` that keeps each workload's floor."""
    k = p.floors
    n_cap = np.floor(p.type_cap)
    if p.budget_per_hour is not None:
        n_cap = np.minimum(n_cap, np.floor(np.divide(p.budget_per_hour, p.type_price, out=np.full(len(p.type_price), np.inf),
                                                     where=p.type_price > 0) + 1e-9))  # fmt: skip
    by_cap = np.floor(p.type_devices[p.cand_type] * n_cap[p.cand_type] / p.cand_devices)
    upper = np.fmin(np.maximum(np.ceil(p.demand[p.cand_workload] / p.cand_capacity), k[p.cand_workload]), by_cap).astype(np.int64)
    grids = np.meshgrid(*[np.arange(u + 1) for u in upper], indexing="ij")
    reps: I = np.stack([g.ravel() for g in grids], axis=1)
    nw, nt = len(p.demand), len(p.type_devices)
    inst = np.ceil((reps * p.cand_devices) @ _onehot(p.cand_type, nt) / p.type_devices - 1e-9)
    cost = inst @ p.type_price
    cap_w = (reps * p.cand_capacity) @ _onehot(p.cand_workload, nw)
    ok = (inst <= p.type_cap).all(axis=1) & (reps @ _onehot(p.cand_workload, nw) >= k).all(axis=1)
    if p.budget_per_hour is not None:
        ok &= cost <= p.budget_per_hour + 1e-9
    if p.objective == "throughput":
        return float(np.max(np.where(ok, np.fmin(p.demand, cap_w) @ weights(p), -np.inf))) if ok.any() else None
    ok &= (cap_w >= p.demand * (1 - 1e-9)).all(axis=1)
    if not ok.any():
        return None
    return float(cost[ok].min() if p.objective == "cost" else greedy_latency(p, reps[ok]).min())


def assert_floored_optimum(p: Problem) -> None:
    assert_matches_brute_force(p, brute=brute_force_floored)


@settings(max_examples=40, deadline=None)
@given(p=floored(caps=True))
def test_cost_with_floors_equals_brute_force(p: Problem) -> None:
    assert_floored_optimum(p)


@settings(max_examples=25, deadline=None)
@given(p=floored("latency", caps=True))
def test_latency_with_floors_equals_brute_force(p: Problem) -> None:
    assert_floored_optimum(p)


@settings(max_examples=25, deadline=None)
@given(p=floored("throughput", caps=True))
def test_throughput_with_floors_equals_brute_force(p: Problem) -> None:
    assert_floored_optimum(p)


def test_a_floor_buys_replicas_the_demand_does_not_need_on_the_cheapest_size() -> None:
    # one workload, 1 req/s; a 1-device replica carries 2 req/s, a 2-device one 5 req/s, on 8-device instances
    p = make(floats(1.0), ints(0, 0), ints(0, 0), ints(1, 2), floats(2.0, 5.0), ints(8), floats(8.0))
    assert solve(p).replicas.sum() >= 1
    three = solve(replace(p, min_replicas=ints(3)))
    assert three.status is SolveStatus.OPTIMAL and three.cost_per_hour == pytest.approx(8.0)
    assert int(three.replicas.sum()) >= 3  # the idle devices are then filled: more, never fewer
    nine = solve(replace(p, min_replicas=ints(9)))  # 9 replicas need a second instance, even of 1 device each
    assert nine.cost_per_hour == pytest.approx(16.0) and int(nine.replicas.sum()) >= 9
    capped = solve(replace(p, min_replicas=ints(9), type_cap=floats(1.0)))
    assert capped.status is SolveStatus.INFEASIBLE


def test_floors_are_validated() -> None:
    p = make(floats(1.0), ints(0), ints(0), ints(1), floats(2.0), ints(8), floats(8.0))
    with pytest.raises(ValueError, match="min_replicas"):
        validate(replace(p, min_replicas=ints(1, 2)))
    with pytest.raises(ValueError, match="min_replicas"):
        validate(replace(p, min_replicas=ints(-1)))


def test_the_exact_search_alone_declines_a_floored_problem() -> None:
    p = make(floats(1.0), ints(0), ints(0), ints(1), floats(2.0), ints(8), floats(8.0), min_replicas=ints(2))
    assert solve(p, method="exact").status is SolveStatus.NO_SOLUTION
    assert solve(p, method="highs").replicas.sum() >= 2
