"""`fan_out`: independent simulation runs over forked workers, in order, the same as a serial run's."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.profile import Diurnal
from aicap.sizing.plan.fleet_io import builtin_fleet
from aicap.sizing.plan.periods import size_periods
from aicap.sizing.plan.sizer import size
from aicap.sizing.sim import fanout
from aicap.sizing.sim.fanout import fan_out
from aicap.sizing.sim.verify import verify
from aicap.sizing.sim.verify_periods import verify_periods

CAT = load_catalogue()
FORKS = sys.platform.startswith("linux")  # where workers are forked (evaluation.can_fork)


def test_results_come_back_in_task_order_from_other_processes() -> None:
    got = fan_out(lambda i: (i * i, os.getpid()), 6, jobs=3)
    assert [v for v, _ in got] == [i * i for i in range(6)]
    if FORKS:
        assert {pid for _, pid in got} - {os.getpid()}  # some ran in a worker
    assert fanout._TASK is None  # nothing left behind for the next fan-out


def test_one_job_one_task_or_another_thread_runs_here() -> None:
    me = os.getpid()
    assert {pid for pid in fan_out(lambda i: os.getpid(), 4, jobs=1)} == {me}
    assert fan_out(lambda i: os.getpid(), 1, jobs=8) == [me]
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:  # a fork copies only the calling thread: with another one running, no worker is forked
        assert {pid for pid in fan_out(lambda i: os.getpid(), 4, jobs=4)} == {me}
    finally:
        stop.set()
        t.join()


def test_a_failing_task_raises_here() -> None:
    def task(i: int) -> int:
        if i == 2:
            raise ValueError("task 2")
        return i

    with pytest.raises(ValueError, match="task 2"):
        fan_out(task, 4, jobs=2)


def test_a_users_mistake_in_a_worker_reaches_the_caller_whole() -> None:
    # An unknown id's error was rebuilt from its message by its own __init__ and failed: the pool broke, exit 4.
    from aicap.sizing.core.errors import UnknownIdError

    def task(i: int) -> int:
        if i == 1:
            raise UnknownIdError("model", "llama-9", ["llama-3.1-8b", "llama-3.1-70b"])
        return i

    with pytest.raises(UnknownIdError, match="unknown model 'llama-9'") as got:
        fan_out(task, 3, jobs=2)
    assert got.value.value == "llama-9" and got.value.choices == ["llama-3.1-8b", "llama-3.1-70b"]


def test_a_fan_out_inside_a_worker_leaves_the_workers_task_alone() -> None:
    # The task reached the workers through a global the inner fan-out reset: the worker's next task found none.
    def outer(i: int) -> list[int]:
        return fan_out(lambda j: 10 * i + j, 3, jobs=2)

    assert fan_out(outer, 4, jobs=2) == [[10 * i + j for j in range(3)] for i in range(4)]


def test_workers_are_capped_at_the_cores() -> None:
    from aicap.sizing.plan.evaluation import available_cores

    pids = {pid for pid in fan_out(lambda i: os.getpid(), 16, jobs=64)}
    assert len(pids) <= available_cores()


def test_a_plans_checks_are_the_same_over_several_processes() -> None:
    plan = size(builtin_fleet(), CAT, alternatives=False)
    assert verify(plan, CAT, requests=1500, span_s=0.0, jobs=3) == verify(plan, CAT, requests=1500, span_s=0.0, jobs=1)


def test_a_period_plans_busiest_hours_are_the_same_over_several_processes() -> None:
    from aicap.sizing.core.fleet import Fleet

    day = list(Diurnal(shape="diurnal", peak=30.0, trough=2.0, peak_hour=14.0).rates())
    fleet = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": day, "input_tokens": 800,
                                                 "output_tokens": 200, "slo": {"ttft_ms": 1500, "tpot_ms": 50}}],
                                  "constraints": {"clouds": ["aws"], "hardware": ["l4", "h100-sxm"]}})  # fmt: skip
    plan = size_periods(fleet, CAT)
    one = verify_periods(plan, fleet, CAT, requests=1500, span_s=0.0, jobs=1)
    assert len(one) >= 1 and verify_periods(plan, fleet, CAT, requests=1500, span_s=0.0, jobs=2) == one


def test_on_done_ticks_once_a_result_here_in_either_mode() -> None:
    ticks: list[int] = []
    assert fan_out(lambda i: i, 5, jobs=1, on_done=lambda: ticks.append(1)) == [0, 1, 2, 3, 4]
    assert fan_out(lambda i: i, 5, jobs=3, on_done=lambda: ticks.append(3)) == [0, 1, 2, 3, 4]
    assert ticks == [1] * 5 + [3] * 5


def test_simulate_plan_is_the_same_over_several_processes(aicap, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    r = aicap("size", "-f", "json", "--output", str(plan))
    assert r.code == 0, r.stderr
    one = aicap("simulate", str(plan), "--jobs", "1", "-f", "json")
    two = aicap("simulate", str(plan), "--jobs", "2", "-f", "json")
    assert one.code == 0 and two.code == 0 and one.stdout == two.stdout
