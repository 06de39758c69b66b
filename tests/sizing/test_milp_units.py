"""The integer program's helpers on hand-made problems: the plan check, the answers without a plan, the idle-device filler."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from aicap.sizing.solve import milp
from aicap.sizing.solve.highs import Outcome
from aicap.sizing.solve.milp import Problem, SolveStatus, _polish, _violated, solve


def problem(**kw: Any) -> Problem:
    """Two workloads (2 and 3 req/s) on an 8-device type at $8/hour and a 4-device type at $6/hour (other device group).

    Candidates: workload 0 on the 8-device type (1 device, 1 req/s), workload 1 there (2 devices, 3 req/s), workload 0
    on the 4-device type (4 devices, 5 req/s).
    """
    base: dict[str, Any] = dict(
        demand=np.array([2.0, 3.0]), cand_workload=np.array([0, 1, 0]), cand_type=np.array([0, 0, 1]),
        cand_devices=np.array([1, 2, 4]), cand_capacity=np.array([1.0, 3.0, 5.0]), cand_latency=np.ones(3),
        type_devices=np.array([8, 4]), type_price=np.array([8.0, 6.0]), type_group=np.array([0, 1]), type_cap=np.array([np.inf, np.inf]),
    )  # fmt: skip
    base.update(kw)
    return Problem(**base)


def plan(*v: int) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Replicas of the three candidates, then instances of the two types."""
    return np.array(v[:3], dtype=np.int64), np.array(v[3:], dtype=np.int64)


@pytest.mark.parametrize(("kw", "replicas_instances", "violated"), [
    ({}, (2, 1, 0, 1, 0), ""),
    ({}, (6, 1, 0, 1, 0), ""),  # the 8 devices exactly full
    ({}, (7, 1, 0, 1, 0), "packing"),  # one device over
    ({"type_cap": np.array([1.0, np.inf])}, (2, 1, 0, 1, 0), ""),
    ({"type_cap": np.array([1.0, np.inf])}, (2, 1, 0, 2, 0), "caps"),
    ({"budget_per_hour": 8.0}, (2, 1, 0, 1, 0), ""),
    ({"budget_per_hour": 7.99}, (2, 1, 0, 1, 0), "budget"),  # $0.01 over
    ({"single_type": True}, (0, 1, 1, 1, 1), "single type"),
    ({"single_type": True, "type_group": np.array([0, 0])}, (0, 1, 1, 1, 1), ""),
    ({}, (1, 1, 0, 1, 0), "demand"),  # workload 0 at 1 of its 2 req/s
    ({"objective": "throughput"}, (1, 1, 0, 1, 0), ""),  # throughput serves what it can
    ({"min_replicas": np.array([3, 0])}, (2, 1, 0, 1, 0), "min replicas"),
    ({"min_replicas": np.array([3, 0])}, (3, 1, 0, 1, 0), ""),
    ({}, (7, 0, 0, 0, 0), "packing, demand"),  # every breach named, in order
])  # fmt: skip
def test_violated_names_each_breach_by_the_least_amount(kw: dict[str, Any], replicas_instances: tuple[int, ...], violated: str) -> None:
    assert _violated(problem(**kw), *plan(*replicas_instances)) == violated


def _check_empty(p: Problem, sol: milp.Solution, status: SolveStatus, message: str) -> None:
    """A solution without a plan: zeros of the right shapes and types, cost 0, gap nan, the time it took."""
    assert sol.status is status and not sol.has_solution and sol.message == message
    assert sol.replicas.shape == (3,) and sol.replicas.dtype == np.int64 and not sol.replicas.any()
    assert sol.instances.shape == (2,) and sol.instances.dtype == np.int64 and not sol.instances.any()
    assert sol.served.shape == (2,) and not sol.served.any() and sol.share.shape == (3,) and not sol.share.any()
    assert sol.cost_per_hour == 0.0 and np.isnan(sol.gap) and 0.0 <= sol.seconds < 60.0


def test_the_exact_search_alone_answers_no_solution_where_it_does_not_apply() -> None:
    p = problem(objective="latency", budget_per_hour=100.0)  # the exact search solves the cost objective only
    _check_empty(p, solve(p, method="exact"), SolveStatus.NO_SOLUTION, "the exact search does not apply or gave up")


