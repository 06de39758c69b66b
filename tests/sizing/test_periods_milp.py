"""The period program against brute force on small problems: the bound is a bound, the plan is feasible and priced right."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicap.sizing.solve.hour_workers import HourPool
from aicap.sizing.solve.periods import PeriodProblem, _reservations, solve_periods

MODELS = ("on_demand", "reserved_1y")


def problem(demand: list[list[float]], q: list[float], types: list[int], price_od: list[float], price_res: list[float],
            min_rep: int = 0) -> PeriodProblem:  # fmt: skip
    nc = len(q)
    return PeriodProblem(
        demand=np.array(demand, dtype=float), min_replicas=np.array([min_rep], dtype=np.int64),
        cand_workload=np.zeros(nc, dtype=np.int64), cand_type=np.array(types, dtype=np.int64), cand_devices=np.ones(nc, dtype=np.int64),
        cand_capacity=np.array(q, dtype=float), type_devices=np.array([2, 2], dtype=np.int64), type_cap=np.array([np.inf, np.inf]),
        models=MODELS, price=np.array([[price_od[t], price_res[t]] for t in range(2)], dtype=float), spot_max_share=1.0,
        spot_headroom=0.0, mip_rel_gap=1e-9,
    )  # fmt: skip


def brute(p: PeriodProblem) -> float:
    """Cheapest plan by enumeration: reservations per type, then each period's replicas (1-device replicas, 2-device types)."""
    hours = p.demand.shape[1]
    nc = p.cand_capacity.size
    best = math.inf
    for res in itertools.product(range(4), repeat=2):
        total = sum(p.price[t, 1] * res[t] for t in range(2)) * hours
        for h in range(hours):
            cheapest = math.inf
            for r in itertools.product(range(7), repeat=nc):
                if float(np.dot(r, p.cand_capacity)) < p.demand[0, h] - 1e-9 or sum(r) < p.min_replicas[0]:
                    continue
                cost = 0.0
                for t in range(2):
                    need = sum(r[c] for c in range(nc) if p.cand_type[c] == t)
                    cost += p.price[t, 0] * max(0, math.ceil((need - 2 * res[t]) / 2))
                cheapest = min(cheapest, cost)
            total += cheapest
        best = min(best, total)
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    demand=st.lists(st.sampled_from([0.0, 1.0, 2.5, 4.0, 6.0]), min_size=2, max_size=4),
    q=st.lists(st.sampled_from([1.0, 1.5, 2.0, 3.0]), min_size=2, max_size=3),
    od=st.tuples(st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([1.0, 2.0, 3.0])),
    discount=st.sampled_from([0.4, 0.6, 0.9]),
)
def test_bound_and_plan_bracket_the_brute_force_optimum(demand: list[float], q: list[float], od: tuple[float, float],
                                                        discount: float) -> None:  # fmt: skip
    if max(demand) == 0:
        demand = [*demand[:-1], 1.0]
    types = [k % 2 for k in range(len(q))]
    p = problem([demand], q, types, list(od), [discount * x for x in od])
    opt = brute(p)
    sol = solve_periods(p)
    assert sol.status in ("optimal", "decomposed")
    # the plan is feasible: capacity covers demand, instances hold the replicas
    cap = (p.cand_capacity[:, None] * sol.replicas).sum(axis=0)
    assert (cap >= p.demand[0] - 1e-9).all()
    for t in range(2):
        used = sol.replicas[p.cand_type == t].sum(axis=0)
        held = 2 * (sol.reserved[t].sum() + sol.hourly[t].sum(axis=0))
        assert (used <= held).all()
    # it is priced as reported, never below the optimum, and its gap is measured against a true lower bound
    priced = float(np.sum(p.price * sol.reserved) * len(demand) + np.sum(p.price[:, :, None] * sol.hourly))
    assert sol.usd == priced >= opt - 1e-9
    bound = sol.usd * (1 - sol.gap)
    assert bound <= opt + 1e-6
    if sol.status == "optimal":
        assert sol.usd <= opt * (1 + 1e-6)


def test_flat_demand_reserves_everything_it_uses() -> None:
    p = problem([[4.0, 4.0, 4.0]], [2.0, 2.0], [0, 1], [1.0, 5.0], [0.5, 2.5])
    sol = solve_periods(p)
    assert sol.usd == brute(p) and sol.status == "optimal"
    assert sol.reserved[0, 1] == 1 and sol.hourly.sum() == 0  # 2 replicas of 1 device on one 2-device type, reserved


def test_reservations_break_even() -> None:
    p = problem([[1.0] * 4], [1.0], [0], [1.0, 1.0], [0.5, 0.5])
    # type 0 used 2, 2, 1, 0 instances: the 1st instance is used 3 of 4 hours (>= 4·0.5), the 2nd 2 of 4 (>= 2)
    got = _reservations(p, np.array([[2, 2, 1, 0], [0, 0, 0, 0]]))
    assert got.tolist() == [[0, 2], [0, 0]]
    got = _reservations(p, np.array([[3, 1, 1, 0], [0, 0, 0, 0]]))
    assert got.tolist() == [[0, 1], [0, 0]]


