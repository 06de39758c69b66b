"""Play a plan through the iteration-level simulator and compare what it promised with what happened.

For every deployment of every workload, one replica is simulated at its planned share of the traffic
(``requests_per_s / replicas``, with the workload's burstiness and length mix), with the same step times
(:class:`~aicap.sizing.serve.step.StepModel`), request slots, token budget and KV-cache capacity that
the plan assumed. The check reports, per deployment, the simulated TTFT and TPOT at the workload's
percentile beside the promised ones, whether the queue stayed stable, and whether the targets hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment as Layout
from aicap.sizing.core.fleet import PERCENTILES, LengthBin
from aicap.sizing.core.plan import Plan
from aicap.sizing.perf import memory
from aicap.sizing.serve.step import Hardware, StepModel
from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate

DEFAULT_REQUESTS = 6000


@dataclass(frozen=True)
class Check:
    """Promised and simulated latencies of one deployment (milliseconds at the workload's percentile)."""

    workload: str
    instance_type: str
    hardware: str
    tp: int
    pp: int
    requests_per_s_per_replica: float
    ttft_promised_ms: float
    ttft_simulated_ms: float
    tpot_promised_ms: float | None
    tpot_simulated_ms: float | None
    ttft_target_ms: float | None
    tpot_target_ms: float | None
    stable: bool
    preemptions: int

    @property
    def meets_targets(self) -> bool:
        """Stable, and the simulated percentiles are within the targets."""
        ok = self.stable
        if self.ttft_target_ms is not None:
            ok = ok and self.ttft_simulated_ms <= self.ttft_target_ms
        if self.tpot_target_ms is not None and self.tpot_simulated_ms is not None:
            ok = ok and self.tpot_simulated_ms <= self.tpot_target_ms
        return ok


def _lengths(spec: int | list[LengthBin], n: int, seed: int) -> np.ndarray:
    if isinstance(spec, int):
        return np.full(n, spec, dtype=np.int64)
    values = np.array([b.tokens for b in spec], dtype=np.int64)
    weights = np.array([b.weight for b in spec], dtype=float)
    return sample_lengths(values, weights / weights.sum(), n, seed=seed)


def verify(plan: Plan, cat: CatalogueLike, *, requests: int = DEFAULT_REQUESTS, seed: int = 0) -> list[Check]:
    """Simulate one replica of every deployment of ``plan`` at its planned load (deterministic for ``seed``)."""
    out: list[Check] = []
    runtime = cat.runtime_spec
    budget = runtime.max_prefill_tokens
    inputs = {w.name: w for w in plan.inputs.workloads}
    for pw in plan.workloads:
        w = inputs[pw.name]
        model = cat.model(w.model)
        decoder = model.kind == "decoder"
        for k, d in enumerate(pw.deployments):
            dev = cat.device(d.hardware)
            eff = cat.efficiency_for(dev)
            layout = Layout(model, dev, eff, runtime, d.tp, d.pp, 1, d.weights_dtype, d.kv_dtype)
            i_mean, o_mean = w.mean_input, (w.mean_output if decoder else 0.0)
            step = StepModel.build(layout, Hardware.of([(dev, eff)], d.weights_dtype), np.array([d.tp]), np.array([d.pp]), 1.0,
                                   np.array([i_mean + o_mean / 2.0]), np.array([i_mean]))  # fmt: skip
            rate = d.requests_per_s / d.replicas
            s = seed + 7919 * k + 104729 * len(out)
            arrivals = arrival_times(rate, requests, cv=w.arrival_cv, seed=s)
            prompt = _lengths(w.input_tokens, requests, s + 1)
            output = _lengths(w.output_tokens, requests, s + 2) if decoder else np.zeros(requests, dtype=np.int64)
            kv = int(memory.kv_cache_tokens(layout, d.tp, d.pp)) if decoder else 1 << 40
            cfg = EngineConfig(max_num_seqs=max(d.max_running, 1), max_batched_tokens=budget, kv_capacity_tokens=max(kv, 1),
                               pipeline_stages=d.pp)  # fmt: skip
            res = simulate(step.one(0), Requests(arrivals, prompt, output), cfg)
            q = PERCENTILES[pw.percentile]
            out.append(Check(
                workload=pw.name, instance_type=d.instance_type, hardware=d.hardware, tp=d.tp, pp=d.pp,
                requests_per_s_per_replica=rate, ttft_promised_ms=d.ttft_ms, ttft_simulated_ms=res.percentile("ttft", q) * 1e3,
                tpot_promised_ms=d.tpot_ms, tpot_simulated_ms=res.percentile("tpot", q) * 1e3 if decoder else None,
                ttft_target_ms=w.slo.ttft_ms, tpot_target_ms=w.slo.tpot_ms if decoder else None, stable=res.stable,
                preemptions=res.preemptions,
            ))  # fmt: skip
    return out
