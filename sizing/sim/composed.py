"""The TTFT a disaggregated workload's users see, composed from its simulated prefill and decode pools.

:func:`chain` simulates one disaggregated deployment end to end (``aicap simulate --disaggregate``):
each request through the prefill pool, then the link, then the decode pool, whose arrivals are the
prefill completions plus the transfer. :func:`compose` does the plan's check instead:

a request of a disaggregated workload waits in the prefill pool, has its prompt computed, its KV cache
moved over the link (``t_x``, :func:`aicap.sizing.plan.disaggregate.transfer_ms`, as the plan's split counts it), then waits for a
decode slot and its first decode step. The plan simulation runs each pool at the demanded rate; this
pairs the two pools' simulated TTFTs (after warm-up, a seeded random pairing: the pools' waits are
taken as independent) and reports the ``q`` quantile of ``TTFT_prefill + t_x + TTFT_decode`` against the
workload's own TTFT target ``T``. The plan promises the sum of the pools' percentiles and the
transfer; quantiles are not additive, so this composed figure, what the simulation says users get, is
the check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.fleet import PERCENTILES, Workload
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.plan.disaggregate import transfer_ms as pool_transfer_ms
from aicap.sizing.sim.engine import Requests
from aicap.sizing.sim.replay import Setup, run_raw
from aicap.sizing.sim.report import Targets
from aicap.sizing.sim.result import WARMUP, SimResult


@dataclass(frozen=True)
class ComposedTtft:
    """One disaggregated workload's TTFT at its percentile, by part and composed (milliseconds)."""

    workload: str
    percentile: str
    prefill_ms: float
    transfer_ms: float
    decode_ms: float
    composed_ms: float
    target_ms: float | None

    @property
    def holds(self) -> bool:
        """Whether the composed TTFT is within the workload's target (no target: it holds)."""
        return self.target_ms is None or self.composed_ms <= self.target_ms


def _post_warmup(ttft_s: NDArray[np.float64], arrival_s: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(arrival_s, kind="stable")
    kept = ttft_s[order[int(WARMUP * order.size) :]]
    return kept[np.isfinite(kept)]


def compose(plan: Plan, cat: CatalogueLike, samples: dict[str, list[tuple[NDArray[np.float64], NDArray[np.float64]]]],
            seed: int = 0) -> list[ComposedTtft]:  # fmt: skip
    """The composed TTFT of every disaggregated workload of ``plan`` whose pools were both simulated.

    ``samples`` maps a plan workload name to the ``(ttft_s, arrival_s)`` arrays of its simulated
    deployments (every request of each run, in input order).
    """
    pools: dict[str, dict[str, Workload]] = {}
    for w in plan.inputs.workloads:
        if w.disaggregated_role is not None:
            pools.setdefault(w.name.rsplit(".", 1)[0], {})[w.disaggregated_role] = w
    out: list[ComposedTtft] = []
    rng = np.random.default_rng(seed)
    for base, roles in sorted(pools.items()):
        pre, dec = roles.get("prefill"), roles.get("decode")
        if pre is None or dec is None or not samples.get(pre.name) or not samples.get(dec.name):
            continue
        model = cat.model(pre.model)
        assert isinstance(model, DecoderModel)
        split = pool_transfer_ms(pre, model, pre.min_network_gbps or math.inf)  # what the TTFT target was split for
        kv = max((d.kv_dtype for pw in plan.workloads if pw.name == pre.name for d in pw.deployments),
                 key=lambda k: BYTES_PER_ELEMENT.get(k, 2.0), default=None)  # fmt: skip
        move = pool_transfer_ms(pre, model, pre.min_network_gbps or math.inf, kv)  # what the planned pools move
        a = np.concatenate([_post_warmup(t, arr) for t, arr in samples[pre.name]])
        b = np.concatenate([_post_warmup(t, arr) for t, arr in samples[dec.name]])
        n = min(a.size, b.size)
        if n == 0:
            continue
        q = PERCENTILES[pre.slo.percentile]
        # each pool's own tail over all its requests (as its deployment's run reports it); the pairing for the sum subsamples
        pool_a, pool_b = float(np.quantile(a, q)) * 1e3, float(np.quantile(b, q)) * 1e3
        a, b = rng.permutation(a)[:n], rng.permutation(b)[:n]
        target = None if pre.slo.ttft_ms is None or dec.slo.ttft_ms is None else pre.slo.ttft_ms + split + dec.slo.ttft_ms
        out.append(ComposedTtft(workload=base, percentile=pre.slo.percentile, prefill_ms=pool_a, transfer_ms=move, decode_ms=pool_b,
                                composed_ms=float(np.quantile(a + b, q)) * 1e3 + move, target_ms=target))  # fmt: skip
    return out


@dataclass(frozen=True)
class Chained:
    """A disaggregated deployment simulated end to end: each request through the prefill pool, the link, the decode pool."""

    prefill: SimResult
    decode: SimResult
    transfer_ms: float
    ttft_s: NDArray[np.float64]  # per request: prefill TTFT + transfer + decode TTFT (nan where a stage never served it)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile of the composed TTFT after warm-up [s] (``nan`` when no request got through)."""
        kept = _post_warmup(self.ttft_s, self.prefill.arrival_s)
        return float(np.quantile(kept, q)) if kept.size else math.nan


def chain(prefill: Setup, decode: Setup, requests: Requests, transfer_ms: float, *, policy: str = "fcfs", seed: int = 0,
          targets: Targets | None = None) -> Chained:  # fmt: skip
    """Simulate ``requests`` through a prefill pool, then the KV link, then a decode pool (module docstring).

    The prefill pool runs each request with one output token; a request enters the decode pool when its
    prefill ends plus ``transfer_ms``, with all but one prompt token cached (its KV cache arrived). Both pools
    schedule by ``policy`` with ``targets`` (EDF orders by the TTFT deadline, in each pool from the request's
    arrival there).
    """
    first = run_raw(prefill, replace(requests, output_tokens=np.ones(len(requests), dtype=np.int64), cached_tokens=None), policy=policy,
                    targets=targets, seed=seed)  # fmt: skip
    done = np.isfinite(first.ttft_s)
    handed = requests.arrival_s + np.where(done, first.ttft_s, 0.0) + transfer_ms / 1e3
    cached = np.maximum(requests.input_tokens - 1, 0).astype(np.int64)
    second = run_raw(decode, replace(requests, arrival_s=handed, cached_tokens=cached), policy=policy, targets=targets, seed=seed + 1)
    ttft = np.where(done, first.ttft_s + transfer_ms / 1e3 + second.ttft_s, np.nan)
    return Chained(first, second, transfer_ms, ttft)