def test_min_replicas_and_infeasible() -> None:
    p = problem([[0.0, 0.0, 3.0]], [3.0], [0], [1.0, 1.0], [0.9, 0.9], min_rep=1)
    sol = solve_periods(p)
    assert (sol.replicas.sum(axis=0) >= 1).all() and sol.usd == brute(p)
    capped = PeriodProblem(**{**p.__dict__, "type_cap": np.array([0.0, 0.0])})
    assert solve_periods(capped).status == "infeasible"


def _p(demand: list[list[float]], models: tuple[str, ...], price: list[list[float]], devices: list[int],
       cands: list[tuple[int, int, float]], share: float = 0.5, budget: float | None = None) -> PeriodProblem:  # fmt: skip
    return PeriodProblem(
        demand=np.array(demand, dtype=float), min_replicas=np.array([0], dtype=np.int64),
        cand_workload=np.zeros(len(cands), dtype=np.int64), cand_type=np.array([c[0] for c in cands], dtype=np.int64),
        cand_devices=np.array([c[1] for c in cands], dtype=np.int64), cand_capacity=np.array([c[2] for c in cands], dtype=float),
        type_devices=np.array(devices, dtype=np.int64), type_cap=np.full(len(devices), np.inf), models=models,
        price=np.array(price, dtype=float), spot_max_share=share, budget_per_hour=budget,
    )  # fmt: skip


def test_a_budget_bounds_the_average_hour_not_each_hour() -> None:
    p = _p([[1.0, 1.0, 1.0, 8.0]], ("on_demand",), [[1.0]], [1], [(0, 1, 1.0)], budget=3.0)  # 11 over 4 hours: 2.75 an hour
    sol = solve_periods(p)
    assert sol.status == "optimal" and sol.usd == 11.0
    assert solve_periods(replace(p, budget_per_hour=2.7)).status == "infeasible"


def test_reservations_break_even_against_on_demand_when_spot_is_capped() -> None:
    flat = _p([[4.0] * 24], ("on_demand", "reserved_1y", "spot"), [[3.0, 2.0, 1.0]], [8], [(0, 1, 1.0)])
    sol = solve_periods(flat)
    assert sol.usd == 48.0 and sol.reserved.tolist() == [[0, 1, 0]]  # one reserved 8-device instance, all day
    no_hourly = _p([[4.0, 4.0]], ("reserved_1y", "spot"), [[2.0, 1.0]], [8], [(0, 1, 1.0)])
    sol = solve_periods(no_hourly)
    assert sol.status == "optimal" and sol.usd == 4.0 and sol.reserved.tolist() == [[1, 0]]


def test_idle_instances_do_not_buy_spot_share() -> None:
    # type 0: 8 devices, on-demand 8 or spot 2; type 1: one cheap device no candidate can use
    p = _p([[1.0]], ("on_demand", "spot"), [[8.0, 2.0], [0.5, np.nan]], [8, 1], [(0, 8, 1.0)])
    sol = solve_periods(p)
    assert sol.usd == 8.0 and sol.hourly[1].sum() == 0 and sol.hourly[0, 1, 0] == 0
    assert solve_periods(replace(p, spot_max_share=1.0, spot_headroom=0.0)).usd == 2.0
    assert solve_periods(replace(p, spot_max_share=1.0)).usd == 4.0  # 20% headroom: an 8-device replica needs two spot instances


