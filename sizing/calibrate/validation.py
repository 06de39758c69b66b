"""Scoring the performance model against published measurements (``aicap validate``).

Each case (schema: ``hardware_db/validation/README.md``) is predicted the way its kind prescribes:

* ``offline_throughput``: all requests queued, the running batch as large as fits memory (capped at
  the case's ``batch`` when given), output tokens/s of all replicas;
* ``static_batch``: exactly ``batch`` requests, prefill included;
* ``single_stream``: batch 1, decode tokens/s = 1/TPOT; TTFT and end-to-end at batch 1;
* ``prefill_latency``: TTFT at batch 1.

Every metric but ``output_tok_s_per_device`` is scored by ``|pred − meas| / meas``. Cases marked
``comparable: false``, or naming a model or device the catalogue lacks, are listed as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from aicap.sizing.calibrate.accuracy import metric_class
from aicap.sizing.core.documents import load_yaml
from aicap.sizing.core.errors import AicapError, InputError
from aicap.sizing.serve.estimate import EstimateRequest, estimate

KINDS = ("offline_throughput", "static_batch", "single_stream", "prefill_latency", "server", "closed_loop")


@dataclass(frozen=True)
class ScoredMetric:
    """One measured metric of one case with its prediction (``predicted`` None when skipped)."""

    case_id: str
    kind: str
    model: str
    hardware: str
    metric: str
    measured: float
    predicted: float | None
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        """Absolute percentage error, ``100·|pred − meas|/meas``."""
        if self.predicted is None:
            return None
        return 100.0 * abs(self.predicted - self.measured) / self.measured


@dataclass
class ValidationReport:
    """All scored metrics plus summaries by kind, hardware and metric class."""

    rows: list[ScoredMetric] = field(default_factory=list)

    @property
    def scored(self) -> list[ScoredMetric]:
        """Rows with a prediction."""
        return [r for r in self.rows if r.predicted is not None]

    def summary(self, key: str) -> dict[str, dict[str, float]]:
        """Median, p90 and max absolute error (%) and count, grouped by ``kind``, ``hardware`` or ``class``."""
        groups: dict[str, list[float]] = {}
        for r in self.scored:
            g = metric_class(r.metric) if key == "class" else str(getattr(r, key))
            groups.setdefault(g, []).append(float(r.error_pct or 0.0))
        groups["all"] = [float(r.error_pct or 0.0) for r in self.scored]
        return {g: _stats(v) for g, v in sorted(groups.items()) if v}


def _stats(v: list[float]) -> dict[str, float]:
    a = np.asarray(v)
    return {"n": float(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "max": float(a.max())}


def default_cases_path() -> Any:
    """The public cases shipped with aicap."""
    return resources.files("aicap.hardware_db").joinpath("validation/published_cases.yaml")


@lru_cache(maxsize=1)
def _datasets() -> dict[str, Any]:
    node = resources.files("aicap.hardware_db").joinpath("validation/datasets.yaml")
    return dict(load_yaml(Path("hardware_db/validation/datasets.yaml"), node.read_text(encoding="utf-8")))


def load_cases(path: Path | None = None) -> list[dict[str, Any]]:
    """Read a cases file (YAML list, or CSV with the same columns and ``metric``/``value`` pairs)."""
    if path is None:
        text = default_cases_path().read_text(encoding="utf-8")
        data = load_yaml(Path("published_cases.yaml"), text)
    elif path.suffix == ".csv":
        data = _cases_from_csv(path)
    else:
        data = load_yaml(path)
    if not isinstance(data, list):
        raise InputError(f"{path or 'published_cases.yaml'}: expected a list of cases")
    for i, c in enumerate(data):
        missing = [k for k in ("id", "model", "hardware", "kind", "metrics") if not isinstance(c, dict) or c.get(k) is None]
        if missing:
            raise InputError(f"{path}: cases[{i}]: missing required field(s): {', '.join(missing)}")
        if c["kind"] not in KINDS:
            raise InputError(f"{path}: cases[{i}].kind: '{c['kind']}' is not one of {', '.join(KINDS)}")
    return list(data)


def _cases_from_csv(path: Path) -> list[dict[str, Any]]:
    import csv

    from aicap.sizing.core.documents import read_text

    cases: dict[str, dict[str, Any]] = {}
    ints = {"devices", "tp", "pp", "dp", "input_tokens", "output_tokens", "batch"}
    for n, row in enumerate(csv.DictReader(read_text(path).splitlines()), start=2):
        try:
            value = float(row.pop("value"))
            metric = row.pop("metric")
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{n}: each row needs a 'metric' name and a numeric 'value'") from None
        case = cases.setdefault(row["id"], {k: (int(v) if k in ints and v else (v or None)) for k, v in row.items()})
        case.setdefault("metrics", {})[metric] = value
        case.setdefault("comparable", True)
    return list(cases.values())


def predict(case: dict[str, Any], cat: Any, efficiency: dict[str, Any] | None = None) -> dict[str, float]:
    """Predict every metric of a case (keys as in the case's ``metrics``).

    ``efficiency`` optionally replaces the catalogue's factors per family (used by calibration).
    """
    ds = _datasets()
    kind = case["kind"]
    i = case.get("input_tokens") or ds["sharegpt"]["input_tokens"]
    o = case.get("output_tokens")
    if o is None:
        o = ds["gptfast_output"]["output_tokens"] if kind == "single_stream" else ds["sharegpt"]["output_tokens"]
    model, device = cat.model(case["model"]), cat.device(case["hardware"])
    batch = case.get("batch") if kind in {"static_batch", "closed_loop"} else (1 if kind in {"single_stream", "prefill_latency"} else None)
    fw = case.get("framework")
    over = efficiency or {}
    eff = over.get(f"{device.family}@{fw}") or over.get(device.family) or cat.efficiency_for(device, fw)
    req = EstimateRequest(model=model, device=device, efficiency=eff, runtime=cat.runtime_spec,
                          devices=case.get("devices") or 1, tp=case.get("tp"), pp=case.get("pp"), batch=batch,
                          input_tokens=int(i), output_tokens=int(max(o, 1)), weights_dtype=case.get("weights_dtype"),
                          kv_dtype=case.get("kv_dtype"))  # fmt: skip
    res = estimate(req)
    if kind == "offline_throughput" and case.get("batch") and res.batch > case["batch"]:
        res = estimate(EstimateRequest(**{**req.__dict__, "batch": case["batch"]}))
    m, r = res.metrics, res.replicas
    out = {
        "output_tok_s_total": float(m.output_tokens_per_s) * r,
        "total_tok_s_total": float(m.total_tokens_per_s) * r,
        "requests_s": float(m.requests_per_s) * r,
        "single_stream_tok_s": 1.0 / float(m.decode.total),
    }
    for stat in ("mean", "p50", "p99"):
        out[f"ttft_ms_{stat}"] = float(m.ttft_s) * 1e3
        out[f"tpot_ms_{stat}"] = float(m.decode.total if kind == "single_stream" else m.tpot_s) * 1e3
        out[f"e2e_ms_{stat}"] = float(m.e2e_s) * 1e3
    return out


def score(cases: list[dict[str, Any]], cat: Any, efficiency: dict[str, Any] | None = None) -> ValidationReport:
    """Predict and score every comparable case (optionally with replacement efficiency factors)."""
    report = ValidationReport()
    for c in cases:
        metrics = {k: float(v) for k, v in c["metrics"].items() if k != "output_tok_s_per_device" and v}
        note, pred = "", None
        if c.get("comparable") is False:
            note = "not comparable (see case notes)"
        else:
            try:
                pred = predict(c, cat, efficiency)
            except AicapError as exc:
                note = f"skipped: {exc}"
        for k, v in sorted(metrics.items()):
            p = None if pred is None else pred.get(k)
            report.rows.append(ScoredMetric(c["id"], c["kind"], c["model"], c["hardware"], k, v, p, note if p is None else ""))
    return report
