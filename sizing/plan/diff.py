"""What changed between two plans (``aicap diff``): money, devices, layouts, and the latencies promised.

A change that costs nothing can still break a promise, so the headline names the largest latency
change in milliseconds (TTFT or TPOT percentile of any workload, among those that moved by 10% or more:
an embedding's 2 → 17 ms is not the news beside a chat's 708 → 1,460 ms) beside the money. A workload
whose SLO changed (percentile or targets) gets a note: its latency columns may compare different statistics.
"""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.period_plan import PeriodPlan
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.plan import Workload as PlanWorkload

LATENCY_HEADLINE_PCT = 10.0  # a latency change at least this large is named in the headline


def _layout(w: PlanWorkload) -> str:
    """How the workload is served: the engine, then each deployment's replicas, layout, weights, batch cap and instance type.

    ``"engine[ eager][ speculative S]: "`` then one ``"R× TPt·PPp[·EPe][·DPAa] dtype (KV kv) batch B on type"`` per deployment,
    sorted.

    A plan whose money and devices did not move can still serve differently (another engine or weight format, CUDA graphs
    off, a smaller batch cap, tensor instead of pipeline parallel): the layout is what an operator redeploys.
    """
    parts = []
    for d in w.deployments:
        degrees = f"TP{d.tp}·PP{d.pp}" + (f"·EP{d.ep}" if d.ep > 1 else "") + (f"·DPA{d.dp_attention}" if d.dp_attention > 1 else "")
        parts.append(f"{d.replicas}× {degrees} {d.weights_dtype} (KV {d.kv_dtype}) batch {d.max_running} on {d.instance_type}")
    engine = w.engine + (" eager" if w.eager else "") + (f" speculative {w.speculative}" if w.speculative else "")
    return f"{engine}: " + "; ".join(sorted(parts))


def _hardware(w: PlanWorkload) -> str:
    """Devices per device type over the workload's deployments, ``"8×h100-sxm, 3×l4"`` (two deployments of one type add up)."""
    per: dict[str, int] = {}
    for d in w.deployments:
        per[d.hardware] = per.get(d.hardware, 0) + d.devices
    return ", ".join(f"{n}×{hw}" for hw, n in sorted(per.items()))


def _numbers(w: PlanWorkload) -> dict[str, Any]:
    return {
        "layout": _layout(w),
        "instances": round(sum(d.instances for d in w.deployments), 3),
        "devices": sum(d.devices for d in w.deployments),
        "hardware": _hardware(w),
        "usd_per_hour": w.usd_per_hour,
        "usd_per_month": w.usd_per_month,
        "usd_per_million_output_tokens": w.usd_per_million_output_tokens,
        "usd_per_million_requests": w.usd_per_million_requests,
        "requests_per_s": w.requests_per_s,
        "percentile": w.percentile,
        "ttft_target_ms": w.ttft_target_ms,
        "tpot_target_ms": w.tpot_target_ms,
        "ttft_ms": w.ttft_ms,
        "tpot_ms": w.tpot_ms,
        "ttft_margin_pct": w.ttft_margin_pct,
        "tpot_margin_pct": w.tpot_margin_pct,
    }


#: What a workload that is absent on one side has none of: its delta is the other side's figure.
_ADDITIVE = ("instances", "devices", "usd_per_hour", "usd_per_month")


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return round(b - a, 4)
    return None


