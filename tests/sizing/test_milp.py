"""The integer program against brute-force enumeration on small random problems; statuses, polish, stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aicap.sizing.solve.milp import F, I, Method, Problem, Solution, SolveStatus, _stdout_to_devnull, solve, validate


def ints(*v: int) -> I:
    return np.array(v, dtype=np.int64)


def floats(*v: float) -> F:
    return np.array(v, dtype=np.float64)


def make(demand: F, cw: I, ct: I, cd: I, cq: F, td: I, price: F, **kw: Any) -> Problem:
    """A problem with defaults: latency 1, one device group per type, no caps."""
    nt = len(td)
    kw.setdefault("cand_latency", np.ones(len(cw)))
    kw.setdefault("type_group", np.arange(nt, dtype=np.int64))
    kw.setdefault("type_cap", np.full(nt, np.inf))
    return Problem(demand=demand, cand_workload=cw, cand_type=ct, cand_devices=cd, cand_capacity=cq, type_devices=td,
                   type_price=price, **kw)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# brute force


def _onehot(idx: I, n: int) -> F:
    m = np.zeros((len(idx), n))
    m[np.arange(len(idx)), idx] = 1.0
    return m


def _upper(p: Problem) -> I:
    """Replica ranges that contain an optimum: ⌈λ/q⌉ for rated workloads, the caps/budget limit for rate-less ones."""
    n_cap = np.floor(p.type_cap)
    if p.budget_per_hour is not None:
        n_cap = np.minimum(n_cap, np.floor(np.divide(p.budget_per_hour, p.type_price, out=np.full(len(p.type_price), np.inf),
                                                     where=p.type_price > 0) + 1e-9))  # fmt: skip
    by_cap = np.floor(p.type_devices[p.cand_type] * n_cap[p.cand_type] / p.cand_devices)
    need = np.maximum(np.ceil(p.demand[p.cand_workload] / p.cand_capacity), p.floors[p.cand_workload])  # a nan demand stays nan
    return np.fmin(need, by_cap).astype(np.int64)


def enumerate_plans(p: Problem) -> tuple[I, F, F, Any]:
    """Every replica vector within :func:`_upper`, its cheapest instances' cost, capacity per workload and feasibility."""
    grids = np.meshgrid(*[np.arange(u + 1) for u in _upper(p)], indexing="ij")
    reps = np.stack([g.ravel() for g in grids], axis=1) if len(grids) else np.zeros((1, 0), np.int64)
    nw, nt = len(p.demand), len(p.type_devices)
    used = (reps * p.cand_devices) @ _onehot(p.cand_type, nt)
    inst = np.ceil(used / p.type_devices - 1e-9)
    cost = inst @ p.type_price
    cap_w = (reps * p.cand_capacity) @ _onehot(p.cand_workload, nw)
    ok = (inst <= p.type_cap).all(axis=1)
    if p.budget_per_hour is not None:
        ok &= cost <= p.budget_per_hour + 1e-9
    if p.single_type:
        groups = (inst > 0) @ _onehot(p.type_group, int(p.type_group.max()) + 1)
        ok &= (groups > 0).sum(axis=1) <= 1
    ok &= (reps @ _onehot(p.cand_workload, nw) >= p.floors).all(axis=1)  # min_replicas
    return reps, cost, cap_w, ok


def greedy_latency(p: Problem, reps: I) -> F:
    """Mean over workloads of the traffic-weighted latency of the best routing for each replica vector."""
    out = np.zeros(len(reps))
    for w in range(len(p.demand)):
        c = np.flatnonzero(p.cand_workload == w)
        c = c[np.argsort(p.cand_latency[c], kind="stable")]
        frac = reps[:, c] * p.cand_capacity[c] / p.demand[w]
        before = np.cumsum(frac, axis=1) - frac
        out += (np.minimum(frac, np.maximum(0.0, 1.0 - before)) * p.cand_latency[c]).sum(axis=1)
    return out / len(p.demand)