def test_each_distinct_period_is_solved_once_without_reserved_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """On-demand only, the bound's one-period programs are the plan's: each distinct hour goes to HiGHS once, not twice."""
    import aicap.sizing.solve.periods as periods

    calls: list[bytes] = []
    run = periods._run

    def counted(p: PeriodProblem, fixed: np.ndarray | None, **kw: object) -> tuple[str, np.ndarray | None, float, float]:
        calls.append(p.demand.tobytes())
        return run(p, fixed, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(periods, "_run", counted)
    base = problem([[1.0, 3.0, 1.0, 5.0]], [1.0, 2.0], [0, 1], [1.0, 1.5], [0.5, 0.8])
    p = replace(base, models=("on_demand",), price=base.price[:, :1])
    sol = solve_periods(p)
    assert sol.status == "optimal"
    assert len(calls) == 3 == len(set(calls))  # hours of demand 1, 3 and 5
    with_reserved = solve_periods(base)
    assert with_reserved.usd <= sol.usd + 1e-9  # reserving may only help


def test_worker_processes_find_the_same_plan_as_one() -> None:
    # Enough hours of distinct demand (and repeats) that each round hands its programs to the workers.
    demand = [1.0, 2.5, 4.0, 6.0, 2.5, 0.0, 4.0, 1.0, 3.0, 5.0, 5.5, 7.0, 0.5, 2.0]
    p = problem([demand], [1.0, 1.5, 3.0], [0, 1, 0], [2.0, 3.0], [1.2, 1.5], min_rep=1)
    one = solve_periods(p)
    with HourPool(2) as pool:
        pool.START_AFTER_S = 0.0  # start them at the third hour, however fast the hours are
        many = solve_periods(p, pool=pool)
        assert pool.started  # the workers did run
    assert one.status in ("optimal", "decomposed")
    assert (many.status, many.usd, many.gap) == (one.status, one.usd, one.gap)
    for a, b in ((one.replicas, many.replicas), (one.reserved, many.reserved), (one.hourly, many.hourly)):
        np.testing.assert_array_equal(a, b)
    assert one.replicas[:, 5].sum() == 1  # an hour without demand still keeps its minimum replica


def test_a_worker_that_dies_has_its_hours_solved_here() -> None:
    demand = [1.0, 2.5, 4.0, 6.0, 2.5, 0.0, 4.0, 1.0, 3.0, 5.0, 5.5, 7.0, 0.5, 2.0]
    p = problem([demand], [1.0, 1.5, 3.0], [0, 1, 0], [2.0, 3.0], [1.2, 1.5], min_rep=1)
    one = solve_periods(p)
    with HourPool(2) as pool:
        pool.START_AFTER_S = 0.0
        solve_periods(p, pool=pool)
        assert pool.started
        for proc in pool._procs:
            proc.kill()
            proc.wait()
        again = solve_periods(replace(p, demand=p.demand + 0.25), pool=pool)  # new hours, no worker left
    assert again.status in ("optimal", "decomposed")
    assert again.usd >= one.usd  # more demand, never cheaper
    np.testing.assert_array_equal(again.replicas, solve_periods(replace(p, demand=p.demand + 0.25)).replicas)


def test_workers_do_not_rerun_the_calling_script(tmp_path: Path) -> None:
    # A script without an `if __name__ == "__main__"` guard: multiprocessing's spawned children would import it again.
    script = tmp_path / "plan.py"
    script.write_text(
        "import numpy as np\n"
        "from aicap.sizing.solve.hour_workers import HourPool\n"
        "from aicap.sizing.solve.periods import PeriodProblem, solve_periods\n"
        "print('top level ran', flush=True)\n"
        "d = np.array([[1.0, 2.5, 4.0, 6.0, 2.5, 0.0, 4.0, 1.0, 3.0, 5.0, 5.5, 7.0, 0.5, 2.0]])\n"
        "p = PeriodProblem(demand=d, min_replicas=np.array([1]), cand_workload=np.zeros(2, dtype=np.int64),\n"
        "                  cand_type=np.array([0, 1]), cand_devices=np.ones(2, dtype=np.int64), cand_capacity=np.array([1.0, 3.0]),\n"
        "                  type_devices=np.array([2, 2]), type_cap=np.array([np.inf, np.inf]), models=('on_demand',),\n"
        "                  price=np.array([[2.0], [3.0]]), spot_max_share=1.0, spot_headroom=0.0)\n"
        "with HourPool(2) as pool:\n"
        "    pool.START_AFTER_S = 0.0\n"
        "    sol = solve_periods(p, pool=pool)\n"
        "    assert pool.started\n"
        "print('usd', round(sol.usd, 6))\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.count("top level ran") == 1
    assert "usd" in out.stdout


def test_a_replica_beyond_the_demand_may_pay_for_the_spot_it_allows() -> None:
    # One 2-device type, 1-device replicas of 1.55 req/s, 4.12 req/s, spot at most half the serving devices: 3 replicas on
    # 2 on-demand instances ($19.10) was called optimal, but a fourth replica on 1 on-demand + 1 spot instance ($13.26)
    # meets the share (2 <= 0.5 x 4). The replica cap (the demand's 3) cut it off, bound included.
    p = PeriodProblem(demand=np.array([[4.12]]), min_replicas=np.array([0]), cand_workload=np.array([0]), cand_type=np.array([0]),
                      cand_devices=np.array([1]), cand_capacity=np.array([1.55]), type_devices=np.array([2]),
                      type_cap=np.array([np.inf]), models=("on_demand", "spot"), price=np.array([[9.55, 3.71]]), spot_max_share=0.5,
                      spot_headroom=0.0)  # fmt: skip
    sol = solve_periods(p)
    assert sol.usd == pytest.approx(9.55 + 3.71) and sol.hourly[0, :, 0].tolist() == [1, 1] and sol.replicas.sum() == 4


def test_the_whole_programs_lp_relaxation_tightens_the_bound_when_demand_swings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reservation is paid in every hour: the hourly bound rents it only in the busy hour, the LP relaxation cannot."""
    import aicap.sizing.solve.periods as periods

    p = problem([[6.0, 0.5, 0.5, 0.5]], [1.0, 1.0], [0, 1], [1.0, 1.2], [0.45, 0.6])
    sol = solve_periods(p)
    best = brute(p)
    assert sol.usd == pytest.approx(best) and sol.usd * (1 - sol.gap) <= best + 1e-9  # still a bound
    run = periods._run

    def hourly_only(q: PeriodProblem, fixed: np.ndarray | None, **kw: object) -> tuple[str, np.ndarray | None, float, float]:
        if kw.get("relax"):
            return "no_solution", None, math.inf, math.nan
        return run(q, fixed, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(periods, "_run", hourly_only)
    weaker = solve_periods(p)
    assert weaker.usd == pytest.approx(sol.usd) and weaker.gap > sol.gap + 0.05
