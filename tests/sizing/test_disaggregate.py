"""Disaggregated prefill and decode: two pools sized to the same demand, the TTFT target split with the KV transfer."""

from __future__ import annotations

from typing import Any

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.plan.disaggregate import link_tiers, split, transfer_ms
from aicap.sizing.plan.sizer import allowed_instances, size

WL: dict[str, Any] = {"name": "chat", "model": "llama-3.1-70b", "requests_per_s": 5.0, "input_tokens": 2000, "output_tokens": 300,
                      "slo": {"ttft_ms": 1500.0, "tpot_ms": 40.0}}  # fmt: skip


def _fleet(**disagg: Any) -> Fleet:
    return Fleet.model_validate({"workloads": [{**WL, "disaggregation": disagg}], "constraints": {"clouds": ["aws"]}})


def test_the_transfer_is_the_prompts_kv_cache_over_the_link(cat: Catalogue) -> None:
    model = cat.model("llama-3.1-70b")
    assert isinstance(model, DecoderModel)
    w = _fleet().workloads[0]
    # 80 layers x 2 (K, V) x 8 KV heads x 128 x 2 bytes = 327,680 B per token; 2,000 tokens over 50 Gbit/s.
    assert transfer_ms(w, model, 50.0) == pytest.approx(327_680 * 2000 * 8 / 50e9 * 1e3)


def test_split_gives_each_pool_its_share_of_the_targets(cat: Catalogue) -> None:
    fleet = _fleet(transfer_gbps=50.0, decode_ttft_share=0.2, prefill_hardware=["h100-sxm"])
    insts, _ = allowed_instances(fleet, cat)
    out, notes = split(fleet, cat, insts)
    pre, dec = out.workloads
    move = 327_680 * 2000 * 8 / 50e9 * 1e3
    assert (pre.name, dec.name) == ("chat.prefill", "chat.decode")
    assert pre.output_tokens == 1 and pre.slo.tpot_ms is None and pre.slo.ttft_ms == pytest.approx(1500 * 0.8 - move, abs=1e-3)
    assert dec.slo.ttft_ms == pytest.approx(300.0) and dec.slo.tpot_ms == 40.0 and dec.prefix_cached_share == pytest.approx(1 - 1 / 2000)
    assert pre.hardware == ["h100-sxm"] and dec.hardware is None
    assert pre.min_network_gbps == dec.min_network_gbps == 50.0 and pre.rate == dec.rate == 5.0
    assert len(notes) == 1 and "its TTFT is the sum, ≤ 1500 ms" in notes[0]


def test_a_disaggregated_plan_keeps_the_composed_promise_on_fast_enough_links(cat: Catalogue) -> None:
    fleet = _fleet(transfer_gbps=50.0, prefill_hardware=["h100-sxm"], decode_hardware=["a100-40gb-sxm", "a100-80gb-sxm"])
    plan = size(fleet, cat)
    pre, dec = (next(w for w in plan.workloads if w.name == n) for n in ("chat.prefill", "chat.decode"))
    move = 327_680 * 2000 * 8 / 50e9 * 1e3
    assert pre.ttft_ms + move + dec.ttft_ms <= 1500.0 and dec.tpot_ms is not None and dec.tpot_ms <= 40.0
    assert pre.served_requests_per_s == dec.served_requests_per_s == 5.0
    assert {d.hardware for d in pre.deployments} == {"h100-sxm"}
    assert {d.hardware for d in dec.deployments} <= {"a100-40gb-sxm", "a100-80gb-sxm"}
    for w in (pre, dec):
        for d in w.deployments:
            share = cat.instance(d.instance_type).network_gbs_per_device
            assert share is not None and share * 8 >= 50.0
    assert any("served disaggregated" in x for x in plan.warnings)


def test_without_a_link_the_cheapest_tier_is_chosen(cat: Catalogue) -> None:
    fleet = _fleet()
    insts, _ = allowed_instances(fleet, cat)
    tiers = link_tiers(fleet.workloads[0], insts)
    assert len(tiers) > 2 and tiers == sorted(tiers)
    chosen = size(fleet, cat, alternatives=False)
    for g in (tiers[0], tiers[-1]):
        fixed = size(_fleet(transfer_gbps=g), cat, alternatives=False)
        assert chosen.totals.usd_per_month <= fixed.totals.usd_per_month + 1e-6
    assert any("link tier was the cheapest of" in x for x in chosen.warnings)


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "bge-large-en", "output_tokens": 1, "slo": {"ttft_ms": 100.0}}, "is not a decoder"),
    ({"slo": {"tpot_ms": 40.0}}, "give slo.ttft_ms"),
    ({"disaggregation": {"transfer_gbps": 0.5}}, "more than the prefill pool's share"),
    ({"requests_per_s": [5.0] * 24}, "not hour by hour"),
])  # fmt: skip
def test_what_cannot_be_split_is_an_input_error(cat: Catalogue, change: dict[str, Any], message: str) -> None:
    from aicap.sizing.plan.periods import size_periods

    w = {**WL, "disaggregation": {}, **change}
    fleet = Fleet.model_validate({"workloads": [w], "constraints": {"clouds": ["aws"]}})
    with pytest.raises(InputError, match=message):
        (size_periods if isinstance(w["requests_per_s"], list) else size)(fleet, cat)
