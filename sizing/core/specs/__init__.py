"""Typed, validated documents: model, device, instance and efficiency specs.

Every spec model defers building its validator until its first validation (pydantic ``defer_build``):
a run whose catalogue comes from the per-user cache (:mod:`aicap.hardware_db.cache`) never validates
them, and the schema building was a noticeable share of a cold ``aicap size``.
"""

from aicap.sizing.core.specs.device import DeviceSpec, Interconnect
from aicap.sizing.core.specs.efficiency import EfficiencySpec
from aicap.sizing.core.specs.instance import InstanceSpec, Prices
from aicap.sizing.core.specs.model import (
    DecoderModel,
    EncoderModel,
    GenericModel,
    LinearAttentionSpec,
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
    "LinearAttentionSpec",
    "MlaSpec",
    "ModelSpec",
    "MoeSpec",
    "Prices",
]
