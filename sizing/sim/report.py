"""The document ``aicap simulate`` prints: latency statistics, throughput, SLO attainment, utilisation.

Statistics are over the requests after the warm-up (the first :data:`~aicap.sizing.sim.result.WARMUP`
share by arrival), the same cut the percentiles of :class:`~aicap.sizing.sim.result.SimResult` use;
throughput is over the whole run. A request *meets the SLO* when it finished, its TTFT is at or under
the TTFT target and its TPOT (requests of two or more output tokens) at or under the TPOT target;
``slo_attainment`` is the share of requests after warm-up that meet it and ``goodput`` the rate of
requests that meet it, over the whole run. ``itl_ms`` is the inter-token latency over the tokens emitted
from the first post-warm-up arrival on, each gap between two tokens of a request counted once
(:mod:`aicap.sizing.sim.token_gaps`); ``tpot_ms`` is over requests, each its mean gap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.sim.cluster import ClusterStats
from aicap.sizing.sim.result import WARMUP, SimResult
from aicap.sizing.sim.token_gaps import GapSample

SCHEMA_VERSION = 1
F = NDArray[np.float64]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stats(_Doc):
    """Mean and percentiles of one latency [ms]; ``None`` where no request has it."""

    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None

    def at(self, percentile: str) -> float | None:
        """The statistic named ``percentile`` (``"p50"``, ``"p90"``, ``"p95"``, ``"p99"`` or ``"mean"``)."""
        return {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p95": self.p95, "p99": self.p99}[percentile]


class Throughput(_Doc):
    """Finished work per second of simulated time."""

    requests_per_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float


class ClassResult(_Doc):
    """Latencies of one priority class."""

    priority: int
    requests: int = Field(description="requests of the class, warm-up included (its statistics are after the warm-up)")
    ttft_ms: Stats
    tpot_ms: Stats
    e2e_ms: Stats
    queue_ms: Stats
    slo_attainment: float | None


class TimePoint(_Doc):
    """Means over one slice of the run, all replicas together."""

    t_s: float
    running: float
    waiting: float
    kv_share: float | None


class Targets(_Doc):
    """The SLO requests are checked against [ms]; ``None``: not checked."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    percentile: Literal["p50", "p90", "p95", "p99"] | None = Field(
        None, description="the statistic the targets are checked at (what the exit code and `holds` judge); none without targets"
    )


class Setup(_Doc):
    """What was simulated: the deployment, its engine limits, the traffic and the policy."""

    model: str
    hardware: str
    tp: int
    pp: int
    ep: int
    weights_dtype: str
    kv_dtype: str
    replicas: int
    router: str
    policy: str
    max_num_seqs: int
    max_batched_tokens: int
    chunked_prefill: bool
    prefill_first: bool
    scheduler_steps: int
    kv_cache_tokens: int | None
    traffic: str
    rate_per_s: float | None = Field(description="the simulated arrivals' own rate, (n − 1)/span of their times (None: a closed loop)")
    requested_rate_per_s: float | None = Field(
        None,
        description="the rate asked for (--rate), of which the random arrivals drawn realise rate_per_s (None: a trace, a closed loop)",
    )
    concurrency: int | None
    mean_input_tokens: float
    mean_output_tokens: float
    seed: int
    class_shares: list[float] | None = Field(
        None, description="share of the requests in each priority class, class 0 first (None: one class)"
    )
    class_weights: list[float] | None = Field(None, description="weights of the classes under the weighted priority policy")
    dp_attention: int = Field(1, description="attention data-parallel groups per replica, each an engine of its own "
                                             "(max_num_seqs and kv_cache_tokens are the replica's, all groups together)")  # fmt: skip
    eager: bool = Field(False, description="the engine ran without CUDA graphs: each step at least its kernels' host launch time")
    overlap_scheduling: bool = Field(False, description="the engine schedules each step while the previous one runs: a request "
                                                        "arriving during a step is scheduled a step later")  # fmt: skip
    engine: str = Field("generic", description="the serving-engine profile whose limits and scheduler the run followed")
    admission: Literal["prompt", "projected", "exact"] = Field(
        "prompt",
        description="prompt: a request is admitted once its prompt's KV blocks are free, and decode preempts when they "
        "run out (vLLM); projected: only with KV room for what the running requests will still emit (SGLang); exact: that room "
        "known exactly, as requests ignore EOS on a server without a prefix cache",
    )


class SimulationReport(_Doc):
    """Outcome of one simulated run (module docstring)."""

    schema_version: int = SCHEMA_VERSION
    setup: Setup
    requests: int
    finished: int
    rejected: int
    duration_s: float
    stable: bool
    ttft_ms: Stats
    tpot_ms: Stats
    itl_ms: Stats
    e2e_ms: Stats
    queue_ms: Stats
    throughput: Throughput
    slo: Targets
    slo_attainment: float | None
    goodput_requests_per_s: float | None
    preemptions: int
    utilisation: float
    mean_running_per_replica: float
    kv_cache_use: dict[str, float] | None
    classes: list[ClassResult]
    timeline: list[TimePoint]


def _r(x: float) -> float:
    return float(f"{x:.5g}")


def stats_ms(x: F) -> Stats:
    """Mean, p50, p90, p95 and p99 of the non-``nan`` values of ``x`` [s], in ms (5 significant digits)."""
    v = x[~np.isnan(x)] * 1e3
    if not v.size:
        return Stats(mean=None, p50=None, p90=None, p95=None, p99=None)
    p = np.percentile(v, [50, 90, 95, 99])
    return Stats(mean=_r(float(v.mean())), p50=_r(float(p[0])), p90=_r(float(p[1])), p95=_r(float(p[2])), p99=_r(float(p[3])))


