"""The hourly cost of owning an instance's hardware instead of renting it (``pricing: owned``).

For an instance of ``n`` devices of purchase price ``P`` (and host share ``H`` per device, the non-GPU
parts of an 8-GPU server over 8, unless ``P`` already includes the host), bought and depreciated
straight-line over ``Y`` years and run in a colocation facility:

    capex = n·(P + H) / (Y · 8,760 h)
    kW    = n·(TDP + host_w) / 1000               host_w = host power per GPU − the H100's 700 W TDP
    energy = kW · PUE · price per kWh
    space  = kW · colocation per kW-month · 12 / 8,760 h

``owned = capex + energy + space`` USD per hour, whether the hardware is busy or not (so periods plans
treat it as reserved). An on-prem machine (an edge kit, a workstation: :class:`Machine`) replaces the
server host by its own: ``capex = (n·P + H_m)/(Y · 8,760 h)`` and ``kW = (n·TDP + W_m)/1000`` with
``H_m``, ``W_m`` the machine's host cost and power. CPU instances count their sockets' list prices and TDP only. Each figure comes
from the ownership data with its source; the host share is a bill-of-materials cost, a lower bound on
what a buyer pays for it.
"""

from __future__ import annotations

from aicap.sizing.core.specs import DeviceSpec, InstanceSpec
from aicap.sizing.core.specs.instance import Prices
from aicap.sizing.core.specs.ownership import Machine, OwnershipData

HOURS_PER_YEAR = 8760.0
ON_PREM = "on-prem"  # the cloud of owned machines no provider rents
GPU_SERVER = "8-gpu hgx"
DGX_H100_GPU_W = 700.0  # the GPU share inside the DGX H100's per-GPU system power (H100 SXM TDP)


def owned_usd_per_hour(inst: InstanceSpec, dev: DeviceSpec, own: OwnershipData) -> float | None:
    """Hourly cost of owning ``inst``'s hardware (module docstring), or ``None`` without a purchase price or a TDP."""
    buy = own.price(dev.id)
    if buy is None or dev.tdp_w is None:
        return None
    dc = own.datacentre
    n = float(inst.devices)
    machine = own.machine(inst.name) if inst.cloud == ON_PREM else None
    if machine is not None:
        capex = (n * buy.usd + machine.host_usd) / (dc.depreciation_years.value * HOURS_PER_YEAR)
        kw = (n * dev.tdp_w + machine.host_w) / 1000.0
    else:
        accelerator = dev.kind != "cpu"
        server = own.host(GPU_SERVER)
        host = server.usd / 8.0 if accelerator and server is not None and not buy.includes_host else 0.0
        host_w = max(dc.host_power_w_per_gpu.value - DGX_H100_GPU_W, 0.0) if accelerator else 0.0
        capex = n * (buy.usd + host) / (dc.depreciation_years.value * HOURS_PER_YEAR)
        kw = n * (dev.tdp_w + host_w) / 1000.0
    energy = kw * dc.pue.value * dc.power_usd_per_kwh.value
    space = kw * dc.colocation_usd_per_kw_month.value * 12.0 / HOURS_PER_YEAR
    return capex + energy + space


def machine_instance(m: Machine, own: OwnershipData) -> InstanceSpec:
    """The catalogue row of an owned machine: cloud and region ``on-prem``, no rental price (``owned`` is filled like any row's)."""
    buy = own.price(m.device)
    return InstanceSpec(cloud=ON_PREM, name=m.name, family=ON_PREM, device=m.device, devices=m.devices, region=ON_PREM,
                        price_usd_per_hour=Prices(), price_date=m.price_date,
                        source=f"hardware_db/ownership machines: {m.basis}; device price: {buy.source if buy else 'none'}",
                        notes="owned hardware only: priced as --pricing owned")  # fmt: skip
