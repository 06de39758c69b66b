"""Building a :class:`~aicap.sizing.core.fleet.Fleet` from a file, from flags, or the built-in example.

Command-line overrides (``--cloud``, ``--hardware``, ``--pricing``, ``--budget``, ``--objective``,
``--single-type``) replace the matching constraint of a fleet file.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.constraints import Objective, Search
from aicap.sizing.core.documents import line_of, load_yaml, read_text, validate_model
from aicap.sizing.core.dtypes import WEIGHT_DTYPES
from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.fleet import (
    MAX_REQUESTS_PER_S,
    MAX_TARGET_MS,
    MIN_REQUESTS_PER_S,
    PERCENTILES,
    Fleet,
    check_prefix_cached,
    repeated_name,
    repeated_name_message,
    too_large_rate,
    too_small_rate,
)
from aicap.sizing.core.plan import SCHEMA_VERSION, Plan
from aicap.sizing.core.specs.instance import PricingModel
from aicap.sizing.core.specs.speculative import SpeculativeConfig
from aicap.sizing.core.text_input import shown

if TYPE_CHECKING:  # imported where a plan file is read: sizing a fleet does not need the periodic plan's models
    from aicap.sizing.core.period_plan import PeriodPlan

CLOUDS = ("aws", "gcp", "azure", "on-prem")


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated option as its items (``"h100-sxm, l40s"`` -> ``["h100-sxm", "l40s"]``; ``None`` stays ``None``)."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


#: The constraint each command-line override replaces, and the option's flag.
_REPLACES = {
    "cloud": ("--cloud", "clouds"),
    "hardware": ("--hardware", "hardware"),
    "pricing": ("--pricing", "pricing"),
    "budget": ("--budget", "budget_usd_per_month"),
    "objective": ("--objective", "objective"),
    "engine": ("--engine", "engine"),
    "search": ("--search", "search"),
}


def _apply(doc: dict[str, Any], cloud: str | None = None, hardware: str | None = None, pricing: str | None = None,
           budget: float | None = None, objective: str | None = None, single_type: bool | None = None,
           engine: str | None = None, search: str | None = None,
           replaced: list[tuple[str, object, str, object]] | None = None) -> dict[str, Any]:  # fmt: skip
    """``doc`` with the overrides put in its constraints.

    Each constraint the document set and an override replaced (it replaces, not narrows: --cloud azure on clouds
    [aws, gcp]) goes to ``replaced`` as ``(flag, value, key, old)``.
    """
    raw = doc.get("constraints") or {}
    if not isinstance(raw, dict):
        raise InputError(f"constraints: expected a mapping (clouds, pricing, ...), got {type(raw).__name__}")
    cons = dict(raw)
    clouds = split_list(cloud)
    if clouds is not None:
        bad = [c for c in clouds if c not in CLOUDS]
        if bad:
            raise InputError(f"--cloud '{bad[0]}': valid choices: {', '.join(CLOUDS)}")
        cons["clouds"] = clouds
    if hardware is not None:
        cons["hardware"] = split_list(hardware)
    if pricing is not None:
        models = split_list(pricing) or [pricing]
        bad = [m for m in models if m not in get_args(PricingModel)]
        if bad:
            raise InputError(f"--pricing {excerpt(bad[0])}: valid choices: {', '.join(get_args(PricingModel))}")
        cons["pricing"] = models[0] if len(models) == 1 else models
    if budget is not None:
        if not (math.isfinite(budget) and budget > 0):
            raise InputError(f"--budget {budget:g}: must be a positive monthly amount in USD")
        cons["budget_usd_per_month"] = budget
    if objective is not None:
        if objective not in get_args(Objective):
            raise InputError(f"--objective {excerpt(objective)}: valid choices: {', '.join(get_args(Objective))}")
        if objective != "cost" and budget is None and cons.get("budget_usd_per_month") is None:
            raise InputError(
                f"--objective {excerpt(objective)} needs a budget: give --budget USD_PER_MONTH (or constraints.budget_usd_per_month)"
            )
        cons["objective"] = objective
    if single_type:
        cons["single_type"] = True
    if engine is not None:
        cons["engine"] = engine
    if search is not None:
        if search not in get_args(Search):
            raise InputError(f"--search {excerpt(search)}: valid choices: {', '.join(get_args(Search))}")
        cons["search"] = search
    given = {
        "cloud": cloud,
        "hardware": hardware,
        "pricing": pricing,
        "budget": budget,
        "objective": objective,
        "engine": engine,
        "search": search,
    }
    for name, (flag, key) in _REPLACES.items():
        if replaced is not None and given[name] is not None and raw.get(key) is not None:
            replaced.append((flag, given[name], key, raw[key]))
    return {**doc, "constraints": cons}


def _read_profiles(doc: dict[str, Any], path: Path, text: str) -> dict[str, Any]:
    """Replace ``requests_per_s: {csv: FILE}`` and ``{trace: FILE}`` by the hourly rates they hold (paths relative to ``path``'s folder).

    An error in the profile file is prefixed with the fleet's ``file:line`` that names it (``fleet.yaml:5: requests_per_s.csv:``).
    """
    from aicap.sizing.plan.profile_files import profile_from_trace, read_csv_profile

    workloads = doc.get("workloads")
    if not isinstance(workloads, list):
        return doc
    out = []
    for k, w in enumerate(workloads):
        rate = w.get("requests_per_s") if isinstance(w, dict) else None
        if isinstance(rate, dict) and len(rate) == 1 and ("csv" in rate or "trace" in rate):
            ((kind, name),) = rate.items()
            line = line_of(text, ["workloads", k, "requests_per_s", kind])
            where = f"{path}{f':{line}' if line else ''}: requests_per_s.{kind}"
            if not isinstance(name, str) or not name:
                raise InputError(f"{where}: needs a file name, got {name!r}")
            file = path.parent / name
            try:
                w = {**w, "requests_per_s": read_csv_profile(file) if kind == "csv" else profile_from_trace(file)}
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
        out.append(w)
    return {**doc, "workloads": out}


def _model_files(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """Point a workload's ``model`` that names a file or folder next to the fleet file at it (``base / model``).

    A model given as a relative path in a fleet file means the file beside the fleet, as profile files do,
    wherever aicap is run from; catalogue ids and paths found nowhere next to it are left as written.
    """
    if base == Path(".") or not isinstance(doc.get("workloads"), list):
        return doc
    return {**doc, "workloads": [_beside(w, base) for w in doc["workloads"]]}


def _beside(w: Any, base: Path, *, unless_found: bool = False) -> Any:
    """Workload ``w`` with a path-like ``model`` rewritten to ``base / model`` where that exists.

    With ``unless_found``, only when the path as written is not found from the working directory.
    """
    name = w.get("model") if isinstance(w, dict) else None
    if not _path_like(name) or (unless_found and _exists(Path(str(name)))) or not _exists(base / str(name)):
        return w
    return {**w, "model": str(base / str(name))}


def _path_like(name: object) -> bool:
    """Whether a ``model`` value names a file or folder rather than a catalogue id.

    A model file's suffix or a path separator; a bare name is a catalogue id first, as ``Catalogue.model``
    reads it.
    """
    return (isinstance(name, str) and bool(name) and not Path(name).is_absolute()
            and (name.endswith((".json", ".yaml", ".yml")) or "/" in name or os.sep in name))  # fmt: skip


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte: not a file
        return False


def load_fleet(path: Path | str, replaced: list[tuple[str, object, str, object]] | None = None, **overrides: Any) -> Fleet:
    """Read and validate a fleet file; errors name file:line and the field; model and profile files are read relative to it.

    The file's constraints that ``overrides`` replace go to ``replaced`` as ``(flag, value, key, old value)``.
    """
    text = read_text(Path(path))
    path = shown(Path(path))  # standard input's errors name <stdin>; relative files are read from the working folder either way
    doc = load_yaml(path, text)
    if not isinstance(doc, dict):
        raise InputError(f"{path}:1: a fleet file is a mapping with 'workloads' (and optional 'constraints')")
    if (other := _other_report(doc)) is not None:
        raise InputError(f"{path}: {other}, not a fleet file (a mapping with 'workloads' and optional 'constraints')")
    if "totals" in doc and "generated_by" in doc:
        raise InputError(f"{path}: a plan (what `aicap size --output` writes), not a fleet file: its 'inputs' section is the fleet it "
                         "was sized from; simulate, export or check the plan itself")  # fmt: skip
    _unique_names(doc, path, text)
    _no_internal_fields(doc, path, text)
    applied = _apply(_model_files(_read_profiles(doc, path, text), path.parent), replaced=replaced, **overrides)
    return validate_model(Fleet, applied, str(path), text)


#: Workload fields aicap sets on the pools it splits a disaggregated workload into, not for a fleet file to give.
INTERNAL_FIELDS = ("disaggregated_role",)


def _no_internal_fields(doc: dict[str, Any], path: Path, text: str) -> None:
    """Refuse a workload giving a field aicap sets itself, at its line (a prefill role dropped the TPOT target without a word)."""
    workloads = doc.get("workloads")
    for k, w in enumerate(workloads if isinstance(workloads, list) else []):
        for key in INTERNAL_FIELDS:
            if isinstance(w, dict) and key in w:
                line = line_of(text, ("workloads", k, key))
                raise InputError(f"{path}:{line or 1}: workloads[{k}].{key}: set by aicap on the pools it splits a disaggregated "
                                 "workload into, not in a fleet file; give the workload disaggregation: {} instead")  # fmt: skip


def _unique_names(doc: dict[str, Any], path: Path, text: str) -> None:
    """The fleet's repeated-name check, at the line of the repeat (after validation it could only name the document)."""
    workloads = doc.get("workloads")
    if not isinstance(workloads, list):
        return
    repeat = repeated_name([w.get("name") if isinstance(w, dict) else None for w in workloads])
    if repeat is not None:
        line = line_of(text, ("workloads", repeat[0], "name"))
        raise InputError(f"{path}:{line or 1}: {repeated_name_message(workloads[repeat[0]]['name'], *repeat)}")


def builtin_fleet(**overrides: Any) -> Fleet:
    """The example fleet shipped with aicap (chat, long-context summariser, embeddings)."""
    text = resources.files("aicap.hardware_db").joinpath("default_fleet.yaml").read_text(encoding="utf-8")
    doc = load_yaml(Path("default_fleet.yaml"), text)
    return validate_model(Fleet, _apply(doc, **overrides), "built-in example fleet", text)


def build_fleet(*, model: str, rate: float | None, input_tokens: int, output_tokens: int, ttft_ms: float | None,
                tpot_ms: float | None, percentile: str, precision: str | None, arrival_cv: float = 1.0,
                prefix_cached: float = 0.0, speculative: SpeculativeConfig | None = None,
                disaggregation: dict[str, Any] | None = None, eager: bool = False, **overrides: Any) -> Fleet:  # fmt: skip
    """A one-workload fleet from ``aicap size --model ...`` flags (errors name the flags)."""
    if rate is None and overrides.get("objective") != "throughput":
        raise InputError("--rate is required with --model (requests per second), except with --objective throughput")
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise InputError(f"--rate {rate:g}: must be a positive, finite number of requests per second")
    if rate is not None and rate < MIN_REQUESTS_PER_S:
        raise InputError(f"--rate {rate:g}: {too_small_rate()}")
    if rate is not None and rate > MAX_REQUESTS_PER_S:
        raise InputError(f"--rate {rate:g}: {too_large_rate()}")
    if not (math.isfinite(arrival_cv) and 0 <= arrival_cv <= 10):
        raise InputError(f"--arrival-cv {arrival_cv}: must be between 0 (constant arrivals) and 10; 1 is Poisson")
    check_prefix_cached(prefix_cached)
    if percentile not in PERCENTILES:
        raise InputError(f"--percentile '{percentile}': valid choices: {', '.join(PERCENTILES)}")
    for name, v in (("--input-tokens", input_tokens), ("--output-tokens", output_tokens)):
        if v < 1:
            raise InputError(f"{name} {v}: must be a positive number of tokens")
    for name, t in (("--ttft-ms", ttft_ms), ("--tpot-ms", tpot_ms)):
        if t is not None and not (math.isfinite(t) and 0 < t <= MAX_TARGET_MS):
            raise InputError(f"{name} {t:g}: must be a positive number of milliseconds, at most {MAX_TARGET_MS:,.0f} (a day)")
    wl: dict[str, Any] = {"name": model.replace("/", "-").replace(".json", "") or "workload", "model": model, "requests_per_s": rate,
                          "input_tokens": input_tokens, "output_tokens": output_tokens, "arrival_cv": float(arrival_cv),
                          "slo": {"ttft_ms": ttft_ms, "tpot_ms": tpot_ms, "percentile": percentile}}  # fmt: skip
    if prefix_cached:
        wl["prefix_cached_share"] = float(prefix_cached)
    if speculative is not None:
        wl["speculative"] = speculative.model_dump(exclude_none=True)
    if eager:
        wl["eager"] = True
    if disaggregation is not None:
        wl["disaggregation"] = {k: v for k, v in disaggregation.items() if v is not None}
    if precision is not None:
        wl["precisions"] = split_list(precision)
        bad = [p for p in wl["precisions"] or [] if p not in WEIGHT_DTYPES]
        if bad:
            raise InputError(f"--precision {excerpt(bad[0])}: valid choices: {', '.join(WEIGHT_DTYPES)}")
    wl["name"] = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in wl["name"]).strip("-.") or "workload"
    return validate_model(Fleet, _apply({"schema_version": 1, "workloads": [wl]}, **overrides), "command-line options")