def gap_stats_ms(gaps: GapSample | None) -> Stats:
    """Token-weighted mean and percentiles of inter-token gaps [s], in ms (``None`` values when there are none)."""
    if gaps is None or not gaps.tokens:
        return Stats(mean=None, p50=None, p90=None, p95=None, p99=None)
    p50, p90, p95, p99 = (_r(gaps.quantile(q) * 1e3) for q in (0.5, 0.9, 0.95, 0.99))
    return Stats(mean=_r(gaps.mean() * 1e3), p50=p50, p90=p90, p95=p95, p99=p99)


def meets_slo(res: SimResult, targets: Targets, output_tokens: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Per request: finished, TTFT ≤ target and TPOT ≤ target (module docstring)."""
    ok = res.finished.copy()
    if targets.ttft_ms is not None:
        ok &= np.nan_to_num(res.ttft_s, nan=np.inf) * 1e3 <= targets.ttft_ms
    if targets.tpot_ms is not None:
        ok &= (output_tokens < 2) | (np.nan_to_num(res.tpot_s, nan=np.inf) * 1e3 <= targets.tpot_ms)
    return np.asarray(ok, dtype=bool)


TIMELINE_SLICES = 50


def timeline(stats: ClusterStats, duration_s: float, kv: bool) -> list[TimePoint]:
    """The step-start samples of ``stats`` averaged over :data:`TIMELINE_SLICES` equal slices of the run.

    ``t_s`` is a slice's start; a slice without a sample (the replicas idle) is left out. ``kv_share``
    is the KV blocks held over those of all replicas (``None`` for encoders).
    """
    if not stats.timeline or duration_s <= 0:
        return []
    a = np.array(stats.timeline, dtype=np.float64)
    width = duration_s / TIMELINE_SLICES
    k = np.minimum((a[:, 0] / width).astype(np.int64), TIMELINE_SLICES - 1)
    total_blocks = max(stats.kv_blocks, 1) * max(len(stats.busy_s), 1)
    out = []
    for j in np.unique(k).tolist():
        m = a[k == j]
        out.append(TimePoint(t_s=_r(j * width), running=_r(float(m[:, 1].mean())), waiting=_r(float(m[:, 2].mean())),
                             kv_share=_r(float(m[:, 3].mean()) / total_blocks) if kv else None))  # fmt: skip
    return out


def report(res: SimResult, stats: ClusterStats, input_tokens: NDArray[np.int64], output_tokens: NDArray[np.int64], targets: Targets,
           setup: Setup, *, kv: bool = True) -> SimulationReport:  # fmt: skip
    """Summarise one run (module docstring); ``kv=False`` (encoders) reports no KV-cache use."""
    n = res.arrival_s.size
    order = np.argsort(res.arrival_s, kind="stable")
    post = np.zeros(n, dtype=bool)
    post[order[int(WARMUP * n) :]] = True
    checked = targets.ttft_ms is not None or targets.tpot_ms is not None
    good = meets_slo(res, targets, output_tokens)
    dur = max(res.duration_s, 1e-12)
    fin = res.finished
    queue = res.queue_s if res.queue_s is not None else np.full(n, np.nan)

    def block(mask: NDArray[np.bool_]) -> tuple[Stats, Stats, Stats, Stats]:
        return stats_ms(res.ttft_s[mask]), stats_ms(res.tpot_s[mask]), stats_ms(res.e2e_s[mask]), stats_ms(queue[mask])

    classes: list[ClassResult] = []
    if res.priority is not None and int(res.priority.max(initial=0)) > 0:
        for c in np.unique(res.priority).tolist():
            m = post & (res.priority == c)
            t, p, e, q = block(m)
            classes.append(ClassResult(priority=int(c), requests=int((res.priority == c).sum()), ttft_ms=t, tpot_ms=p, e2e_ms=e, queue_ms=q,
                                       slo_attainment=_r(float(good[m].mean())) if checked and m.any() else None))  # fmt: skip
    t, p, e, q = block(post)
    busy = np.array(stats.busy_s)
    engines = max(len(stats.busy_s), 1)
    replicas = max(engines // setup.dp_attention, 1)  # an engine per attention group
    return SimulationReport(
        setup=setup, requests=n, finished=int(fin.sum()), rejected=res.rejected, duration_s=_r(res.duration_s),
        stable=res.stable if setup.concurrency is None else res.finished_after_warmup,  # a closed loop's clients bound its queue
        ttft_ms=t, tpot_ms=p, itl_ms=gap_stats_ms(res.itl_after_warmup()), e2e_ms=e, queue_ms=q,
        throughput=Throughput(requests_per_s=_r(float(fin.sum()) / dur), output_tokens_per_s=_r(float(output_tokens[fin].sum()) / dur),
                              input_tokens_per_s=_r(float(input_tokens[fin].sum()) / dur)),
        slo=targets, slo_attainment=_r(float(good[post].mean())) if checked and post.any() else None,
        goodput_requests_per_s=_r(float(good.sum()) / dur) if checked else None, preemptions=res.preemptions,
        utilisation=_r(float(busy.mean()) / dur), mean_running_per_replica=_r(stats.running_s / dur / replicas),
        kv_cache_use=({"mean": _r(stats.kv_block_s / dur / engines / max(stats.kv_blocks, 1)), "peak": _r(stats.peak_kv_share)}
                      if kv else None),
        classes=classes, timeline=timeline(stats, res.duration_s, kv),
    )  # fmt: skip
