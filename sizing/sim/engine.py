"""Iteration-level discrete-event simulation of one serving replica under continuous batching.

:func:`simulate` advances a replica engine step by engine step, the way vLLM v1, SGLang and
TensorRT-LLM schedule with chunked prefill; the caller supplies the duration of a step
(:class:`StepTime`). Times are seconds, lengths tokens, ``B`` is ``block_tokens``.

Semantics, ``pipeline_stages == 1``
-----------------------------------
1. *Clock.* A step starts at time ``t`` (initially 0). Requests with ``arrival ≤ t`` join the back of
   the FCFS waiting queue. If nothing is running or waiting, ``t`` jumps to the next arrival.
2. *KV cache.* The replica has ``floor(kv_capacity_tokens / B)`` blocks. An admitted request reserves
   ``ceil(P/B)`` blocks for its prompt ``P``; a decoding request that has emitted ``g`` tokens holds
   ``ceil((I + g − 1)/B)`` blocks (prompt ``I`` plus every generated token fed back so far) and needs
   ``ceil((I + g)/B)`` for its next step. A request whose peak need ``ceil((I + max(O − 1, 0))/B)``
   exceeds the blocks of its engine is rejected at arrival (never admitted; counted in ``rejected``).
   A hybrid model's requests also hold ``ceil(state_tokens/B)`` blocks each while they run (their fixed
   recurrent state, paged from the same pool as in vLLM).
3. *Scheduling* (:class:`~aicap.sizing.sim.scheduler.FcfsScheduler`), budget ``T = max_batched_tokens``:
   (a) the running requests in decode, oldest admitted first, take one token each while the budget
   lasts (``d = min(decoding, T)``; the rest skip the step); (b) if those ``d`` requests need more
   blocks than are free, the most recently admitted running request (decoding or prefilling) is
   preempted by recompute — its blocks are freed and it returns to the *front* of the queue with prompt
   ``P = I + g`` (prompt plus the tokens already emitted; emitted tokens and TTFT are kept) — and this
   repeats until they fit; (c) requests still prefilling take chunks, oldest first,
   ``min(remaining prompt, remaining budget)``; (d) waiting requests are admitted in queue order while
   the budget is positive, fewer than ``max_num_seqs`` run, and ``ceil(P/B)`` blocks are free, each
   taking a chunk as in (c). ``prefill_tokens`` is the sum of the chunks. (Since admission stops when
   the budget is spent, FCFS never has more decoding requests than ``T``: skipping in (a) happens only
   under a scheduler that caps decode, e.g. ``FcfsScheduler(decode_cap=...)``.)
4. *Step.* It lasts ``step(d, prefill_tokens)`` seconds (a step that also has ``parts``, such as
   :class:`~aicap.sizing.serve.context_step.ContextStep`, is priced at the scheduled decoders' KV tokens
   and the chunks' attention spans, see "Performance"); at its end ``t_end``: every scheduled decoding
   request emits one token; a request whose prompt completes emits a token (its first, if it had none:
   ``TTFT = t_end − arrival``) — a request with ``output_tokens == 0`` (encoder, embedding) emits
   nothing and finishes there; a request that has emitted all ``O`` tokens finishes (``E2E = t_end −
   arrival``) and frees its blocks. ``TPOT = (finish − first token)/(O − 1)`` for ``O ≥ 2``.

So an isolated request with ``I ≤ T`` sees ``TTFT = step(0, I)`` and ``E2E = step(0, I) + (O − 1)·
step(1, 0)``; a prompt of ``k·T`` tokens alone takes ``k`` steps before its first token.

Semantics, ``pipeline_stages = p > 1``
--------------------------------------
The replica runs ``p`` virtual engines (micro-batches in flight), each with its own waiting queue,
running set, token budget ``T`` and a share of the replica's capacity: ``ceil(max_num_seqs/p)``
running requests and ``ceil(blocks/p)`` KV blocks. An arriving request joins the queue of the virtual
engine with the fewest requests running plus waiting (lowest index on ties; vLLM v0 routes on
unfinished requests, so that a burst is spread rather than piled on one engine); a preempted request
stays on its engine. Time advances in rounds: in each round every virtual engine with work schedules
one step as above, the round lasts ``max_k step(d_k, prefill_k)`` (synchronous pipeline: each
micro-batch passes through all ``p`` stages, so the slowest one paces all), and tokens are emitted at
the round's end. Each virtual engine therefore behaves as a ``p = 1`` engine with ``1/p`` of the
capacity, and the replica emits up to ``p`` micro-batches per round.

Without chunked prefill
-----------------------
With ``chunked_prefill`` off (TensorRT-LLM's default, JetStream) a prompt is prefilled whole in one step:
a request whose prompt (less a cached prefix) exceeds ``T`` is rejected at arrival; a prefilling request
takes no tokens in a step whose remaining budget is smaller than its prompt; and admission stops at a
waiting request whose prompt does not fit the remaining budget (it heads the queue for the next step).
A request preempted by recompute whose prompt plus emitted tokens now exceeds ``T`` is the exception:
it is chunked (TensorRT-LLM's default scheduler never preempts; recompute is the simulator's).

Overlap scheduling
------------------
An engine that overlaps scheduling with execution (``overlap_scheduling``: SGLang's default scheduler
since 0.4, TensorRT-LLM's PyTorch executor) picks the batch of step ``m + 1`` while step ``m`` runs, from
the requests received before step ``m`` began: its loop receives requests, schedules and launches the
next batch, then waits for the running one's results, so a request that arrives during step ``m``
misses the batch already chosen for ``m + 1`` and is first scheduled into ``m + 2``. In the simulator a
step starting at ``t`` right after another (which started at ``s``) admits the requests that arrived
by ``s``; those that arrived in ``(s, t]`` wait one step more, which lengthens TTFT by about one
step when the engine is busy. A step that starts an idle engine, or that would otherwise run nothing,
admits every arrival up to ``t`` (the loop, with nothing in flight, receives them at once). Step times
are unchanged: the host work hidden behind the GPU is what the engine's per-step overhead leaves out.

Speculative decoding
--------------------
With a drafter, each decoding request takes ``k + 1`` tokens of the step budget (``verify_tokens``) and
emits ``E`` tokens per step on average (``tokens_per_step``; the step time includes the drafter). The
simulator counts a request's decode in steps (:func:`in_steps`): ``⌈(O − 1)/E⌉`` of them after its
first token, with the KV of the tokens it will gain held from admission (so memory is never
under-counted); TPOT is still ``(finish − first token)/(O − 1)`` in real tokens. Acceptance is taken at
its mean: the step-to-step spread of accepted tokens averages out over a request's many steps. A
request preempted by recompute recomputes its prompt and emitted steps, not the ``E``-fold tokens.

Performance
-----------
The loop is pure Python over steps; per step it costs O(1) plus the requests admitted, completing or
finishing (decoding requests are advanced by a per-engine clock, see
:mod:`aicap.sizing.sim.virtual_engine`). ``step`` is called once per distinct ``(d, prefill)`` pair and
memoised, so it must be a pure function of its arguments. A step with ``parts(d, p)`` (a
:class:`ContextStepTime`) is memoised as its coefficients in the decoders' KV tokens ``S`` and the
chunks' sums, and each step then costs a few float operations: ``S`` is kept per virtual engine in O(1)
(:mod:`aicap.sizing.sim.virtual_engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.sim.admission import AdmissionRule
from aicap.sizing.sim.costs import ContextStepTime as ContextStepTime
from aicap.sizing.sim.costs import Cost, Timed, memoised
from aicap.sizing.sim.costs import StepTime as StepTime
from aicap.sizing.sim.costs import step_seconds as step_seconds
from aicap.sizing.sim.request_table import DONE, REJECTED, WAITING, RequestTable
from aicap.sizing.sim.result import SimResult
from aicap.sizing.sim.scheduler import FcfsScheduler, Scheduler
from aicap.sizing.sim.token_gaps import GapSample
from aicap.sizing.sim.virtual_engine import VirtualEngine

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 -- the brief's name for integer arrays


@dataclass(frozen=True)
class EngineConfig:
    """Scheduler limits of one replica (vLLM names in brackets).

    Attributes
    ----------
    max_num_seqs : int
        Most requests running at once [``max_num_seqs``]; for encoders, the largest batch.
    max_batched_tokens : int
        Token budget per step, decode tokens (one per decoding request) plus prefill-chunk tokens
        [``max_num_batched_tokens``].
    kv_capacity_tokens : int
        KV-cache capacity of the replica, tokens (paged: ``floor(capacity / block_tokens)`` blocks).
    block_tokens : int
        Tokens per KV block (page size) [``block_size``].
    pipeline_stages : int
        Pipeline-parallel degree ``p``: micro-batches (virtual engines) in flight.
    request_overhead_s : float
        Latency each request pays off the accelerator (HTTP, tokenisation, detokenisation), seconds;
        added to TTFT and end-to-end, not to the engine's steps.
    verify_tokens : int
        Budget tokens each decoding request takes per step: ``k + 1`` with speculative decoding, else 1.
    tokens_per_step : float
        Output tokens a decoding request emits per step on average, ``E`` (1 without speculative
        decoding); see "Speculative decoding" in the module docstring.
    chunked_prefill : bool
        Whether prompts are split over steps to fit the budget [``enable_chunked_prefill``]; see
        "Without chunked prefill" in the module docstring.
    prefill_first : bool
        Whether a step that prefills anything decodes nothing (vLLM v0 without chunked prefill); see
        :class:`~aicap.sizing.sim.scheduler.FcfsScheduler`.
    decode_steps : int
        Decode-only steps per scheduling round, ``k`` (vLLM v0 ``--num-scheduler-steps``; 1: every step
        is scheduled); see :class:`~aicap.sizing.sim.scheduler.FcfsScheduler`.
    state_tokens : int
        KV-cache tokens each running request holds besides its own tokens' KV: a hybrid model's fixed
        recurrent state (:func:`aicap.sizing.perf.memory.state_tokens`; 0 for other models), held as
        ``ceil(state_tokens / block_tokens)`` blocks.
    overlap_scheduling : bool
        Whether the engine schedules each step while the previous one runs (SGLang's overlap scheduler,
        TensorRT-LLM's, vLLM's ``--async-scheduling``); see "Overlap scheduling" in the module docstring.
    record_gaps : bool
        Whether to record every inter-token gap (:mod:`aicap.sizing.sim.token_gaps`; ``SimResult.itl``).
        Off by default: it costs a few percent of a run, which the sizer's checks do not need.
    admission : AdmissionRule or None
        Projected admission (SGLang keeps KV room for what running requests will still emit;
        :mod:`aicap.sizing.sim.admission`); ``None``: a request is admitted once its prompt's blocks are
        free, and a decode step that runs out preempts (vLLM).
    """

    max_num_seqs: int
    max_batched_tokens: int
    kv_capacity_tokens: int
    block_tokens: int = 16
    pipeline_stages: int = 1
    request_overhead_s: float = 0.0
    verify_tokens: int = 1
    tokens_per_step: float = 1.0
    chunked_prefill: bool = True
    prefill_first: bool = False
    decode_steps: int = 1
    state_tokens: int = 0
    overlap_scheduling: bool = False
    record_gaps: bool = False
    admission: AdmissionRule | None = None

    def __post_init__(self) -> None:
        if not (1.0 <= self.tokens_per_step <= self.verify_tokens):
            raise ValueError(f"tokens_per_step must be in [1, verify_tokens = {self.verify_tokens}], got {self.tokens_per_step}")
        for name in ("max_num_seqs", "max_batched_tokens", "block_tokens", "pipeline_stages", "verify_tokens", "decode_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.verify_tokens > self.max_batched_tokens:  # no decoder would ever be scheduled: every request would be lost
            raise ValueError(f"verify_tokens ({self.verify_tokens}) must fit the step budget ({self.max_batched_tokens})")
        if not (0.0 <= self.request_overhead_s < 60.0):
            raise ValueError(f"request_overhead_s must be in [0, 60), got {self.request_overhead_s}")
        if self.state_tokens < 0:
            raise ValueError(f"state_tokens must be >= 0, got {self.state_tokens}")
        if self.kv_capacity_tokens < self.block_tokens:
            raise ValueError(f"kv_capacity_tokens ({self.kv_capacity_tokens}) must hold at least one block ({self.block_tokens} tokens)")

    @property
    def blocks(self) -> int:
        """KV blocks of the whole replica."""
        return self.kv_capacity_tokens // self.block_tokens

    @property
    def state_blocks(self) -> int:
        """Blocks of each running request's fixed state, ``ceil(state_tokens / block_tokens)``."""
        return -(-self.state_tokens // self.block_tokens)


@dataclass(frozen=True)
class Requests:
    """A trace of requests (equal-length arrays).

    Attributes
    ----------
    arrival_s : numpy.ndarray of float64
        Arrival instants, seconds (≥ 0, any order).
    input_tokens : numpy.ndarray of int64
        Prompt lengths, tokens (≥ 1).
    output_tokens : numpy.ndarray of int64
        Tokens to generate (≥ 0); 0 is an encoder/embedding request, done when its prefill completes.
    priority : numpy.ndarray of int64 or None, optional
        Priority class per request (≥ 0; 0 the most urgent), for the priority and EDF policies and
        per-class results; ``None``: all class 0.
    cached_tokens : numpy.ndarray of int64 or None, optional
        Tokens of each prompt found in the prefix cache (``0 ≤ cached < input``): they hold KV blocks
        but are not prefilled; ``None``: none.
    reserved_tokens : numpy.ndarray of int64 or None, optional
        Of each request's cached prefix, tokens that only hold KV blocks: never attended to, by a prefill
        chunk or a decode step (:func:`in_steps` puts a speculative request's gained tokens there);
        ``None``: none.
    """

    arrival_s: F
    input_tokens: I
    output_tokens: I
    priority: I | None = None
    cached_tokens: I | None = None
    reserved_tokens: I | None = None

    def __post_init__(self) -> None:
        a = np.asarray(self.arrival_s, dtype=np.float64)
        i = np.asarray(self.input_tokens, dtype=np.int64)
        o = np.asarray(self.output_tokens, dtype=np.int64)
        if a.ndim != 1 or a.shape != i.shape or a.shape != o.shape:
            raise ValueError(f"arrival_s, input_tokens and output_tokens must be 1-D of equal length, got {a.shape}, {i.shape}, {o.shape}")
        if not np.isfinite(a).all() or (a < 0).any():
            raise ValueError("arrival_s must be finite and >= 0")
        if (i < 1).any():
            raise ValueError("input_tokens must be >= 1")
        if (o < 0).any():
            raise ValueError("output_tokens must be >= 0")
        if self.priority is not None:
            c = np.asarray(self.priority, dtype=np.int64)
            if c.shape != a.shape or (c < 0).any():
                raise ValueError("priority must be 1-D like arrival_s, with classes >= 0")
            object.__setattr__(self, "priority", c)
        if self.cached_tokens is not None:
            k = np.asarray(self.cached_tokens, dtype=np.int64)
            if k.shape != a.shape or (k < 0).any() or (k >= i).any():
                raise ValueError("cached_tokens must be 1-D like arrival_s, with 0 <= cached < input_tokens")
            object.__setattr__(self, "cached_tokens", k)
        if self.reserved_tokens is not None:
            v = np.asarray(self.reserved_tokens, dtype=np.int64)
            k0 = np.zeros_like(i) if self.cached_tokens is None else self.cached_tokens
            if v.shape != a.shape or (v < 0).any() or (v > k0).any():
                raise ValueError("reserved_tokens must be 1-D like arrival_s, with 0 <= reserved <= cached_tokens")
            object.__setattr__(self, "reserved_tokens", v)
        object.__setattr__(self, "arrival_s", a)
        object.__setattr__(self, "input_tokens", i)
        object.__setattr__(self, "output_tokens", o)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    def uniform(self) -> bool:
        """Whether every request has the same prompt, output, cached prefix and class (then only arrivals tell them apart)."""
        arrays = (self.input_tokens, self.output_tokens, self.priority, self.cached_tokens, self.reserved_tokens)
        return all(a is None or a.size == 0 or bool((a == a[0]).all()) for a in arrays)


def in_steps(requests: Requests, tokens_per_step: float) -> Requests:
    """The trace with each request's decode counted in steps of ``E`` tokens (speculative decoding; see module docstring).

    A request of ``O ≥ 2`` output tokens emits ``O' = 1 + ⌈(O − 1)/E⌉`` times; the ``O − O'`` tokens it
    gains are added to its prompt as a reserved prefix (``reserved_tokens``), so they hold KV blocks from
    admission (its peak need ``I + O − 1`` is kept) but are neither prefilled nor attended to: its prefill
    and its decode steps are priced at the context the request has. ``E = 1`` returns ``requests`` unchanged.
    """
    if tokens_per_step <= 1.0:
        return requests
    o = requests.output_tokens
    steps = np.where(o >= 2, 1 + np.ceil((o - 1) / tokens_per_step).astype(np.int64), o)
    extra = o - steps
    cached = extra if requests.cached_tokens is None else requests.cached_tokens + extra
    reserved = extra if requests.reserved_tokens is None else requests.reserved_tokens + extra
    return Requests(requests.arrival_s, requests.input_tokens + extra, steps, requests.priority, cached, reserved)


def _table(requests: Requests, order: NDArray[np.intp], arrival_s: list[float]) -> RequestTable:
    """The shared per-request state, requests in ``order`` (arrival instants as given)."""
    prio = None if requests.priority is None else requests.priority[order].tolist()
    cached = None if requests.cached_tokens is None else requests.cached_tokens[order].tolist()
    attend = None if requests.reserved_tokens is None else (requests.input_tokens - requests.reserved_tokens)[order].tolist()
    return RequestTable(arrival_s, requests.input_tokens[order].tolist(), requests.output_tokens[order].tolist(), prio, cached, attend)


def _replica(config: EngineConfig, table: RequestTable, policy: Scheduler) -> list[VirtualEngine]:
    """The ``pipeline_stages`` virtual engines of one replica, each with its share of the batch cap and KV blocks."""
    p = config.pipeline_stages
    seqs, blocks = -(-config.max_num_seqs // p), -(-config.blocks // p)
    evict = policy.evictor(table)
    return [VirtualEngine(k, seqs, config.max_batched_tokens, blocks, config.block_tokens, table, policy.queue(table), evict,
                          config.verify_tokens, whole_prompts=not config.chunked_prefill, prefill_first=config.prefill_first,
                          decode_steps=config.decode_steps, state_blocks=config.state_blocks,
                          record_gaps=config.record_gaps, gain=config.tokens_per_step if config.tokens_per_step > 1 else 1,
                          gate=None if config.admission is None else config.admission.gate())
            for k in range(p)]  # fmt: skip


def _too_big(requests: Requests, order: NDArray[np.intp], config: EngineConfig) -> list[bool]:
    """Per request in ``order``: whether it is rejected at arrival.

    Its peak KV need exceeds one virtual engine's blocks or, without chunked prefill, its prompt (less a
    cached prefix) exceeds the step budget.
    """
    peak = (requests.input_tokens + np.maximum(requests.output_tokens - 1, 0))[order]
    out = config.state_blocks - (-peak // config.block_tokens) > -(-config.blocks // config.pipeline_stages)
    if not config.chunked_prefill:
        cached = 0 if requests.cached_tokens is None else requests.cached_tokens
        out |= ((requests.input_tokens - cached) > config.max_batched_tokens)[order]
    return [bool(x) for x in out]


def _fill_round(engines: list[VirtualEngine], policy: Scheduler, t: float, cache: dict[tuple[int, int], Cost], timed: Timed,
                stepped: list[VirtualEngine]) -> tuple[float, int, int]:  # fmt: skip
    """Schedule one round of a replica starting at ``t``: fills ``stepped``; returns its duration, requests running and blocks held."""
    dur = 0.0
    running = used = 0
    for ve in engines:
        if not (ve.running or ve.waiting):
            continue
        ve.now = t
        d, pf = policy.schedule(ve)
        if d == 0 and pf == 0:
            continue
        c = cache.get((d, pf))
        if c is None:
            c = timed(d, pf)
        s = c[0] if len(c) == 1 else step_seconds(c, ve, d)
        if s > dur:
            dur = s
        running += len(ve.running)
        used += ve.used
        stepped.append(ve)
    return dur, running, used


def _outcome(table: RequestTable, order: NDArray[np.intp], requests: Requests, arrival_s: F) -> tuple[F, F, F, NDArray[np.bool_], F]:
    """First-token, admission and finish instants, whether finished, and TPOT, in the order of ``requests``.

    ``arrival_s`` (in the order of ``requests``) gives the queue wait; TPOT is ``(finish − first)/(O − 1)``.
    """
    inv = np.empty(order.size, dtype=np.intp)
    inv[order] = np.arange(order.size)
    first = np.asarray(table.first_s, dtype=np.float64)[inv]
    admitted = np.asarray(table.admit_s, dtype=np.float64)[inv]
    finish = np.asarray(table.finish_s, dtype=np.float64)[inv]
    finished = (np.asarray(table.state, dtype=np.int64) == DONE)[inv]
    out = requests.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where((out >= 2) & finished, (finish - first) / np.maximum(out - 1, 1), np.nan)
    return first, admitted - arrival_s, finish, finished, tpot


def step_bound(requests: Requests, config: EngineConfig) -> int:
    """A cap on the steps ``requests`` need, ``2·Σ(O_i + ⌈P_i/T⌉) + n`` over all replicas.

    Every step that runs moves some request by at least one output token or one prompt chunk of at most
    ``T`` tokens, so ``Σ(O_i + ⌈P_i/T⌉)`` steps finish the work; twice that leaves room for recomputed
    prompts. The callers' fixed caps are raised to it, so a long run of many replicas is not cut short
    (a plan of 37 slow replicas once stopped after half its requests, and the unsent half read as misses).
    """
    t = max(config.max_batched_tokens, 1)
    out = np.asarray(requests.output_tokens, dtype=np.int64)
    inp = np.asarray(requests.input_tokens, dtype=np.int64)
    return int(2 * (int(out.sum()) + int((-(-inp // t)).sum())) + len(requests))


def simulate(
    step: StepTime,
    requests: Requests,
    config: EngineConfig,
    *,
    max_steps: int = 5_000_000,
    scheduler: Scheduler | None = None,
) -> SimResult:
    """Simulate one replica serving ``requests`` (semantics in the module docstring).

    Parameters
    ----------
    step : StepTime
        ``step(decode_seqs, prefill_tokens)`` → seconds of one engine step; memoised per argument pair.
    requests : Requests
        The trace.
    config : EngineConfig
        Limits of the replica.
    max_steps : int, optional
        Stop after this many steps (rounds), raised to :func:`step_bound` (what the requests need); requests
        not finished by then are reported unfinished.
    scheduler : Scheduler or None, optional
        Step policy; ``None`` is first-come-first-served (:class:`FcfsScheduler`).

    Returns
    -------
    SimResult
        Per-request latencies (seconds) in the order of ``requests``, and run statistics.
    """
    n = len(requests)
    max_steps = max(max_steps, step_bound(requests, config))
    given = requests
    requests = in_steps(requests, config.tokens_per_step)
    order = np.argsort(requests.arrival_s, kind="stable")
    table = _table(requests, order, requests.arrival_s[order].tolist())
    p = config.pipeline_stages
    policy: Scheduler = FcfsScheduler() if scheduler is None else scheduler
    engines = _replica(config, table, policy)
    cache, timed = memoised(step)
    too_big = _too_big(requests, order, config)

    arr = table.arrival_s
    t = 0.0
    i = 0
    steps = 0
    busy_s = 0.0
    running_area = 0.0
    rejected = 0
    stepped: list[VirtualEngine] = []
    lag = config.overlap_scheduling
    seen = -1.0  # overlap scheduling: arrivals up to this instant (the previous step's start) are visible; -1: all up to t
    while True:
        upto = seen if seen >= 0.0 else t
        while i < n and arr[i] <= upto:
            if too_big[i]:
                table.state[i] = REJECTED
                rejected += 1
            else:
                ve = engines[0] if p == 1 else min(engines, key=lambda e: e.load)
                table.engine[i] = ve.index
                table.state[i] = WAITING
                ve.waiting.append(i)
            i += 1
        if steps >= max_steps:
            break
        stepped.clear()
        dur, running, _ = _fill_round(engines, policy, t, cache, timed, stepped)
        if not stepped:
            if seen >= 0.0 and i < n and arr[i] <= t:  # nothing else to run: the late arrivals start now
                seen = -1.0
                continue
            seen = -1.0  # idle (or nothing schedulable): jump to the next arrival, which starts at once
            if i >= n:
                break
            t = arr[i]
            continue
        seen = t if lag else -1.0
        t += dur
        steps += 1
        busy_s += dur
        running_area += running * dur
        for ve in stepped:
            ve.end_step(t)

    first, queue, finish, finished, tpot = _outcome(table, order, given, requests.arrival_s)
    extra = config.request_overhead_s
    return SimResult(
        ttft_s=first - requests.arrival_s + extra,
        tpot_s=tpot,
        e2e_s=np.where(finished, finish - requests.arrival_s + extra, np.nan),
        finished=finished,
        preemptions=sum(e.preemptions for e in engines),
        steps=steps,
        mean_running=running_area / t if t > 0 else 0.0,
        mean_step_s=busy_s / steps if steps else 0.0,
        duration_s=t,
        arrival_s=requests.arrival_s,
        rejected=rejected,
        queue_s=queue,
        priority=requests.priority,
        itl=GapSample.of([e.gaps for e in engines if e.gaps is not None]) if config.record_gaps else None,
    )
