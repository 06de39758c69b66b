"""Renderers: every format renders the same view; the Rich plan table matches a golden file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from aicap.cli.commands.size_views import plan_view
from aicap.cli.render import RENDERERS, Format, to_table
from aicap.sizing.core.plan import Plan

GOLDEN = Path(__file__).with_name("golden") / "plan_table.txt"
PLAN = Plan.model_validate({
    "schema_version": 2, "generated_by": "aicap test",
    "catalogue": {"version": "abc", "price_dates": ["2026-01-01", "2026-02-01"], "pricing": "on_demand"},
    "objective": "cost", "hours_per_month": 730.0, "solver": {"status": "optimal", "gap_pct": 0.0},
    "totals": {"usd_per_hour": 10.0, "usd_per_month": 7300.0, "devices": 2, "devices_used": 2, "instances": 1},
    "instances": [{"instance_type": "x.2", "cloud": "aws", "region": "r", "hardware": "h", "count": 1, "devices": 2,
                   "devices_used": 2, "usd_per_hour": 10.0, "price_date": "2026-02-01"}],
    "workloads": [{"name": "chat", "model": "m", "percentile": "p99", "arrival_cv": 1.0, "requests_per_s": 4.0,
                   "served_requests_per_s": 4.0,
                   "capacity_requests_per_s": 5.0, "ttft_ms": 120.0, "tpot_ms": 41.5, "ttft_target_ms": 2000.0, "tpot_target_ms": 60.0,
                   "ttft_margin_pct": 94.0, "tpot_margin_pct": 30.8, "error_band_pct": {"ttft": 40.0, "tpot": 9.0},
                   "usd_per_hour": 10.0, "usd_per_month": 7300.0, "usd_per_million_output_tokens": 1.5,
                   "deployments": [{"instance_type": "x.2", "hardware": "h", "devices": 2, "tp": 2, "pp": 1, "replicas": 1,
                                    "instances": 1.0,
                                    "max_running": 32, "weights_dtype": "fp8", "kv_dtype": "fp8", "requests_per_s": 4.0,
                                    "capacity_requests_per_s": 5.0, "utilisation": 0.8, "ttft_ms": 120.0, "tpot_ms": 41.5,
                                    "usd_per_hour": 10.0, "efficiency_calibrated": True}]}],
    "alternatives": [{"hardware": "g", "usd_per_month": 9000.0, "delta_usd_per_month": 1700.0, "why": "costs more for the same traffic"}],
    "warnings": [],
    "inputs": {"workloads": [{"name": "chat", "model": "m", "requests_per_s": 4.0}]},
})  # fmt: skip


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(Format)


def test_json_is_the_document_unchanged() -> None:
    assert json.loads(RENDERERS[Format.json](plan_view(PLAN))) == PLAN.to_dict()
    assert Plan.model_validate_json(RENDERERS[Format.json](plan_view(PLAN))) == PLAN


def test_plan_table_matches_golden() -> None:
    out = io.StringIO()
    to_table(plan_view(PLAN), width=140, file=out)
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        GOLDEN.write_text(out.getvalue())
    assert out.getvalue() == GOLDEN.read_text()


def test_a_field_value_listing_aligns_its_values_left_and_other_tables_numbers_right() -> None:
    from aicap.cli.render import Table, View

    rows = [["id", "llama-3.1-8b"], ["params", 8030261248], ["source", "https://huggingface.co/meta-llama/Llama-3.1-8B"]]

    def lines(table: Table) -> list[str]:
        out = io.StringIO()
        to_table(View(None, [table]), width=80, file=out)
        return [line for line in out.getvalue().splitlines() if "llama-3.1-8b" in line or "8,030,261,248" in line]

    listing = lines(Table("", ["field", "value"], rows, left=True))
    assert all("│ llama-3.1-8b " in line or "│ 8,030,261,248 " in line for line in listing) and len(listing) == 2
    numbers = lines(Table("", ["field", "value"], rows))  # a column holding a number is right-aligned
    assert any(" llama-3.1-8b │" in line for line in numbers) and any(" 8,030,261,248 │" in line for line in numbers)


def test_a_progress_bar_runs_no_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # A refresh thread kept forked work (sizing.sim.fanout, the sizer's candidate evaluation) on one core under a bar.
    import sys
    import threading

    from aicap.cli.render import progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    before = threading.active_count()
    with progress(3, "working", enabled=True) as tick:
        assert threading.active_count() == before
        for _ in range(3):
            tick()
    assert "3/3" in sys.stderr.getvalue()
