"""What changed between two plans (``aicap diff``), per workload and in total."""

from __future__ import annotations

from typing import Any


def _workload_numbers(w: dict[str, Any]) -> dict[str, Any]:
    deps = w.get("deployments", [])
    return {
        "instances": round(sum(float(d["instances"]) for d in deps), 3),
        "devices": sum(int(d["devices"]) for d in deps),
        "hardware": ", ".join(sorted({f"{d['devices']}×{d['hardware']}" for d in deps})),
        "usd_per_hour": float(w["usd_per_hour"]),
        "usd_per_month": float(w["usd_per_month"]),
        "usd_per_million_output_tokens": w.get("usd_per_million_output_tokens"),
        "ttft_ms": w.get("ttft_ms"),
        "tpot_ms": w.get("tpot_ms"),
    }


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return round(b - a, 4)
    return None


def diff(base: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready diff: totals, then one entry per workload (added, removed or changed)."""
    bw = {w["name"]: _workload_numbers(w) for w in base["workloads"]}
    hw = {w["name"]: _workload_numbers(w) for w in head["workloads"]}
    rows = []
    for name in sorted(set(bw) | set(hw)):
        a, b = bw.get(name), hw.get(name)
        status = "added" if a is None else "removed" if b is None else "changed" if a != b else "unchanged"
        keys = (a or b or {}).keys()
        rows.append({"workload": name, "status": status, "base": a, "head": b,
                     "delta": {k: _delta((a or {}).get(k, 0), (b or {}).get(k, 0)) for k in keys}})  # fmt: skip
    tb, th = base["totals"], head["totals"]
    delta_m = float(th["usd_per_month"]) - float(tb["usd_per_month"])
    pct = 100.0 * delta_m / float(tb["usd_per_month"]) if float(tb["usd_per_month"]) else None
    sign = "+" if delta_m >= 0 else "-"
    headline = f"{sign}${abs(delta_m):,.0f}/month" + (f" ({pct:+.0f}%)" if pct is not None else "")
    notes = []
    if base.get("catalogue", {}).get("version") != head.get("catalogue", {}).get("version"):
        notes.append(f"plans were made with different catalogues ({base.get('catalogue', {}).get('version')} → "
                     f"{head.get('catalogue', {}).get('version')}); part of the change may be prices or efficiency factors")  # fmt: skip
    return {
        "schema_version": 1,
        "headline": headline,
        "totals": {
            "base": tb,
            "head": th,
            "delta": {k: _delta(tb.get(k), th.get(k)) for k in ("usd_per_hour", "usd_per_month", "devices", "instances")},
            "delta_pct": None if pct is None else round(pct, 2),
        },
        "workloads": rows,
        "notes": notes,
    }
