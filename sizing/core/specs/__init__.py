"""Typed, validated documents: model, device, instance and efficiency specs."""

from aicap.sizing.core.specs.device import DeviceSpec, Interconnect
from aicap.sizing.core.specs.efficiency import EfficiencySpec
from aicap.sizing.core.specs.instance import InstanceSpec, Prices
from aicap.sizing.core.specs.model import (
    DecoderModel,
    EncoderModel,
    GenericModel,
    MlaSpec,
    ModelSpec,
    MoeSpec,
)

__all__ = [
    "DecoderModel",
    "DeviceSpec",
    "EfficiencySpec",
    "EncoderModel",
    "GenericModel",
    "InstanceSpec",
    "Interconnect",
    "MlaSpec",
    "ModelSpec",
    "MoeSpec",
    "Prices",
]
