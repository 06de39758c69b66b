"""Tables of a plan and of a plan over demand periods, as ``aicap size`` prints them (the JSON is the plan itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aicap.cli.render import Cents, Table, View, rate_text

if TYPE_CHECKING:
    from aicap.sizing.core.period_plan import PeriodPlan
    from aicap.sizing.core.plan import Deployment as PlanDeployment
    from aicap.sizing.core.plan import Plan, VerifiedMiss
    from aicap.sizing.core.plan import Workload as PlanWorkload


def _dates(dates: tuple[str, str]) -> str:
    """``2026-08-01`` for one price date, ``2026-08-01…2026-09-24`` for a range."""
    return dates[0] if dates[0] == dates[1] else f"{dates[0]}…{dates[1]}"


def run_span(requests: int, span_s: float | None) -> str:
    """What each deployment's simulated run covered, for a verification table's caption."""
    if not span_s:
        return f"{requests:,} simulated requests per deployment"
    span = "an hour" if span_s == 3600 else f"{span_s:,.0f} s"
    return (f"Each deployment's run: one replica alone at its share of the rate with the workload's whole burstiness (no router "
            f"spreads a burst; `aicap simulate PLAN --per-replica` repeats it), {span} of its traffic, stretched to {requests:,} "
            "requests or cut at 200,000")  # fmt: skip


def missed(misses: Sequence[VerifiedMiss], most: int = 3) -> str:
    """The caption's words for the misses that made a verification re-solve: `` (round 1: chat on h100-sxm TP2·PP1: ...)``."""
    if not misses:
        return ""
    said = [f"round {m.round}: {m.workload} on {m.hardware} {layout_label(m.tp, m.pp, m.dp_attention)}" + (f" at hour {m.hour}" if m.hour is not None else "")
            + f", {m.why()}" for m in misses[:most]]  # fmt: skip
    more = f"; {len(misses) - most} more in the JSON's verification.misses" if len(misses) > most else ""
    return f" ({'; '.join(said)}{more})"


def stretched(stretches: int | None) -> str:
    """The caption's words for a verification that judged the worst of its runs' stretches."""
    return f"; each tail the worst of its run's {stretches} consecutive stretches" if stretches and stretches > 1 else ""


def layout_label(tp: int, pp: int, dp_attention: int = 1) -> str:
    """``TP8·PP1``, or ``TP8·PP1 DP-attn 8`` for a replica with data-parallel attention (experts over all tp devices)."""
    return f"TP{tp}·PP{pp}" + (f" DP-attn {dp_attention}" if dp_attention > 1 else "")


def _month(d: PlanDeployment, hours: float) -> float:
    """A deployment's USD a month: the plan's figure, else (a plan written before it had one) its hourly cost times ``hours``."""
    return d.usd_per_month if d.usd_per_month is not None else d.usd_per_hour * hours


def _unit_price(w: PlanWorkload) -> float | str | None:
    """The ``$/1M out tok`` cell: per output token, or an encoder's per request (it emits no tokens; a prefill pool shows none)."""
    if w.usd_per_million_output_tokens is not None or w.disaggregated_role is not None or w.usd_per_million_requests is None:
        return None if w.usd_per_million_output_tokens is None else Cents(w.usd_per_million_output_tokens)  # 3.00, not 3
    return f"{w.usd_per_million_requests:,.2f} per 1M requests"


