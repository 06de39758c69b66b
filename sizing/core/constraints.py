"""A fleet's constraints: where and how to buy (clouds, regions, families, devices, caps, pricing, budget).

The ``constraints`` section of a fleet file (:mod:`aicap.sizing.core.fleet`), and the objective a plan
optimises within them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from aicap.sizing.core.specs.instance import PricingModel

if TYPE_CHECKING:
    from aicap.sizing.core.fleet import Workload

#: Hours in an average month, 8,760 / 12: what a commitment bills a month.
HOURS_PER_MONTH = 730.0
#: Pricing models paid for every hour of their term whether the capacity runs or not.
COMMITTED: tuple[PricingModel, ...] = ("reserved_1y", "reserved_3y", "owned")

#: What a fleet's plan optimises: cheapest within the latency targets, fastest or most throughput within a budget.
Objective = Literal["cost", "latency", "throughput"]
#: How widely the sizer shortlists candidates before the integer program: ``thorough`` also keeps each workload's cheapest
#: replica on its best device types (what carries the remainder that whole replicas of the best layout overshoot),
#: ``fast`` does not, ``auto`` is ``thorough`` for static plans of up to :data:`THOROUGH_AUTO_WORKLOADS` workloads (plans over
#: demand periods are shortlisted thoroughly only when asked: :func:`aicap.sizing.plan.periods.size_periods`).
Search = Literal["auto", "fast", "thorough"]
#: The largest fleet ``search: auto`` shortlists thoroughly. The remainder carriers' cost and gain on the benchmark fleets
#: (``benchmarks/bench_size.py``, 2026-12-05, 2 cores): at 100 workloads the plan is 4.4% cheaper and the size 6% slower
#: (1.35 -> 1.43 s); at 300, 4.8% cheaper and 50% slower (2.4 -> 3.5 s); at 1,000, 5.7% cheaper and 6.5 times slower
#: (4.4 -> 29 s, over the 20 s default time limit).
THOROUGH_AUTO_WORKLOADS = 100


class Constraints(BaseModel):
    """Where and how to buy: clouds, regions, families, devices, caps, pricing and budget."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    clouds: list[Literal["aws", "gcp", "azure", "on-prem"]] | None = None
    regions: list[str] | None = None
    instance_families: list[str] | None = None
    hardware: list[str] | None = None
    availability: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="instance name -> most instances available"
    )
    max_instances_per_type: int = Field(
        256,
        ge=1,
        le=1_000_000,
        description="most instances of any one type a plan may buy unless `availability` says otherwise: a quota a real "
        "account gets; a demand beyond it is more likely a unit slip than a real fleet",
    )
    pricing: PricingModel | list[PricingModel] = Field(
        "on_demand", description="pricing model, or a list of them for a profile plan to mix (reserved_1y/3y bought for the horizon)"
    )
    spot_max_share: float = Field(0.5, ge=0, le=1, description="most of a period's devices a profile plan may rent as spot")
    spot_headroom: float = Field(0.2, ge=0, lt=1, description="share of each spot instance's devices kept free against interruptions")
    lead_time_min: float | None = Field(
        None,
        ge=0,
        le=24 * 60,
        description="minutes from ordering capacity to serving on it (default: weights over a load bandwidth plus a start-up time)",
    )
    hours_per_month: float = Field(
        HOURS_PER_MONTH, ge=1, le=744,
        description="hours a month the fleet runs and rented capacity is billed for (730 = 8,760/12; 1 to 744); "
        "reserved and owned capacity bill every hour",
    )  # fmt: skip
    budget_usd_per_month: PositiveFloat | None = None
    objective: Objective = "cost"
    single_type: bool = False
    search: Search = Field(
        "auto",
        description="shortlist before the integer program: thorough also keeps each workload's cheapest replica per device type "
        f"(plans up to ~6% cheaper on large fleets, solved several times slower), fast does not, auto is thorough up to "
        f"{THOROUGH_AUTO_WORKLOADS} workloads (static plans; plans over demand periods: fast)",
    )
    engine: str | None = Field(
        None, description="serving engine profile of every workload without its own (default: the catalogue's default engine)"
    )

    @model_validator(mode="after")
    def _caps_non_negative(self) -> Constraints:
        if isinstance(self.pricing, list) and not self.pricing:
            raise ValueError("pricing: list at least one pricing model")
        for name in ("clouds", "regions", "instance_families", "hardware"):
            if getattr(self, name) == []:
                raise ValueError(f"{name}: list at least one, or leave {name} out for any (an empty list would allow nothing)")
        if self.objective != "cost" and self.budget_usd_per_month is None:
            raise ValueError(f"objective '{self.objective}' needs budget_usd_per_month")
        return self

    @property
    def pricing_models(self) -> tuple[PricingModel, ...]:
        """The allowed pricing models, in the order given (duplicates dropped)."""
        models = [self.pricing] if isinstance(self.pricing, str) else self.pricing
        return tuple(dict.fromkeys(models))

    @property
    def price_model(self) -> PricingModel:
        """The pricing model a static plan prices with (the first allowed)."""
        return self.pricing_models[0]

    def thorough(self, workloads: int) -> bool:
        """Whether a fleet of ``workloads`` workloads is shortlisted thoroughly (:data:`Search`)."""
        return self.search == "thorough" or (self.search == "auto" and workloads <= THOROUGH_AUTO_WORKLOADS)

    def billed_hours(self, pricing: str | None = None) -> float:
        """Hours a month of one instance is paid for under ``pricing`` (default: :attr:`price_model`).

        ``hours_per_month`` for capacity rented by the hour (on demand, spot); every hour of the month,
        ``max(hours_per_month, 730)``, for capacity committed to (a reservation bills each hour of its term,
        owned hardware depreciates whether it runs or not): a fleet run 200 hours a month on reserved
        instances pays for 730.
        """
        model = self.price_model if pricing is None else pricing
        return max(self.hours_per_month, HOURS_PER_MONTH) if model in COMMITTED else self.hours_per_month

    def engine_of(self, w: Workload) -> str | None:
        """The engine workload ``w`` is served with: its own, else the fleet's (``None``: the catalogue default)."""
        return w.engine or self.engine

    def cap(self, instance: str) -> float:
        """Most instances of type ``instance`` a plan may buy."""
        return float(self.availability.get(instance, self.max_instances_per_type))
