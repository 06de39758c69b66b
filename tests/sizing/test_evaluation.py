"""Evaluation cut into parts and shared out over processes (aicap.sizing.plan.evaluation): the same rows with any number of them."""

from __future__ import annotations

import os

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import evaluation
from aicap.sizing.plan.candidates import Job, Row, evaluate_batch
from aicap.sizing.plan.sizer import size
from tests.sizing.evaluation_jobs import fleet_jobs, plain

CAT = load_catalogue()


def _fleet() -> Fleet:
    """Three models (dense and MoE, two batch keys) and twelve distinct shapes."""
    wl = [{"name": f"w{k}", "model": ("llama-3.1-8b", "mistral-7b", "mixtral-8x7b")[k % 3], "requests_per_s": 1.0 + k,
           "input_tokens": 300 + 97 * k, "output_tokens": 100 + 13 * k, "slo": {"ttft_ms": 2000.0, "tpot_ms": 80.0}}
          for k in range(12)]  # fmt: skip
    return Fleet.model_validate({"workloads": wl, "constraints": {"clouds": ["aws"], "hardware": ["h100-sxm", "l40s", "a100-80gb-sxm"]}})


def _jobs() -> list[Job]:
    return fleet_jobs(_fleet(), CAT)


def test_parts_cut_batches_at_shape_boundaries_into_the_sizes_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _jobs()
    total = sum(evaluation.job_rows(j) for j in jobs)
    widest = max(evaluation.rows_per_shape(j) for j in jobs)
    monkeypatch.setattr(evaluation, "PART_ROWS", max(total // 5, 4 * widest))
    monkeypatch.setattr(evaluation, "MIN_PART_ROWS", 2 * widest)  # every part but the last spans a shape's start
    cut = evaluation.parts(jobs)
    assert len(cut) > 4
    for part in cut:  # one batch key per part
        assert len({job.batch_key for _, _, job in part}) == 1
    covered = sorted((j, first + s) for part in cut for j, first, job in part for s in range(len(job.shapes)))
    assert covered == sorted((j, s) for j, job in enumerate(jobs) for s in range(len(job.shapes)))  # every shape once
    for part in cut:
        for j, first, job in part:
            assert job.shapes == jobs[j].shapes[first : first + len(job.shapes)]
    for key in {job.batch_key for job in jobs}:  # each batch's parts hold the sizes asked, give or take one shape's rows
        mine = [p for p in cut if p[0][2].batch_key == key]
        rows = [sum(evaluation.job_rows(job) for _, _, job in p) for p in mine]
        asked = evaluation.part_sizes(sum(rows))
        assert len(asked) - 1 <= len(rows) <= len(asked)  # the last, smallest part may start no shape
        assert all(abs(r - a) <= widest for r, a in zip(rows[:-1], asked, strict=False))


def test_part_sizes_halve_towards_the_end() -> None:
    assert evaluation.part_sizes(10) == [10]
    sizes = evaluation.part_sizes(57_780)
    assert sum(sizes) == 57_780 and sizes[:2] == [evaluation.PART_ROWS] * 2 and sizes == sorted(sizes, reverse=True)
    assert all(s >= evaluation.MIN_PART_ROWS for s in sizes[:-1])


@pytest.mark.skipif(not evaluation.can_fork(), reason="forked workers need Linux and a single-threaded caller")
def test_parts_and_workers_give_the_rows_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _jobs()
    batches: dict[tuple[object, ...], list[int]] = {}
    for j, job in enumerate(jobs):
        batches.setdefault(job.batch_key, []).append(j)
    whole: list[list[Row]] = [[] for _ in jobs]
    for members in batches.values():  # one pass per batch key, uncut
        for j, rows in zip(members, evaluate_batch([jobs[j] for j in members], False), strict=True):
            whole[j] = rows
    total = sum(evaluation.job_rows(j) for j in jobs)
    monkeypatch.setattr(evaluation, "PART_ROWS", total // 6)
    monkeypatch.setattr(evaluation, "PARALLEL_MIN_ROWS", 0)
    forks: list[int] = []
    real = evaluation._fan_out

    def counted(*args: object) -> None:
        forks.append(os.getpid())
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluation, "_fan_out", counted)
    serial = evaluation.evaluate_jobs(jobs, False, workers=1)
    assert not forks
    shared = evaluation.evaluate_jobs(jobs, False, workers=3)
    assert forks  # the workers ran
    assert plain(shared) == plain(serial)  # bit for bit, whatever the number of processes
    for cut_rows, one_rows in zip(serial, whole, strict=True):  # and one uncut pass to rounding (the TTFT mixture's buckets)
        assert len(cut_rows) == len(one_rows)
        for a, b in zip(cut_rows, one_rows, strict=True):
            assert a[:5] == b[:5] and a[8:11] == b[8:11]
            for x, y in zip(a[5:8], b[5:8], strict=True):
                assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12)


@pytest.mark.skipif(not evaluation.can_fork(), reason="forked workers need Linux and a single-threaded caller")
def test_a_part_a_worker_does_not_send_is_evaluated_here(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _jobs()
    monkeypatch.setattr(evaluation, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(evaluation, "PART_ROWS", 64)
    expected = plain(evaluation.evaluate_jobs(jobs, False, workers=1))
    parent = os.getpid()
    real = evaluation._run

    def dies_in_a_worker(part: list[evaluation.Member], latency: bool) -> list[list[Row]]:
        if os.getpid() != parent:
            os._exit(1)  # a worker killed mid-way (out of memory, a signal)
        return real(part, latency)

    monkeypatch.setattr(evaluation, "_run", dies_in_a_worker)
    assert plain(evaluation.evaluate_jobs(jobs, False, workers=2)) == expected


def test_the_plan_is_the_same_with_one_process_or_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(evaluation, "PART_ROWS", 256)
    assert size(_fleet(), CAT, jobs=1).to_dict() == size(_fleet(), CAT, jobs=2).to_dict()
