"""Evaluating many jobs' rows: batched by step form, cut into parts, and run on several cores when it pays.

Jobs whose steps have the same form (:attr:`~aicap.sizing.plan.candidates.Job.batch_key`) are evaluated
in one vectorised pass (:func:`~aicap.sizing.plan.candidates.evaluate_batch`). A batch of more than
``PART_ROWS`` rows is cut into parts at workload-shape boundaries (:func:`part_sizes`). Every selection of
the screen is per shape and every bisection per row, so a row's metrics do not depend on the shapes
evaluated with it, but for rounding: the TTFT mixture sums in buckets of rows alike, whose padding
depends on the company (1,000-workload benchmark: 2 of 74,550 candidates differ from one uncut pass, in
the 16th digit). The parts are fixed by the rows alone, never by the number of processes, so an
evaluation on one core and on several gives the same rows bit for bit.

With ``workers > 1``, on Linux, where the evaluation has at least ``PARALLEL_MIN_ROWS`` rows and no other
thread runs (a forked child inherits no thread but the caller's, so a lock another thread holds would
stay held), ``workers - 1`` forked processes and this one take the parts, dearest first, from a shared
counter; the workers send their rows back. Parts halve in size towards the end of a batch so the
processes finish together. Below that size the fork and the transfer of rows cost more than they save.
On the 1,000-workload benchmark (70,800 rows) two cores take the evaluation from about 3.5-4 s to 2-2.5 s.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace

from aicap.sizing.plan import row_memo
from aicap.sizing.plan.candidates import Job, Row, evaluate_batch

PART_ROWS = 16_384  # a batch with more rows is cut into parts of at most this many rows (but for one shape's rows) ...
MIN_PART_ROWS = 2_048  # ... halving towards the end of the batch down to this many, so the last parts even out the processes
PARALLEL_MIN_ROWS = 24_576  # fewer rows in all: evaluated in this process, whatever ``workers`` says
MOE_ROW_COST = 1.5  # a mixture-of-experts row takes about 1.5 times a dense row's time (1,000-workload benchmark: 75 against 52 us)

Member = tuple[int, int, Job]  # (index of the job, its first shape in this part, the job restricted to the part's shapes)


def rows_per_shape(job: Job) -> int:
    """Rows one workload shape of ``job`` has: one per device and layout."""
    return sum(len(option[2]) for option in job.devices)


def job_rows(job: Job) -> int:
    """Rows ``job`` has: one per shape, device and layout."""
    return rows_per_shape(job) * len(job.shapes)


def _cost(part: list[Member]) -> float:
    """A part's expected evaluation time in dense rows: what the processes take the parts in order of (dearest first)."""
    return sum(job_rows(job) * (MOE_ROW_COST if job.batch_key[1] != (0, 0) else 1.0) for _, _, job in part)


def part_sizes(total: int) -> list[int]:
    """Rows of the parts a batch of ``total`` rows is cut into.

    ``PART_ROWS`` while more than twice that is left, then half of what is left (at least
    ``MIN_PART_ROWS``): 57,780 rows -> 16,384, 16,384, 12,506, 6,253, 3,127, 2,048, 1,078.
    """
    if total <= PART_ROWS:
        return [total]
    sizes: list[int] = []
    left = total
    while left > 0:
        size = left if left <= MIN_PART_ROWS else min(PART_ROWS, max(MIN_PART_ROWS, math.ceil(left / 2)))
        sizes.append(size)
        left -= size
    return sizes


def parts(jobs: Sequence[Job]) -> list[list[Member]]:
    """The jobs cut into parts of one batch key each, in job and shape order (module docstring).

    The batch's shapes are laid end to end by rows; a shape goes to the part of :func:`part_sizes` in
    which its first row falls (a part holds whole shapes, so it may run over its size by one shape's rows).
    """
    batches: dict[tuple[object, ...], list[int]] = {}
    for j, job in enumerate(jobs):
        batches.setdefault(job.batch_key, []).append(j)
    out: list[list[Member]] = []
    for members in batches.values():
        ends = list(itertools.accumulate(part_sizes(sum(job_rows(jobs[j]) for j in members))))
        cut: list[list[Member]] = [[] for _ in ends]
        before = 0
        for j in members:
            job, per = jobs[j], rows_per_shape(jobs[j])
            start = 0
            while start < len(job.shapes):  # runs of the job's shapes that start in one part
                k = bisect.bisect_right(ends, before)
                end = start + 1
                while end < len(job.shapes) and bisect.bisect_right(ends, before + (end - start) * per) == k:
                    end += 1
                cut[min(k, len(cut) - 1)].append((j, start, replace(job, shapes=job.shapes[start:end])))
                before += (end - start) * per
                start = end
        out += [p for p in cut if p]
    return out


