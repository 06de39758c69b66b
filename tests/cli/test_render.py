"""Renderers: every format renders the same view; the Rich plan table matches a golden file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from aicap.cli.commands.size_cmd import plan_view
from aicap.cli.render import RENDERERS, Format, to_table

GOLDEN = Path(__file__).with_name("golden") / "plan_table.txt"
PLAN = {
    "schema_version": 1,
    "catalogue": {"version": "abc", "price_dates": ["2026-01-01", "2026-02-01"], "pricing": "on_demand"},
    "objective": "cost",
    "hours_per_month": 730.0,
    "totals": {"usd_per_hour": 10.0, "usd_per_month": 7300.0, "devices": 2, "instances": 1},
    "instances": [{"instance_type": "x.2", "cloud": "aws", "region": "r", "hardware": "h", "count": 1, "devices": 2,
                   "devices_used": 2, "usd_per_hour": 10.0, "price_date": "2026-02-01"}],
    "workloads": [{"name": "chat", "model": "m", "percentile": "p99", "error_band_pct": {"ttft": 40.0, "tpot": 9.0},
                   "usd_per_million_output_tokens": 1.5,
                   "deployments": [{"instance_type": "x.2", "hardware": "h", "devices": 2, "tp": 2, "pp": 1, "replicas": 1, "batch": 32,
                                    "weights_dtype": "fp8", "ttft_ms": 120.0, "tpot_ms": 41.5, "utilisation": 0.8, "usd_per_hour": 10.0,
                                    "efficiency_calibrated": True}]}],
    "alternatives": [{"hardware": "g", "usd_per_month": 9000.0, "delta_usd_per_month": 1700.0, "why": "costs more for the same traffic"}],
}  # fmt: skip


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(Format)


def test_json_is_the_document_unchanged() -> None:
    assert json.loads(RENDERERS[Format.json](plan_view(PLAN))) == PLAN


def test_plan_table_matches_golden() -> None:
    out = io.StringIO()
    to_table(plan_view(PLAN), width=140, file=out)
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        GOLDEN.write_text(out.getvalue())
    assert out.getvalue() == GOLDEN.read_text()
