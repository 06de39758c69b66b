"""Scheduling policy of one engine step: the :class:`Scheduler` protocol and first-come-first-served.

A scheduler decides, for one virtual engine and one step, which requests run and how many tokens each
processes, using only the mechanics of :class:`~aicap.sizing.sim.virtual_engine.VirtualEngine`
(``reserve_decode``, ``chunk``, ``can_admit``, ``admit``, ``preempt``). The simulator then times the
step and closes it. A policy is two small pieces: the order of the waiting queue (:meth:`queue`) and,
for preemptive policies, which running requests give way before the step is filled
(:meth:`FcfsScheduler.make_room`). The policies other than FCFS live in
:mod:`aicap.sizing.sim.policies`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from aicap.sizing.sim.request_table import RequestTable, WaitQueue
from aicap.sizing.sim.virtual_engine import VirtualEngine


class Scheduler(Protocol):
    """Chooses the micro-batch of one engine step."""

    def queue(self, table: RequestTable) -> WaitQueue:
        """A new, empty waiting queue for one virtual engine serving the requests of ``table``."""
        ...

    def evictor(self, table: RequestTable) -> Callable[[VirtualEngine], int] | None:
        """Which running request gives way when the KV cache runs out (``None``: the newest)."""
        ...

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        """Fill one step of ``engine``; return ``(decode_seqs, prefill_tokens)`` of the step.

        The returned counts must not exceed the engine's token budget (``decode_seqs + prefill_tokens
        ≤ max_tokens``) and its running set must stay within ``max_seqs`` requests and ``blocks`` KV
        blocks. ``(0, 0)`` means the engine runs no step.
        """
        ...


class FcfsScheduler:
    """First come, first served with chunked prefill mixed into decode steps (vLLM v1 default).

    With token budget ``T`` (tokens) for the step:

    1. decoding requests, oldest admitted first, take one token each while the budget lasts
       (``d = min(decoding, T)``); KV blocks for their new tokens are reserved, preempting the most
       recently admitted running request while they do not fit;
    2. admitted requests still prefilling take chunks, oldest first: ``min(remaining prompt, budget)``;
    3. waiting requests are admitted in queue order while the budget is positive, fewer than
       ``max_seqs`` run, and the free KV blocks cover the whole prompt (``ceil(prompt/B)``); each takes
       a chunk as in 2. The queue is strictly FCFS: a head that does not fit blocks those behind it.
       Without chunked prefill the head's whole prompt must also fit the remaining budget
       (:meth:`~aicap.sizing.sim.virtual_engine.VirtualEngine.fits`). An engine with projected admission
       (SGLang) also needs room for what the running requests will still emit
       (:mod:`aicap.sizing.sim.admission`).

    Since admission stops when the budget is spent, the decoding requests never outnumber the budget
    and none ever skips a step — unless ``decode_cap`` limits them further.

    With ``prefill_first`` (the engine's, :attr:`VirtualEngine.prefill_first`) steps 2 and 3 come first
    and take the whole budget; a step that prefills anything decodes nothing, and step 1 runs only when
    no prompt can be prefilled. This is vLLM v0's default scheduler (``_schedule_default``, "Don't
    schedule decodes if prefills are scheduled") used whenever chunked prefill is off.

    With multi-step scheduling (:attr:`VirtualEngine.decode_steps` ``k > 1``, vLLM v0's
    ``--num-scheduler-steps``) a decode-only step commits the engine to ``k − 1`` more decode-only
    steps: requests arriving meanwhile wait for the round to end.

    Parameters
    ----------
    decode_cap : int or None, optional
        Most decoding requests per step (the oldest run, the rest skip the step); ``None``: only the
        token budget limits them. Not a vLLM setting: it exists to exercise skipped decode steps.
    """

    def __init__(self, decode_cap: int | None = None) -> None:
        if decode_cap is not None and decode_cap < 1:
            raise ValueError(f"decode_cap must be >= 1, got {decode_cap}")
        self.decode_cap = decode_cap

    def queue(self, table: RequestTable) -> WaitQueue:
        """A FCFS queue: arrivals at the back, preempted requests at the front."""
        return deque()

    def evictor(self, table: RequestTable) -> Callable[[VirtualEngine], int] | None:
        """FCFS evicts the most recently admitted request when the KV cache runs out (vLLM's default)."""
        return None

    def make_room(self, engine: VirtualEngine) -> None:
        """Preempt running requests in favour of waiting ones before the step is filled (FCFS: none)."""

    def schedule(self, engine: VirtualEngine) -> tuple[int, int]:
        """Fill one step of ``engine`` as described in the class docstring."""
        self.make_room(engine)
        budget = engine.max_tokens
        q = engine.verify_tokens  # a decoding request takes k + 1 budget tokens with speculative decoding
        cap = budget // q if self.decode_cap is None else min(budget // q, self.decode_cap)
        if engine.held > 0:
            if engine.decoders:  # inside a multi-step round: decode only, nothing is scheduled
                engine.held -= 1
                return engine.reserve_decode(cap), 0
            engine.held = 0  # the round's decoders all finished: the round ends and waiting requests are scheduled
        if engine.prefill_first:
            prefill = self._prefill(engine, budget)
            if prefill > 0:
                return 0, prefill
        decode = engine.reserve_decode(cap)
        budget -= decode * q
        prefill = self._prefill(engine, budget) if budget > 0 and not engine.prefill_first else 0
        if prefill == 0 and decode > 0:
            engine.held = engine.decode_steps - 1
        return decode, prefill

    @staticmethod
    def _prefill(engine: VirtualEngine, budget: int) -> int:
        """Fill ``budget`` tokens with prefill: chunks of admitted prompts, then admissions (steps 2 and 3)."""
        prefill = 0
        for r in engine.prefilling:
            c = engine.chunk(r, budget)
            prefill += c
            budget -= c
            if budget == 0:
                return prefill
        waiting = engine.waiting
        gate = engine.gate
        if gate is not None and waiting:
            gate.begin(engine)
        while (budget > 0 and waiting and len(engine.running) < engine.max_seqs and engine.can_admit(waiting[0])
               and engine.fits(waiting[0], budget) and (gate is None or gate.allows(engine, waiting[0]))):  # fmt: skip
            r = engine.admit()
            if gate is not None:
                gate.took(engine, r)
            c = engine.chunk(r, budget)
            prefill += c
            budget -= c
        return prefill