def _run(part: list[Member], latency_variants: bool) -> list[list[Row]]:
    """One part's rows, per member."""
    return evaluate_batch([job for _, _, job in part], latency_variants)


def can_fork() -> bool:
    """Whether worker processes may be forked here: Linux, and no thread but this one."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def evaluate_jobs(jobs: Sequence[Job], latency_variants: bool, *, workers: int = 1) -> list[list[Row]]:
    """Evaluate every (shape, device, layout) row of every job (module docstring).

    Returns, per job, one :class:`~aicap.sizing.plan.candidates.Row` per (shape, device, layout) and
    load fraction, with ``shape`` and ``device`` indexing the job's lists; the rows of one shape are in
    the order one batch gives them. ``workers``: processes to use at most (1: this one only); the rows
    are the same whatever it is. Inside a :func:`~aicap.sizing.plan.row_memo.shared_rows` scope, a job's shape
    the scope has evaluated takes its rows from there, and only the others (once each) are evaluated.
    """
    memo = row_memo.current()
    if memo is None:
        return _evaluate(jobs, latency_variants, workers)
    return memo.evaluate(jobs, latency_variants, lambda todo: _evaluate(todo, latency_variants, workers), lambda: part_starts(jobs))


def part_starts(jobs: Sequence[Job]) -> list[list[int]]:
    """Per job, the first shape of each part :func:`parts` cuts it into, in part order (the order its rows come back in)."""
    starts: list[list[int]] = [[] for _ in jobs]
    for part in parts(jobs):
        for j, first, _ in part:
            starts[j].append(first)
    return starts


def _evaluate(jobs: Sequence[Job], latency_variants: bool, workers: int) -> list[list[Row]]:
    """:func:`evaluate_jobs` without the memo."""
    cut = parts(jobs)
    results: list[list[list[Row]] | None] = [None] * len(cut)
    w = min(workers, len(cut))
    if w > 1 and sum(job_rows(job) for job in jobs) >= PARALLEL_MIN_ROWS and can_fork():
        _fan_out(cut, latency_variants, w, results)
    out: list[list[Row]] = [[] for _ in jobs]
    for k, p in enumerate(cut):
        got = results[k]
        if got is None:
            got = _run(p, latency_variants)
        for (j, first, _), rows in zip(p, got, strict=True):
            out[j] += rows if first == 0 else [r._replace(shape=r.shape + first) for r in rows]
    return out


def _fan_out(cut: list[list[Member]], latency_variants: bool, w: int, results: list[list[list[Row]] | None]) -> None:
    """Evaluate ``cut`` with ``w - 1`` forked workers and this process, into ``results``.

    Every process takes the next part, dearest first (:data:`MOE_ROW_COST`), from a shared counter until none is left, and a
    worker sends each part's rows back as it finishes it. A part whose rows do not come back (a worker
    that failed or died) stays ``None``, for the caller to evaluate here. Which process evaluates a part
    never changes its rows.
    """
    import multiprocessing
    import queue

    ctx = multiprocessing.get_context("fork")
    order = sorted(range(len(cut)), key=lambda k: (-_cost(cut[k]), k))
    counter = ctx.Value("i", 0)
    done: multiprocessing.Queue[tuple[int, list[list[Row]] | None]] = ctx.Queue()

    def take() -> int | None:
        with counter.get_lock():
            nxt = counter.value
            counter.value = nxt + 1
        return order[nxt] if nxt < len(order) else None

    def work() -> None:  # in a forked worker: the parts are already in its memory
        try:
            while (k := take()) is not None:
                done.put((k, _run(cut[k], latency_variants)))
        except BaseException:
            done.put((-1, None))
        done.close()
        done.join_thread()

    procs = [ctx.Process(target=work, daemon=True) for _ in range(w - 1)]
    for proc in procs:
        proc.start()
    while (k := take()) is not None:
        results[k] = _run(cut[k], latency_variants)
    waiting = sum(r is None for r in results)
    while waiting:
        try:
            k, rows = done.get(timeout=0.5)
        except queue.Empty:
            if any(proc.is_alive() for proc in procs):
                continue
            break  # every worker has gone: what is missing is evaluated by the caller
        if k < 0 or rows is None:
            break
        results[k] = rows
        waiting -= 1
    for proc in procs:
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
