"""State and mechanics of one virtual engine: running set, waiting queue, paged KV cache, decode clock.

A virtual engine is what schedules one micro-batch per step (a whole replica when
``pipeline_stages == 1``). It owns the *mechanics* that every scheduling policy shares — admitting a
request, giving it a prefill chunk, reserving KV blocks for a decode step, preempting, emitting tokens
at the end of a step — while the *policy* (which request gets what) lives in
:mod:`aicap.sizing.sim.scheduler`.

Token and block accounting (``B`` = ``block_tokens``; ``g`` = tokens emitted so far; ``I`` = prompt):

* a running request holds ``state_blocks`` blocks besides its tokens' (a hybrid model's fixed recurrent
  state, 0 otherwise), from admission until it finishes or is preempted;
* an admitted request reserves ``ceil(P/B)`` blocks for its whole current prompt ``P`` (``P = I`` the
  first time, ``P = I + g`` after a preemption: recompute re-prefills the prompt and the tokens already
  generated);
* a decoding request holds ``ceil((I + g − 1)/B)`` blocks (KV of every token fed so far) and, for a
  step, needs ``ceil((I + g)/B)``: one more block exactly when ``(I + g − 1) mod B == 0``.

Decode clock. Every decoding request that is scheduled in a step emits one token, so between
preemptions ``g = base + tick`` for a per-request constant ``base`` and the engine's step counter
``tick``. The simulator therefore never touches the decoding requests one by one: finishes are
looked up by tick (``finish_at[tick]``, the request finishes when ``g = output``, i.e. at
``tick = output − base``), and the number of decoding requests that need a new block at ``tick`` is a
bucket count over ``(I + base − 1) mod B``. A request that is *not* scheduled in a step (token budget
smaller than the number of decoding requests) has its ``base`` lowered by one and its finish moved one
tick later — work proportional to the skipped requests only. Stale ``finish_at`` entries (requests
since preempted or skipped) are recognised and ignored.

Contexts. The step time depends on the tokens the decoders attend to, ``Σ (A + E·(g − 1))``; with
``g = base + tick`` that is ``context + E·decoders·tick`` for ``context = Σ (A + E·(base − 1))``, kept up to
date where a request starts or stops decoding or skips a step. ``A`` is the input a request attends to: ``I``
less a reserved prefix that only holds blocks (``RequestTable.attend``; blocks count ``I``), and ``E``
(``gain``) the tokens a decode step adds to it: 1, or the mean accepted with speculative decoding, whose
request emits once a step (:func:`aicap.sizing.sim.engine.in_steps`). A step's
prefill chunks add up ``Σ m·o``, ``Σ m²``, ``Σ o`` and their number (``m`` tokens after ``o`` attended
tokens of the same prompt; see :mod:`aicap.sizing.serve.context_step`).

Block counts use ``-x // B == -ceil(x/B)`` (floor division of the negation), so ``used -= -x // B``
takes ``ceil(x/B)`` blocks and ``used += -x // B`` frees them, in integer arithmetic.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING

from aicap.sizing.sim.request_table import DECODE, DONE, PREFILL, WAITING, RequestTable, WaitQueue
from aicap.sizing.sim.token_gaps import TokenGaps

if TYPE_CHECKING:
    from aicap.sizing.sim.admission import ProjectedGate


class VirtualEngine:
    """One micro-batch pipeline slot: its requests, KV blocks and decode clock.

    Parameters
    ----------
    index : int
        Position among the replica's virtual engines.
    max_seqs : int
        Most requests running (prefilling or decoding) at once.
    max_tokens : int
        Token budget of one step (decode tokens + prefill-chunk tokens).
    blocks : int
        KV-cache blocks of this virtual engine.
    block_tokens : int
        Tokens per KV block (page size).
    table : RequestTable
        Shared per-request state.
    waiting : WaitQueue or None, optional
        The waiting queue (its order is the policy's); ``None``: a FCFS ``deque``.
    evict : callable or None, optional
        ``evict(engine) -> request`` picks the running request to preempt when the KV cache runs out
        (a policy's least urgent); ``None``: the most recently admitted (vLLM's default).
    gate : ProjectedGate or None, optional
        Projected admission (:mod:`aicap.sizing.sim.admission`, SGLang); ``None``: a request is admitted
        once its prompt's blocks are free.
    """

    __slots__ = (
        "block_tokens",
        "blocks",
        "bucket",
        "chunks",
        "completing",
        "context",
        "decode_steps",
        "decoders",
        "evict",
        "finish_at",
        "finished",
        "gain",
        "gaps",
        "gate",
        "held",
        "index",
        "max_seqs",
        "max_tokens",
        "now",
        "preemptions",
        "prefill_first",
        "prefilling",
        "running",
        "scheduled",
        "span_mm",
        "span_mo",
        "span_o",
        "state_blocks",
        "table",
        "tick",
        "used",
        "verify_tokens",
        "waiting",
        "whole_prompts",
    )

    def __init__(self, index: int, max_seqs: int, max_tokens: int, blocks: int, block_tokens: int, table: RequestTable,
                 waiting: WaitQueue | None = None, evict: Callable[[VirtualEngine], int] | None = None,
                 verify_tokens: int = 1, *, whole_prompts: bool = False, prefill_first: bool = False,
                 decode_steps: int = 1, state_blocks: int = 0, record_gaps: bool = False, gain: float = 1,
                 gate: ProjectedGate | None = None) -> None:  # fmt: skip
        self.index = index
        self.gate = gate  # projected admission (SGLang): room kept for what running requests will still emit; None: vLLM's
        # Tokens a decoder's context grows by in a step: 1, or E with speculative decoding (its emits count steps).
        self.gain = gain
        self.whole_prompts = whole_prompts  # no chunked prefill: a prompt within max_tokens is prefilled in one step
        self.prefill_first = prefill_first  # a step that prefills anything decodes nothing (vLLM v0's default scheduler)
        self.decode_steps = decode_steps  # decode-only steps per scheduling round (vLLM v0 multi-step scheduling)
        self.held = 0  # decode-only steps left in the current multi-step round
        self.verify_tokens = verify_tokens  # budget tokens per decoding request (k + 1 with speculative decoding)
        self.evict = evict
        self.max_seqs = max_seqs
        self.max_tokens = max_tokens
        self.blocks = blocks
        self.block_tokens = block_tokens
        self.table = table
        self.now = 0.0  # start of the step being scheduled, seconds (set by the simulator)
        self.waiting: WaitQueue = deque() if waiting is None else waiting  # preempted requests re-enter by appendleft
        self.running: dict[int, None] = {}  # insertion (admission) order; popitem() is the newest
        self.prefilling: deque[int] = deque()  # admitted, prompt not finished; admission order
        self.decoders: dict[int, None] = {}  # prompt finished; admission order
        self.used = 0  # KV blocks held
        self.state_blocks = state_blocks  # blocks every running request holds besides its tokens' (a hybrid's recurrent state)
        self.gaps = TokenGaps() if record_gaps else None  # inter-token gaps of its decoders, when recorded
        self.tick = 0  # steps this engine has run
        self.bucket = [0] * block_tokens  # decoders per key (see module docstring)
        self.finish_at: dict[int, list[int]] = {}
        self.completing: list[int] = []  # prompts finishing in the current step
        self.finished: list[int] = []  # requests finished, in order (a closed-loop client reads and clears it)
        self.scheduled = 0  # decoders scheduled in the current step (a prefix in admission order)
        self.preemptions = 0
        self.context: float = 0  # Σ (attend + gain·(base − 1)) over the decoders; + gain·tick each (module docstring)
        self.span_mo = 0  # Σ m·o over the current step's prefill chunks (m tokens after o of the same prompt)
        self.span_mm = 0  # Σ m² over them
        self.span_o = 0  # Σ o over them
        self.chunks = 0  # their number

    @property
    def busy(self) -> bool:
        """Whether anything is running or waiting."""
        return bool(self.running) or bool(self.waiting)

    @property
    def load(self) -> int:
        """Requests running or waiting (the pipeline router sends new work to the smallest)."""
        return len(self.running) + len(self.waiting)

    def can_admit(self, r: int) -> bool:
        """Whether request ``r``'s current prompt fits in the free KV blocks."""
        return self.used + self.state_blocks - (-self.table.prompt[r] // self.block_tokens) <= self.blocks

    def admit(self) -> int:
        """Move the head of the waiting queue into the running set; reserve its prompt's blocks."""
        t = self.table
        r = self.waiting.popleft()
        if t.admit_s[r] != t.admit_s[r]:  # nan: first admission (a preempted request keeps its first)
            t.admit_s[r] = self.now
        t.state[r] = PREFILL
        t.prefilled[r] = t.cached[r]  # a cached prefix holds blocks but is not recomputed
        self.used += self.state_blocks - (-t.prompt[r] // self.block_tokens)
        self.running[r] = None
        self.prefilling.append(r)
        return r

    def fits(self, r: int, budget: int) -> bool:
        """Whether request ``r``'s prefill can start within ``budget`` tokens (always, with chunked prefill).

        Without chunked prefill its whole remaining prompt must fit, unless it exceeds the step budget
        altogether (a recompute after preemption), which is chunked.
        """
        if not self.whole_prompts:
            return True
        t = self.table
        left = t.prompt[r] - max(t.prefilled[r], t.cached[r])
        return left <= budget or left > self.max_tokens

    def chunk(self, r: int, budget: int) -> int:
        """Prefill ``min(remaining prompt, budget)`` tokens of prefilling request ``r``; return them.

        Without chunked prefill a prompt that fits the step is prefilled whole or not at all (0 tokens).
        """
        t = self.table
        done = t.prefilled[r]
        if self.whole_prompts and budget < t.prompt[r] - done <= self.max_tokens:
            return 0
        c = min(t.prompt[r] - done, budget)
        if c > 0:
            o = done - t.input[r] + t.attend[r]  # the tokens before the chunk that it attends to (not a reserved prefix)
            self.span_mo += c * o
            self.span_mm += c * c
            self.span_o += o
            self.chunks += 1
        done += c
        t.prefilled[r] = done
        if done == t.prompt[r]:
            self.completing.append(r)
        return c

    def reserve_decode(self, budget: int) -> int:
        """Schedule the oldest ``min(decoders, budget)`` decoding requests and reserve their new blocks.

        While the scheduled requests need more blocks than are free, a running request is preempted:
        the policy's choice (``evict``), else the most recently admitted (:meth:`preempt_last`). Returns
        the number of decoding requests scheduled.
        """
        dec = self.decoders
        key = self.table.key
        want = -self.tick % self.block_tokens
        before = self.preemptions
        while True:
            k = min(len(dec), budget)
            need = self.bucket[want] if k == len(dec) else sum(1 for r in islice(dec, k) if key[r] == want)
            if self.used + need <= self.blocks:
                break
            if self.evict is None:
                self.preempt_last()
            else:
                self.preempt(self.evict(self))
        self.used += need
        self.scheduled = k
        if self.gate is not None and k:
            self.gate.decoded(self, self.preemptions > before)
        return k

    def decode_context(self, k: int) -> float:
        """Tokens the ``k`` oldest decoders attend to before this step, ``Σ (attend + emitted − 1)`` (module docstring)."""
        if k == len(self.decoders):
            return self.context + self.gain * k * self.tick
        t, tick, e = self.table, self.tick - 1, self.gain
        return float(sum(t.attend[r] + e * (t.base[r] + tick) for r in islice(self.decoders, k)))

    def preempt_last(self) -> int:
        """Preempt (recompute) the most recently admitted running request; return its id (see :meth:`preempt`)."""
        r = next(reversed(self.running))
        self.preempt(r)
        return r

    def preempt(self, r: int, *, front: bool = True) -> None:
        """Preempt running request ``r`` by recompute.

        Its blocks are freed, its prompt becomes input + emitted tokens, and it re-enters the waiting
        queue (``appendleft`` when ``front``, else ``append``: the back of a FCFS queue). Emitted tokens
        (and so its first-token time) are kept.
        """
        t = self.table
        del self.running[r]
        self.used -= self.state_blocks
        if t.state[r] == DECODE:
            g = t.base[r] + self.tick
            t.emitted[r] = g
            del self.decoders[r]
            if self.gaps is not None:
                self.gaps.preempted()
            self.bucket[t.key[r]] -= 1
            self.context -= t.attend[r] + self.gain * (t.base[r] - 1)
            self.used += -(t.input[r] + g - 1) // self.block_tokens
        else:
            if self.prefilling and self.prefilling[-1] == r:
                self.prefilling.pop()
            else:
                self.prefilling.remove(r)
            self.used += -t.prompt[r] // self.block_tokens
        t.state[r] = WAITING
        t.prompt[r] = t.input[r] + t.emitted[r]
        t.prefilled[r] = 0
        if front:
            self.waiting.appendleft(r)
        else:
            self.waiting.append(r)
        self.preemptions += 1

    def held_blocks(self, r: int) -> int:
        """KV blocks running request ``r`` holds (freed if it is preempted)."""
        t = self.table
        if t.state[r] == DECODE:
            return self.state_blocks - (-(t.input[r] + t.base[r] + self.tick - 1) // self.block_tokens)
        return self.state_blocks - (-t.prompt[r] // self.block_tokens)

    def admits_after_freeing(self, head: int, r: int) -> bool:
        """Whether waiting ``head`` could be admitted once running request ``r`` is preempted."""
        need = self.state_blocks - (-self.table.prompt[head] // self.block_tokens)
        return len(self.running) - 1 < self.max_seqs and self.used - self.held_blocks(r) + need <= self.blocks

    def decoded_since_start(self, r: int) -> int:
        """Decode steps decoding request ``r`` has run since its prompt (re)completed."""
        t = self.table
        return t.base[r] + self.tick - t.emitted[r]

    def end_step(self, now_s: float) -> None:
        """Close the current step at ``now_s`` seconds: emit tokens, finish requests, free blocks."""
        t = self.table
        block = self.block_tokens
        bucket = self.bucket
        finish_at = self.finish_at
        dec = self.decoders
        base, key, fin_tick, state = t.base, t.key, t.fin_tick, t.state
        tick = self.tick + 1
        self.tick = tick
        self.span_mo = self.span_mm = self.span_o = self.chunks = 0
        gaps = self.gaps
        d = self.scheduled
        if d and gaps is not None:
            if d == gaps.regular and not gaps.groups:  # TokenGaps.decoded's common step, inlined (once a step: the hot loop)
                gaps.ends.append(now_s)
                gaps.counts.append(d)
                gaps.last = now_s
            else:
                gaps.decoded(now_s, d)
        if self.scheduled < len(dec):  # skipped decoders emitted nothing: shift their clock by one
            self.context -= self.gain * (len(dec) - self.scheduled)
            for r in islice(dec, self.scheduled, None):
                base[r] -= 1
                k = key[r]
                bucket[k] -= 1
                k = (k - 1) % block
                key[r] = k
                bucket[k] += 1
                f = fin_tick[r] + 1
                fin_tick[r] = f
                finish_at.setdefault(f, []).append(r)
        self.scheduled = 0
        done = finish_at.pop(tick, None)
        if done is not None:
            me = self.index
            for r in done:
                if state[r] != DECODE or fin_tick[r] != tick or t.engine[r] != me:
                    continue  # stale entry
                if gaps is not None:
                    gaps.regular -= 1  # it emitted its last token in this step (TokenGaps.finished)
                state[r] = DONE
                t.emitted[r] = t.output[r]
                t.finish_s[r] = now_s
                self.finished.append(r)
                self.used += -(t.input[r] + base[r] + tick - 1) // block - self.state_blocks
                self.context -= t.attend[r] + self.gain * (base[r] - 1)
                bucket[key[r]] -= 1
                del dec[r]
                del self.running[r]
        if self.completing:
            for r in self.completing:
                if self.prefilling[0] == r:
                    self.prefilling.popleft()  # completions are the oldest prefilling requests, but for one:
                else:  # a recompute chunked past whole-prompt mode that did not fit this step stays ahead of a
                    self.prefilling.remove(r)  # shorter prompt admitted behind it (chunk() returned 0 for it)
                out = t.output[r]
                if math.isnan(t.first_s[r]):
                    t.first_s[r] = now_s
                g = t.emitted[r] + 1 if out > 0 else 0
                t.emitted[r] = g
                if g >= out:
                    state[r] = DONE
                    t.finish_s[r] = now_s
                    self.finished.append(r)
                    self.used += -t.prompt[r] // block - self.state_blocks
                    del self.running[r]
                    continue
                state[r] = DECODE
                b = g - tick
                base[r] = b
                self.context += t.attend[r] + self.gain * (b - 1)
                k = (t.input[r] + b - 1) % block
                key[r] = k
                bucket[k] += 1
                f = out - b
                fin_tick[r] = f
                finish_at.setdefault(f, []).append(r)
                dec[r] = None
                if gaps is not None:  # TokenGaps.started, inlined for the common case
                    if now_s == gaps.last:
                        gaps.regular += 1
                    else:
                        gaps.started(now_s, 1)
            self.completing.clear()
