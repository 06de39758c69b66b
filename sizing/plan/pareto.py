"""The cost-versus-latency front of a fleet (``aicap size --pareto``).

The sizer answers one question: the cheapest plan within the targets. The front answers the one
before it: what each step of latency costs. :func:`pareto` sizes the fleet again with every workload's
TTFT and TPOT targets scaled by a factor ``f`` (tighter below 1, looser above), each time a full plan,
and keeps the plans no other plan beats on cost, worst TTFT and worst TPOT together (Pareto
non-dominated). A workload without a target takes the baseline plan's promise as its reference, so
every workload moves.

Per point: the monthly cost, the worst workload's promised TTFT and TPOT percentiles, output tokens/s
per device bought (``Σ λ_w·O_w / devices``) and per user (``1000/TPOT``), and whether it is the plan of
the targets as given (``f = 1``).

:func:`whatif_pareto` draws one front per what-if alternative (``aicap whatif --pareto``) and marks
the points no other alternative's plan beats (``on_front``): which technique is cheapest at each
latency.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InfeasibleError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.plan import Plan

if TYPE_CHECKING:
    from aicap.sizing.plan.whatif import Change

#: Target scales the front is sampled at (tighter ... looser); 1 is the targets as given.
FACTORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.25, 1.5, 2.0, 3.0)


class ParetoPoint(BaseModel):
    """One plan of the front."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_scale: float = Field(description="factor on every workload's TTFT and TPOT targets")
    usd_per_month: float
    devices: int
    ttft_ms: float | None = Field(description="worst workload's promised TTFT percentile")
    tpot_ms: float | None = Field(description="worst workload's promised TPOT percentile")
    tokens_per_s_per_device: float
    tokens_per_s_per_user: float | None = Field(description="1000 / tpot_ms: the token speed the slowest workload's users see")
    chosen: bool = Field(description="the plan of the targets as given")


class Pareto(BaseModel):
    """The non-dominated plans, cheapest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    pareto: list[ParetoPoint]


def _scaled(fleet: Fleet, base: Plan, f: float, cat: CatalogueLike) -> Fleet:
    """``fleet`` with every workload's TTFT and TPOT targets (or the baseline's promises) times ``f``.

    A disaggregated workload's promises are its users': the composed TTFT and the decode pool's TPOT.
    """
    from aicap.sizing.plan.disaggregate import DECODE, user_ttfts

    promised = {w.name: w for w in base.workloads}
    ttfts = user_ttfts(base, cat)
    doc: dict[str, Any] = fleet.model_dump(mode="json", exclude_none=True)
    for w in doc["workloads"]:
        p = promised.get(w["name"]) or promised.get(w["name"] + DECODE)
        slo = dict(w.get("slo") or {})
        for key, fallback in (("ttft_ms", ttfts.get(w["name"])), ("tpot_ms", None if p is None else p.tpot_ms)):
            ref = slo.get(key, fallback)
            if ref is not None:
                slo[key] = round(float(ref) * f, 4)
        w["slo"] = slo
    return Fleet.model_validate(doc)


def _point(plan: Plan, f: float, cat: CatalogueLike) -> ParetoPoint:
    from aicap.sizing.plan.disaggregate import user_ttfts

    inputs = {w.name: w for w in plan.inputs.workloads}
    ttft = max(user_ttfts(plan, cat).values(), default=None)  # a disaggregated workload: prefill + transfer + decode
    tpot = max((w.tpot_ms for w in plan.workloads if w.tpot_ms is not None), default=None)
    tokens = sum(w.served_requests_per_s * inputs[w.name].mean_output for w in plan.workloads
                 if w.tpot_ms is not None and inputs[w.name].disaggregated_role != "prefill")  # fmt: skip
    devices = plan.totals.devices
    return ParetoPoint(target_scale=f, usd_per_month=plan.totals.usd_per_month, devices=devices, ttft_ms=ttft, tpot_ms=tpot,
                       tokens_per_s_per_device=round(tokens / max(devices, 1), 3),
                       tokens_per_s_per_user=None if not tpot else round(1000.0 / tpot, 3), chosen=f == 1.0)  # fmt: skip


def _dominated(p: ParetoPoint, q: ParetoPoint) -> bool:
    """Whether ``q`` is at least as good as ``p`` on cost, TTFT and TPOT, and better on one."""
    a = (p.usd_per_month, p.ttft_ms or 0.0, p.tpot_ms or 0.0)
    b = (q.usd_per_month, q.ttft_ms or 0.0, q.tpot_ms or 0.0)
    return all(y <= x for x, y in zip(a, b, strict=True)) and any(y < x for x, y in zip(a, b, strict=True))


def pareto(fleet: Fleet, cat: CatalogueLike, factors: tuple[float, ...] = FACTORS,
           on_done: Callable[[], None] | None = None) -> Pareto:  # fmt: skip
    """The cost-versus-latency front of ``fleet`` (module docstring); the chosen plan is kept even if dominated.

    Raises :class:`InfeasibleError` when the targets as given have no plan.
    """
    from aicap.sizing.plan.sizer import size

    base = size(fleet, cat, alternatives=False)
    points = [_point(base, 1.0, cat)]
    for f in factors:
        if f == 1.0:
            continue
        scaled = _scaled(fleet, base, f, cat)
        with contextlib.suppress(InfeasibleError):  # targets this tight have no plan: the front ends there
            points.append(_point(size(scaled, cat, alternatives=False), f, cat))
        if on_done is not None:
            on_done()
    front = [p for p in points if p.chosen or not any(_dominated(p, q) for q in points)]
    unique: dict[tuple[float, float | None, float | None], ParetoPoint] = {}
    for p in sorted(front, key=lambda p: (p.usd_per_month, not p.chosen, p.target_scale)):
        unique.setdefault((p.usd_per_month, p.ttft_ms, p.tpot_ms), p)
    return Pareto(pareto=list(unique.values()))


class WhatIfPoint(ParetoPoint):
    """One plan of one alternative's front."""

    alternative: str
    on_front: bool = Field(description="no plan of any alternative beats it on cost, TTFT and TPOT together")


