"""Error bands: how far predictions strayed from published measurements, per metric class.

``aicap validate --write-bands`` scores the public cases and stores, per metric class (TTFT, TPOT,
throughput), the 90th percentile of the absolute percentage error in
``hardware_db/validation/accuracy.yaml``: once for the cases without load (what an estimate predicts: an
idle TTFT, a TPOT at a batch) and once, under ``under_load``, for the cases under load replayed in the
simulator (what a plan promises: latency percentiles at its load). Estimates carry the first bands,
plans the second. A test re-scores the cases and fails when the stored bands are stale.
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


def error_bands(under_load: bool = False) -> dict[str, float]:
    """Stored p90 absolute percentage error per metric class (empty before the first validation).

    ``under_load``: the bands of the cases under load (a plan's latency percentiles), else those without load.
    """
    node = (_stored().get("under_load") or {}) if under_load else _stored()
    return {k: float(v) for k, v in (node.get("p90_abs_error_pct") or {}).items()}


Bands = tuple[dict[str, float], dict[str, float], int]
"""p90 and median absolute % error per metric class, and the number of metrics scored."""


def bands_document(no_load: Bands, under_load: Bands, version: str) -> str:
    """YAML text of an accuracy file (what ``--write-bands`` writes): bands without load, and ``under_load``."""

    def part(b: Bands) -> dict[str, Any]:
        p90, median, n = b
        return {"scored_metrics": n, "p90_abs_error_pct": {k: round(v, 1) for k, v in sorted(p90.items())},
                "median_abs_error_pct": {k: round(v, 1) for k, v in sorted(median.items())}}  # fmt: skip

    doc = {
        "generated_by": "aicap validate --write-bands (public cases: hardware_db/validation/published_cases.yaml without load, "
        "server_cases.yaml under load)",
        "catalogue_version": version,
        **part(no_load),
        "under_load": part(under_load),
    }
    return "# Error bands of the performance model (generated; do not edit by hand).\n" + yaml.safe_dump(doc, sort_keys=False)
