"""Prices read from other feeds than on-demand carry their own date and source (``price_terms``)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.specs import InstanceSpec

CAT = load_catalogue()


def test_every_dated_term_has_a_price_a_date_and_a_source() -> None:
    for inst in CAT.instances.values():
        for term, when in inst.price_terms.items():
            assert inst.price(term) is not None, (inst.name, term)
            assert when.source and inst.price_date_of(term) == when.date
        assert inst.price_date_of("on_demand") == inst.price_date


def test_aws_gpu_rows_carry_spot_and_commitments_from_their_own_feeds() -> None:
    gpus = [i for i in CAT.instances.values() if i.cloud == "aws" and CAT.device(i.device).kind == "gpu"]
    assert len(gpus) >= 18
    for i in gpus:
        p = i.price_usd_per_hour
        assert p.on_demand and p.spot and p.reserved_1y and p.reserved_3y, i.name
        assert p.reserved_3y < p.reserved_1y < p.on_demand, i.name  # a longer commitment costs less an hour
        assert set(i.price_terms) == {"spot", "reserved_1y", "reserved_3y"}
        assert i.price_date_of("spot") == dt.date(2026, 8, 6) and i.price_date_of("reserved_1y") == dt.date(2026, 9, 24)
    # the catalogue's date range takes in every term's date
    assert CAT.price_dates[1] >= "2026-09-24"


def test_a_term_dated_without_a_price_is_refused() -> None:
    row = CAT.instances["g4dn.xlarge"].model_dump()
    row["price_usd_per_hour"]["spot"] = None
    with pytest.raises(ValidationError, match="price_terms dates a spot price the row does not give"):
        InstanceSpec.model_validate(row)
