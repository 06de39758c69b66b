"""The fixed time of each graphed kernel, ``K_g·τ_k`` (aicap.sizing.perf.launches.kernel_floor_s)."""

from __future__ import annotations

import numpy as np
import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.perf.launches import graph_kernels, kernel_floor_s, launches_per_step
from aicap.sizing.perf.roofline import step_time
from aicap.sizing.serve.step import engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel

CAT = load_catalogue()
COUNTS = CAT.runtime_spec.eager_launches


def dep(model: str = "llama-3.1-8b", device: str = "a100-80gb-sxm", tau_us: float | None = None, tp: int = 1) -> Deployment:
    dev = CAT.device(device)
    eff = CAT.efficiency_for(dev)
    if tau_us is not None:
        eff = eff.model_copy(update={"kernel_latency_us": tau_us})
    return Deployment(CAT.model(model), dev, eff, CAT.runtime_spec, tp, 1, 1, "bf16", "bf16")


def test_graphed_kernels_leave_out_the_collectives_and_the_fused_moe_call() -> None:
    assert COUNTS is not None
    c = COUNTS
    llama = CAT.model("llama-3.1-8b")
    assert graph_kernels(llama, c) == pytest.approx(llama.num_layers * (c.per_layer + c.attention + c.dense_mlp) + c.per_step)
    # all-reduces cost their latency λ, not a kernel's: K_g is the count at tp = 1, whatever the degree
    assert graph_kernels(llama, c) == pytest.approx(float(launches_per_step(llama, c, 1.0)))
    assert graph_kernels(llama, c) < float(launches_per_step(llama, c, 8.0))
    ds = CAT.model("deepseek-v2.5")  # the routed experts' call is priced by the MoE latency τ, measured on the whole call
    assert ds.moe is not None
    moe_layers = ds.num_layers - ds.moe.dense_layers
    assert graph_kernels(ds, c) == pytest.approx(float(launches_per_step(ds, c, 1.0)) - moe_layers * c.moe_mlp)
    assert graph_kernels(CAT.model("resnet-50"), c) == 0.0 and graph_kernels(llama, None) == 0.0


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "llama-3.1-70b", "deepseek-v2.5"])
def test_every_step_pays_its_kernels_fixed_time_in_each_step_path(model_id: str) -> None:
    tp = 8 if model_id != "llama-3.1-8b" else 1
    zero, three = dep(model_id, tau_us=0.0, tp=tp), dep(model_id, tau_us=3.0, tp=tp)
    assert COUNTS is not None
    floor = graph_kernels(three.model, COUNTS) * 3e-6
    assert kernel_floor_s(three) == pytest.approx(floor) and kernel_floor_s(zero) == 0.0 and floor > 1e-3
    d, p = np.array([1.0, 64.0, 0.0, 16.0]), np.array([0.0, 0.0, 4096.0, 512.0])
    # the engine's step (simulator, load model), the roofline's step (estimate) and the vectorised step model
    np.testing.assert_allclose(engine_step(three, d, 900.0, p, 512.0).total - engine_step(zero, d, 900.0, p, 512.0).total, floor, rtol=1e-9)
    np.testing.assert_allclose(step_time(three, d, 1.0, 900.0).total - step_time(zero, d, 1.0, 900.0).total, floor, rtol=1e-9)
    n = 2
    hw = Hardware.of([(three.device, zero.efficiency), (three.device, three.efficiency)], "bf16")
    sm = StepModel.build(three, hw, tp, 1, 1, np.full(n, 900.0), np.full(n, 512.0))
    seconds = sm.seconds(np.full(n, 16.0), np.full(n, 512.0))
    assert seconds[1] - seconds[0] == pytest.approx(floor, rel=1e-9)
    assert seconds[1] == pytest.approx(float(engine_step(three, 16.0, 900.0, 512.0, 512.0).total), rel=1e-9)
    assert float(hw.take(np.array([1])).kernel_latency_s[0]) == pytest.approx(3e-6)


def test_the_step_breakdown_shows_the_kernels_fixed_time_on_its_own_row() -> None:
    import json

    from typer.testing import CliRunner

    from aicap.cli.app import app

    args = ["explain", "-m", "llama-3.1-70b", "--hardware", "a100-80gb-sxm", "--tp", "8", "--batch", "1", "-f", "json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = {r["operator"]: r for r in json.loads(out.stdout)["operators"]}
    shipped = dep("llama-3.1-70b", tp=8)
    assert shipped.efficiency.kernel_latency_us > 0.0  # fitted on the published Ampere cases
    assert rows["kernel_latency"]["time_ms"] == pytest.approx(kernel_floor_s(shipped) * 1e3, abs=1e-4)
    assert rows["overhead"]["time_ms"] == pytest.approx(shipped.efficiency.step_overhead_ms, abs=1e-4)
    # a deep model sharded thin: 80 layers' kernels weigh on a step that streams a few GB per device
    assert rows["kernel_latency"]["share_pct"] > 10.0
