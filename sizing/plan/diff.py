"""What changed between two plans (``aicap diff``): money, devices, and the latencies promised.

A change that costs nothing can still break a promise, so the headline names the largest latency
change (TTFT or TPOT percentile of any workload, when it moved by 10% or more) beside the money.
"""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.plan import Plan
from aicap.sizing.core.plan import Workload as PlanWorkload

LATENCY_HEADLINE_PCT = 10.0  # a latency change at least this large is named in the headline


def _numbers(w: PlanWorkload) -> dict[str, Any]:
    return {
        "instances": round(sum(d.instances for d in w.deployments), 3),
        "devices": sum(d.devices for d in w.deployments),
        "hardware": ", ".join(sorted({f"{d.devices}×{d.hardware}" for d in w.deployments})),
        "usd_per_hour": w.usd_per_hour,
        "usd_per_month": w.usd_per_month,
        "usd_per_million_output_tokens": w.usd_per_million_output_tokens,
        "percentile": w.percentile,
        "ttft_ms": w.ttft_ms,
        "tpot_ms": w.tpot_ms,
        "ttft_margin_pct": w.ttft_margin_pct,
        "tpot_margin_pct": w.tpot_margin_pct,
    }


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return round(b - a, 4)
    return None


def _pct(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and a:
        return round(100.0 * (b - a) / a, 1)
    return None


def diff(base: Plan, head: Plan) -> dict[str, Any]:
    """A JSON-ready diff: headline, totals, then one entry per workload (added, removed or changed)."""
    bw = {w.name: _numbers(w) for w in base.workloads}
    hw = {w.name: _numbers(w) for w in head.workloads}
    rows = []
    moves: list[tuple[float, str]] = []
    for name in sorted(set(bw) | set(hw)):
        a, b = bw.get(name), hw.get(name)
        status = "added" if a is None else "removed" if b is None else "changed" if a != b else "unchanged"
        keys = (a or b or {}).keys()
        row: dict[str, Any] = {"workload": name, "status": status, "base": a, "head": b,
                               "delta": {k: _delta((a or {}).get(k), (b or {}).get(k)) for k in keys}}  # fmt: skip
        row["delta_pct"] = {k: _pct((a or {}).get(k), (b or {}).get(k)) for k in ("ttft_ms", "tpot_ms")}
        rows.append(row)
        if a is not None and b is not None:
            for k, label in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")):
                pct = row["delta_pct"][k]
                if pct is not None and abs(pct) >= LATENCY_HEADLINE_PCT:
                    moves.append((abs(pct), f"{label} {b['percentile']} of '{name}' {a[k]:,.0f} → {b[k]:,.0f} ms ({pct:+,.0f}%)"))
    tb, th = base.totals, head.totals
    delta_m = th.usd_per_month - tb.usd_per_month
    pct = 100.0 * delta_m / tb.usd_per_month if tb.usd_per_month else None
    sign = "+" if delta_m >= 0 else "-"
    headline = f"{sign}${abs(delta_m):,.0f}/month" + (f" ({pct:+.0f}%)" if pct is not None else "")
    if moves:
        headline += "; " + max(moves)[1]
    notes = []
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
