"""The load model against closed forms and against the iteration-level simulator on reference replicas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.specs import EfficiencySpec
from aicap.sizing.perf import memory
from aicap.sizing.serve.capacity import capacity
from aicap.sizing.serve.load import LATENCY_HEADROOM, at_arrivals
from aicap.sizing.serve.loaded import Traffic
from aicap.sizing.serve.rate import at_rate
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.sim.arrivals import arrival_times
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate

CAT = load_catalogue()
BUDGET = float(CAT.runtime_spec.max_prefill_tokens)


def affine(a: float, b: float, c: float) -> StepModel:
    """A step of ``a + b·d + c·p`` seconds (one memory-bound operator on a 1 B/s device)."""
    one = np.ones(1)
    coef = np.array([a, b, c]).reshape(3, 1, 1)
    return StepModel(np.zeros((3, 1, 1)), coef, one.reshape(1, 1), one, 0 * one, 0 * one, 0 * one, 1, 0, np.zeros((2, 1)), 0 * one)


def traffic(i: float, o: float, slots: float = 2048.0, q: float = 0.99, cv: float = 1.0) -> Traffic:
    return Traffic(*(np.array([v], dtype=float) for v in (i, o, i, slots, q, cv, 1.0)))


@pytest.mark.parametrize("rate", [2.0, 5.0, 10.0])
def test_mean_round_time_is_the_closed_form_for_an_affine_step(rate: float) -> None:
    # τ = a + b·λ(O − 1)τ + c·λIτ  ⇒  τ = a / (1 − λ(b(O − 1) + cI)) (Little's law; tokens conserved).
    a, b, c, i, o = 0.010, 2e-5, 4e-6, 1500.0, 300.0
    m = at_rate(affine(a, b, c), np.ones(1), BUDGET, traffic(i, o), np.array([rate]))
    assert float(m.round_s[0]) == pytest.approx(a / (1 - rate * (b * (o - 1) + c * i)), rel=1e-3)
    assert float(m.running[0]) == pytest.approx(rate * float(m.round_s[0]) * (o - 1 + 1), rel=1e-3)


def test_idle_ttft_is_the_prefill_step_and_queueing_adds_to_it() -> None:
    a, b, c = 0.010, 2e-5, 4e-6
    step = affine(a, b, c)
    idle = at_rate(step, np.ones(1), BUDGET, traffic(1500.0, 300.0), np.array([1e-4]))
    assert float(idle.ttft_s[0]) == pytest.approx(a + c * 1500.0, rel=0.02)
    busy = at_rate(step, np.ones(1), BUDGET, traffic(1500.0, 300.0), np.array([8.0]))
    assert float(busy.ttft_s[0]) > float(idle.ttft_s[0]) * 1.5  # TTFT includes queueing and co-scheduled prefills


def test_an_idle_engine_leaves_no_residual_and_a_busy_one_a_whole_round() -> None:
    """At a light load nothing decodes a share ``e^(−n)`` of the time: an arrival then waits for no round, otherwise for the
    rest of a whole one. The residual spread over ``[0, (1 − idle)·τ]`` put the p90 TTFT 14% under the simulator's here."""
    step = affine(0.010, 2e-5, 4e-6)
    rate, n = 0.25, 40000  # about 0.75 requests decoding: the engine idle nearly half the time
    promised = at_rate(step, np.ones(1), BUDGET, traffic(1500.0, 300.0, q=0.9), np.array([rate]))
    cfg = EngineConfig(max_num_seqs=256, max_batched_tokens=int(BUDGET), kv_capacity_tokens=1 << 30)
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, 1500), np.full(n, 300)), cfg)
    assert float(promised.ttft_s[0]) == pytest.approx(res.percentile("ttft", 0.9), rel=0.03)


def test_burstier_arrivals_cost_capacity() -> None:
    step = affine(0.010, 2e-5, 4e-6)
    poisson = capacity(step, np.ones(1), BUDGET, traffic(1500.0, 300.0), 1.0, 0.05)
    bursty = capacity(step, np.ones(1), BUDGET, traffic(1500.0, 300.0, cv=2.0), 1.0, 0.05)
    assert 0 < float(bursty.rate[0]) < float(poisson.rate[0])


