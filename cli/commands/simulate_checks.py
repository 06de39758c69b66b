"""Checks of ``aicap simulate``'s options: number lists and prompts that an unchunked step cannot hold."""

from __future__ import annotations


def floats(text: str | None, flag: str, *, positive: bool = False) -> tuple[float, ...] | None:
    """Comma-separated numbers of ``flag`` (``None`` when not given): each ``>= 0``, not all 0 (``> 0`` when ``positive``)."""
    from aicap.sizing.core.errors import InputError

    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 0.2,0.8") from None
    if not values or any(not (v >= 0 and v < float("inf")) for v in values) or sum(values) <= 0:
        raise InputError(f"{flag} {text!r}: expected numbers >= 0, not all 0")
    if positive and min(values) <= 0:
        raise InputError(f"{flag} {text!r}: every weight must be > 0")
    return values


def check_whole_prompts(chunked: bool, longest: int, budget: int) -> None:
    """Refuse a run whose longest prompt cannot be prefilled in one step of ``budget`` tokens without chunking (vLLM refuses such an engine at start-up)."""
    if not chunked and longest > budget:
        from aicap.sizing.core.errors import InfeasibleError

        raise InfeasibleError(f"without chunked prefill a prompt is prefilled in one step: the longest here ({longest:,} tokens to "
                              f"prefill) exceeds the step budget of {budget:,}; raise --max-batched-tokens or turn chunked prefill on")  # fmt: skip