def test_highs_without_a_plan_gives_an_empty_solution_with_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milp, "run", lambda *a, **k: Outcome(SolveStatus.NO_SOLUTION, None, np.nan, "no plan in time"))
    p = problem()
    _check_empty(p, solve(p, method="highs"), SolveStatus.NO_SOLUTION, "no plan in time")


@pytest.mark.parametrize("method", ["auto", "highs", "exact"])
def test_a_solution_reports_its_own_wall_time(method: milp.Method) -> None:
    sol = solve(problem(), method=method)
    assert sol.status is SolveStatus.OPTIMAL and 0.0 <= sol.seconds < 60.0


def test_a_replica_floor_above_the_demand_is_kept_by_every_method_that_answers() -> None:
    """The exact search knows no floors: ``auto`` hands a floored problem to HiGHS, which keeps three replicas of
    workload 0 where its demand needs two (or one on the 4-device type)."""
    p = problem(min_replicas=np.array([3, 0]))
    sol = solve(p)
    assert sol.status is SolveStatus.OPTIMAL
    assert sol.replicas[[0, 2]].sum() >= 3 and not _violated(p, sol.replicas, sol.instances)


def test_a_throughput_floor_buys_a_replica_the_objective_would_not() -> None:
    """Under ``throughput`` serving nothing is allowed: with $8/hour, workload 0 (1 req/s on a 1-device replica, the
    8-device type) is worth more than workload 1 (0.5 req/s on the 4-device type); a floor of one replica for
    workload 1 makes the plan take the 4-device type instead."""
    p = problem(demand=np.array([50.0, 50.0]), cand_workload=np.array([0, 1]), cand_type=np.array([0, 1]), cand_devices=np.array([1, 4]),
                cand_capacity=np.array([1.0, 0.5]), cand_latency=np.ones(2), objective="throughput", budget_per_hour=8.0)  # fmt: skip
    assert solve(p).replicas.tolist() == [8, 0]
    floored = solve(replace(p, min_replicas=np.array([0, 1])))
    assert floored.status is SolveStatus.OPTIMAL and floored.replicas.tolist() == [0, 1] and floored.instances.tolist() == [0, 1]


def test_idle_devices_at_equal_capacity_per_device_take_the_largest_replica_first() -> None:
    """Workload 0 on an 8-device instance with 4 devices idle, candidates of 1 and 4 devices with the same capacity per
    device: one more 4-device replica fills them, not four 1-device ones (fewer replicas, the same devices)."""
    p = problem(demand=np.array([1.0]), cand_workload=np.array([0, 0]), cand_type=np.array([0, 0]), cand_devices=np.array([1, 4]),
                cand_capacity=np.array([1.0, 4.0]), cand_latency=np.ones(2), type_devices=np.array([8]), type_price=np.array([8.0]),
                type_group=np.array([0]), type_cap=np.array([np.inf]))  # fmt: skip
    r, n = _polish(p, np.array([0, 1]), np.array([1]))
    assert r.tolist() == [0, 2] and n.tolist() == [1]
    r, n = _polish(p, np.array([3, 1]), np.array([1]))  # one device idle: only a 1-device replica fits
    assert r.tolist() == [4, 1] and n.tolist() == [1]
    r, n = _polish(p, np.array([0, 1]), np.array([2]))  # a wholly idle instance is dropped first
    assert r.tolist() == [0, 2] and n.tolist() == [1]


def test_latency_trims_each_candidate_to_the_replicas_its_share_needs_unless_floored() -> None:
    """Latency routing fills the fastest capacity first: of 2 req/s, 1 goes to the fast replica (1 req/s), 1 to the slow
    candidate, which needs 1 of the 5 replicas it was given. A floor of one replica changes nothing; a floor of two or more
    keeps what the solver bought."""
    p = problem(demand=np.array([2.0]), cand_workload=np.array([0, 0]), cand_type=np.array([0, 1]), cand_devices=np.array([1, 1]),
                cand_capacity=np.array([1.0, 1.0]), cand_latency=np.array([1.0, 2.0]), type_devices=np.array([1, 1]),
                objective="latency", budget_per_hour=100.0)  # fmt: skip
    bought = np.array([1, 5]), np.array([1, 5])
    assert [x.tolist() for x in _polish(p, *bought)] == [[1, 1], [1, 1]]  # the four idle instances go too
    assert [x.tolist() for x in _polish(replace(p, min_replicas=np.array([1])), *bought)] == [[1, 1], [1, 1]]
    for floor in (2, 6):
        assert [x.tolist() for x in _polish(replace(p, min_replicas=np.array([floor])), *bought)] == [[1, 5], [1, 5]]


