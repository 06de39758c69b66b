"""Numeric field types for document models: numbers that refuse ``true``/``false`` and quoted text.

Pydantic's lax mode reads ``true`` as 1 in an integer or float field, so ``num_layers: true`` would
become a one-layer model, and the text ``"32"`` (a quoted value in YAML or JSON) as 32, where the strict
documents (fleets, plans) refuse it. These types refuse both before the number is checked; a CSV file,
whose every cell is text, is validated with :data:`TEXT_NUMBERS` as context, which lets text through.
An exponent without a dot (``7e9``) is a number already: the YAML reader reads it as one
(:mod:`aicap.sizing.core.yaml_doc`). NaN and infinity
are refused by ``allow_inf_nan=False`` in each document model's configuration (and by the YAML and
JSON readers before that).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo

#: The validation context under which text is read as a number: a CSV file, whose every cell is text.
TEXT_NUMBERS = {"text_numbers": True}


def _a_number(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if isinstance(value, str) and not (info.context or {}).get("text_numbers") and _numeric(value):
        raise ValueError("expected a number, not text (write it without quotes)")
    return value  # other text: pydantic's own "Input should be a valid number"


def _numeric(text: str) -> bool:
    """Whether ``text`` reads as a finite number (``nan`` and ``inf`` keep pydantic's own message)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


NumberOnly = BeforeValidator(_a_number)
"""Refuse ``True``/``False``, and text unless validated with :data:`TEXT_NUMBERS` as context, where a number is expected."""

PosInt = Annotated[int, NumberOnly, Field(gt=0)]
"""A positive integer (not a boolean or text)."""
NonNegInt = Annotated[int, NumberOnly, Field(ge=0)]
"""A non-negative integer (not a boolean or text)."""
PosFloat = Annotated[float, NumberOnly, Field(gt=0)]
"""A positive number (not a boolean or text)."""
NonNegFloat = Annotated[float, NumberOnly, Field(ge=0)]
"""A non-negative number (not a boolean or text)."""
Fraction = Annotated[float, NumberOnly, Field(gt=0, le=1)]
"""A number in (0, 1]: an efficiency factor or a usable share (not a boolean or text)."""
