"""The load model of a prefill-first engine (SGLang, vLLM v0), and of one whose CUDA graphs stop at a batch size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.engines import engine_for
from aicap.sizing.perf import memory
from aicap.sizing.serve.capacity import capacity
from aicap.sizing.serve.load import at_arrivals
from aicap.sizing.serve.loaded import Traffic
from aicap.sizing.serve.rate import at_rate
from aicap.sizing.serve.rounds import prefill_chain_steps
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.sim.arrivals import arrival_times
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from tests.sizing.test_load import BUDGET, CASES, affine, replica, traffic

CAT = load_catalogue()


def test_a_round_with_prompts_is_a_chain_of_prefill_steps_then_a_decode_step() -> None:
    """Affine step a + b·d + c·p: prefill-first rounds cost a more than mixed ones wherever prompts arrive, and a again for
    each further prefill step of the chain the prompts arriving during a prefill step start (one step a round put the
    MoE's running count 9% under the simulator's)."""
    a, b, c, i, o = 0.010, 2e-5, 4e-6, 1500.0, 300.0
    step, x = affine(a, b, c), np.array([2.0])  # two prompts a round: nearly every round prefills
    mixed = at_arrivals(step, np.ones(1), BUDGET, traffic(i, o), x)
    first = at_arrivals(step, np.ones(1), BUDGET, dataclasses.replace(traffic(i, o), prefill_first=np.ones(1)), x)
    p0 = np.exp(-x[0] * i / min(i, BUDGET - x[0] * (o - 1)))  # rounds without a prompt (Poisson lumps, one lump a prompt)
    extra = float(first.round_s[0] - mixed.round_s[0])
    lam = x[0] / float(first.round_s[0])  # prompts/s at this load
    longest = float(prefill_chain_steps(lam * a, lam * c * BUDGET))  # a chain as long as a full budget's would be
    assert 1.3 * a * (1 - p0) < extra < longest * a * (1 - p0)


def test_prefill_chain_steps_solve_their_equation_far_out() -> None:
    """The root of n = e^(u + v/n) from n = 1, up to chains of 10⁴ steps (Newton from below, so never past it)."""
    u = np.array([0.0, 0.5, 5.0, 9.2, 0.0, 2.0])
    v = np.array([0.0, 0.0, 0.0, 0.0, 3.0, 4.0])
    n = prefill_chain_steps(u, v)
    assert n[:4] == pytest.approx(np.exp(u[:4]), rel=1e-9)
    assert np.log(n) == pytest.approx(u + v / n, rel=1e-9)
    assert n[4] > 1.0 and n[5] > n[4]


@pytest.mark.parametrize(("lam", "a", "c", "i", "decode_s"), [(22.0, 0.014, 1.3e-5, 800, 0.019), (10.0, 0.02, 2e-5, 1000, 0.03),
                                                          (40.0, 0.01, 5e-6, 500, 0.02)])  # fmt: skip
def test_prefill_chain_steps_match_a_simulated_chain(lam: float, a: float, c: float, i: int, decode_s: float) -> None:
    """Prompts arriving (Poisson, λ) during a prefill step of a + c·p seconds start another at once: the mean steps of a
    chain that began with the arrivals of one decode step, drawn 20,000 times, against n = e^(λ·a + λ·c·p̄/n)."""
    rng = np.random.default_rng(1)
    steps, tokens = [], []
    for _ in range(20000):
        p = i * rng.poisson(lam * decode_s)
        if p == 0:
            continue
        n, total = 0, 0
        while p > 0:
            n, total = n + 1, total + p
            p = i * rng.poisson(lam * (a + c * p))
        steps.append(n)
        tokens.append(total)
    n_model = float(prefill_chain_steps(lam * a, lam * c * float(np.mean(tokens))))
    assert n_model == pytest.approx(float(np.mean(steps)), rel=0.04)
    assert n_model > 1.4  # the chains are long enough to matter
    assert np.log(n_model) == pytest.approx(lam * a + lam * c * float(np.mean(tokens)) / n_model, rel=1e-9)


@pytest.mark.parametrize("case", CASES[:5], ids=["8b-h100", "70b-h100-tp2", "70b-h100-tp2pp2", "8b-a10g", "mixtral-h100-tp2"])
def test_prefill_first_promises_hold_in_simulation(case: tuple[str, str, int, int, int, int, float, float, str]) -> None:
    """Near capacity the mixed-step model put a prefill-first engine's TPOT p99 up to 20% under the simulator's."""
    step, tr, cfg = replica(case)
    first, cfg_first = dataclasses.replace(tr, prefill_first=np.ones(1)), dataclasses.replace(cfg, prefill_first=True)
    pp = np.array([case[3]])
    cap = float(capacity(step, pp, BUDGET, first, case[6], case[7]).rate[0])
    assert 0 < cap <= float(capacity(step, pp, BUDGET, tr, case[6], case[7]).rate[0])  # a prefill step costs capacity
    rate, n = 0.9 * cap, 6000
    promised = at_rate(step, pp, BUDGET, first, np.array([rate]))
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, case[4]), np.full(n, case[5])), cfg_first)
    assert res.stable
    assert res.percentile("tpot", 0.99) == pytest.approx(float(promised.tpot_s[0]), rel=0.10)
    ttft = res.percentile("ttft", 0.99)
    assert ttft <= float(promised.ttft_s[0]) * 1.1 and float(promised.ttft_s[0]) <= ttft * 1.6  # TTFT not promised under the simulated


def _sglang_engine(model: str, i: float, o: float, budget: int) -> tuple[StepModel, Traffic, EngineConfig]:
    """An SGLang replica on one H100 (fp8) as the load model and the simulator each see it, with a step budget of ``budget``."""
    dev = CAT.device("h100-sxm")
    eng = engine_for(CAT, "sglang")
    rt, eff = eng.on(dev), eng.efficiency(CAT, dev)
    dep = Deployment(CAT.model(model), dev, eff, rt, 1, 1, 1, "fp8", "fp8")
    slots = float(min(memory.max_batch(dep, 1, 1, i, i + o), rt.max_batch))
    step = StepModel.build(
        dep, Hardware.of([(dev, eff)], "fp8", "fp8"), np.array([1]), np.array([1]), 1, np.array([i + o / 2]), np.array([i])
    )
    overhead = rt.request_overhead_ms * 1e-3
    tr = Traffic(*(np.array([v]) for v in (i, o, i, slots, 0.99, 1.0, 1.0)), overhead_s=overhead, lag_rounds=1.0, prefill_first=np.ones(1))
    cfg = EngineConfig(max_num_seqs=int(slots), max_batched_tokens=budget, kv_capacity_tokens=int(memory.kv_cache_tokens(dep, 1, 1)),
                       request_overhead_s=overhead, prefill_first=True, overlap_scheduling=True)  # fmt: skip
    return step, tr, cfg


def _sglang_replica(model: str, i: float, o: float) -> tuple[StepModel, Traffic, float]:
    step, tr, _ = _sglang_engine(model, i, o, int(BUDGET))
    graph = engine_for(CAT, "sglang").on(CAT.device("h100-sxm")).graph_max_batch(1)
    assert graph is not None
    return step, tr, float(graph)


def test_a_rate_met_below_the_graph_cap_is_met_there() -> None:
    """Past SGLang's graph cap (256 decoders on an H100 at TP1) the round jumps by the launches and the rate falls, so a rate
    below the fall is met twice; a replica that starts empty runs the smaller load, as the simulator does."""
    step, tr, graph = _sglang_replica("qwen3-30b-a3b", 800.0, 200.0)
    x_g = graph / 199.0  # arrivals per round at which d = x·(O − 1) reaches the cap
    below, above = (at_arrivals(step, np.ones(1), float(BUDGET), tr, np.array([x_g * f])) for f in (0.98, 1.02))
    assert float(above.round_s[0]) > 1.5 * float(below.round_s[0]) and float(above.rate[0]) < 0.8 * float(below.rate[0])
    rate = 0.6 * float(below.rate[0])
    got = at_rate(step, np.ones(1), float(BUDGET), tr, np.array([rate]))
    graphed = at_rate(step.all_graphed(), np.ones(1), float(BUDGET), tr, np.array([rate]))
    assert float(got.arrivals_per_round[0]) * 199.0 < graph
    assert float(got.round_s[0]) == pytest.approx(float(graphed.round_s[0]), rel=1e-9)
    # A rate only the slower branch carries is met there, at the smallest load that carries it.
    high = 1.1 * float(below.rate[0])
    past = at_rate(step, np.ones(1), float(BUDGET), tr, np.array([high]))
    assert float(past.arrivals_per_round[0]) * 199.0 > graph and np.isfinite(past.tpot_s[0])
    assert float(at_arrivals(step, np.ones(1), float(BUDGET), tr, past.arrivals_per_round).rate[0]) == pytest.approx(high, rel=1e-3)
    g = step.all_graphed()
    assert g.host_s is None and g.all_graphed() is g  # nothing capped is left to lift


def test_rows_of_other_engines_are_inverted_as_on_their_own() -> None:
    """A capped row beside an eager one and a graphed one (one evaluation, as the planner batches them): each row's load is
    the one its own model gives."""
    capped, tr, _ = _sglang_replica("qwen3-30b-a3b", 800.0, 200.0)
    dev = CAT.device("h100-sxm")
    eff = CAT.efficiency_for(dev)
    models = [capped]
    for eager in (True, False):
        rt = engine_for(CAT, "vllm", eager=eager).on(dev)
        dep = Deployment(CAT.model("qwen3-30b-a3b"), dev, eff, rt, 1, 1, 1, "fp8", "fp8")
        models.append(StepModel.build(dep, Hardware.of([(dev, eff)], "fp8", "fp8"), np.array([1]), np.array([1]), 1, np.array([900.0]),
                                      np.array([800.0])))  # fmt: skip
    both = StepModel.concat(models)
    tr3 = tr.take(np.zeros(3, dtype=np.int64))
    rate = np.array([12.0, 3.0, 12.0])
    together = at_rate(both, np.ones(3), float(BUDGET), tr3, rate)
    for k, m in enumerate(models):
        alone = at_rate(m, np.ones(1), float(BUDGET), tr, rate[k : k + 1])
        assert float(together.arrivals_per_round[k]) == pytest.approx(float(alone.arrivals_per_round[0]), rel=1e-9)


@pytest.mark.parametrize(("model", "i", "o", "budget"), [("qwen3-30b-a3b", 800.0, 200.0, 8192), ("llama-3.1-8b", 2000.0, 200.0, 2048)],
                         ids=["moe-short-prompts", "prompts-near-the-budget"])  # fmt: skip
def test_a_prefill_first_ttft_promise_is_near_the_simulated_one(model: str, i: float, o: float, budget: int) -> None:
    """A request on a prefill-first engine waits out the step in progress (prefill or decode), and its prompt is prefilled in
    a step with the whole budget. Priced as a whole round with the budget a mixed step leaves, and with short prompts queued
    one round each, the p99 TTFT was promised 1.5x the simulated one for the MoE and 1.4-2.9x for 2,000-token prompts at a
    2,048-token budget (SGLang plans bought 2.5x the replicas a 120 ms TTFT needs)."""
    step, tr, cfg = _sglang_engine(model, i, o, budget)
    cap = float(capacity(step, np.ones(1), float(budget), tr, 10.0, 1.0).rate[0])
    n = 12000
    # (From 0.8 of this capacity, the eager equilibrium's, the MoE's graphed running count could reach SGLang's graph cap of
    # 256 and the replica fall to the eager one: the last test.)
    for frac in (0.5, 0.75):
        promised = float(at_rate(step, np.ones(1), float(budget), tr, np.array([frac * cap])).ttft_s[0])
        res = simulate(step.one(0), Requests(arrival_times(frac * cap, n, seed=3), np.full(n, int(i)), np.full(n, int(o))), cfg)
        assert res.stable
        assert 0.85 <= promised / res.percentile("ttft", 0.99) <= 1.3, (frac, promised, res.percentile("ttft", 0.99))


def test_a_load_whose_count_can_reach_the_graph_cap_is_promised_where_it_falls() -> None:
    """A running count that once crosses the graph cap slows every step past it and the replica falls, for good, to the
    eager equilibrium. Trusting the graphed load up to the cap, the MoE at 0.88 of its capacity was promised a TPOT p99 of
    39 ms; the simulator's replica fell within 12,000 requests (117 ms). Capacity now stops where the cap lies
    GRAPH_SIGMAS spreads of the count away, and a rate past that is promised at the load it falls to."""
    step, tr, cfg = _sglang_engine("qwen3-30b-a3b", 800.0, 200.0, 8192)
    graph = float(np.ravel(step.graph_max)[0])
    # A TPOT target the graphed load meets and the eager one misses: the capacity is the graphed load's, bound by the cap.
    cap = capacity(step, np.ones(1), 8192.0, tr, 10.0, 0.06)
    assert 0.97 <= float(cap.graph_use[0]) <= 1.0 and float(cap.tpot_s[0]) < 0.85 * 0.06
    rate, n = float(cap.rate[0]), 60000  # 40 minutes of traffic
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=5), np.full(n, 800), np.full(n, 200)), cfg)
    assert res.mean_running < 0.75 * graph and res.percentile("tpot", 0.99) <= 0.06  # it stays graphed
    # 10% more: the graphed load's count reaches the cap, and the promise is the eager load's, which the simulator reaches.
    high, n = 1.1 * rate, 12000
    promised = at_rate(step, np.ones(1), 8192.0, tr, np.array([high]))
    assert float(promised.arrivals_per_round[0]) * 199.0 > graph
    res = simulate(step.one(0), Requests(arrival_times(high, n, seed=3), np.full(n, 800), np.full(n, 200)), cfg)
    assert res.mean_running > graph
    assert float(promised.tpot_s[0]) == pytest.approx(res.percentile("tpot", 0.99), rel=0.15)
