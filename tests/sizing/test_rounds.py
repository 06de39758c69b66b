"""Lump counts of the load model's rounds: the fullest micro-batch of a pipeline replica."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.sizing.serve.rounds import fullest


def test_one_stage_holds_every_lump_and_two_lumps_meet_with_probability_one_over_pp() -> None:
    m = np.arange(0.0, 97.0)
    assert np.array_equal(fullest(m, 1.0), m)  # exactly: one stage's rows are the load model's rows unchanged
    for pp in (2, 3, 4, 8, 16):
        got = fullest(np.array([0.0, 1.0, 2.0]), float(pp))
        assert got.tolist() == pytest.approx([0.0, 1.0, 1.0 + 1.0 / pp], rel=1e-12)


@pytest.mark.parametrize(("pp", "m"), [(2, 5), (4, 7), (4, 40), (8, 20), (3, 96)])
def test_the_fullest_micro_batch_is_the_expected_maximum_of_random_placements(pp: int, m: int) -> None:
    rng = np.random.default_rng(7)
    draws = rng.integers(0, pp, size=(60000, m))
    most = np.array([np.bincount(row, minlength=pp).max() for row in draws])
    assert float(fullest(np.array([float(m)]), float(pp))[0]) == pytest.approx(most.mean(), abs=4.0 * most.std() / np.sqrt(most.size))


def test_fullest_lies_between_the_even_spread_and_every_lump_in_one_micro_batch() -> None:
    m = np.arange(1.0, 97.0).reshape(-1, 1)
    pp = np.array([1.0, 2.0, 4.0, 8.0])
    f = fullest(m, pp)
    assert f.shape == (96, 4)
    assert np.all(f >= np.ceil(m / pp) - 1e-9) and np.all(f <= m + 1e-9)
    assert np.all(np.diff(f, axis=0) >= 0.0) and np.all(np.diff(f, axis=1) <= 1e-12)  # more lumps: fuller; more stages: less
