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
    rows = Rows(shape=[0, 0, 0, 0, 1, 1], device=[0, 1, 0, 1, 0, 1], tp=[1, 1, 2, 2, 1, 1], pp=[1, 1, 1, 1, 1, 1])
    slots = np.array([256.0, 256.0, 40.0, 90.0, 0.0, 0.0])  # capped alike; memory-bound at device 0; no fit on either
    assert shadowed(rows, slots, {1: [0]}).tolist() == [False, True, False, False, False, False]
    assert shadowed(rows, slots, {0: [1]}).tolist() == [True, False, False, False, False, False]
    assert not shadowed(rows, slots, {}).any()


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
