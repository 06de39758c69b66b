"""Play a plan over demand periods through the simulator at each deployment's busiest hour.

In every hour a workload's demand is split over its deployments in proportion to their capacity (the
share a capacity-aware router gives them), so one replica of deployment ``k`` carries
``λ_wh · q_k / Σ_j q_j r_jh`` requests/s in hour ``h``. The busiest such hour of each deployment is
simulated for one replica (its engine, the workload's lengths and burstiness, the plan's layout and
formats), and the deployment holds when the queue is stable and the TTFT and TPOT targets are met at
the workload's percentile there, the worst of the run's three stretches (as a static plan's check judges
its tails: :data:`~aicap.sizing.sim.verify.STRETCHES`). Lighter hours carry less per replica and are not
simulated.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.fleet import PERCENTILES, Fleet
from aicap.sizing.core.period_plan import PeriodCheck, PeriodPlan, PeriodVerification
from aicap.sizing.core.plan import VerifiedMiss
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.plan.sizer import deployment_key, without_bursty_warning
from aicap.sizing.sim.arrivals import ArrivalKind
from aicap.sizing.sim.replay import holds, planned_setup, run_detailed
from aicap.sizing.sim.report import Targets
from aicap.sizing.sim.traffic import Lengths, TrafficSpec
from aicap.sizing.sim.verify import (
    DEFAULT_REQUESTS,
    MAX_RESOLVES,
    SPAN_S,
    STRETCHES,
    derate_factor,
    derate_round,
    lengths,
    miss,
    run_requests,
)


@dataclass(frozen=True)
class BusiestHour:
    """One deployment simulated at its busiest hour (milliseconds at the workload's percentile)."""

    workload: str
    deployment: int
    instance_type: str
    hour: int
    requests_per_s_per_replica: float
    ttft_simulated_ms: float | None
    tpot_simulated_ms: float | None
    ttft_target_ms: float | None
    tpot_target_ms: float | None
    holds: bool
    stable: bool = True
    rejected: int = 0  # requests one replica could not hold at all (longer than a virtual engine's KV cache)


def _ms(seconds: float) -> float | None:
    """Seconds as milliseconds rounded as a run's report rounds them; ``None`` for no value (``nan``)."""
    return None if math.isnan(seconds) else float(f"{seconds * 1e3:.5g}")


def verify_periods(plan: PeriodPlan, fleet: Fleet, cat: CatalogueLike, *, requests: int = DEFAULT_REQUESTS, span_s: float = SPAN_S,
                   seed: int = 0, jobs: int | None = 1) -> list[BusiestHour]:  # fmt: skip
    """Simulate every deployment of ``plan`` at its busiest hour (module docstring).

    Each run has that hour's rate times ``span_s`` requests (an hour by default), within ``requests`` and
    :data:`~aicap.sizing.sim.verify.MAX_PLAN_REQUESTS` (:func:`~aicap.sizing.sim.verify.run_requests`). ``jobs``: processes
    the runs may use (``None``: every available core; :func:`~aicap.sizing.sim.fanout.fan_out`), the checks the same
    whatever it is.
    """
    from aicap.sizing.sim.fanout import fan_out

    todo: list[tuple[int, int, float, int]] = []  # (workload, deployment, per-replica rate at its busiest hour, that hour)
    for wi, w in enumerate(fleet.workloads):
        deps = plan.deployments[w.name]
        for k, d in enumerate(deps):
            best, hour = 0.0, -1
            for p in plan.periods:
                pw = p.workloads[wi]
                total = sum(dep.capacity_requests_per_s * n for dep, n in zip(deps, pw.replicas, strict=True))
                if pw.replicas[k] > 0 and total > 0:
                    per_replica = pw.demand_requests_per_s * d.capacity_requests_per_s / total
                    if per_replica > best:
                        best, hour = per_replica, p.start_hour
            if hour >= 0:
                todo.append((wi, k, best, hour))
    return fan_out(lambda i: _busiest(plan, fleet, cat, *todo[i], requests=requests, span_s=span_s, seed=seed), len(todo), jobs)


def _busiest(plan: PeriodPlan, fleet: Fleet, cat: CatalogueLike, wi: int, k: int, best: float, hour: int, *, requests: int,
             span_s: float, seed: int) -> BusiestHour:  # fmt: skip
    """Deployment ``k`` of workload ``wi`` simulated for one replica at ``best`` requests/s, its busiest hour's load."""
    w = fleet.workloads[wi]
    d = plan.deployments[w.name][k]
    model = cat.model(w.model)
    decoder = model.kind == "decoder"
    engine = engine_for(cat, fleet.constraints.engine_of(w), eager=w.eager)
    speculative = speculative_for(cat, model, w.speculative, f"workload '{w.name}': speculative")
    layout = engine.planned(cat, model, d, speculative)
    kind: ArrivalKind = "constant" if w.arrival_cv == 0 else "poisson" if w.arrival_cv == 1 else "gamma"
    # A stable hash of what the deployment is (as verify.deployment_seed): its traffic does not change with the others.
    dpa = f"dpa{d.dp_attention}" if d.dp_attention > 1 else ""
    s = seed + 3 * zlib.crc32(f"{w.name}/{d.instance_type}/{d.hardware}/tp{d.tp}pp{d.pp}{dpa}/{d.weights_dtype}/{d.kv_dtype}".encode())
    spec = TrafficSpec(run_requests(best, requests, span_s), lengths(w.input_tokens),
                       lengths(w.output_tokens) if decoder else Lengths.fixed(0), rate_per_s=best, arrival=kind, cv=w.arrival_cv,
                       seed=s, cached_share=w.prefix_cached_share if decoder else 0.0)  # fmt: skip
    tpot_target = w.slo.tpot_ms if decoder else None
    targets = Targets(ttft_ms=w.slo.ttft_ms, tpot_ms=tpot_target,
                      percentile=w.slo.percentile if w.slo.ttft_ms is not None or tpot_target is not None else None)  # fmt: skip
    setup = planned_setup(layout, cat, d.instance_type, w.decode_context if decoder else None)  # priced as verify() prices
    rep, res, _ = run_detailed(setup, spec.build(), targets=targets, seed=s, traffic=f"{w.name} at hour {hour}")
    q = PERCENTILES[w.slo.percentile]
    # the worst of the run's stretches, as a static plan's check states and judges its tails (verify.STRETCHES)
    ttft = _ms(res.worst_stretch("ttft", q, STRETCHES))
    tpot = _ms(res.worst_stretch("tpot", q, STRETCHES)) if decoder else None
    ok = holds(rep, w.slo.percentile, (ttft, tpot))
    return BusiestHour(w.name, k, d.instance_type, hour, round(best, 6), ttft, tpot, targets.ttft_ms, targets.tpot_ms, ok, rep.stable,
                       rep.rejected)  # fmt: skip


def size_periods_verified(fleet: Fleet, cat: CatalogueLike, *, requests: int = DEFAULT_REQUESTS, span_s: float = SPAN_S, seed: int = 0,
                          max_resolves: int = MAX_RESOLVES, jobs: int | None = None) -> PeriodPlan:  # fmt: skip
    """Plan ``fleet`` over its periods, simulate every deployment at its busiest hour, derate misses and re-plan.

    Like :func:`aicap.sizing.sim.verify.size_verified`: a deployment that misses a target (or whose
    queue is unstable) has its layout's capacity multiplied by the inverse of its worst
    simulated/target ratio, clipped to ``[DERATE_FLOOR, DERATE_CEILING]`` and compounding, and the
    fleet is re-planned, at most ``max_resolves`` times. The plan carries a
    :class:`~aicap.sizing.core.period_plan.PeriodVerification`.
    """
    from aicap.sizing.plan.periods import size_periods

    derate: dict[str, float] = {}
    resolves = 0
    missed: list[VerifiedMiss] = []
    while True:
        plan = size_periods(fleet, cat, derate=derate, jobs=jobs)
        checks = verify_periods(plan, fleet, cat, requests=requests, span_s=span_s, seed=seed, jobs=jobs)
        misses = [c for c in checks if not c.holds]
        if not misses or resolves >= max_resolves:
            break
        keyed = []
        for c in misses:
            d = plan.deployments[c.workload][c.deployment]
            f = derate_factor(
                c.stable,
                (c.ttft_simulated_ms, c.ttft_target_ms),
                (c.tpot_simulated_ms, c.tpot_target_ms),
                load_share=c.requests_per_s_per_replica / d.capacity_requests_per_s,
            )
            f = 0.0 if c.rejected else f  # requests it cannot hold: more replicas would not help, the layout is dropped
            keyed.append((deployment_key(c.workload, d.hardware, d.tp, d.pp, d.dp_attention), f))
            missed.append(miss(resolves + 1, c.workload, d.hardware, d.tp, d.pp, d.dp_attention, c.hour, c.ttft_simulated_ms,
                               c.ttft_target_ms, c.tpot_simulated_ms, c.tpot_target_ms, c.stable, c.rejected))  # fmt: skip
        derate_round(derate, keyed)
        resolves += 1
    docs = [PeriodCheck(workload=c.workload, deployment=c.deployment, instance_type=c.instance_type, hour=c.hour,
                        requests_per_s_per_replica=c.requests_per_s_per_replica, simulated_ttft_ms=c.ttft_simulated_ms,
                        ttft_target_ms=c.ttft_target_ms, simulated_tpot_ms=c.tpot_simulated_ms, tpot_target_ms=c.tpot_target_ms,
                        holds=c.holds) for c in checks]  # fmt: skip
    verification = PeriodVerification(requests_per_deployment=requests, span_s=span_s, seed=seed, stretches=STRETCHES, resolves=resolves,
                                      derated=dict(sorted(derate.items())), misses=missed,
                                      holds=all(c.holds for c in checks), checks=docs)  # fmt: skip
    plan = _with_simulated_tails(plan, fleet, checks)
    return plan.model_copy(update={"verification": verification, "warnings": without_bursty_warning(plan.warnings)})


def _with_simulated_tails(plan: PeriodPlan, fleet: Fleet, checks: list[BusiestHour]) -> PeriodPlan:
    """``plan`` with each simulated deployment's TTFT and TPOT the larger of the model's and its busiest hour's tail.

    As :func:`aicap.sizing.sim.verify.size_verified` states a static plan's: the label is the statistic. The workloads'
    promises and the autoscaling's in-flight requests follow; the checks keep the simulated figures.
    """
    from aicap.sizing.plan.periods import _autoscaling, promises

    sim = {(c.workload, c.deployment): c for c in checks}
    deps = {}
    for name, mine in plan.deployments.items():
        out = []
        for k, d in enumerate(mine):
            c = sim.get((name, k))
            ttft, tpot = d.ttft_ms, d.tpot_ms
            if c is not None and c.ttft_simulated_ms is not None and math.isfinite(c.ttft_simulated_ms):
                ttft = max(ttft, round(c.ttft_simulated_ms, 3))
            if c is not None and tpot is not None and c.tpot_simulated_ms is not None and math.isfinite(c.tpot_simulated_ms):
                tpot = max(tpot, round(c.tpot_simulated_ms, 3))
            out.append(d.model_copy(update={"ttft_ms": ttft, "tpot_ms": tpot}))
        deps[name] = out
    usd = {w.name: w.usd_per_month for w in plan.workloads}
    return plan.model_copy(update={"deployments": deps, "workloads": promises(fleet, deps, usd),
                                   "autoscaling": _autoscaling(fleet, deps, plan.periods)})  # fmt: skip
