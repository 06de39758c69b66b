"""Building a :class:`~aicap.sizing.core.fleet.Fleet` from a file, from flags, or the built-in example.

Command-line overrides (``--cloud``, ``--hardware``, ``--pricing``, ``--budget``, ``--objective``,
``--single-type``) replace the matching constraint of a fleet file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from aicap.sizing.core.documents import load_yaml, read_text, validate_model
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import PERCENTILES, Fleet

CLOUDS = ("aws", "gcp", "azure")


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _apply(doc: dict[str, Any], cloud: str | None = None, hardware: str | None = None, pricing: str | None = None,
           budget: float | None = None, objective: str | None = None, single_type: bool | None = None) -> dict[str, Any]:  # fmt: skip
    cons = dict(doc.get("constraints") or {})
    clouds = _split(cloud)
    if clouds is not None:
        bad = [c for c in clouds if c not in CLOUDS]
        if bad:
            raise InputError(f"--cloud '{bad[0]}': valid choices: {', '.join(CLOUDS)}")
        cons["clouds"] = clouds
    if hardware is not None:
        cons["hardware"] = _split(hardware)
    if pricing is not None:
        cons["pricing"] = pricing
    if budget is not None:
        if budget <= 0:
            raise InputError(f"--budget {budget}: must be a positive monthly amount in USD")
        cons["budget_usd_per_month"] = budget
    if objective is not None:
        cons["objective"] = objective
    if single_type:
        cons["single_type"] = True
    return {**doc, "constraints": cons}


def load_fleet(path: Path, **overrides: Any) -> Fleet:
    """Read and validate a fleet file; errors name file:line and the field."""
    text = read_text(path)
    doc = load_yaml(path, text)
    if not isinstance(doc, dict):
        raise InputError(f"{path}:1: a fleet file is a mapping with 'workloads' (and optional 'constraints')")
    return validate_model(Fleet, _apply(doc, **overrides), str(path), text)


def builtin_fleet(**overrides: Any) -> Fleet:
    """The example fleet shipped with aicap (chat, long-context summariser, embeddings)."""
    text = resources.files("aicap.hardware_db").joinpath("default_fleet.yaml").read_text(encoding="utf-8")
    doc = load_yaml(Path("default_fleet.yaml"), text)
    return validate_model(Fleet, _apply(doc, **overrides), "built-in example fleet", text)


def build_fleet(*, model: str, rate: float | None, input_tokens: int, output_tokens: int, ttft_ms: float | None,
                tpot_ms: float | None, percentile: str, precision: str | None, **overrides: Any) -> Fleet:  # fmt: skip
    """A one-workload fleet from ``aicap size --model ...`` flags."""
    if rate is None:
        raise InputError("--rate is required with --model (requests per second)")
    if rate <= 0:
        raise InputError(f"--rate {rate}: must be a positive number of requests per second")
    if percentile not in PERCENTILES:
        raise InputError(f"--percentile '{percentile}': valid choices: {', '.join(PERCENTILES)}")
    for name, v in (("--input-tokens", input_tokens), ("--output-tokens", output_tokens)):
        if v < 1:
            raise InputError(f"{name} {v}: must be a positive number of tokens")
    for name, t in (("--ttft-ms", ttft_ms), ("--tpot-ms", tpot_ms)):
        if t is not None and t <= 0:
            raise InputError(f"{name} {t}: must be positive")
    wl: dict[str, Any] = {"name": model.replace("/", "-").replace(".json", "") or "workload", "model": model, "requests_per_s": rate,
                          "input_tokens": input_tokens, "output_tokens": output_tokens,
                          "slo": {"ttft_ms": ttft_ms, "tpot_ms": tpot_ms, "percentile": percentile}}  # fmt: skip
    if precision is not None:
        wl["precisions"] = _split(precision)
    wl["name"] = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in wl["name"]).strip("-.") or "workload"
    return validate_model(Fleet, _apply({"schema_version": 1, "workloads": [wl]}, **overrides), "command-line options")


def load_plan(path: Path) -> dict[str, Any] | None:
    """Read a plan document (what ``aicap size --output`` writes), or ``None`` if ``path`` is a fleet file."""
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}:1: expected a plan (JSON/YAML from `aicap size --output`) or a fleet file")
    if "totals" not in doc:
        return None
    missing = [k for k in ("schema_version", "totals", "workloads", "instances") if k not in doc]
    if missing:
        raise InputError(f"{path}: plan is missing {', '.join(missing)}; re-create it with `aicap size --output`")
    if doc["schema_version"] != 1:
        raise InputError(f"{path}: plan schema_version {doc['schema_version']!r} is not supported; this aicap reads 1")
    return doc


def plan_or_size(path: Path, cat: Any) -> dict[str, Any]:
    """A plan document from a plan file, or by sizing a fleet file."""
    plan = load_plan(path)
    if plan is not None:
        return plan
    from aicap.sizing.plan.sizer import size

    return size(load_fleet(path), cat).to_dict()
