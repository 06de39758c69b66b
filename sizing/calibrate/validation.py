"""Scoring the performance model against published measurements (``aicap validate``).

Each case (schema: ``hardware_db/validation/README.md``) is predicted the way its kind prescribes:

* ``offline_throughput``: all requests queued, the running batch as large as fits memory (capped at
  the case's ``batch`` when given), output tokens/s of all replicas;
* ``static_batch``: exactly ``batch`` requests, prefill included;
* ``single_stream``: batch 1, decode tokens/s = 1/TPOT; TTFT and end-to-end at batch 1;
* ``prefill_latency``: TTFT at batch 1;
* ``server`` and ``closed_loop``: the benchmark replayed through the simulator
  (:mod:`aicap.sizing.calibrate.under_load`).

Every metric but ``output_tok_s_per_device`` is scored by ``|pred − meas| / meas``. Cases marked
``comparable: false``, or naming a model or device the catalogue lacks, are listed as skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from aicap.sizing.calibrate.accuracy import metric_class
from aicap.sizing.calibrate.case import METRICS, Case
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.documents import describe_validation_error, load_yaml, read_text
from aicap.sizing.core.engines import engine_for_framework
from aicap.sizing.core.errors import AicapError, InfeasibleError, InputError
from aicap.sizing.core.fields import TEXT_NUMBERS
from aicap.sizing.core.specs.device import DeviceSpec
from aicap.sizing.core.specs.efficiency import EfficiencySpec
from aicap.sizing.serve.estimate import EstimateRequest, estimate

EngineMemory = Mapping[str, Mapping[str, float]]  # engine id -> device family -> multiplier on its memory efficiency


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


def robust_loss(rows: list[ScoredMetric]) -> float:
    """Mean pseudo-Huber loss of the rows' log errors, ``ρ(ln(ŷ/y)/0.1)``, ``ρ(x) = 2(√(1 + x²) − 1)``; 1e9 without predictions.

    Quadratic for misses under about 10%, linear beyond, so that one case far off (a stack the model does
    not describe) cannot carry a fit. Used by every fit on these cases (family factors, engine multipliers).
    """
    x = np.array([math.log(r.predicted / r.measured) for r in rows if r.predicted and r.predicted > 0 and r.measured > 0]) / 0.1
    return float(np.mean(2.0 * (np.sqrt(1.0 + x * x) - 1.0))) if x.size else 1e9


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
    return {"n": int(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "max": float(a.max())}


CASE_SETS = {"published": "published_cases.yaml", "server": "server_cases.yaml"}


def default_cases_path(which: str = "published") -> Any:
    """The public cases shipped with aicap: ``published`` (no load) or ``server`` (under load)."""
    return resources.files("aicap.hardware_db").joinpath(f"validation/{CASE_SETS[which]}")


@lru_cache(maxsize=1)
def _datasets() -> dict[str, Any]:
    node = resources.files("aicap.hardware_db").joinpath("validation/datasets.yaml")
    return dict(load_yaml(Path("hardware_db/validation/datasets.yaml"), node.read_text(encoding="utf-8")))


def load_cases(path: Path | None = None, which: str = "published") -> list[dict[str, Any]]:
    """Read and check a cases file (YAML list, or CSV with the same columns and ``metric``/``value`` pairs).

    Parameters
    ----------
    path
        The cases file; ``None`` for the public cases shipped with aicap.
    which
        Which shipped set when ``path`` is ``None``: ``published`` or ``server`` (:data:`CASE_SETS`).

    Returns
    -------
    list[dict[str, Any]]
        One dictionary per case, its fields checked against :class:`Case`.

    Raises
    ------
    InputError
        One line naming the file, the line (or CSV row), the field and what was expected.
    """
    if path is None:
        if which not in CASE_SETS:
            raise InputError(f"unknown case set {which!r}; valid: {', '.join(CASE_SETS)}")
        where = CASE_SETS[which]
        text: str | None = default_cases_path(which).read_text(encoding="utf-8")
        data = load_yaml(Path(where), text)
    elif path.suffix.lower() == ".csv":
        return _cases_from_csv(path)
    else:
        where, text = str(path), read_text(path)
        data = load_yaml(path, text)
    if not isinstance(data, list):
        raise InputError(f"{where}:1: expected a list of cases")
    return [_check_case(c, where, text, i) for i, c in enumerate(data)]


def _check_case(case: Any, where: str, text: str | None, index: int | None, *, text_numbers: bool = False) -> dict[str, Any]:
    """Validate one case; errors read ``file:line: cases[i].field: ...``; ``text_numbers``: a CSV row's cells, text read as numbers."""
    try:
        return Case.model_validate(case, context=TEXT_NUMBERS if text_numbers else None).model_dump(exclude_unset=True)
    except ValidationError as exc:
        prefix: tuple[int, ...] = () if index is None else (index,)
        message = describe_validation_error(exc, where, text, prefix, model=Case)
        if index is not None:
            head, sep, rest = message.partition(f": [{index}]")
            message = f"{head}: cases[{index}]{rest}" if sep else message
        raise InputError(message) from None


