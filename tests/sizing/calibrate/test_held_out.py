"""Out-of-sample folds: a family whose cases are all held out takes its declared nearest family's fitted factors."""

from __future__ import annotations

from aicap.hardware_db import Catalogue
from aicap.sizing.calibrate.calibration import held_out_factors, load_neighbours, load_priors
from aicap.sizing.calibrate.validation import load_cases


def test_every_measured_family_declares_its_neighbour_with_a_reason(cat: Catalogue) -> None:
    from importlib import resources

    import yaml

    measured = {cat.device(c["hardware"]).family for c in load_cases()}
    neighbours = load_neighbours()
    assert measured <= set(neighbours), "a measured family has no declared neighbour for folds that hold its cases out"
    doc = yaml.safe_load(resources.files("aicap.hardware_db").joinpath("validation/efficiency_priors.yaml").read_text(encoding="utf-8"))
    assert all(len(str(e.get("why") or "")) > 20 for e in doc["neighbours"])
    # The catalogue's own rule for unmeasured families points at measured ones, as the neighbours do.
    assert all(n is None or n in measured for n in neighbours.values())


def test_a_held_out_family_takes_its_neighbours_fold_factors_along_the_chain(cat: Catalogue) -> None:
    priors, neighbours = load_priors(), load_neighbours()
    hopper = cat.efficiency["nvidia-hopper"].model_copy(update={"step_overhead_ms": 7.5})  # as fitted in some fold
    ampere = cat.efficiency["nvidia-ampere"]
    out = held_out_factors({"nvidia-hopper": hopper}, priors, neighbours)
    tpu = out["google-tpu"]
    assert tpu.family == "google-tpu" and tpu.step_overhead_ms == 7.5 and tpu.compute == hopper.compute
    assert "inherited from nvidia-hopper" in tpu.source
    # amd-cdna2 -> nvidia-ampere (not fitted in this fold) -> nvidia-hopper
    assert out["amd-cdna2"].step_overhead_ms == 7.5 and out["amd-cdna2"].family == "amd-cdna2"
    # a CPU keeps its prior; a fitted family keeps its own fit
    assert out["intel-xeon"] == priors["intel-xeon"] and out["nvidia-hopper"] is hopper
    both = held_out_factors({"nvidia-hopper": hopper, "nvidia-ampere": ampere}, priors, neighbours)
    assert both["amd-cdna2"].compute == ampere.compute and both["amd-cdna2"].family == "amd-cdna2"
    # with nothing fitted every family keeps its prior
    assert held_out_factors({}, priors, neighbours) == priors


def test_a_tpu_held_out_keeps_its_own_platforms_host_cost_per_step(cat: Catalogue) -> None:
    from aicap.sizing.calibrate.calibration import load_own_step_overheads

    priors, neighbours, own = load_priors(), load_neighbours(), load_own_step_overheads()
    assert set(own) == {"google-tpu"} and "sglang-jax" in own["google-tpu"][1]
    hopper = cat.efficiency["nvidia-hopper"]
    out = held_out_factors({"nvidia-hopper": hopper}, priors, neighbours, own)
    tpu = out["google-tpu"]
    # the kernels' factors from the neighbour, the host cost from XLA on TPU (not the 1 ms of CUDA graphs)
    assert tpu.compute == hopper.compute and tpu.memory == hopper.memory
    assert tpu.step_overhead_ms == own["google-tpu"][0] != hopper.step_overhead_ms
    assert hopper.kernel_latency_us > 0.0 and tpu.kernel_latency_us == 0.0  # XLA programs, not CUDA graphs' kernel boundaries
    assert "own platform" in tpu.source
    # a family without a declared host cost of its own keeps inheriting its neighbour's
    assert out["amd-cdna2"].step_overhead_ms == hopper.step_overhead_ms
    assert out["amd-cdna2"].kernel_latency_us == hopper.kernel_latency_us
    # a fitted TPU keeps its own fit
    fitted_tpu = cat.efficiency["google-tpu"]
    assert held_out_factors({"nvidia-hopper": hopper, "google-tpu": fitted_tpu}, priors, neighbours, own)["google-tpu"] is fitted_tpu


def test_a_case_without_its_layout_is_pinned_to_the_one_aicap_picks(cat: Catalogue) -> None:
    """A fit pins each layout once (the prior's pick) instead of searching them at every evaluation."""
    from aicap.sizing.calibrate.validation import predict, with_layout

    case = {"id": "c", "model": "llama-3.1-70b", "hardware": "h100-sxm", "kind": "offline_throughput", "devices": 12,
            "input_tokens": 128, "output_tokens": 128, "weights_dtype": "bf16", "metrics": {"output_tok_s_total": 1.0}}  # fmt: skip
    pinned = with_layout(case, cat)
    assert 1 < pinned["tp"] * pinned["pp"] <= 12 and pinned is not case  # 140 GB of weights need two H100s
    assert predict(pinned, cat) == predict(case, cat)
    given = {**case, "tp": 4, "pp": 1}
    assert with_layout(given, cat) is given  # a case that gives its layout keeps it
    under_load = {**case, "kind": "closed_loop"}
    assert with_layout(under_load, cat) is under_load
