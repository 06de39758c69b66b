"""Chargeback over demand periods: each workload's share of the hours' instance costs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.sizing.plan.chargeback import period_shares


def test_each_hour_splits_a_types_cost_by_the_devices_held() -> None:
    cost = np.array([[8.0, 4.0]])  # one type, two hours
    use = np.array([[[1.0, 2.0]], [[3.0, 0.0]]])  # workload 0: 1 then 2 devices; workload 1: 3 then none
    assert period_shares(cost, use) == pytest.approx([8.0 / 4 + 4.0, 8.0 * 3 / 4])


def test_an_hour_none_uses_a_held_type_is_shared_by_device_hours_on_it() -> None:
    # type 0 costs 10 in hour 1 (a commitment), used by nobody then: split 1:3 by its device-hours in hour 0
    cost = np.array([[10.0, 10.0], [0.0, 6.0]])
    use = np.zeros((2, 2, 2))
    use[0, 0, 0], use[1, 0, 0] = 1.0, 3.0
    use[0, 1, 1] = 2.0  # type 1 in hour 1: workload 0 alone
    assert period_shares(cost, use) == pytest.approx([2.5 + 2.5 + 6.0, 7.5 + 7.5])


def test_a_type_nobody_ever_uses_is_shared_by_device_hours_anywhere_else_evenly() -> None:
    cost = np.array([[4.0], [9.0]])
    use = np.zeros((2, 2, 1))
    use[0, 0, 0], use[1, 0, 0] = 1.0, 2.0
    assert period_shares(cost, use) == pytest.approx([4 / 3 + 3.0, 8 / 3 + 6.0])
    assert period_shares(cost, np.zeros((2, 2, 1))) == pytest.approx([6.5, 6.5])
    assert period_shares(cost, np.zeros((0, 2, 1))).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_the_shares_add_up_to_the_cost_and_none_is_negative(nw: int, nt: int, hours: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 50, (nt, hours)) * (rng.random((nt, hours)) < 0.8)
    use = rng.integers(0, 4, (nw, nt, hours)).astype(float) * (rng.random((nw, nt, hours)) < 0.6)
    out = period_shares(cost, use)
    assert out.shape == (nw,) and np.all(out >= 0)
    assert out.sum() == pytest.approx(cost.sum(), rel=1e-9, abs=1e-9)
    # a workload that holds more of every type in every hour (and the others the same) pays no less
    more = use.copy()
    more[0] += 1.0
    assert period_shares(cost, more)[0] >= out[0] - 1e-9