# (model, device, tp, pp, input, output, TTFT target s, TPOT target s, weights) — chat-like shapes on the
# catalogue's calibrated devices, dense and MoE, with and without pipeline parallelism, and an encoder.
CASES = [
    ("llama-3.1-8b", "h100-sxm", 1, 1, 1500, 300, 2.0, 0.060, "fp8"),
    ("llama-3.1-70b", "h100-sxm", 2, 1, 1500, 300, 2.0, 0.060, "fp8"),
    ("llama-3.1-70b", "h100-sxm", 2, 2, 1500, 300, 2.0, 0.060, "fp8"),
    ("llama-3.1-8b", "a10g", 1, 1, 500, 100, 1.0, 0.050, "bf16"),
    ("mixtral-8x7b", "h100-sxm", 2, 1, 1000, 200, 2.0, 0.060, "fp8"),
    # A compute-bound encoder near capacity (dynamic batching): round sizes from the exact round-to-round chain.
    ("bge-large-en", "t4", 1, 1, 256, 0, 0.2, float("inf"), "fp16"),
]
PROMISE_TOLERANCE = 0.30  # simulated percentile at most 30% above the promised one
CONSERVATISM = 1.6  # and the promise not more than 1.6× the simulated one


def replica(case: tuple[str, str, int, int, int, int, float, float, str],
            efficiency: EfficiencySpec | None = None) -> tuple[StepModel, Traffic, EngineConfig]:  # fmt: skip
    """The case's replica on its device with the catalogue's factors (or ``efficiency``), its traffic and its engine."""
    mid, dev_id, tp, pp, i, o, _, _, wdt = case
    model, dev = CAT.model(mid), CAT.device(dev_id)
    eff = efficiency or CAT.efficiency_for(dev)
    dep = Deployment(model, dev, eff, CAT.runtime_spec, tp, pp, 1, wdt, wdt)
    decoder = model.kind == "decoder"
    slots = float(min(memory.max_batch(dep, tp, pp, i, i + o), 2048)) if decoder else float(BUDGET // i)
    kv = int(memory.kv_cache_tokens(dep, tp, pp)) if decoder else 1 << 40
    step = StepModel.build(
        dep, Hardware.of([(dev, eff)], wdt), np.array([tp]), np.array([pp]), 1, np.array([i + o / 2]), np.array([float(i)])
    )
    cfg = EngineConfig(max_num_seqs=int(slots), max_batched_tokens=int(BUDGET), kv_capacity_tokens=kv, pipeline_stages=pp)
    return step, traffic(i, o, slots), cfg


@pytest.mark.parametrize("case", CASES, ids=["8b-h100", "70b-h100-tp2", "70b-h100-tp2pp2", "8b-a10g", "mixtral-h100-tp2", "bge-t4"])
def test_promises_hold_in_simulation_at_capacity_and_half_load(case: tuple[str, str, int, int, int, int, float, float, str]) -> None:
    step, tr, cfg = replica(case)
    cap = capacity(step, np.array([case[3]]), BUDGET, tr, case[6], case[7])
    assert float(cap.rate[0]) > 0
    n = 6000
    for frac in (0.5, 1.0):
        rate = float(cap.rate[0]) * frac
        promised = at_rate(step, np.array([case[3]]), BUDGET, tr, np.array([rate]))
        res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, case[4]), np.full(n, case[5])), cfg)
        assert res.stable
        ttft = res.percentile("ttft", 0.99)
        assert ttft <= float(promised.ttft_s[0]) * (1 + PROMISE_TOLERANCE)
        assert float(promised.ttft_s[0]) <= ttft * CONSERVATISM
        assert ttft <= case[6]
        if case[5] > 1:
            tpot = res.percentile("tpot", 0.99)
            assert tpot == pytest.approx(float(promised.tpot_s[0]), rel=0.15)
            assert tpot <= case[7]
    assert float(cap.tpot_s[0]) <= LATENCY_HEADROOM * case[7] + 1e-12


