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


def test_both_pools_run_one_weight_format_and_one_kv_cache_format(cat: Catalogue) -> None:
    """The decode pool reads the cache the prefill pool writes: an fp8 prefill pool beside a bf16 decode pool was planned and exported."""
    fleet = Fleet.model_validate({"workloads": [{**WL, "requests_per_s": 5.0, "slo": {"ttft_ms": 1000.0, "tpot_ms": 50.0},
                                                 "disaggregation": {}}], "constraints": {"clouds": ["aws"]}})  # fmt: skip
    plan = size(fleet, cat, alternatives=False)
    pools = [next(w for w in plan.workloads if w.name == n) for n in ("chat.prefill", "chat.decode")]
    formats = {(d.weights_dtype, d.kv_dtype) for w in pools for d in w.deployments}
    assert len(formats) == 1, formats
    note = next(x for x in plan.warnings if "served disaggregated" in x)
    weights, kv = formats.pop()
    assert f"both pools run {weights} weights and the {kv} KV cache" in note and "ranks first by its cost objective" in note
    for p in ("bf16", "fp8"):  # the format chosen is the cheaper of the two, each sized with both pools pinned to it
        pinned = fleet.model_copy(update={"workloads": [fleet.workloads[0].model_copy(update={"precisions": [p]})]})
        assert plan.totals.usd_per_month <= size(pinned, cat, alternatives=False).totals.usd_per_month + 1e-6


def test_the_pools_format_is_chosen_with_the_whole_fleet_and_by_its_objective(cat: Catalogue) -> None:
    """Chosen on the workload alone, fp8 made a single-type fleet whose other workload runs on A100s infeasible (bf16 fits);
    chosen by cost alone, a latency objective got the slower of two equally priced formats."""
    other = {"name": "other", "model": "llama-3.1-8b", "requests_per_s": 2.0, "input_tokens": 1000, "output_tokens": 200,
             "slo": {"ttft_ms": 2000.0, "tpot_ms": 60.0}, "hardware": ["a100-80gb-sxm"]}  # fmt: skip
    single = Fleet.model_validate({"workloads": [{**WL, "disaggregation": {"transfer_gbps": 50.0}}, other],
                                   "constraints": {"clouds": ["aws"], "single_type": True}})  # fmt: skip
    plan = size(single, cat, alternatives=False)
    assert {(d.hardware, d.weights_dtype) for w in plan.workloads for d in w.deployments} == {("a100-80gb-sxm", "bf16")}
    fast = Fleet.model_validate({"workloads": [{**WL, "disaggregation": {"transfer_gbps": 50.0}}],
                                 "constraints": {"clouds": ["aws"], "objective": "latency", "budget_usd_per_month": 400_000}})  # fmt: skip
    chosen = size(fast, cat, alternatives=False)
    score = {}
    for p in ("bf16", "fp8"):
        pinned = fast.model_copy(update={"workloads": [fast.workloads[0].model_copy(update={"precisions": [p]})]})
        alone = size(pinned, cat, alternatives=False)
        score[p] = sum(w.ttft_ms / w.ttft_target_ms + (w.tpot_ms or 0.0) / (w.tpot_target_ms or 100.0) for w in alone.workloads)
    best = min(score, key=lambda p: score[p])
    assert {d.weights_dtype for w in chosen.workloads for d in w.deployments} == {best}
    assert any("ranks first by its latency objective" in x for x in chosen.warnings)


