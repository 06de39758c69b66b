"""Placing a plan's replicas on its machines, device by device (the launch scripts of ``aicap export``)."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.export.launch import deployment_settings
from aicap.sizing.export.placement import place
from aicap.sizing.plan.fleet_io import build_fleet, builtin_fleet
from aicap.sizing.plan.sizer import size


def _check(plan, machines, settings) -> None:  # type: ignore[no-untyped-def]
    """Every replica placed once (a spanning one on whole machines), blocks aligned, no device twice."""
    assert [(m.instance_type, m.index) for m in machines] == [(i.instance_type, k) for i in plan.instances for k in range(1, i.count + 1)]
    seen: dict[tuple[str, int], int] = {}
    for m in machines:
        used: set[int] = set()
        for s in m.slots:
            assert not used & set(s.devices) and max(s.devices) < m.devices
            used |= set(s.devices)
            if s.part is None:
                d = len(s.devices)
                assert s.devices == tuple(range(s.devices[0], s.devices[0] + d)) and s.devices[0] % d == 0  # aligned block
            seen[s.deployment, s.replica] = seen.get((s.deployment, s.replica), 0) + 1
    for st in settings:
        span = max(1, st.devices_per_replica // next(i.devices // i.count for i in plan.instances if i.instance_type == st.instance_type))
        assert all(seen[st.name, r] == span for r in range(1, st.replicas + 1))


def test_the_built_in_plan_packs_its_machines_exactly(cat: Catalogue) -> None:
    plan = size(builtin_fleet(), cat, alternatives=False)
    settings = deployment_settings(plan, cat)
    machines = place(plan, settings)
    _check(plan, machines, settings)
    p5 = next(m for m in machines if m.instance_type == "p5.48xlarge")
    assert sum(len(s.devices) for s in p5.slots) == p5.devices == 8  # 3 chat replicas and the summariser, TP2 each


def test_a_replica_spanning_instances_takes_whole_machines(cat: Catalogue) -> None:
    fleet = build_fleet(model="deepseek-v3", rate=0.5, input_tokens=1024, output_tokens=256, ttft_ms=5000.0, tpot_ms=None,
                        percentile="p99", precision="fp8", cloud="aws", hardware="h100-sxm")  # fmt: skip
    plan = size(fleet, cat, alternatives=False)
    settings = deployment_settings(plan, cat)
    machines = place(plan, settings)
    _check(plan, machines, settings)
    parts = [s.part for m in machines for s in m.slots]
    assert parts and all(p is not None for p in parts) and sorted(p[0] for p in parts if p) == list(range(1, parts[0][1] + 1))


def test_replicas_beyond_the_instances_are_refused(cat: Catalogue) -> None:
    plan = size(builtin_fleet(), cat, alternatives=False)
    settings = deployment_settings(plan, cat)
    more = [s if s.workload != "chat" else type(s)(**{**s.__dict__, "replicas": s.replicas + 2}) for s in settings]
    with pytest.raises(ValueError, match="does not fit the plan's"):
        place(plan, more)
