"""Data-parallel attention and wide expert parallelism: memory, step costs, the network, estimate and the simulator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.perf import memory
from aicap.sizing.perf.operators import expert_cost
from aicap.sizing.perf.params import inventory
from aicap.sizing.perf.roofline import dp_attention_network_time, network_time, step_time
from aicap.sizing.plan.layouts import scale_out_bps
from aicap.sizing.serve.step import engine_costs, engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel


def _dep(cat: Catalogue, tp: int = 8, groups: int = 8, device: str = "h200-sxm", model: str = "deepseek-v3", **kw: object) -> Deployment:
    dev = cat.device(device)
    net = scale_out_bps([i for i in cat.instances.values() if i.device == dev.id], dev, cat.efficiency_for(dev).link)
    ep = tp if groups > 1 else 1
    return Deployment(cat.model(model), dev, cat.efficiency_for(dev), cat.runtime_spec, tp, 1, ep, "fp8", "bf16", net,
                      dp_attention=groups, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_the_rules_name_what_breaks_them(cat: Catalogue) -> None:
    _dep(cat).check()
    _dep(cat, tp=16, groups=16, device="h100-sxm").check()  # wide EP over two instances, attention on one device each
    with pytest.raises(InputError, match=r"--dp-attention 8: data-parallel attention pays with experts .* llama-3\.1-70b has no experts"):
        _dep(cat, model="llama-3.1-70b").check()
    with pytest.raises(InputError, match="--dp-attention 3: attention groups split --tp 8 evenly; valid: 2, 4, 8"):
        _dep(cat, groups=3).check()
    with pytest.raises(InputError, match="--ep 4: with --dp-attention the routed experts split over all --tp 8 devices"):
        replace(_dep(cat), ep=4).check()
    with pytest.raises(InputError, match="--pp 2: data-parallel attention is costed for one pipeline stage"):
        replace(_dep(cat), pp=2).check()
    with pytest.raises(InputError, match="an attention group of 16 devices exceeds h100-sxm's fast-link domain of 8"):
        _dep(cat, tp=32, groups=2, device="h100-sxm").check()


def test_each_device_holds_the_attention_of_its_group_and_its_share_of_the_routed_experts(cat: Catalogue) -> None:
    tp_dep, dp_dep = _dep(cat, groups=1), _dep(cat)
    inv = inventory(dp_dep.transformer)
    w = memory.linear_bytes_per_weight(dp_dep)
    routed = (
        inv.expert_total
        * w
        * memory.total_weight_bytes(dp_dep)
        / (memory.body_weight_bytes(dp_dep, inv) + (inv.embedding + inv.lm_head) * memory.embedding_bytes_per_weight(dp_dep))
    )
    whole = memory.total_weight_bytes(dp_dep)
    # TP8: everything over 8. DP8: the routed experts over 8, the rest (attention, dense layers, shared experts, embeddings) whole.
    assert float(memory.weight_bytes_per_device(tp_dep, 8, 1)) == pytest.approx(whole / 8)
    assert float(memory.weight_bytes_per_device(dp_dep, 8, 1)) == pytest.approx(routed / 8 + (whole - routed))


def test_mla_keeps_each_groups_own_sequences_so_the_replica_holds_more(cat: Catalogue) -> None:
    tp_dep, dp_dep = _dep(cat, groups=1), _dep(cat)
    # MLA's latent KV is replicated on every tensor-parallel rank; an attention group keeps only its own sequences.
    per_token = float(memory.kv_bytes_per_token(dp_dep, 8, 1, 1.0))
    assert per_token == pytest.approx(float(memory.kv_bytes_per_token(tp_dep, 8, 1, 1.0)))
    free = float(memory.kv_budget_bytes(dp_dep, 8, 1) - memory.logits_bytes(dp_dep, 8, 1.0))
    assert float(memory.kv_cache_tokens(dp_dep, 8, 1)) == 8 * np.floor(free / per_token)
    assert memory.kv_cache_tokens(dp_dep, 8, 1) > 3 * memory.kv_cache_tokens(tp_dep, 8, 1)
    # a batch of 9 puts 2 sequences on the busiest group
    two = memory.breakdown(dp_dep, 8, 1, 9, 1000, 2000).kv_cache
    assert float(two) == pytest.approx(2 * float(memory.kv_bytes_per_sequence(dp_dep, 8, 1, 2000)))
    assert dp_dep.max_running == 8 * dp_dep.runtime.max_batch


def test_a_group_engine_runs_its_own_attention_and_every_groups_routed_experts(cat: Catalogue) -> None:
    dp_dep = _dep(cat)
    one = replace(_dep(cat, groups=1), tp=1, ep=1)  # the same model on one device, tensor-parallel attention
    d, c, p, i = 20.0, 1500.0, 512.0, 1024.0
    mine, alone = engine_costs(dp_dep, d, c, p, i, 8.0), engine_costs(one, d, c, p, i, 1.0)
    for op in ("attn_proj", "attention", "mlp", "lm_head", "norms"):  # a = 1 device: as if alone
        assert float(mine[op].flops) == pytest.approx(float(alone[op].flops))
        assert float(mine[op].bytes) == pytest.approx(float(alone[op].bytes))
    n = d + p
    assert float(mine["experts"].flops) == pytest.approx(float(expert_cost(dp_dep, 8 * n, 8.0, n, 1.0).flops))
    inv = inventory(dp_dep.transformer)
    routed = 2 * 8 * n * inv.experts_per_token * inv.expert * inv.moe_layers / 8
    shared = 2 * n * (inv.shared_per_layer + inv.router_per_layer) * inv.moe_layers
    assert float(mine["experts"].flops) == pytest.approx(routed + shared)


def test_the_step_model_is_the_engine_step_of_a_group(cat: Catalogue) -> None:
    dp_dep = _dep(cat, tp=16, groups=16, device="h100-sxm")
    hw = Hardware.of([(dp_dep.device, dp_dep.efficiency)], dp_dep.weights_dtype)
    model = StepModel.build(dp_dep, hw, np.array([16.0]), np.array([1.0]), 16.0, np.array([1500.0]), np.array([1024.0]))
    for d, p in ((1.0, 0.0), (40.0, 0.0), (0.0, 1024.0), (30.0, 2048.0)):
        exact = float(engine_step(dp_dep, d, 1500.0, p, 1024.0).total)
        assert float(model.seconds(d, p)[0]) == pytest.approx(exact, rel=1e-9)


def test_all_to_all_of_wide_ep_waits_for_the_slower_of_link_and_network(cat: Catalogue) -> None:
    m = cat.model("deepseek-v3")
    moe = m.moe
    assert moe is not None
    tokens, link, net, lat = np.array(64.0), np.array(400e9), np.array(25e9), np.array(20e-6)
    t = float(dp_attention_network_time(m, 16.0, tokens, np.array(16.0), link, lat, net, np.array(8.0)))
    sent = 64.0 * moe.experts_per_token * m.hidden_size * 2.0  # a = 1: each device sends its own tokens' k copies
    a2a = 2 * (max(sent * 7 / 16 / 400e9, sent * 8 / 16 / 25e9) + 20e-6)
    assert t == pytest.approx((m.num_layers - moe.dense_layers) * a2a)  # no all-reduce inside a one-device group
    inside = float(dp_attention_network_time(m, 8.0, tokens, np.array(8.0), link, lat, net, np.array(8.0)))
    assert inside < t  # one instance: no network share
    # attention groups of 2 devices all-reduce inside the group (2L - L_moe of them) and each device sends half the group's tokens
    pair = float(dp_attention_network_time(m, 8.0, tokens, np.array(16.0), link, lat, net, np.array(8.0)))
    allreduce = 2 * (1 / 2) * 64.0 * m.hidden_size * 2.0 / 400e9 + 20e-6
    half = 2 * (max(sent / 2 * 7 / 16 / 400e9, sent / 2 * 8 / 16 / 25e9) + 20e-6)
    moe_layers = m.num_layers - moe.dense_layers
    assert pair == pytest.approx((2 * m.num_layers - moe_layers) * allreduce + moe_layers * half)
    # the deployment's own link, latency and network are what network_time passes on
    dep = _dep(cat, tp=16, groups=16, device="h100-sxm")
    assert dep.scale_out_bps is not None
    link_dep = np.array(dep.device.interconnect.bw_gbps * 1e9 * dep.efficiency.link)
    lat_dep, net_dep = np.array(dep.efficiency.link_latency_us * 1e-6), np.array(dep.scale_out_bps)
    own = dp_attention_network_time(m, 16.0, tokens, np.array(16.0), link_dep, lat_dep, net_dep, np.array(8.0))
    assert float(network_time(dep, 64.0, 16, 1, 16)) == pytest.approx(float(own))


def test_a_lone_prompt_runs_on_one_group_and_a_full_batch_spreads(cat: Catalogue) -> None:
    dp_dep = _dep(cat)
    one = replace(_dep(cat, groups=1), tp=1, ep=1)
    lone = step_time(dp_dep, 1.0, 1024.0, 0.0)
    alone = step_time(one, 1.0, 1024.0, 0.0)
    assert float(lone.ops["attention"].flops) == pytest.approx(float(alone.ops["attention"].flops))  # the whole prompt on one group
    full = step_time(dp_dep, 64.0, 1.0, 1500.0)
    assert float(full.ops["attention"].bytes) == pytest.approx(float(step_time(one, 8.0, 1.0, 1500.0).ops["attention"].bytes))


def test_estimate_and_simulate_a_wide_ep_deployment(aicap) -> None:  # type: ignore[no-untyped-def]
    base = ["-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--input-tokens", "1000", "--output-tokens", "1000", "-f", "json"]
    tp = aicap("estimate", *base).json()
    dp = aicap("estimate", *base, "--dp-attention", "8").json()
    assert (dp["dp_attention"], dp["ep"], tp["dp_attention"], tp["ep"]) == (8, 8, 1, 1)
    assert dp["kv_cache_tokens"] > 3 * tp["kv_cache_tokens"] and dp["batch"] > 3 * tp["batch"]
    assert dp["throughput"]["output_tokens_per_s"] > 1.5 * tp["throughput"]["output_tokens_per_s"]
    run = ["simulate", *base, "--rate", "4", "--requests", "600", "--dp-attention", "8"]
    r = aicap(*run)
    assert r.code == 0, r.stderr
    doc = r.json()
    setup = doc["setup"]
    assert (setup["dp_attention"], setup["replicas"], setup["kv_cache_tokens"]) == (8, 1, dp["kv_cache_tokens"] // 8 * 8)
    assert doc["kv_cache_use"]["mean"] <= doc["kv_cache_use"]["peak"]  # shares of a group's cache, not summed over the groups
    # Little's law over the replica: running sequences = throughput x time in the engine
    assert doc["stable"] and doc["mean_running_per_replica"] == pytest.approx(
        doc["throughput"]["requests_per_s"] * (doc["e2e_ms"]["mean"] - doc["queue_ms"]["mean"]) / 1e3, rel=0.1
    )
    bad = aicap("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2", "--dp-attention", "2")
    assert bad.code == 2 and "has no experts" in bad.stderr and "Traceback" not in bad.stderr
    both = aicap("simulate", *base, "--rate", "4", "--dp-attention", "8", "--disaggregate")
    assert both.code == 2 and "--dp-attention" in both.stderr
