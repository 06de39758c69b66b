"""What a simulated engine step costs: the step-time protocols and their memo.

A :class:`StepTime` prices a step by its decode sequences ``d`` and prefill tokens ``p``; a
:class:`ContextStepTime` (:class:`~aicap.sizing.serve.context_step.ContextStep`) also by the decoders'
KV tokens and the chunks' attention spans. Either is called once per distinct ``(d, p)`` and memoised
(:func:`memoised`); :func:`step_seconds` prices a scheduled step from the memo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aicap.sizing.sim.virtual_engine import VirtualEngine


class StepTime(Protocol):
    """Duration of one engine step."""

    def __call__(self, decode_seqs: int, prefill_tokens: int, /) -> float:
        """Seconds for one micro-batch through the whole model.

        The micro-batch holds ``decode_seqs`` sequences decoding one token each and ``prefill_tokens``
        prompt tokens prefilled in the same step (chunked prefill mixed with decode). Must be a pure,
        finite, non-negative function (it is memoised). Arguments are positional, so any callable
        ``f(d, p) -> float`` qualifies.
        """
        ...


@runtime_checkable
class ContextStepTime(StepTime, Protocol):
    """A :class:`StepTime` that also prices a step at its actual contexts (:class:`~aicap.sizing.serve.context_step.ContextStep`)."""

    def parts(self, decode_seqs: int, prefill_tokens: int, /) -> tuple[float, ...]:
        """``(rest, a_F, …, e_S, α)`` of :meth:`ContextStep.parts` (an eager engine's: ``H, t_0`` too)."""
        ...


Cost = tuple[float, ...]
"""A memoised step: ``(seconds,)``, or the 14 coefficients of :meth:`ContextStepTime.parts` (16 for an eager engine)."""
Timed = Callable[[int, int], Cost]


def memoised(step: StepTime) -> tuple[dict[tuple[int, int], Cost], Timed]:
    """A memo of ``step``'s costs per ``(d, p)`` and the function that fills it (checking every value is finite)."""
    cache: dict[tuple[int, int], Cost] = {}
    parts = step.parts if isinstance(step, ContextStepTime) else None

    def timed(decode_seqs: int, prefill_tokens: int) -> Cost:
        c: Cost = (float(step(decode_seqs, prefill_tokens)),) if parts is None else parts(decode_seqs, prefill_tokens)
        if not all(math.isfinite(x) for x in c) or (parts is None and c[0] < 0.0):
            raise ValueError(f"step({decode_seqs}, {prefill_tokens}) returned {c[0] if parts is None else c}; step times must be finite "
                             "and >= 0 seconds")  # fmt: skip
        cache[decode_seqs, prefill_tokens] = c
        return c

    return cache, timed


def step_seconds(c: Cost, ve: VirtualEngine, decode_seqs: int) -> float:
    """Seconds of the step ``ve`` has just scheduled with ``decode_seqs`` decoding, from its memoised cost ``c``.

    At the decoders' actual KV tokens ``S`` and the chunks' sums when ``c`` has them
    (:mod:`aicap.sizing.serve.context_step`); never below 0.
    """
    if len(c) == 1:
        return c[0]
    # The simulator's hot loop calls this once per step: the common case of decode_context inline.
    s = ve.context + ve.gain * decode_seqs * ve.tick if decode_seqs == len(ve.decoders) else ve.decode_context(decode_seqs)
    a = c[1] + c[2] * s + c[3] * ve.span_mo + c[4] * ve.span_mm
    b = c[5] + c[6] * s + c[7] * ve.span_o + c[8] * ve.chunks
    alpha = c[13]  # each group max(a, b) + α·min(a, b)
    t = c[0] + (a + alpha * b if a > b else b + alpha * a)
    if c[9] or c[11]:
        a, b = c[9] + c[10] * s, c[11] + c[12] * s
        t += a + alpha * b if a > b else b + alpha * a
    if len(c) > 14:  # an eager engine: (…, H, t_0), the step max(T − t_0, H) + t_0
        device = t - c[15]
        t = (device if device > c[14] else c[14]) + c[15]
    return t if t > 0.0 else 0.0
