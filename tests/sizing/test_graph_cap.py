"""CUDA graphs up to a batch size: a decode-only step over the cap launches its kernels one by one (SGLang's cuda_graph_max_bs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.validation import load_cases, predict
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.engines import engine_for
from aicap.sizing.perf.launches import graph_max_batch, launch_s, step_host_s
from aicap.sizing.serve.context_step import ContextStep
from aicap.sizing.serve.serving import decode_time
from aicap.sizing.serve.step import engine_step
from aicap.sizing.serve.step_model import Hardware, StepModel
from aicap.sizing.sim.costs import memoised, step_seconds

CAT = load_catalogue()
SGLANG = engine_for(CAT, "sglang")


def dep(device: str = "h100-sxm", tp: int = 1, *, engine: str = "sglang", eager: bool = False, model: str = "llama-3.1-8b") -> Deployment:
    dev = CAT.device(device)
    rt = engine_for(CAT, engine, eager=eager).on(dev)
    return Deployment(CAT.model(model), dev, CAT.efficiency_for(dev), rt, tp, 1, 1, "bf16", "bf16")


def test_sglang_caps_follow_its_memory_classes_and_tensor_parallel_degree() -> None:
    """server_args.py (0.5.3+): '256 if tp < 4 else 512' on 80 GB and 141 GB GPUs, 512 from 160 GB, 8 below 20 GB."""
    for device, caps in (("h100-sxm", {1: 256, 2: 256, 4: 512, 8: 512}), ("h200-sxm", {1: 256, 4: 512}), ("b200", {1: 512, 8: 512}),
                         ("a100-40gb-sxm", {1: 32, 2: 32, 4: 160}), ("t4", {1: 8, 4: 8})):  # fmt: skip
        rt = SGLANG.on(CAT.device(device))
        assert {tp: rt.graph_max_batch(tp) for tp in caps} == caps, device
        got = graph_max_batch(dep(device), np.array(list(caps), dtype=float))
        np.testing.assert_array_equal(got, np.array(list(caps.values()), dtype=float))
    assert SGLANG.runtime.cuda_graph_max_batch is None or SGLANG.runtime.graph_max_batch(1) == 160  # no device: the default
    assert SGLANG.spec is not None and SGLANG.spec.cuda_graphs is not None and SGLANG.spec.cuda_graphs.max_batch == {1: 160}
    for other in ("vllm", "trtllm", "generic"):  # no published cap: every decode batch is graphed
        assert engine_for(CAT, other).on(CAT.device("h100-sxm")).graph_max_batch(1) is None
        assert np.all(np.isinf(graph_max_batch(dep(engine=other), 8)))
    assert np.all(graph_max_batch(dep(engine="vllm", eager=True), 1) < 0)  # eager: every step launched from the host


def test_a_cap_table_starts_at_tensor_parallel_one() -> None:
    with pytest.raises(ValidationError, match="tensor-parallel degree 1"):
        CAT.runtime_spec.model_validate({**CAT.runtime_spec.model_dump(), "cuda_graph_max_batch": {4: 512}})


def test_only_decode_only_steps_over_the_cap_pay_the_launches() -> None:
    d_ = dep("h100-sxm", 2)  # cap 256
    host = float(launch_s(d_))
    assert host > 0.0
    cases = {(256, 0): 0.0, (257, 0): host, (4096, 0): host, (257, 64): 0.0, (0, 8192): 0.0, (1, 0): 0.0}
    for (d, p), want in cases.items():
        assert float(step_host_s(d_, d, p)) == want, (d, p)
    got = step_host_s(d_, np.array([[100.0, 300.0]]), 0.0, np.array([2.0, 4.0]))  # at TP4 the cap is 512
    np.testing.assert_array_equal(got, [[0.0, 0.0]])
    assert float(step_host_s(dep(engine="vllm", eager=True), 1, 512)) > 0.0  # eager: every step, prefill or not
    assert float(step_host_s(dep(engine="vllm"), 10_000, 0)) == 0.0
    # The step takes the longer of the device's work and the launches, plus its overhead.
    for d, p in ((256, 0), (257, 0), (1024, 0), (1024, 300)):
        st = engine_step(d_, d, 900.0, p, 300.0)
        device = float(st.device_s)
        launched = d > 256 and p == 0
        assert float(st.total) == pytest.approx((max(device, host) if launched else device) + float(st.overhead_s), rel=1e-12)
    assert float(engine_step(d_, 257, 900.0, 0, 300.0).total) > float(engine_step(d_, 256, 900.0, 0, 300.0).total) * 1.5


def test_step_models_price_the_cap_as_the_step_does() -> None:
    """The sizer's vectorised step model and the simulator's per-context costs agree with engine_step across the cap."""
    d_ = dep("h100-sxm", 2)
    dev, eff = d_.device, d_.efficiency
    n = 4
    sm = StepModel.build(d_, Hardware.of([(dev, eff)] * n, "bf16"), 2, 1, 1, np.full(n, 900.0), np.full(n, 300.0))
    assert sm.host_s is not None and sm.graph_max is not None and np.all(sm.graph_max == 256.0)
    d, p = np.array([256.0, 257.0, 2000.0, 2000.0]), np.array([0.0, 0.0, 0.0, 300.0])
    exact = engine_step(d_, d, 900.0, p, 300.0, tp=2).total
    np.testing.assert_allclose(sm.seconds(d, p), exact, rtol=1e-9)
    np.testing.assert_allclose(sm.seconds(d, 0.0)[:3], exact[:3], rtol=1e-9)  # p the scalar 0: decode-only rounds of the load model
    _, dd, _ = sm.seconds_and_slope(np.full(n, 257.0), 0.0)
    assert np.all(dd[sm.host_s > sm.seconds(np.full(n, 257.0), 0.0) - sm.overhead_s] == 0.0)
    # Concatenated with an eager part and a graphed one, each part keeps its own rule.
    one = Hardware.of([(dev, eff)], "bf16")
    eager = StepModel.build(dep(engine="vllm", eager=True), one, 2, 1, 1, np.array([900.0]), np.array([300.0]))
    plain = StepModel.build(dep(engine="vllm"), one, 2, 1, 1, np.array([900.0]), np.array([300.0]))
    both = StepModel.concat([sm.take(np.array([1])), eager, plain])
    assert both.graph_max is not None and list(both.graph_max) == [256.0, -np.inf, np.inf]
    for dd_, pp_ in ((257.0, 0.0), (257.0, 300.0), (10.0, 0.0)):
        want = [float(m.seconds(dd_, pp_)[0]) for m in (sm.take(np.array([1])), eager, plain)]
        np.testing.assert_allclose(both.seconds(np.full(3, dd_), np.full(3, pp_)), want, rtol=1e-12)
    # The simulator's costs end with (H, t_0) exactly for the steps launched from the host.
    cs = ContextStep.build(d_, Hardware.of([(dev, eff)], "bf16"), 2, 1, 1, 900.0, 300.0)
    _cache, timed = memoised(cs)
    for dec, pre in ((256, 0), (257, 0), (2000, 0), (2000, 300)):
        c = timed(dec, pre)
        assert len(c) == (16 if dec > 256 and pre == 0 else 14), (dec, pre)
        want = float(engine_step(d_, dec, 900.0, pre, 300.0, tp=2).total)
        assert cs(dec, pre) == pytest.approx(want, rel=1e-9)
        if pre == 0:  # the per-context cost at the built context is the same step
            assert step_seconds(c, _Decoders(900.0, dec), dec) == pytest.approx(want, rel=1e-9)


def test_the_static_estimate_pays_the_launches_per_micro_batch() -> None:
    d_ = dep("h100-sxm", 2)
    host, base = float(launch_s(d_)), replace(d_, runtime=d_.runtime.model_copy(update={"cuda_graph_max_batch": None}))
    for batch in (200.0, 300.0, 3000.0):
        capped, graphed = decode_time(d_, batch, 900.0, 2, 1, 1), decode_time(base, batch, 900.0, 2, 1, 1)
        want = max(float(graphed.device_s), host) if batch > 256 else float(graphed.device_s)
        assert float(capped.total) == pytest.approx(want + float(graphed.overhead_s), rel=1e-12)


def test_datacrunch_sglang_runs_decode_large_batches_without_graphs() -> None:
    """SGLang 0.4.1 capped graphs at 160 sequences: at 8 req/s the 70B runs decode ~360 at once, 71 ms between tokens.

    With every batch graphed the replay says 36 ms (23 ms under the plain roofline, before the exposed share was fitted);
    paying the launches (the catalogue's per-launch time, not fitted on these runs) above the cap puts it within a fifth.
    """
    (c,) = [c for c in load_cases(which="server") if c["id"] == "dc-h200-sglang-llama-3.3-70b-tp4-random-rps8"]
    assert c["engine_options"]["cuda_graph_max_batch"] == 160
    got = predict(c, CAT)
    graphs = predict({**c, "engine_options": {**c["engine_options"], "cuda_graph_max_batch": 100_000}}, CAT)
    itl = c["metrics"]["itl_ms_p50"]
    assert got["itl_ms_p50"] == pytest.approx(itl, rel=0.2) and graphs["itl_ms_p50"] < itl / 1.8
    e2e = c["metrics"]["e2e_ms_p50"]
    assert got["e2e_ms_p50"] == pytest.approx(e2e, rel=0.2) and graphs["e2e_ms_p50"] < e2e / 1.8


class _Decoders:
    """What :func:`step_seconds` reads of a virtual engine with ``d`` decoders at one context and no prefill."""

    def __init__(self, context: float, decoders: int) -> None:
        self.context, self.gain, self.tick = context * decoders, 0.0, 0
        self.decoders = [0] * decoders
        self.span_mo = self.span_o = self.span_mm = self.chunks = 0.0

    def decode_context(self, d: int) -> float:
        return self.context
