"""Rows kept for the sizings of one search (aicap.sizing.plan.row_memo): reused only where every input is equal."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import evaluation, row_memo
from aicap.sizing.plan.candidates import Job, Row
from aicap.sizing.plan.row_memo import RowMemo, shared_rows
from aicap.sizing.plan.sizer import size
from tests.sizing.evaluation_jobs import fleet_jobs, plain

CAT = load_catalogue()


def _fleet() -> Fleet:
    wl = [{"name": f"w{k}", "model": ("llama-3.1-8b", "mixtral-8x7b")[k % 2], "requests_per_s": 2.0 + k, "input_tokens": 400 + 150 * k,
           "output_tokens": 120 + 20 * k, "slo": {"ttft_ms": 2000.0, "tpot_ms": 80.0}} for k in range(4)]  # fmt: skip
    return Fleet.model_validate({"workloads": wl, "constraints": {"clouds": ["aws"], "hardware": ["h100-sxm", "l40s"]}})


@functools.cache
def _jobs() -> list[Job]:
    return fleet_jobs(_fleet(), CAT)


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of jobs each evaluation without the memo was given (from the test's start: the jobs are made first)."""
    _jobs()
    counts: list[int] = []
    real = evaluation._evaluate

    def counted(jobs: Sequence[Job], latency: bool, workers: int) -> list[list[Row]]:
        counts.append(len(jobs))
        return real(jobs, latency, workers)

    monkeypatch.setattr(evaluation, "_evaluate", counted)
    return counts


def test_outside_a_scope_every_job_is_evaluated_each_time(evaluated: list[int]) -> None:
    jobs = _jobs()
    assert row_memo.current() is None
    first = evaluation.evaluate_jobs(jobs, False)
    again = evaluation.evaluate_jobs(jobs, False)
    assert evaluated == [len(jobs), len(jobs)]
    assert plain(first) == plain(again)


def test_in_a_scope_a_job_seen_before_takes_its_rows_and_only_new_ones_are_evaluated(evaluated: list[int]) -> None:
    jobs = _jobs()
    assert len(jobs) >= 2
    fresh = plain(evaluation.evaluate_jobs(jobs, False))
    evaluated.clear()
    with shared_rows() as memo:
        first = evaluation.evaluate_jobs(jobs[:1], False)
        both = evaluation.evaluate_jobs(jobs, False)
        assert evaluated == [1, len(jobs) - 1]  # the first job once, the others once
        assert memo.hits == len(jobs[0].shapes) and memo.held == sum(len(r) for r in both)  # a hit a shape
        again = evaluation.evaluate_jobs(jobs, False)
        assert evaluated == [1, len(jobs) - 1]  # nothing evaluated a third time
    assert plain(first) == fresh[:1]
    assert plain(again) == plain(both)
    assert [len(r) for r in both] == [len(r) for r in fresh]
    for got, want in zip(plain(both), fresh, strict=True):  # the rows of a lone evaluation, to the TTFT mixture's rounding
        for a, b in zip(got, want, strict=True):
            assert a[:5] == b[:5] and a[8:11] == b[8:11]
            for x, y in zip(a[5:8], b[5:8], strict=True):
                assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12)
    assert row_memo.current() is None  # the scope closed


def test_a_job_whose_shapes_were_partly_seen_evaluates_only_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    job = next(j for j in _jobs() if len(j.shapes) >= 2)
    fresh = plain(evaluation.evaluate_jobs([job], True))[0]  # with the latency objective's lighter-loaded rows
    given: list[list[object]] = []
    real = evaluation._evaluate

    def spy(jobs: Sequence[Job], latency: bool, workers: int) -> list[list[Row]]:
        given.append([s for j in jobs for s in j.shapes])
        return real(jobs, latency, workers)

    monkeypatch.setattr(evaluation, "_evaluate", spy)
    with shared_rows():
        evaluation.evaluate_jobs([replace(job, shapes=job.shapes[1:2])], True)
        rows = plain(evaluation.evaluate_jobs([job], True))[0]
    assert given == [job.shapes[1:2], [s for k, s in enumerate(job.shapes) if k != 1]]
    assert [r[:5] + r[8:11] for r in rows] == [r[:5] + r[8:11] for r in fresh]  # the order and every index of one evaluation
    assert [r[9] for r in rows] == sorted((r[9] for r in rows), reverse=True)  # full load first, then the lighter loads
    for a, b in zip(rows, fresh, strict=True):
        for x, y in zip(a[5:8], b[5:8], strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12)


def test_a_job_twice_in_one_call_is_evaluated_once(evaluated: list[int]) -> None:
    job = _jobs()[0]
    with shared_rows():
        rows = evaluation.evaluate_jobs([job, job], False)
    assert evaluated == [1]
    assert plain([rows[0]]) == plain([rows[1]])
    assert rows[0] is not rows[1]  # each caller gets a list of its own


