"""Owned hardware: purchase prices and data-centre costs (``hardware_db/ownership/ownership.yaml``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Sourced(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    source: str = Field(min_length=1)
    quote: str = Field(min_length=1)
    note: str | None = None


class Purchase(_Sourced):
    """What one device costs to buy (per device; ``includes_host`` where the figure is a whole system's share)."""

    device: str
    usd: float = Field(gt=0)
    basis: str
    date: str
    includes_host: bool = False


class Server(_Sourced):
    """The non-accelerator part of a server (CPUs, memory, NICs, chassis) for ``kind`` servers."""

    kind: str
    usd: float = Field(gt=0)
    basis: str
    date: str


class Machine(_Sourced):
    """An owned machine no cloud rents (an edge kit, a workstation): ``devices`` of ``device`` in one host.

    ``host_usd`` and ``host_w`` are the host's purchase cost and power beyond the devices' own (per
    machine); ``price_date`` is the date of its newest figure. The catalogue lists it as an instance
    type of cloud ``on-prem`` priced only as ``owned``.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    device: str
    devices: int = Field(ge=1, le=256)
    host_usd: float = Field(ge=0)
    host_w: float = Field(ge=0)
    price_date: dt.date
    basis: str


class Figure(_Sourced):
    """One sourced data-centre figure."""

    value: float = Field(gt=0)
    date: str | None = None


class Datacentre(BaseModel):
    """Running costs of owned hardware."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    power_usd_per_kwh: Figure
    pue: Figure
    colocation_usd_per_kw_month: Figure
    depreciation_years: Figure
    host_power_w_per_gpu: Figure


class OwnershipData(BaseModel):
    """Purchase prices, server host costs and data-centre figures; ``not_found`` is kept in the file only."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    purchase: list[Purchase]
    servers: list[Server]
    machines: list[Machine] = Field(default_factory=list)
    datacentre: Datacentre

    def price(self, device: str) -> Purchase | None:
        """The purchase record of ``device``, if any."""
        return next((p for p in self.purchase if p.device == device), None)

    def machine(self, name: str) -> Machine | None:
        """The owned machine called ``name``, if any."""
        return next((m for m in self.machines if m.name == name), None)

    def host(self, kind: str) -> Server | None:
        """The host record of a server ``kind``, if any."""
        return next((s for s in self.servers if s.kind == kind), None)
