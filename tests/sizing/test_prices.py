"""A plan's prices against the catalogue's (``aicap check`` and its ``--strict``)."""

from __future__ import annotations

import dataclasses

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.plan import Plan
from aicap.sizing.plan.prices import LIMIT, TOLERANCE_USD_PER_INSTANCE, price_rows, repriced
from aicap.sizing.plan.sizer import size

CAT = load_catalogue()


def _plan() -> Plan:
    fleet = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 30.0, "input_tokens": 800,
                                                 "output_tokens": 200, "slo": {"ttft_ms": 2000, "tpot_ms": 60}}],
                                  "constraints": {"clouds": ["gcp"]}})  # fmt: skip
    return size(fleet, CAT)


def test_a_price_within_half_a_cent_an_instance_is_the_catalogue_s() -> None:
    plan = _plan()
    assert repriced(plan, CAT) == [] and [r.status for r in price_rows([], plan.catalogue.pricing)] == ["pass"]
    line = plan.instances[0]
    each = CAT.instances[line.instance_type].price(plan.catalogue.pricing)
    assert each is not None
    near = line.model_copy(update={"usd_per_hour": each * line.count + 0.9 * TOLERANCE_USD_PER_INSTANCE * line.count})
    far = line.model_copy(update={"usd_per_hour": each * line.count + 1.1 * TOLERANCE_USD_PER_INSTANCE * line.count})
    assert repriced(plan.model_copy(update={"instances": [near]}), CAT) == []
    [off] = repriced(plan.model_copy(update={"instances": [far]}), CAT)
    assert (off.instance_type, off.count, off.catalogue_usd_per_hour) == (line.instance_type, line.count, each)
    [row] = price_rows([off], plan.catalogue.pricing)
    assert (row.limit, row.action, row.status) == (LIMIT, "fail", "fail")
    assert row.actual == round(far.usd_per_hour, 2) and row.threshold == round(each * line.count, 2)


def test_an_instance_type_the_catalogue_does_not_price_is_named() -> None:
    plan = _plan()
    bare = dataclasses.replace(CAT, instances={})  # a catalogue that prices nothing
    found = repriced(plan, bare)
    assert [r.instance_type for r in found] == [i.instance_type for i in plan.instances] and found
    assert all(r.catalogue_usd_per_hour is None for r in found)
    assert found[0].describe("on_demand") == f"{found[0].instance_type} is not priced on_demand in this aicap's catalogue"
    assert all(r.threshold is None and r.status == "fail" for r in price_rows(found, "on_demand"))
