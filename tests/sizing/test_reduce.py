"""Candidates a cheapest plan never needs: the rule, its tie-break, and that dropping them keeps the optimum."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.solve.milp import Problem
from aicap.sizing.solve.reduce import cost_dominated, restricted
from tests.sizing.test_milp import brute_force, floats, ints, make, problems


def test_fewer_devices_and_no_less_capped_capacity_dominates_within_a_workload_and_type() -> None:
    # workload 0 on type 0: 2 devices carrying 5 req/s (capped at the demand 3) makes the 4-device one (3.5) useless;
    # the 1-device one (1.0) carries less, so it stays. Another type or workload is never compared.
    p = make(floats(3.0, 3.0), ints(0, 0, 0, 0, 1), ints(0, 0, 0, 1, 0), ints(2, 4, 1, 8, 4), floats(5.0, 3.5, 1.0, 2.0, 9.0), ints(8, 8),
             floats(1.0, 1.0))  # fmt: skip
    assert cost_dominated(p).tolist() == [False, True, False, False, False]


def test_of_equal_candidates_the_one_with_most_headroom_then_the_fastest_stays() -> None:
    p = make(floats(1.0), ints(0, 0, 0), ints(0, 0, 0), ints(2, 2, 2), floats(4.0, 6.0, 6.0), ints(8), floats(1.0),
             cand_latency=floats(1.0, 2.0, 1.5))  # fmt: skip
    assert cost_dominated(p).tolist() == [True, True, False]


def test_other_objectives_keep_every_candidate() -> None:
    p = make(floats(3.0), ints(0, 0), ints(0, 0), ints(2, 4), floats(5.0, 3.5), ints(8), floats(1.0), objective="latency",
             budget_per_hour=9.0)  # fmt: skip
    assert not cost_dominated(p).any()
    assert restricted(p, np.arange(2)) is p


@st.composite
def with_rivals(draw: st.DrawFn) -> Problem:
    """A small problem plus a rival of one candidate on its workload and type: as many or more devices, as much or less capacity."""
    p = draw(problems(caps=True, budget=True))
    k = draw(st.integers(0, len(p.cand_workload) - 1))
    d = int(p.cand_devices[k])
    bigger = d * 2 if p.type_devices[p.cand_type[k]] % (d * 2) == 0 else d
    d2 = draw(st.sampled_from([d, bigger]))
    q2 = float(p.cand_capacity[k]) * draw(st.sampled_from([1.0, 0.8, 0.5]))
    lat2 = draw(st.floats(0.5, 3.0))

    def add(name: str, v: float) -> np.ndarray:
        a = np.asarray(getattr(p, name))
        return np.append(a, np.asarray(v, dtype=a.dtype))

    return replace(p, cand_workload=add("cand_workload", p.cand_workload[k]), cand_type=add("cand_type", p.cand_type[k]),
                   cand_devices=add("cand_devices", d2), cand_capacity=add("cand_capacity", q2),
                   cand_latency=add("cand_latency", lat2))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(p=with_rivals())
def test_dropping_them_keeps_the_optimal_cost(p: Problem) -> None:
    """Brute force over every candidate (no reduction) against brute force over the kept ones."""
    keep = np.flatnonzero(~cost_dominated(p))
    assert keep.size < len(p.cand_workload)  # the rival (or the one it copies) is dropped
    best, kept = brute_force(p), brute_force(restricted(p, keep))
    assert (best is None) == (kept is None)
    if best is not None and kept is not None:
        assert kept == best


def test_candidates_of_different_workloads_are_never_compared() -> None:
    # Workload 2 on type 0 and workload 0 on type 1 look alike (one device, the whole demand): both stay.
    p = make(floats(1.0, 1.0, 1.0), ints(0, 1, 2), ints(1, 0, 0), ints(1, 1, 1), floats(5.0, 1.0, 1.0), ints(1, 1), floats(1.0, 1.0))
    assert not cost_dominated(p).any()
