"""A plan's hourly prices against the catalogue's: what a hand-edited or stale plan file changed.

A plan records each instance type's price under its pricing model (``catalogue.pricing``), for all its
instances of that type: ``usd_per_hour = count · p``. Read back by ``aicap check``, a line whose price is not
``count · p_cat`` for this catalogue's ``p_cat`` (within half a cent an instance) was edited by hand or made
with another catalogue (an older aicap, a ``--catalog`` overlay): the gate would judge prices nobody can
buy at. ``aicap check`` warns of such lines, and with ``--strict`` fails the plan on them
(:func:`price_rows`, a limit ``catalogue_prices`` of action ``fail``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.plan import Plan
from aicap.sizing.plan.policy import Row

#: How far a line's hourly price may stand from the catalogue's, per instance [USD]: the plan rounds to cents.
TOLERANCE_USD_PER_INSTANCE = 0.005

LIMIT = "catalogue_prices"


@dataclass(frozen=True)
class Repriced:
    """One instance line of a plan whose price is not the catalogue's.

    Attributes
    ----------
    instance_type
        The instance type (catalogue name).
    count
        Instances of it in the plan.
    usd_per_hour
        What the plan charges for all ``count`` [USD/hour].
    catalogue_usd_per_hour
        The catalogue's price of one under the plan's pricing model [USD/hour]; ``None`` where it has none.
    """

    instance_type: str
    count: int
    usd_per_hour: float
    catalogue_usd_per_hour: float | None

    def describe(self, pricing: str) -> str:
        """The difference in words (``the plan prices 2× p5.48xlarge at $10.00/hour; the catalogue's ...``)."""
        if self.catalogue_usd_per_hour is None:
            return f"{self.instance_type} is not priced {pricing} in this aicap's catalogue"
        each = self.catalogue_usd_per_hour
        return (f"the plan prices {self.count}× {self.instance_type} at ${self.usd_per_hour:,.2f}/hour; the catalogue's "
                f"{pricing} price is ${each * self.count:,.2f}/hour (${each:,.4g} each)")  # fmt: skip


def repriced(plan: Plan, cat: CatalogueLike) -> list[Repriced]:
    """The plan's instance lines whose price is not ``count · p_cat`` (within :data:`TOLERANCE_USD_PER_INSTANCE` each), in plan order."""
    out = []
    for line in plan.instances:
        spec = cat.instances.get(line.instance_type)
        each = None if spec is None else spec.price(plan.catalogue.pricing)
        if each is None or abs(line.usd_per_hour - each * line.count) > TOLERANCE_USD_PER_INSTANCE * line.count + 1e-9:
            out.append(Repriced(line.instance_type, line.count, line.usd_per_hour, each))
    return out


def price_rows(found: list[Repriced], pricing: str) -> list[Row]:
    """One ``fail`` row per repriced line, or one ``pass`` row when every price is the catalogue's (``aicap check --strict``)."""
    if not found:
        return [Row(LIMIT, "fail", "pass", "catalogue's", "catalogue's", f"every instance priced as this catalogue prices it {pricing}")]
    return [Row(LIMIT, "fail", "fail", round(r.usd_per_hour, 2),
                None if r.catalogue_usd_per_hour is None else round(r.catalogue_usd_per_hour * r.count, 2), r.describe(pricing))
            for r in found]  # fmt: skip