def test_several_disaggregated_workloads_choose_their_formats_in_turn(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each trial format of one workload searched the others' formats again: three workloads of two formats sized the fleet
    54 times (24 s; 1.2 s for one); in turn it is 2 + 2 + 2 (3.5 s), each workload's trials holding the earlier ones at their
    chosen formats and the later ones at their first."""
    import aicap.sizing.plan.sizer as sizer

    names = ("a", "b", "c")
    fleet = Fleet.model_validate({"workloads": [{**WL, "name": n, "model": m, "disaggregation": {"transfer_gbps": 50.0}}
                                                for n, m in zip(names, ("llama-3.1-70b", "llama-3.1-8b", "qwen2.5-7b"), strict=True)],
                                  "constraints": {"clouds": ["aws"]}})  # fmt: skip
    held: list[dict[str, list[str]]] = []
    real = sizer.size

    def counting(f: Fleet, *args: Any, **kwargs: Any) -> Any:
        held.append({w.name: list(w.precisions or []) for w in f.workloads})
        return real(f, *args, **kwargs)

    monkeypatch.setattr(sizer, "size", counting)
    insts, _ = allowed_instances(fleet, cat)
    out, notes = split(fleet, cat, insts)
    assert len(held) == 6, held  # two formats (bf16, fp8) for each of three workloads
    assert all(len(v) == 1 for trial in held for v in trial.values())  # every trial sizes a fleet of pinned formats
    chosen = {w.name.split(".")[0]: w.precisions for w in out.workloads}
    for i, n in enumerate(names):  # the later workloads' trials hold the earlier ones at their chosen format
        for trial in held[2 * i + 2 :]:
            assert trial[n] == chosen[n], (n, trial)
    assert len(notes) == 3


def test_a_later_workload_whose_first_format_cannot_serve_does_not_sink_the_earlier_choice(cat: Catalogue) -> None:
    """Held at its first format (mxfp4, which TGI does not serve), the later workload failed every trial of the earlier one's
    formats, and the fleet with it, where both plan in bf16."""
    a = {**WL, "name": "a", "model": "llama-3.1-8b", "precisions": ["bf16", "fp8"], "disaggregation": {"transfer_gbps": 50.0}}
    b = {**a, "name": "b", "engine": "tgi", "precisions": ["mxfp4", "bf16"]}
    plan = size(Fleet.model_validate({"workloads": [a, b], "constraints": {"clouds": ["aws"]}}), cat, alternatives=False)
    formats = {w.name: {d.weights_dtype for d in w.deployments} for w in plan.workloads}
    assert formats["b.prefill"] == formats["b.decode"] == {"bf16"}
    assert formats["a.prefill"] == formats["a.decode"] and len(formats["a.prefill"]) == 1


def test_an_fp32_model_keeps_its_cache_in_fp32_in_both_pools_and_moves_four_bytes_an_element(cat: Catalogue) -> None:
    """A workload names no fp32 cache (kv_dtype's choices): pinning one was an internal error; the transfer was costed at 2 bytes."""
    wl = {**WL, "model": "llama-3.1-8b", "requests_per_s": 1.0, "precisions": ["fp32"], "slo": {"ttft_ms": 1000.0}}
    fleet = Fleet.model_validate({"workloads": [{**wl, "disaggregation": {"transfer_gbps": 25.0}}], "constraints": {"clouds": ["aws"]}})
    plan = size(fleet, cat, alternatives=False)
    assert {(d.weights_dtype, d.kv_dtype) for w in plan.workloads for d in w.deployments} == {("fp32", "fp32")}
    model = cat.model("llama-3.1-8b")
    assert isinstance(model, DecoderModel)
    move = transfer_ms(fleet.workloads[0], model, 25.0, "fp32")
    assert move == pytest.approx(2 * transfer_ms(fleet.workloads[0], model, 25.0, "bf16"))
    assert any(f"KV transfer {move:.1f} ms at 25 Gbit/s (fp32 KV cache)" in x for x in plan.warnings)


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
    ({"model": "bge-large-en", "input_tokens": 500, "output_tokens": 1, "slo": {"ttft_ms": 100.0}}, "is not a decoder"),
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


def test_split_keeps_each_pools_share_of_the_workload(cat: Catalogue) -> None:
    wl = {**WL, "input_tokens": [{"tokens": 500, "weight": 3.0}, {"tokens": 4000, "weight": 1.0}], "kv_dtype": "fp8",
          "speculative": {"method": "eagle"}, "hardware": ["h100-sxm", "h200-sxm"], "min_network_gbps": 100.0, "prefix_cached_share": 0.2,
          "disaggregation": {"transfer_gbps": 50.0, "decode_hardware": ["h200-sxm"]}}  # fmt: skip
    fleet = Fleet.model_validate({"workloads": [wl, {"name": "other", "model": "llama-3.1-8b", "requests_per_s": 1.0}],
                                  "constraints": {"clouds": ["aws"]}})  # fmt: skip
    insts, _ = allowed_instances(fleet, cat)
    out, notes = split(fleet, cat, insts)
    pre, dec, other = out.workloads
    assert other == fleet.workloads[1] and len(notes) == 1
    move = 327_680 / 2 * 4000 * 8 / 50e9 * 1e3  # fp8 KV of the longest prompt
    assert pre.slo.ttft_ms == pytest.approx(1500 * 0.9 - move, abs=2e-3) and pre.slo.ttft_ms <= 1500 * 0.9 - move
    assert dec.prefix_cached_share == pytest.approx(1 - 1 / 500) and pre.prefix_cached_share == 0.2
    assert pre.speculative is None and dec.speculative is not None and dec.speculative.method == "eagle"
    assert pre.hardware == ["h100-sxm", "h200-sxm"] and dec.hardware == ["h200-sxm"]
    assert pre.min_network_gbps == dec.min_network_gbps == 100.0  # the workload's own floor is the larger
    assert pre.disaggregated_role == "prefill" and dec.disaggregated_role == "decode" and pre.disaggregation is None
    assert pre.input_tokens == dec.input_tokens == fleet.workloads[0].input_tokens and dec.output_tokens == 300


def test_a_fleet_without_disaggregation_is_returned_as_it_is(cat: Catalogue) -> None:
    fleet = Fleet.model_validate({"workloads": [WL], "constraints": {"clouds": ["aws"]}})
    assert split(fleet, cat, [])[0] is fleet


def test_tokens_per_s_becomes_the_same_request_rate_in_both_pools(cat: Catalogue) -> None:
    wl = {k: v for k, v in WL.items() if k != "requests_per_s"} | {"tokens_per_s": 1500.0, "disaggregation": {"transfer_gbps": 50.0}}
    fleet = Fleet.model_validate({"workloads": [wl], "constraints": {"clouds": ["aws"]}})
    pre, dec = split(fleet, cat, [])[0].workloads
    assert pre.rate == dec.rate == pytest.approx(5.0) and pre.tokens_per_s is None


def test_link_tiers_are_the_rdma_networks_of_the_pools_devices(cat: Catalogue) -> None:
    fleet = _fleet(prefill_hardware=["h100-sxm"], decode_hardware=["a100-40gb-sxm"])
    insts, _ = allowed_instances(fleet, cat)
    tiers = link_tiers(fleet.workloads[0], insts)
    want = sorted({i.network.gbps / i.devices for i in insts if i.network is not None and i.network.kind != "ethernet"
                   and i.device in ("h100-sxm", "a100-40gb-sxm")})  # fmt: skip
    assert tiers == want and tiers[0] < tiers[-1]
    only_ethernet = [i for i in insts if i.network is not None and i.network.kind == "ethernet"]
    with pytest.raises(InputError, match="no allowed instance type has a sourced RDMA-class one"):
        link_tiers(fleet.workloads[0], only_ethernet)
    # A given link is used as it is, and the note names no tier search.
    fixed = _fleet(transfer_gbps=50.0)
    _, notes = split(fixed, cat, insts)
    assert "at 50 Gbit/s" in notes[0] and "link tier" not in notes[0]


def test_whatif_and_the_pareto_front_report_the_ttft_users_see(cat: Catalogue) -> None:
    from aicap.hardware_db.launch import quality_figures
    from aicap.sizing.plan.disaggregate import user_ttfts
    from aicap.sizing.plan.pareto import pareto
    from aicap.sizing.plan.whatif import named_change, whatif

    plain = Fleet.model_validate({"workloads": [WL], "constraints": {"clouds": ["aws"]}})
    base, alt = whatif(plain, cat, [named_change("disaggregate")], quality_figures()).alternatives
    assert alt.usd_per_month is not None and base.usd_per_month is not None and alt.delta_usd_per_month is not None
    assert alt.delta_usd_per_month == pytest.approx(alt.usd_per_month - base.usd_per_month, abs=0.1)  # whichever is cheaper
    assert alt.ttft_ms is not None and alt.ttft_ms <= 1500.0 and alt.assumption and "served disaggregated" in alt.assumption
    plan = size(_fleet(transfer_gbps=50.0), cat, alternatives=False)
    pre, dec = (next(w for w in plan.workloads if w.name == n) for n in ("chat.prefill", "chat.decode"))
    # The TTFT target was split for the KV format both pools run; users see the transfer of that format: 327,680 bytes a
    # token in 16 bit, half in fp8.
    per_token = 327_680 * (0.5 if {d.kv_dtype for d in pre.deployments} == {"fp8"} else 1.0)
    composed = pre.ttft_ms + per_token * 2000 * 8 / 50e9 * 1e3 + dec.ttft_ms
    assert user_ttfts(plan, cat) == {"chat": pytest.approx(composed, abs=0.01)}
    front = pareto(_fleet(transfer_gbps=50.0), cat, factors=(1.0, 2.0))
    chosen = next(p for p in front.pareto if p.chosen)
    assert chosen.ttft_ms == pytest.approx(composed, abs=0.01) and chosen.usd_per_month == plan.totals.usd_per_month


def test_pools_use_rdma_networks_in_one_cloud_and_region() -> None:
    # The link tier's speed was the only test: a decode pool landed on Ethernet, and the pools in different clouds
    # (a TPU prefill pool on GCP, a GPU decode pool on Azure) with the KV hand-off priced at the tier's speed.
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.core.fleet import Fleet
    from aicap.sizing.plan.sizer import size
    from aicap.sizing.serve.disaggregated import RDMA

    cat = load_catalogue()
    for hw in (None, ["h100-nvl", "l40s", "a10g", "l4"]):
        wl = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 5.0, "input_tokens": 2000, "output_tokens": 300,
              "slo": {"ttft_ms": 1500, "tpot_ms": 40, "percentile": "p99"}, "disaggregation": {}}  # fmt: skip
        cons: dict[str, object] = {"clouds": ["aws", "azure", "gcp"], **({"hardware": hw} if hw else {})}
        plan = size(Fleet.model_validate({"workloads": [wl], "constraints": cons}), cat, alternatives=False)
        places = set()
        for w in plan.workloads:
            for d in w.deployments:
                inst = cat.instance(d.instance_type)
                assert inst.network is not None and inst.network.kind in RDMA, (w.name, d.instance_type)
                places.add((inst.cloud, inst.region))
        assert len(places) == 1, places


def test_keeping_the_pools_together_leaves_other_workloads_and_the_constraints_alone() -> None:
    # Pools that landed apart once re-planned the whole fleet in one cloud and region, moving an ordinary workload
    # off its cheapest cloud and writing clouds/regions the user never gave into the plan's inputs.
    from aicap.hardware_db import load_catalogue
    from aicap.sizing.core.fleet import Fleet
    from aicap.sizing.plan.sizer import size

    cat = load_catalogue()
    assistant = {"name": "assistant", "model": "llama-3.1-70b", "requests_per_s": 5, "input_tokens": 2000, "output_tokens": 300,
                 "slo": {"ttft_ms": 1500, "tpot_ms": 40, "percentile": "p99"}, "disaggregation": {"transfer_gbps": 50}}  # fmt: skip
    small = {"name": "small", "model": "llama-3.1-8b", "requests_per_s": 1, "input_tokens": 500, "output_tokens": 200,
             "slo": {"ttft_ms": 3000, "tpot_ms": 100, "percentile": "p99"}}  # fmt: skip
    both = size(Fleet.model_validate({"workloads": [assistant, small]}), cat, alternatives=False)
    alone = size(Fleet.model_validate({"workloads": [small]}), cat, alternatives=False)
    pools = size(Fleet.model_validate({"workloads": [assistant]}), cat, alternatives=False)
    assert both.inputs.constraints.clouds is None and both.inputs.constraints.regions is None
    # "small" keeps its own cheapest instance, or rides on devices the pools' instances leave free: never dearer.
    shared = {d.instance_type for w in pools.workloads for d in w.deployments}
    assert all(d.instance_type in shared for d in both.workload("small").deployments) or (
        [d.instance_type for d in both.workload("small").deployments] == [d.instance_type for d in alone.workload("small").deployments]
    )
    assert both.totals.usd_per_month <= pools.totals.usd_per_month + alone.totals.usd_per_month + 0.01
    places = {(cat.instance(d.instance_type).cloud, cat.instance(d.instance_type).region)
              for w in both.workloads if w.name.startswith("assistant.") for d in w.deployments}  # fmt: skip
    assert len(places) == 1 and any("kept in one cloud and region" in x for x in both.warnings)


def test_a_replicas_devices_each_move_their_own_share_of_the_cache(deploy) -> None:
    # estimate --disaggregate gave 26.8 ms at TP1, 2, 4 and 8 alike: the whole cache over one device's link
    from aicap.sizing.serve.disaggregated import replica_transfer_ms
    from aicap.sizing.serve.disaggregated import transfer_ms as whole

    llama = [deploy("llama-3.1-70b", "h100-sxm", tp=tp, pp=pp) for tp, pp in ((1, 1), (4, 1), (8, 1), (4, 2))]
    one = replica_transfer_ms(llama[0], llama[0], 2000, 50.0)
    assert one == pytest.approx(whole(llama[0].model, "bf16", 2000, 50.0))  # TP1·PP1: the whole cache, one link
    assert replica_transfer_ms(llama[1], llama[1], 2000, 50.0) == pytest.approx(one / 4)  # 2 of the 8 KV heads a device
    assert replica_transfer_ms(llama[2], llama[2], 2000, 50.0) == pytest.approx(one / 8)
    assert replica_transfer_ms(llama[3], llama[3], 2000, 50.0) == pytest.approx(one / 8)  # and half the layers a stage
    assert replica_transfer_ms(llama[2], llama[0], 2000, 50.0) == pytest.approx(one)  # a TP1 decode replica receives it all
    mla = [deploy("deepseek-v3", "h200-sxm", weights_dtype="fp8", tp=tp) for tp in (1, 8)]
    # MLA's latent is whole on every device of the group: tensor parallelism does not split it
    assert replica_transfer_ms(mla[1], mla[1], 2000, 50.0) == pytest.approx(replica_transfer_ms(mla[0], mla[0], 2000, 50.0))


def test_why_a_device_lost_a_pool_names_the_filter_its_types_fail(cat: Catalogue) -> None:
    """It listed the ~25 instance types aicap kept the pools to, a10g's own among them, where the network was the cause."""
    from aicap.sizing.core.fleet import Workload
    from aicap.sizing.plan.alternatives import filters_of

    kept = ["g5.xlarge", "p5.48xlarge"]
    pool = Workload.model_validate({**WL, "name": "chat.prefill", "disaggregated_role": "prefill", "instance_types": kept,
                                    "min_network_gbps": 50.0})  # fmt: skip
    g5 = [cat.instance("g5.xlarge")]
    assert filters_of(pool, g5) == "a scale-out network of at least 50 Gbit/s a device"
    assert filters_of(pool) == "the cloud and region its other pool is kept in; a scale-out network of at least 50 Gbit/s a device"
    mine = Workload.model_validate({**WL, "instance_types": ["g5.xlarge"]})
    assert filters_of(mine, [cat.instance("p5.48xlarge")]) == "instance_types g5.xlarge"
