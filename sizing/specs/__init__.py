"""Typed, validated documents: model, device, instance and efficiency specs."""

from aicap.sizing.specs.device import DeviceSpec, Interconnect
from aicap.sizing.specs.efficiency import EfficiencySpec
from aicap.sizing.specs.instance import InstanceSpec, Prices
from aicap.sizing.specs.model import (
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