def _row_delta(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> Any:
    """``b − a`` for one figure; an added or removed workload counts as zero devices, instances and dollars on its absent side."""
    missing = 0 if key in _ADDITIVE else None
    return _delta(missing if a is None else a.get(key), missing if b is None else b.get(key))


def _pct(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and a:
        return round(100.0 * (b - a) / a, 1)
    return None


def _arrivals(rows: list[dict[str, Any]]) -> str:
    """The headline's count of workloads added and removed (``; 1 workload added, 1 removed``), '' when none.

    A renamed workload reads as one of each, at no cost: the headline says so rather than "+$0/month" alone.
    """
    added, removed = (sum(r["status"] == s for r in rows) for s in ("added", "removed"))
    parts = [f"{n} {what}" for n, what in ((added, "added"), (removed, "removed")) if n]
    if not parts:
        return ""
    first = added or removed
    parts[0] = parts[0].replace(" ", f" workload{'s' if first > 1 else ''} ", 1)
    return "; " + ", ".join(parts)


#: A workload's figures that are its share of instances other workloads share (the chargeback, :mod:`.chargeback`).
_SHARES = ("instances", "usd_per_hour", "usd_per_month", "usd_per_million_output_tokens", "usd_per_million_requests")


def _same_but_shares(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two sides of a workload differ only in its share of shared instances: same layout, demand, SLO and latencies."""
    return all(a[k] == b[k] for k in a if k not in _SHARES)


def _shares_instances(plan: Plan, name: str) -> bool:
    """Whether workload ``name`` has a deployment on an instance type that another workload of ``plan`` also deploys on."""
    types = {(w.name, d.instance_type) for w in plan.workloads for d in w.deployments}
    mine = {t for n, t in types if n == name}
    return any(t in mine for n, t in types if n != name)


def diff(base: Plan, head: Plan) -> dict[str, Any]:
    """A JSON-ready diff: headline, totals, then one entry per workload (added, removed, changed, re-split or unchanged).

    ``re-split``: the workload is served exactly as before, on an instance type it shares with another workload, with the same
    catalogue and pricing, and only its cost moved: its share of the shared instances (a workload beside it grew or shrank),
    which a note says. A price change is a change.
    """
    bw = {w.name: _numbers(w) for w in base.workloads}
    hw = {w.name: _numbers(w) for w in head.workloads}
    rows = []
    moves: list[tuple[float, str]] = []
    slo_notes: list[str] = []
    for name in sorted(set(bw) | set(hw)):
        a, b = bw.get(name), hw.get(name)
        status = "added" if a is None else "removed" if b is None else "changed" if a != b else "unchanged"
        if (status == "changed" and a is not None and b is not None and _same_but_shares(a, b)
                and base.catalogue == head.catalogue and (_shares_instances(base, name) or _shares_instances(head, name))):  # fmt: skip
            status = "re-split"
            slo_notes.append(f"'{name}': served as before; its cost moved ({a['usd_per_month']:,.2f} → {b['usd_per_month']:,.2f} $/month) "
                             "because the instances it shares were split among their workloads again (a chargeback share, not a change "
                             "of its own)")  # fmt: skip
        keys = (a or b or {}).keys()
        row: dict[str, Any] = {"workload": name, "status": status, "base": a, "head": b,
                               "delta": {k: _row_delta(a, b, k) for k in keys}}  # fmt: skip
        row["delta_pct"] = {k: _pct((a or {}).get(k), (b or {}).get(k)) for k in ("ttft_ms", "tpot_ms")}
        rows.append(row)
        if a is not None and b is not None:
            for k, label in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")):
                pct = row["delta_pct"][k]
                if pct is not None and abs(pct) >= LATENCY_HEADLINE_PCT:  # the largest move in ms leads (2 → 17 ms is not news)
                    moves.append((abs(b[k] - a[k]), f"{label} {b['percentile']} of '{name}' {a[k]:,.0f} → {b[k]:,.0f} ms ({pct:+,.0f}%)"))
            slo = [f"{what} {a[k] if a[k] is not None else 'none'} → {b[k] if b[k] is not None else 'none'}"
                   for k, what in (("percentile", "percentile"), ("ttft_target_ms", "TTFT target ms"), ("tpot_target_ms", "TPOT target ms"))
                   if a[k] != b[k]]  # fmt: skip
            if a["requests_per_s"] != b["requests_per_s"]:  # the cause of a change the layouts may not show
                demand = [f"{x:g} req/s" if x is not None else "none (throughput objective)"
                          for x in (a["requests_per_s"], b["requests_per_s"])]  # fmt: skip
                slo_notes.append(f"'{name}': its demand changed ({demand[0]} → {demand[1]})")
            if slo:
                same = a["percentile"] == b["percentile"]
                slo_notes.append(f"'{name}': its SLO changed ({', '.join(slo)})"
                                 + ("" if same else "; its latency columns compare different percentiles"))  # fmt: skip
    tb, th = base.totals, head.totals
    delta_m = th.usd_per_month - tb.usd_per_month
    pct = 100.0 * delta_m / tb.usd_per_month if tb.usd_per_month else None
    sign = "+" if delta_m >= 0 else "-"
    headline = f"{sign}${abs(delta_m):,.0f}/month" + (f" ({pct:+.0f}%)" if pct is not None else "")
    if moves:
        headline += "; " + max(moves)[1]
    headline += _arrivals(rows)
    notes = list(slo_notes)
    if base.catalogue.version != head.catalogue.version:
        notes.append(f"plans were made with different catalogues ({base.catalogue.version} → {head.catalogue.version}); "
                     "part of the change may be prices or efficiency factors")  # fmt: skip
    tot_b, tot_h = tb.model_dump(), th.model_dump()
    return {
        "schema_version": 2,
        "headline": headline,
        "totals": {
            "base": tot_b,
            "head": tot_h,
            "delta": {k: _delta(tot_b.get(k), tot_h.get(k)) for k in ("usd_per_hour", "usd_per_month", "devices", "instances")},
            "delta_pct": None if pct is None else round(pct, 2),
        },
        "workloads": rows,
        "notes": notes,
    }


def _period_numbers(plan: PeriodPlan) -> dict[str, dict[str, Any]]:
    """Per workload: replicas, capacity and demand in its busiest hour (the first of most demand), most and fewest replicas, latency.

    The busiest-hour figures come from the same hour: replicas and capacity that occur together. The most replicas
    may run in another hour (capacity ordered one lead time ahead of a rise), so ``max_replicas`` is its own figure.
    """
    out: dict[str, dict[str, Any]] = {}
    promised = {w.name: w for w in plan.workloads}
    for k, name in enumerate(w.name for w in plan.periods[0].workloads) if plan.periods else []:
        demand = [p.workloads[k].demand_requests_per_s for p in plan.periods]
        busiest = plan.periods[max(range(len(demand)), key=lambda h: (demand[h], -h))].workloads[k]
        counts = [sum(p.workloads[k].replicas) for p in plan.periods]
        out[name] = {"busiest_hour_replicas": sum(busiest.replicas), "max_replicas": max(counts), "min_replicas": min(counts),
                     "busiest_hour_capacity_requests_per_s": round(busiest.capacity_requests_per_s, 4),
                     "busiest_hour_demand_requests_per_s": round(busiest.demand_requests_per_s, 4),
                     "hardware": sorted({d.hardware for d in plan.deployments.get(name, [])})}  # fmt: skip
        if name in promised:  # the worst latency of its deployments, at the workload's percentile, and its chargeback
            w = promised[name]
            out[name] |= {"percentile": w.percentile, "ttft_ms": w.ttft_ms, "tpot_ms": w.tpot_ms}
            if w.usd_per_month is not None:
                out[name]["usd_per_month"] = w.usd_per_month
    return out


def _period_delta(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> Any:
    """``b − a`` for one figure of :func:`_period_numbers`: an absent workload has no replicas, capacity or demand, and no latency."""
    missing = None if key in ("ttft_ms", "tpot_ms") else 0  # an absent workload costs nothing: its chargeback is 0
    return _delta(missing if a is None else a.get(key), missing if b is None else b.get(key))


def _reserved(plan: PeriodPlan) -> list[str]:
    """The plan's commitments, one ``"N× type (pricing)"`` each, sorted."""
    return sorted(f"{r.count}× {r.instance_type} ({r.pricing})" for r in plan.totals.reserved)


def diff_periods(base: PeriodPlan, head: PeriodPlan) -> dict[str, Any]:
    """A JSON-ready diff of two plans over demand periods: headline, totals, then one entry per workload.

    Same keys as :func:`diff` where they mean the same (``headline``, ``totals`` with ``base``/``head``/
    ``delta``/``delta_pct``, ``workloads`` with ``status``/``base``/``head``/``delta``, ``notes``); the
    totals are the monthly money, the static-peak comparison and the devices at the busiest hour, and a
    workload's numbers are its busiest hour's replicas, capacity and demand and the most and fewest replicas of any hour
    (an added or removed workload has none of them on its absent side, so its deltas are its own figures, signed), the
    latency it is promised (TTFT and TPOT at its percentile; no delta for an added or removed workload) and its chargeback
    (``usd_per_month``, where the plan states it; an absent workload's is 0).
    """
    bw, hw = _period_numbers(base), _period_numbers(head)
    rows = []
    for name in sorted(set(bw) | set(hw)):
        a, b = bw.get(name), hw.get(name)
        status = "added" if a is None else "removed" if b is None else "changed" if a != b else "unchanged"
        keys = [k for k in dict.fromkeys([*(a or {}), *(b or {})]) if k not in ("hardware", "percentile")]
        rows.append({"workload": name, "status": status, "base": a, "head": b,
                     "delta": {k: _period_delta(a, b, k) for k in keys}})  # fmt: skip
    tb, th = base.totals.model_dump(), head.totals.model_dump()
    delta_m = th["usd_per_month"] - tb["usd_per_month"]
    pct = 100.0 * delta_m / tb["usd_per_month"] if tb["usd_per_month"] else None
    sign = "+" if delta_m >= 0 else "-"
    headline = f"{sign}${abs(delta_m):,.0f}/month" + (f" ({pct:+.0f}%)" if pct is not None else "") + " over the demand profile"
    headline += _arrivals(rows)
    notes = []
    if base.catalogue.version != head.catalogue.version:
        notes.append(f"plans were made with different catalogues ({base.catalogue.version} → {head.catalogue.version}); "
                     "part of the change may be prices or efficiency factors")  # fmt: skip
    if base.hours != head.hours:
        notes.append(f"the plans cover different horizons ({base.hours} and {head.hours} hours); monthly totals still compare")
    rb, rh = _reserved(base), _reserved(head)
    tb["reserved_usd_per_month"] = round(sum(r.usd_per_month for r in base.totals.reserved), 2)
    th["reserved_usd_per_month"] = round(sum(r.usd_per_month for r in head.totals.reserved), 2)
    if rb != rh:
        notes.append(f"reservations change: {', '.join(rb) or 'none'} → {', '.join(rh) or 'none'} "
                     f"(${th['reserved_usd_per_month']:,.0f}/month committed for the term, whatever the demand)")  # fmt: skip
    total_keys = ("usd_per_month", "reserved_usd_per_month", "static_peak_usd_per_month", "on_demand_only_usd_per_month", "peak_devices")
    return {
        "schema_version": 2,
        "kind": "periods",
        "headline": headline,
        "totals": {"base": {k: tb[k] for k in total_keys}, "head": {k: th[k] for k in total_keys},
                   "delta": {k: _delta(tb[k], th[k]) for k in total_keys}, "delta_pct": None if pct is None else round(pct, 2)},
        "reserved": {"base": rb, "head": rh},
        "workloads": rows,
        "notes": notes,
    }  # fmt: skip
