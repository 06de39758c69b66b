"""Worker processes that solve the one-hour programs of a plan over demand periods.

:func:`~aicap.sizing.solve.periods.solve_periods` solves every distinct hour of a round on its own
(HiGHS through ``scipy.optimize.milp``, which holds the GIL: threads gain nothing). An
:class:`HourPool` shares a round's hours out over worker processes and returns their solutions in
order; each hour's program is the same wherever it runs, so the plan is the same with any number of
workers.

The workers are fresh interpreters running ``python -m aicap.sizing.solve.hour_workers``, fed pickled
tasks over a pipe, not :mod:`multiprocessing` children:

* a child *forked* after HiGHS has run can deadlock: HiGHS keeps native worker threads and hands a
  spawned task to a sleeping one, which does not exist in the child, then waits for it;
* a *spawned* :mod:`multiprocessing` child imports the parent's ``__main__``, which re-runs a user's
  script that calls aicap at top level without an ``if __name__ == "__main__"`` guard.

A worker costs an interpreter and the solver's import (about 0.6 s; they start in parallel), so the
workers start only once the plan's hours would take this process longer than
:attr:`HourPool.START_AFTER_S` at the pace of those it has solved. A worker that fails or dies has its
hours solved here.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from aicap.sizing.solve.periods import PeriodProblem

Task = tuple["PeriodProblem", int, "NDArray[np.int64] | None"]
"""``(problem, hour, reservations pinned or None)``: what :func:`~aicap.sizing.solve.periods._hour` takes."""
Result = tuple["NDArray[np.float64] | None", float]
"""``(solution vector or None, HiGHS's dual bound)``."""

_HEADER = struct.Struct("<Q")  # byte length of the pickle that follows


def _send(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("worker closed its pipe")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("worker closed its pipe mid-message")
    return pickle.loads(data)  # our own child's reply over our own pipe


class HourPool:
    """Up to ``workers`` worker processes (module docstring), started on first use and stopped on exit.

    ``workers <= 1`` solves everything in this process. Use as a context manager.
    """

    START_AFTER_S = 1.5  # serial work [s] that pays for starting the workers (about 0.6 s here)

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._procs: list[subprocess.Popen[bytes]] = []
        self._spent_s = 0.0  # time spent solving hours here before the workers started
        self.started = False

    def __enter__(self) -> HourPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                with suppress(OSError):  # a worker that died leaves a broken pipe
                    proc.stdin.close()  # end of input: the worker exits
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs = []

    def _start(self) -> None:
        # The workers import aicap from where this process did.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._procs = [subprocess.Popen([sys.executable, "-m", "aicap.sizing.solve.hour_workers"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env) for _ in range(self.workers)]  # fmt: skip
        self.started = True

    def solve(self, tasks: list[Task], solve_here: Callable[[Task], Result]) -> list[Result]:
        """``solve_here(t)`` of every task, in order; computed by the workers where that pays.

        Until the workers have started, tasks are solved here, and the workers start once this pool's
        hours would have taken this process more than :attr:`START_AFTER_S`, counting the earlier
        rounds' time and this round's tasks at the pace so far (a small plan never pays for them).
        Then each worker thread here feeds one worker the next task not yet taken, so slow hours do
        not hold up the rest; a task whose worker fails is solved here.
        """
        done: list[Result] = []
        if not self.started:
            t0 = time.perf_counter()
            for k, task in enumerate(tasks):
                if k >= 2 and self.workers > 1 and sys.executable:
                    pace = (time.perf_counter() - t0) / k
                    if self._spent_s + pace * len(tasks) > self.START_AFTER_S:
                        break
                done.append(solve_here(task))
            else:
                self._spent_s += time.perf_counter() - t0
                return done
            self._start()
        return done + self._fan_out(tasks[len(done) :], solve_here)

    def _fan_out(self, tasks: list[Task], solve_here: Callable[[Task], Result]) -> list[Result]:
        results: list[Result | None] = [None] * len(tasks)
        lock = threading.Lock()
        taken = iter(range(len(tasks)))

        def feed(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin is not None and proc.stdout is not None
            while True:
                with lock:
                    k = next(taken, None)
                if k is None:
                    return
                try:
                    _send(proc.stdin, tasks[k])
                    results[k] = _receive(proc.stdout)
                except (OSError, EOFError, pickle.UnpicklingError):
                    return  # this worker is gone: the others go on, and its task is solved here

        threads = [threading.Thread(target=feed, args=(proc,), daemon=True) for proc in self._procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [solve_here(tasks[k]) if r is None else r for k, r in enumerate(results)]


def main() -> None:
    """The worker loop: read a task from stdin, write its result to stdout, until stdin closes."""
    from aicap.sizing.solve.periods import _hour

    # The replies go out on a private copy of stdout; fd 1 itself goes to stderr, so that nothing the
    # solver prints can land inside a reply.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    tasks = sys.stdin.buffer
    while True:
        try:
            task = _receive(tasks)
            reply = _hour(task)
        except Exception:  # end of input, or a task that fails: the parent solves it itself and reports
            return
        _send(replies, reply)


if __name__ == "__main__":
    main()