def plan_view(plan: Plan) -> View:
    """Tables of a plan: deployments per workload, fleet instances, alternatives; warnings as notes."""
    rows = []
    hours = plan.hours_per_month
    for w in plan.workloads:
        band = w.error_band_pct
        for d in w.deployments:
            ttft = f"{d.ttft_ms:,.0f}" + (f" ±{band['ttft']:.0f}%" if "ttft" in band else "")
            tpot = "-" if d.tpot_ms is None else f"{d.tpot_ms:,.1f}" + (f" ±{band['tpot']:.0f}%" if "tpot" in band else "")
            rows.append([w.name, w.model, d.instance_type, f"{d.devices}×{d.hardware}", layout_label(d.tp, d.pp, d.dp_attention), d.replicas,
                         d.weights_dtype,
                         f"{rate_text(d.requests_per_s)}/{rate_text(d.capacity_requests_per_s)}", ttft, tpot, Cents(d.usd_per_hour),
                         round(_month(d, hours)),
                         _unit_price(w)])  # fmt: skip
    t = plan.totals
    pcts = sorted({w.percentile for w in plan.workloads})
    pct = pcts[0] if len(pcts) == 1 else "at each workload's percentile"
    cat = plan.catalogue
    solver = "" if plan.solver.status == "optimal" else f", best found within {plan.solver.gap_pct:.2g}% of optimal"
    engines = ", ".join(sorted({w.engine + (" (eager: no CUDA graphs)" if w.eager else "") for w in plan.workloads}))
    spec = "; ".join(f"{w.name}: {w.speculative}" for w in plan.workloads if w.speculative)
    engines += f". Speculative decoding: {spec}" if spec else ""
    flat = [[w.name, w.model, d.instance_type, d.hardware, d.devices, d.tp, d.pp, d.ep, d.dp_attention, d.replicas, d.weights_dtype,
             d.kv_dtype, w.percentile,
             d.requests_per_s, d.capacity_requests_per_s, d.ttft_ms, w.error_band_pct.get("ttft"), d.tpot_ms,
             w.error_band_pct.get("tpot") if d.tpot_ms is not None else None, d.usd_per_hour, round(_month(d, hours), 2),
             w.usd_per_million_output_tokens, w.usd_per_million_requests] for w in plan.workloads for d in w.deployments]  # fmt: skip
    csv = Table("Plan deployments", ["workload", "model", "instance_type", "hardware", "devices", "tp", "pp", "ep", "dp_attention", "replicas",
                                     "weights_dtype",
                                     "kv_dtype", "percentile", "requests_per_s", "capacity_requests_per_s", "ttft_ms", "ttft_band_pct",
                                     "tpot_ms", "tpot_band_pct", "usd_per_hour", "usd_per_month",
                                     "workload_usd_per_million_output_tokens", "workload_usd_per_million_requests"], flat)  # fmt: skip
    tables = [
        Table(f"Plan ({plan.objective} objective, {cat.pricing} prices of {_dates(plan.catalogue.price_dates)}{solver})",
              ["workload", "model", "instance", "devices", "layout", "replicas", "dtype", "req/s load/capacity", f"TTFT ms ({pct})",
               f"TPOT ms ({pct})", "$/hour", "$/month", "$/1M out tok"], rows,
              caption=f"Fleet: {t.instances} instance{'s' if t.instances != 1 else ''}, {t.devices} device{'s' if t.devices != 1 else ''} ({t.devices_used} used), ${t.usd_per_hour:,.2f}/hour, "
                      f"${t.usd_per_month:,.0f}/month. Engine: {engines}. "
                      + ("A disaggregated decode pool's $/1M out tok counts both its pools. "
                         if any(w.disaggregated_role == "decode" for w in plan.workloads) else "")
                      + "$/1M out tok is the workload's, over all its deployments. TTFT/TPOT are percentiles at the planned load"
                      + (" (verified: the larger of the model's and the simulation's)" if plan.verification is not None else "")
                      + "; ± = "
                      "90th-percentile error of the performance model against published measurements under load "
                      "(aicap validate --set server)."),
        Table("Instances", ["instance", "cloud", "hardware", "count", "devices used", "$/hour (all)", "price date"],
              [[i.instance_type, i.cloud, i.hardware, i.count, f"{i.devices_used}/{i.devices}", Cents(i.usd_per_hour), i.price_date]
               for i in plan.instances]),
    ]  # fmt: skip
    if plan.alternatives:
        tables.append(Table("Best alternative per device type", ["hardware", "$/month", "delta $/month", "why it lost"],
                            [[a.hardware, a.usd_per_month, a.delta_usd_per_month, a.why] for a in plan.alternatives]))  # fmt: skip
    v = plan.verification
    if v is not None:

        def ms(x: float | None) -> str:
            return "-" if x is None else f"{x:,.1f}"

        resolved = f"; capacity added and re-solved {v.resolves}×{missed(v.misses)}" if v.resolves else ""
        worst = stretched(v.stretches)
        tables.append(Table(
            "Verified by simulation (modelled / simulated / target, ms at the workload's percentile; the plan states the larger of "
            "modelled and simulated)",
            ["workload", "percentile", "TTFT modelled", "TTFT simulated", "TTFT target", "TPOT modelled", "TPOT simulated", "TPOT target",
             "holds"],
            [[x.workload, x.percentile, ms(x.promised_ttft_ms), ms(x.simulated_ttft_ms), ms(x.ttft_target_ms), ms(x.promised_tpot_ms),
              ms(x.simulated_tpot_ms), ms(x.tpot_target_ms), "yes" if x.holds else "NO"] for x in v.workloads],
            caption=f"{run_span(v.requests_per_deployment, v.span_s)}, seed {v.seed}{worst}{resolved}.",
        ))  # fmt: skip
    return View(plan.to_dict(), tables, [f"warning: {w}" for w in plan.warnings], csv=csv)


