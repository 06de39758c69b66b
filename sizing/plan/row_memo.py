"""Rows kept for the sizings of one search: a workload shape evaluated again on the same job takes its rows from the first time.

One user command often sizes the same candidates many times over. ``size --disaggregate`` sizes the fleet once
for each weight format the workload allows and, in each, once for each network tier the KV hand-off may use
(:mod:`aicap.sizing.plan.disaggregate`): the decode pool's shape is the same for every tier (only the prefill
pool's share of the TTFT target moves), and each format's tier search repeats trials of the format search: a
one-workload 70B search asks for 7,564 rows, of which 1,953 are distinct (18 s before, 6.6 s with them shared;
``benchmarks/bench_size.py``). ``size --verify`` re-solves with some
capacities derated (after the evaluation), and a plan whose pools landed apart is sized again per cloud and
region. Those sizings run inside one :func:`shared_rows` scope, and
:func:`aicap.sizing.plan.evaluation.evaluate_jobs` evaluates only the (job, shape) pairs the scope has not seen.

The unit is one workload shape of one job: every selection of the screen is per shape and every bisection per
row, so a shape's rows do not depend on the job's other shapes (:mod:`aicap.sizing.plan.evaluation`). Its key is
the job's content without its shapes, pickled and hashed once a job (model, engine runtime, storage format,
devices with their efficiency factors, layouts and prices, networks, speculative decoding, attention groups, the
rows it shadows), the shape's, and the objective's flag: rows are shared only where every input of their
evaluation is equal. Two equal jobs may still pickle differently (a set's order): then the second is evaluated
afresh, which costs time and changes nothing. A job's rows come back in the order an evaluation of the call's
jobs without the memo gives them: part by part where it cuts the job into parts, in each by load fraction (the
latency objective's lighter-loaded rows after the full-load ones), then by shape.

The scope is per call, never per process: a row's figures can differ from a lone evaluation's in the 16th digit
(the TTFT mixture sums rows alike in buckets padded by the company they are evaluated in), so rows are shared
only among the sizings one call makes, in an order the call fixes. The disaggregation search's choices (a
workload's pool format and link tier) are kept in the scope too, so a call searches afresh whatever ran before it
in the process and gives the same plan. Where nothing is found (a single sizing), every job is evaluated as it
came, and its rows are those of an evaluation without the memo. The first :func:`shared_rows` opens the scope
(with its ``limit``) and inner ones join it; it holds at most that many rows, the least recently used shapes
going first.
"""

from __future__ import annotations

import bisect
import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

from aicap.sizing.plan.candidates import LATENCY_LOAD_FRACTIONS, Job, Row

MEMO_ROWS = 100_000
"""Rows one scope keeps at most: about 1 KB a row with the step model of its batch, which a kept row holds (so at most
about 100 MB); a 1,000-workload fleet's evaluation has about 70,000, which its candidates hold for the call anyway."""

_VARIANT = {f: k for k, f in enumerate((1.0, *LATENCY_LOAD_FRACTIONS))}  # a row's load fraction -> its place in a job's rows


