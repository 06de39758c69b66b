"""Projected admission (SGLang): room kept for what running requests will still emit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.engines import engine_for
from aicap.sizing.sim.admission import AdmissionRule
from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.request_table import RequestTable
from aicap.sizing.sim.virtual_engine import VirtualEngine

SGLANG = AdmissionRule(init_ratio=0.7, min_ratio=0.7 * 0.14, decay_steps=600, retract_steps=20, clip_tokens=4096)
TIGHT = EngineConfig(max_num_seqs=256, max_batched_tokens=4096, kv_capacity_tokens=24_000)


def _step(d: int, p: int) -> float:
    return 0.008 + 4e-5 * d + 5e-5 * p


def _burst(n: int, rate: float, seed: int = 0) -> Requests:
    inp = sample_lengths(np.array([128, 512, 1024]), np.array([0.4, 0.4, 0.2]), n, seed=seed + 1)
    out = sample_lengths(np.array([64, 256, 1024]), np.array([0.3, 0.4, 0.3]), n, seed=seed + 2)
    return Requests(arrival_times(rate, n, seed=seed), inp, out)


def test_the_exact_path_never_retracts_where_greedy_admission_preempts() -> None:
    req = _burst(1500, rate=40.0)
    greedy = simulate(_step, req, TIGHT)
    exact = simulate(_step, req, dataclasses.replace(TIGHT, admission=dataclasses.replace(SGLANG, exact=True)))
    assert greedy.preemptions > 100  # the case does run the cache out under greedy admission
    assert exact.preemptions == 0
    assert exact.finished.all()
    # holding requests back to avoid recompute keeps fewer running at once
    assert exact.mean_running < greedy.mean_running


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), kv=st.integers(6_000, 40_000), rate=st.floats(5.0, 80.0))
def test_the_exact_path_admits_only_what_runs_to_the_end(seed: int, kv: int, rate: float) -> None:
    req = _burst(300, rate=rate, seed=seed)
    cfg = EngineConfig(max_num_seqs=128, max_batched_tokens=2048, kv_capacity_tokens=kv, admission=dataclasses.replace(SGLANG, exact=True))
    res = simulate(_step, req, cfg)
    assert res.preemptions == 0
    assert int(res.finished.sum()) + res.rejected == len(req)


def test_the_ratio_path_retracts_less_than_greedy_admission() -> None:
    req = _burst(1500, rate=40.0, seed=3)
    greedy = simulate(_step, req, TIGHT)
    ratio = simulate(_step, req, dataclasses.replace(TIGHT, admission=SGLANG))
    assert 0 < ratio.preemptions < greedy.preemptions / 2
    assert ratio.finished.all()


def _engine(outputs: list[int], inputs: list[int], blocks: int, rule: AdmissionRule) -> VirtualEngine:
    n = len(outputs)
    table = RequestTable([0.0] * n, inputs, outputs)
    ve = VirtualEngine(0, 64, 4096, blocks, 16, table, gate=rule.gate())
    ve.waiting.extend(range(n))
    return ve


def test_the_ratio_decays_to_its_floor_and_a_retraction_resets_it() -> None:
    ve = _engine([100, 300], [32, 32], blocks=100, rule=SGLANG)
    gate = ve.gate
    assert gate is not None and gate.ratio == pytest.approx(0.7)
    for _ in range(599):
        gate.decoded(ve, retracted=False)
    assert gate.ratio == pytest.approx(0.7 * 0.14 + (0.7 - 0.098) / 600)
    for _ in range(10):
        gate.decoded(ve, retracted=False)
    assert gate.ratio == pytest.approx(0.098)
    for _ in range(2):  # both requests admitted, prefilled and decoding
        r = ve.admit()
        ve.chunk(r, 4096)
    ve.end_step(1.0)
    ve.reserve_decode(64)
    ve.end_step(2.0)  # each has emitted 2 tokens: (4 + 20 x 2) / 400
    gate.decoded(ve, retracted=True)
    assert gate.ratio == pytest.approx((4 + 20 * 2) / 400)


def test_the_ratio_path_charges_running_requests_their_projected_output() -> None:
    # 100 blocks = 1,600 tokens. One request running with 1,000 tokens still to emit, at ratio 0.7:
    # 1,600 - 3 blocks held (48) - 700 = 852 left; a 32-token prompt with 800 to emit needs 832 < 852.
    rule = dataclasses.replace(SGLANG, init_ratio=0.7)
    ve = _engine([1000, 800, 900], [40, 32, 32], blocks=100, rule=rule)
    r = ve.admit()
    ve.chunk(r, 4096)
    ve.end_step(1.0)  # request 0 emitted its first token: 999 to go, 41 tokens held (3 blocks)
    gate = ve.gate
    assert gate is not None
    gate.begin(ve)
    assert gate.allows(ve, 1)  # 32 + 800 = 832 < 1,600 - 48 - 699.3
    assert gate.offset == pytest.approx(0.7 * 999)  # charged once, at the round's first candidate
    ve.admit()
    gate.took(ve, 1)
    assert not gate.allows(ve, 2)  # 800 more charged this round: no room for 932


def test_sglang_profiles_carry_projected_admission_and_others_do_not() -> None:
    cat = load_catalogue()
    dev = cat.device("h100-sxm")
    assert engine_for(cat, "sglang").on(dev).admission is not None
    assert engine_for(cat, "vllm").on(dev).admission is None


@pytest.mark.parametrize("exact", [False, True])
def test_a_request_that_fills_the_cache_exactly_still_runs_alone(exact: bool) -> None:
    # 100 blocks of 16 = 1,600 tokens; the request's peak is 1,000 + 601 - 1 = 1,600: it fits, with nothing beside it.
    req = Requests(np.array([0.0, 0.0]), np.array([1000, 1000]), np.array([601, 601]))
    cfg = EngineConfig(max_num_seqs=8, max_batched_tokens=4096, kv_capacity_tokens=1600,
                       admission=dataclasses.replace(SGLANG, exact=exact))  # fmt: skip
    res = simulate(_step, req, cfg)
    assert res.finished.all() and res.rejected == 0 and res.preemptions == 0
