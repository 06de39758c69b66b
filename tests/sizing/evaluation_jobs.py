"""The evaluation jobs a fleet's sizing makes, and rows without their replica: what the evaluation and memo tests compare."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan import generate
from aicap.sizing.plan.candidates import Job, Row
from aicap.sizing.plan.sizer import allowed_instances


def fleet_jobs(fleet: Fleet, cat: CatalogueLike) -> list[Job]:
    """The jobs :func:`~aicap.sizing.plan.generate.all_candidates` hands the evaluation for ``fleet``."""
    insts, _ = allowed_instances(fleet, cat)
    seen: list[list[Job]] = []
    real = generate.evaluate_jobs

    def spy(jobs: Sequence[Job], latency: bool, *, workers: int = 1) -> list[list[Row]]:
        seen.append(list(jobs))
        return real(jobs, latency, workers=workers)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generate, "evaluate_jobs", spy)
        generate.all_candidates(fleet, cat, insts, workers=1)
    return seen[0]


def plain(rows: list[list[Row]]) -> list[list[tuple[object, ...]]]:
    """Every field of each row but the replica (an object per evaluation)."""
    return [[r[:11] for r in job_rows] for job_rows in rows]