def _read_plan(path: Path) -> Plan | PeriodPlan | None:
    """Read a plan or a plan over demand periods, or ``None`` if ``path`` is a fleet file (the file is read once)."""
    from aicap.sizing.core.documents import load_document
    from aicap.sizing.core.period_plan import PeriodPlan

    text = read_text(path)
    path = shown(path)
    doc = load_document(path, text)
    if not isinstance(doc, dict):
        raise InputError(f"{path}:1: expected a plan (JSON/YAML from `aicap size --output`) or a fleet file")
    if (other := _other_report(doc)) is not None:
        raise InputError(f"{path}: {other}, not a plan; a plan is what `aicap size --output` writes")
    if _is_model(doc):
        raise InputError(f"{path}: a model (a Hugging Face config.json or a model YAML), not a plan or a fleet file: give it with "
                         "--model (-m)")  # fmt: skip
    plan: Plan | PeriodPlan
    if doc.get("kind") == "periods":
        plan = validate_model(PeriodPlan, doc, str(path), text)
    else:
        if not ({"totals", "generated_by", "solver", "instances"} & set(doc)) and doc.get("schema_version") != SCHEMA_VERSION:
            import difflib

            if "workloads" not in doc and not difflib.get_close_matches("workloads", [str(k) for k in doc], n=1, cutoff=0.7):
                raise InputError(f"{path}: neither a plan (what `aicap size --output` writes) nor a fleet file (a mapping with "
                                 f"'workloads'); its keys: {', '.join(sorted(str(k) for k in doc)[:8]) or 'none'}")  # fmt: skip
            return None  # a fleet file: no key only a plan has
        if doc.get("schema_version") != SCHEMA_VERSION:
            got = str(doc.get("schema_version"))[:20]
            raise InputError(f"{path}: plan schema_version {got} is not supported; this aicap reads {SCHEMA_VERSION}: "
                             "re-create the plan with `aicap size --output`")  # fmt: skip
        plan = validate_model(Plan, _plan_model_files(doc, path.parent), str(path), text)
    if (why := plan.inconsistency()) is not None:
        raise InputError(f"{path}: {why}: the plan was edited by hand or cut short; size it again (`aicap size --output`)")
    return plan


