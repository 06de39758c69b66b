"""Budget and policy gates for CI (``aicap check``).

A policy file (schema version 1; ``aicap schema policy`` prints its JSON Schema) sets limits, each with
an ``action`` of ``warn`` or ``fail``::

    schema_version: 1
    limits:
      max_usd_per_month: {value: 60000, action: fail}
      max_usd_per_month_per_workload: {value: 30000, action: warn}
      max_increase_usd_per_month: {value: 5000, action: fail}
      max_increase_pct: {value: 10, action: warn}
      max_devices: {value: {h100-sxm: 32}, action: fail}
      required_percentile: {value: p99, action: fail}
      allowed_clouds: {value: [aws, gcp], action: fail}
      allowed_hardware: {value: [h100-sxm, l40s], action: warn}

:func:`evaluate` returns one row per limit with pass/warn/fail and the numbers behind it; the verdict is
``fail`` when any ``fail`` limit is breached, else ``warn`` when any limit is breached, else ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.fleet import Percentile

V = TypeVar("V")
Action = Literal["warn", "fail"]
_ORDER = {"p50": 0, "p90": 1, "p95": 2, "p99": 3}


class Limit(BaseModel, Generic[V]):
    """One limit: its threshold and what a breach does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: V
    action: Action = "fail"


class Limits(BaseModel):
    """Every limit a policy may set; unset limits are not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_usd_per_month: Limit[float] | None = None
    max_usd_per_month_per_workload: Limit[float] | None = None
    max_increase_usd_per_month: Limit[float] | None = None
    max_increase_pct: Limit[float] | None = None
    max_devices: Limit[dict[str, int]] | None = None
    required_percentile: Limit[Percentile] | None = None
    allowed_clouds: Limit[list[str]] | None = None
    allowed_hardware: Limit[list[str]] | None = None


class Policy(BaseModel):
    """A policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    limits: Limits = Field(default_factory=Limits)


@dataclass(frozen=True)
class Row:
    """The outcome of one limit."""

    limit: str
    action: str
    status: str
    actual: Any
    threshold: Any
    detail: str


def _row(name: str, lim: Limit[Any], breached: bool, actual: Any, detail: str) -> Row:
    return Row(name, lim.action, lim.action if breached else "pass", actual, lim.value, detail)


def evaluate(policy: Policy, plan: dict[str, Any], baseline: dict[str, Any] | None = None) -> list[Row]:
    """Check a plan document against every limit of the policy (and a baseline plan, if given)."""
    lim = policy.limits
    rows: list[Row] = []
    total = float(plan["totals"]["usd_per_month"])
    if lim.max_usd_per_month is not None:
        rows.append(_row("max_usd_per_month", lim.max_usd_per_month, total > lim.max_usd_per_month.value, round(total, 2),
                         f"fleet ${total:,.0f}/month vs limit ${lim.max_usd_per_month.value:,.0f}"))  # fmt: skip
    if lim.max_usd_per_month_per_workload is not None:
        cap = lim.max_usd_per_month_per_workload.value
        worst = max(plan["workloads"], key=lambda w: w["usd_per_month"])
        over = [w["name"] for w in plan["workloads"] if w["usd_per_month"] > cap]
        detail = f"over the limit: {', '.join(over)}" if over else f"largest: {worst['name']} ${worst['usd_per_month']:,.0f}"
        rows.append(_row("max_usd_per_month_per_workload", lim.max_usd_per_month_per_workload, bool(over), worst["usd_per_month"], detail))
    if baseline is not None:
        base = float(baseline["totals"]["usd_per_month"])
        delta = total - base
        pct = 100.0 * delta / base if base else (0.0 if delta == 0 else float("inf"))
        if lim.max_increase_usd_per_month is not None:
            rows.append(_row("max_increase_usd_per_month", lim.max_increase_usd_per_month, delta > lim.max_increase_usd_per_month.value,
                             round(delta, 2), f"${base:,.0f} → ${total:,.0f}/month"))  # fmt: skip
        if lim.max_increase_pct is not None:
            rows.append(_row("max_increase_pct", lim.max_increase_pct, pct > lim.max_increase_pct.value, round(pct, 2),
                             f"{pct:+.1f}% against the baseline"))  # fmt: skip
    if lim.max_devices is not None:
        used: dict[str, int] = {}
        for inst in plan["instances"]:
            used[inst["hardware"]] = used.get(inst["hardware"], 0) + int(inst["devices"])
        over_devices = {h: n for h, n in used.items() if h in lim.max_devices.value and n > lim.max_devices.value[h]}
        detail = ", ".join(f"{h}: {n} > {lim.max_devices.value[h]}" for h, n in over_devices.items()) or "within limits"
        rows.append(_row("max_devices", lim.max_devices, bool(over_devices), used, detail))
    if lim.required_percentile is not None:
        need = _ORDER[lim.required_percentile.value]
        weak = [w["name"] for w in plan["workloads"] if _ORDER.get(w.get("percentile", "p50"), 0) < need]
        seen = sorted({str(w.get("percentile")) for w in plan["workloads"]})
        detail = f"targets below {lim.required_percentile.value}: {', '.join(weak)}" if weak else "all targets at or above"
        rows.append(_row("required_percentile", lim.required_percentile, bool(weak), seen, detail))
    if lim.allowed_clouds is not None:
        clouds = sorted({i["cloud"] for i in plan["instances"]})
        bad = [c for c in clouds if c not in lim.allowed_clouds.value]
        rows.append(_row("allowed_clouds", lim.allowed_clouds, bool(bad), clouds, f"not allowed: {', '.join(bad)}" if bad else "ok"))
    if lim.allowed_hardware is not None:
        hw = sorted({i["hardware"] for i in plan["instances"]})
        bad = [h for h in hw if h not in lim.allowed_hardware.value]
        rows.append(_row("allowed_hardware", lim.allowed_hardware, bool(bad), hw, f"not allowed: {', '.join(bad)}" if bad else "ok"))
    return rows


def verdict(rows: list[Row]) -> str:
    """``fail`` if any fail-limit is breached, ``warn`` if any limit is breached, else ``pass``."""
    statuses = {r.status for r in rows}
    return "fail" if "fail" in statuses else ("warn" if "warn" in statuses else "pass")