@pytest.mark.parametrize("case", CASES[:2], ids=["8b-h100", "70b-h100-tp2"])
def test_overlap_scheduling_promises_hold_and_cost_about_a_round(case: tuple[str, str, int, int, int, int, float, float, str]) -> None:
    """An engine one step ahead (SGLang, TensorRT-LLM): the promise adds a round, and the simulator agrees."""

    step, tr, cfg = replica(case)
    lagged, cfg_lag = dataclasses.replace(tr, lag_rounds=1.0), dataclasses.replace(cfg, overlap_scheduling=True)
    rate = float(capacity(step, np.array([case[3]]), BUDGET, lagged, case[6], case[7]).rate[0]) * 0.7
    plain = at_rate(step, np.array([case[3]]), BUDGET, tr, np.array([rate]))
    promised = at_rate(step, np.array([case[3]]), BUDGET, lagged, np.array([rate]))
    assert float(promised.ttft_s[0] - plain.ttft_s[0]) == pytest.approx(float(plain.round_s[0]), rel=0.05)  # one round, busy engine
    n = 6000
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, case[4]), np.full(n, case[5])), cfg_lag)
    ttft = res.percentile("ttft", 0.99)
    assert float(promised.ttft_s[0]) / CONSERVATISM <= ttft <= float(promised.ttft_s[0]) * (1 + PROMISE_TOLERANCE)


def test_varied_prompts_spread_the_round_time_more_than_lumps_of_their_mean() -> None:
    """500/2,000/8,000-token prompts (mean 1,700, token-weighted mean 4,559): a request decodes through a few 8,000-token
    rounds rather than many 1,700-token ones, and its TPOT p99 spreads accordingly (the chat-service example's TPOT p99
    was promised 20% under its simulation)."""

    step, tr, cfg = replica(("llama-3.1-8b", "h100-sxm", 1, 1, 1700, 200, 2.0, 0.060, "fp8"))
    bins, share = np.array([500, 2000, 8000]), np.array([0.6, 0.3, 0.1])
    span = float((share * bins**2).sum() / (share * bins).sum())
    varied = dataclasses.replace(tr, input_span=np.array([span]))
    rate, n = 6.0, 8000
    alike, mixed = (float(at_rate(step, np.ones(1), BUDGET, t, np.array([rate])).tpot_s[0]) for t in (tr, varied))
    prompts = np.random.default_rng(5).choice(bins, size=n, p=share)
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), prompts, np.full(n, 200)), cfg)
    simulated = res.percentile("tpot", 0.99)
    assert alike < mixed and abs(mixed / simulated - 1) < abs(alike / simulated - 1)
    assert mixed == pytest.approx(simulated, rel=0.15)


@pytest.mark.parametrize(("prompt", "output", "share", "low", "high"), [(100, 1000, 0.6, 1.0, 1.6), (1500, 200, 0.7, 0.9, 1.1)],
                         ids=["decode-heavy", "prefill-heavy"])  # fmt: skip
def test_the_tpot_spread_is_the_drift_over_a_life_and_its_covariance_with_the_prompts_met(prompt: int, output: int, share: float,
                                                                                         low: float, high: float) -> None:  # fmt: skip
    """TPOT p99 − p50 over the simulator's: the running count a request averages over its life varies 2/3 as much as the
    instantaneous one, and the prompts it meets covary with it (the same arrivals). Taken as independent, with the
    instantaneous count, the spread was 1.82x the simulator's where decoding dominates (100/1,000 tokens at 0.6 of
    capacity: now 1.50x, the p99 itself 1.8% over) and 0.82x where prefills do (1,500/200 at 0.7: now 0.94x)."""

    step, tr, cfg = replica(("llama-3.1-8b", "h100-sxm", 1, 1, prompt, output, 2.0, 0.060, "fp8"))
    cap = capacity(step, np.ones(1), BUDGET, tr, 2.0, 0.060)
    rate, n = float(cap.rate[0]) * share, 12000
    p50, p99 = (float(at_rate(step, np.ones(1), BUDGET, dataclasses.replace(tr, quantile=np.array([q])), np.array([rate])).tpot_s[0])
                for q in (0.5, 0.99))  # fmt: skip
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, prompt), np.full(n, output)), cfg)
    simulated = res.percentile("tpot", 0.99) - res.percentile("tpot", 0.5)
    assert low <= (p99 - p50) / simulated <= high


