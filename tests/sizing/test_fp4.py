"""FP4 weight formats (NVFP4, MXFP4): storage with block scales, the FP4 tensor path, and where they run."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment, runs_format
from aicap.sizing.core.dtypes import compute_dtype, storage_formats
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.perf import memory
from aicap.sizing.plan.sizer import size
from aicap.sizing.serve.estimate import EstimateRequest, estimate


def _req(cat: Catalogue, device: str, wdt: str, model: str = "llama-3.1-70b") -> EstimateRequest:
    dev = cat.device(device)
    return EstimateRequest(cat.model(model), dev, cat.efficiency_for(dev), cat.runtime_spec, devices=1, weights_dtype=wdt)


@pytest.mark.parametrize(("fmt", "per_weight"), [("nvfp4", 0.5 + 1 / 16), ("mxfp4", 0.5 + 1 / 32)])
def test_block_scales_are_stored_with_the_weights(deploy, fmt: str, per_weight: float) -> None:
    assert memory.bytes_per_weight(fmt, deploy("llama-3.1-8b", "b200", weights_dtype=fmt)) == pytest.approx(per_weight)


def test_fp4_multiplies_on_fp4_tensor_cores_where_they_exist_and_weight_only_elsewhere(cat: Catalogue) -> None:
    assert compute_dtype("nvfp4", dict(cat.device("b200").peak_tflops)) == "fp4"
    assert compute_dtype("mxfp4", dict(cat.device("h100-sxm").peak_tflops)) == "bf16"
    assert storage_formats("nvfp4", dict(cat.device("b200").peak_tflops)) == ("nvfp4", "fp8")


@pytest.mark.parametrize(
    ("device", "fmt", "runs"),
    [("b200", "nvfp4", True), ("b200", "mxfp4", True), ("mi355x", "mxfp4", True), ("mi355x", "nvfp4", False),
     ("h100-sxm", "nvfp4", True), ("a100-80gb-sxm", "mxfp4", True), ("v100-sxm", "nvfp4", False), ("tpu-v6e", "mxfp4", False),
     ("xeon-8480", "mxfp4", False)],
)  # fmt: skip
def test_where_fp4_runs(cat: Catalogue, device: str, fmt: str, runs: bool) -> None:
    assert runs_format(cat.device(device), fmt) is runs


def test_fp4_on_blackwell_beats_fp8_in_memory_prefill_and_decode(cat: Catalogue) -> None:
    fp8, fp4 = estimate(_req(cat, "b200", "fp8")), estimate(_req(cat, "b200", "nvfp4"))
    assert fp4.mem["weights"] < 0.6 * fp8.mem["weights"]
    assert float(fp4.metrics.ttft_s) < float(fp8.metrics.ttft_s)
    assert fp4.kv_cache_tokens > fp8.kv_cache_tokens


def test_fp4_weight_only_on_hopper_saves_memory_but_not_prefill_compute(cat: Catalogue) -> None:
    fp8, fp4 = estimate(_req(cat, "h100-sxm", "fp8")), estimate(_req(cat, "h100-sxm", "nvfp4"))
    assert fp4.mem["weights"] < fp8.mem["weights"]
    assert float(fp4.metrics.ttft_s) > float(fp8.metrics.ttft_s)  # bf16 GEMMs after de-quantisation, fp8 ones before


def test_estimate_refuses_fp4_without_kernels(cat: Catalogue) -> None:
    with pytest.raises(InputError, match="mi355x has no kernels for it"):
        estimate(_req(cat, "mi355x", "nvfp4"))


def test_size_with_fp4_only_uses_devices_that_run_it(cat: Catalogue) -> None:
    w = {"name": "chat", "model": "llama-3.1-70b", "requests_per_s": 3.0, "input_tokens": 1000, "output_tokens": 200,
         "slo": {"ttft_ms": 2000, "tpot_ms": 60}, "precisions": ["nvfp4"]}  # fmt: skip
    fleet = Fleet.model_validate({"workloads": [w]})
    plan = size(fleet, cat, alternatives=False)
    for d in plan.workloads[0].deployments:
        assert d.weights_dtype == "nvfp4" and runs_format(cat.device(d.hardware), "nvfp4")
    why = {r.hardware: r.reason for r in plan.workloads[0].rejected_hardware}
    assert "tpu-v6e" in why and "supports none of the allowed precisions" in why["tpu-v6e"]


def test_an_engine_without_fp4_refuses_it(cat: Catalogue) -> None:
    from aicap.sizing.core.engines import engine_for

    dev = cat.device("b200")
    e = engine_for(cat, "tgi")
    req = EstimateRequest(cat.model("llama-3.1-8b"), dev, e.efficiency(cat, dev), e.on(dev), weights_dtype="nvfp4", engine=e.spec)
    with pytest.raises(InputError, match="TGI serves weights in"):
        estimate(req)


def test_deployment_check_names_the_valid_devices(cat: Catalogue) -> None:
    dev = cat.device("tpu-v5e")
    d = Deployment(cat.model("llama-3.1-8b"), dev, cat.efficiency_for(dev), cat.runtime_spec, weights_dtype="mxfp4", kv_dtype="bf16")
    with pytest.raises(InputError, match="MXFP4 runs on Blackwell and MI355X"):
        d.check()