def weights(p: Problem) -> F:
    qmax = np.array([p.cand_capacity[p.cand_workload == w].max(initial=0.0) for w in range(len(p.demand))])
    return np.where(np.isnan(p.demand), 1.0 / np.where(qmax > 0, qmax, 1.0), 1.0 / np.where(np.isnan(p.demand), 1.0, p.demand))


def brute_force(p: Problem) -> float | None:
    """Best primary objective (cost, mean latency or weighted served), ``None`` if infeasible."""
    reps, cost, cap_w, ok = enumerate_plans(p)
    if p.objective == "throughput":  # infeasible only where a replica floor is out of reach
        return float(np.max(np.where(ok, np.fmin(p.demand, cap_w) @ weights(p), -np.inf))) if ok.any() else None
    ok &= (cap_w >= p.demand * (1 - 1e-9)).all(axis=1)
    if not ok.any():
        return None
    return float(cost[ok].min() if p.objective == "cost" else greedy_latency(p, reps[ok]).min())


def achieved(p: Problem, sol: Solution) -> float:
    if p.objective == "cost":
        return sol.cost_per_hour
    if p.objective == "latency":
        return float(np.bincount(p.cand_workload, weights=sol.share * p.cand_latency, minlength=len(p.demand)).mean())
    return float(sol.served @ weights(p))


def check_plan(p: Problem, sol: Solution) -> None:
    """The returned plan satisfies every constraint; served and share agree with the replicas."""
    assert sol.has_solution
    r, n = sol.replicas, sol.instances
    assert r.dtype == np.int64 and n.dtype == np.int64 and (r >= 0).all() and (n >= 0).all()
    assert (np.bincount(p.cand_type, weights=p.cand_devices * r, minlength=len(n)) <= p.type_devices * n).all()
    assert (n <= p.type_cap).all()
    assert sol.cost_per_hour == pytest.approx(float(p.type_price @ n))
    if p.budget_per_hour is not None:
        assert sol.cost_per_hour <= p.budget_per_hour * (1 + 1e-9) + 1e-9
    if p.single_type:
        assert len(set(p.type_group[n > 0].tolist())) <= 1
    cap_w = np.bincount(p.cand_workload, weights=p.cand_capacity * r, minlength=len(p.demand))
    assert (sol.served <= cap_w * (1 + 1e-9) + 1e-9).all()
    if p.objective != "throughput":
        assert np.allclose(sol.served, p.demand) and (cap_w >= p.demand * (1 - 1e-6)).all()
    assert (sol.served <= np.nan_to_num(p.demand, nan=np.inf) * (1 + 1e-9)).all()
    assert (np.bincount(p.cand_workload, weights=r, minlength=len(p.demand)) >= p.floors).all()  # min_replicas
    tot = np.bincount(p.cand_workload, weights=sol.share, minlength=len(p.demand))
    assert np.allclose(tot[sol.served > 0], 1.0) and np.allclose(tot[sol.served == 0], 0.0)
    assert (sol.share * sol.served[p.cand_workload] <= p.cand_capacity * r * (1 + 1e-6) + 1e-9).all()


def assert_matches_brute_force(p: Problem, method: Method = "auto", brute: Callable[[Problem], float | None] = brute_force) -> None:
    sol = solve(p, method=method)
    best = brute(p)
    if best is None:
        assert sol.status is SolveStatus.INFEASIBLE, sol.message
        return
    assert sol.status is SolveStatus.OPTIMAL, sol.message
    check_plan(p, sol)
    got, tol = achieved(p, sol), 2 * p.mip_rel_gap * max(abs(best), 1.0) + 1e-6
    if p.objective == "throughput":
        assert best - tol <= got <= best + 1e-6
    else:
        assert best - 1e-6 <= got <= best + tol
    if p.objective != "cost" and brute is brute_force:  # and no dearer than the cheapest plan that reaches the optimum
        assert sol.cost_per_hour <= cheapest_at_best(p, best) + 1e-6, (sol.cost_per_hour, cheapest_at_best(p, best))


