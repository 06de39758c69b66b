"""Token lengths of a workload's requests: one number, or a histogram of ``{tokens, weight}`` bins.

A fleet file gives each workload's prompt and output lengths either as a fixed count or as a
histogram (:class:`LengthBin` bars with relative weights). The statistics the planner needs from
them live here, each a pure function of a :data:`Length`: the weighted mean (throughput), the
length at a quantile (the TTFT tail), the token-weighted mean (prefill attention), the decode-step
context and the longest request (memory).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt


class LengthBin(BaseModel):
    """One bar of a token-length histogram: ``tokens`` with relative ``weight``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    tokens: PositiveInt
    weight: PositiveFloat


Length = int | list[LengthBin]
"""A request length: a fixed number of tokens, or a histogram of lengths."""


def _power_sum(bins: list[LengthBin], k: int) -> float:
    """``Σ tokensᵏ·weight`` over a histogram's bins (``k = 0``: the total weight)."""
    return float(sum(b.tokens**k * b.weight for b in bins))


def mean_tokens(v: Length) -> float:
    """Mean length [tokens]: ``Σ tokens·weight / Σ weight`` (the number itself for a fixed length)."""
    if isinstance(v, int):
        return float(v)
    return _power_sum(v, 1) / _power_sum(v, 0)


def max_tokens(v: Length) -> int:
    """Longest length [tokens]: the largest bin (the number itself for a fixed length)."""
    return v if isinstance(v, int) else max(b.tokens for b in v)


def decode_context(input_tokens: Length, output_tokens: Length) -> float:
    """Mean context of a decode step [tokens]: ``E[I] + E[O²]/(2·E[O])``.

    A request decodes ``O`` tokens at contexts ``I`` to ``I + O``, so a step of the engine meets
    requests in proportion to their output length: the context averaged over decode steps is
    ``E[O·(I + O/2)]/E[O]``, which for prompt and output lengths drawn independently is the formula
    above; ``I + O/2`` for fixed lengths, more when outputs vary (``E[I] + E[O]`` for exponential ones).
    """
    o = output_tokens
    if isinstance(o, int):
        return mean_tokens(input_tokens) + o / 2.0
    total = _power_sum(o, 0)
    first = _power_sum(o, 1) / total
    second = _power_sum(o, 2) / total
    return mean_tokens(input_tokens) + second / (2.0 * max(first, 1e-12))


def token_weighted_mean(v: Length) -> float:
    """Token-weighted mean length [tokens]: ``E[I²]/E[I]`` (``I`` for a fixed length).

    A prompt of ``I`` tokens puts ``I`` tokens through prefill, each attending to the tokens before
    it, so prefill attention per token averages over prompts weighted by their length: a step model
    built at the mean prompt undercounts it when lengths vary.
    """
    if isinstance(v, int):
        return float(v)
    return _power_sum(v, 2) / max(_power_sum(v, 1), 1e-12)


def skew_ratio(v: Length) -> float:
    """Third over second moment of the length, ``E[I³]/E[I²]^(3/2)`` (dimensionless; 1 for a fixed length).

    At least 1 (Lyapunov's inequality for non-negative lengths); the larger it is, the more a rare long
    prompt dominates the prompt tokens a request meets, which skews its TPOT to the right
    (:mod:`aicap.sizing.serve.load`).
    """
    if isinstance(v, int):
        return 1.0
    second = _power_sum(v, 2)
    return float(_power_sum(v, 3) * _power_sum(v, 0) ** 0.5 / max(second, 1e-12) ** 1.5)


def at_quantile(v: Length, quantile: float) -> float:
    """Length [tokens] at ``quantile``: the bin where the cumulative weight reaches it."""
    if isinstance(v, int):
        return float(v)
    bins = sorted(v, key=lambda b: b.tokens)
    total = sum(b.weight for b in bins)
    acc = 0.0
    for b in bins:
        acc += b.weight
        if acc >= quantile * total - 1e-12:
            return float(b.tokens)
    return float(bins[-1].tokens)


def share_from(v: Length, tokens: float) -> float:
    """Share of requests at least ``tokens`` long (1 or 0 for a fixed length)."""
    if isinstance(v, int):
        return 1.0 if v >= tokens else 0.0
    total = sum(b.weight for b in v)
    return sum(b.weight for b in v if b.tokens >= tokens) / total


def above(v: Length, tokens: float) -> tuple[float, float]:
    """Mean length [tokens] and share of the requests longer than ``tokens`` (``(0, 0)`` when none is)."""
    if isinstance(v, int):
        return (float(v), 1.0) if v > tokens else (0.0, 0.0)
    total = sum(b.weight for b in v)
    longer = [b for b in v if b.tokens > tokens]
    weight = sum(b.weight for b in longer)
    if weight <= 0.0:
        return 0.0, 0.0
    return sum(b.tokens * b.weight for b in longer) / weight, weight / total
