"""Scheduling policies beyond FCFS: the order of the waiting queue and, where preemptive, who gives way.

Every policy fills a step the way :class:`~aicap.sizing.sim.scheduler.FcfsScheduler` does (decode first,
then prefill chunks, then admissions in queue order while the running-batch cap, the token budget and
the free KV blocks allow; the queue's head blocks those behind it). They differ in the queue order and
in preemption. Keys are static per queue entry, so a queue is a binary heap (``O(log n)`` per request):

``sjf`` (shortest job first, with aging)
    Key ``size − a·(now − arrival)``, ordered like ``size + a·arrival``: a request that has waited ``w``
    seconds counts ``a·w`` tokens shorter, so nothing waits for ever. ``size`` is the prompt
    (``by="prompt"``) or the predicted total work ``input + Ô`` tokens (``by="work"``).
``srtf`` (shortest remaining predicted output first, preemptive)
    Key ``Ô − g + a·arrival`` (predicted output minus tokens emitted, with the same aging as SJF;
    ``a = 0`` by default: pure SRTF, which starves long outputs under saturation). Before a step, if the queue's head cannot
    be admitted (batch cap or KV blocks), the decoding request with the largest predicted remaining
    output among those whose preemption would let the head in is preempted, when that remaining
    exceeds ``margin`` times the head's (one per step, and each request at most ``max_preemptions``
    times: a recompute costs a re-prefill, so churn is kept in check).
``rr`` (round-robin time slicing)
    FCFS queue; before a step, if requests wait and the head cannot be admitted, the oldest decoding
    request that has run ``quantum`` decode steps since it (re)started, and whose preemption lets the
    head in, is preempted to the back of the queue (one per step).
``priority``
    Strict: key ``(class, arrival)``, class 0 first. Weighted (``weights`` per class): stride
    scheduling over per-class FCFS queues: the next admission goes to the non-empty class with the
    smallest pass ``π_c``, which then advances by ``1/w_c``, so admissions split as the weights
    while every class has work; a class that was empty restarts at the current virtual time.
``edf`` (earliest deadline first)
    Key ``arrival + D_class``, ``D`` the class's TTFT target in seconds.

Preemption is by recompute (vLLM's default): the victim re-prefills its prompt and the tokens it has
emitted, which SRTF and round-robin pay for in step time. The predicted output ``Ô = O·exp(σZ)``,
``Z ~ N(0, 1)`` drawn once per request from ``seed``, has a median-unbiased log-normal error of
``σ`` (0: an oracle).
"""

from __future__ import annotations

import heapq
import numbers
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from aicap.sizing.core.errors import InputError
from aicap.sizing.sim.request_table import RequestTable, WaitQueue
from aicap.sizing.sim.scheduler import FcfsScheduler
from aicap.sizing.sim.virtual_engine import VirtualEngine

Key = Callable[[int], tuple[float, float]]


def least_urgent(key: Key) -> Callable[[VirtualEngine], int]:
    """An evictor: the running request with the largest ``key`` (the least urgent; ties: the newest)."""

    def pick(engine: VirtualEngine) -> int:
        best, worst = -1, (-np.inf, -np.inf)
        for r in engine.running:  # admission order: a later tie wins
            k = key(r)
            if k >= worst:
                best, worst = r, k
        return best

    return pick


class KeyedQueue:
    """A waiting queue ordered by ``key(r)`` (smallest first; ties in insertion order)."""

    __slots__ = ("_heap", "_key", "_seq")

    def __init__(self, key: Key) -> None:
        self._key = key
        self._heap: list[tuple[float, float, int, int]] = []
        self._seq = 0

    def append(self, r: int, /) -> None:
        """File request ``r`` by its key."""
        a, b = self._key(r)
        self._seq += 1
        heapq.heappush(self._heap, (a, b, self._seq, r))

    appendleft = append  # a preempted request is filed by its key too

    def popleft(self) -> int:
        """Remove and return the request with the smallest key."""
        return heapq.heappop(self._heap)[3]

    def __getitem__(self, i: int, /) -> int:
        if i != 0:
            raise IndexError("a keyed queue exposes its head only")
        return self._heap[0][3]

    def __len__(self) -> int:
        return len(self._heap)


