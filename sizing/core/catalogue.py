"""The typed interface of a catalogue: what the library needs from models, devices, instances and factors.

:class:`aicap.hardware_db.Catalogue` implements it; tests and callers may pass any object that does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec, InstanceSpec, ModelSpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.speculative import SpeculativeDefault


class CatalogueLike(Protocol):
    """Models, devices, instance types, efficiency factors and runtime conventions, by id."""

    @property
    def instances(self) -> Mapping[str, InstanceSpec]:
        """Instance types by name."""

    @property
    def devices(self) -> Mapping[str, DeviceSpec]:
        """Devices by id."""

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """Catalogue models by id."""

    @property
    def efficiency(self) -> Mapping[str, EfficiencySpec]:
        """Efficiency factors by device family."""

    @property
    def version(self) -> str:
        """Content hash of the catalogue files (plans record it)."""

    @property
    def price_dates(self) -> tuple[str, str]:
        """Oldest and newest instance price dates (ISO)."""

    @property
    def runtime_spec(self) -> RuntimeSpec:
        """Serving-runtime conventions of the default engine."""

    @property
    def engines(self) -> Mapping[str, EngineSpec]:
        """Serving-engine profiles by id."""

    @property
    def speculative(self) -> Mapping[str, SpeculativeDefault]:
        """Published speculative-decoding defaults by drafting method."""

    def engine(self, ref: str) -> EngineSpec:
        """An engine profile by id; raises ``UnknownIdError``."""

    def runtime_for(self, engine: str | None, device: DeviceSpec | None = None) -> RuntimeSpec:
        """Runtime conventions of ``engine`` on ``device`` (``None``: the default engine; ``generic``: the catalogue's own)."""

    def model(self, ref: str) -> ModelSpec:
        """A model by catalogue id or file path; raises ``UnknownIdError``."""

    def device(self, ref: str) -> DeviceSpec:
        """A device by id; raises ``UnknownIdError``."""

    def instance(self, ref: str) -> InstanceSpec:
        """An instance type by name; raises ``UnknownIdError``."""

    def efficiency_for(self, device: DeviceSpec, framework: str | None = None) -> EfficiencySpec:
        """The efficiency factors of a device's family."""