def _stacked(cases: list[tuple[str, str, int, int, int, int, float, float, str]]) -> tuple[StepModel, Traffic, np.ndarray]:
    """The reference replicas as one group of rows (several models: each step model is built alone, then joined)."""
    parts = [replica(c) for c in cases]
    steps = [p[0] for p in parts]
    fields = ("flops", "bytes", "peak", "bandwidth", "expert_fixed", "expert_per_touched", "expert_per_token")
    joined = (np.concatenate([getattr(s, f) for s in steps], axis=-1) for f in fields)
    join = StepModel(*joined, 1, 0, np.concatenate([s.net for s in steps], axis=-1), np.concatenate([s.overhead_s for s in steps]))
    tr = Traffic(*(np.concatenate([np.broadcast_to(getattr(p[1], f), (1,)) for p in parts]) for f in ("input_tokens", "output_tokens",
                   "input_tail", "slots", "quantile", "arrival_cv", "tail_share")))  # fmt: skip
    return join, tr, np.array([float(c[3]) for c in cases])


def test_a_rows_metrics_do_not_depend_on_the_rows_evaluated_with_it() -> None:
    # The planner evaluates many candidates at once (and the search groups them differently): each row's
    # count distributions are truncated at its own range, so alone or in any company it gets the same numbers.
    dense = [c for c in CASES if not c[0].startswith("mixtral")]  # decoders and the encoder (its round sizes from the chain)
    step, tr, pp = _stacked(dense)
    x = np.array([0.4, 3.0, 9.0, 1.5, 0.9])
    together = at_arrivals(step, pp, BUDGET, tr, x)
    for k in range(len(dense)):
        alone = at_arrivals(step.take([k]), pp[[k]], BUDGET, tr.take([k]), x[[k]])
        for name in ("ttft_s", "tpot_s", "rate", "round_s", "slot_use", "budget_use"):
            assert float(getattr(alone, name)[0]) == pytest.approx(float(getattr(together, name)[k]), rel=1e-9), (k, name)


def test_encoder_round_sizes_are_the_stationary_law_of_the_round_chain() -> None:
    # Rounds serve min(m, cap) waiting prompts in T(s) = a + b·s; the next round starts with the rest plus the
    # Poisson arrivals meanwhile; an empty round is an idle spell that the next arrival ends with a round of one.
    from math import exp, factorial

    from aicap.sizing.serve.rounds import chain_rounds

    a, b, lam, cap, top = 0.001, 0.004, 180.0, 5, 30
    t = np.array([0.0] + [a + b * min(m, cap) for m in range(1, top + 1)])
    pi = chain_rounds(t[:, None], np.array([lam]), np.array([float(cap)]), np.array([1.0]), np.array([top]), top)[:, 0]
    p = np.zeros((top + 1, top + 1))
    p[0, 1] = 1.0
    for m in range(1, top + 1):
        mu, carry = lam * t[m], max(m - cap, 0)
        for j in range(top + 1 - carry):
            p[m, carry + j] = exp(-mu) * mu**j / factorial(j)
        p[m, top] += 1.0 - p[m].sum()
    ref = np.full(top + 1, 1.0 / (top + 1))
    for _ in range(5000):
        ref = ref @ p
    assert np.allclose(pi, ref, atol=1e-9)
    assert pi[0] > 0.1 and pi[1] > pi[2] > pi[3]  # idle spells and single-prompt rounds are common at 73% load


