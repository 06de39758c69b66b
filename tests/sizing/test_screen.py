"""The candidate screen: the rate bound really bounds, and branch and bound drops only rows the screen would drop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import candidates
from aicap.sizing.plan import screen as screen_mod
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.capacity import capacity, load_ceiling, rate_bound
from aicap.sizing.serve.load import LATENCY_HEADROOM
from aicap.sizing.serve.step_model import StepModel

CAT = load_catalogue()


def fleet() -> Fleet:
    """Decoders dense and MoE, long and short prompts, tight and loose SLOs (two alike but for theirs), bursty traffic,
    and an encoder."""
    return Fleet.model_validate({"workloads": [
        {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 6.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 1500, "tpot_ms": 50}},
        {"name": "chat-gold", "model": "llama-3.1-8b", "requests_per_s": 2.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 600, "tpot_ms": 25}},
        {"name": "tight", "model": "llama-3.1-70b", "requests_per_s": 2.0, "input_tokens": 300, "output_tokens": 400,
         "slo": {"ttft_ms": 800, "tpot_ms": 30}},
        {"name": "long", "model": "mixtral-8x7b", "requests_per_s": 1.0, "input_tokens": 12000, "output_tokens": 300,
         "slo": {"ttft_ms": 8000, "tpot_ms": 120, "percentile": "p90"}, "arrival_cv": 2.0},
        {"name": "embed", "model": "bge-large-en", "requests_per_s": 40.0, "input_tokens": 300, "output_tokens": 1,
         "slo": {"ttft_ms": 150}, "precisions": ["fp16"]},
    ], "constraints": {"clouds": ["aws", "gcp"]}})  # fmt: skip


def _disaggregated() -> Fleet:
    """examples/disaggregated-chat.yaml: Llama-3.1-70B, 2,000-token prompts, prefill and decode on separate pools.

    Pinned to bf16: both pools run one format, and in fp8 (the example's choice) the A100s, which have no fp8 path, serve
    neither pool; in bf16 they stay in play for the screen these tests examine.
    """
    from pathlib import Path

    from aicap.sizing.plan.fleet_io import load_fleet

    f = load_fleet(Path(__file__).resolve().parents[2] / "examples" / "disaggregated-chat.yaml")
    return f.model_copy(update={"workloads": [w.model_copy(update={"precisions": ["bf16"]}) for w in f.workloads]})


@pytest.fixture(scope="module")
def screens() -> list[dict[str, Any]]:
    """The arguments of every screen the sizer runs on :func:`fleet`, with what the screen returned."""
    seen: list[dict[str, Any]] = []
    real = candidates.screen_bound

    def spy(rows: Any, step: StepModel, pp: Any, budget: float, traffic: Any, tpot_t: Any, price: Any, idle: Any, same: Any = None,
            ttft_t: Any = None) -> Any:  # fmt: skip
        out = real(rows, step, pp, budget, traffic, tpot_t, price, idle, same, ttft_t)
        seen.append(dict(rows=rows, step=step, pp=pp, budget=budget, traffic=traffic, tpot_t=tpot_t, price=price, idle=idle, same=same,
                         ttft_t=ttft_t, out=out))  # fmt: skip
        return out

    candidates.screen_bound = spy  # type: ignore[assignment]
    try:
        size(fleet(), CAT, alternatives=False)
    finally:
        candidates.screen_bound = real  # type: ignore[assignment]
    assert seen
    return seen


def test_rate_bound_is_above_the_capacity_on_every_row(screens: list[dict[str, Any]]) -> None:
    rows = feasible = 0
    for s in screens:
        ub_rate, ub_x = rate_bound(s["step"], s["pp"], s["budget"], s["traffic"], s["tpot_t"])
        # The exact capacity, bisected finely over the whole unconstrained bracket (no bound used).
        exact = capacity(s["step"], s["pp"], s["budget"], s["traffic"], np.full(s["pp"].size, np.inf), s["tpot_t"], bisections=18)
        assert np.all(exact.rate <= ub_rate * (1 + 1e-9)), "rate_bound is below a row's capacity"
        assert np.all(exact.arrivals_per_round <= ub_x * (1 + 1e-9)), "rate_bound's load is below a row's capacity"
        rows += s["pp"].size
        feasible += int((exact.rate > 0).sum())
    assert rows > 500 and feasible > 100


def test_rows_alike_but_for_their_targets_share_the_rate_bounds_first_pass_exactly(screens: list[dict[str, Any]]) -> None:
    """The sizer groups rows that differ only in their SLO; the bound is the same, to the bit, as row by row."""
    shared = 0
    for s in screens:
        same = s["same"]
        assert same is not None and (same[same] == same).all()  # each group points at one of its own rows
        shared += int((same != np.arange(same.size)).sum())
        grouped = rate_bound(s["step"], s["pp"], s["budget"], s["traffic"], s["tpot_t"], same)
        alone = rate_bound(s["step"], s["pp"], s["budget"], s["traffic"], s["tpot_t"])
        assert all(np.array_equal(g, a) for g, a in zip(grouped, alone, strict=True))
    assert shared > 20  # the "chat" workloads' rows


def test_branch_and_bound_skips_only_rows_the_screen_would_drop(screens: list[dict[str, Any]]) -> None:
    skipped_total = 0
    for s in screens:
        _, pruned, _, _ = s["out"]
        # Every row at screening resolution, no bound: what the screen would select from all of them.
        _, ub_x = rate_bound(s["step"], s["pp"], s["budget"], s["traffic"], s["tpot_t"])
        ceiling = load_ceiling(s["step"], s["pp"], s["budget"], s["traffic"], ub_x)
        every = capacity(s["step"], s["pp"], s["budget"], s["traffic"], np.full(s["pp"].size, np.inf), s["tpot_t"], ceiling,
                         bisections=screen_mod.SCREEN_BISECTIONS)  # fmt: skip
        unit = np.where(every.rate > 0, s["price"] / np.maximum(every.rate, 1e-300), np.inf)
        selected = set(screen_mod.screen(s["rows"], unit).tolist())
        skipped = set(np.flatnonzero(pruned).tolist())
        assert not (selected & skipped), "branch and bound skipped a row the exhaustive screen keeps"
        skipped_total += len(skipped)
    assert skipped_total > 0  # the bound does prune


def test_a_rows_capacity_does_not_depend_on_the_rows_evaluated_with_it() -> None:
    # A prefill-only shape (one output token) beside a decode shape whose prompts are all cached: the TTFT
    # mixture's count ranges follow the block's busiest row, and the capacity must not flip to zero because
    # the final re-evaluation among other rows differs from the one that placed the row in the last digits.
    import dataclasses

    from aicap.sizing.core.engines import engine_for

    model, dev = CAT.model("llama-3.1-70b"), CAT.device("h100-sxm")
    eng = engine_for(CAT, None)
    devs = [(dev, eng.efficiency(CAT, dev), [(1, 1), (2, 1), (4, 1), (8, 1)], 4.0)]
    prefill = candidates.Shape(decoder=True, input_mean=2000.0, input_tail=2000.0, output_mean=1.0, context=2001.0, decode_context=2000.5,
                               ttft_s=1.245, tpot_s=np.inf, quantile=0.99, arrival_cv=1.0, tail_share=1.0)  # fmt: skip
    decode = dataclasses.replace(prefill, output_mean=300.0, context=2300.0, decode_context=2150.0, ttft_s=0.15, tpot_s=0.04,
                                 cached_share=0.9995)  # fmt: skip
    fmt = candidates.formats("fp8", dev)
    assert fmt is not None
    alone = [r.capacity_rps for r in candidates.evaluate(model, eng.on(dev), fmt, [prefill], devs, False)]
    mixed = [r.capacity_rps for r in candidates.evaluate(model, eng.on(dev), fmt, [prefill, decode], devs, False) if r.shape == 0]
    assert all(c > 0 for c in alone) and mixed == pytest.approx(alone, rel=1e-9)


def test_evaluating_rows_in_chunks_changes_nothing(screens: list[dict[str, Any]]) -> None:
    """capacity() and rate_bound() cut large row sets into chunks (cache-sized temporaries): the rate bound is the same
    to the bit; capacities to rounding (the TTFT mixture's arrays are as wide as the chunk's most co-arrivals, which
    changes the order of a few sums: 8 of 588 rows here differ by 1e-15, as they do between fleets already)."""
    from aicap.sizing.serve import capacity as capacity_mod

    s = max(screens, key=lambda x: x["pp"].size)
    args = (s["step"], s["pp"], s["budget"], s["traffic"])
    ttft = np.full(s["pp"].size, 2.0)
    whole_bound = rate_bound(*args, s["tpot_t"])
    whole_cap = capacity(*args, ttft, s["tpot_t"], bisections=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(capacity_mod, "CHUNK_ROWS", 7)
        mp.setattr(capacity_mod, "CAPACITY_CHUNK_ROWS", 5)
        assert s["pp"].size > 7
        chunked_bound = rate_bound(*args, s["tpot_t"])
        grouped_bound = rate_bound(*args, s["tpot_t"], s["same"])
        chunked_cap = capacity(*args, ttft, s["tpot_t"], bisections=6)
    for a, b, c in zip(whole_bound, chunked_bound, grouped_bound, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    for name in ("rate", "arrivals_per_round", "ttft_s", "tpot_s"):
        np.testing.assert_allclose(getattr(chunked_cap, name), getattr(whole_cap, name), rtol=1e-12, atol=0.0, err_msg=name)


def test_evaluating_the_ttft_mixture_in_buckets_of_like_counts_changes_nothing(screens: list[dict[str, Any]]) -> None:
    """ttft_quantile evaluates large row sets in buckets of like co-arrival counts (smaller arrays): each row's
    pieces are its own in any company, so capacities with a TTFT target agree with one pass over all rows."""
    from aicap.sizing.serve import ttft as ttft_mod

    s = max(screens, key=lambda x: x["pp"].size)
    args = (s["step"], s["pp"], s["budget"], s["traffic"])
    ttft = np.full(s["pp"].size, 0.6)
    calls: list[int] = []
    real = ttft_mod._quantile

    def spy(step: StepModel, *rest: Any) -> Any:
        calls.append(step.bandwidth.size)
        return real(step, *rest)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ttft_mod, "_BUCKET_ROWS", 10**9)
        whole = capacity(*args, ttft, s["tpot_t"], bisections=6)
        mp.setattr(ttft_mod, "_BUCKET_ROWS", 1)
        mp.setattr(ttft_mod, "_quantile", spy)
        bucketed = capacity(*args, ttft, s["tpot_t"], bisections=6)
    assert len(calls) > len({c for c in calls}) or max(calls) < s["pp"].size  # rows were split into buckets
    assert (whole.rate > 0).sum() > 50 and (whole.ttft_s > 0.3).sum() > 20  # TTFT matters on many rows
    for name in ("rate", "arrivals_per_round", "ttft_s", "tpot_s"):
        np.testing.assert_allclose(getattr(bucketed, name), getattr(whole, name), rtol=1e-12, atol=0.0, err_msg=name)


def test_each_device_keeps_its_cheapest_replica_among_the_rows_with_a_chance() -> None:
    rows = screen_mod.Rows(shape=[0, 0, 0, 0, 1, 1], device=[0, 0, 1, 1, 0, 0], tp=[1, 2, 2, 4, 1, 2], pp=[1, 1, 1, 1, 1, 1])
    price = np.array([1.0, 2.0, 8.0, 16.0, 1.0, 2.0])
    ok = np.array([True, True, True, True, False, True])  # shape 1's TP1 has no capacity: its TP2 is the cheapest left
    assert screen_mod.cheapest_replicas(rows, price, ok).tolist() == [0, 2, 5]
    assert screen_mod.cheapest_replicas(rows, price, np.zeros(6, dtype=bool)).size == 0


def test_allowing_a_faster_device_never_makes_a_low_rate_dearer() -> None:
    """1 req/s: two 1-GPU L4 replicas cost $1,175/month; with H100 also allowed the screen kept only L4's TP2 layout (the best
    per request/s at full load) and the plan cost $3,359."""

    def cost(hardware: list[str]) -> float:
        f = Fleet.model_validate({"workloads": [{"name": "w", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": 1000,
                                                 "output_tokens": 200, "slo": {"ttft_ms": 2000, "tpot_ms": 60}}],
                                  "constraints": {"clouds": ["aws"], "hardware": hardware}})  # fmt: skip
        return size(f, CAT, alternatives=False).totals.usd_per_month

    l4 = cost(["l4"])
    assert cost(["l4", "h100-sxm"]) <= l4 + 0.01
    assert cost(["l4", "h100-sxm", "a100-80gb-sxm", "l40s"]) <= l4 + 0.01


def test_a_row_late_at_its_lightest_load_gives_its_place_to_the_next(screens: list[dict[str, Any]]) -> None:
    """The screen ranks rows by their capacity without the TTFT target. A row whose TTFT percentile misses its target at
    the lightest load the full evaluation tries has no capacity at all: it is dropped (rate 0) instead of holding its
    device's place. Each one dropped is confirmed by the full evaluation, and the screen without TTFT targets kept it."""
    dropped = 0
    for s in screens:
        bound, _, _, _ = s["out"]
        plain, _, _, _ = screen_mod.screen_bound(s["rows"], s["step"], s["pp"], s["budget"], s["traffic"], s["tpot_t"], s["price"],
                                              s["idle"], s["same"])  # fmt: skip
        ix = np.flatnonzero((bound.rate <= 0) & (plain.rate > 0) & np.isfinite(s["ttft_t"]))
        if not ix.size:
            continue
        full = capacity(s["step"].take(ix), s["pp"][ix], s["budget"], s["traffic"].take(ix), s["ttft_t"][ix], s["tpot_t"][ix])
        assert np.all(full.rate == 0.0), "the screen dropped a row that serves within its TTFT target"
        assert np.all(bound.ttft_s[ix] > LATENCY_HEADROOM * s["ttft_t"][ix])  # dropped with the TTFT that rules it out
        dropped += ix.size
    assert dropped > 0


