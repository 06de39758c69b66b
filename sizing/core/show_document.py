"""The model document ``aicap models show ID -f yaml`` writes and ``--model FILE.yaml`` reads back.

Its top level holds the model's identity and provenance (:data:`TOP_FIELDS`), its parameter counts under
``params`` and everything else under ``architecture``; it also reports what aicap derives from those
(:data:`DERIVED_FIELDS`: attention kind, KV-cache bytes per token, weights in GiB, the derived parameter
counts). Read back, a key the format does not have is refused at its line (a misspelt ``checkpoint_dtyp``
would otherwise leave the model in its native format without a word), and a derived figure that no longer
matches the fields it comes from is reported (:func:`stale_figures`): editing ``kv_cache_bytes_per_token``
changes nothing, the architecture sets it, while an edited architecture leaves the figures stale,
harmlessly. The README's "Models" paragraph documents the format.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aicap.sizing.core.doc_errors import line_of
from aicap.sizing.core.documents import describe_validation_error, first_error
from aicap.sizing.core.errors import InputError, did_you_mean, excerpt

#: The model's own fields at the top level; its other fields are under ``architecture``.
TOP_FIELDS = ("id", "name", "kind", "family", "source", "published_params_source", "notes", "checkpoint_bytes", "checkpoint_dtype",
              "native_dtype", "flops_per_item", "item")  # fmt: skip

#: What the document reports that aicap derives from the other fields (top level).
DERIVED_FIELDS = ("attention", "kv_cache_bytes_per_token", "state_bytes_per_sequence", "weights_gib_native")

#: Keys of ``params``: the published counts are the model's; the rest is derived.
PARAMS_FIELDS = ("derived", "derived_active", "published", "published_active", "derived_vs_published_pct")
_PARAMS_DERIVED = ("derived", "derived_active", "derived_vs_published_pct")


def is_show_document(doc: dict[str, Any]) -> bool:
    """Whether a mapping is a ``models show`` document (it has ``architecture``, or is a generic model with ``params``)."""
    return "architecture" in doc or ("params" in doc and doc.get("kind") == "generic")


def _where(path: str, text: str, loc: tuple[str, ...]) -> str:
    line = line_of(text, loc, key=True)
    return f"{path}:{line}" if line else path


def check_keys(doc: dict[str, Any], path: str, text: str) -> None:
    """Refuse a key the document format does not have, at its line, with the nearest valid one.

    Raises
    ------
    InputError
        For an unknown top-level or ``params`` key, or a ``params`` or ``architecture`` that is not a mapping.
    """
    valid = [*TOP_FIELDS, "params", "architecture", *DERIVED_FIELDS]
    for key in doc:
        if key not in valid:
            raise InputError(f"{_where(path, text, (str(key),))}: unknown field {excerpt(str(key))} in a models show document: "
                             f"{did_you_mean(str(key), valid)}valid top-level fields: {', '.join(valid)}")  # fmt: skip
    for block in ("params", "architecture"):
        if block in doc and not isinstance(doc[block], dict):
            raise InputError(f"{_where(path, text, (block,))}: {block} must be a mapping, got {excerpt(str(doc[block]))}")
    for key in doc.get("params") or {}:
        if key not in PARAMS_FIELDS:
            raise InputError(f"{_where(path, text, ('params', str(key)))}: unknown field params.{excerpt(str(key))}: "
                             f"{did_you_mean(str(key), list(PARAMS_FIELDS))}valid: {', '.join(PARAMS_FIELDS)}")  # fmt: skip


def check_conflicts(doc: dict[str, Any], path: str, text: str) -> None:
    """Refuse a ``native_dtype`` given at the top level and under ``architecture`` with different values (after validation).

    Raises
    ------
    InputError
        At the top-level line, naming the other.
    """
    arch = doc.get("architecture")
    if isinstance(arch, dict) and "native_dtype" in arch and "native_dtype" in doc and arch["native_dtype"] != doc["native_dtype"]:
        raise InputError(f"{_where(path, text, ('native_dtype',))}: native_dtype {excerpt(str(doc['native_dtype']))} disagrees with "
                         f"architecture.native_dtype {excerpt(str(arch['native_dtype']))} "
                         f"({_where(path, text, ('architecture', 'native_dtype'))}): give it once, or the same in both")  # fmt: skip


def spec_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The model spec fields of a document: its top-level fields, published counts and ``architecture`` flattened."""
    raw_params = doc.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    spec: dict[str, Any] = {k: doc[k] for k in TOP_FIELDS if k in doc}
    if params.get("published") is not None:
        spec["published_params"] = params["published"]
    if params.get("published_active") is not None:
        spec["published_active_params"] = params["published_active"]
    arch = doc.get("architecture")
    if isinstance(arch, dict):
        spec.update(arch)
    return spec


