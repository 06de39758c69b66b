"""Admission that keeps KV room for what running requests will still generate (SGLang's ``PrefillAdder``).

vLLM admits a waiting request once its prompt's KV blocks are free and preempts when a decode step runs
out; SGLang projects each request's output and admits only what the cache can carry, so it seldom
retracts. A :class:`ProjectedGate` is that rule for one virtual engine
(:class:`~aicap.sizing.core.specs.efficiency.ProjectedAdmission` gives the constants). With ``F`` the
free KV tokens, ``M_j = min(O_j − g_j, C)`` what request ``j`` may still emit (``O`` its output
length, ``g`` emitted so far, ``C`` the clip) and ``ρ`` the new-token ratio:

* **Ratio path** (the default): in one scheduling round, waiting request ``r`` of prompt ``P_r`` is
  admitted while ``P_r + M_r < F − ρ·Σ_{running} M_j − Σ_{admitted this round} M_k``.
  ``ρ`` starts at ``ρ_0``, falls by ``(ρ_0 − ρ_min)/S`` each decode step to ``ρ_min``, and a decode step
  that retracts (preempts) requests resets it to ``min(1, (Σ g_j + R·n)/Σ O_j)`` over the ``n``
  decoding requests left (``R`` the retract steps).
* **Exact path** (requests that ignore EOS on a server without a prefix cache, as ``sglang.bench_serving``
  sends them by default to a ``--disable-radix-cache`` server): every remaining output is known. The
  running requests and ``r``, sorted by ``ℓ = O − g`` ascending (those with ``ℓ > 0``), with
  ``o = I + g`` tokens held, are admitted only if for every ``i``

      F − I_r + Σ_{j<i} o_j − ℓ_{i+1}·(n − i) > 0      (ℓ_{n} taken as ℓ_{n−1} for the last)

  which is SGLang's ``add_one_req_ignore_eos`` check of the batch's projected peak.

An engine with nothing running admits any request whose prompt's blocks are free: alone it runs to its
end, and the simulator refuses at arrival a request whose peak no engine holds.

The simulator counts ``F`` in its KV blocks (``(blocks − used)·B``), where SGLang pages single tokens:
the exact path charges each request ``B − 1`` tokens more per ``ℓ`` (``ℓ_{i+1} + B − 1``), the room its
part-filled last block may waste, so that what it admits never runs out of blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aicap.sizing.sim.request_table import DECODE

if TYPE_CHECKING:
    from aicap.sizing.sim.virtual_engine import VirtualEngine


@dataclass(frozen=True)
class AdmissionRule:
    """Constants of projected admission (module docstring).

    Attributes
    ----------
    init_ratio : float
        ``ρ_0`` [-].
    min_ratio : float
        ``ρ_min`` [-].
    decay_steps : int
        ``S``: decode steps from ``ρ_0`` down to ``ρ_min``.
    retract_steps : float
        ``R``: decode steps of headroom per request in the ratio set after a retraction.
    clip_tokens : int
        ``C``: cap on a request's remaining output in the projection [tokens].
    exact : bool
        Whether the exact path applies (requests ignore EOS and the server keeps no prefix cache).
    """

    init_ratio: float
    min_ratio: float
    decay_steps: int
    retract_steps: float
    clip_tokens: int
    exact: bool = False

    def __post_init__(self) -> None:
        if not (0.0 < self.min_ratio <= self.init_ratio <= 1.0):
            raise ValueError(f"need 0 < min_ratio <= init_ratio <= 1, got {self.min_ratio} and {self.init_ratio}")
        if self.decay_steps < 1 or self.clip_tokens < 1 or self.retract_steps < 0:
            raise ValueError("decay_steps and clip_tokens must be >= 1 and retract_steps >= 0")

    def gate(self) -> ProjectedGate:
        """A fresh gate (its own ratio) for one virtual engine."""
        return ProjectedGate(self)


class ProjectedGate:
    """Projected admission of one virtual engine: the ratio's state and the round's charges (module docstring)."""

    __slots__ = ("decay", "offset", "ratio", "round_extra", "rule")

    def __init__(self, rule: AdmissionRule) -> None:
        self.rule = rule
        self.ratio = rule.init_ratio
        self.decay = (rule.init_ratio - rule.min_ratio) / rule.decay_steps
        self.offset: float | None = None  # ρ·Σ M_j over the requests running when the round began (None: not yet needed)
        self.round_extra = 0  # Σ M_k over the requests admitted in this round

    @staticmethod
    def _emitted(engine: VirtualEngine, j: int) -> int:
        t = engine.table
        return t.base[j] + engine.tick if t.state[j] == DECODE else t.emitted[j]

    def begin(self, engine: VirtualEngine) -> None:
        """Open a scheduling round; the running requests' projected outputs are charged when first needed (:meth:`allows`)."""
        self.round_extra = 0
        self.offset = None

    def _charge(self, engine: VirtualEngine) -> float:
        """``ρ·Σ M_j`` over the requests running when the round began (once a round: before any is admitted in it)."""
        t, clip = engine.table, self.rule.clip_tokens
        return self.ratio * sum(min(t.output[j] - self._emitted(engine, j), clip) for j in engine.running)

    def allows(self, engine: VirtualEngine, r: int) -> bool:
        """Whether waiting request ``r`` may be admitted now (its prompt's blocks are known to be free)."""
        offset = self.offset
        if offset is None and not self.rule.exact:  # the round's first candidate: the running set is still the round's
            offset = self.offset = self._charge(engine)
        if not engine.running:  # alone it runs to its end: the arrival check refused what cannot (engine._too_big)
            return True
        t = engine.table
        free = (engine.blocks - engine.used) * engine.block_tokens
        if not self.rule.exact:
            total = t.prompt[r] - t.cached[r] + min(t.output[r] - t.emitted[r], self.rule.clip_tokens)
            return total < free - (offset or 0.0) - self.round_extra
        left, held = [], []
        for j in engine.running:
            g = self._emitted(engine, j)
            if t.output[j] > g:
                left.append(t.output[j] - g)
                held.append(t.input[j] + g)
        if t.output[r] > t.emitted[r]:
            left.append(t.output[r] - t.emitted[r])
            held.append(t.input[r] + t.emitted[r])
        if not left:
            return True
        lt, ht = np.asarray(left, dtype=np.int64), np.asarray(held, dtype=np.int64)
        order = np.argsort(lt, kind="stable")
        lt, ht = lt[order], ht[order]
        n = lt.size
        steps = np.append(lt[1:], lt[-1])
        freed = np.concatenate(([0], np.cumsum(ht)[:-1]))
        slack = engine.block_tokens - 1  # a request's last block may be part-filled: one more block's room each
        return bool(np.all(free - t.input[r] + freed - (steps + slack) * (n - np.arange(n)) > 0))

    def took(self, engine: VirtualEngine, r: int) -> None:
        """Charge request ``r``, just admitted, to the round."""
        t = engine.table
        self.round_extra += min(t.output[r] - t.emitted[r], self.rule.clip_tokens)

    def decoded(self, engine: VirtualEngine, retracted: bool) -> None:
        """Update the ratio after a decode step's KV reservation: reset when it retracted requests, else decay."""
        if not retracted:
            self.ratio = max(self.ratio - self.decay, self.rule.min_ratio)
            return
        t = engine.table
        dec = engine.decoders
        total = sum(t.output[j] for j in dec)
        emitted = sum(t.base[j] for j in dec) + engine.tick * len(dec)
        self.ratio = min(1.0, (emitted + self.rule.retract_steps * len(dec)) / total) if total > 0 else self.rule.init_ratio