#: Keys that together mark another command's JSON report (none of them is a plan's or a fleet's), and what it is.
_REPORTS = ((frozenset({"step_time_s", "memory_gib_per_device"}), "an `aicap train` report"),
            (frozenset({"setup", "finished", "ttft_ms"}), "an `aicap simulate` report"),
            (frozenset({"policies", "percentile"}), "an `aicap simulate --compare-policies` report"),
            (frozenset({"ttft_s", "tpot_s", "memory_gib"}), "an `aicap estimate` report"),
            (frozenset({"alternatives", "notes"}), "an `aicap whatif` report"),
            (frozenset({"rows", "summary", "cases_file"}), "an `aicap validate` report"))  # fmt: skip


def _is_model(doc: dict[str, Any]) -> bool:
    """Whether ``doc`` describes a model: a Hugging Face config (``architectures``, ``model_type``) or aicap's model YAML."""
    if "workloads" in doc or "totals" in doc:
        return False
    keys = set(doc)
    hf = bool({"architectures", "model_type"} & keys) or {"hidden_size", "num_hidden_layers"} <= keys
    ours = {"hidden_size", "num_layers"} <= keys or ({"id", "kind", "architecture"} <= keys and doc.get("kind") in _model_kinds())
    return hf or ours


def _model_kinds() -> set[str]:
    """The ``kind`` of each of aicap's model types (``decoder``, ``encoder``, ``generic``), read from the specs."""
    from typing import get_args

    from aicap.sizing.core.specs.model import AnyModel

    return {str(k) for m in get_args(AnyModel) for k in get_args(m.model_fields["kind"].annotation)}


