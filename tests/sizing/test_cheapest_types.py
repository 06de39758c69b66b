"""An instance type goes where a no dearer one of the same device, devices, cap, network and memory takes its replicas
(generate.cheapest_types), and only there."""

from __future__ import annotations

from typing import Any

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.generate import cheapest_types

CAT = load_catalogue()


def _fleet(**constraints: Any) -> Fleet:
    wl = [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 1.0, "input_tokens": 400, "output_tokens": 150}]
    return Fleet.model_validate({"workloads": wl, "constraints": constraints})


def _type(name: str, price: float | None, *, like: str = "g5.xlarge", **update: Any) -> Any:
    """A copy of instance type ``like`` with another name and on-demand price (``None``: unpublished) and fields."""
    base = CAT.instance(like)
    prices = base.price_usd_per_hour.model_copy(update={"on_demand": price})
    return base.model_copy(update={"name": name, "price_usd_per_hour": prices, **update})


def _kept(fl: Fleet, *types: Any) -> list[str]:
    return [i.name for i in cheapest_types(fl, list(types), CAT)]


def test_of_types_alike_the_cheapest_is_kept_wherever_it_comes() -> None:
    cheap, dear = _type("zz-cheap", 1.0), _type("aa-dear", 2.0)
    assert _kept(_fleet(), cheap, dear) == ["zz-cheap"]
    assert _kept(_fleet(), dear, cheap) == ["zz-cheap"]
    assert _kept(_fleet(), _type("b", 1.0), _type("a", 1.0)) == ["a"]  # a tie goes to the first name
    assert _kept(_fleet(), _type("b", 0.5), _type("a", None)) == ["a"]  # unpublished reads as free, as the sizer prices it
    assert _kept(_fleet(), _type("a", None), _type("b", 0.5)) == ["a"]


def test_a_type_capped_by_name_keeps_a_key_of_its_own() -> None:
    cheap, capped = _type("cheap", 1.0), _type("capped", 2.0)
    assert _kept(_fleet(availability={"capped": 3}), cheap, capped) == ["cheap", "capped"]
    assert _kept(_fleet(availability={"cheap": 3}), cheap, capped) == ["cheap", "capped"]
    assert _kept(_fleet(), cheap, capped) == ["cheap"]
    # two types capped at 3 each supply 6, and one capped at the default quota is still capped by name
    assert _kept(_fleet(availability={"cheap": 3, "capped": 3}), cheap, capped) == ["cheap", "capped"]
    assert _kept(_fleet(availability={"capped": 256}, max_instances_per_type=256), cheap, capped) == ["cheap", "capped"]


def test_types_of_other_devices_counts_networks_or_host_memory_are_kept_apart() -> None:
    base = _type("base", 1.0)
    assert _kept(_fleet(), base, _type("more", 2.0, devices=2)) == ["base", "more"]
    assert _kept(_fleet(), base, _type("l4", 2.0, device="l4")) == ["base", "l4"]
    efa = CAT.instance("g4dn.12xlarge").network
    eth = CAT.instance("g4dn.xlarge").network.model_copy(update={"gbps": efa.gbps})  # same speed, another kind
    assert _kept(_fleet(), _type("eth", 1.0, network=eth), _type("efa", 2.0, network=efa)) == ["eth", "efa"]
    assert _kept(_fleet(), _type("eth", 1.0, network=eth), _type("eth2", 2.0, network=eth)) == ["eth"]
    assert _kept(_fleet(), _type("slow", 1.0, network=eth.model_copy(update={"gbps": 10.0})), _type("fast", 2.0, network=eth)) == [
        "slow", "fast"]  # fmt: skip
    # a CPU's devices hold the host memory: c7a.48xlarge (192 GiB a socket) and m7a.48xlarge (384) are two devices' worth
    c7a = _type("c7a", 9.0, like="c7a.48xlarge")
    assert _kept(_fleet(), c7a, _type("m7a", 11.0, like="c7a.48xlarge", host_memory_gib=768.0)) == ["c7a", "m7a"]
    assert _kept(_fleet(), c7a, _type("c7a-twin", 11.0, like="c7a.48xlarge")) == ["c7a"]
