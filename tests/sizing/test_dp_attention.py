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
    hw = Hardware.of([(dp_dep.device, dp_dep.efficiency)], dp_dep.weights_dtype, dp_dep.kv_dtype)
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


def test_the_sizer_weighs_data_parallel_attention_where_tensor_parallelism_would_replicate_the_kv_cache(cat: Catalogue) -> None:
    from aicap.sizing.plan.layouts import dp_attention_layouts

    p5en, h200 = cat.instance("p5en.48xlarge"), cat.device("h200-sxm")
    assert dp_attention_layouts(cat.model("deepseek-v3"), p5en, h200) == [2, 4, 8]  # MLA: every size
    assert dp_attention_layouts(cat.model("deepseek-v3"), p5en, h200, span=4) == [2, 4, 8, 16, 32]  # wide EP over 2 and 4 instances
    # (the sizer asks for several instances where the model outgrows one: vLLM and SGLang start such a replica by flags on each)
    assert dp_attention_layouts(cat.model("qwen3-235b-a22b"), p5en, h200) == [8]  # 4 KV heads: replicated at 8 only
    assert dp_attention_layouts(cat.model("mixtral-8x7b"), p5en, h200) == []  # 8 KV heads split 8 ways: nothing to gain
    assert dp_attention_layouts(cat.model("llama-3.1-70b"), p5en, h200) == []  # no experts


def _decode_heavy(cat: Catalogue, engine: str | None = None):  # type: ignore[no-untyped-def]
    from aicap.sizing.plan.fleet_io import build_fleet

    return build_fleet(model="deepseek-v3", rate=20.0, input_tokens=1000, output_tokens=1000, ttft_ms=3000, tpot_ms=100, percentile="p99",
                       precision="fp8", hardware="h200-sxm", cloud="aws", engine=engine)  # fmt: skip


def test_a_decode_heavy_deepseek_fleet_runs_data_parallel_attention_and_keeps_its_promises(cat: Catalogue) -> None:
    from aicap.sizing.plan.sizer import size
    from aicap.sizing.sim.verify import verify

    plan = size(_decode_heavy(cat), cat, alternatives=False)
    (d,) = plan.workloads[0].deployments
    assert (d.tp, d.ep, d.dp_attention) == (8, 8, 8)
    assert d.max_running % 8 == 0 and d.max_running > 8 * 100  # each group's slots, eight groups
    assert any("data-parallel attention is costed" in x and "'deepseek-v3'" in x for x in plan.warnings)
    tp_only = size(_decode_heavy(cat, engine="tgi"), cat, alternatives=False)  # TGI's profile runs no DP attention
    assert all(x.dp_attention == 1 for x in tp_only.workloads[0].deployments)
    assert tp_only.totals.devices > plan.totals.devices  # the MLA cache replicated eight ways holds fewer sequences per device
    for c in verify(plan, cat):
        assert c.stable and c.meets_targets


def test_a_replica_of_attention_groups_is_as_many_engines_at_a_share_of_the_load(cat: Catalogue) -> None:
    from aicap.sizing.plan.generate import all_candidates
    from aicap.sizing.plan.sizer import allowed_instances

    fleet = _decode_heavy(cat)
    insts, _ = allowed_instances(fleet, cat)
    cands = [c for c in all_candidates(fleet, cat, insts)[fleet.workloads[0].name] if c.feasible and c.dp_attention > 1]
    assert cands
    for c in cands[:3]:
        assert c.replica is not None and c.replica.engines == c.dp_attention == c.tp
        one = c.replica.at_rate(c.capacity_rps)
        group = c.replica.group.at_rate(np.array([c.replica.index]), np.array([c.capacity_rps / c.dp_attention]))
        assert float(one.ttft_s[0]) == float(group.ttft_s[0])


def _sized(aicap, tmp_path, *extra: str):  # type: ignore[no-untyped-def]
    """The decode-heavy DeepSeek-V3 plan written to a file, and its deployment (data-parallel attention over 8 groups)."""
    import json

    plan = tmp_path / "plan.json"
    r = aicap("size", "-m", "deepseek-v3", "--rate", "20", "--input-tokens", "1000", "--output-tokens", "1000", "--tpot-ms", "100",
              "--hardware", "h200-sxm", "--cloud", "aws", "--precision", "fp8", *extra, "-o", str(plan))  # fmt: skip
    assert r.code == 0, r.stderr
    d = json.loads(plan.read_text())["workloads"][0]["deployments"][0]
    assert d["dp_attention"] == 8
    return plan, d


