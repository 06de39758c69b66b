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
      max_ttft_ms: {value: 2000, action: fail}          # every workload's promised TTFT percentile
      max_tpot_ms: {value: 80, action: fail}
      min_slo_margin_pct: {value: 10, action: warn}     # headroom under each target, in % of the target
      max_ttft_increase_pct: {value: 20, action: warn}  # against --baseline
      max_tpot_increase_pct: {value: 20, action: warn}

:func:`evaluate` returns one row per limit with pass/warn/fail and the numbers behind it; the verdict is
``fail`` when any ``fail`` limit is breached, else ``warn`` when any limit is breached, else ``pass``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InputError, UnknownIdError
from aicap.sizing.core.fleet import Percentile
from aicap.sizing.core.period_plan import PeriodPlan
from aicap.sizing.core.plan import Plan

V = TypeVar("V")
Action = Literal["warn", "fail"]
_ORDER = {"p50": 0, "p90": 1, "p95": 2, "p99": 3}


class Limit(BaseModel, Generic[V]):
    """One limit: its threshold and what a breach does (a bare threshold, ``max_usd_per_month: 50000``, fails)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    value: V
    action: Action = "fail"

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: object) -> object:
        """A threshold given without ``{value: ..., action: ...}`` is that value with the default action."""
        if isinstance(data, dict) and ("value" in data or "action" in data):
            return data
        return {"value": data}


class Limits(BaseModel):
    """Every limit a policy may set; unset limits are not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    max_usd_per_month: Limit[float] | None = None
    max_usd_per_month_per_workload: Limit[float] | None = None
    max_increase_usd_per_month: Limit[float] | None = None
    max_increase_pct: Limit[float] | None = None
    max_devices: Limit[dict[str, int]] | None = None
    required_percentile: Limit[Percentile] | None = None
    allowed_clouds: Limit[list[Literal["aws", "gcp", "azure", "on-prem"]]] | None = None
    allowed_hardware: Limit[list[str]] | None = None
    max_ttft_ms: Limit[float] | None = None
    max_tpot_ms: Limit[float] | None = None
    min_slo_margin_pct: Limit[float] | None = None
    max_ttft_increase_pct: Limit[float] | None = None
    max_tpot_increase_pct: Limit[float] | None = None

    @model_validator(mode="after")
    def _not_negative(self) -> Limits:
        for name in ("max_usd_per_month", "max_usd_per_month_per_workload", "max_ttft_ms", "max_tpot_ms"):
            limit: Limit[float] | None = getattr(self, name)
            if limit is not None and limit.value < 0:
                raise ValueError(f"{name}: a limit of {limit.value:g} can never pass; use a value ≥ 0")
        margin = self.min_slo_margin_pct
        if margin is not None and margin.value >= 100:  # headroom is (target - latency) / target: below 100% for any latency > 0
            raise ValueError(f"min_slo_margin_pct: a limit of {margin.value:g} can never pass (a margin is under 100% of its target); "
                             "use a value below 100")  # fmt: skip
        if self.max_devices is not None:
            bad = {h: n for h, n in self.max_devices.value.items() if n < 0}
            if bad:
                raise ValueError(f"max_devices: device counts must be ≥ 0, got {bad}")
        return self


class Policy(BaseModel):
    """A policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    schema_version: Literal[1] = 1
    limits: Limits = Field(default_factory=Limits)


@dataclass(frozen=True)
class Row:
    """The outcome of one limit."""

    limit: str
    action: str
    status: str
    actual: object
    threshold: object
    detail: str


def _row(name: str, lim: Limit[V], breached: bool, actual: object, detail: str) -> Row:
    return Row(name, lim.action, lim.action if breached else "pass", actual, lim.value, detail)


def _pct(base: float, head: float) -> float:
    return 100.0 * (head - base) / base if base else (0.0 if head == base else float("inf"))


def check_ids(policy: Policy, devices: Collection[str], where: str, text: str | None = None) -> None:
    """Raise :class:`InputError` when a limit names a device id the catalogue does not know.

    With the policy's ``text`` the message names the line (``where:LINE``), as schema errors do.
    """
    from aicap.sizing.core.doc_errors import line_of

    lim = policy.limits
    named: list[tuple[str, str, list[str | int]]] = [
        ("max_devices", h, ["limits", "max_devices", "value", h]) for h in (lim.max_devices.value if lim.max_devices else {})
    ]
    named += [("allowed_hardware", h, ["limits", "allowed_hardware", "value", k])
              for k, h in enumerate(lim.allowed_hardware.value if lim.allowed_hardware else [])]  # fmt: skip
    for field_name, h, loc in named:
        if h not in devices:
            line = None if text is None else line_of(text, loc)
            at = where if line is None else f"{where}:{line}"
            raise InputError(f"{at}: limits.{field_name}: {UnknownIdError('hardware', h, sorted(devices))}")


class _Promised(Protocol):
    """A workload's promise as a plan states it: a static plan's workloads, a period plan's :class:`WorkloadPromise`."""

    @property
    def name(self) -> str: ...
    @property
    def percentile(self) -> Percentile: ...
    @property
    def ttft_ms(self) -> float | None: ...
    @property
    def tpot_ms(self) -> float | None: ...
    @property
    def ttft_margin_pct(self) -> float | None: ...
    @property
    def tpot_margin_pct(self) -> float | None: ...


