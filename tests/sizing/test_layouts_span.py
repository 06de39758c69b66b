"""Replicas spanning instances: pipeline stages over the instance network where a model outgrows one instance."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.perf.roofline import network_time
from aicap.sizing.plan.fleet_io import build_fleet
from aicap.sizing.plan.generate import all_candidates
from aicap.sizing.plan.layouts import crossings, layouts, scale_out_bps, spans_instances
from aicap.sizing.plan.sizer import allowed_instances, size
from aicap.sizing.sim.verify import verify


def test_spanning_layouts_keep_tensor_parallel_inside_an_instance(cat: Catalogue) -> None:
    inst, dev, model = cat.instance("p5.48xlarge"), cat.device("h100-sxm"), cat.model("deepseek-v3")
    inside = layouts(model, inst, dev)
    spanning = set(layouts(model, inst, dev, span=4)) - set(inside)
    assert spanning == {(4, 4), (8, 2), (4, 8), (8, 4)}
    assert all(tp * pp <= 8 for tp, pp in inside)


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
    plan = size(_deepseek(cat), cat, alternatives=False)
    (d,) = plan.workloads[0].deployments
    assert (d.tp, d.pp, d.instance_type) == (8, 2, "p5.48xlarge")
    assert d.instances == pytest.approx(2.0) and plan.totals.instances == 2
    for c in verify(plan, cat):
        assert c.stable and c.meets_targets
        assert abs(c.ttft_promised_ms / c.ttft_simulated_ms - 1) < 0.3


def test_a_model_that_fits_one_instance_gets_no_spanning_layouts(cat: Catalogue) -> None:
    fleet = _deepseek(cat, model="llama-3.1-70b")
    insts, _ = allowed_instances(fleet, cat)
    cands = all_candidates(fleet, cat, insts)
    assert all(c.devices <= cat.instance(c.instance).devices for c in cands[fleet.workloads[0].name])