def _cases_from_csv(path: Path) -> list[dict[str, Any]]:
    import csv

    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    try:
        reader = csv.DictReader(read_text(path).splitlines())
        missing = [c for c in ("id", "metric", "value") if c not in (reader.fieldnames or [])]
        if missing:  # a wide table (one column per metric) is the natural first guess: say what the format is
            metrics = sorted(set(reader.fieldnames or []) & set(METRICS))
            wide = f" ({', '.join(metrics[:3])}: a column per metric)" if metrics else ""
            raise InputError(f"{path}:1: the header lacks {', '.join(repr(c) for c in missing)}{wide}: a CSV of measurements has one "
                             "row per measured metric: columns id, model, hardware, kind, metric and value, and the setup (devices, tp, "
                             "weights_dtype, input_tokens, output_tokens, batch, ...), which a case's rows share; `aicap schema "
                             "cases` lists every field")  # fmt: skip
        for n, row in enumerate(reader, start=2):
            if None in row or None in row.values():
                raise InputError(f"{path}:{n}: row has {'more' if None in row else 'fewer'} fields than the header")
            value, metric, case_id = row.pop("value", None), row.pop("metric", None), row.get("id")
            if not metric or not value:
                raise InputError(f"{path}:{n}: each row needs a 'metric' name and a numeric 'value'")
            if not case_id:
                raise InputError(f"{path}:{n}: each row needs a case 'id'")
            fields = {k: v or None for k, v in row.items()}
            first, case = rows.setdefault(case_id, (n, fields))
            clash = [k for k, v in fields.items() if v is not None and case.get(k) != v]  # a blank cell repeats the case's
            if clash:  # a row of the same case must repeat its setup: it used to be scored against the first row's
                k = clash[0]
                raise InputError(f"{path}:{n}: case '{case_id}' has {k} {fields[k]!r} here but {case.get(k)!r} on line {first}; "
                                 "rows of one case share every field but metric and value (give each setup its own id)")  # fmt: skip
            if metric in case.get("metrics", {}):
                raise InputError(f"{path}:{n}: case '{case_id}' gives {metric} twice (also on an earlier row)")
            case.setdefault("metrics", {})[metric] = value
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV: {exc}") from None
    return [_check_case(case, f"{path}:{n}", None, None, text_numbers=True) for n, case in rows.values()]


#: Metrics of generated tokens, which a model that does not decode (an encoder) has none of (nor ``tpot_*``, ``itl_*``).
_GENERATED = frozenset({"single_stream_tok_s", "output_tok_s_total"})


def predict(case: dict[str, Any], cat: CatalogueLike, efficiency: Mapping[str, EfficiencySpec] | None = None,
            request_overheads: Mapping[str, float] | None = None,
            engine_memory: EngineMemory | None = None) -> dict[str, float]:  # fmt: skip
    """Predict every metric of a case (keys as in the case's ``metrics``).

    ``efficiency`` optionally replaces the catalogue's factors per family (used by calibration);
    ``request_overheads`` the per-request overhead [ms] of engines by id, in the simulated cases under load
    (used by the leave-one-source-out check of :mod:`aicap.sizing.calibrate.crossval`), and ``engine_memory``
    the engines' multipliers on their families' memory efficiency there (engine id → family → multiplier;
    given, it replaces the profiles' ``factors`` and a pair it does not name gets 1.0).
    """
    ds = _datasets()
    kind = case["kind"]
    if kind in {"server", "closed_loop"}:
        from aicap.sizing.calibrate.under_load import predict_under_load

        eff = _factors(case, cat.device(case["hardware"]), efficiency or {}, cat, engine_memory)
        return predict_under_load(case, cat, eff, (float(ds["sharegpt"]["input_tokens"]), float(ds["sharegpt"]["output_tokens"])),
                                  request_overheads)  # fmt: skip
    req = _request(case, cat, efficiency, engine_memory)
    if req.model.kind != "decoder" and (tokens := sorted(k for k in case["metrics"] if k in _GENERATED or k.startswith(("tpot_", "itl_")))):
        raise InputError(f"{req.model.id} is an {req.model.kind} model: it generates no tokens, so {tokens[0]} does not apply to it")
    res = estimate(req)
    if kind == "offline_throughput" and case.get("batch") and res.batch > case["batch"]:
        res = estimate(EstimateRequest(**{**req.__dict__, "batch": case["batch"]}))
    if not res.fits:  # a deployment that cannot start predicts nothing (and a fit must not learn from it)
        raise InfeasibleError(f"{req.model.id} on {res.deployment.device.id}: {res.shortfall}")
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