def test_latency_ties_are_broken_by_cost() -> None:
    """The same replica (latency 1, 2 req/s) on two device types at $6 and $8 an hour: equal latency, the cheaper type."""
    p = problem(demand=np.array([2.0]), cand_workload=np.array([0, 0]), cand_type=np.array([0, 1]), cand_devices=np.array([1, 1]),
                cand_capacity=np.array([2.0, 2.0]), cand_latency=np.ones(2), type_devices=np.array([1, 1]), type_price=np.array([8.0, 6.0]),
                objective="latency", budget_per_hour=100.0)  # fmt: skip
    sol = solve(p)
    assert sol.instances.tolist() == [0, 1] and sol.cost_per_hour == 6.0


@pytest.mark.parametrize(("rated_demand", "rateless_best", "winner"), [
    (1.5, 1.0, 1),  # rated: 1 of 1.5 req/s, worth 1/1.5; rate-less: 1 req/s of its best 1, worth 1
    (1.5, 2.0, 0),  # rate-less: 1 req/s of its best 2 (on a type the budget cannot buy), worth 1/2
])  # fmt: skip
def test_throughput_weighs_a_rated_workload_by_its_demand_and_a_rateless_one_by_its_best_replica(
        rated_demand: float, rateless_best: float, winner: int) -> None:  # fmt: skip
    """``throughput`` maximises ``Σ_w served_w / λ_w`` with ``1/q_max`` for a workload without a rate: with $1/hour, one
    1-device replica, the workload worth more per replica takes it."""
    p = problem(demand=np.array([rated_demand, np.nan]), cand_workload=np.array([0, 1, 1]), cand_type=np.array([0, 0, 1]),
                cand_devices=np.array([1, 1, 1]), cand_capacity=np.array([1.0, 1.0, rateless_best]), cand_latency=np.ones(3),
                type_devices=np.array([1, 1]), type_price=np.array([1.0, 5.0]), objective="throughput", budget_per_hour=1.0)  # fmt: skip
    sol = solve(p)
    served = np.bincount(p.cand_workload, weights=sol.replicas.astype(float), minlength=2)
    assert served.tolist() == [1.0 - winner, float(winner)]


def one_type(cd: list[int], cq: list[float], lat: list[float] | None = None, demand: float = 1.0, **kw: Any) -> Problem:
    """One workload's candidates ``cd`` devices, ``cq`` req/s each, on one 8-device type (and a second workload elsewhere)."""
    n = len(cd)
    return Problem(demand=np.array([demand, 1.0]), cand_workload=np.array([0] * n + [1]), cand_type=np.array([0] * n + [1]),
                   cand_devices=np.array([*cd, 1]), cand_capacity=np.array([*cq, 1.0]),
                   cand_latency=np.array([*(lat or [1.0] * n), 1.0]), type_devices=np.array([8, 8]), type_price=np.array([8.0, 8.0]),
                   type_group=np.array([0, 1]), type_cap=np.array([np.inf, np.inf]), **kw)  # fmt: skip