def cheapest_at_best(p: Problem, best: float) -> float:
    """The least cost [USD/hour] of a plan whose primary objective (latency, throughput) is ``best``."""
    reps, cost, cap_w, ok = enumerate_plans(p)
    if p.objective == "throughput":
        at = np.fmin(p.demand, cap_w) @ weights(p) >= best - 1e-9
    else:
        ok &= (cap_w >= p.demand * (1 - 1e-9)).all(axis=1)
        at = greedy_latency(p, reps) <= best + 1e-9
    return float(cost[ok & at].min())


# ---------------------------------------------------------------------------------------------
# random small problems


@st.composite
def problems(draw: st.DrawFn, objective: str = "cost", *, rateless: bool = False, caps: bool = False, budget: bool = False,
             single: bool = False, floors: bool = False) -> Problem:  # fmt: skip
    nw = draw(st.integers(1, 2))
    nt = draw(st.integers(1, 3 if single else 2))
    td = [draw(st.sampled_from([1, 2, 4] if rateless else [1, 2, 4, 8])) for _ in range(nt)]
    price = [draw(st.floats(0.5, 20.0)) for _ in range(nt)]
    cw, ct, cd = [], [], []
    for w in range(nw):
        seen = set()
        for _ in range(draw(st.integers(1, 3 if nw == 1 else 2))):
            t = draw(st.integers(0, nt - 1))
            d = draw(st.sampled_from([s for s in (1, 2, 4, 8) if td[t] % s == 0]))
            if (t, d) not in seen:
                seen.add((t, d))
                cw.append(w)
                ct.append(t)
                cd.append(d)
    nc = len(cw)
    demand = [draw(st.floats(0.5, 6.0)) for _ in range(nw)]
    if rateless:
        demand = [np.nan if w == 0 or draw(st.booleans()) else x for w, x in enumerate(demand)]
    cap = [draw(st.one_of(st.just(np.inf), st.integers(0, 3).map(float))) if caps else np.inf for _ in range(nt)]
    b = None
    if rateless:
        b = draw(st.floats(0.5, 2.5)) * min(price)
    elif budget or objective != "cost":
        b = draw(st.floats(0.5, 60.0))
    return Problem(
        demand=np.array(demand), cand_workload=np.array(cw, dtype=np.int64), cand_type=np.array(ct, dtype=np.int64),
        cand_devices=np.array(cd, dtype=np.int64), cand_capacity=np.array([draw(st.floats(1.0, 4.0)) * d for d in cd]),
        cand_latency=np.array([draw(st.floats(0.5, 3.0)) for _ in range(nc)]), type_devices=np.array(td, dtype=np.int64),
        type_price=np.array(price), type_group=np.array([draw(st.integers(0, 1)) if single else t for t in range(nt)], dtype=np.int64),
        type_cap=np.array(cap, dtype=np.float64), budget_per_hour=b, objective=objective, single_type=single,  # type: ignore[arg-type]
        min_replicas=np.array([draw(st.integers(0, 3)) for _ in range(nw)], dtype=np.int64) if floors else None,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["highs", "exact"])
@settings(max_examples=40, deadline=None)
@given(p=problems(caps=True))
def test_cost_with_caps_equals_brute_force(p: Problem, method: Method) -> None:
    assert_matches_brute_force(p, method)


@pytest.mark.parametrize("method", ["highs", "exact"])
@settings(max_examples=30, deadline=None)
@given(p=problems(budget=True, caps=True))
def test_cost_with_budget_equals_brute_force(p: Problem, method: Method) -> None:
    assert_matches_brute_force(p, method)


@pytest.mark.parametrize("method", ["highs", "exact"])
@settings(max_examples=30, deadline=None)
@given(p=problems(single=True, caps=True))
def test_cost_single_type_equals_brute_force(p: Problem, method: Method) -> None:
    assert_matches_brute_force(p, method)


