"""Where each replica of a plan runs: machine by machine, device by device (``aicap export --to vllm|sglang|trtllm``).

A plan counts whole instances per type and replicas per deployment; a launch script for a bare machine
needs more: which replicas share a machine and which devices each one takes. The integer program packs
exactly (a replica's device count is a power of two dividing the instance's, or a whole multiple of it),
so a first fit in decreasing size over aligned blocks places every replica: a block of ``d`` devices
starts at a multiple of ``d``, and blocks of a larger size are placed first, so free space never splits
below the next size. A replica larger than one instance takes whole machines, as many as it spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aicap.sizing.core.plan import Plan
from aicap.sizing.export.launch import Settings


@dataclass(frozen=True)
class Slot:
    """One replica on one machine: ``devices`` are its device indices there (all of them for a spanning replica)."""

    deployment: str  # Settings.name
    replica: int  # 1-based, of ``replicas``
    replicas: int
    devices: tuple[int, ...]
    part: tuple[int, int] | None = None  # (k, n): the k-th of the n machines a spanning replica takes


@dataclass(frozen=True)
class Machine:
    """One instance of the plan and the replicas it runs (``index`` 1-based within its type)."""

    instance_type: str
    index: int
    devices: int
    hardware: str
    slots: tuple[Slot, ...]

    @property
    def name(self) -> str:
        """``<instance type>-<index>``, the script's name."""
        return f"{self.instance_type}-{self.index}"


def place(plan: Plan, settings: Sequence[Settings]) -> list[Machine]:
    """Every instance of ``plan`` with the replicas of ``settings`` (its deployments) placed on it, in instance order.

    Raises
    ------
    ValueError
        When the replicas do not fit the instances (a plan edited by hand; the sizer's plans always fit).
    """
    out: list[Machine] = []
    for inst in plan.instances:
        per = inst.devices // max(inst.count, 1)
        free = [[True] * per for _ in range(inst.count)]
        slots: list[list[Slot]] = [[] for _ in range(inst.count)]
        mine = [s for s in settings if s.instance_type == inst.instance_type]
        wanted = [(s, r) for s in mine for r in range(1, s.replicas + 1)]
        wanted.sort(key=lambda x: -x[0].devices_per_replica)  # stable: deployment order within a size
        for s, r in wanted:
            d = s.devices_per_replica
            if d > per:  # a replica spanning instances takes whole, empty machines
                n = -(-d // per)
                start = next((m for m in range(inst.count - n + 1) if all(all(free[m + k]) for k in range(n))), None)
                if start is None:
                    raise ValueError(f"{s.name}: replica {r} needs {n} empty {inst.instance_type} instances; the plan has too few")
                for k in range(n):
                    free[start + k] = [False] * per
                    slots[start + k].append(Slot(s.name, r, s.replicas, tuple(range(per)), (k + 1, n)))
                continue
            spot = next(((m, o) for m in range(inst.count) for o in range(0, per - d + 1, d) if all(free[m][o : o + d])), None)
            if spot is None:
                raise ValueError(f"{s.name}: replica {r} ({d} devices) does not fit the plan's {inst.count} × {inst.instance_type}")
            m, o = spot
            free[m][o : o + d] = [False] * d
            slots[m].append(Slot(s.name, r, s.replicas, tuple(range(o, o + d))))
        for m in range(inst.count):
            ordered = sorted(slots[m], key=lambda x: (x.devices[0], x.deployment, x.replica))
            out.append(Machine(inst.instance_type, m + 1, per, inst.hardware, tuple(ordered)))
    return out