def test_long_prompts_chunked_over_several_rounds_widen_the_tpot_tail() -> None:
    # 24,000-token prompts arrive as three budget-sized chunks in consecutive rounds: the long rounds a request
    # meets come in clusters of three, so its mean round time spreads sqrt(3) times more than for independent lumps.
    step, _, cfg = replica(("llama-3.1-8b", "h100-sxm", 1, 1, 24000, 600, 30.0, 0.150, "fp8"))
    tr = Traffic(*(np.array([v], dtype=float) for v in (24000.0, 600.0, 24000.0, float(cfg.max_num_seqs), 0.9, 1.0, 1.0)))
    m = at_rate(step, np.ones(1), BUDGET, tr, np.array([0.5]))
    n = 8000
    arrivals = arrival_times(0.5, n, seed=1)
    res = simulate(step.one(0), Requests(arrivals, np.full(n, 24000), np.full(n, 600)), cfg)
    simulated = float(np.percentile(res.tpot_s[n // 10 :], 90))
    # Still a little low: 7% here (8% with a normal deviate, 18% without the clusters).
    assert 0.88 * simulated <= float(m.tpot_s[0]) <= 1.05 * simulated
    # A request meets three or four of these prompts in its life, so its TPOT leans right: the simulated p99 is 2.2 times
    # as far above the median as the p90 is. A normal deviate puts it 1.82 times as far (2.326/1.282); the
    # Cornish–Fisher deviate of the prompts' and the running count's skewness, 1.95 times.
    p50, p99 = (float(at_rate(step, np.ones(1), BUDGET, dataclasses.replace(tr, quantile=np.array([q])), np.array([0.5])).tpot_s[0])
                for q in (0.5, 0.99))  # fmt: skip
    lean, simulated_lean = (p99 - p50) / (float(m.tpot_s[0]) - p50), np.subtract(*np.percentile(res.tpot_s[n // 10 :], [99, 50])) / (
        simulated - float(np.percentile(res.tpot_s[n // 10 :], 50)))  # fmt: skip
    assert 1.9 <= lean <= simulated_lean


def test_where_almost_no_life_meets_a_prompt_the_tpot_percentile_adds_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # At 1e-8 arrivals a round a life meets no prompt, so no percentile holds one: the skewness grows as 1/sqrt(prompts
    # met), and uncapped the Cornish–Fisher deviate would add most of an 8,000-token prefill to the p99 (6% here).
    from aicap.sizing.serve import load

    step, tr, _ = replica(("llama-3.1-8b", "h100-sxm", 1, 1, 8000, 200, 2.0, 0.060, "fp8"))
    p99 = dataclasses.replace(tr, quantile=np.array([0.99]))
    lean = float(at_arrivals(step, np.ones(1), BUDGET, p99, np.array([1e-8])).tpot_s[0])
    monkeypatch.setattr(load, "MAX_LEAN", 0.0)
    normal = float(at_arrivals(step, np.ones(1), BUDGET, p99, np.array([1e-8])).tpot_s[0])
    assert lean == pytest.approx(normal, rel=0.01)


def test_the_skewness_of_the_prompt_work_met_is_a_busy_periods() -> None:
    # The prompt work a life meets, by generations: the life's own window meets Poisson(λ·w) prompts, each of work
    # X = c·I stretches the window by X and meets prompts of its own. The load model's skewness is the busy period's.
    from aicap.sizing.serve.deviates import met_skewness

    rng = np.random.default_rng(7)
    tokens, weights = np.array([500.0, 2000.0, 8000.0]), np.array([0.6, 0.3, 0.1])
    lam, c, w = 2.0, 6e-5, 4.0  # prompts/s, s of life per prompt token, s of life before any prompt
    mean_i = float(weights @ tokens)
    rho = lam * c * mean_i
    runs = 200_000
    met = np.zeros(runs)
    window = np.full(runs, w)
    while window.any():
        k = rng.poisson(lam * window)
        work = c * (rng.multinomial(k, weights) @ tokens)
        met += work
        window = work
    centred = met - met.mean()
    simulated = float((centred**3).mean() / (centred**2).mean() ** 1.5)
    second, third = float(weights @ tokens**2), float(weights @ tokens**3)
    g, span = third / second**1.5, np.array([second / mean_i])
    predicted = float(met_skewness(g, np.array([mean_i]), span, np.array([lam * w / (1.0 - rho)]), np.array([rho]))[0])
    assert predicted == pytest.approx(simulated, rel=0.05)
    # Prompts alike and no stretching: a Poisson count's 1/sqrt(λ·w).
    alike = float(met_skewness(1.0, np.array([1000.0]), np.array([1000.0]), np.array([9.0]), np.array([0.0]))[0])
    assert alike == pytest.approx(1.0 / 3.0)


def test_far_past_saturation_the_counts_fold_into_their_tail_instead_of_overflowing() -> None:
    """30 arrivals a round of 12,000-token prompts with 2,000-token outputs: the decoders take the whole budget, a lump is one
    token and its mean count 3.6·10^5. Poisson's running product overflowed where e^(−μ) had underflowed (0·∞ = NaN) and the
    TTFT mixture raised on an empty array; the mass now sits in the tail and the replica is reported unstable."""
    import warnings

    from aicap.sizing.serve.rounds import lump_counts

    pmf = lump_counts(np.array([3.6e5, 2.0]), np.array([1.0, 1.0]), 96, np.array([96, 96]))
    assert np.all(np.isfinite(pmf)) and pmf[:, 0].sum() == pytest.approx(1.0) and pmf[96, 0] == pytest.approx(1.0)
    assert pmf[:, 1] == pytest.approx(lump_counts(np.array([2.0]), np.array([1.0]), 96, np.array([96]))[:, 0])
    step, tr, _ = replica(("llama-3.1-8b", "h100-sxm", 1, 1, 12000, 2000, 2.0, 0.060, "fp8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        far = at_arrivals(step, np.ones(1), BUDGET, tr, np.array([30.0]))
    assert not far.stable[0] and not np.isnan(far.ttft_s[0]) and not np.isnan(far.tpot_s[0])


def test_a_pipeline_with_short_outputs_is_promised_what_it_runs() -> None:
    """Llama-3.1-8B on four pipeline stages (1,000/64 tokens). A full round less one lump in each micro-batch was taken
    as one lump's cost: the prefill load read four times its share (0.94 at 36.6 req/s), and the promised TPOT p99 at
    the capacity the model found (32.7 req/s) was 12.7 times the simulated one. Per lump a pp-th of that, and the round
    paced by its fullest micro-batch (the lumps land at random): within the promise tolerance, at a capacity nearer the
    simulator's (about 70 req/s against the TPOT target; 48.5 req/s once every step paid its graphed kernels' fixed time,
    1.35 ms on H200, which the simulator pays too). The running count is within 6% at half load and 39% over at
    capacity (the simulator's router balances the micro-batches' counts, so their lumps spread a little more evenly than
    at random)."""
    case = ("llama-3.1-8b", "h200-sxm", 1, 4, 1000, 64, 2.0, 0.060, "bf16")
    step, tr, cfg = replica(case)
    pp = np.array([4.0])
    cap = capacity(step, pp, BUDGET, tr, case[6], case[7])
    assert 40.0 < float(cap.rate[0]) < 70.0
    n = 6000
    for frac in (0.5, 1.0):
        rate = float(cap.rate[0]) * frac
        promised = at_rate(step, pp, BUDGET, tr, np.array([rate]))
        res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3), np.full(n, case[4]), np.full(n, case[5])), cfg)
        for metric, value in (("ttft", promised.ttft_s), ("tpot", promised.tpot_s)):
            simulated = res.percentile(metric, 0.99)
            assert simulated <= float(value[0]) * (1 + PROMISE_TOLERANCE) and float(value[0]) <= simulated * CONSERVATISM, metric
        assert float(promised.running[0]) == pytest.approx(res.mean_running, rel=0.4)
        assert res.percentile("tpot", 0.99) <= case[7]


def test_a_bursty_arrival_brings_company_into_its_prefill() -> None:
    """Gamma arrivals with cv = 2: an arrival falls in a burst more often than a random instant does, so the prompts that share
    its prefill are more than the window's mean (the renewal process's count around an arrival, ttft._company). Counted as
    Poisson, the p99 TTFT was promised at 0.63-0.65 of the simulated one for 1,500-token prompts on an H100; now 0.84 at
    half of capacity and 0.76 at 0.9 of it (docs/simulator.md: bursty tails still run low; plans say so until verified)."""
    step, tr, cfg = replica(CASES[0])
    bursty = dataclasses.replace(tr, arrival_cv=np.array([2.0]))
    cap = float(capacity(step, np.ones(1), BUDGET, bursty, 10.0, 1.0).rate[0])
    n = 20000
    for frac in (0.5, 0.9):
        promised = float(at_rate(step, np.ones(1), BUDGET, bursty, np.array([frac * cap])).ttft_s[0])
        arrivals = arrival_times(frac * cap, n, seed=3, cv=2.0)
        res = simulate(step.one(0), Requests(arrivals, np.full(n, CASES[0][4]), np.full(n, CASES[0][5])), cfg)
        assert res.stable
        assert 0.75 <= promised / res.percentile("ttft", 0.99) <= 1.3, (frac, promised, res.percentile("ttft", 0.99))


@pytest.mark.parametrize(("i", "o", "budget", "cv", "low"), [(2000, 200, 2048, 2.0, 0.8), (1500, 300, int(BUDGET), 3.0, 0.93)],
                         ids=["prompts-near-the-budget-cv2", "cv3"])  # fmt: skip
def test_a_bursty_life_meets_its_burst_of_prompts_in_full(i: int, o: int, budget: int, cv: float, low: float) -> None:
    """Gamma arrivals: the prompts a request's life meets are a clumped count, of variance cv² times the mean, and an arrival
    sees (cv² − 1)/2 more of them after it than a random instant does. Where a round's budget holds one 2,000-token prompt,
    the round-by-round law had counted a burst as one long round, not the run of long rounds it is, and the p99 TPOT was
    promised at 0.71 of the simulated one at cv 2 (0.86-0.90 for 1,500/300 tokens at cv 3); now 0.84 and 0.98."""
    step, tr, cfg = replica(("llama-3.1-8b", "h100-sxm", 1, 1, i, o, 2.0, 0.060, "fp8"))
    bursty, cfg = dataclasses.replace(tr, arrival_cv=np.array([cv])), dataclasses.replace(cfg, max_batched_tokens=budget)
    rate, n = 0.5 * float(capacity(step, np.ones(1), float(budget), bursty, 10.0, 1.0).rate[0]), 12000
    promised = float(at_rate(step, np.ones(1), float(budget), bursty, np.array([rate])).tpot_s[0])
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3, cv=cv), np.full(n, i), np.full(n, o)), cfg)
    assert res.stable
    assert low <= promised / res.percentile("tpot", 0.99) <= 1.25, (promised, res.percentile("tpot", 0.99))


@pytest.mark.parametrize(("case", "cv", "low"), [(("llama-3.1-70b", "h100-sxm", 4, 1, 1500, 300, 2.0, 0.2, "fp8"), 1.0, 0.88),
                                                 (("llama-3.1-8b", "h100-sxm", 1, 1, 2000, 200, 2.0, 0.06, "fp8"), 2.0, 0.8)],
                         ids=["70b-1500-poisson", "8b-2000-cv2"])  # fmt: skip
def test_prompts_that_fill_the_budget_queue_for_it(case: tuple[str, str, int, int, int, int, float, float, str], cv: float,
                                                  low: float) -> None:  # fmt: skip
    """Prompts that fill most of a 2,048-token budget each hold it for nearly a full round: a queue behind a GI/D/1 server.
    The round mixture had counted a busy budget as a few rounds' backlog, and the p99 TTFT was promised at 0.63 of the
    simulated one for Llama-3.1-70B at 0.85 of its capacity (1,500-token prompts) and 0.45 for 2,000-token prompts on an 8B
    at cv 2 and half its capacity; with the budget's Cramér–Lundberg tail as a floor, 0.94 and 0.89."""
    step, tr, cfg = replica(case)
    budget = 2048
    tr, cfg = dataclasses.replace(tr, arrival_cv=np.array([cv])), dataclasses.replace(cfg, max_batched_tokens=budget)
    frac = 0.85 if cv == 1.0 else 0.5
    rate, n = frac * float(capacity(step, np.ones(1), float(budget), tr, 10.0, 1.0).rate[0]), 12000
    promised = float(at_rate(step, np.ones(1), float(budget), tr, np.array([rate])).ttft_s[0])
    res = simulate(step.one(0), Requests(arrival_times(rate, n, seed=3, cv=cv), np.full(n, case[4]), np.full(n, case[5])), cfg)
    assert res.stable
    assert low <= promised / res.percentile("ttft", 0.99) <= 1.3, (promised, res.percentile("ttft", 0.99))