def _presolve_case(capacity: float, budget: float) -> Problem:
    """Two workloads on a 4-device and a 1-device type that HiGHS presolve got wrong (found by the test below)."""
    return Problem(demand=np.array([2.91245162967027, 1.0]), cand_workload=np.array([0, 0, 1]), cand_type=np.array([1, 0, 0]),
                   cand_devices=np.array([1, 1, 4]), cand_capacity=np.array([capacity, 1.0, 4.0]), cand_latency=np.array([1.0, 1.0, 1.0]),
                   type_devices=np.array([4, 1]), type_price=np.array([1.0, 1.0]), type_group=np.array([0, 1]),
                   type_cap=np.array([1.0, np.inf]), budget_per_hour=budget, objective="throughput")  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(problems("throughput", caps=True))
@example(p=_presolve_case(capacity=2.0, budget=3.0))  # HiGHS presolve said "infeasible"
@example(p=_presolve_case(capacity=1.0, budget=2.0))  # HiGHS presolve found 1.0 of 1.343
def test_throughput_with_rate_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p)


@settings(max_examples=30, deadline=None)
@given(problems("throughput", rateless=True, caps=True))
def test_throughput_without_rate_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p)


@settings(max_examples=30, deadline=None)
@given(problems("throughput", single=True))
def test_throughput_single_type_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p)


@settings(max_examples=30, deadline=None)
@given(problems("latency", caps=True))
def test_latency_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p)


@settings(max_examples=30, deadline=None)
@given(problems("latency", single=True, caps=True))
def test_latency_single_type_equals_brute_force(p: Problem) -> None:
    assert_matches_brute_force(p)