def period_plan_view(plan: PeriodPlan) -> View:
    """Tables of a plan over demand periods: the hours, the deployments, and the totals."""
    names = [w.name for w in plan.periods[0].workloads] if plan.periods else []
    rows = []
    for p in plan.periods:
        inst = ", ".join(f"{i.count}× {i.instance_type} ({i.pricing})" for i in p.instances)
        cells = [f"{rate_text(w.demand_requests_per_s)}/{rate_text(w.capacity_requests_per_s)} ({sum(w.replicas)})" for w in p.workloads]
        rows.append([p.start_hour, p.usd_per_hour, *cells, inst])
    deps = [[d.workload, d.instance_type, f"{d.devices}×{d.hardware}", layout_label(d.tp, d.pp, d.dp_attention), d.weights_dtype,
             d.capacity_requests_per_s,
             d.ttft_ms, d.tpot_ms] for ds in plan.deployments.values() for d in ds]  # fmt: skip
    t = plan.totals
    od = "this plan (priced on demand only)"  # it read '-'
    if t.on_demand_only_usd_per_month is not None:
        od = f"${t.on_demand_only_usd_per_month:,.0f}/month"
    elif plan.catalogue.pricing.split("/") != ["on_demand"]:
        od = "not sized (on_demand is not among the plan's pricing models)"
    reserved = ", ".join(f"{r.count}× {r.instance_type} ({r.pricing}, ${r.usd_per_month:,.0f}/month)" for r in t.reserved) or "none"
    total_rows: list[list[object]] = [
        ["this plan", f"${t.usd_per_month:,.0f}/month"],
        ["static plan sized for each workload's peak", f"${t.static_peak_usd_per_month:,.0f}/month (this plan saves {t.savings_vs_static_pct:.1f}%)"],
        ["the same profile on on-demand only", od],
        ["reserved commitment (whole horizon)", reserved],
        ["most devices in any hour", t.peak_devices],
        ["lead time", f"{plan.lead_time_min:,.1f} min: each hour's capacity covers the next {plan.lead_periods} hour(s)' demand too"],
        ["solver", f"{plan.solver.status}, within {plan.solver.gap_pct:.3g}% of the lower bound"],
    ]  # fmt: skip
    tables = [
        Table(f"Plan by hour ({'/'.join(plan.pricing_models)} prices of {_dates(plan.catalogue.price_dates)}; "
              "requests/s demand/capacity and replicas per workload)",
              ["hour", "$/hour", *names, "instances"], rows),
        Table("Deployments used (TTFT and TPOT at the workload's percentile with each replica at its capacity)",
              ["workload", "instance", "devices", "layout", "dtype", "req/s per replica", "TTFT ms", "TPOT ms"], deps),
        *([Table("Workloads (promised: the worst deployment at one replica's capacity; $/month: its share of each hour's instances, "
                 "by the devices it holds)",
                 ["workload", "pctl", "TTFT ms", "TTFT target", "TPOT ms", "TPOT target", "$/month"],
                 [[w.name, w.percentile, w.ttft_ms, w.ttft_target_ms, w.tpot_ms, w.tpot_target_ms, w.usd_per_month]
                  for w in plan.workloads])] if plan.workloads else []),
        Table("Autoscaling (scale on request rate; --autoscaler FILE writes KEDA ScaledObjects)",
              ["workload", "deployment", "instance", "req/s per replica", "in flight per replica", "min replicas", "max replicas"],
              [[a.workload, a.deployment, a.instance_type, a.requests_per_s_per_replica, a.in_flight_per_replica, a.min_replicas,
                a.max_replicas] for a in plan.autoscaling]),
        Table("Totals", ["", "value"], total_rows, left=True),
    ]  # fmt: skip
    if plan.verification is not None:
        v = plan.verification
        resolved = f"; capacity derated and re-planned {v.resolves}×{missed(v.misses)}" if v.resolves else ""
        tables.append(Table("Verified by simulation at each deployment's busiest hour (one replica; ms at the workload's percentile)",
                            ["workload", "deployment", "instance", "hour", "req/s per replica", "TTFT simulated", "TTFT target",
                             "TPOT simulated", "TPOT target", "holds"],
                            [[c.workload, c.deployment, c.instance_type, c.hour, c.requests_per_s_per_replica, c.simulated_ttft_ms,
                              c.ttft_target_ms, c.simulated_tpot_ms, c.tpot_target_ms, "yes" if c.holds else "NO"]
                             for c in v.checks],
                            caption=f"{run_span(v.requests_per_deployment, v.span_s)}, seed {v.seed}{stretched(v.stretches)}{resolved}."))  # fmt: skip
    # CSV: one row per hour, workload and deployment, one value a cell (the hour table packs several into a cell).
    # The workload's chargeback (a monthly figure) is repeated on each of its rows, and the hour's instances of the
    # deployment's type under each pricing model (shared by every deployment on that type) on each of theirs.
    usd = {w.name: w.usd_per_month for w in plan.workloads}
    dated = {i.instance_type: i.price_date for p in plan.periods for i in p.instances}
    held = [{(i.instance_type, i.pricing): i.count for i in p.instances} for p in plan.periods]
    csv_rows = [[p.start_hour, p.usd_per_hour, w.name, w.demand_requests_per_s, w.capacity_requests_per_s, k, dep.instance_type,
                 dep.hardware, n, usd.get(w.name), dated.get(dep.instance_type),
                 *(held[h].get((dep.instance_type, m), 0) for m in plan.pricing_models)]
                for h, p in enumerate(plan.periods) for w in p.workloads for k, n in enumerate(w.replicas)
                for dep in (plan.deployments[w.name][k],)]  # fmt: skip
    # One row per hour, workload and deployment; the hour's whole-fleet cost and its instances of the row's type (all workloads
    # together) repeat on every row that shares them, and say so in their names (summing them over rows counts them twice).
    csv = Table("Plan by hour", ["hour", "fleet_usd_per_hour", "workload", "demand_requests_per_s", "capacity_requests_per_s",
                                 "deployment", "instance_type", "hardware", "replicas", "workload_usd_per_month", "price_date",
                                 *(f"{m}_instances_of_type" for m in plan.pricing_models)], csv_rows)  # fmt: skip
    return View(plan.to_dict(), tables, notes=[f"note: {w}" for w in plan.warnings], csv=csv)
