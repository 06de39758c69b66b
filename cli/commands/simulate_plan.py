"""``aicap simulate PLAN``: every deployment of a plan at its planned rates, lengths and targets, and each workload's composed TTFT."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicap.cli.commands.simulate_views import check_misses, per_replica_view, plan_runs_view
from aicap.cli.render import Format, emit, progress
from aicap.cli.state import catalogue, info
from aicap.sizing.core.errors import InfeasibleError, InputError

if TYPE_CHECKING:
    from aicap.sizing.sim.cluster import Router
    from aicap.sizing.sim.replay import PolicyOptions


def simulate_plan_file(plan: Path, *, seed: int, policy: str, router: Router, options: PolicyOptions, fmt: Format,
                       progress_on: bool, jobs: int = 1, per_replica: bool = False) -> None:  # fmt: skip
    """Simulate every deployment of the plan in ``plan`` and print the runs; exit 3 (:class:`InfeasibleError`) where one misses.

    ``per_replica``: the checks of ``size --verify`` instead (:func:`~aicap.sizing.sim.verify.verify`): one replica of each
    deployment alone at its share of the rate, with the workload's whole burstiness.

    Raises
    ------
    InputError
        When ``plan`` is a fleet file, names an engine the catalogue lacks, or has no deployment that carries traffic.
    InfeasibleError
        When a deployment misses its targets or builds an unbounded queue, or a workload's composed TTFT misses.
    """
    from aicap.sizing.plan.fleet_io import check_plan_ids, load_plan
    from aicap.sizing.sim.plan_runs import simulate_plan

    cat = catalogue()
    doc = load_plan(plan)
    if doc is None:
        raise InputError(f"{plan}: a fleet file, not a plan; size it first (aicap size {plan} -f json > plan.json) and simulate the plan")
    check_plan_ids(doc, cat, plan)
    from aicap.sizing.plan.layouts import unstartable_spans

    for line in unstartable_spans(doc, cat):
        info(f"aicap: warning: {line}")
    n = sum(d.requests_per_s > 0 for w in doc.workloads for d in w.deployments)
    if n == 0:  # a run of nothing "holds": a CI gate must not pass on it
        what = "no workloads" if not doc.workloads else "no deployment that carries traffic (every one plans 0 requests/s)"
        raise InputError(f"{plan}: the plan has {what}: nothing to simulate")
    if per_replica:
        from aicap.sizing.sim.verify import verify

        with progress(n, "simulating replicas", enabled=progress_on) as tick:
            checks = verify(doc, cat, seed=seed, jobs=jobs, on_done=tick)
        emit(per_replica_view(checks, seed), fmt)
        if short := [x for x in checks if not x.meets_targets]:
            raise InfeasibleError(f"{plan}: in simulation, a replica alone misses: " + "; ".join(
                f"{x.workload} on {x.instance_type}: {', '.join(check_misses(x)) or 'misses its targets'}" for x in short))  # fmt: skip
        return
    with progress(n, "simulating deployments", enabled=progress_on) as tick:
        runs = simulate_plan(doc, cat, seed=seed, policy=policy, router=router, options=options, on_done=tick, jobs=jobs)
    from aicap.sizing.sim.composed import compose

    samples: dict[str, list[tuple[Any, Any]]] = {}
    for r in runs:
        if r.ttft_s is not None and r.arrival_s is not None:
            samples.setdefault(r.workload, []).append((r.ttft_s, r.arrival_s))
    composed = compose(doc, cat, samples, seed=seed)
    emit(plan_runs_view(runs, composed), fmt)
    if not all(r.holds for r in runs) or not all(c.holds for c in composed):
        from aicap.cli.commands.simulate_checks import missed_targets

        bad = [f"{r.workload} on {r.instance_type}: {', '.join(missed_targets(r.report, r.percentile)) or 'misses its targets'}"
               for r in runs if not r.holds]  # fmt: skip
        bad += [f"{c.workload}: composed TTFT {c.percentile} {c.composed_ms:,.1f} ms > target {c.target_ms:g} ms"
                for c in composed if not c.holds and c.target_ms is not None]  # fmt: skip
        raise InfeasibleError(f"{plan}: in simulation, {'; '.join(bad)}")
