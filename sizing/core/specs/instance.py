"""Instance specs: a cloud machine shape with its devices and list prices."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aicap.sizing.core.documents import NonNegFloat, PosFloat, PosInt

if TYPE_CHECKING:
    from aicap.sizing.core.specs.device import DeviceSpec

PricingModel = Literal["on_demand", "spot", "reserved_1y", "reserved_3y", "owned"]

#: Most devices (accelerators, TPU chips, or CPU sockets for CPU rows) one instance row may carry: 256.
#: The largest rows in the shipped catalogue carry 16; 256 leaves room for a TPU slice or a rack-scale
#: system sold as one machine. A larger count describes a pod or a fleet, not an instance (and a
#: billion-device instance would make every plan and search absurd).
MAX_DEVICES_PER_INSTANCE = 256


class Prices(BaseModel):
    """Whole-instance prices in USD per hour; ``None`` where no dated source publishes one."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    on_demand: PosFloat | None = Field(None, description="every cloud row has one; owned machines (cloud on-prem) have none")
    spot: PosFloat | None = None
    reserved_1y: PosFloat | None = None
    reserved_3y: PosFloat | None = None
    owned: PosFloat | None = Field(None, description="cost of owning the hardware (filled from the ownership data, not the instance row)")


NetworkKind = Literal["efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo", "ethernet", "tpu-dcn"]


class Network(BaseModel):
    """Scale-out network of one instance: what joins it to other instances of a training job.

    ``gbps`` is the instance's total scale-out bandwidth in decimal Gbit/s as the provider quotes it
    (e.g. 3200 for p5.48xlarge's 32 EFA interfaces), one direction; the per-device share is
    ``gbps / devices``.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    kind: NetworkKind
    gbps: PosFloat
    source: str = Field(min_length=1)


class InstanceSpec(BaseModel):
    """One cloud instance type in one region, with its price date and source."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    cloud: Literal["aws", "gcp", "azure", "on-prem"]
    name: str = Field(min_length=1)
    family: str
    device: str
    devices: PosInt
    vcpus: PosInt | None = None
    host_memory_gib: NonNegFloat | None = None
    region: str
    price_usd_per_hour: Prices
    price_date: dt.date
    source: str = Field(min_length=1)
    notes: str | None = None
    network: Network | None = None

    @model_validator(mode="after")
    def _clouds_rent(self) -> InstanceSpec:
        rented = self.price_usd_per_hour.model_dump(exclude={"owned"})
        if self.cloud != "on-prem" and self.price_usd_per_hour.on_demand is None:
            raise ValueError(f"{self.name}: a {self.cloud} instance type needs an on_demand price")
        if self.cloud == "on-prem" and any(v is not None for v in rented.values()):
            raise ValueError(f"{self.name}: an on-prem machine is owned, not rented: give it no rental prices")
        return self

    @field_validator("devices")
    @classmethod
    def _devices_fit_one_instance(cls, v: int) -> int:
        if v > MAX_DEVICES_PER_INSTANCE:
            raise ValueError(f"at most {MAX_DEVICES_PER_INSTANCE} devices per instance (accelerators, TPU chips or CPU sockets); "
                             "a larger count is a pod or a fleet, not one instance")  # fmt: skip
        return v

    @property
    def id(self) -> str:
        """Catalogue id: the cloud's own instance name (unique across clouds)."""
        return self.name

    @property
    def network_gbs_per_device(self) -> float | None:
        """Each device's share of the scale-out network, GB/s one way: ``gbps / 8 / devices`` (``None``: no sourced network)."""
        return None if self.network is None else self.network.gbps / 8.0 / self.devices

    def memory_gib_per_device(self, device: DeviceSpec) -> float:
        """Memory each of this instance's devices holds [GiB]: an accelerator's own; a CPU's share of the host memory.

        An accelerator has ``device.memory_gib``; a CPU socket the instance's host memory shared by its sockets,
        ``host_memory_gib / devices``, at most the socket's maximum. A CPU device's ``memory_gib`` is what a socket
        can carry (768 GiB for an EPYC 9654); an instance fits less (AWS c7a.48xlarge: 384 GiB over 2 sockets,
        192 each), and the weights, KV cache and activations fit in what it has.
        """
        if device.kind != "cpu" or self.host_memory_gib is None:
            return float(device.memory_gib)
        return min(float(device.memory_gib), float(self.host_memory_gib) / self.devices)

    def price(self, pricing: str) -> float | None:
        """Return the hourly price (USD) under a pricing model, or ``None`` if unpublished."""
        value: float | None = getattr(self.price_usd_per_hour, pricing)
        return value