@pytest.mark.parametrize(("cd", "cq", "lat", "r", "expect"), [
    # 2 TP2 (1.5 each) + 1 TP4 (2.5) on 8 devices carry 5.5; 8 TP1 carry 8: one layout
    ([1, 2, 4], [1.0, 1.5, 2.5], None, [0, 2, 1], [8, 0, 0]),
    # the same capacity as the mixture: the mixture stays (the filler prefers fewer, larger replicas)
    ([1, 4], [1.0, 4.0], None, [4, 1], [4, 1]),
    ([1, 2], [1.0, 2.0], [2.0, 1.0], [2, 3], [2, 3]),  # 8 × 1 = 4 × 2 = 2 + 6
    # 6 devices: 3 replicas of 2 (6 // 2) carry 9 > 3 + 5; 1 of 4 (6 // 4) carries 7 < 1.5 + 7: kept
    ([2, 4], [3.0, 5.0], None, [1, 1], [3, 0]),
    ([2, 4], [1.5, 7.0], None, [1, 1], [1, 1]),
    # two layouts that carry the same, more than the mixture: the lower latency score, then the larger replica
    ([1, 2, 4], [1.0, 2.0, 2.5], [2.0, 1.0, 1.0], [0, 2, 1], [0, 4, 0]),
    ([1, 2, 4], [1.0, 2.0, 2.5], [1.0, 2.0, 1.0], [0, 2, 1], [8, 0, 0]),
    ([1, 2, 4], [1.0, 2.0, 2.5], [1.0, 1.0, 1.0], [0, 2, 1], [0, 4, 0]),
    # the most carried wins over a smaller replica: 4 × 2.6 = 10.4 > 2 × 5 = 10 > 8 × 1 = 8 > the mixture's 9
    ([1, 4, 2], [1.0, 5.0, 2.6], None, [4, 1, 0], [0, 0, 4]),
    ([1, 2, 8], [1.0, 2.0, 9.0], None, [2, 3, 0], [0, 0, 1]),  # the one 8-device replica: 9 > 8
])  # fmt: skip
def test_a_mixture_of_layouts_on_one_type_becomes_the_layout_that_carries_more(cd: list[int], cq: list[float], lat: list[float] | None,
                                                                               r: list[int], expect: list[int]) -> None:  # fmt: skip
    from aicap.sizing.solve.polish import _one_layout

    got = _one_layout(one_type(cd, cq, lat), np.array([*r, 1], dtype=np.int64))
    assert got.tolist() == [*expect, 1]  # the other workload, on its own type, is left as it was


def test_one_layout_leaves_latency_plans_floors_and_single_layouts() -> None:
    from aicap.sizing.solve.polish import _one_layout

    mixed = np.array([0, 2, 1, 1], dtype=np.int64)
    p = one_type([1, 2, 4], [1.0, 1.5, 2.5])
    assert _one_layout(p, mixed).tolist() == [8, 0, 0, 1] and mixed.tolist() == [0, 2, 1, 1]  # a new array, not in place
    latency = replace(p, objective="latency", budget_per_hour=100.0)
    assert _one_layout(latency, mixed).tolist() == [0, 2, 1, 1]  # latency's routing weighs each replica's latency
    assert _one_layout(p, np.zeros(4, dtype=np.int64)).tolist() == [0, 0, 0, 0]
    assert _one_layout(p, np.array([5, 0, 0, 1])).tolist() == [5, 0, 0, 1]  # one layout already
    # 4 replicas of 2 devices (2.5 each) carry 10 > 4 + 2 × 2.5 = 9, with 4 replicas of the 6 it had
    pair = one_type([1, 2], [1.0, 2.5])
    assert _one_layout(pair, np.array([4, 2, 1])).tolist() == [0, 4, 1]
    assert _one_layout(replace(pair, min_replicas=np.array([4, 0])), np.array([4, 2, 1])).tolist() == [0, 4, 1]  # 4 keeps a floor of 4
    assert _one_layout(replace(pair, min_replicas=np.array([5, 0])), np.array([4, 2, 1])).tolist() == [4, 2, 1]  # a floor of 5 keeps 6


@pytest.mark.parametrize(("floor", "expect"), [
    (8, [0, 4, 0, 4]),  # 12 replicas, then 10 after the first type's change, then 8: both change
    (9, [0, 4, 4, 2]),  # the second change would leave 8 < 9 replicas: the second type keeps its mixture
    (11, [4, 2, 4, 2]),  # the first would leave 10 < 11
])  # fmt: skip
def test_one_layout_counts_the_replicas_a_floor_keeps_across_the_workload_s_types(floor: int, expect: list[int]) -> None:
    from aicap.sizing.solve.polish import _one_layout

    p = Problem(demand=np.array([1.0]), cand_workload=np.array([0, 0, 0, 0]), cand_type=np.array([0, 0, 1, 1]),
                cand_devices=np.array([1, 2, 1, 2]), cand_capacity=np.array([1.0, 2.5, 1.0, 2.5]), cand_latency=np.ones(4),
                type_devices=np.array([8, 8]), type_price=np.array([8.0, 8.0]), type_group=np.array([0, 1]),
                type_cap=np.array([np.inf, np.inf]), min_replicas=np.array([floor]))  # fmt: skip
    assert _one_layout(p, np.array([4, 2, 4, 2])).tolist() == expect  # each type: 4 × 2.5 = 10 > 4 + 5 on 8 devices
