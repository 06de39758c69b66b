"""Replicas spanning instances: pipeline stages over the instance network where a model outgrows one instance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.perf.roofline import network_time
from aicap.sizing.plan.fleet_io import build_fleet
from aicap.sizing.plan.generate import all_candidates
from aicap.sizing.plan.layouts import crossings, layouts, scale_out_bps, spans_instances
from aicap.sizing.plan.sizer import allowed_instances, size
from aicap.sizing.sim.verify import verify


def test_spanning_layouts_pipeline_across_instances_or_one_tensor_group_over_them(cat: Catalogue) -> None:
    inst, dev, model = cat.instance("p5.48xlarge"), cat.device("h100-sxm"), cat.model("deepseek-v3")
    inside = layouts(model, inst, dev)
    spanning = set(layouts(model, inst, dev, span=4)) - set(inside)
    assert spanning == {(4, 4), (8, 2), (4, 8), (8, 4), (16, 1), (32, 1)}  # 128 heads: TP 16 and 32 over 2 and 4 nodes
    assert all(tp * pp <= 8 for tp, pp in inside)
    narrow = model.model_copy(update={"num_heads": 24})  # 24 heads: no tensor-parallel group over 16 devices
    assert not {(16, 1), (32, 1)} & set(layouts(narrow, inst, dev, span=4))


def test_only_whole_gpu_nodes_with_a_sourced_network_span(cat: Catalogue) -> None:
    p5, h100 = cat.instance("p5.48xlarge"), cat.device("h100-sxm")
    assert spans_instances(p5, h100)
    assert not spans_instances(p5.model_copy(update={"network": None}), h100)  # no sourced network: no spanning
    g5 = cat.instance("g5.xlarge")  # one A10G: not a whole fast-link domain
    assert not spans_instances(g5, cat.device(g5.device))
    tpu = next(i for i in cat.instances.values() if cat.device(i.device).kind == "tpu" and i.network is not None)
    assert not spans_instances(tpu, cat.device(tpu.device))


def test_crossings_count_instance_boundaries() -> None:
    assert crossings(np.array([8, 8, 4, 2]), np.array([1, 2, 8, 1]), 8).tolist() == [0.0, 1.0, 3.0, 0.0]
    # a stage of 16 devices fills two instances: no pipeline boundary inside the replica, or every one of them crosses
    assert crossings(np.array([16, 16, 16]), np.array([1, 2, 4]), 8).tolist() == [0.0, 1.0, 3.0]


def test_a_tensor_parallel_group_over_instances_all_reduces_at_the_network_rate(deploy) -> None:
    d = deploy("deepseek-v3", "h100-sxm", weights_dtype="fp8")
    tokens, link, lat = 4096.0, 400e9, 20e-6
    m = d.model
    nvlink = float(network_time(d, tokens, 16, 1, 1, link_bps=link, latency_s=lat, cross_bps=25e9, domain=16))
    efa = float(network_time(d, tokens, 16, 1, 1, link_bps=link, latency_s=lat, cross_bps=25e9, domain=8))
    msg = tokens * m.hidden_size * 2.0
    all_reduces = 2 * m.num_layers  # two per layer (the MoE layers' second is an all-reduce at ep 1)
    assert nvlink == pytest.approx(all_reduces * (2 * 15 / 16 * msg / link + lat))
    assert efa == pytest.approx(all_reduces * (2 * 15 / 16 * msg / 25e9 + lat))
    # expert parallel over 16 devices: the all-to-alls cross too
    ep_efa = float(network_time(d, tokens, 16, 1, 16, link_bps=link, latency_s=lat, cross_bps=25e9, domain=8))
    ep_nvlink = float(network_time(d, tokens, 16, 1, 16, link_bps=link, latency_s=lat, cross_bps=25e9, domain=16))
    assert ep_efa > ep_nvlink


def test_tensor_parallel_beyond_the_domain_needs_whole_instances_and_a_network(cat: Catalogue, deploy) -> None:
    from aicap.sizing.core.errors import InputError

    with pytest.raises(InputError, match=r"--tp 16: h100-sxm links 8 device\(s\) per fast-link domain and no catalogued instance"):
        deploy("deepseek-v3", "h100-sxm", tp=16, weights_dtype="fp8").check()
    net = scale_out_bps([cat.instance("p5.48xlarge")], cat.device("h100-sxm"), 0.5)
    from dataclasses import replace

    replace(deploy("deepseek-v3", "h100-sxm", tp=16, weights_dtype="fp8"), scale_out_bps=net).check()  # two whole instances


def test_p5_scale_out_per_device_is_its_efa_share(cat: Catalogue) -> None:
    # 3,200 Gbit/s over 8 GPUs = 50 GB/s per device, times the link efficiency
    assert scale_out_bps([cat.instance("p5.48xlarge")], cat.device("h100-sxm"), 0.5) == pytest.approx(25e9)


def test_hand_offs_over_the_instance_network_cost_more_than_over_nvlink(deploy) -> None:
    d = deploy("deepseek-v3", "h100-sxm", weights_dtype="fp8")
    nvlink = float(network_time(d, 4096.0, 8, 2, 1))
    efa = float(network_time(d, 4096.0, 8, 2, 1, crossings=1.0, cross_bps=25e9))
    assert efa > nvlink


def _deepseek(cat: Catalogue, hardware: str = "h100-sxm", model: str = "deepseek-v3"):  # type: ignore[no-untyped-def]
    return build_fleet(model=model, rate=2.0, input_tokens=1024, output_tokens=256, ttft_ms=None, tpot_ms=None, percentile="p99",
                       precision="fp8", hardware=hardware, cloud="aws")  # fmt: skip


def test_deepseek_v3_on_h100_spans_two_nodes_and_keeps_its_promises(cat: Catalogue) -> None:
    # Two 8-GPU H100 instances either way: wide EP (16 attention groups, experts over both) on the default profile, which
    # carries more at the same cost; TP8·PP2 on the same profile without data-parallel attention (the two-node pipelines
    # carry within a few per cent of each other: under the plain roofline TP4·PP4 had 24.3 req/s a replica against
    # TP8·PP2's 23.5; with Hopper's exposed share, which charges the deeper pipeline's smaller micro-batches more, TP8·PP2).
    fleet = _deepseek(cat)
    vllm = fleet.model_copy(update={"workloads": [w.model_copy(update={"engine": "vllm"}) for w in fleet.workloads]})
    tp_only = replace(cat, engines={**cat.engines, "vllm": cat.engines["vllm"].model_copy(update={"dp_attention": None})})
    for f, c, layout in ((fleet, cat, (16, 1, 16)), (vllm, tp_only, (8, 2, 1))):
        plan = size(f, c, alternatives=False)
        (d,) = plan.workloads[0].deployments
        assert (d.tp, d.pp, d.dp_attention, d.instance_type) == (*layout, "p5.48xlarge")
        assert d.instances == pytest.approx(2.0) and plan.totals.instances == 2
        for v in verify(plan, c):
            assert v.stable and v.meets_targets
            assert abs(v.ttft_promised_ms / v.ttft_simulated_ms - 1) < 0.3


def test_a_model_that_fits_one_instance_gets_no_spanning_layouts(cat: Catalogue) -> None:
    fleet = _deepseek(cat, model="llama-3.1-70b")
    insts, _ = allowed_instances(fleet, cat)
    cands = all_candidates(fleet, cat, insts)
    assert all(c.devices <= cat.instance(c.instance).devices for c in cands[fleet.workloads[0].name])


def test_an_engine_without_a_multi_node_start_keeps_replicas_inside_one_instance(cat: Catalogue) -> None:
    # TGI's profile records no start of a replica over machines (EngineSpec.spans_instances): DeepSeek-V3 fp8, which outgrows
    # one 8-GPU H100 instance, has no feasible layout on it, where vLLM's profile spans two.
    fleet = _deepseek(cat)
    tgi = fleet.model_copy(update={"workloads": [w.model_copy(update={"engine": "tgi"}) for w in fleet.workloads]})
    insts, _ = allowed_instances(tgi, cat)
    cands = all_candidates(tgi, cat, insts)[fleet.workloads[0].name]
    assert cands and not any(c.feasible for c in cands)
    assert all(c.devices <= 8 for c in cands if c.devices)
    spanning = all_candidates(fleet, cat, insts)[fleet.workloads[0].name]
    assert any(c.feasible and c.devices == 16 for c in spanning)
    assert not cat.engines["tgi"].spans_instances and cat.engines["vllm"].spans_instances


def test_the_infeasibility_names_the_default_engine_when_the_fleet_names_none(cat: Catalogue) -> None:
    # An unset engine is the catalogue's default profile: with TGI the default, spanning was never weighed, and the message
    # must not offer "up to 4 instances".
    from aicap.sizing.core.errors import InfeasibleError

    assert cat.runtime is not None
    tgi_default = replace(cat, runtime=cat.runtime.model_copy(update={"default_engine": "tgi"}))
    with pytest.raises(InfeasibleError, match="inside one instance \\(TGI's profile records no start") as err:
        size(_deepseek(cat), tgi_default, alternatives=False)
    assert "across up to" not in str(err.value) and "engines that span instances: sglang, vllm" in str(err.value)


def test_a_plan_relabelled_to_an_engine_that_cannot_span_is_named(cat: Catalogue) -> None:
    from aicap.sizing.plan.layouts import unstartable_spans

    fleet = build_fleet(model="llama-3.1-405b", rate=0.5, input_tokens=1024, output_tokens=256, ttft_ms=5000, tpot_ms=None,
                        percentile="p99", precision="bf16", hardware="h100-sxm", cloud="aws", engine="vllm")  # fmt: skip
    plan = size(fleet, cat, alternatives=False)
    assert unstartable_spans(plan, cat) == []  # vLLM starts it over two machines
    tgi = plan.model_copy(update={"workloads": [w.model_copy(update={"engine": "tgi"}) for w in plan.workloads]})
    (line,) = unstartable_spans(tgi, cat)
    assert line.startswith("llama-3.1-405b: a replica of 16 devices spans 2 instances of p5.48xlarge, and TGI's profile records no start")