class RowMemo:
    """Evaluated rows by their key (a job's shape), least recently used first, at most ``limit`` rows in all."""

    def __init__(self, limit: int = MEMO_ROWS) -> None:
        self.limit = limit
        self._rows: OrderedDict[bytes, tuple[Row, ...]] = OrderedDict()
        self._held = 0
        self.hits = 0
        self.misses = 0
        # The disaggregation search's choices (aicap.sizing.plan.disaggregate), kept for the scope as the rows are:
        # a re-solve of one search (--verify, pools kept in one region) weighs the formats and link tiers once.
        self.link_tiers: dict[str, float] = {}
        self.pool_formats: dict[str, tuple[str, str | None]] = {}

    @staticmethod
    def key(job: Job, latency_variants: bool) -> bytes:
        """A job's content and the objective's flag, hashed (module docstring): with ``shapes=[]``, the base of its shapes' keys."""
        return hashlib.blake2b(pickle.dumps((job, latency_variants), protocol=pickle.HIGHEST_PROTOCOL), digest_size=20).digest()

    def get(self, key: bytes) -> list[Row] | None:
        """The rows kept for ``key`` (a fresh list), or ``None``."""
        rows = self._rows.get(key)
        if rows is None:
            self.misses += 1
            return None
        self.hits += 1
        self._rows.move_to_end(key)
        return list(rows)

    def put(self, key: bytes, rows: Sequence[Row]) -> None:
        """Keep ``rows`` for ``key``, dropping the least recently used beyond ``limit`` rows (more than ``limit`` alone: not kept)."""
        if key in self._rows or len(rows) > self.limit:
            return
        self._rows[key] = tuple(rows)
        self._held += len(rows)
        while self._held > self.limit:
            _, old = self._rows.popitem(last=False)
            self._held -= len(old)

    def evaluate(self, jobs: Sequence[Job], latency_variants: bool, run: Callable[[list[Job]], list[list[Row]]],
                 segments: Callable[[], Sequence[Sequence[int]]]) -> list[list[Row]]:  # fmt: skip
        """Every job's rows, the shapes not kept evaluated by ``run`` (once each, in one call) and kept (module docstring).

        ``segments`` gives, per job, the first shape of each part an evaluation of ``jobs`` without the memo cuts it into
        (:func:`~aicap.sizing.plan.evaluation.part_starts`), which a job's rows follow part by part, then by load fraction,
        then by shape; it is called only where rows are reassembled. Where every job is evaluated as it came, its rows are
        ``run``'s as they are.
        """
        keys: list[list[bytes]] = []
        found: list[list[list[Row] | None]] = []
        fresh: dict[bytes, tuple[int, int]] = {}  # key -> (job evaluated now, its shape there), a shape twice in the call once
        whole: dict[int, int] = {}  # job -> the job evaluated now that is all of it
        todo: list[Job] = []
        for jn, job in enumerate(jobs):
            base = self.key(replace(job, shapes=[]), latency_variants)
            ks = [hashlib.blake2b(base + pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL), digest_size=20).digest() for s in job.shapes]
            got = [self.get(k) for k in ks]
            missing = [si for si, (k, rows) in enumerate(zip(ks, got, strict=True)) if rows is None and k not in fresh]
            if missing:
                fresh.update((ks[si], (len(todo), at)) for at, si in enumerate(missing))
                if len(missing) == len(job.shapes):
                    whole[jn] = len(todo)
                todo.append(job if jn in whole else replace(job, shapes=[job.shapes[si] for si in missing]))
            keys.append(ks)
            found.append(got)
        done = run(todo) if todo else []
        by_shape: dict[tuple[int, int], list[Row]] = {}
        for t, rows in enumerate(done):
            for r in rows:
                by_shape.setdefault((t, r.shape), []).append(r)
        for k, at in fresh.items():
            self.put(k, by_shape.get(at, []))
        if len(whole) == len(jobs):  # nothing kept, nothing twice: the evaluation as it came, in its own order
            return done
        out: list[list[Row]] = []
        starts_of = segments()
        for jn, (ks, got) in enumerate(zip(keys, found, strict=True)):
            rows = []
            for si, (k, kept) in enumerate(zip(ks, got, strict=True)):
                rows += [r._replace(shape=si) for r in (kept if kept is not None else by_shape.get(fresh[k], []))]
            starts = starts_of[jn]
            rows.sort(key=lambda r: (bisect.bisect_right(starts, r.shape), _VARIANT[r.load_fraction], r.shape))  # stable
            out.append(rows)
        return out

    @property
    def held(self) -> int:
        """Rows kept now."""
        return self._held


_SCOPE: ContextVar[RowMemo | None] = ContextVar("aicap_row_memo", default=None)


def current() -> RowMemo | None:
    """The open scope's memo, or ``None`` outside any :func:`shared_rows`."""
    return _SCOPE.get()


@contextmanager
def shared_rows(limit: int = MEMO_ROWS) -> Iterator[RowMemo]:
    """Within, :func:`~aicap.sizing.plan.evaluation.evaluate_jobs` reuses the rows of jobs it has evaluated (module docstring).

    The outermost call opens the scope with ``limit`` (and closes it on leaving); an inner one joins it as it is, its
    ``limit`` unread. Yields the scope's memo.
    """
    memo = _SCOPE.get()
    if memo is not None:
        yield memo
        return
    memo = RowMemo(limit)
    token = _SCOPE.set(memo)
    try:
        yield memo
    finally:
        _SCOPE.reset(token)
