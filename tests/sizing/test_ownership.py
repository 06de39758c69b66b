"""Owned hardware: the hourly cost from sourced purchase prices and data-centre figures, and buy versus rent."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from aicap.hardware_db import Catalogue
from aicap.sizing.core.ownership import HOURS_PER_YEAR, owned_usd_per_hour
from aicap.sizing.core.specs.ownership import OwnershipData
from aicap.sizing.plan.buy_vs_rent import buy_vs_rent
from aicap.sizing.plan.fleet_io import build_fleet
from aicap.sizing.plan.sizer import size


@pytest.fixture(scope="module")
def own() -> OwnershipData:
    text = resources.files("aicap.hardware_db").joinpath("ownership").joinpath("ownership.yaml").read_text(encoding="utf-8")
    return OwnershipData.model_validate(yaml.safe_load(text))


def test_every_figure_is_sourced_and_dated(own: OwnershipData) -> None:
    for p in own.purchase:
        assert p.source and p.quote and p.date and p.usd > 0
    dc = own.datacentre
    for f in (dc.power_usd_per_kwh, dc.pue, dc.colocation_usd_per_kw_month, dc.depreciation_years, dc.host_power_w_per_gpu):
        assert f.source and f.quote


def test_an_hgx_h100_server_costs_depreciation_power_and_space(cat: Catalogue, own: OwnershipData) -> None:
    inst, dev = cat.instance("p5.48xlarge"), cat.device("h100-sxm")
    dc = own.datacentre
    host = own.host("8-gpu hgx")
    gpu = own.price("h100-sxm")
    assert host is not None and gpu is not None and dev.tdp_w is not None
    capex = 8 * (gpu.usd + host.usd / 8) / (dc.depreciation_years.value * HOURS_PER_YEAR)
    kw = 8 * (dev.tdp_w + dc.host_power_w_per_gpu.value - 700.0) / 1000
    want = capex + kw * dc.pue.value * dc.power_usd_per_kwh.value + kw * dc.colocation_usd_per_kw_month.value * 12 / HOURS_PER_YEAR
    assert owned_usd_per_hour(inst, dev, own) == pytest.approx(want)
    assert inst.price("owned") == pytest.approx(want, abs=1e-4)
    assert want < inst.price("on_demand")  # type: ignore[operator]


def test_a_system_price_that_includes_its_host_is_not_charged_a_second_host(cat: Catalogue, own: OwnershipData) -> None:
    b200 = own.price("b200")
    assert b200 is not None and b200.includes_host
    inst = next(i for i in cat.instances.values() if i.device == "b200")
    with_host = own.model_copy(update={"purchase": [b200.model_copy(update={"includes_host": False})]})
    assert owned_usd_per_hour(inst, cat.device("b200"), own) < owned_usd_per_hour(inst, cat.device("b200"), with_host)  # type: ignore[operator]


def test_a_device_without_a_purchase_price_has_no_owned_price(cat: Catalogue, own: OwnershipData) -> None:
    priced = {p.device for p in own.purchase}
    for inst in cat.instances.values():
        assert (inst.price("owned") is not None) == (inst.device in priced and cat.device(inst.device).tdp_w is not None)


FLEET = {"model": "llama-3.1-70b", "rate": 5.0, "input_tokens": 1000, "output_tokens": 300, "ttft_ms": 2000.0, "tpot_ms": 40.0,
         "percentile": "p99", "precision": None, "cloud": "aws"}  # fmt: skip


def test_an_owned_plan_says_so_and_buy_vs_rent_breaks_even_at_own_over_rent(cat: Catalogue) -> None:
    plan = size(build_fleet(**{**FLEET, "pricing": "owned"}), cat, alternatives=False)  # type: ignore[arg-type]
    assert plan.catalogue.pricing == "owned" and any("owned:" in w for w in plan.warnings)
    b = buy_vs_rent(build_fleet(**FLEET), cat)  # type: ignore[arg-type]
    assert b.own_usd_per_month == plan.totals.usd_per_month
    assert 0 < b.break_even_utilisation_pct < 100
    assert b.break_even_utilisation_pct == pytest.approx(100 * b.own_usd_per_month / b.rent_usd_per_month, abs=0.06)


def test_owned_machines_are_on_prem_rows_priced_only_as_owned(cat: Catalogue, own: OwnershipData) -> None:
    assert own.machines
    for m in own.machines:
        inst = cat.instance(m.name)
        assert m.source and m.quote and m.basis and own.price(m.device) is not None
        assert inst.cloud == "on-prem" and inst.devices == m.devices and inst.device == m.device
        p = inst.price_usd_per_hour
        assert p.on_demand is None and p.spot is None and p.reserved_1y is None and p.reserved_3y is None and p.owned is not None


@pytest.mark.parametrize("name", ["jetson-agx-orin-64gb-devkit", "workstation-4x-rtx-4090"])
def test_a_machine_pays_for_its_cards_and_its_own_host_once(cat: Catalogue, own: OwnershipData, name: str) -> None:
    inst = cat.instance(name)
    m, dev = own.machine(name), cat.device(inst.device)
    buy, dc = own.price(inst.device), own.datacentre
    assert m is not None and buy is not None and dev.tdp_w is not None
    capex = (m.devices * buy.usd + m.host_usd) / (dc.depreciation_years.value * HOURS_PER_YEAR)
    kw = (m.devices * dev.tdp_w + m.host_w) / 1000
    want = capex + kw * dc.pue.value * dc.power_usd_per_kwh.value + kw * dc.colocation_usd_per_kw_month.value * 12 / HOURS_PER_YEAR
    assert owned_usd_per_hour(inst, dev, own) == pytest.approx(want, rel=1e-12)
    assert inst.price("owned") == pytest.approx(want, abs=1e-4)


def test_rented_sizing_never_sees_on_prem_machines_and_owned_sizing_answers_for_the_edge_box(cat: Catalogue) -> None:
    args = {"model": "llama-3.1-8b", "rate": 2.0, "tpot_ms": 50.0, "hardware": "rtx-4090,l4", "input_tokens": 1024, "output_tokens": 256,
            "ttft_ms": None, "percentile": "p99", "precision": None}  # fmt: skip
    rented = size(build_fleet(**args), cat)  # type: ignore[arg-type]
    assert {i.cloud for i in rented.instances} != {"on-prem"} and not any("on-prem" in w for w in rented.warnings)
    owned = size(build_fleet(**{**args, "hardware": "rtx-4090", "pricing": "owned"}), cat)  # type: ignore[arg-type]
    assert {i.cloud for i in owned.instances} == {"on-prem"} and owned.instances[0].instance_type.startswith("workstation-")
    edge = build_fleet(**{**args, "hardware": "jetson-agx-orin-64gb", "pricing": "owned", "tpot_ms": 200.0, "rate": 0.2})  # type: ignore[arg-type]
    assert size(edge, cat).instances[0].instance_type == "jetson-agx-orin-64gb-devkit"


def test_a_cloud_row_must_be_rented_and_an_on_prem_row_must_not() -> None:
    from pydantic import ValidationError

    from aicap.sizing.core.specs import InstanceSpec

    row = {"cloud": "aws", "name": "x", "family": "x", "device": "l4", "devices": 1, "region": "r", "price_usd_per_hour": {},
           "price_date": "2026-01-01", "source": "s"}  # fmt: skip
    with pytest.raises(ValidationError, match="needs an on_demand price"):
        InstanceSpec.model_validate(row)
    with pytest.raises(ValidationError, match="owned, not rented"):
        InstanceSpec.model_validate({**row, "cloud": "on-prem", "price_usd_per_hour": {"on_demand": 1.0}})
    assert InstanceSpec.model_validate({**row, "cloud": "on-prem"}).price("on_demand") is None