def _percentile_row(lim: Limits, workloads: Sequence[_Promised]) -> list[Row]:
    """``required_percentile`` on the percentile each workload's targets are set at."""
    if lim.required_percentile is None:
        return []
    need = _ORDER[lim.required_percentile.value]
    weak = [w.name for w in workloads if _ORDER[w.percentile] < need]
    seen = sorted({w.percentile for w in workloads})
    detail = f"targets below {lim.required_percentile.value}: {', '.join(weak)}" if weak else "all targets at or above"
    return [_row("required_percentile", lim.required_percentile, bool(weak), seen, detail)]


def _latency_rows(lim: Limits, workloads: Sequence[_Promised], baseline: Mapping[str, _Promised] | None) -> list[Row]:
    """The latency limits on each workload's promised percentile, its margins and (given a baseline) their changes."""
    rows: list[Row] = []
    for key, metric in (("max_ttft_ms", "ttft_ms"), ("max_tpot_ms", "tpot_ms")):
        limit: Limit[float] | None = getattr(lim, key)
        if limit is None:
            continue
        vals = {w.name: getattr(w, metric) for w in workloads if getattr(w, metric) is not None}
        over = [n for n, v in vals.items() if v > limit.value]
        worst = max(vals, key=lambda n: vals[n], default=None)
        detail = f"over the limit: {', '.join(over)}" if over else (f"worst: {worst} {vals[worst]:,.1f} ms" if worst else "no values")
        rows.append(_row(key, limit, bool(over), None if worst is None else vals[worst], detail))
    if lim.min_slo_margin_pct is not None:
        margins = {f"{w.name} {m}": getattr(w, f"{m}_margin_pct") for w in workloads for m in ("ttft", "tpot")
                   if getattr(w, f"{m}_margin_pct") is not None}  # fmt: skip
        thin = [k for k, v in margins.items() if v < lim.min_slo_margin_pct.value]
        low = min(margins, key=lambda k: margins[k], default=None)
        detail = f"below the margin: {', '.join(thin)}" if thin else (f"thinnest: {low} {margins[low]:.1f}%" if low else "no targets")
        rows.append(_row("min_slo_margin_pct", lim.min_slo_margin_pct, bool(thin), None if low is None else margins[low], detail))
    if baseline is not None:
        for key, metric in (("max_ttft_increase_pct", "ttft_ms"), ("max_tpot_increase_pct", "tpot_ms")):
            limit = getattr(lim, key)
            if limit is None:
                continue
            changes = {}
            for w in workloads:
                if w.name not in baseline:
                    continue
                b, h = getattr(baseline[w.name], metric), getattr(w, metric)
                if b is not None and h is not None:
                    changes[w.name] = (_pct(b, h), b, h)
            over = [n for n, (p, _, _) in changes.items() if p > limit.value]
            worst = max(changes, key=lambda n: changes[n][0], default=None)
            detail = "; ".join(f"{n} {changes[n][1]:,.0f} → {changes[n][2]:,.0f} ms" for n in over) or (
                f"largest: {worst} {changes[worst][0]:+.1f}%" if worst else "no common workloads"
            )
            rows.append(_row(key, limit, bool(over), None if worst is None else round(changes[worst][0], 2), detail))
    return rows


def _total_row(lim: Limits, total: float, scope: str = "") -> list[Row]:
    """``max_usd_per_month`` on the fleet's monthly total (``scope`` qualifies the total in the detail)."""
    if lim.max_usd_per_month is None:
        return []
    cap = lim.max_usd_per_month.value
    fmt = ",.2f" if f"{total:,.0f}" == f"{cap:,.0f}" and total != cap else ",.0f"  # never "$40,179 vs limit $40,179" for a breach
    return [_row("max_usd_per_month", lim.max_usd_per_month, total > cap, round(total, 2),
                 f"fleet ${total:{fmt}}/month{scope} vs limit ${cap:{fmt}}")]  # fmt: skip


