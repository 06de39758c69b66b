"""The TTFT a disaggregated workload's users see, composed from its simulated prefill and decode pools.

A request of a disaggregated workload waits in the prefill pool, has its prompt computed, its KV cache
moved over the link (``t_x``, :func:`aicap.sizing.plan.disaggregate.transfer_ms`), then waits for a
decode slot and its first decode step. The plan simulation runs each pool at the demanded rate; this
pairs the two pools' simulated TTFTs (after warm-up, a seeded random pairing: the pools' waits are
taken as independent) and reports the ``q`` quantile of ``TTFT_prefill + t_x + TTFT_decode`` against the
workload's own TTFT target ``T``. The plan promises the sum of the pools' percentiles and the
transfer; quantiles are not additive, so this composed figure, what the simulation says users get, is
the check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.fleet import Workload
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.serve.disaggregated import transfer_ms
from aicap.sizing.sim.result import WARMUP

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


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
        move = transfer_ms(model, pre.kv_dtype or "bf16", pre.max_input, pre.min_network_gbps or np.inf)
        a = np.concatenate([_post_warmup(t, arr) for t, arr in samples[pre.name]])
        b = np.concatenate([_post_warmup(t, arr) for t, arr in samples[dec.name]])
        n = min(a.size, b.size)
        if n == 0:
            continue
        a, b = rng.permutation(a)[:n], rng.permutation(b)[:n]
        q = PERCENTILES[pre.slo.percentile]
        target = None if pre.slo.ttft_ms is None or dec.slo.ttft_ms is None else pre.slo.ttft_ms + move + dec.slo.ttft_ms
        out.append(ComposedTtft(workload=base, percentile=pre.slo.percentile, prefill_ms=float(np.quantile(a, q)) * 1e3,
                                transfer_ms=move, decode_ms=float(np.quantile(b, q)) * 1e3,
                                composed_ms=float(np.quantile(a + b, q)) * 1e3 + move, target_ms=target))  # fmt: skip
    return out
