"""Figures derived from cited measurements, never fitted, are the same in the priors and in the catalogue."""

from __future__ import annotations

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.calibration import load_priors


def test_the_catalogue_carries_the_priors_measured_figures() -> None:
    """``aicap calibrate`` starts from the priors and fits neither the MoE layers' fixed time nor NCCL's extra
    all-reduce latency: a catalogue entry that drifted from its prior would be a figure with no source."""
    cat = load_catalogue()
    priors = {p.family: p for p in load_priors().values() if p.framework is None}
    for family, entry in cat.efficiency.items():
        if entry.framework is not None or entry.family not in priors or entry.inherits is not None:
            continue
        prior = priors[entry.family]
        assert entry.moe_latency_us == prior.moe_latency_us, family
        assert entry.nccl_all_reduce_us == prior.nccl_all_reduce_us, family
    assert cat.efficiency["nvidia-ampere"].nccl_all_reduce_us == 44.0
    assert {f for f, p in priors.items() if p.nccl_all_reduce_us is not None} == {"nvidia-ampere"}
    # A family that takes a measured family's factors takes this figure with them (Volta: Ampere's); others have none.
    assert cat.efficiency_for(cat.device("v100-sxm")).nccl_all_reduce_us == 44.0
    assert cat.efficiency_for(cat.device("h100-sxm")).nccl_all_reduce_us is None


def test_an_nccl_all_reduce_adds_its_latency_and_says_so() -> None:
    eff = load_catalogue().efficiency["nvidia-ampere"]
    nccl = eff.with_nccl_all_reduce()
    assert nccl.link_latency_us == eff.link_latency_us + 44.0
    assert nccl.memory == eff.memory and nccl.compute == eff.compute
    assert "with NCCL (+44)" in nccl.source
