"""The plan over demand periods that ``aicap size`` writes for a fleet with hourly profiles (schema version 1).

One entry per period (an hour) with the instances by type and pricing model, the replicas per workload
and its demand and capacity; the reserved commitment for the whole horizon; totals beside a static plan
sized for the peak and an on-demand-only plan of the same profile.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.fleet import Percentile
from aicap.sizing.core.plan import REQUESTS_DESCRIPTION, SPAN_DESCRIPTION, CatalogueRef, Usd, VerifiedMiss, shares_inconsistency

PERIOD_PLAN_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class UsedDeployment(_Doc):
    """A (workload, instance type, layout, format) the plan runs replicas of in some period."""

    workload: str
    instance_type: str
    hardware: str
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    dp_attention: int = Field(1, ge=1, description="attention data-parallel groups per replica (experts over all tp devices)")
    weights_dtype: str
    kv_dtype: str
    devices: int = Field(ge=1, description="devices per replica")
    capacity_requests_per_s: float = Field(gt=0, description="one replica's capacity within the targets")
    ttft_ms: float = Field(ge=0)
    tpot_ms: float | None = None


class WorkloadPromise(_Doc):
    """What the plan promises one workload in every hour: its targets and the worst latency of its deployments.

    Each deployment's latency is the model's at one replica's capacity, the most load any hour gives it (after
    ``--verify``, the larger of that and the simulated tail at its busiest hour), at the workload's percentile;
    the margins are ``100·(target − promised)/target`` (negative: a missed target). ``usd_per_month`` is the
    workload's share of the monthly total: in each hour, each instance type's cost that hour (its hourly and
    spot instances, and its commitments' hourly share) split in proportion to the devices the workload's replicas
    hold of that type, ``C_w = (H_m / H)·Σ_h Σ_t c_{t,h}·d_{w,t,h} / Σ_v d_{v,t,h}``, with ``H_m`` the hours of a
    month and ``H`` the horizon's; a type held in an hour none uses is shared by the workloads' device-hours
    on it over the horizon. The workloads' shares add up to the plan's total.
    """

    name: str
    percentile: Percentile
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    ttft_target_ms: float | None = None
    tpot_target_ms: float | None = None
    ttft_margin_pct: float | None = None
    tpot_margin_pct: float | None = None
    usd_per_month: Usd | None = None


class Autoscaling(_Doc):
    """Autoscaler settings of one deployment, derived from the plan.

    ``requests_per_s_per_replica`` is the capacity one replica carries within the targets (the rate
    to scale on); ``in_flight_per_replica`` the requests one replica holds at that rate by Little's law,
    ``λ·(TTFT + (O − 1)·TPOT)`` with the plan's TTFT and TPOT percentiles and the mean output ``O`` (an
    upper estimate: percentiles, not means; the concurrency to scale on); ``min_replicas`` and
    ``max_replicas`` the fewest and most the plan runs in any hour.
    """

    workload: str
    deployment: int = Field(ge=0, description="index in the plan's deployments of the workload")
    instance_type: str
    requests_per_s_per_replica: float = Field(gt=0)
    in_flight_per_replica: float = Field(gt=0)
    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)


class InstanceCount(_Doc):
    """Instances of one type under one pricing model."""

    instance_type: str
    pricing: str
    count: int = Field(ge=1)
    price_date: str | None = Field(None, description="the date the instance type's prices were read (ISO 8601)")


class PeriodWorkload(_Doc):
    """One workload in one period."""

    name: str
    demand_requests_per_s: float = Field(ge=0, description="the hour's demand")
    planned_for_requests_per_s: float = Field(ge=0, description="demand the capacity must cover, raised for the lead time")
    capacity_requests_per_s: float = Field(ge=0)
    replicas: list[int] = Field(description="replicas per entry of the plan's deployments of this workload")


class Period(_Doc):
    """One hour of the horizon."""

    start_hour: int = Field(ge=0)
    usd_per_hour: Usd
    instances: list[InstanceCount]
    workloads: list[PeriodWorkload]


class Reserved(_Doc):
    """A commitment bought for the whole horizon."""

    instance_type: str
    pricing: str
    count: int = Field(ge=1)
    price_date: str | None = Field(None, description="the date the instance type's prices were read (ISO 8601)")
    usd_per_month: Usd


class PeriodTotals(_Doc):
    """Money over a month (the horizon repeated) and the comparisons."""

    usd_per_month: Usd
    static_peak_usd_per_month: Usd
    on_demand_only_usd_per_month: Usd | None = None
    savings_vs_static_pct: float
    reserved: list[Reserved]
    peak_devices: int = Field(ge=0, description="the most devices the plan runs in any one hour (not necessarily the hour of most demand)")


class PeriodCheck(_Doc):
    """A deployment simulated at its busiest hour (ms at the workload's percentile; ``aicap size --verify``)."""

    workload: str
    deployment: int = Field(ge=0)
    instance_type: str
    hour: int = Field(ge=0)
    requests_per_s_per_replica: float = Field(ge=0)
    simulated_ttft_ms: float | None = None
    ttft_target_ms: float | None = None
    simulated_tpot_ms: float | None = None
    tpot_target_ms: float | None = None
    holds: bool


class PeriodVerification(_Doc):
    """The plan's deployments simulated at their busiest hours (``aicap size --verify``)."""

    requests_per_deployment: int = Field(gt=0, description=REQUESTS_DESCRIPTION)
    span_s: float | None = Field(None, ge=0, description=SPAN_DESCRIPTION)
    seed: int
    stretches: int | None = Field(None, ge=1, description="consecutive, equal stretches of each busiest hour's run (after warm-up) "
                                  "whose worst tail is stated and judged; absent in plans made before")  # fmt: skip
    resolves: int = Field(ge=0, description="times capacity was derated and the plan re-solved until it held")
    derated: dict[str, float] = Field(default_factory=dict, description="capacity factor per 'workload/hardware/tpXppY'")
    holds: bool
    checks: list[PeriodCheck]
    misses: list[VerifiedMiss] = Field(default_factory=list, description="the deployments whose busiest hour missed in simulation, "
                                       "by the re-plan round they caused")  # fmt: skip


class PeriodSolver(_Doc):
    """How the program ended.

    ``optimal``: within the tolerance of the lower bound; ``decomposed``: the best plan the
    decomposition found, ``gap_pct`` above the bound.
    """

    status: Literal["optimal", "decomposed"]
    gap_pct: float = Field(ge=0)


class PeriodPlan(_Doc):
    """A plan over demand periods (module docstring)."""

    schema_version: Literal[1] = 1
    kind: Literal["periods"] = "periods"
    generated_by: str
    catalogue: CatalogueRef
    hours: int = Field(ge=1, description="periods in the horizon (24: a day, 168: a week), one hour each")
    pricing_models: list[str]
    lead_time_min: float = Field(ge=0)
    lead_periods: int = Field(ge=0, description="periods ahead each period's capacity covers")
    spot_max_share: float
    spot_headroom: float
    hours_per_month: float
    deployments: dict[str, list[UsedDeployment]]
    workloads: list[WorkloadPromise] = Field(default_factory=list, description="per workload: targets and the latency promised")
    autoscaling: list[Autoscaling]
    periods: list[Period]
    totals: PeriodTotals
    solver: PeriodSolver
    warnings: list[str] = Field(default_factory=list)
    verification: PeriodVerification | None = None

    def inconsistency(self) -> str | None:
        """What in the plan does not add up, or ``None``: the checks a plan from ``aicap size`` always passes.

        ``check`` and ``diff`` judge a plan by its own figures, so an edited one would pass a budget gate: the
        monthly total must be the periods' hourly costs over the horizon, ``Σ_h usd_per_hour_h · M / H`` for
        ``M`` hours a month and ``H`` periods (each hourly figure is rounded to 4 places), the workloads'
        shares sum to it (each rounded to cents), and each period's capacity of a workload be its replicas
        times its deployments' capacities, ``Σ_k n_k · c_k``.
        """
        month = self.hours_per_month / self.hours
        hourly = sum(p.usd_per_hour for p in self.periods) * month
        tot = self.totals.usd_per_month
        if abs(hourly - tot) > 0.0001 * self.hours_per_month + 0.01:
            return f"totals.usd_per_month {tot:,.2f} is not the periods' usd_per_hour over the horizon ({hourly:,.2f})"
        if (why := shares_inconsistency([w.usd_per_month for w in self.workloads if w.usd_per_month is not None], tot)) is not None:
            return why
        for p in self.periods:
            for w in p.workloads:
                deps = self.deployments.get(w.name)
                if deps is None or len(deps) != len(w.replicas):
                    n = len(deps or [])
                    return f"period {p.start_hour}: workload '{w.name}' has {len(w.replicas)} replica counts for {n} deployments"
                cap = sum(n * d.capacity_requests_per_s for n, d in zip(w.replicas, deps, strict=True))
                if abs(cap - w.capacity_requests_per_s) > 1e-4 * max(cap, 1.0) + 1e-5 * len(deps):
                    return (f"period {p.start_hour}: workload '{w.name}' capacity_requests_per_s {w.capacity_requests_per_s:g} is not "
                            f"its replicas times its deployments' capacities ({cap:g})")  # fmt: skip
        return None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (without ``verification`` when there is none)."""
        return self.model_dump(mode="json", exclude_none=False, exclude={"verification"} if self.verification is None else set())