class WeightedQueue:
    """Per-class FCFS queues served by stride scheduling (module docstring, ``priority`` weighted)."""

    __slots__ = ("_klass", "_pass", "_queues", "_stride", "_vt")

    def __init__(self, klass: list[int], weights: Sequence[float]) -> None:
        self._klass = klass
        self._queues: list[deque[int]] = [deque() for _ in weights]
        self._stride = [1.0 / w for w in weights]
        self._pass = [0.0] * len(weights)
        self._vt = 0.0

    def _pick(self) -> int:
        best = -1
        for c, q in enumerate(self._queues):
            if q and (best < 0 or self._pass[c] < self._pass[best]):
                best = c
        if best < 0:
            raise IndexError("the queue is empty")
        return best

    def _file(self, r: int) -> deque[int]:
        c = self._klass[r]
        q = self._queues[c]
        if not q:
            self._pass[c] = max(self._pass[c], self._vt)
        return q

    def append(self, r: int, /) -> None:
        """Add ``r`` at the back of its class."""
        self._file(r).append(r)

    def appendleft(self, r: int, /) -> None:
        """Put a preempted ``r`` back at the front of its class."""
        self._file(r).appendleft(r)

    def popleft(self) -> int:
        """The head of the class whose turn it is; its pass advances by ``1/w``."""
        c = self._pick()
        self._vt = self._pass[c]
        self._pass[c] += self._stride[c]
        return self._queues[c].popleft()

    def __getitem__(self, i: int, /) -> int:
        if i != 0:
            raise IndexError("a weighted queue exposes its head only")
        return self._queues[self._pick()][0]

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues)


def predicted_outputs(table: RequestTable, error: float, seed: int) -> list[float]:
    """``Ô = O·exp(σZ)`` per request (module docstring); ``O`` itself when ``error == 0``."""
    out = np.asarray(table.output, dtype=np.float64)
    if error > 0:
        out = out * np.exp(error * np.random.Generator(np.random.PCG64(seed)).standard_normal(out.size))
    return [float(x) for x in out]


