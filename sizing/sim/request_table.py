"""The per-request state a replica's virtual engines share, the request states, and the waiting-queue protocol.

Kept in plain Python lists indexed by request id (arrival order): the simulator's hot loop reads and
writes them element by element, which lists do faster than arrays.
"""

from __future__ import annotations

import math
from typing import Protocol

WAITING, PREFILL, DECODE, DONE, REJECTED = 0, 1, 2, 3, 4


class WaitQueue(Protocol):
    """The waiting queue of a virtual engine; its order is the scheduling policy's (``deque`` is FCFS).

    ``append`` takes an arrival, ``appendleft`` a preempted request (FCFS puts it back at the front;
    a keyed queue files it by its key), ``popleft`` and ``[0]`` the next to admit.
    """

    def append(self, r: int, /) -> None:
        """Add an arriving request."""
        ...

    def appendleft(self, r: int, /) -> None:
        """Put back a preempted request."""
        ...

    def popleft(self) -> int:
        """Remove and return the next request to admit."""
        ...

    def __getitem__(self, i: int, /) -> int:
        """``[0]``: the next request to admit."""
        ...

    def __len__(self) -> int:
        """Requests waiting."""
        ...


class RequestTable:
    """Per-request state shared by the virtual engines of one replica (Python lists, for speed).

    Indices are request ids in arrival order. Times are seconds; lengths are tokens.
    """

    __slots__ = (
        "admit_s",
        "arrival_s",
        "attend",
        "base",
        "cached",
        "emitted",
        "engine",
        "fin_tick",
        "finish_s",
        "first_s",
        "input",
        "key",
        "output",
        "prefilled",
        "priority",
        "prompt",
        "state",
    )

    def __init__(self, arrival_s: list[float], input_tokens: list[int], output_tokens: list[int],
                 priority: list[int] | None = None, cached: list[int] | None = None,
                 attend: list[int] | None = None) -> None:  # fmt: skip
        n = len(arrival_s)
        self.cached = [0] * n if cached is None else cached  # prompt tokens found in the prefix cache: not prefilled
        self.arrival_s = arrival_s
        self.input = input_tokens
        # Of the input, the tokens a step attends to: all but a reserved prefix that only holds KV blocks
        # (a speculative request's gained tokens, engine.in_steps); the same list when there is none.
        self.attend = input_tokens if attend is None else attend
        self.output = output_tokens
        self.priority = [0] * n if priority is None else priority  # class, 0 the most urgent
        self.emitted = [0] * n  # tokens emitted (exact while waiting or prefilling; base + tick while decoding)
        self.prompt = list(input_tokens)  # tokens to prefill in the current incarnation
        self.prefilled = [0] * n  # of `prompt`, processed so far
        self.base = [0] * n  # decoding: emitted = base + tick of its engine
        self.key = [0] * n  # decoding: (input + base − 1) mod B, the block bucket
        self.fin_tick = [0] * n  # decoding: tick at which it emits its last token
        self.state = [WAITING] * n
        self.engine = [-1] * n
        self.first_s = [math.nan] * n  # time of the first emitted token
        self.admit_s = [math.nan] * n  # start of the step that first admitted it (its queue wait ends)
        self.finish_s = [math.nan] * n
