"""The fast simulator against a naive one that follows the documented semantics literally.

The naive simulator below keeps every request's emitted-token count explicitly and recomputes block
use from scratch each step — O(running) per step, obviously faithful to the module docstring of
:mod:`aicap.sizing.sim.engine`. On random small traces that exercise preemption, token-budget
skipping, chunking, encoders and pipeline stages, both must agree exactly (same floating-point
operations in the same order).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import pytest

from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.scheduler import FcfsScheduler
from aicap.sizing.sim.virtual_engine import VirtualEngine


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def naive(step: Callable[[int, int], float], req: Requests, cfg: EngineConfig, decode_cap: int | None = None,
          parts: Callable[[int, int], tuple[float, ...]] | None = None) -> dict[str, object]:  # fmt: skip
    """The documented semantics, literally; with ``parts``, each step is priced at its contexts (``_at_contexts``)."""
    n = len(req)
    order = np.argsort(req.arrival_s, kind="stable")
    arr = req.arrival_s[order].tolist()
    inp = req.input_tokens[order].tolist()
    out = req.output_tokens[order].tolist()
    bt, p, budget0 = cfg.block_tokens, cfg.pipeline_stages, cfg.max_batched_tokens
    cap = budget0 if decode_cap is None else min(budget0, decode_cap)
    seqs, blocks = _ceil(cfg.max_num_seqs, p), _ceil(cfg.blocks, p)
    g = [0] * n
    prompt = list(inp)
    done_pf = [0] * n
    phase = ["wait"] * n
    first = [math.nan] * n
    fin = [math.nan] * n
    waiting: list[deque[int]] = [deque() for _ in range(p)]
    running: list[list[int]] = [[] for _ in range(p)]
    preemptions = steps = 0

    def held(r: int) -> int:
        return _ceil(prompt[r], bt) if phase[r] == "pre" else _ceil(inp[r] + g[r] - 1, bt)

    t, i = 0.0, 0
    while True:
        while i < n and arr[i] <= t:
            if _ceil(inp[i] + max(out[i] - 1, 0), bt) > blocks:
                phase[i] = "rejected"
            else:
                k = min(range(p), key=lambda e: len(running[e]) + len(waiting[e]))
                waiting[k].append(i)
            i += 1
        work = []
        for e in range(p):
            run, wq = running[e], waiting[e]
            if not run and not wq:
                continue
            while True:
                sched = [r for r in run if phase[r] == "dec"][:cap]
                need = sum(_ceil(inp[r] + g[r], bt) - _ceil(inp[r] + g[r] - 1, bt) for r in sched)
                used = sum(held(r) for r in run) + need
                if used <= blocks:
                    break
                v = run.pop()
                if phase[v] == "dec":
                    prompt[v] = inp[v] + g[v]
                phase[v], done_pf[v] = "wait", 0
                wq.appendleft(v)
                preemptions += 1
            budget = budget0 - len(sched)
            pf, completing = 0, []
            ctx = sum(inp[r] + g[r] - 1 for r in sched)  # KV tokens of the scheduled decoders
            mo = mm = so = nc = 0  # Σ chunk·(tokens before it), Σ chunk², Σ tokens before, chunks
            for r in [r for r in run if phase[r] == "pre"]:
                c = min(prompt[r] - done_pf[r], budget)
                if c:
                    mo, mm, so, nc = mo + c * done_pf[r], mm + c * c, so + done_pf[r], nc + 1
                done_pf[r] += c
                pf, budget = pf + c, budget - c
                if done_pf[r] == prompt[r]:
                    completing.append(r)
            while budget > 0 and wq and len(run) < seqs and used + _ceil(prompt[wq[0]], bt) <= blocks:
                r = wq.popleft()
                used += _ceil(prompt[r], bt)
                phase[r], done_pf[r] = "pre", 0
                run.append(r)
                c = min(prompt[r], budget)
                mm, nc = mm + c * c, nc + 1
                done_pf[r] = c
                pf, budget = pf + c, budget - c
                if c == prompt[r]:
                    completing.append(r)
            if sched or pf:
                work.append((e, sched, completing, len(sched), pf, ctx, (mo, mm, so, nc)))
        if not work:
            if i >= n:
                break
            t = arr[i]
            continue
        if parts is None:
            t += max(step(d, pf) for *_, d, pf, _c, _s in work)
        else:
            t += max(_at_contexts(parts(d, pf), ctx, *sums) for *_, d, pf, ctx, sums in work)
        steps += 1
        for e, sched, completing, *_ in work:
            for r in sched:
                g[r] += 1
                if g[r] == out[r]:
                    phase[r], fin[r] = "done", t
                    running[e].remove(r)
            for r in completing:
                if math.isnan(first[r]):
                    first[r] = t
                if out[r] > 0:
                    g[r] += 1
                if g[r] >= out[r]:
                    phase[r], fin[r] = "done", t
                    running[e].remove(r)
                else:
                    phase[r] = "dec"
    inv = np.empty(n, dtype=np.intp)
    inv[order] = np.arange(n)
    return {
        "ttft": (np.array(first) - np.array(arr))[inv],
        "e2e": (np.array(fin) - np.array(arr))[inv],
        "preemptions": preemptions,
        "steps": steps,
        "finished": (np.array(phase) == "done")[inv],
    }


def _step(d: int, p: int) -> float:
    return 0.004 + 1e-4 * d + 3e-5 * p


def _at_contexts(c: tuple[float, ...], ctx: int, mo: int, mm: int, so: int, nc: int) -> float:
    """The step time of ContextStep.parts' coefficients at KV tokens ``ctx`` and the chunks' sums."""
    a, b = c[1] + c[2] * ctx + c[3] * mo + c[4] * mm, c[5] + c[6] * ctx + c[7] * so + c[8] * nc
    t = c[0] + (a + c[13] * b if a > b else b + c[13] * a)  # max(a, b) + α·min(a, b)
    if c[9] or c[11]:
        a, b = c[9] + c[10] * ctx, c[11] + c[12] * ctx
        t += a + c[13] * b if a > b else b + c[13] * a
    return t if t > 0.0 else 0.0


class _ContextStep:
    """A step priced at its contexts: attention compute- or memory-bound by context, a drafter that grows with it."""

    def __call__(self, d: int, p: int) -> float:
        return _step(d, p)

    def parts(self, d: int, p: int) -> tuple[float, ...]:
        return (0.003 + 1e-4 * d + 2e-5 * p, 1e-5 * p, 2e-8, 3e-9, 1e-9, 2e-4 * d, 5e-8, 2e-7, 1e-5, 1e-5 * d, 1e-9, 5e-5, 4e-9, 0.3)


CASES = [
    # (max_num_seqs, max_batched_tokens, kv_capacity_tokens, block_tokens, pipeline_stages), longest prompt, decode cap
    ((16, 256, 100_000, 16, 1), 300, None),  # ample KV, chunking
    ((8, 64, 1_600, 16, 1), 300, None),  # tight KV: preemption
    ((16, 64, 100_000, 4, 1), 8, 3),  # more decoders than the cap: they skip steps
    ((16, 64, 400, 4, 1), 30, 3),  # skipping and preemption together
    ((6, 40, 900, 1, 1), 300, None),  # one-token pages, tight
    ((10, 128, 2_400, 16, 2), 300, None),  # pipeline, tight KV
    ((9, 20, 600, 8, 3), 30, 2),  # pipeline, skipping, preemption, odd splits
    ((1, 300, 100_000, 16, 1), 300, None),  # one at a time
    ((4, 3, 100_000, 16, 1), 10, None),  # budget below max_num_seqs
]


def _trace(seed: int, longest: int, n: int = 80) -> Requests:
    rng = np.random.default_rng(seed)
    bursty = rng.choice([1.0, 0.0], n, p=[0.7, 0.3])  # 30% arrive together at t = 0
    return Requests(
        np.sort(rng.exponential(0.02, n).cumsum() * bursty), rng.integers(1, longest + 1, n), rng.choice([0, 1, 2, 5, 40, 120], n)
    )


@pytest.mark.parametrize(("case", "longest", "cap"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_simulator(case: tuple[int, int, int, int, int], longest: int, cap: int | None, seed: int) -> None:
    req = _trace(seed, longest)
    cfg = EngineConfig(*case)
    got = simulate(_step, req, cfg, scheduler=FcfsScheduler(cap))
    want = naive(_step, req, cfg, cap)
    np.testing.assert_array_equal(got.finished, want["finished"])
    np.testing.assert_array_equal(got.ttft_s, want["ttft"])
    np.testing.assert_array_equal(got.e2e_s, want["e2e"])
    assert (got.preemptions, got.steps) == (want["preemptions"], want["steps"])
    assert got.finished.sum() + got.rejected == len(req)


class _SkipCounter(FcfsScheduler):
    def __init__(self, decode_cap: int | None) -> None:
        super().__init__(decode_cap)
        self.skips = 0

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        d, p = super().schedule(engine)
        self.skips += d < len(engine.decoders)
        return d, p


@pytest.mark.parametrize(("case", "longest", "cap"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_contexts_match_naive_simulator(case: tuple[int, int, int, int, int], longest: int, cap: int | None, seed: int) -> None:
    """The decoders' KV tokens and the chunks' sums that the fast simulator keeps incrementally, step by step."""
    req = _trace(seed, longest)
    cfg = EngineConfig(*case)
    step = _ContextStep()
    got = simulate(step, req, cfg, scheduler=FcfsScheduler(cap))
    want = naive(_step, req, cfg, cap, parts=step.parts)
    np.testing.assert_array_equal(got.ttft_s, want["ttft"])
    np.testing.assert_array_equal(got.e2e_s, want["e2e"])
    assert (got.preemptions, got.steps) == (want["preemptions"], want["steps"])
    plain = simulate(_step, req, cfg, scheduler=FcfsScheduler(cap))
    if got.steps > 20:  # the contexts matter: the run differs from one priced at (d, p) alone
        assert not np.array_equal(np.nan_to_num(got.e2e_s), np.nan_to_num(plain.e2e_s))


def test_cases_exercise_preemption_skipping_and_rejection() -> None:
    """Guard against the comparison passing vacuously."""
    stats = {}
    for case, longest, cap in CASES:
        counter = _SkipCounter(cap)
        r = simulate(_step, _trace(0, longest), EngineConfig(*case), scheduler=counter)
        stats[case] = (r.preemptions, counter.skips)
    assert stats[CASES[1][0]][0] > 0 and stats[CASES[2][0]][1] > 0
    assert min(stats[CASES[3][0]]) > 0 and min(stats[CASES[6][0]]) > 0
    assert simulate(_step, _trace(0, 300), EngineConfig(6, 40, 300, 1, 1)).rejected > 0