class SjfScheduler(FcfsScheduler):
    """Shortest job first with aging (module docstring).

    Parameters
    ----------
    by : {"prompt", "work"}
        Job size: prompt tokens, or prompt plus predicted output tokens.
    aging_tokens_per_s : float
        ``a``: tokens of size forgiven per second waited (≥ 0; 0 is pure SJF, which can starve).
    error, seed
        Output predictor (``by="work"`` only).
    """

    def __init__(self, by: str = "work", aging_tokens_per_s: float = 100.0, error: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if by not in ("prompt", "work"):
            raise ValueError(f"by must be 'prompt' or 'work', got {by!r}")
        if not aging_tokens_per_s >= 0 or not error >= 0:
            raise ValueError("aging_tokens_per_s and error must be >= 0")
        self.by, self.aging, self.error, self.seed = by, aging_tokens_per_s, error, seed

    def queue(self, table: RequestTable) -> WaitQueue:
        """Keyed by ``input + Ô + a·arrival`` (or ``input + a·arrival``)."""
        pred = predicted_outputs(table, self.error, self.seed) if self.by == "work" else [0.0] * len(table.output)
        inp, arr, a = table.input, table.arrival_s, self.aging
        return KeyedQueue(lambda r: (inp[r] + pred[r] + a * arr[r], arr[r]))


class SrtfScheduler(FcfsScheduler):
    """Shortest remaining predicted output first, preemptive (module docstring).

    Parameters
    ----------
    error, seed
        Output predictor: log-normal ``σ`` and its seed.
    margin : float
        A running request gives way only if its predicted remaining output exceeds ``margin`` times
        the waiting head's (≥ 1).
    aging_tokens_per_s : float
        ``a`` of the queue key (≥ 0).
    max_preemptions : int
        Times one request may give way (≥ 0): every preemption re-prefills the victim's prompt and
        output so far, and a long request preempted again and again costs more than it saves.
    """

    def __init__(self, error: float = 0.0, seed: int = 0, margin: float = 2.0, aging_tokens_per_s: float = 0.0,
                 max_preemptions: int = 1) -> None:  # fmt: skip
        super().__init__()
        if not error >= 0 or not margin >= 1 or not aging_tokens_per_s >= 0 or max_preemptions < 0:
            raise ValueError(f"error, aging and max_preemptions must be >= 0 and margin >= 1, got {error}, {aging_tokens_per_s}, "
                             f"{max_preemptions} and {margin}")  # fmt: skip
        self.error, self.seed, self.margin, self.aging, self.max_preemptions = error, seed, margin, aging_tokens_per_s, max_preemptions
        self._pred: list[float] = []
        self._given_way: dict[int, int] = {}
        self._table: RequestTable | None = None

    def queue(self, table: RequestTable) -> WaitQueue:
        """Keyed by predicted remaining output ``Ô − g + a·arrival``."""
        if self._table is not table:
            self._table, self._pred, self._given_way = table, predicted_outputs(table, self.error, self.seed), {}
        pred, emitted, arr, a = self._pred, table.emitted, table.arrival_s, self.aging
        return KeyedQueue(lambda r: (pred[r] - emitted[r] + a * arr[r], arr[r]))

    def make_room(self, engine: VirtualEngine) -> None:
        """Preempt the longest-remaining decoder whose place lets the waiting head in (module docstring)."""
        w = engine.waiting
        if not w:
            return
        t = engine.table
        head = w[0]
        if len(engine.running) < engine.max_seqs and engine.can_admit(head):
            return
        a, arr = self.aging, t.arrival_s
        head_left = max(self._pred[head] - t.emitted[head], 1.0)
        head_key = head_left + a * arr[head]
        worst, victim = self.margin * head_left, -1
        given = self._given_way
        for r in engine.decoders:
            left = self._pred[r] - (t.base[r] + engine.tick)
            # it must also file behind the head once preempted, or it is re-admitted at once (a wasted recompute)
            if (left > worst and left + a * arr[r] > head_key and given.get(r, 0) < self.max_preemptions
                    and engine.admits_after_freeing(head, r)):  # fmt: skip
                worst, victim = left, r
        if victim >= 0:
            given[victim] = given.get(victim, 0) + 1
            engine.preempt(victim)


class RoundRobinScheduler(FcfsScheduler):
    """Round-robin time slicing on decode steps (module docstring).

    Parameters
    ----------
    quantum_steps : int
        Decode steps a request runs before it gives way to a waiting one (≥ 1).
    """

    def __init__(self, quantum_steps: int = 256) -> None:
        super().__init__()
        if quantum_steps < 1:
            raise ValueError(f"quantum_steps must be >= 1, got {quantum_steps}")
        self.quantum = quantum_steps

    def make_room(self, engine: VirtualEngine) -> None:
        """Preempt the oldest decoder past its quantum whose place lets the waiting head in."""
        w = engine.waiting
        if not w or (len(engine.running) < engine.max_seqs and engine.can_admit(w[0])):
            return
        for r in engine.decoders:
            if engine.decoded_since_start(r) >= self.quantum and engine.admits_after_freeing(w[0], r):
                engine.preempt(r, front=False)
                return


class PriorityScheduler(FcfsScheduler):
    """Priority classes, strict (``weights=None``) or weighted (module docstring)."""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if weights is not None and (not weights or any(not x > 0 for x in weights)):
            raise ValueError("weights must be a non-empty list of numbers > 0, one per priority class")
        self.weights = None if weights is None else [float(x) for x in weights]

    def queue(self, table: RequestTable) -> WaitQueue:
        """Strict ``(class, arrival)`` keys, or per-class queues under stride scheduling."""
        if self.weights is not None:
            top = max(table.priority, default=0)
            if top >= len(self.weights):
                raise InputError(f"priority class {top} has no weight ({len(self.weights)} given); give one weight per class")
            return WeightedQueue(table.priority, self.weights)
        prio, arr = table.priority, table.arrival_s
        return KeyedQueue(lambda r: (float(prio[r]), arr[r]))

    def evictor(self, table: RequestTable) -> Callable[[VirtualEngine], int] | None:
        """Under KV pressure the lowest class gives way (the latest arrival of it), not the newest admitted."""
        prio, arr = table.priority, table.arrival_s
        return least_urgent(lambda r: (float(prio[r]), arr[r]))


class EdfScheduler(FcfsScheduler):
    """Earliest deadline first on the TTFT target (module docstring).

    Parameters
    ----------
    ttft_target_s : float or sequence of float
        TTFT target in seconds, one for all or one per priority class.
    """

    def __init__(self, ttft_target_s: float | Sequence[float]) -> None:
        super().__init__()
        many = not isinstance(ttft_target_s, numbers.Real)  # a NumPy scalar is one target too
        targets = [float(x) for x in ttft_target_s] if many else [float(ttft_target_s)]  # type: ignore[union-attr, arg-type]
        if not targets or any(not x > 0 for x in targets):
            raise ValueError("TTFT targets must be > 0 seconds")
        self.targets = targets

    def queue(self, table: RequestTable) -> WaitQueue:
        """Keyed by the deadline ``arrival + D_class``."""
        d, prio, arr = self.targets, table.priority, table.arrival_s
        if len(d) == 1:
            return KeyedQueue(lambda r: (arr[r] + d[0], arr[r]))
        if max(prio, default=0) >= len(d):
            raise InputError(f"priority class {max(prio)} has no TTFT target ({len(d)} given)")
        return KeyedQueue(lambda r: (arr[r] + d[prio[r]], arr[r]))

    def evictor(self, table: RequestTable) -> Callable[[VirtualEngine], int] | None:
        """Under KV pressure the request with the latest deadline gives way."""
        d, prio, arr = self.targets, table.priority, table.arrival_s
        return least_urgent(lambda r: (arr[r] + d[prio[r] if len(d) > 1 else 0], arr[r]))
