"""Efficiency factors and runtime conventions that turn datasheet peaks into predictions.

A roofline with vendor peaks is an upper bound. These few, physically meaningful factors say what
fraction of each peak a serving stack reaches, per device family; they are calibrated on published
measurements (see ``hardware_db/data/efficiency.yaml`` for provenance) and a user can refit them on
their own benchmarks with ``aicap calibrate``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt


class EfficiencySpec(BaseModel):
    """Achieved fractions of peak for one device family.

    Attributes
    ----------
    family
        Device family the factors apply to (``nvidia-hopper``, ``google-tpu``, ...).
    framework
        Serving stack these factors describe when they differ from the family default (``None``):
        used where one set of factors cannot describe two stacks on the same chip within 2×.
    compute
        Fraction of the dense 16-bit peak reached by large matrix multiplies.
    compute_fp8
        Same for fp8 GEMMs (defaults to ``compute``).
    memory
        Fraction of peak memory bandwidth reached when streaming weights and KV cache.
    memory_by_dtype
        Multipliers on ``memory`` for weight formats whose kernels de-quantise on the fly (int4).
    moe_compute
        Multiplier on ``compute`` for mixture-of-experts layers: grouped GEMMs over many small
        per-expert batches run below dense-GEMM efficiency.
    link
        Fraction of the per-direction link bandwidth reached by collectives.
    link_latency_us
        Fixed latency of one collective (microseconds).
    step_overhead_ms
        Fixed time per forward step: kernel launches, scheduling, sampling (milliseconds).
    source
        How the numbers were obtained.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    framework: str | None = None
    compute: float = Field(gt=0, le=1)
    compute_fp8: float | None = Field(None, gt=0, le=1)
    memory: float = Field(gt=0, le=1)
    memory_by_dtype: dict[str, float] = Field(default_factory=dict)
    moe_compute: float = Field(1.0, gt=0, le=1)
    link: float = Field(0.7, gt=0, le=1)
    link_latency_us: NonNegativeFloat = 10.0
    step_overhead_ms: NonNegativeFloat = 0.0
    source: str = Field(min_length=1)

    @property
    def key(self) -> str:
        """Catalogue key: ``family`` or ``family@framework``."""
        return self.family if self.framework is None else f"{self.family}@{self.framework}"

    @property
    def calibrated(self) -> bool:
        """Whether these factors were fitted on measurements (``source`` starts with "fitted")."""
        return self.source.startswith("fitted")

    def compute_for(self, dtype: str) -> float:
        """Return the compute efficiency for GEMMs in ``dtype``."""
        if dtype == "fp8" and self.compute_fp8 is not None:
            return self.compute_fp8
        return self.compute

    def memory_for(self, weights_dtype: str) -> float:
        """Return the memory efficiency when weights are stored in ``weights_dtype``."""
        return self.memory * self.memory_by_dtype.get(weights_dtype, 1.0)


class RuntimeSpec(BaseModel):
    """Conventions of the serving runtime that the memory and time model assume.

    Units: GiB for memory, tokens for token counts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    usable_memory_fraction: float = Field(gt=0, le=1)
    runtime_overhead_gib: NonNegativeFloat
    comm_buffer_gib: NonNegativeFloat
    max_prefill_tokens: PositiveInt
    max_batch: PositiveInt
    quant_group_size: dict[str, PositiveInt]
    quant_scale_bytes: dict[str, PositiveFloat]
    unquantised_embeddings: bool = True
    cpu_usable_memory_fraction: float = Field(0.8, gt=0, le=1)
    source: str = Field(min_length=1)
