"""Serving-engine profiles: shipped data, memory policies, device rules, and their use by estimate and size."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.engines import engine_for, engine_for_framework
from aicap.sizing.core.errors import InputError, UnknownIdError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.perf import memory
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.estimate import EstimateRequest, estimate

GIB = 2**30
ENGINES = ("vllm", "sglang", "trtllm", "tgi", "llamacpp", "jetstream")


def _dep(cat: Catalogue, engine: str, model: str, device: str, tp: int = 1, wdt: str = "bf16") -> Deployment:
    dev = cat.device(device)
    e = engine_for(cat, engine)
    return Deployment(cat.model(model), dev, e.efficiency(cat, dev), e.on(dev), tp, 1, 1, wdt, wdt)


def test_every_issue_engine_ships_with_sources_and_the_default_is_the_catalogue_runtime(cat: Catalogue) -> None:
    assert set(ENGINES) <= set(cat.engines)
    for e in cat.engines.values():
        assert e.version and e.memory.source and e.scheduler.source
        assert all(r.source for r in e.device_rules)
    assert cat.runtime_spec.engine == "generic" == cat.runtime_for(None).engine
    assert cat.runtime_for("vllm").engine == "vllm"


def test_total_policy_gives_the_kv_cache_a_share_of_all_memory_less_the_rest(cat: Catalogue) -> None:
    d = _dep(cat, "vllm", "llama-3.1-8b", "h100-sxm")
    r = float(memory.reserved_bytes(d, 1, 1))
    assert float(memory.kv_budget_bytes(d, 1, 1)) == pytest.approx(0.9 * d.device.memory_gib * GIB - r)


def test_free_policy_gives_the_kv_cache_a_share_of_what_the_rest_leaves(cat: Catalogue) -> None:
    d = _dep(cat, "trtllm", "llama-3.1-70b", "h100-sxm", wdt="fp8")
    r = float(memory.reserved_bytes(d, 1, 1))
    assert float(memory.kv_budget_bytes(d, 1, 1)) == pytest.approx(0.9 * (d.device.memory_gib * GIB - r))


def test_trtllm_keeps_a_kv_cache_where_a_total_fraction_leaves_almost_none(cat: Catalogue) -> None:
    """70B fp8 on one 80 GB H100: 90% of memory barely holds the weights; 90% of what they leave is several GiB."""
    v = _dep(cat, "vllm", "llama-3.1-70b", "h100-sxm", wdt="fp8")
    t = _dep(cat, "trtllm", "llama-3.1-70b", "h100-sxm", wdt="fp8")
    kv_v, kv_t = float(memory.kv_cache_tokens(v, 1, 1)), float(memory.kv_cache_tokens(t, 1, 1))
    assert kv_t > 4 * kv_v
    assert kv_t * float(memory.kv_bytes_per_sequence(t, 1, 1, 1.0)) / GIB > 5.0


@pytest.mark.parametrize(
    ("device", "running", "step"),
    [("h100-sxm", 1024, 8192), ("mi300x", 1024, 8192), ("a100-80gb-sxm", 256, 2048), ("l4", 256, 2048),
     ("tpu-v6e", 256, 1024), ("tpu-v5e", 256, 512), ("epyc-9654", 128, 2048)],
)  # fmt: skip
def test_vllm_picks_its_scheduler_defaults_by_device(cat: Catalogue, device: str, running: int, step: int) -> None:
    rt = engine_for(cat, "vllm").on(cat.device(device))
    assert (rt.max_batch, rt.max_prefill_tokens) == (running, step)


def test_sglang_memory_fraction_follows_its_reserve_rule(cat: Catalogue) -> None:
    e = engine_for(cat, "sglang")
    assert e.on(cat.device("h100-sxm")).usable_memory_fraction == pytest.approx(1 - 13440 / 81920, abs=1e-3)
    assert e.on(cat.device("l4")).max_prefill_tokens == 2048
    assert e.on(cat.device("b200")).max_prefill_tokens == 16384


def test_llamacpp_allocates_its_context_not_the_free_memory(cat: Catalogue) -> None:
    d = _dep(cat, "llamacpp", "llama-3.1-8b", "h100-sxm")
    assert float(memory.kv_cache_tokens(d, 1, 1)) <= 4096
    assert int(memory.max_batch(d, 1, 1, 1000, 2000)) == 2  # 4096 tokens hold two 2,000-token requests


def test_a_set_kv_cache_size_is_named_as_what_binds(cat: Catalogue) -> None:
    """llama.cpp holds --ctx-size tokens however much memory is free: an 8,500-token request on a 24 GB card was told to
    shorten to 4,107 tokens, or use TP=2, fp8 weights or an 8-bit KV cache, none of which raise the set size."""
    dev = cat.device("rtx-4090")
    e = engine_for(cat, "llamacpp")
    req = EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), e.on(dev), engine=e.spec, input_tokens=8000,
                          output_tokens=500)  # fmt: skip
    doc = estimate(req).to_dict()
    assert doc["fits"] is False
    assert doc["advice"] == (
        "does not fit: llamacpp allocates its KV cache for 4,096 tokens (memory.kv_cache_tokens, the launch option --ctx-size), "
        "shared by the running requests: fewer than batch 1 × 8,500 tokens; what helps: a kv_cache_tokens of at least 8,500 in a "
        "catalogue overlay (--catalog DIR, docs/engines.md) and the engine launched to match, or shorter requests (at most 4,096 "
        "tokens)"
    )
    two = estimate(EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), e.on(dev), engine=e.spec, batch=4,
                                   input_tokens=2000, output_tokens=500)).to_dict()  # fmt: skip
    assert "what helps: lower the batch to at most 1, or a kv_cache_tokens of at least 10,000" in two["advice"]


def test_estimate_refuses_an_engine_that_does_not_run_on_the_device(cat: Catalogue) -> None:
    dev = cat.device("tpu-v5e")
    e = engine_for(cat, "trtllm")
    req = EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), e.on(dev), engine=e.spec)
    with pytest.raises(InputError, match="does not run on tpu-v5e"):
        estimate(req)


def test_estimate_names_the_engine_and_its_limits(cat: Catalogue) -> None:
    dev = cat.device("h100-sxm")
    e = engine_for(cat, "trtllm")
    doc = estimate(EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), e.on(dev), engine=e.spec)).to_dict()
    assert doc["engine"]["id"] == "trtllm" and doc["engine"]["memory_policy"] == "free"
    assert doc["engine"]["max_running_requests"] == 2048 and doc["batch"] <= 2048


def test_unknown_engine_lists_the_valid_ones(cat: Catalogue) -> None:
    with pytest.raises(UnknownIdError, match="trtllm"):
        engine_for(cat, "trt-llm")


def test_published_frameworks_map_to_their_engines(cat: Catalogue) -> None:
    assert engine_for_framework(cat, "TensorRT-LLM").id == "trtllm"
    assert engine_for_framework(cat, "SGLang").id == "sglang"
    assert engine_for_framework(cat, "LMDeploy (TurboMind)").id == "generic"


def _fleet(engine: str | None = None, workload_engine: str | None = None) -> Fleet:
    w = {"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 2.0, "input_tokens": 500, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 80}, "precisions": ["bf16"]}  # fmt: skip
    if workload_engine:
        w["engine"] = workload_engine
    cons: dict[str, object] = {"clouds": ["gcp"]}
    if engine:
        cons["engine"] = engine
    return Fleet.model_validate({"workloads": [w], "constraints": cons})


def test_size_with_an_nvidia_only_engine_never_picks_a_tpu(cat: Catalogue) -> None:
    plan = size(_fleet("trtllm"), cat, alternatives=False)
    assert plan.workloads[0].engine == "trtllm"
    assert all(cat.device(d.hardware).vendor == "nvidia" for d in plan.workloads[0].deployments)
    why = {r.hardware: r.reason for r in plan.workloads[0].rejected_hardware}
    assert any("does not run on" in r for h, r in why.items() if h.startswith("tpu"))


def test_a_workload_engine_overrides_the_fleet_engine(cat: Catalogue) -> None:
    plan = size(_fleet("trtllm", workload_engine="vllm"), cat, alternatives=False)
    assert plan.workloads[0].engine == "vllm"


def test_size_names_the_unknown_engine_and_where(cat: Catalogue) -> None:
    with pytest.raises(InputError, match=r"workload 'chat': unknown engine 'vlm'; did you mean vllm\? valid engines: .*vllm"):
        size(_fleet(workload_engine="vlm"), cat, alternatives=False)


def test_an_overlay_replaces_a_profile_with_a_deployment_s_own_settings(cat: Catalogue, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from aicap.hardware_db import load_catalogue

    mine = cat.engine("vllm").model_dump(mode="json")
    mine["scheduler"]["max_running_requests"] = 512
    mine["device_rules"] = []
    (tmp_path / "engines.yaml").write_text(yaml.safe_dump({"engines": [mine]}), encoding="utf-8")
    over = load_catalogue((tmp_path,))
    assert over.engine("vllm").scheduler.max_running_requests == 512
    assert engine_for(over, "vllm").on(over.device("h100-sxm")).max_batch == 512
    assert any("vllm" in o for o in over.overrides)


def test_chunked_prefill_is_part_of_each_engine_profile() -> None:
    from aicap.hardware_db import load_catalogue

    cat = load_catalogue()
    assert {e: cat.runtime_for(e).chunked_prefill for e in ("generic", "vllm", "sglang", "trtllm", "jetstream")} == {
        "generic": True, "vllm": True, "sglang": True, "trtllm": False, "jetstream": False}  # fmt: skip
    trt = cat.runtime_for("trtllm")
    assert trt.refuses_prompt(trt.max_prefill_tokens) is None
    assert "does not chunk prefill" in (trt.refuses_prompt(trt.max_prefill_tokens + 1) or "")
    assert cat.runtime_for("vllm").refuses_prompt(10**6) is None


def test_sglang_runs_prefill_first_and_the_simulator_takes_the_engines_scheduler(cat: Catalogue) -> None:
    """SGLang decodes only when no prompt waits; the simulator uses the profile's scheduler unless told otherwise."""
    import numpy as np

    from aicap.sizing.sim import replay
    from aicap.sizing.sim.traffic import Lengths, TrafficSpec

    assert {e: cat.runtime_for(e).prefill_first for e in ("generic", "vllm", "sglang", "trtllm")} == {
        "generic": False, "vllm": False, "sglang": True, "trtllm": False}  # fmt: skip
    sgl = _dep(cat, "sglang", "llama-3.1-8b", "h100-sxm")
    assert replay.Setup(sgl).engine().prefill_first is True
    assert replay.Setup(sgl, prefill_first=False).engine().prefill_first is False
    assert replay.Setup(_dep(cat, "vllm", "llama-3.1-8b", "h100-sxm")).engine().prefill_first is False
    # Under load a prefill-first step stalls every running request's next token: TPOT is longer than with mixed steps
    reqs = TrafficSpec(600, Lengths.fixed(1000), Lengths.fixed(200), rate_per_s=12.0, seed=3).build()
    first = replay.run(replay.Setup(sgl), reqs)
    mixed = replay.run(replay.Setup(sgl, prefill_first=False), reqs)
    assert first.setup.prefill_first and not mixed.setup.prefill_first
    assert first.tpot_ms.p50 > 1.05 * mixed.tpot_ms.p50
    assert np.isfinite(first.ttft_ms.p50)


