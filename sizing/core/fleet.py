"""The fleet file (``aicap.yaml``): workloads with traffic and latency targets, plus constraints.

Schema version 1. ``aicap schema plan`` prints its JSON Schema. A minimal file::

    schema_version: 1
    workloads:
      - name: chat
        model: llama-3.1-70b
        requests_per_s: 20
        input_tokens: 1500
        output_tokens: 300
        slo: {ttft_ms: 2000, tpot_ms: 60, percentile: p99}
    constraints:
      clouds: [aws, gcp]
      pricing: on_demand
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from aicap.sizing.core.specs.instance import PricingModel

Percentile = Literal["p50", "p90", "p95", "p99"]
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def _default_precisions() -> list[Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]]:
    return ["bf16", "fp8"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LengthBin(_Doc):
    """One bar of a token-length histogram: ``tokens`` with relative ``weight``."""

    tokens: PositiveInt
    weight: PositiveFloat


class Slo(_Doc):
    """Latency targets at a percentile (milliseconds). Encoders use ``ttft_ms`` as their latency."""

    ttft_ms: PositiveFloat | None = None
    tpot_ms: PositiveFloat | None = None
    percentile: Percentile = "p99"


class Workload(_Doc):
    """One served model with its traffic and targets.

    Give traffic as ``requests_per_s`` or ``tokens_per_s`` (output tokens/s; items/s for encoders
    and generic models). Lengths are means, or histograms whose weighted mean is used for throughput
    and whose largest bin bounds memory.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str
    requests_per_s: PositiveFloat | None = None
    tokens_per_s: PositiveFloat | None = None
    input_tokens: PositiveInt | list[LengthBin] = 1024
    output_tokens: PositiveInt | list[LengthBin] = 256
    slo: Slo = Slo()
    precisions: list[Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]] = Field(default_factory=_default_precisions)

    @model_validator(mode="after")
    def _one_traffic(self) -> Workload:
        if (self.requests_per_s is None) == (self.tokens_per_s is None):
            raise ValueError("give exactly one of requests_per_s or tokens_per_s")
        if not self.precisions:
            raise ValueError("precisions must list at least one format")
        return self

    @staticmethod
    def _mean(v: int | list[LengthBin]) -> float:
        if isinstance(v, int):
            return float(v)
        total = sum(b.weight for b in v)
        return sum(b.tokens * b.weight for b in v) / total

    @property
    def mean_input(self) -> float:
        """Mean prompt length in tokens."""
        return self._mean(self.input_tokens)

    @property
    def mean_output(self) -> float:
        """Mean generated length in tokens."""
        return self._mean(self.output_tokens)

    @property
    def max_input(self) -> int:
        """Longest prompt in tokens."""
        return self.input_tokens if isinstance(self.input_tokens, int) else max(b.tokens for b in self.input_tokens)

    @property
    def max_context(self) -> int:
        """Longest request (input + output) the memory plan must hold, in tokens."""
        i = self.max_input
        o = self.output_tokens if isinstance(self.output_tokens, int) else max(b.tokens for b in self.output_tokens)
        return i + o


class Constraints(_Doc):
    """Where and how to buy: clouds, regions, families, devices, caps, pricing and budget."""

    clouds: list[Literal["aws", "gcp", "azure"]] | None = None
    regions: list[str] | None = None
    instance_families: list[str] | None = None
    hardware: list[str] | None = None
    availability: dict[str, int] = Field(default_factory=dict, description="instance name -> most instances available")
    pricing: PricingModel = "on_demand"
    hours_per_month: PositiveFloat = 730.0
    budget_usd_per_month: PositiveFloat | None = None
    objective: Literal["cost", "latency", "throughput"] = "cost"
    single_type: bool = False

    @model_validator(mode="after")
    def _caps_non_negative(self) -> Constraints:
        for name, cap in self.availability.items():
            if cap < 0:
                raise ValueError(f"availability cap of {name} must be >= 0")
        if self.objective != "cost" and self.budget_usd_per_month is None:
            raise ValueError(f"objective '{self.objective}' needs budget_usd_per_month")
        return self


class Fleet(_Doc):
    """A fleet file: schema version, workloads and constraints."""

    schema_version: Literal[1] = 1
    workloads: list[Workload] = Field(min_length=1)
    constraints: Constraints = Constraints()

    @model_validator(mode="after")
    def _unique_names(self) -> Fleet:
        names = [w.name for w in self.workloads]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(sorted(dup))}")
        return self