def _other_report(doc: dict[str, Any]) -> str | None:
    """What another aicap command's report is, when ``doc`` is one (it has all of one entry's keys of :data:`_REPORTS`)."""
    if "totals" in doc or "workloads" in doc:
        return None
    return next((what for keys, what in _REPORTS if keys <= set(doc)), None)


def _plan_model_files(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """A plan whose model is a file path that is not found from here but is beside the plan: read it there.

    A plan records a model file as it was given (relative to where ``aicap size`` ran); a plan written
    next to that file is then read correctly from any directory.
    """
    if base == Path("."):
        return doc
    out = dict(doc)
    if isinstance(doc.get("workloads"), list):
        out["workloads"] = [_beside(w, base, unless_found=True) for w in doc["workloads"]]
    inputs = doc.get("inputs")
    if isinstance(inputs, dict) and isinstance(inputs.get("workloads"), list):
        out["inputs"] = {**inputs, "workloads": [_beside(w, base, unless_found=True) for w in inputs["workloads"]]}
    return out


def load_plan(path: Path | str) -> Plan | None:
    """Read a plan (what ``aicap size --output`` writes), or ``None`` if ``path`` is a fleet file.

    JSON plans are parsed as JSON (``2e3`` is a number), YAML plans with the safe loader; either is
    validated by the typed :class:`~aicap.sizing.core.plan.Plan`, so errors name file:field. A plan
    over demand periods is refused in one line (the callers read static plans).
    """
    from aicap.sizing.core.period_plan import PeriodPlan

    path = Path(path)
    plan = _read_plan(path)
    if isinstance(plan, PeriodPlan):
        raise InputError(f"{path}: a plan over demand periods; this command reads static plans only for now "
                         "(size the fleet with one rate per workload for that)")  # fmt: skip
    return plan


def fleet_budget(path: Path | str) -> tuple[float | None, bool]:
    """A fleet file's ``constraints.budget_usd_per_month`` (``None`` for a plan file, or a fleet without one), and whether it caps.

    It caps the plan's cost under the ``cost`` objective; under ``latency`` or ``throughput`` it is what the plan is sized to
    spend, not a limit of its own.
    """
    path = Path(path)
    if _read_plan(path) is not None:
        return None, False
    c = load_fleet(path).constraints
    return c.budget_usd_per_month, c.objective == "cost"


def any_plan_or_size(path: Path | str, cat: CatalogueLike, *, budget_as_limit: bool = False) -> Plan | PeriodPlan:
    """A plan (static or over demand periods) from a plan file, or by planning a fleet file as ``aicap size`` would.

    ``budget_as_limit``: the fleet's ``budget_usd_per_month`` is a gate's limit, not a constraint of its cheapest plan
    (``cost`` objective): the plan is sized without it, so that a budget below the cheapest plan is a breach of the
    limit (exit 1 in ``aicap check``) with the plan's cost, not an infeasible fleet (exit 3).
    """
    path = Path(path)
    plan = _read_plan(path)
    if plan is not None:
        return plan
    fleet = load_fleet(path)
    if budget_as_limit and fleet.constraints.objective == "cost":
        fleet = fleet.model_copy(update={"constraints": fleet.constraints.model_copy(update={"budget_usd_per_month": None})})
    if any(w.profile is not None for w in fleet.workloads) or len(fleet.constraints.pricing_models) > 1:
        from aicap.sizing.plan.periods import size_periods

        return size_periods(fleet, cat)
    from aicap.sizing.plan.sizer import size

    return size(fleet, cat)


def check_plan_ids(plan: Plan, cat: CatalogueLike, path: Path | str) -> None:
    """Refuse a plan whose workloads name an engine the loaded catalogue lacks, naming the file and the field.

    A plan is read long after it was written, perhaps against other catalogue overlays; an engine it
    names that is not loaded is one line naming ``path`` and ``workloads[i].engine``.

    Raises
    ------
    InputError
        For the first workload whose engine is unknown.
    """
    from aicap.sizing.core.errors import UnknownIdError

    known = sorted({*cat.engines, "generic"})
    for i, w in enumerate(plan.workloads):
        if w.engine not in known:
            raise InputError(f"{path}: workloads[{i}].engine: {UnknownIdError('engine', w.engine, known)}")