def _request(case: dict[str, Any], cat: CatalogueLike, efficiency: Mapping[str, EfficiencySpec] | None,
             engine_memory: EngineMemory | None = None) -> EstimateRequest:  # fmt: skip
    """The estimate a case without load asks for: its model, device, layout, batch, lengths and formats."""
    ds = _datasets()
    kind = case["kind"]
    i = case.get("input_tokens") or ds["sharegpt"]["input_tokens"]
    o = case.get("output_tokens")
    if o is None:
        o = ds["gptfast_output"]["output_tokens"] if kind == "single_stream" else ds["sharegpt"]["output_tokens"]
    model, device = cat.model(case["model"]), cat.device(case["hardware"])
    batch = case.get("batch") if kind in {"static_batch", "closed_loop"} else (1 if kind in {"single_stream", "prefill_latency"} else None)
    eff = _factors(case, device, efficiency or {}, cat, engine_memory)
    engine = engine_for_framework(cat, case.get("framework"))
    return EstimateRequest(model=model, device=device, efficiency=eff, runtime=engine.on(device),
                           devices=case.get("devices") or 1, tp=case.get("tp"), pp=case.get("pp"), batch=batch,
                           input_tokens=int(i), output_tokens=int(max(o, 1)), weights_dtype=case.get("weights_dtype"),
                           kv_dtype=case.get("kv_dtype"), best_batch=True)  # fmt: skip  # a published peak: its best batch


def with_layout(case: dict[str, Any], cat: CatalogueLike, efficiency: Mapping[str, EfficiencySpec] | None = None) -> dict[str, Any]:
    """The case with the tensor and pipeline degrees aicap picks for it when the case gives none.

    A case without ``tp`` makes every prediction search the layouts its device count allows (128 of them
    for 1,019 devices); a fit predicts each case hundreds of times, so it pins the layout ``efficiency``
    picks once. Cases under load, cases that give ``tp`` and cases that cannot be predicted come back as
    they are.
    """
    if case.get("tp") or case.get("kind") in {"server", "closed_loop"} or case.get("comparable") is False:
        return case
    try:
        dep = estimate(_request(case, cat, efficiency)).deployment
    except AicapError:
        return case
    return {**case, "tp": dep.tp, "pp": dep.pp}


def series(case: dict[str, Any]) -> str | None:
    """``major.minor`` of a case's ``framework_version`` (``"0.12"`` for 0.12.0), ``None`` when it has none."""
    version = str(case.get("framework_version") or "").strip()
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None


def stack_of(case: dict[str, Any]) -> tuple[str | None, str | None]:
    """The stack keys a case's factors are looked up under, most specific first: ``framework series``, ``framework``."""
    fw = case.get("framework")
    if fw is None:
        return None, None
    ver = series(case)
    return (f"{fw} {ver}" if ver else None), str(fw)


def _factors(case: dict[str, Any], device: DeviceSpec, over: Mapping[str, EfficiencySpec], cat: CatalogueLike,
             engine_memory: EngineMemory | None = None) -> EfficiencySpec:  # fmt: skip
    """The factors a case is predicted with, as its engine reaches them (:meth:`~aicap.sizing.core.specs.engine.EngineSpec.adjust`).

    The stack's (``family@framework series``, then ``family@framework``), else the family's; ``over``
    replaces the catalogue's entries (calibration), and ``engine_memory`` the engines' multipliers
    (:func:`predict`). The engine is the profile that names the case's ``framework``.
    """
    engine = engine_for_framework(cat, case.get("framework"))
    eff = _stack_factors(case, device, over, cat)
    if engine.spec is None:
        return eff
    return engine.spec.adjust(eff, None if engine_memory is None else engine_memory.get(engine.id, {}).get(device.family, 1.0))


def _stack_factors(case: dict[str, Any], device: DeviceSpec, over: Mapping[str, EfficiencySpec], cat: CatalogueLike) -> EfficiencySpec:
    keys = [k for k in stack_of(case) if k is not None]
    for key in keys:
        if f"{device.family}@{key}" in over:
            return over[f"{device.family}@{key}"]
    if device.family in over:
        return over[device.family]
    for key in keys:
        if f"{device.family}@{key}" in cat.efficiency:
            return cat.efficiency_for(device, key)
    return cat.efficiency_for(device, None)


def score(cases: list[dict[str, Any]], cat: CatalogueLike, efficiency: Mapping[str, EfficiencySpec] | None = None,
          request_overheads: Mapping[str, float] | None = None, engine_memory: EngineMemory | None = None,
          advance: Callable[[], None] | None = None) -> ValidationReport:  # fmt: skip
    """Predict and score every comparable case (optionally with replacement efficiency factors or request overheads: :func:`predict`).

    ``advance`` is called once per case scored (a progress bar's tick; the cases under load take seconds in all).
    """
    report = ValidationReport()
    for c in cases:
        metrics = {k: float(v) for k, v in c["metrics"].items() if k != "output_tok_s_per_device" and v}
        note, pred = "", None
        if c.get("comparable") is False:
            note = "not comparable (see case notes)"
        else:
            try:
                pred = predict(c, cat, efficiency, request_overheads, engine_memory)
            except AicapError as exc:
                note = f"skipped: {exc}"
        for k, v in sorted(metrics.items()):
            p = None if pred is None else pred.get(k)
            report.rows.append(ScoredMetric(c["id"], c["kind"], c["model"], c["hardware"], k, v, p, note if p is None else ""))
        if advance is not None:
            advance()
    return report
