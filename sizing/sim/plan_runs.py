"""``aicap simulate PLAN``: every deployment of a plan simulated with all its replicas behind a router at its planned load.

Where :func:`~aicap.sizing.sim.verify.verify` checks one replica of each deployment at its share of the traffic, arriving at
random, this runs the whole deployment (its replicas, the router, the workload's lengths and burstiness) for an hour of its
traffic (:func:`~aicap.sizing.sim.verify.run_requests`), on the deployment's own seed
(:func:`~aicap.sizing.sim.verify.deployment_seed`), so the deployments' runs may share out over processes
(:func:`~aicap.sizing.sim.fanout.fan_out`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.sim.arrivals import ArrivalKind
from aicap.sizing.sim.cluster import Router
from aicap.sizing.sim.replay import PolicyOptions, holds, planned_setup, run, run_detailed
from aicap.sizing.sim.report import SimulationReport, Targets
from aicap.sizing.sim.traffic import Lengths, TrafficSpec
from aicap.sizing.sim.verify import DEFAULT_REQUESTS, MAX_PLAN_REQUESTS, SPAN_S, deployment_seed, lengths, run_requests


@dataclass(frozen=True)
class DeploymentRun:
    """One deployment of a plan simulated with all its replicas at its planned load."""

    workload: str
    instance_type: str
    report: SimulationReport
    holds: bool
    ttft_s: np.ndarray | None = None  # per-request TTFT and arrivals, kept for a disaggregated pool (sizing.sim.composed)
    arrival_s: np.ndarray | None = None
    percentile: str = "p99"  # the workload's: what ``holds`` was checked at
    router: str = "round_robin"
    planned_requests_per_s: float | None = None  # the plan's rate for the deployment (the run's own draw is setup.rate_per_s)


def simulate_plan(plan: Plan, cat: CatalogueLike, *, requests_per_replica: int = DEFAULT_REQUESTS, span_s: float = SPAN_S, seed: int = 0,
                  policy: str = "fcfs", router: Router = "round_robin", options: PolicyOptions | None = None,
                  on_done: Callable[[], None] | None = None, jobs: int = 1) -> list[DeploymentRun]:  # fmt: skip
    """Simulate every loaded deployment of ``plan``: all its replicas behind ``router`` at its planned rate.

    Each deployment gets ``requests_per_replica × replicas`` requests, or more to span ``span_s`` seconds of its traffic
    (at most :data:`MAX_PLAN_REQUESTS`: :func:`run_requests`), with its workload's length mix and burstiness, an engine whose
    ``max_num_seqs`` is the plan's ``max_running``, and the workload's targets; ``holds`` is
    :func:`~aicap.sizing.sim.replay.holds` at the workload's percentile. ``on_done`` is called after
    each deployment's run. ``jobs``: processes the deployments' runs may use
    (:func:`~aicap.sizing.sim.fanout.fan_out`; the runs are the same whatever it is).

    Raises
    ------
    InputError
        For policy ``edf`` where a workload has no TTFT target (its deadlines).
    """
    from aicap.sizing.sim.fanout import fan_out

    loaded = [(pw, d) for pw in plan.workloads for d in pw.deployments if d.requests_per_s > 0]
    inputs = {w.name: w for w in plan.inputs.workloads}
    for pw, _ in loaded:
        if policy == "edf" and inputs[pw.name].slo.ttft_ms is None:  # its deadlines are the workloads' TTFT targets
            raise InputError(f"policy 'edf' orders requests by their TTFT deadline and workload '{pw.name}' of the plan has no TTFT "
                             "target (slo.ttft_ms): choose another policy, or size the plan with one")  # fmt: skip

    def one(i: int) -> DeploymentRun:
        pw, d = loaded[i]
        w = inputs[pw.name]
        model = cat.model(w.model)
        decoder = model.kind == "decoder"
        drafting = speculative_for(cat, model, w.speculative, f"workload '{w.name}': speculative")
        layout = engine_for(cat, pw.engine, eager=pw.eager).planned(cat, model, d, drafting)
        s = deployment_seed(seed, w.name, d)
        kind: ArrivalKind = "constant" if w.arrival_cv == 0 else "poisson" if w.arrival_cv == 1 else "gamma"
        spec = TrafficSpec(run_requests(d.requests_per_s, min(requests_per_replica * d.replicas, MAX_PLAN_REQUESTS), span_s),
                           lengths(w.input_tokens), lengths(w.output_tokens) if decoder else Lengths.fixed(0), rate_per_s=d.requests_per_s,
                           arrival=kind, cv=w.arrival_cv, seed=s, cached_share=w.prefix_cached_share if decoder else 0.0)  # fmt: skip
        tpot_target = w.slo.tpot_ms if decoder else None
        targets = Targets(ttft_ms=w.slo.ttft_ms, tpot_ms=tpot_target,
                          percentile=pw.percentile if w.slo.ttft_ms is not None or tpot_target is not None else None)  # fmt: skip
        setup = planned_setup(layout, cat, d.instance_type, w.decode_context if decoder else None, replicas=d.replicas, router=router,
                              max_num_seqs=max(d.max_running, 1))  # fmt: skip
        trace = spec.build()
        if w.disaggregated_role is None:
            rep = run(setup, trace, policy=policy, options=options, targets=targets, seed=s, traffic=f"plan workload {pw.name}")
            return DeploymentRun(pw.name, d.instance_type, rep, holds(rep, pw.percentile), percentile=pw.percentile, router=router,
                                 planned_requests_per_s=d.requests_per_s)  # fmt: skip
        rep, res, _ = run_detailed(
            setup, trace, policy=policy, options=options, targets=targets, seed=s, traffic=f"plan workload {pw.name}"
        )
        return DeploymentRun(pw.name, d.instance_type, rep, holds(rep, pw.percentile), res.ttft_s, res.arrival_s, pw.percentile, router,
                             d.requests_per_s)  # fmt: skip

    return fan_out(one, len(loaded), jobs, on_done)