# Replica floors (min_replicas): a workload keeps at least k_w replicas whatever its demand needs. The exact search
# knows no floors, so "auto" must hand such a problem to HiGHS; under "throughput" the floors are the only demand rows.
@pytest.mark.parametrize("objective", ["cost", "throughput", "latency"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_floors_equal_brute_force(objective: str, data: st.DataObject) -> None:
    assert_matches_brute_force(data.draw(problems(objective, caps=True, budget=objective == "cost", floors=True)), "auto")


# ---------------------------------------------------------------------------------------------
# hand-made cases


@pytest.mark.parametrize("method", ["highs", "exact"])
def test_replicas_of_two_workloads_share_an_instance(method: Method) -> None:
    p = make(floats(1.0, 1.0), ints(0, 1), ints(0, 0), ints(4, 4), floats(1.0, 1.0), ints(8), floats(10.0))
    sol = solve(p, method=method)
    assert sol.instances.tolist() == [1] and sol.replicas.tolist() == [1, 1] and sol.cost_per_hour == 10.0


@pytest.mark.parametrize("method", ["highs", "exact"])
def test_single_type_forbids_mixing(method: Method) -> None:
    p = make(floats(1.0, 1.0), ints(0, 1, 0, 1), ints(0, 1, 1, 0), ints(1, 1, 1, 1), floats(1.0, 1.0, 0.5, 0.5), ints(1, 1),
             floats(1.0, 1.0), single_type=True)  # fmt: skip
    sol = solve(p, method=method)
    assert sol.status is SolveStatus.OPTIMAL and min(sol.instances) == 0 and sol.cost_per_hour == 3.0


@pytest.mark.parametrize("method", ["highs", "exact"])
def test_paid_devices_are_filled_at_the_same_cost(method: Method) -> None:
    # 4 devices' worth of demand on an 8-device instance: the other 4 devices are free headroom.
    p = make(floats(4.0), ints(0, 0), ints(0, 0), ints(1, 2), floats(1.0, 1.9), ints(8), floats(10.0), cand_latency=floats(1.0, 2.0))
    sol = solve(p, method=method)
    assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == 10.0 and sol.instances.tolist() == [1]
    assert int(sol.replicas @ p.cand_devices) == 8
    assert np.allclose(sol.share, sol.replicas * p.cand_capacity / (sol.replicas @ p.cand_capacity))


def test_latency_routes_to_the_fastest_capacity_first() -> None:
    # Fast replicas (1 req/s) cost 2 USD/h, slow ones (4 req/s) 1 USD/h; demand 2 req/s.
    p = make(floats(2.0), ints(0, 0), ints(0, 1), ints(1, 1), floats(1.0, 4.0), ints(1, 1), floats(2.0, 1.0), cand_latency=floats(1.0, 3.0),
             objective="latency", budget_per_hour=3.0)  # fmt: skip
    sol = solve(p)  # one fast replica full, the rest on a slow one
    assert sol.replicas.tolist() == [1, 1] and np.allclose(sol.share, [0.5, 0.5])
    sol = solve(replace(p, budget_per_hour=4.0))  # two fast replicas carry everything
    assert sol.replicas.tolist() == [2, 0] and sol.instances.tolist() == [2, 0] and np.allclose(sol.share, [1.0, 0.0])


def test_latency_drops_replicas_no_request_reaches() -> None:
    # The cost tie-break lies within the solver's gap, so an optimum may carry replicas the routing sends nothing to,
    # bought within the budget: a fast replica (10 req/s) carries all 2 req/s, the slow one on its own instance idles.
    from aicap.sizing.solve.milp import _polish

    p = make(floats(2.0), ints(0, 0), ints(0, 1), ints(1, 1), floats(10.0, 10.0), ints(1, 1), floats(5.0, 1.0),
             cand_latency=floats(1.0, 3.0), objective="latency", budget_per_hour=10.0)  # fmt: skip
    r, n = _polish(p, ints(1, 1), ints(1, 1))
    assert r.tolist() == [1, 0] and n.tolist() == [1, 0]
    r, n = _polish(p, ints(3, 0), ints(3, 0))  # 2 req/s need one fast replica: the other two instances go
    assert r.tolist() == [1, 0] and n.tolist() == [1, 0]
    sol = solve(p)
    assert sol.replicas.tolist() == [1, 0] and sol.instances.tolist() == [1, 0] and sol.cost_per_hour == 5.0


def test_throughput_without_rate_buys_what_the_budget_allows() -> None:
    p = make(floats(np.nan), ints(0, 0), ints(0, 1), ints(1, 1), floats(1.0, 3.0), ints(1, 1), floats(1.0, 2.5),
             objective="throughput", budget_per_hour=5.0)  # fmt: skip
    sol = solve(p)  # 2 × 3.0 (5.0 USD) beats 5 × 1.0
    assert sol.instances.tolist() == [0, 2] and sol.served[0] == pytest.approx(6.0)


@pytest.mark.parametrize("method", ["highs", "exact"])
def test_infeasible_when_caps_are_too_small(method: Method) -> None:
    p = make(floats(10.0), ints(0), ints(0), ints(1), floats(1.0), ints(8), floats(10.0), type_cap=floats(1.0))
    sol = solve(p, method=method)
    assert sol.status is SolveStatus.INFEASIBLE and not sol.has_solution and np.isnan(sol.gap)
    assert sol.replicas.tolist() == [0] and sol.instances.tolist() == [0]
    assert solve(p.without_limits(), method=method).status is SolveStatus.OPTIMAL


def test_latency_infeasible_within_budget() -> None:
    p = make(floats(10.0), ints(0), ints(0), ints(1), floats(1.0), ints(8), floats(10.0), objective="latency", budget_per_hour=5.0)
    assert solve(p).status is SolveStatus.INFEASIBLE


def _random_problem(nw: int, seed: int) -> Problem:
    """A cost problem of realistic shape: types of 1-8 devices over 3 device groups, ~7 candidates per workload."""
    rng = np.random.default_rng(seed)
    td, price = ints(1, 4, 8, 1, 8, 8), floats(1.0, 3.8, 7.0, 3.7, 32.8, 98.3)
    w, t, d = (a.ravel() for a in np.meshgrid(np.arange(nw), np.arange(len(td)), ints(1, 2, 4, 8), indexing="ij"))
    keep = (d <= td[t]) & ((rng.random(w.size) < 0.4) | ((t == 5) & (d == 8)))  # always a candidate on the last type
    w, t, d = w[keep], t[keep], d[keep]
    caps = floats(np.inf, 30, 10, 5, np.inf, np.inf)
    return make(rng.lognormal(1.5, 1.0, nw), w, t, d, rng.uniform(0.5, 2.0, w.size) * d, td, price,
                cand_latency=rng.uniform(0.5, 2.0, w.size), type_group=ints(0, 0, 0, 1, 1, 2), type_cap=caps)  # fmt: skip


def test_time_limit_keeps_the_incumbent_and_never_claims_infeasible() -> None:
    p = replace(_random_problem(400, seed=1), time_limit_s=0.05)
    assert len(p.cand_workload) > 2500
    sol = solve(p)
    assert sol.status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT, SolveStatus.NO_SOLUTION), sol.message
    if sol.has_solution:
        check_plan(p, sol)
        assert sol.gap >= 0
    else:
        assert np.isnan(sol.gap) and not sol.replicas.any()


@pytest.mark.parametrize(
    ("status", "keep_x", "extra", "expected"),
    [
        (1, True, {"mip_gap": 0.25}, SolveStatus.TIME_LIMIT),
        (1, True, {"mip_gap": None, "mip_dual_bound": 15.0}, SolveStatus.TIME_LIMIT),
        (1, False, {}, SolveStatus.NO_SOLUTION),
        (2, False, {}, SolveStatus.INFEASIBLE),
        (4, False, {"message": "solver failed"}, SolveStatus.NO_SOLUTION),
    ],
)
def test_scipy_statuses_map_to_solve_status(monkeypatch: pytest.MonkeyPatch, status: int, keep_x: bool, extra: dict[str, Any],
                                            expected: SolveStatus) -> None:  # fmt: skip
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    real, calls = scipy.optimize.milp, []

    def fake(*args: Any, **kw: Any) -> OptimizeResult:
        calls.append(dict(kw["options"]))  # scipy pops "disp" from it
        res = real(*args, **kw)
        res.update(status=status, x=res.x if keep_x else None, **extra)
        return res

    monkeypatch.setattr(scipy.optimize, "milp", fake)
    p = make(floats(3.0), ints(0), ints(0), ints(1), floats(1.0), ints(4), floats(20.0))
    sol = solve(p, method="highs")
    assert sol.status is expected and sol.status.value == expected.value
    if expected is SolveStatus.TIME_LIMIT:  # the incumbent is the plan, with its gap
        assert sol.has_solution and sol.replicas.tolist() == [4] and sol.instances.tolist() == [1]
        assert sol.gap == pytest.approx(0.25)
    else:
        assert not sol.has_solution and np.isnan(sol.gap) and sol.cost_per_hour == 0.0
    # the time limit is what is left of 20 s
    assert calls[0] == {"disp": False, "time_limit": pytest.approx(20.0, abs=1.0), "mip_rel_gap": 1e-4, "presolve": True}
    if status == 4:  # a solver error is retried once without presolve
        assert [c["presolve"] for c in calls] == [True, False] and sol.message == "solver failed; solver failed"
    else:
        assert len(calls) == 1


def _presolve_bug() -> Problem:
    """HiGHS 1.12's presolve reduces this to empty with a wrong point, prints from C and reports "Solve error"."""
    return make(floats(1.0, 0.6764102525964019), ints(0, 1, 1), ints(1, 1, 0), ints(1, 1, 1), floats(1.0, 1.9502329424019342, 1.0),
                ints(1, 1), floats(1.0, 3.0), type_group=ints(0, 0), objective="throughput", budget_per_hour=4.0,
                single_type=True)  # fmt: skip


def test_presolve_bug_is_retried_without_presolve() -> None:
    p = _presolve_bug()
    sol = solve(p)
    assert sol.status is SolveStatus.OPTIMAL and sol.replicas.tolist() == [1, 0, 1] and np.allclose(sol.served, p.demand)
    check_plan(p, sol)


def test_nothing_reaches_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    solve(_presolve_bug())  # scipy.optimize.milp(..., options={"disp": False}) prints a line of HiGHS's for this one
    solve(replace(_random_problem(50, seed=2), time_limit_s=0.05), method="highs")
    with _stdout_to_devnull():
        os.write(1, b"from C\n")
    print("after")
    out, _ = capfd.readouterr()
    assert out == "after\n"


def test_importing_the_module_does_not_import_scipy() -> None:
    code = "import sys, aicap.sizing.solve.milp; print(any(m.split('.')[0] == 'scipy' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_without_limits_drops_caps_budget_and_objective() -> None:
    p = make(floats(2.0), ints(0), ints(0), ints(1), floats(1.0), ints(1), floats(1.0), type_cap=floats(1.0), objective="latency",
             budget_per_hour=1.0)  # fmt: skip
    q = p.without_limits()
    assert q.objective == "cost" and q.budget_per_hour is None and np.isinf(q.type_cap).all()
    with pytest.raises(ValueError, match="rate"):
        replace(p, demand=floats(np.nan), objective="throughput").without_limits()


_GOOD = make(floats(1.0), ints(0), ints(0), ints(2), floats(1.0), ints(4), floats(2.0))


@pytest.mark.parametrize("method", ["highs", "exact"])
def test_a_replica_spanning_instances_buys_them_whole(method: Method) -> None:
    # one 8-device replica on 4-device instances: two instances, both full
    sol = solve(make(floats(1.0), ints(0), ints(0), ints(8), floats(1.5), ints(4), floats(2.0)), method=method)
    assert sol.status == SolveStatus.OPTIMAL
    assert sol.replicas.tolist() == [1] and sol.instances.tolist() == [2] and sol.cost_per_hour == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"cand_type": ints(0, 0)}, "cand_type has 2 entries"),
        ({"cand_workload": ints(1)}, "cand_workload out of range"),
        ({"cand_type": ints(3)}, "cand_type out of range"),
        ({"cand_devices": ints(3)}, "powers of two"),
        ({"cand_devices": ints(4), "type_devices": ints(6)}, "divide"),
        ({"cand_capacity": floats(0.0)}, "cand_capacity"),
        ({"cand_latency": floats(np.inf)}, "cand_latency"),
        ({"type_price": floats(-1.0)}, "type_price"),
        ({"type_cap": floats(np.nan)}, "type_cap"),
        ({"demand": floats(0.0)}, "demand must be"),
        ({"demand": floats(np.nan)}, "throughput"),
        ({"objective": "latency"}, "needs budget_per_hour"),
        ({"objective": "speed"}, "unknown objective"),
        ({"budget_per_hour": -1.0}, "budget_per_hour must be"),
        ({"time_limit_s": 0.0}, "time_limit_s"),
        ({"cand_workload": floats(0.0)}, "integer array"),
        ({"demand": floats(np.nan), "objective": "throughput", "budget_per_hour": 1.0, "type_price": floats(0.0)}, "unbounded"),
    ],
)
def test_invalid_problems_are_rejected(change: dict[str, Any], match: str) -> None:
    validate(_GOOD)
    with pytest.raises(ValueError, match=match):
        solve(replace(_GOOD, **change))