def test_a_device_whose_best_bound_is_late_still_serves_the_prefill_pool() -> None:
    """A disaggregated prefill pool (Llama-3.1-70B, 2,000-token prompts, TTFT p99 1.25 s): on A100-40GB the pipeline layouts
    bound best without TTFT, but their prompts cross every stage and miss the target at every load the full evaluation
    tries; they held the device's place, and the plan said A100-40GB cannot serve the pool, though TP8 does."""
    f = _disaggregated()
    plan = size(f, CAT)
    prefill = next(w for w in plan.workloads if w.name.endswith(".prefill"))
    assert "a100-40gb-sxm" not in {r.hardware for r in prefill.rejected_hardware}
    # A100-40GB alone (the plan itself may put a pool there, and then it is no alternative): its prefill pool on TP8.
    c = f.constraints.model_copy(update={"hardware": ["a100-40gb-sxm"], "objective": "cost", "single_type": False})
    alone = size(f.model_copy(update={"constraints": c}), CAT, alternatives=False)
    pool = next(w for w in alone.workloads if w.name.endswith(".prefill"))
    assert [(d.hardware, d.tp, d.pp) for d in pool.deployments] == [("a100-40gb-sxm", 8, 1)]


def test_refill_leaves_no_layout_whose_bound_beats_its_devices_best() -> None:
    """Where the TTFT target makes a device's kept rows dear, the refill goes on until no row of that (shape, device)
    has a lower bound below the best cost per request/s served there; elsewhere the best kept row is within
    REFILL_SLACK of its own cost without the TTFT target, which no row beats. The disaggregated example's prefill pool
    needs it (A100-80GB kept TP2, which carries 0.03 req/s within the TTFT target, where TP8 carries about 1)."""
    seen: list[tuple[Any, ...]] = []
    real = candidates.refill

    def spy(rows: Any, step: Any, pp: Any, budget: float, traffic: Any, ttft_t: Any, tpot_t: Any, price: Any, lower: Any, bound: Any,
            cap: Any, chosen: Any, ok: Any) -> Any:  # fmt: skip
        before = chosen.copy()
        out = real(rows, step, pp, budget, traffic, ttft_t, tpot_t, price, lower, bound, cap, chosen, ok)
        seen.append((rows, price, lower, bound, cap, before, out, ok))
        return out

    candidates.refill = spy  # type: ignore[assignment]
    try:
        size(_disaggregated(), CAT, alternatives=False)
        size(fleet(), CAT, alternatives=False)
    finally:
        candidates.refill = real  # type: ignore[assignment]
    added = open_pairs = 0
    for rows, price, lower, bound, cap, before, chosen, ok in seen:
        added += chosen.size - before.size
        pair = screen_mod._pairs(rows)
        full = np.where(cap.rate > 0, price / np.maximum(cap.rate, 1e-300), np.inf)
        free = np.where(bound.rate > 0, price / np.maximum(bound.rate, 1e-300), np.inf)
        outside = np.ones(price.size, dtype=bool)
        outside[chosen] = False
        for p in np.unique(pair[before]).tolist():
            mine = chosen[pair[chosen] == p]
            best, best_free = float(full[mine].min()), float(free[before[pair[before] == p]].min())
            if best <= screen_mod.REFILL_SLACK * best_free:
                continue
            open_pairs += 1
            rest = np.flatnonzero(outside & ok & (pair == p))
            assert np.all(lower[rest] >= best * (1 - 1e-9)), "a layout whose bound beats the device's best was left unevaluated"
    assert added > 0 and open_pairs > 0


def test_alternatives_cost_what_sizing_on_that_device_alone_costs() -> None:
    """Each priced alternative of the disaggregated example is the plan `--hardware` that device alone gives: before the
    refill, A100-80GB's read $861,563/month (its prefill on TP2 at 0.03 req/s a replica) against $80,145 alone."""
    f = _disaggregated()
    plan = size(f, CAT)
    priced = [a for a in plan.alternatives if a.usd_per_month is not None]
    assert "a100-80gb-sxm" in {a.hardware for a in priced} and len(priced) >= 2
    for a in priced:
        c = f.constraints.model_copy(update={"hardware": [a.hardware], "objective": "cost", "single_type": False})
        alone = size(f.model_copy(update={"constraints": c}), CAT, alternatives=False)
        assert a.usd_per_month == pytest.approx(alone.totals.usd_per_month, rel=1e-3), a.hardware
