"""Buy versus rent: the same fleet rented under its pricing model and owned (``aicap whatif --buy-vs-rent``).

Owning costs the same whether the hardware is busy or not; renting costs only the hours it is held. With
``R`` the rented fleet's monthly cost held all month and ``O`` the owned fleet's, renting is cheaper when the
fleet is needed less than the break-even utilisation

    u* = 100 · O / R   (% of the month),

and owning above it. A fleet with hourly demand is sized at its peak hour both ways (owned hardware is there
every hour) and also rented hour by hour over its profile (:func:`~aicap.sizing.plan.periods.size_periods`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.whatif import hardware_bought


class BuyVsRent(BaseModel):
    """The same fleet rented and owned, and the utilisation at which renting costs as much as owning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    rent_pricing: str
    rent_usd_per_month: float
    rent_hardware: str
    own_usd_per_month: float
    own_hardware: str
    break_even_utilisation_pct: float = Field(
        description="100·own/rent: a rented fleet kept only this share of the month costs as much as owning one"
    )
    note: str
    rent_over_profile_usd_per_month: float | None = Field(
        None, description="renting sized hour by hour over the fleet's hourly demand (aicap size), where it has a profile; "
                          "both other figures are sized at the peak hour, since owned hardware is there at every hour"
    )  # fmt: skip
    notes: list[str] = Field(default_factory=list)


def buy_vs_rent(fleet: Fleet, cat: CatalogueLike) -> BuyVsRent:
    """Size ``fleet`` under its pricing model (renting) and as owned hardware (``pricing: owned``).

    Owning costs the same whether the hardware is busy or not; renting costs only the hours it is held.
    So renting is cheaper when the fleet is needed less than ``own/rent`` of the time (autoscaled down
    the rest), and owning is cheaper above it.
    """
    from aicap.sizing.plan.sizer import size

    rent_model = fleet.constraints.price_model
    if rent_model == "owned":
        raise InputError("--buy-vs-rent compares a rented fleet with an owned one: give a rental pricing model (on_demand, spot, ...)")
    rent = size(fleet, cat, alternatives=False)
    doc: dict[str, Any] = fleet.model_dump(mode="json", exclude_none=True)
    doc.setdefault("constraints", {})["pricing"] = "owned"
    own = size(Fleet.model_validate(doc), cat, alternatives=False)
    r, o = rent.totals.usd_per_month, own.totals.usd_per_month
    notes: list[str] = []
    over_profile = None
    if hourly := [w.name for w in fleet.workloads if w.profile is not None]:
        from aicap.sizing.plan.periods import size_periods

        one = fleet.model_dump(mode="json", exclude_none=True)
        one.setdefault("constraints", {})["pricing"] = rent_model  # the rental model alone: no reserved mix
        over_profile = size_periods(Fleet.model_validate(one), cat).totals.usd_per_month
        notes.append(f"the hourly demand of {', '.join(hourly)} is sized at its peak hour for both: owned hardware is there every "
                     f"hour; rented and scaled hour by hour over the profile, the fleet costs ${over_profile:,.0f} a month "
                     f"({100.0 * over_profile / r:.0f}% of holding the peak fleet all month); owning the peak fleet costs "
                     f"{100.0 * o / over_profile:.0f}% of that")  # fmt: skip
    if len(models := fleet.constraints.pricing_models) > 1:
        notes.append(f"renting is priced with one pricing model: {rent_model}, the first of {', '.join(models)}")
    return BuyVsRent(rent_pricing=rent_model, rent_usd_per_month=r, rent_hardware=hardware_bought(rent), own_usd_per_month=o,
                     own_hardware=hardware_bought(own), break_even_utilisation_pct=round(100.0 * o / r, 1),
                     note="owned: depreciation, power at the facility's PUE and colocation space (hardware_db/ownership); "
                          "not the cost of capital, networking between servers, staff or support",
                     rent_over_profile_usd_per_month=over_profile, notes=notes)  # fmt: skip