def test_overlap_scheduling_is_the_engines_and_reaches_the_simulator_and_the_sizer(cat: Catalogue) -> None:
    """SGLang (0.4 on) and TensorRT-LLM schedule a step ahead by default; vLLM 0.11 only with --async-scheduling."""
    from aicap.sizing.sim import replay

    assert {e: cat.runtime_for(e).overlap_scheduling for e in ("generic", "vllm", "sglang", "trtllm")} == {
        "generic": False, "vllm": False, "sglang": True, "trtllm": True}  # fmt: skip
    sgl = _dep(cat, "sglang", "llama-3.1-8b", "h100-sxm")
    assert replay.Setup(sgl).engine().overlap_scheduling is True
    assert replay.Setup(_dep(cat, "vllm", "llama-3.1-8b", "h100-sxm")).engine().overlap_scheduling is False


def test_an_engine_spans_instances_exactly_where_its_export_can_start_a_replica_over_machines(cat: Catalogue) -> None:
    # The sizer places a TP·PP replica over instances only on profiles with spans_instances; aicap export must then be able to
    # start it: a recorded multi-node start (vLLM's Ray cluster) or multi-node flags for any replica (SGLang's).
    from aicap.hardware_db.launch import LAUNCH_ENGINES, flag_map

    for engine in cat.engines.values():
        if engine.id not in LAUNCH_ENGINES:
            assert not engine.spans_instances, engine.id  # no flag map: nothing could start it
            continue
        fmap = flag_map(engine.id)
        starts = fmap.multi_node is not None or (fmap.multi_node_flags is not None and fmap.multi_node_flags.scope == "any")
        assert engine.spans_instances == starts, engine.id
        assert not engine.spans_instances or engine.spans_instances_source


def test_a_profile_that_spans_instances_must_say_where_its_engine_documents_that(cat: Catalogue) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="spans_instances_source"):
        cat.engines["tgi"].model_validate({**cat.engines["tgi"].model_dump(), "spans_instances": True})


def test_size_suggests_the_engine_a_misspelt_one_is_near(cat: Catalogue) -> None:
    with pytest.raises(InputError, match=r"workload 'chat': unknown engine 'vLLM'; did you mean vllm\? valid engines: "):
        size(_fleet(workload_engine="vLLM"), cat, alternatives=False)
