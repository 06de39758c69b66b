"""Candidate replicas kept for later: re-evaluate any of them at any load, many at once.

The planner evaluates thousands of candidate replicas in one vectorised pass (a :class:`ReplicaGroup`);
a :class:`Replica` is one row of it. :func:`at_rates` puts many replicas at their loads with one
:func:`~aicap.sizing.serve.rate.at_rate` pass per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.rate import at_rate
from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ReplicaGroup:
    """Candidate replicas evaluated together (arrays over candidates): re-evaluate any of them at any load."""

    step: StepModel
    pipeline_stages: F
    budget: float
    traffic: Traffic

    def at_rate(self, index: ArrayLike, rate: ArrayLike) -> Loaded:
        """The candidates at ``index`` receiving ``rate`` requests/s each (one bisection for all of them)."""
        ix = np.asarray(index, dtype=np.int64)
        return at_rate(self.step.take(ix), self.pipeline_stages[ix], self.budget, self.traffic.take(ix), np.asarray(rate, dtype=float))


@dataclass(frozen=True)
class Replica:
    """One candidate replica: row ``index`` of the group it was evaluated in."""

    group: ReplicaGroup
    index: int
    engines: int = 1  # data-parallel attention: the replica is this many of the row's engines, each taking an equal share

    def at_rate(self, rate: float) -> Loaded:
        """The replica receiving ``rate`` requests/s (each of its engines ``rate / engines``)."""
        return self.group.at_rate(np.array([self.index]), np.array([rate / self.engines]))


def at_rates(replicas: Sequence[Replica], rates: Sequence[float]) -> list[Loaded]:
    """Each replica at its rate, one vectorised pass per group they were evaluated in (a length-1 :class:`Loaded` each)."""
    groups: dict[int, list[int]] = {}
    for k, r in enumerate(replicas):
        groups.setdefault(id(r.group), []).append(k)
    out: list[Loaded | None] = [None] * len(replicas)
    for members in groups.values():
        group = replicas[members[0]].group
        m = group.at_rate([replicas[k].index for k in members], [rates[k] / replicas[k].engines for k in members])
        for j, k in enumerate(members):
            out[k] = m.take(np.array([j]))
    return [m for m in out if m is not None]