def _increase_rows(lim: Limits, total: float, base: float | None) -> list[Row]:
    """The increase limits against a baseline's monthly total (none without a baseline)."""
    if base is None:
        return []
    rows = []
    delta, pct = total - base, _pct(base, total)
    if lim.max_increase_usd_per_month is not None:
        rows.append(_row("max_increase_usd_per_month", lim.max_increase_usd_per_month, delta > lim.max_increase_usd_per_month.value,
                         round(delta, 2), f"${base:,.0f} → ${total:,.0f}/month"))  # fmt: skip
    if lim.max_increase_pct is not None:
        rows.append(_row("max_increase_pct", lim.max_increase_pct, pct > lim.max_increase_pct.value, round(pct, 2),
                         f"{pct:+.1f}% against the baseline"))  # fmt: skip
    return rows


def _devices_row(lim: Limits, used: dict[str, int], scope: str = "") -> list[Row]:
    """``max_devices`` on the devices of each kind ``used``."""
    if lim.max_devices is None:
        return []
    cap = lim.max_devices.value
    over = {h: n for h, n in used.items() if h in cap and n > cap[h]}
    detail = ", ".join(f"{h}: {n} > {cap[h]}{scope}" for h, n in over.items()) or "within limits"
    return [_row("max_devices", lim.max_devices, bool(over), used, detail)]


S = TypeVar("S", bound=str)


def _allowed_row(name: str, limit: Limit[list[S]] | None, seen: list[str]) -> list[Row]:
    """An allow-list limit on the (sorted) values a plan uses."""
    if limit is None:
        return []
    bad = [x for x in seen if x not in limit.value]
    return [_row(name, limit, bool(bad), seen, f"not allowed: {', '.join(bad)}" if bad else "ok")]


def _allowed_rows(lim: Limits, clouds: list[str], hardware: list[str]) -> list[Row]:
    """The cloud and hardware allow-lists on the clouds and devices a plan uses (sorted)."""
    return _allowed_row("allowed_clouds", lim.allowed_clouds, clouds) + _allowed_row("allowed_hardware", lim.allowed_hardware, hardware)


#: Limits measured against a baseline plan: without one they cannot be checked.
BASELINE_LIMITS = ("max_increase_usd_per_month", "max_increase_pct", "max_ttft_increase_pct", "max_tpot_increase_pct")


def _unchecked(lim: Limits, names: Collection[str], why: str) -> list[Row]:
    """A row of status ``unchecked`` for every limit among ``names`` that is set: what a verdict could not judge."""
    rows = []
    for name, value in lim:
        if value is not None and name in names:
            limit: Limit[object] = value
            rows.append(Row(name, limit.action, "unchecked", None, limit.value, why))
    return rows


def _per_workload_row(lim: Limits, costs: list[tuple[str, float]]) -> list[Row]:
    """``max_usd_per_month_per_workload`` against each workload's monthly cost (``costs``: name, USD/month)."""
    if lim.max_usd_per_month_per_workload is None or not costs:
        return []
    cap = lim.max_usd_per_month_per_workload.value
    worst = max(costs, key=lambda x: x[1])
    over = [name for name, usd in costs if usd > cap]
    detail = f"over the limit: {', '.join(over)}" if over else f"largest: {worst[0]} ${worst[1]:,.0f}"
    return [_row("max_usd_per_month_per_workload", lim.max_usd_per_month_per_workload, bool(over), worst[1], detail)]


def evaluate(policy: Policy, plan: Plan, baseline: Plan | None = None) -> list[Row]:
    """Check a plan against every limit of the policy (and a baseline plan, if given).

    A limit that needs a baseline, given none, is a row of status ``unchecked`` (:func:`blocking` names
    the ``fail`` ones: a gate must not pass on a limit it did not check).
    """
    lim = policy.limits
    rows: list[Row] = []
    total = plan.totals.usd_per_month
    rows.extend(_total_row(lim, total))
    rows.extend(_per_workload_row(lim, [(w.name, w.usd_per_month) for w in plan.workloads]))
    rows.extend(_increase_rows(lim, total, None if baseline is None else baseline.totals.usd_per_month))
    used: dict[str, int] = {}
    for inst in plan.instances:
        used[inst.hardware] = used.get(inst.hardware, 0) + inst.devices
    rows.extend(_devices_row(lim, used))
    rows.extend(_percentile_row(lim, plan.workloads))
    rows.extend(_allowed_rows(lim, sorted({i.cloud for i in plan.instances}), sorted({i.hardware for i in plan.instances})))
    rows.extend(_latency_rows(lim, plan.workloads, None if baseline is None else {w.name: w for w in baseline.workloads}))
    if baseline is None:
        rows.extend(_unchecked(lim, BASELINE_LIMITS, "needs a baseline plan (--baseline)"))
    ver = plan.verification
    if ver is not None and not ver.holds:  # the plan's own simulation broke its promise: no limit may pass it
        missed = [v.workload for v in ver.workloads if not v.holds]
        rows.append(Row("verification", "fail", "fail", "does not hold", "holds",
                        f"aicap size --verify simulated the plan and {', '.join(repr(m) for m in missed) or 'a workload'} "
                        "missed its targets"))  # fmt: skip
    return rows


