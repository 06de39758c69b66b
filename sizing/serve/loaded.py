"""The load model's input and output for a replica: its traffic's shape (:class:`Traffic`) and its metrics at a load (:class:`Loaded`).

Arrays over candidates throughout (one row per candidate replica); :mod:`aicap.sizing.serve.load` computes the one from the
other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]


@dataclass(frozen=True)
class Traffic:
    """A workload's shape as one replica sees it (arrays broadcast over candidates).

    Attributes
    ----------
    input_tokens, output_tokens
        Mean prompt and output lengths (tokens); ``output_tokens = 0`` for encoders and generic models.
    input_tail
        Prompt length at the latency percentile (tokens; the mean for a fixed length).
    slots
        Most requests a replica holds at once (memory at the longest request, runtime cap).
    quantile
        Latency percentile as a fraction (0.99 for p99).
    tail_share
        Share of requests whose prompt is at least ``input_tail`` long (1 for a fixed length); the rest
        are taken at the mean.
    arrival_cv
        Coefficient of variation of inter-arrival times (1 = Poisson).
    overhead_s
        Latency each request pays outside the engine's steps (the engine's ``request_overhead_ms``),
        seconds: added to TTFT.
    tokens_per_step
        Output tokens a decoding sequence emits per step, ``E`` (1; more with speculative decoding). The
        step budget each decoding sequence takes, ``q``, is the step model's ``decode_tokens``.
    input_above, above_share
        Mean length (tokens) and share of the prompts longer than ``input_tail`` (part of ``tail_share``):
        the TTFT percentile weighs them apart (a p90 where 10% of prompts are long is set by them).
    lag_rounds
        Rounds a request waits beyond the round in progress before it can be scheduled: 1 on an engine that
        schedules each step while the previous one runs (overlap scheduling), else 0.
    input_span
        Token-weighted mean of the computed prompt, ``E[I²]/E[I]`` (tokens; 0 or at most ``input_tokens``: the
        prompts are all alike): varied prompts spread the round time more than lumps of the mean do.
    input_skew
        The prompts' ``E[I³]/E[I²]^(3/2)`` (1 when they are alike; :func:`~aicap.sizing.core.lengths.skew_ratio`):
        how much a rare long prompt leans the TPOT's distribution to the right.
    prefill_first
        1 where a step that prefills decodes nothing (SGLang; vLLM v0): a round with prompts is a prefill
        step and then a decode step, ``T(0, p) + T(d, 0)``, not one mixed step ``T(d, p)``; else 0.
    """

    input_tokens: F
    output_tokens: F
    input_tail: F
    slots: F
    quantile: F
    arrival_cv: F
    tail_share: F
    overhead_s: F | float = 0.0
    tokens_per_step: F | float = 1.0
    input_above: F | float = 0.0
    above_share: F | float = 0.0
    lag_rounds: F | float = 0.0
    input_span: F | float = 0.0
    input_skew: F | float = 1.0
    prefill_first: F | float = 0.0

    @property
    def decode_steps(self) -> F:
        """Decode steps a request spends after its first token: ``max(O − 1, 0)/E``."""
        return np.asarray(np.maximum(self.output_tokens - 1.0, 0.0) / self.tokens_per_step, dtype=float)

    @property
    def burstiness(self) -> F:
        """Dispersion of the arrivals over a long window, ``max(cv², 1)``: 1 for Poisson (and smoother) traffic.

        A gamma renewal process's count over a window of many gaps has variance ``cv²`` times its mean; the load model's
        bursty terms (the prompts a life meets, the company an arrival finds) scale with it.
        """
        return np.asarray(np.maximum(np.asarray(self.arrival_cv, dtype=float) ** 2, 1.0), dtype=float)

    @property
    def prefills_first(self) -> NDArray[np.bool_]:
        """Where a step that prefills decodes nothing (``prefill_first``), as a boolean mask (not broadcast)."""
        return np.asarray(np.asarray(self.prefill_first, dtype=float) > 0.0)

    def room(self, budget: float, decoding: ArrayLike, decode_tokens: ArrayLike) -> F:
        """Budget tokens a round leaves for prompts (the load model's ``room``).

        ``C − q·d`` (at least 1) with ``d`` decoders taking ``q`` each, or the whole ``C`` where the engine prefills first
        (its prefill steps decode nothing).
        """
        mixed = np.maximum(budget - np.asarray(decoding, dtype=float) * np.asarray(decode_tokens, dtype=float), 1.0)
        return np.asarray(np.where(self.prefills_first, float(budget), mixed), dtype=float)

    def take(self, index: ArrayLike) -> Traffic:
        """The candidates at ``index``."""
        ix = np.asarray(index)
        fields = (self.input_tokens, self.output_tokens, self.input_tail, self.slots, self.quantile, self.arrival_cv, self.tail_share,
                  self.overhead_s, self.tokens_per_step, self.input_above, self.above_share, self.lag_rounds, self.input_span,
                  self.input_skew, self.prefill_first)  # fmt: skip
        shape = np.shape(self.input_tokens)
        return Traffic(*(np.asarray(v)[ix] if np.shape(v) == shape else np.broadcast_to(v, shape)[ix] for v in fields))


@dataclass(frozen=True)
class Loaded:
    """A replica at a load (arrays over candidates); times in seconds, rates in requests/s."""

    arrivals_per_round: F
    rate: F
    round_s: F
    running: F
    ttft_s: F
    tpot_s: F
    budget_use: F
    slot_use: F
    graph_use: F
    """Share of the CUDA-graph batch cap ``G`` the running count's reach uses, ``(d + K·σ_d)/G``
    (:data:`~aicap.sizing.serve.graph_cap.GRAPH_SIGMAS`): past 1 the replica is likely to fall, within hours, to the slower
    equilibrium of eager steps and stay there; 0 where the engine has no cap or already runs past it."""

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> Loaded:
        """Every metric 0 for ``shape`` candidates (to be filled with :meth:`put`)."""
        return cls(*(np.zeros(shape) for _ in _LOADED_FIELDS))

    def _arrays(self) -> list[F]:
        shape = np.shape(self.rate)
        return [v if np.shape(v := getattr(self, f.name)) == shape else np.broadcast_to(v, shape) for f in _LOADED_FIELDS]

    def take(self, index: ArrayLike) -> Loaded:
        """The candidates at ``index``."""
        ix = np.asarray(index)
        return Loaded(*(np.asarray(v[ix], dtype=float) for v in self._arrays()))

    def copy(self) -> Loaded:
        """An independent, writable copy."""
        return Loaded(*(np.array(v, dtype=float) for v in self._arrays()))

    def put(self, index: ArrayLike, part: Loaded) -> None:
        """Overwrite, in place, the candidates at ``index`` with ``part``'s (arrays must be writable: :meth:`copy`)."""
        for f in _LOADED_FIELDS:
            getattr(self, f.name)[index] = getattr(part, f.name)

    @property
    def stable(self) -> NDArray[np.bool_]:
        """Whether the replica keeps up: prefill within the token budget and running within the slots."""
        return np.asarray((self.budget_use < 1.0) & (self.slot_use < 1.0) & np.isfinite(self.ttft_s))


_LOADED_FIELDS = dataclasses.fields(Loaded)
