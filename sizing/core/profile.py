"""Demand that changes over time: hourly request-rate profiles (a day of 24 hours or a week of 168).

A workload's ``requests_per_s`` may be a profile instead of one rate:

* a list of 24 or 168 hourly rates [requests/s], hour 0 first (hours of zero demand are allowed);
* a built-in shape, ``{shape: diurnal, peak: P, trough: T, peak_hour: H}``: a day whose rate follows
  one cosine swing, ``λ(h) = T + (P − T)·(1 + cos(2π(h − H)/24))/2`` for ``h = 0, …, 23``, so
  ``λ(H) = P`` and ``λ(H ± 12) = T``;
* a built-in week, ``{shape: azure-code-2024, mean: M}`` or ``{shape: azure-conv-2024, peak: P}``: the
  168 hourly rates of the public Azure LLM inference 2024 week (coding or conversation service,
  digitised from the dataset's published plot; hour 0 is Monday 00:00 UTC, data and source in
  ``hardware_db/traffic/profiles.yaml``), scaled so that the week's mean (or peak) is the given rate:
  ``λ(h) = M · r(h) / mean(r)``;
* ``{csv: FILE}``: a CSV with the header ``hour,requests_per_s`` and one row per hour (0…23 or 0…167);
* ``{trace: FILE}``: arrivals of a trace file (the simulator's format) counted per hour of the trace's own
  clock, from the whole hour holding the first arrival: ``λ(h) = arrivals in [h₀ + h, h₀ + h + 1) hours /
  3,600 s``, ``h₀ = ⌊t_first / 3,600 s⌋`` (a trace whose first request comes at 00:30 keeps its 12:00 peak
  in hour 12); the trace must span 24 or 168 such hours (the last hour may be quiet; a last hour the trace
  covers only in part is under-counted).

File references are read by :func:`aicap.sizing.plan.fleet_io.load_fleet`, relative to the fleet file
(:mod:`aicap.sizing.plan.profile_files`).
Profiles of different lengths are aligned by repeating a day seven times (:func:`align`), so workloads
that peak at different hours share the same clock.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, WithJsonSchema, model_validator

PROFILE_HOURS = (24, 168)
SECONDS_PER_HOUR = 3600.0


#: An hourly profile given as a list: 24 (a day) or 168 (a week) rates ≥ 0 [requests/s]. The fleet's validator checks it with
#: a one-line message (:func:`check_hours`); the JSON Schema says the same, which the list type alone does not.
HourlyRates = Annotated[
    list[float],
    WithJsonSchema({"type": "array", "items": {"type": "number", "minimum": 0},
                    "oneOf": [{"minItems": 24, "maxItems": 24}, {"minItems": 168, "maxItems": 168}],
                    "description": "hourly rates [requests/s]: 24 (a day) or 168 (a week)"}),
]  # fmt: skip


class Diurnal(BaseModel):
    """The built-in daily shape (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    shape: Literal["diurnal"]
    peak: PositiveFloat
    trough: float = Field(ge=0)
    peak_hour: float = Field(ge=0, lt=24)

    def rates(self) -> tuple[float, ...]:
        """The 24 hourly rates [requests/s]."""
        if self.trough > self.peak:
            raise ValueError(f"trough {self.trough:g} is above peak {self.peak:g}")
        swing = self.peak - self.trough
        return tuple(round(self.trough + swing * (1.0 + math.cos(2.0 * math.pi * (h - self.peak_hour) / 24.0)) / 2.0, 9) for h in range(24))


WEEKLY_SHAPES = ("azure-code-2024", "azure-conv-2024")


@lru_cache(maxsize=1)
def _weekly_data() -> dict[str, tuple[float, ...]]:
    from importlib import resources
    from pathlib import Path

    from aicap.sizing.core.documents import load_yaml

    node = resources.files("aicap.hardware_db").joinpath("traffic/profiles.yaml")
    raw = load_yaml(Path("hardware_db/traffic/profiles.yaml"), node.read_text(encoding="utf-8"))
    return {name: tuple(float(r) for r in entry["rates"]) for name, entry in raw["profiles"].items()}


class Weekly(BaseModel):
    """A built-in week of hourly rates, scaled to a mean or a peak (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    shape: Literal["azure-code-2024", "azure-conv-2024"]
    mean: PositiveFloat | None = None
    peak: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_scale(self) -> Weekly:
        if (self.mean is None) == (self.peak is None):
            raise ValueError("give exactly one of mean or peak (requests/s) to scale the week to")
        return self

    def rates(self) -> tuple[float, ...]:
        """The 168 hourly rates [requests/s], hour 0 = Monday 00:00 UTC."""
        base = _weekly_data()[self.shape]
        ref = sum(base) / len(base) if self.mean is not None else max(base)
        target = self.mean if self.mean is not None else self.peak
        assert target is not None
        return tuple(round(r * target / ref, 9) for r in base)


def check_hours(rates: list[float] | tuple[float, ...], where: str) -> tuple[float, ...]:
    """``rates`` as a profile: 24 or 168 finite rates ≥ 0, not all 0 (errors start with ``where``, unless it is empty)."""
    at = f"{where}: " if where else ""
    if len(rates) not in PROFILE_HOURS:
        raise ValueError(f"{at}a profile has 24 (a day) or 168 (a week) hourly rates, got {len(rates)}")
    out = tuple(float(r) for r in rates)
    bad = next((h for h, r in enumerate(out) if not (math.isfinite(r) and r >= 0)), None)
    if bad is not None:
        raise ValueError(f"{at}hour {bad} is {out[bad]:g}: hourly rates must be finite numbers >= 0 requests/s")
    if max(out) <= 0:
        raise ValueError(f"{at}every hourly rate is 0: a profile needs some demand")
    return out


def align(profiles: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Profiles on one clock: days repeated seven times when any profile is a week."""
    hours = max((len(p) for p in profiles), default=24)
    return [p * (hours // len(p)) for p in profiles]
