"""Simulate a deployment (or every deployment of a plan): engine limits and step times from aicap's model.

A replica's engine takes its limits from the runtime conventions (``max_num_seqs`` = the runtime's
``max_batch``, token budget = ``max_prefill_tokens``, both overridable) and its KV capacity from the
memory model (:func:`aicap.sizing.perf.memory.kv_cache_tokens`, paged in 16-token blocks; encoders
hold no KV cache). Step times are :class:`~aicap.sizing.serve.context_step.ContextStep`'s: the roofline
of the step's decode sequences at their actual contexts and of its prefill chunks at their actual
attention spans (built at the mean lengths; only sliding-window layers are linearised there).

``replicas_for_slo`` is the smallest replica count whose simulated run is stable and meets the TTFT
and TPOT targets at the percentile: counts double from 1 until one meets them, then bisection between
the last miss and the first hit (the latency tail shrinks with replicas; the search assumes it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment as Layout
from aicap.sizing.core.errors import InputError
from aicap.sizing.perf import memory
from aicap.sizing.plan.layouts import crossings, scale_out_bps
from aicap.sizing.serve.context_step import ContextStep
from aicap.sizing.serve.step_model import Hardware
from aicap.sizing.sim.admission import AdmissionRule
from aicap.sizing.sim.cluster import ClusterStats, Router, simulate_cluster
from aicap.sizing.sim.engine import EngineConfig, Requests, StepTime
from aicap.sizing.sim.policies import EdfScheduler, PriorityScheduler, RoundRobinScheduler, SjfScheduler, SrtfScheduler
from aicap.sizing.sim.report import Setup as SetupDoc
from aicap.sizing.sim.report import SimulationReport, Targets, report
from aicap.sizing.sim.result import SimResult
from aicap.sizing.sim.scheduler import FcfsScheduler, Scheduler

POLICIES = ("fcfs", "sjf", "srtf", "rr", "priority", "edf")
MAX_REPLICAS_SEARCHED = 4096
NO_KV_TOKENS = 1 << 40  # encoders: no KV cache to run out of


@dataclass(frozen=True)
class PolicyOptions:
    """Settings of the scheduling policies (see :mod:`aicap.sizing.sim.policies`).

    Attributes
    ----------
    predictor_error : float
        ``σ`` of the log-normal output-length predictor (SJF by work, SRTF).
    aging_tokens_per_s : float
        SJF aging ``a`` [tokens/s].
    quantum_steps : int
        Round-robin quantum [decode steps].
    class_weights : tuple of float or None
        Weighted priority classes; ``None``: strict priority.
    sjf_by : str
        ``"work"`` or ``"prompt"``.
    """

    predictor_error: float = 0.0
    aging_tokens_per_s: float = 100.0
    quantum_steps: int = 256
    class_weights: tuple[float, ...] | None = None
    sjf_by: str = "work"


def make_scheduler(policy: str, options: PolicyOptions, targets: Targets, seed: int) -> Scheduler:
    """The scheduler named ``policy`` (one of :data:`POLICIES`).

    Raises
    ------
    InputError
        For an unknown policy, or ``edf`` without a TTFT target.
    """
    if policy == "fcfs":
        return FcfsScheduler()
    if policy == "sjf":
        return SjfScheduler(by=options.sjf_by, aging_tokens_per_s=options.aging_tokens_per_s, error=options.predictor_error, seed=seed + 5)
    if policy == "srtf":
        return SrtfScheduler(error=options.predictor_error, seed=seed + 5)
    if policy == "rr":
        return RoundRobinScheduler(options.quantum_steps)
    if policy == "priority":
        return PriorityScheduler(options.class_weights)
    if policy == "edf":
        if targets.ttft_ms is None:
            raise InputError("policy 'edf' orders requests by their TTFT deadline: give a TTFT target (--ttft-ms)")
        return EdfScheduler(targets.ttft_ms / 1e3)
    raise InputError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")


@dataclass(frozen=True)
class Setup:
    """One deployment to simulate: the layout, how many replicas, how traffic is spread, engine limits.

    ``max_num_seqs`` and ``max_batched_tokens`` replace the runtime's limits where given;
    ``prefill_first`` makes every step that prefills a prefill-only step (vLLM v0's and SGLang's scheduler;
    ``None``: the engine profile's) and
    ``decode_steps`` runs that many decode-only steps per scheduling round (vLLM v0 multi-step).
    ``scale_out_bps`` is the achieved network bytes/s per device of a replica spanning instances (its
    pipeline boundaries that cross instances are priced at it; ``None``: none cross) and
    ``decode_context`` the mean decode context the step model is built at (``None``: ``E[I] + E[O]/2``);
    a plan's deployments give both, as the sizer and ``size --verify`` priced them.
    ``ignore_eos`` (the client asks for every request's whole output) and ``prefix_cache`` (the server keeps
    one) choose the path of an engine with projected admission (:mod:`aicap.sizing.sim.admission`).
    """

    layout: Layout
    replicas: int = 1
    router: Router = "round_robin"
    max_num_seqs: int | None = None
    max_batched_tokens: int | None = None
    prefill_first: bool | None = None
    decode_steps: int = 1
    scale_out_bps: float | None = None
    decode_context: float | None = None
    ignore_eos: bool = False
    prefix_cache: bool = True

    def engine(self) -> EngineConfig:
        """Engine limits of one replica (module docstring)."""
        rt = self.layout.runtime
        groups = self.layout.dp_attention  # data-parallel attention: one engine per group, a share of the KV cache each
        kv = (
            int(memory.kv_cache_tokens(self.layout, self.layout.tp, self.layout.pp)) // groups
            if self.layout.decoder is not None
            else NO_KV_TOKENS
        )
        if kv < 16:
            raise InputError(f"{self.layout.model.id} on TP{self.layout.tp}·PP{self.layout.pp} {self.layout.device.id} leaves no memory "
                             "for a KV cache; use more devices per replica or a smaller weights dtype")  # fmt: skip
        budget = rt.max_prefill_tokens if self.max_batched_tokens is None else self.max_batched_tokens
        if budget < self.layout.verify_tokens:
            k = self.layout.verify_tokens
            raise InputError(f"a step budget of {budget:,} tokens cannot hold one speculative decode step of {k} tokens "
                             f"(the token and {k - 1} draft tokens): raise the step budget (max_batched_tokens)")  # fmt: skip
        # max_num_seqs is the replica's (a plan's max_running, --max-num-seqs): each group's engine takes its share
        return EngineConfig(max_num_seqs=rt.max_batch if self.max_num_seqs is None else max(self.max_num_seqs // groups, 1),
                            max_batched_tokens=budget,
                            kv_capacity_tokens=kv, pipeline_stages=self.layout.pp,
                            request_overhead_s=rt.request_overhead_ms * 1e-3, verify_tokens=self.layout.verify_tokens,
                            tokens_per_step=self.layout.tokens_per_step, chunked_prefill=rt.chunked_prefill,
                            prefill_first=rt.prefill_first if self.prefill_first is None else self.prefill_first,
                            decode_steps=self.decode_steps, overlap_scheduling=rt.overlap_scheduling,
                            state_tokens=int(memory.state_tokens(self.layout, self.layout.tp, self.layout.pp)),
                            record_gaps=True, admission=self._admission())  # fmt: skip

    def _admission(self) -> AdmissionRule | None:
        """The engine profile's projected admission, exact where requests ignore EOS and no prefix cache is kept."""
        a = self.layout.runtime.admission
        if a is None:
            return None
        return AdmissionRule(a.init_ratio, a.init_ratio * a.min_ratio_factor, a.decay_steps, a.retract_steps, a.clip_tokens,
                             exact=self.ignore_eos and not self.prefix_cache)  # fmt: skip

    def step(self, mean_input: float, mean_output: float, mean_cached: float = 0.0) -> StepTime:
        """Step time of one replica (module docstring); ``mean_cached`` prompt tokens are a cached prefix.

        Built at the mean lengths, it prices each simulated step at its own decode contexts and prefill
        spans (:mod:`aicap.sizing.serve.context_step`).
        """
        lay = self.layout
        out = mean_output if lay.decoder is not None else 0.0
        context = mean_input + out / 2.0 if self.decode_context is None else self.decode_context
        cross = None if self.scale_out_bps is None else crossings(lay.tp, lay.pp, lay.device.interconnect.domain_size)
        return ContextStep.build(lay, Hardware.of([(lay.device, lay.efficiency)], lay.weights_dtype,
                                                 lay.kv_dtype), lay.tp, lay.pp, float(lay.ep),
                                 context, max(mean_input - mean_cached, 1.0), mean_cached, cross,
                                 None if self.scale_out_bps is None else np.array([self.scale_out_bps]))  # fmt: skip


def planned_setup(layout: Layout, cat: CatalogueLike, instance_type: str, decode_context: float | None, *, replicas: int = 1,
                  router: Router = "round_robin", max_num_seqs: int | None = None) -> Setup:  # fmt: skip
    """The :class:`Setup` of a plan's deployment, priced as the sizer priced it.

    Its instance type's network prices replicas that span instances; the workload's decode context (``None``
    for an encoder) is what the step model is built at.
    """
    net = scale_out_bps([cat.instance(instance_type)], layout.device, layout.efficiency.link)
    return Setup(layout, replicas=replicas, router=router, max_num_seqs=max_num_seqs, scale_out_bps=net, decode_context=decode_context)


def run(setup: Setup, requests: Requests, *, policy: str = "fcfs", options: PolicyOptions | None = None, targets: Targets | None = None,
        concurrency: int | None = None, seed: int = 0, traffic: str = "") -> SimulationReport:  # fmt: skip
    """Simulate ``requests`` on ``setup`` under ``policy`` and summarise the run (:func:`run_detailed` without the result)."""
    return run_detailed(setup, requests, policy=policy, options=options, targets=targets, concurrency=concurrency, seed=seed,
                        traffic=traffic)[0]  # fmt: skip


def run_detailed(setup: Setup, requests: Requests, *, policy: str = "fcfs", options: PolicyOptions | None = None,
                 targets: Targets | None = None, concurrency: int | None = None, seed: int = 0,
                 traffic: str = "") -> tuple[SimulationReport, SimResult, ClusterStats]:  # fmt: skip
    """Simulate ``requests`` on ``setup`` under ``policy``; the summary, the per-request result and the replicas' statistics.

    Parameters
    ----------
    setup : Setup
    requests : Requests
        Arrivals (ignored with ``concurrency``) and lengths; an encoder's outputs are taken as 0.
    policy : str
        One of :data:`POLICIES`.
    options : PolicyOptions or None
    targets : Targets or None
        SLO for attainment (and EDF deadlines).
    concurrency : int or None
        Closed loop with this many clients.
    seed : int
        Seed of the policy's predictor (the requests carry their own).
    traffic : str
        A label of where the requests came from, echoed in the report.
    """
    tg = targets or Targets()
    if setup.layout.decoder is None and int(requests.output_tokens.max(initial=0)) > 0:
        requests = replace(requests, output_tokens=np.zeros(len(requests), dtype=np.int64))  # an encoder emits no tokens
    res, cfg = _simulate(setup, requests, policy, options or PolicyOptions(), tg, concurrency, seed)
    lay = setup.layout
    groups = lay.dp_attention
    doc = SetupDoc(model=lay.model.id, hardware=lay.device.id, tp=lay.tp, pp=lay.pp, ep=lay.ep, weights_dtype=lay.weights_dtype,
                   kv_dtype=lay.kv_dtype, replicas=setup.replicas, router=setup.router, policy=policy,
                   max_num_seqs=cfg.max_num_seqs * groups, max_batched_tokens=cfg.max_batched_tokens, chunked_prefill=cfg.chunked_prefill,
                   prefill_first=cfg.prefill_first, scheduler_steps=cfg.decode_steps,
                   kv_cache_tokens=cfg.kv_capacity_tokens * groups if lay.decoder is not None else None, dp_attention=groups,
                   eager=lay.runtime.eager, overlap_scheduling=cfg.overlap_scheduling, engine=lay.runtime.engine,
                   admission="prompt" if cfg.admission is None else "exact" if cfg.admission.exact else "projected", traffic=traffic,
                   rate_per_s=None if concurrency else _rate(requests), concurrency=concurrency,
                   mean_input_tokens=round(float(requests.input_tokens.mean()), 2),
                   mean_output_tokens=round(float(requests.output_tokens.mean()), 2), seed=seed,
                   class_shares=None if requests.priority is None else
                   [round(float(x), 4) for x in np.bincount(requests.priority) / len(requests)],
                   class_weights=None if options is None or options.class_weights is None else list(options.class_weights))  # fmt: skip
    return report(res[0], res[1], requests.input_tokens, requests.output_tokens, tg, doc, kv=lay.decoder is not None), res[0], res[1]


def run_raw(setup: Setup, requests: Requests, *, policy: str = "fcfs", options: PolicyOptions | None = None,
            targets: Targets | None = None, concurrency: int | None = None, seed: int = 0) -> SimResult:  # fmt: skip
    """Like :func:`run`, but the per-request :class:`~aicap.sizing.sim.result.SimResult` instead of a report."""
    if setup.layout.decoder is None and int(requests.output_tokens.max(initial=0)) > 0:
        requests = replace(requests, output_tokens=np.zeros(len(requests), dtype=np.int64))
    (res, _), _ = _simulate(setup, requests, policy, options or PolicyOptions(), targets or Targets(), concurrency, seed)
    return res


def _rate(requests: Requests) -> float:
    a = requests.arrival_s
    span = float(a.max() - a.min()) if a.size > 1 else 0.0
    if span <= 0:
        return 0.0
    rate = (a.size - 1) / span
    # Six decimals; below 0.01 req/s, where they keep fewer than five digits (1e-9 req/s read 0), six significant figures.
    return round(rate, 6) if rate >= 0.01 else float(f"{rate:.6g}")


def _simulate(setup: Setup, requests: Requests, policy: str, options: PolicyOptions, targets: Targets, concurrency: int | None,
              seed: int) -> tuple[tuple[SimResult, ClusterStats], EngineConfig]:  # fmt: skip
    cfg = setup.engine()
    cached = 0.0 if requests.cached_tokens is None else float(requests.cached_tokens.mean())
    step = setup.step(float(requests.input_tokens.mean()), float(requests.output_tokens.mean()), cached)
    sched = make_scheduler(policy, options, targets, seed)
    engines = setup.replicas * setup.layout.dp_attention  # an engine per attention group (Setup.engine)
    res = simulate_cluster(step, requests, cfg, replicas=engines, router=setup.router, concurrency=concurrency, scheduler=sched)
    return res, cfg


def holds(rep: SimulationReport, percentile: str, tails: tuple[float | None, float | None] | None = None) -> bool:
    """Whether a run is stable and meets its targets at ``percentile`` (``"p50"``, ``"p90"``, ``"p95"`` or ``"p99"``).

    ``tails``: the (TTFT, TPOT) to judge in ms, where the caller states other figures than the report's percentiles (a plan's
    check states the worst of the run's stretches, :meth:`~aicap.sizing.sim.result.SimResult.worst_stretch`).
    """
    if not rep.stable or rep.rejected:
        return False
    values = tails if tails is not None else (rep.ttft_ms.at(percentile), rep.tpot_ms.at(percentile))
    return all(t is None or v is None or v <= t for t, v in zip((rep.slo.ttft_ms, rep.slo.tpot_ms), values, strict=True))


def miss_ratio(rep: SimulationReport, percentile: str) -> float:
    """The worst simulated/target ratio of a run at ``percentile`` (``inf`` when unstable or rejecting)."""
    if not rep.stable or rep.rejected:
        return float("inf")
    ratios = [value / target for target, st in ((rep.slo.ttft_ms, rep.ttft_ms), (rep.slo.tpot_ms, rep.tpot_ms))
              if target and (value := st.at(percentile)) is not None]  # fmt: skip
    return max(ratios, default=0.0)


#: A doubling of replicas that shortens the missed tail by less than this share does not pay: the tail is no queue.
FLAT_TAIL = 0.01


def replicas_for_slo(setup: Setup, requests: Requests, *, policy: str, targets: Targets, percentile: str = "p99",
                     options: PolicyOptions | None = None, concurrency: int | None = None, seed: int = 0,
                     known: SimulationReport | None = None) -> int | None:  # fmt: skip
    """Smallest replica count meeting ``targets`` at ``percentile`` (module docstring).

    ``None`` without targets, when requests are rejected (longer than a replica's KV cache: more
    replicas do not help), when no count up to :data:`MAX_REPLICAS_SEARCHED` holds, or when a doubling
    from 4 replicas up leaves a stable run's missed tail within :data:`FLAT_TAIL` of the last (a target
    below what one request takes alone: the search ran to 4,096 replicas for 11 minutes). ``known`` is
    the run of ``setup`` itself when the caller has it (not simulated again).
    """
    if targets.ttft_ms is None and targets.tpot_ms is None:
        return None
    first = known or run(setup, requests, policy=policy, options=options, targets=targets, concurrency=concurrency, seed=seed)
    if first.rejected:
        return None  # a request longer than a replica's KV cache is rejected however many replicas there are
    cache: dict[int, bool] = {setup.replicas: holds(first, percentile)}
    miss: dict[int, float] = {setup.replicas: miss_ratio(first, percentile)}

    def ok(r: int) -> bool:
        if r not in cache:
            rep = run(replace(setup, replicas=r), requests, policy=policy, options=options, targets=targets, concurrency=concurrency,
                      seed=seed)  # fmt: skip
            cache[r], miss[r] = holds(rep, percentile), miss_ratio(rep, percentile)
        return cache[r]

    hi = 1
    while not ok(hi):
        if hi >= MAX_REPLICAS_SEARCHED:
            return None
        if hi >= 4 and hi // 2 in miss and np.isfinite(miss[hi]) and miss[hi] >= (1.0 - FLAT_TAIL) * miss[hi // 2]:
            return None
        hi *= 2
    lo = hi // 2  # a miss (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class PolicyRow:
    """One policy's run and the replicas it needs to meet the SLO (``None``: no targets, or none up to the limit)."""

    policy: str
    report: SimulationReport
    replicas_for_slo: int | None


def _policy_row(args: tuple[Setup, Requests, str, PolicyOptions, Targets, str, int | None, int, str]) -> PolicyRow:
    setup, requests, policy, options, targets, percentile, concurrency, seed, traffic = args
    rep = run(setup, requests, policy=policy, options=options, targets=targets, concurrency=concurrency, seed=seed, traffic=traffic)
    need = replicas_for_slo(setup, requests, policy=policy, targets=targets, percentile=percentile, options=options,
                            concurrency=concurrency, seed=seed, known=rep)  # fmt: skip
    return PolicyRow(policy, rep, need)


def compare_policies(setup: Setup, requests: Requests, *, policies: tuple[str, ...] = POLICIES, targets: Targets | None = None,
                     percentile: str = "p99", options: PolicyOptions | None = None, concurrency: int | None = None, seed: int = 0,
                     traffic: str = "", jobs: int = 1, on_done: Callable[[], None] | None = None) -> list[PolicyRow]:  # fmt: skip
    """Run the same requests under each policy; with targets, also the replicas each needs to meet them.

    ``edf`` is skipped without a TTFT target. ``jobs > 1`` runs policies in forked processes
    (:func:`~aicap.sizing.sim.fanout.fan_out`); the results are identical to a serial run (every run is deterministic
    for its seed). ``on_done`` is called once per finished policy.
    """
    from aicap.sizing.sim.fanout import fan_out

    tg = targets or Targets()
    todo = [p for p in policies if not (p == "edf" and tg.ttft_ms is None)]
    args = [(setup, requests, p, options or PolicyOptions(), tg, percentile, concurrency, seed, traffic) for p in todo]
    return fan_out(lambda i: _policy_row(args[i]), len(args), jobs, on_done)