def test_idle_devices_take_more_of_the_layout_with_most_capacity_per_device() -> None:
    # 1 req/s on an 8-device instance; a 1-device layout carries 1 req/s (latency score 2), a 4-device one 3 req/s
    # (0.75 a device, score 1). One small replica carries the demand; the 7 devices left go to 7 more of it (7 req/s
    # of headroom), not to a larger layout first (one 4-device replica and three small ones: 6 req/s, a mixed plan).
    from aicap.sizing.solve.milp import _polish

    p = make(floats(1.0), ints(0, 0), ints(0, 0), ints(1, 4), floats(1.0, 3.0), ints(8), floats(10.0), cand_latency=floats(2.0, 1.0))
    r, n = _polish(p, ints(1, 0), ints(1))
    assert r.tolist() == [8, 0] and n.tolist() == [1]
    lat = replace(p, objective="latency", budget_per_hour=10.0)
    r, n = _polish(lat, ints(1, 0), ints(1))
    assert r.tolist() == [4, 1]  # under latency the fastest first, then the rest with what fits
    sol = solve(p)
    assert sol.replicas.tolist() == [8, 0] and sol.cost_per_hour == 10.0


def test_idle_devices_go_to_the_busiest_workload_first() -> None:
    # Two workloads share an 8-device instance: W0 (3 req/s) on three 1-device replicas of 1 req/s (fully busy), W1 (10 req/s)
    # on one 2-device replica of 100 req/s (10% busy); 3 devices idle. They go to W0, one replica at a time (75%, 60%, 50%).
    # Largest size first, or the most capacity per device, gave W1 a second replica it does not need and W0 one.
    from aicap.sizing.solve.milp import _polish

    p = make(floats(3.0, 10.0), ints(0, 1), ints(0, 0), ints(1, 2), floats(1.0, 100.0), ints(8), floats(10.0))
    r, n = _polish(p, ints(3, 1), ints(1))
    assert r.tolist() == [6, 1] and n.tolist() == [1]