def _agree(given: Any, derived: Any) -> bool:
    """Whether a document's figure agrees with the derived one (both absent, or both given and equal)."""
    if given is None or derived is None:
        return given is None and derived is None
    return _same(given, derived)


def _same(given: Any, derived: Any) -> bool:
    if isinstance(given, bool) or isinstance(derived, bool):
        return bool(given == derived)
    if isinstance(given, (int, float)) and isinstance(derived, (int, float)):
        return math.isclose(float(given), float(derived), rel_tol=1e-3, abs_tol=1e-3)
    return bool(given == derived)


def stale_figures(doc: dict[str, Any], described: dict[str, Any], path: str, text: str) -> str | None:
    """One message naming the derived figures of a document that differ from what aicap derives, or ``None``.

    ``described`` is :func:`~aicap.sizing.perf.describe.describe_model` of the model read from ``doc``. Editing the
    architecture leaves them stale, harmlessly; editing one of them changes nothing, which is what the message says
    (the CLI prints it as a warning), at the line of the first.
    """
    pairs: list[tuple[tuple[str, ...], Any, Any]] = [((k,), doc[k], described.get(k)) for k in DERIVED_FIELDS if k in doc]
    given_params, derived_params = doc.get("params") or {}, described.get("params") or {}
    pairs += [(("params", k), given_params[k], derived_params.get(k)) for k in _PARAMS_DERIVED if k in given_params]
    stale = [(loc, given, derived) for loc, given, derived in pairs if not _agree(given, derived)]
    if not stale:
        return None
    listed = ", ".join(f"{'.'.join(loc)} {excerpt(str(given))} (the fields give {derived})" for loc, given, derived in stale)
    return (f"{_where(path, text, stale[0][0])}: derived figures that the document's other fields no longer give change nothing "
            f"(aicap derives them): {listed}")  # fmt: skip


def stale_in_file(path: Path, model: object) -> str | None:
    """:func:`stale_figures` of the ``models show`` document at ``path`` for the model read from it (``None`` for other files)."""
    from aicap.sizing.core.documents import load_json, load_yaml, read_text
    from aicap.sizing.perf.describe import describe_model

    try:
        text = read_text(path)
        doc = load_json(path, text) if path.suffix.lower() == ".json" else load_yaml(path, text)
    except InputError:
        return None
    if not isinstance(doc, dict) or not is_show_document(doc) or "model_type" in doc:
        return None
    return stale_figures(doc, describe_model(model), str(path), text)  # type: ignore[arg-type]


_PUBLISHED = {"published_params": ("params", "published"), "published_active_params": ("params", "published_active")}


def placed_error(exc: ValidationError, doc: dict[str, Any], path: str, text: str) -> str:
    """A validation error of a ``models show`` document, placed where the document has the field.

    Under ``architecture`` where it is there (it wins over the top level) or belongs there (missing); the published
    counts under ``params``; the model's own fields at the top level.
    """
    arch = doc.get("architecture")
    field = next((p for p in first_error(exc)["loc"] if p not in ("decoder", "encoder", "generic")), None)
    if field in _PUBLISHED:
        block, key = _PUBLISHED[str(field)]
        message = describe_validation_error(exc, path, text, ())
        line = line_of(text, (block, key))
        tail = message.split(": ", 2)[-1] if message.count(": ") >= 2 else message
        return f"{path}:{line}: {block}.{key}: {tail}" if line else f"{path}: {block}.{key}: {tail}"
    under = isinstance(arch, dict) and field is not None and (field in arch or field not in TOP_FIELDS)
    from aicap.sizing.core.specs.model import ModelSpec

    return describe_validation_error(exc, path, text, ("architecture",) if under else (), model=ModelSpec)
