"""The integer program against brute-force enumeration on small random problems."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.solve.milp import Problem, solve


def brute_force_cost(p: Problem) -> float | None:
    """Cheapest instance cost by enumerating replica counts (tiny problems only)."""
    ranges = [range(math.ceil(p.demand[w] / q) + 1) for w, q in zip(p.cand_workload, p.cand_capacity, strict=True)]
    best = None
    for reps in itertools.product(*ranges):
        served = [0.0] * len(p.workloads)
        for k, r in enumerate(reps):
            served[p.cand_workload[k]] += r * p.cand_capacity[k]
        if any(s < d - 1e-9 for s, d in zip(served, p.demand, strict=True)):
            continue
        cost = 0.0
        ok = True
        for t in range(len(p.types)):
            dev = sum(r * p.cand_devices[k] for k, r in enumerate(reps) if p.cand_type[k] == t)
            n = math.ceil(dev / p.type_devices[t])
            if p.type_cap[t] is not None and n > p.type_cap[t]:
                ok = False
            cost += n * p.type_price[t]
        if ok and (best is None or cost < best):
            best = cost
    return best


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    nw = draw(st.integers(1, 2))
    nt = draw(st.integers(1, 2))
    type_devices = [draw(st.sampled_from([1, 4, 8])) for _ in range(nt)]
    cw, ct, cd, cq = [], [], [], []
    for w in range(nw):
        for t in range(nt):
            for size in draw(
                st.lists(st.sampled_from([s for s in (1, 2, 4, 8) if type_devices[t] % s == 0]), min_size=1, max_size=2, unique=True)
            ):
                cw.append(w)
                ct.append(t)
                cd.append(size)
                cq.append(draw(st.floats(0.5, 5.0)) * size)
    return Problem(
        workloads=[f"w{i}" for i in range(nw)], demand=[draw(st.floats(0.5, 12.0)) for _ in range(nw)], cand_workload=cw,
        cand_type=ct, cand_devices=cd, cand_capacity=cq, cand_latency=[1.0] * len(cw), types=[f"t{i}" for i in range(nt)],
        type_devices=type_devices, type_price=[draw(st.floats(0.5, 40.0)) for _ in range(nt)], type_group=[f"g{i}" for i in range(nt)],
        type_cap=[draw(st.one_of(st.none(), st.integers(0, 4))) for _ in range(nt)],
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(problems())
def test_milp_cost_equals_brute_force(p: Problem) -> None:
    sol = solve(p)
    best = brute_force_cost(p)
    if best is None:
        assert sol.status == "infeasible"
    else:
        assert sol.status == "optimal"
        assert abs(sol.cost_per_hour - best) <= 1e-6 * max(best, 1.0)


def test_replicas_of_two_workloads_share_an_instance() -> None:
    p = Problem(workloads=["a", "b"], demand=[1.0, 1.0], cand_workload=[0, 1], cand_type=[0, 0], cand_devices=[4, 4],
                cand_capacity=[1.0, 1.0], cand_latency=[1.0, 1.0], types=["eight"], type_devices=[8], type_price=[10.0],
                type_group=["g"], type_cap=[None])  # fmt: skip
    sol = solve(p)
    assert sol.instances == [1] and sol.replicas == [1, 1]


def test_single_type_forbids_mixing() -> None:
    p = Problem(workloads=["a", "b"], demand=[1.0, 1.0], cand_workload=[0, 1, 0, 1], cand_type=[0, 1, 1, 0], cand_devices=[1, 1, 1, 1],
                cand_capacity=[1.0, 1.0, 0.5, 0.5], cand_latency=[1.0] * 4, types=["x", "y"], type_devices=[1, 1], type_price=[1.0, 1.0],
                type_group=["gx", "gy"], type_cap=[None, None], single_type=True)  # fmt: skip
    sol = solve(p)
    assert sol.status == "optimal" and min(sol.instances) == 0