def test_idle_devices_take_the_replica_adding_most_capacity_and_under_latency_the_fastest() -> None:
    # 3 req/s; two 4-device layouts on an 8-device instance: A carries 4 req/s (latency score 1), B 7 req/s (score 2).
    # The demand needs one replica; the other 4 devices are paid for either way.
    from aicap.sizing.solve.milp import _polish

    p = make(floats(3.0), ints(0, 0), ints(0, 0), ints(4, 4), floats(4.0, 7.0), ints(8), floats(10.0), cand_latency=floats(1.0, 2.0))
    r, n = _polish(p, ints(1, 0), ints(1))
    assert r.tolist() == [1, 1] and n.tolist() == [1]  # the filler is B: every replica's load falls most
    r, n = _polish(p, ints(0, 1), ints(1))
    assert r.tolist() == [0, 2]
    lat = replace(p, objective="latency", budget_per_hour=10.0)
    r, n = _polish(lat, ints(1, 0), ints(1))
    assert r.tolist() == [2, 0]  # routing fills the fastest capacity first: the filler is the fastest


@pytest.mark.parametrize("objective", ["throughput", "latency"])
def test_a_plan_that_reaches_the_objective_is_the_cheapest_that_does(objective: str) -> None:
    # Serving all of 5 requests/s within a $5/hour budget: one $1 instance (9 req/s) or a $3 one (5.7 req/s) both reach
    # the objective (every request served; latency score 1 either way); the cost tie-break lay within HiGHS's gap, and a
    # throughput plan once bought the dearer, smaller one ($4,141/month of A10G beside one L40S at $1,359).
    for order in ((0, 1), (1, 0)):
        q, price = floats(9.0, 5.7)[list(order)], floats(1.0, 3.0)[list(order)]
        p = make(floats(5.0), ints(0, 0), ints(0, 1), ints(1, 1), q, ints(1, 1), price, objective=objective, budget_per_hour=5.0)
        sol = solve(p, method="highs")
        assert sol.status is SolveStatus.OPTIMAL and sol.cost_per_hour == pytest.approx(1.0), (order, sol.replicas, sol.message)
        assert sol.served.tolist() == [5.0]
