"""Numeric field types for document models: numbers that refuse ``true``/``false``.

Pydantic's lax mode reads ``true`` as 1 in an integer or float field, so ``num_layers: true`` would
become a one-layer model; these types refuse booleans before the number is checked. NaN and infinity
are refused by ``allow_inf_nan=False`` in each document model's configuration (and by the YAML and
JSON readers before that).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


NotBool = BeforeValidator(_not_bool)
"""Refuse ``True``/``False`` where a number is expected."""

PosInt = Annotated[int, NotBool, Field(gt=0)]
"""A positive integer (not a boolean)."""
NonNegInt = Annotated[int, NotBool, Field(ge=0)]
"""A non-negative integer (not a boolean)."""
PosFloat = Annotated[float, NotBool, Field(gt=0)]
"""A positive number (not a boolean)."""
NonNegFloat = Annotated[float, NotBool, Field(ge=0)]
"""A non-negative number (not a boolean)."""
Fraction = Annotated[float, NotBool, Field(gt=0, le=1)]
"""A number in (0, 1]: an efficiency factor or a usable share (not a boolean)."""