def test_any_input_that_differs_is_a_different_job(evaluated: list[int]) -> None:
    job = _jobs()[0]
    dev, eff, lays, usd = job.devices[0]
    dearer = replace(job, devices=[(dev, eff, lays, usd * 2.0), *job.devices[1:]])  # the price screens rows
    slower = replace(job, devices=[(dev, eff.model_copy(update={"memory": eff.memory * 0.5}), lays, usd), *job.devices[1:]])
    other = replace(job, shapes=[replace(job.shapes[0], tpot_s=job.shapes[0].tpot_s * 0.5), *job.shapes[1:]])
    keys = {RowMemo.key(j, lat) for j in (job, dearer, slower, other) for lat in (False, True)}
    assert len(keys) == 8
    with shared_rows():
        evaluation.evaluate_jobs([job], False)
        evaluation.evaluate_jobs([job], True)  # the latency objective's rows are other rows
        evaluation.evaluate_jobs([slower], False)
    assert evaluated == [1, 1, 1]


def test_the_memo_keeps_at_most_its_limit_dropping_the_least_recently_used() -> None:
    row = _jobs()[0]
    rows = evaluation.evaluate_jobs([row], False)[0][:3]
    assert len(rows) == 3
    memo = RowMemo(limit=7)
    memo.put(b"a", rows)
    memo.put(b"b", rows)
    assert memo.get(b"a") is not None  # a is now the most recently used
    memo.put(b"c", rows)  # 9 rows: b goes
    assert memo.held == 6 and memo.get(b"b") is None and memo.get(b"a") is not None and memo.get(b"c") is not None
    memo.put(b"big", rows * 3)  # more than the limit alone: not kept, nothing dropped
    assert memo.get(b"big") is None and memo.held == 6


def test_an_inner_scope_joins_the_outer_one() -> None:
    with shared_rows() as outer:
        with shared_rows() as inner:
            assert inner is outer and row_memo.current() is outer
        assert row_memo.current() is outer
    assert row_memo.current() is None
    with shared_rows() as later:
        assert later is not outer  # a new command starts empty


def test_a_disaggregated_search_evaluates_each_job_once_and_plans_as_without_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 20.0, "input_tokens": 2000,
                                                 "output_tokens": 300, "slo": {"ttft_ms": 800.0, "tpot_ms": 40.0},
                                                 "disaggregation": {}}],
                                  "constraints": {"clouds": ["aws"]}})  # fmt: skip

    rows: list[int] = []
    real = evaluation._evaluate

    def counted(jobs: Sequence[Job], latency: bool, workers: int) -> list[list[Row]]:
        rows.append(sum(evaluation.job_rows(j) for j in jobs))
        return real(jobs, latency, workers)

    monkeypatch.setattr(evaluation, "_evaluate", counted)
    plans = []
    for memo in (True, False):
        if not memo:  # the rows evaluated afresh each time (the search's choices still kept, as before the memo)
            monkeypatch.setattr(RowMemo, "evaluate", lambda self, jobs, latency, run, starts: run(list(jobs)))
        rows.clear()
        plans.append(size(fleet, CAT, alternatives=False).to_dict())
        if memo:
            shared = sum(rows)
    assert shared < 0.6 * sum(rows)  # the decode pool's jobs are the same for every link tier
    assert plans[0] == plans[1]
    assert size(fleet, CAT, alternatives=False).to_dict() == plans[0]  # a later call searches afresh: nothing carried over


def test_a_job_cut_into_parts_comes_back_part_by_part_as_without_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reassembled rows were sorted by load fraction over the whole job, where an evaluation cut into parts gives each
    # part's rows by load fraction in turn: a re-solve offered the latency objective's candidates in another order.
    jobs = _jobs()
    total = sum(evaluation.job_rows(j) for j in jobs)
    monkeypatch.setattr(evaluation, "PART_ROWS", max(total // 6, 1))
    monkeypatch.setattr(evaluation, "MIN_PART_ROWS", 1)
    starts = evaluation.part_starts(jobs)
    assert any(len(s) > 1 for s in starts)  # some job is cut
    fresh = plain(evaluation.evaluate_jobs(jobs, True))
    with shared_rows():
        evaluation.evaluate_jobs([replace(j, shapes=j.shapes[:1]) for j in jobs], True)  # each job's first shape kept
        again = plain(evaluation.evaluate_jobs(jobs, True))
    assert [[r[:5] + r[8:11] for r in rows] for rows in again] == [[r[:5] + r[8:11] for r in rows] for rows in fresh]
