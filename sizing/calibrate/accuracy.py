"""Error bands: how far predictions strayed from published measurements, per metric class.

``aicap validate --write-bands`` scores the public cases and stores, per metric class (TTFT, TPOT,
throughput), the 90th percentile of the absolute percentage error in
``hardware_db/validation/accuracy.yaml``; every estimate carries these bands. A test re-scores the
cases and fails when the stored bands are stale.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

METRIC_CLASSES = ("ttft", "tpot", "throughput")


def metric_class(metric: str) -> str:
    """Map a case metric name to its class: ``ttft``, ``tpot`` or ``throughput``."""
    if metric.startswith("ttft"):
        return "ttft"
    if metric.startswith(("tpot", "itl", "single_stream")):  # per-token latency: a request's mean (TPOT) or each gap (ITL)
        return "tpot"
    if metric.startswith("e2e"):
        return "e2e"
    return "throughput"


@lru_cache(maxsize=1)
def _stored() -> dict[str, Any]:
    from aicap.sizing.core.documents import load_yaml

    node = resources.files("aicap.hardware_db").joinpath("validation/accuracy.yaml")
    if not node.is_file():
        return {}
    data = load_yaml(Path("hardware_db/validation/accuracy.yaml"), node.read_text(encoding="utf-8")) or {}
    return dict(data)


def error_bands() -> dict[str, float]:
    """Stored p90 absolute percentage error per metric class (empty before the first validation)."""
    return {k: float(v) for k, v in (_stored().get("p90_abs_error_pct") or {}).items()}


def bands_document(p90: dict[str, float], median: dict[str, float], cases: int, version: str) -> str:
    """YAML text of an accuracy file (what ``--write-bands`` writes)."""
    doc = {
        "generated_by": "aicap validate --write-bands (public cases: hardware_db/validation/published_cases.yaml)",
        "catalogue_version": version,
        "scored_metrics": cases,
        "p90_abs_error_pct": {k: round(v, 1) for k, v in sorted(p90.items())},
        "median_abs_error_pct": {k: round(v, 1) for k, v in sorted(median.items())},
    }
    return "# Error bands of the performance model (generated; do not edit by hand).\n" + yaml.safe_dump(doc, sort_keys=False)
