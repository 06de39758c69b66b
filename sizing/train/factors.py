"""Training factors: what training adds to the shared device, efficiency and runtime specs.

Read from ``aicap/hardware_db/training/factors.yaml``; see that file for the meaning and source of
each figure. ``step_efficiency`` and ``dp_overlap`` are fitted on published training runs by
:func:`aicap.sizing.calibrate.training.fit_factors`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.documents import Fraction, NonNegFloat, NonNegInt, PosFloat, load_yaml, validate_model

FACTORS_PATH = "training/factors.yaml"


class Accuracy(BaseModel):
    """Leave-one-source-out errors of the training model on the public cases (percent)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    throughput_median_pct: NonNegFloat
    throughput_p90_pct: NonNegFloat
    memory_median_pct: NonNegFloat
    scored_throughput: NonNegInt
    in_sample_throughput_median_pct: NonNegFloat


class TrainingFactors(BaseModel):
    """Training-only factors (fractions, bytes, bits and GB/s as named)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    step_efficiency: Fraction
    dp_overlap: float = Field(ge=0.0, le=1.0)
    logits_bytes: PosFloat
    nf4_bits_per_param: PosFloat
    nf4_vendors: tuple[str, ...] = Field(min_length=1, description="device vendors whose accelerators have NF4 kernels (QLoRA's base)")
    host_link_gbps: PosFloat
    measured_families: tuple[str, ...] = Field((), description="device families with a scored published training run")
    accuracy: Accuracy | None = None
    source: str = Field(min_length=1)


@lru_cache(maxsize=1)
def load_factors() -> TrainingFactors:
    """Load the shipped training factors (cached)."""
    node = resources.files("aicap.hardware_db").joinpath(FACTORS_PATH)
    text = node.read_text(encoding="utf-8")
    where = f"hardware_db/{FACTORS_PATH}"
    doc = load_yaml(Path(where), text)
    return validate_model(TrainingFactors, doc["training"], where, text, ("training",))
