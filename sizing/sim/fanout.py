"""Independent simulation runs over the local cores: forked workers, results in order, the same as a serial run's.

A plan's checks (:func:`aicap.sizing.sim.verify.verify`, :func:`aicap.sizing.sim.verify_periods.verify_periods`), its runs
(:func:`aicap.sizing.sim.plan_runs.simulate_plan`) and a policy comparison (:func:`aicap.sizing.sim.replay.compare_policies`)
are independent runs on their own seeds, so they may run in any process: :func:`fan_out` runs ``task(i)`` for ``i`` in
``range(n)`` in forked workers (the task and what it reads are already in their memory; only ``i`` and the result cross
the pipe) and returns the results in ``i`` order. It runs them here, one after another, for one job or one task, off
Linux, or when another thread runs (a fork copies only the calling thread: :func:`~aicap.sizing.plan.evaluation.can_fork`).
The sizer's candidate evaluation keeps a fan-out of its own (:func:`aicap.sizing.plan.evaluation.evaluate_jobs`): its
workers take parts dearest first from a shared counter and a part whose worker dies is evaluated here again.
A task must not solve an integer program: HiGHS keeps native worker threads once it has run, and a forked child that hands
it a task can wait forever (:mod:`aicap.sizing.solve.hour_workers`); simulating never does, as the sizer's candidate
evaluation, forked the same way after a re-solve, never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")

_TASK: Callable[[int], object] | None = None  # in a worker: the task of the fan-out that started it (never set here)


def _install(task: Callable[[int], object]) -> None:
    """A forked worker's start: keep its fan-out's task (passed by fork, never pickled)."""
    global _TASK
    _TASK = task


def _call(i: int) -> object:
    """Run task ``i`` of the fan-out that started this worker."""
    assert _TASK is not None
    return _TASK(i)


def fan_out(task: Callable[[int], T], n: int, jobs: int | None = None, on_done: Callable[[], None] | None = None) -> list[T]:
    """``[task(0), ..., task(n - 1)]``, over at most ``jobs`` processes and the available cores (``None``: every one).

    Each task must be deterministic and return a picklable value; the list is the same whatever ``jobs`` is. ``on_done``
    is called here after each result, in task order (a progress bar's ticks).
    """
    from aicap.sizing.plan.evaluation import available_cores, can_fork

    workers = min(available_cores() if jobs is None else jobs, available_cores(), n)
    out: list[T] = []
    if workers <= 1 or not can_fork():
        for i in range(n):
            out.append(task(i))
            if on_done is not None:
                on_done()
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=_install,
                             initargs=(task,)) as pool:  # fmt: skip
        for r in pool.map(_call, range(n)):
            out.append(cast(T, r))  # task(i)'s result, a T
            if on_done is not None:
                on_done()
        return out