def verdict(rows: list[Row]) -> str:
    """``fail`` if any fail-limit is breached, ``warn`` if any limit is breached, else ``pass`` (unchecked rows aside)."""
    statuses = {r.status for r in rows}
    return "fail" if "fail" in statuses else ("warn" if "warn" in statuses else "pass")


def blocking(rows: list[Row]) -> list[Row]:
    """The ``fail`` limits that could not be checked: a verdict without them would pass what it never judged."""
    return [r for r in rows if r.status == "unchecked" and r.action == "fail"]


#: The limits on each workload's promise: a period plan written before it stated them (no ``workloads``) cannot be judged on them.
PROMISE_LIMITS = (
    "required_percentile",
    "max_ttft_ms",
    "max_tpot_ms",
    "min_slo_margin_pct",
    "max_ttft_increase_pct",
    "max_tpot_increase_pct",
)
_STALE_USD = "the plan states no per-workload cost (written by an aicap before it was added): size it again"
_STALE = "the plan states no per-workload promises (written by an aicap before they were added): size it again"


def evaluate_periods(policy: Policy, plan: PeriodPlan, cat: CatalogueLike, baseline: PeriodPlan | None = None) -> list[Row]:
    """Check a plan over demand periods against every limit of the policy (and a baseline plan over periods, if given).

    ``max_usd_per_month`` applies to the monthly total, ``max_usd_per_month_per_workload`` to each workload's
    share of it (``workloads[].usd_per_month``, its chargeback), and the increase limits to the total's change against
    a ``baseline`` plan over periods; ``max_devices`` to each device's count in the hour that uses most of it (hours
    differ by device);
    ``allowed_clouds`` and ``allowed_hardware`` to every instance of any hour; the percentile, latency
    and margin limits to each workload's promise (``workloads``: the worst of its deployments at one
    replica's capacity, the most load any hour gives it), and the latency increases to its change against
    the baseline's. A limit that needs a baseline given none, or promises or costs the plan does not state
    (an older plan), is a row of status ``unchecked``.
    """
    lim = policy.limits
    total = plan.totals.usd_per_month
    rows = _total_row(lim, total, " (all hours)")
    costs = [(w.name, w.usd_per_month) for w in plan.workloads if w.usd_per_month is not None]
    if plan.workloads and len(costs) == len(plan.workloads):
        rows += _per_workload_row(lim, costs)
    elif plan.deployments:  # written before the chargeback was added
        rows += _unchecked(lim, ("max_usd_per_month_per_workload",), _STALE_USD)
    rows += _increase_rows(lim, total, None if baseline is None else baseline.totals.usd_per_month)
    insts = {i.instance_type: cat.instance(i.instance_type) for p in plan.periods for i in p.instances}
    peak: dict[str, int] = {}
    for p in plan.periods:
        hour: dict[str, int] = {}
        for i in p.instances:
            spec = insts[i.instance_type]
            hour[spec.device] = hour.get(spec.device, 0) + i.count * spec.devices
        for h, n in hour.items():
            peak[h] = max(peak.get(h, 0), n)
    rows += _devices_row(lim, peak, " in its busiest hour")
    rows += _allowed_rows(lim, sorted({s.cloud for s in insts.values()}), sorted({s.device for s in insts.values()}))
    stated = bool(plan.workloads) or not plan.deployments
    if stated:
        rows += _percentile_row(lim, plan.workloads)
        base_stated = baseline is not None and (bool(baseline.workloads) or not baseline.deployments)
        rows += _latency_rows(
            lim, plan.workloads, {w.name: w for w in baseline.workloads} if baseline is not None and base_stated else None
        )
        if baseline is not None and not base_stated:
            rows += _unchecked(lim, ("max_ttft_increase_pct", "max_tpot_increase_pct"), "the baseline " + _STALE.removeprefix("the plan "))
    else:
        rows += _unchecked(lim, PROMISE_LIMITS, _STALE)
    if baseline is None:
        rows += _unchecked(lim, [n for n in BASELINE_LIMITS if stated or n not in PROMISE_LIMITS], "needs a baseline plan (--baseline)")
    return rows
