"""Release-series stacks and the sourced bounds on the per-step overhead and the all-reduce latency (aicap.sizing.calibrate)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate import calibration
from aicap.sizing.calibrate.calibration import load_fit_bounds, load_priors
from aicap.sizing.calibrate.validation import _factors, _stack_factors, load_cases, series, stack_of
from aicap.sizing.core.errors import InputError


def test_a_case_names_its_release_series_and_its_stacks_most_specific_first() -> None:
    assert series({"framework_version": "0.12.0"}) == "0.12"
    assert series({"framework_version": "v0.9"}) is None and series({}) is None
    assert stack_of({"framework": "TensorRT-LLM", "framework_version": "0.12.0"}) == ("TensorRT-LLM 0.12", "TensorRT-LLM")
    assert stack_of({"framework": "ggml"}) == (None, "ggml")
    assert stack_of({"framework_version": "1.0"}) == (None, None)


def test_a_case_is_predicted_with_its_series_entry_then_its_framework_entry_then_its_family(cat: Catalogue) -> None:
    h100 = cat.device("h100-sxm")
    family = cat.efficiency_for(h100)
    # The shipped Hopper fit needs no series entry (every case within 2x): one as `aicap calibrate` writes them.
    series_entry = family.model_copy(update={"framework": "TensorRT-LLM 0.12", "memory": 0.6})
    cat = dataclasses.replace(cat, efficiency={**cat.efficiency, series_entry.key: series_entry})
    assert _stack_factors({"framework": "TensorRT-LLM", "framework_version": "0.12.0"}, h100, {}, cat) is series_entry
    assert _stack_factors({"framework": "TensorRT-LLM", "framework_version": "0.9.0"}, h100, {}, cat) == family
    assert _stack_factors({"framework": "vLLM"}, h100, {}, cat) == family
    fitting = family.model_copy(update={"memory": 0.5})  # calibration replaces the family's entry: every case takes it
    assert _stack_factors({"framework": "TensorRT-LLM", "framework_version": "0.12.0"}, h100, {"nvidia-hopper": fitting}, cat) is fitting
    # ...and as its engine reaches them: vLLM's multiplier on Hopper's memory efficiency, nothing for TensorRT-LLM
    vllm = _factors({"framework": "vLLM"}, h100, {}, cat)
    assert vllm.memory == pytest.approx(min(family.memory * cat.engine("vllm").memory_multiplier("nvidia-hopper"), 1.0))
    assert _factors({"framework": "TensorRT-LLM", "framework_version": "0.9.0"}, h100, {}, cat) == family


def test_nvidia_families_may_fit_at_most_a_modern_engines_host_cost_per_step_and_a_measured_all_reduce() -> None:
    bounds = load_fit_bounds()
    overhead, link = bounds["step_overhead_ms"], bounds["link_latency_us"]
    assert overhead["nvidia-hopper"] == overhead["nvidia-ampere"] == 1.0
    assert link["nvidia-hopper"] == link["nvidia-ampere"] == 20.0 and link["nvidia-ada"] == 55.0  # NVLink, PCIe
    # a graphed kernel's fixed time: NVIDIA GPUs only (the launch-and-latency floor of small decode kernels)
    assert bounds["kernel_latency_us"]["nvidia-hopper"] == bounds["kernel_latency_us"]["nvidia-ampere"] == 5.0
    assert not {"amd-cdna2", "google-tpu", "intel-xeon"} & set(bounds["kernel_latency_us"])
    for per_family in bounds.values():
        assert "google-tpu" not in per_family and "intel-xeon" not in per_family  # no comparable measurement: the general bound
        assert set(per_family) <= {p.family for p in load_priors().values()}


def test_a_bound_outside_the_general_range_or_on_an_unknown_family_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from aicap.sizing.core import documents

    real = documents.load_yaml

    def with_entry(entry: dict[str, Any]) -> Any:
        def load(path: Any, text: str) -> Any:
            doc = real(path, text)
            return {**doc, "step_overhead": [entry]} if "step_overhead" in doc else doc

        return load

    monkeypatch.setattr(documents, "load_yaml", with_entry({"families": ["nvidia-hopper"], "max_ms": 99.0}))
    with pytest.raises(InputError, match="outside"):
        load_fit_bounds()
    monkeypatch.setattr(documents, "load_yaml", with_entry({"families": ["nvidia-hoper"], "max_ms": 1.0}))
    with pytest.raises(InputError, match="nvidia-hoper"):
        load_fit_bounds()


def test_the_catalogue_keeps_every_fitted_nvidia_overhead_and_link_latency_within_its_bound(cat: Catalogue) -> None:
    bounds = load_fit_bounds()
    overhead, link = bounds["step_overhead_ms"], bounds["link_latency_us"]
    fitted = [e for e in cat.efficiency.values() if e.family in overhead and e.calibrated]
    assert fitted and all(e.step_overhead_ms <= overhead[e.family] and e.link_latency_us <= link[e.family] for e in fitted)
    kernel = bounds["kernel_latency_us"]
    assert all(e.kernel_latency_us <= kernel.get(e.family, 0.0) for e in cat.efficiency.values())  # unbounded families keep 0
    assert all(cat.efficiency[f].kernel_latency_us > 0.0 for f in ("nvidia-ampere", "nvidia-hopper"))  # fitted where TP and depth vary


def test_the_fit_holds_the_overhead_to_its_bound(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    # Four static-batch Hopper cases: unbounded, the fit puts 15 ms a step there.
    cases = [c for c in load_cases() if c.get("hardware") in {"h100-sxm", "h200-sxm"} and c.get("kind") == "static_batch"][:4]
    assert len(cases) == 4
    monkeypatch.setattr(calibration, "load_fit_bounds", dict)
    free = calibration.fit_family("nvidia-hopper", cases, cat, "test")
    assert free is not None and free.after.step_overhead_ms > 5.0
    monkeypatch.setattr(calibration, "load_fit_bounds", lambda: {"step_overhead_ms": {"nvidia-hopper": 1.0}})
    held = calibration.fit_family("nvidia-hopper", cases, cat, "test")
    assert held is not None and 0.0 <= held.after.step_overhead_ms <= 1.0


def test_the_fit_holds_the_all_reduce_latency_to_its_bound(cat: Catalogue) -> None:
    # Twelve TensorRT-LLM 0.9 Hopper cases, five with tensor parallelism: unbounded, the fit puts 49 us on one
    # all-reduce; published NVLink measurements bound it at 20 us, and the fit presses against that bound.
    cases = [c for c in load_cases() if c.get("hardware") in {"h100-sxm", "h200-sxm"} and c.get("framework_version") == "0.9.0"][:12]
    assert sum((c.get("tp") or 1) > 1 for c in cases) == 5
    held = calibration.fit_family("nvidia-hopper", cases, cat, "test")
    assert held is not None and 19.0 <= held.after.link_latency_us <= load_fit_bounds()["link_latency_us"]["nvidia-hopper"] == 20.0
