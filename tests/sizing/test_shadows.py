"""A CPU in instances of other host memory is evaluated once per memory; a cheaper variant's rows stand in for a dearer
one's where they hold as many slots (generate.shadows, screen.shadowed), without changing any plan."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import candidates, generate
from aicap.sizing.plan.generate import DevKey, cheapest_types, device_key
from aicap.sizing.plan.screen import Rows, shadowed
from aicap.sizing.plan.sizer import allowed_instances, size

CAT = load_catalogue()


def _fleet(extra: dict[str, Any] | None = None, **constraints: Any) -> Fleet:
    """CPU serving: short chat (slots at the engine's cap on every EPYC instance) and 30k-token prompts (memory-bound at every
    host memory: 128 KiB of KV cache a token)."""
    wl = [
        {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 3.0, "input_tokens": 400, "output_tokens": 150,
         "slo": {"ttft_ms": 20000, "tpot_ms": 400}, "precisions": ["bf16"]},
        {"name": "long", "model": "llama-3.1-8b", "requests_per_s": 0.2, "input_tokens": 30000, "output_tokens": 300,
         "slo": {"ttft_ms": 300000, "tpot_ms": 3000}, "precisions": ["bf16"]},
    ]  # fmt: skip
    wl[0].update(extra or {})
    return Fleet.model_validate({"workloads": wl, "constraints": {"hardware": ["epyc-9654", "xeon-8480"], **constraints}})


def _options(fl: Fleet) -> tuple[list[DevKey], dict[DevKey, list[Any]]]:
    insts, _ = allowed_instances(fl, CAT)
    by: dict[DevKey, list[Any]] = {}
    for inst in cheapest_types(fl, insts, CAT):
        by.setdefault(device_key(CAT, inst), []).append(inst)
    return list(by), by


def _names(fl: Fleet) -> dict[tuple[DevKey, ...], list[tuple[DevKey, ...]]]:
    keys, by = _options(fl)
    return {(keys[b],): [(keys[a],) for a in under] for b, under in generate.shadows(fl, keys, by, fl.workloads).items()}


def test_the_cheapest_variant_stands_in_for_the_others_of_its_device() -> None:
    keys, by = _options(_fleet())
    price = {k: min(i.price("on_demand") / i.devices for i in by[k]) for k in keys}
    epyc = sorted((k for k in keys if k[0] == "epyc-9654"), key=lambda k: price[k])
    assert len(epyc) >= 3  # Azure HB176rs v4 (384 GiB a socket), AWS c7a.48xlarge (192), GCP c3d-standard-360 (720)
    got = _names(_fleet())
    cheapest = epyc[0]
    assert (cheapest,) not in got  # nothing cheaper stands in for it
    for k in epyc[1:]:
        assert (cheapest,) in got[(k,)], (k, got)


def test_a_type_capped_by_name_neither_stands_in_nor_is_stood_in_for() -> None:
    c7a = ("epyc-9654", 192.0)  # capped, it supplies only its cap: the device's other variants may be needed beside it
    assert (c7a,) in _names(_fleet())
    got = _names(_fleet(availability={"c7a.48xlarge": 4}))
    assert (c7a,) not in got and all((c7a,) not in under for under in got.values()), got
    assert got  # the other EPYC variants still pair


def test_no_variant_stands_in_where_a_workload_names_instance_types_or_a_network() -> None:
    assert _names(_fleet({"instance_types": ["c7a.48xlarge"]})) == {}
    # c7a.48xlarge (50 Gb/s Ethernet) and HB176rs v4 (InfiniBand) pair only where no workload reads the network
    keys, by = _options(_fleet({"network_kinds": ["ethernet"]}))
    got = generate.shadows(_fleet({"network_kinds": ["ethernet"]}), keys, by, _fleet({"network_kinds": ["ethernet"]}).workloads)
    nets = {k: {i.network.kind if i.network else None for i in by[k]} for k in keys}
    for b, under in got.items():
        assert all(nets[keys[a]] == nets[keys[b]] for a in under)


def test_a_row_goes_only_where_a_partner_holds_as_many_slots() -> None:
    rows = Rows(shape=[0, 0, 0, 0, 1, 1, 2, 2], device=[0, 1, 0, 1, 0, 1, 0, 1], tp=[1, 1, 2, 2, 1, 1, 1, 1], pp=[1] * 8)
    slots = np.array([256.0, 256.0, 40.0, 90.0, 0.0, 0.0, 1.0, 1.0])  # capped alike; memory-bound at 0; no fit; one slot on both
    got = shadowed(rows, slots, {1: [0]})
    assert got.dtype == np.bool_ and got.tolist() == [False, True, False, False, False, False, False, True]
    assert shadowed(rows, slots, {0: [1]}).tolist() == [True, False, False, False, False, False, True, False]
    assert shadowed(rows, slots, {}).dtype == np.bool_ and not shadowed(rows, slots, {}).any()


def _variant(name: str, host_gib: float, price: float, devices: int = 2, network: Any = None) -> Any:
    """An EPYC instance type like c7a.48xlarge with another name, host memory, price, socket count or network."""
    base = CAT.instance("c7a.48xlarge")
    prices = base.price_usd_per_hour.model_copy(update={"on_demand": price})
    return base.model_copy(update={"name": name, "host_memory_gib": host_gib, "devices": devices, "network": network,
                                   "price_usd_per_hour": prices})  # fmt: skip


def _shadows(fl: Fleet, *types: Any) -> dict[int, list[int]]:
    by: dict[DevKey, list[Any]] = {}
    for inst in types:
        by.setdefault(device_key(CAT, inst), []).append(inst)
    return generate.shadows(fl, list(by), by, fl.workloads)


def test_variants_at_one_price_stand_in_one_way_only() -> None:
    small, large = _variant("small", 384.0, 9.0), _variant("large", 768.0, 9.0)
    assert _shadows(_fleet(), small, large) == {1: [0]}
    assert _shadows(_fleet(), large, small) == {1: [0]}  # the first, whichever it is
    assert _shadows(_fleet(), small, _variant("dear", 768.0, 9.5)) == {1: [0]}
    assert _shadows(_fleet(), _variant("dear", 384.0, 9.5), large) == {0: [1]}


def test_a_variant_covers_another_at_its_cheapest_type_of_each_kind_and_reads_unpublished_prices_as_free() -> None:
    cheap, dear = _variant("cheap", 384.0, 9.0), _variant("dear", 384.0, 10.0)  # one variant, two types alike
    assert _shadows(_fleet(), cheap, dear, _variant("large", 768.0, 9.5)) == {1: [0]}
    free = _variant("free", 384.0, 9.0).model_copy(
        update={"price_usd_per_hour": cheap.price_usd_per_hour.model_copy(update={"on_demand": None})}
    )
    assert _shadows(_fleet(), free, _variant("large", 768.0, 0.5)) == {1: [0]}
    assert _shadows(_fleet(), _variant("small", 384.0, 0.5), free.model_copy(update={"host_memory_gib": 768.0})) == {0: [1]}


def test_a_variant_covers_another_only_where_each_of_its_types_has_a_partner_no_dearer() -> None:
    # the 768 GiB variant has a one-socket type that the 384 GiB one lacks: nothing may stand in for it
    one = _variant("large-1s", 384.0, 4.0, devices=1)  # 384 GiB per socket, as "large"
    assert _shadows(_fleet(), _variant("small", 384.0, 9.0), _variant("large", 768.0, 9.5), one) == {}
    assert _shadows(_fleet(), _variant("xeon-like", 384.0, 1.0).model_copy(update={"device": "xeon-8480"}),
                    _variant("epyc", 384.0, 9.0)) == {}  # fmt: skip  # another device never stands in


def test_the_network_pairs_types_only_where_a_workload_asks_for_one() -> None:
    efa = CAT.instance("g4dn.12xlarge").network
    eth = CAT.instance("g4dn.xlarge").network.model_copy(update={"gbps": efa.gbps})  # same speed, another kind
    small, large = _variant("small", 384.0, 9.0, network=eth), _variant("large", 768.0, 9.5, network=efa)
    assert _shadows(_fleet(), small, large) == {1: [0]}
    assert _shadows(_fleet({"network_kinds": ["efa", "ethernet"]}), small, large) == {}
    slow = _variant("slow", 384.0, 9.0, network=eth.model_copy(update={"gbps": 10.0}))
    assert _shadows(_fleet({"min_network_gbps": 1.0}), slow, _variant("fast", 768.0, 9.5, network=eth)) == {}
    assert _shadows(_fleet({"min_network_gbps": 1.0}), small, _variant("twin", 768.0, 9.5, network=eth)) == {1: [0]}


def test_shadowing_drops_rows_and_changes_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    fl = _fleet()
    seen: list[tuple[int, int, int]] = []  # (rows, dropped, rows of shadowed options)
    real = candidates.shadowed

    def spy(rows: Rows, slots: Any, sh: dict[int, list[int]]) -> Any:
        out = real(rows, slots, sh)
        seen.append((len(rows.tp), int(out.sum()), int(np.isin(rows.device, list(sh)).sum()) if sh else 0))
        return out

    monkeypatch.setattr(candidates, "shadowed", spy)
    with_shadows = size(fl, CAT, alternatives=True, jobs=1)
    dropped, exposed = sum(s[1] for s in seen), sum(s[2] for s in seen)
    assert 0 < dropped < exposed  # the short chat's rows go; the long prompts' memory-bound rows stay
    monkeypatch.setattr(generate, "shadows", lambda *a: {})
    without = size(fl, CAT, alternatives=True, jobs=1)
    assert with_shadows.totals.usd_per_month == without.totals.usd_per_month
    assert [(i.instance_type, i.count) for i in with_shadows.instances] == [(i.instance_type, i.count) for i in without.instances]
    alternatives = [[(a.hardware, a.usd_per_month) for a in p.alternatives] for p in (with_shadows, without)]
    assert alternatives[0] == alternatives[1]
