"""Device specs: one accelerator (GPU, TPU chip, Gaudi card) or one CPU socket."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aicap.sizing.core.documents import PosFloat, PosInt
from aicap.sizing.core.errors import excerpt

PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")


class Interconnect(BaseModel):
    """The fast link that joins devices into a tensor-parallel domain.

    ``bw_gbps`` is per device and per direction, in decimal GB/s (NVLink 4's "900 GB/s" is 450).
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str
    bw_gbps: PosFloat
    domain_size: PosInt
    slice_size: PosInt | None = Field(
        None, description="most devices one multi-host slice joins over this link (a TPU pod slice); None: it ends at the instance"
    )


class DeviceSpec(BaseModel):
    """Datasheet facts of one device; every peak is dense (never 2:4 sparse).

    Units: ``memory_gib`` GiB, ``memory_bw_gbps`` decimal GB/s, ``peak_tflops`` TFLOP/s (TOPS for
    int8/int4), ``tdp_w`` watts.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    vendor: Literal["nvidia", "amd", "google", "intel", "aws"]
    kind: Literal["gpu", "tpu", "cpu", "accelerator"]
    family: str
    memory_gib: PosFloat
    memory_bw_gbps: PosFloat
    peak_tflops: dict[str, PosFloat]
    interconnect: Interconnect
    tdp_w: PosFloat | None = None
    sources: list[str] = Field(min_length=1)
    notes: str | None = None

    @field_validator("peak_tflops")
    @classmethod
    def _has_16bit(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(PEAK_DTYPES)
        if unknown:
            raise ValueError(f"unknown dtype {excerpt(sorted(unknown)[0])}; valid: {', '.join(PEAK_DTYPES)}")
        if not ({"bf16", "fp16", "fp32"} & v.keys()):
            raise ValueError("needs at least one of bf16, fp16 or fp32")
        return v