class WhatIfPareto(BaseModel):
    """Each alternative's front, and the alternatives without a plan at the targets as given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    pareto: list[WhatIfPoint]
    no_plan: dict[str, str] = Field(default_factory=dict, description="alternative -> why the targets as given have no plan")


def whatif_pareto(fleet: Fleet, cat: CatalogueLike, changes: list[Change], factors: tuple[float, ...] = FACTORS,
                  on_done: Callable[[], None] | None = None) -> WhatIfPareto:  # fmt: skip
    """The front of the baseline and of each alternative of ``changes``, every point marked whether it is on the joint front.

    Raises :class:`InfeasibleError` when the baseline has no plan.
    """
    from aicap.sizing.plan.whatif import apply

    fronts: list[tuple[str, Pareto]] = [("baseline", pareto(fleet, cat, factors, on_done))]
    no_plan: dict[str, str] = {}
    for change in changes:
        changed, ccat = apply(fleet, change, cat)
        try:
            fronts.append((change.name, pareto(changed, ccat, factors, on_done)))
        except InfeasibleError as exc:
            no_plan[change.name] = str(exc)
            for _ in range(len(factors) - 1):
                if on_done is not None:
                    on_done()
    every = [p for _, f in fronts for p in f.pareto]
    points = [WhatIfPoint(**p.model_dump(), alternative=name, on_front=not any(_dominated(p, q) for q in every))
              for name, f in fronts for p in f.pareto]  # fmt: skip
    return WhatIfPareto(pareto=points, no_plan=no_plan)


def plot_pareto(front: Pareto | WhatIfPareto, path: str, title: str) -> None:
    """Draw the front to ``path`` (.png or .svg): $/month against worst TPOT and TTFT, and tokens/s per device against per user.

    The chosen plan (targets as given) is starred; a what-if front draws one series per alternative.
    """
    from aicap.sizing.core.figures import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, label in ((axes[0], "tpot_ms", "worst TPOT (ms, at each workload's percentile)"),
                           (axes[1], "ttft_ms", "worst TTFT (ms, at each workload's percentile)")):  # fmt: skip
        series: dict[str, list[ParetoPoint]] = {}
        for p in front.pareto:
            series.setdefault(p.alternative if isinstance(p, WhatIfPoint) else "plans on the front", []).append(p)
        for n, (name, members) in enumerate(series.items()):
            pts = sorted((getattr(p, key), p.usd_per_month, p.chosen) for p in members if getattr(p, key) is not None)
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o-", color=f"C{n}", label=name)
            chosen = [(x, y) for x, y, c in pts if c]
            if chosen:
                ax.plot(*chosen[0], "*", color=f"C{n}", markersize=14, markeredgecolor="black",
                        label="chosen (targets as given)" if n == 0 else None)  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("USD per month")
        costs = [p.usd_per_month for p in front.pareto if p.usd_per_month > 0]
        if costs and max(costs) > 20 * min(costs):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    # Throughput per device bought against the token speed each user sees (1000/TPOT): the serving trade-off.
    ax = axes[2]
    groups: dict[str, list[ParetoPoint]] = {}
    for p in front.pareto:
        groups.setdefault(p.alternative if isinstance(p, WhatIfPoint) else "plans on the front", []).append(p)
    for n, (name, members) in enumerate(groups.items()):
        pts = sorted((p.tokens_per_s_per_user, p.tokens_per_s_per_device, p.chosen) for p in members if p.tokens_per_s_per_user)
        ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o", color=f"C{n}", label=name)  # points: the demand is fixed
        chosen = [(x, y) for x, y, c in pts if c]
        if chosen:
            ax.plot(*chosen[0], "*", color=f"C{n}", markersize=14, markeredgecolor="black")
    ax.set_xlabel("output tokens/s per user (1000 / worst TPOT)")
    ax.set_ylabel("output tokens/s per device bought (at the demand)")
    ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