def test_export_spells_data_parallel_attention_as_each_engine_counts_it(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan, d = _sized(aicap, tmp_path, "--ttft-ms", "3000")
    vllm = aicap("export", str(plan), "--to", "vllm").stdout
    assert "--tensor-parallel-size 1 " in vllm.replace("\\\n", "") and "--data-parallel-size 8" in vllm
    assert f"--max-num-seqs {d['max_running'] // 8}" in vllm and "--enable-expert-parallel" in vllm
    sglang = aicap("export", str(plan), "--to", "sglang").stdout.replace("\\\n", "")
    assert "--tensor-parallel-size 8 " in sglang and "--enable-dp-attention" in sglang and "--expert-parallel-size 8" in sglang
    assert f"--max-running-requests {d['max_running']}" in sglang  # SGLang shares the server's limit out over the DP ranks
    llmd = aicap("export", str(plan), "--to", "llm-d")
    assert llmd.code == 2 and "data-parallel attention" in llmd.stderr
    import json

    wide = json.loads(plan.read_text())  # a replica over two instances: each machine starts its 8 attention groups
    wide["workloads"][0]["deployments"][0].update(tp=16, ep=16, dp_attention=16, replicas=1, devices=16, instances=2.0)
    plan.write_text(json.dumps(wide))
    spread = aicap("export", str(plan), "--to", "vllm")
    assert spread.code == 0, spread.stderr
    assert "--data-parallel-size 16" in spread.stdout and "--data-parallel-start-rank 8" in spread.stdout


def test_sglang_shares_its_step_budget_over_the_groups_and_the_export_gives_it_back(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan, d = _sized(aicap, tmp_path, "--engine", "sglang")
    sim = aicap("simulate", str(plan), "-f", "json").json()["deployments"][0]["setup"]
    # SGLang divides --chunked-prefill-size 8192 by the 8 ranks; the simulated engines share the plan's slots, not 8 times them
    assert (sim["max_batched_tokens"], sim["max_num_seqs"], sim["dp_attention"]) == (1024, d["max_running"], 8)
    sglang = aicap("export", str(plan), "--to", "sglang").stdout.replace("\\\n", "")
    assert "--chunked-prefill-size 8192" in sglang  # the server's figure, which SGLang divides again
    vllm = aicap("export", str(plan), "--to", "vllm").stdout.replace("\\\n", "")
    assert "--max-num-batched-tokens 1024" in vllm and f"--max-num-seqs {d['max_running'] // 8}" in vllm  # each vLLM engine's own
    csv = aicap("size", "-m", "deepseek-v3", "--rate", "20", "--input-tokens", "1000", "--output-tokens", "1000", "--tpot-ms", "100",
                "--hardware", "h200-sxm", "--cloud", "aws", "--precision", "fp8", "-f", "csv").stdout.splitlines()  # fmt: skip
    header = csv[0].split(",")
    assert csv[1].split(",")[header.index("dp_attention")] == "8" and csv[1].split(",")[header.index("ep")] == "8"


def test_tensorrt_llm_runs_one_attention_group_per_device_and_its_flags_count_a_ranks_share(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # TensorRT-LLM's Mapping.dp_size is tp_size under enable_attention_dp; each rank's executor holds max_batch_size requests.
    base = ["estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--engine", "trtllm"]
    part = aicap(*base, "--tp", "8", "--dp-attention", "4")
    assert part.code == 2 and part.stderr.count("\n") == 1
    assert "--dp-attention 4 with --tp 8" in part.stderr and "give --dp-attention 8" in part.stderr
    whole = aicap(*base, "--dp-attention", "8", "-f", "json")
    assert whole.code == 0, whole.stderr
    doc = whole.json()
    assert (doc["tp"], doc["dp_attention"], doc["ep"]) == (8, 8, 8)
    assert doc["max_batch_at_context"] >= doc["batch"] > 2048  # 8 engines of up to 2,048 requests each, not one of 2,048 (auto: the knee)
    plan, d = _sized(aicap, tmp_path, "--engine", "trtllm")
    trt = aicap("export", str(plan), "--to", "trtllm")
    assert trt.code == 0, trt.stderr
    text = trt.stdout.replace("\\\n", "")
    assert "--tp_size 8 " in text and "--ep_size 8 " in text and "enable_attention_dp: true" in text
    assert f"--max_batch_size {d['max_running'] // 8} " in text  # each rank's own
    assert "data_parallel" not in text and "does not say whether" not in text  # the group count follows from --tp_size


def test_what_data_parallel_attention_does_not_take_is_refused_with_the_way_out(cat: Catalogue, aicap) -> None:  # type: ignore[no-untyped-def]
    from aicap.sizing.plan.sizer import deployment_key

    base = ["estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--dp-attention", "8"]
    spec = aicap(*base, "--speculative", "mtp")
    assert spec.code == 2 and "a drafter inside attention groups is not modelled" in spec.stderr
    h100 = aicap("estimate", "-m", "deepseek-v3", "--hardware", "h100-sxm", "--tp", "8", "--dp-attention", "8")
    assert h100.code == 3 and "try TP=16 with DP-attention 16" in h100.stderr and "PP=2" not in h100.stderr
    alone = aicap("estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--dp-attention", "8", "-f", "json")
    assert alone.code == 0 and alone.json()["tp"] == 8  # --dp-attention alone: one group per device
    # a derated layout does not derate the other with the same degrees
    assert deployment_key("w", "h200-sxm", 8, 1) != deployment_key("w", "h200-sxm", 8, 1, 8)
    from aicap.sizing.plan.layouts import dp_attention_layouts

    tpu = next(i for i in cat.instances.values() if cat.device(i.device).kind == "tpu" and i.devices >= 4)
    assert dp_attention_layouts(cat.model("deepseek-v3"), tpu, cat.device(tpu.device)) == []  # its engines' sources are GPU ones


def test_a_fleet_without_a_ttft_target_still_reports_the_ttft_of_its_candidates(cat: Catalogue) -> None:
    from aicap.sizing.plan.fleet_io import build_fleet
    from aicap.sizing.plan.generate import all_candidates
    from aicap.sizing.plan.sizer import allowed_instances

    fleet = build_fleet(model="deepseek-v3", rate=5.0, input_tokens=1000, output_tokens=500, ttft_ms=None, tpot_ms=100, percentile="p99",
                        precision="fp8", hardware="h200-sxm", cloud="aws")  # fmt: skip
    insts, _ = allowed_instances(fleet, cat)
    for c in [c for c in all_candidates(fleet, cat, insts)[fleet.workloads[0].name] if c.feasible]:
        assert c.replica is not None
        assert c.ttft_ms == pytest.approx(float(c.replica.at_rate(c.capacity_rps).ttft_s[0]) * 1e3, rel=1e-6)  # prefill included


def test_an_alternative_says_its_best_layout_runs_data_parallel_attention(aicap) -> None:  # type: ignore[no-untyped-def]
    r = aicap("size", "-m", "deepseek-v3", "--rate", "20", "--input-tokens", "1000", "--output-tokens", "1000", "--tpot-ms", "100",
              "--hardware", "h200-sxm,b200", "--cloud", "aws", "--precision", "fp8", "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    whys = [a["why"] for a in r.json()["alternatives"]]
    assert any("TP8·PP1 DP-attn 8" in w for w in whys), whys


def test_the_sizer_spreads_attention_groups_over_instances_where_that_pays(cat: Catalogue) -> None:
    # DeepSeek-V3 fp8 outgrows one 8-GPU H100 instance: data-parallel attention over two (wide EP, 16 groups) holds 16 times
    # the sequences of a TP8·PP2 replica per device, and carries a chat load on fewer machines; it holds in simulation.
    from aicap.sizing.core.fleet import Fleet
    from aicap.sizing.plan.sizer import size
    from aicap.sizing.sim.verify import verify

    def fleet(engine: str) -> Fleet:
        return Fleet.model_validate({"schema_version": 1, "constraints": {"hardware": ["h100-sxm"], "clouds": ["aws"]}, "workloads": [
            {"name": "r1", "model": "deepseek-v3", "requests_per_s": 20, "input_tokens": 1000, "output_tokens": 1000,
             "slo": {"tpot_ms": 100}, "engine": engine}]})  # fmt: skip

    wide = size(fleet("vllm"), cat, alternatives=False)
    (d,) = wide.workloads[0].deployments
    assert (d.tp, d.dp_attention, d.ep, d.pp) == (16, 16, 16, 1) and d.instance_type == "p5.48xlarge"
    # vLLM's profile without data-parallel attention: TP·PP over the two machines only
    tp_only = replace(cat, engines={**cat.engines, "vllm": cat.engines["vllm"].model_copy(update={"dp_attention": None})})
    narrow = size(fleet("vllm"), tp_only, alternatives=False)
    assert all(x.dp_attention == 1 for x in narrow.workloads[0].deployments)
    assert wide.totals.usd_per_month < 0.8 * narrow.totals.usd_per_month
    for c in verify(wide, cat):
        assert c.stable and c.meets_targets
