"""Generic (per-item) models: one item a request, whatever the workload's token defaults say.

The defaults (1,024 in, 256 out) were read as 1,024 items a request against the step's token budget: a ResNet-50 fleet
of 2,000 images/s was planned on eight B200s ($83,171/month) where one T4 carries it, and `simulate` ran 72 req/s on an
H100 that `estimate` gives 70,000.
"""

from __future__ import annotations

from typing import Any

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.inputs import per_item
from aicap.sizing.plan.periods import size_periods
from aicap.sizing.plan.sizer import size

VISION: dict[str, Any] = {"name": "vision", "model": "resnet-50", "requests_per_s": 2000.0, "slo": {"ttft_ms": 100.0}}


def _fleet(**change: Any) -> Fleet:
    return Fleet.model_validate({"workloads": [{**VISION, **change}], "constraints": {"clouds": ["aws"], "hardware": ["h100-sxm"]}})


def test_a_generic_workload_is_one_item_a_request(cat: Catalogue) -> None:
    fleet = per_item(_fleet(), cat)
    w = fleet.workloads[0]
    assert (w.input_tokens, w.output_tokens) == (1, 1)
    assert per_item(fleet, cat) is fleet  # nothing left to change
    llm = Fleet.model_validate({"workloads": [{**VISION, "model": "llama-3.1-8b"}]})
    assert per_item(llm, cat) is llm  # token models keep their lengths


def test_a_replica_carries_thousands_of_images_a_second(cat: Catalogue) -> None:
    plan = size(_fleet(), cat, alternatives=False)
    d = plan.workloads[0].deployments[0]
    # An H100 runs a ResNet-50 image (8.18 GFLOP) in microseconds: estimate gives ~70,000 images/s all out; the plan's replica
    # stops at the TTFT target with its headroom, below that but not 1,000x below (~100/s when 1,024 "tokens" were items).
    assert d.capacity_requests_per_s / d.replicas > 2000.0
    assert plan.totals.devices == 1
    assert plan.workloads[0].usd_per_million_output_tokens is None  # it emits no tokens
    assert plan.workloads[0].usd_per_million_requests is not None
    assert plan.inputs.workloads[0].input_tokens == 1  # the plan records what it sized: a re-read plan sizes the same


def test_typed_lengths_are_refused_by_name(cat: Catalogue) -> None:
    with pytest.raises(InputError, match=r"resnet-50 is a generic model whose cost is per item \(one 224x224 RGB image a request\)"
                                         r", not per token: drop input_tokens and output_tokens"):  # fmt: skip
        size(_fleet(input_tokens=100, output_tokens=10), cat)
    with pytest.raises(InputError, match="drop input_tokens"):
        day = {"shape": "diurnal", "peak": 2000.0, "trough": 500.0, "peak_hour": 14}
        size_periods(_fleet(input_tokens=[{"tokens": 10, "weight": 1.0}], requests_per_s=day), cat)
    assert size(_fleet(input_tokens=1, output_tokens=1), cat, alternatives=False).totals == size(_fleet(), cat, alternatives=False).totals
