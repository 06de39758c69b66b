"""Validation errors for people: the first pydantic error of a document as one line with ``file:line``.

:func:`validate` and :func:`validate_model` check parsed data against a document model and raise
:class:`~aicap.sizing.core.errors.InputError` naming the file, the line, the field path and what was
expected; :func:`line_of_value` finds the line of a value that a check after validation (an unknown
model id, say) refuses.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.text_input import one_line
from aicap.sizing.core.yaml_doc import SAFE_LOADER, check_yaml_shape

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


_UNION_LABEL = re.compile(r"^(?:constrained-)?(?:int|float|str|bool)$|^[a-z][a-z-]*\[.*\]$", re.DOTALL)


def _union_label(part: int | str) -> bool:
    """Whether a location part is pydantic's label of a union member (``constrained-int``, ``literal['a','b']``)."""
    return isinstance(part, str) and bool(_UNION_LABEL.match(part))


def first_error(exc: ValidationError) -> Any:
    """The error to report: the first, or, where it lies in one member of a union, the deepest error of that union.

    A value that fails every member of ``int | Histogram`` gets one error per member; the member the
    value was written for is the one whose error lies deepest (``weight`` in a histogram entry), not
    the first (``Input should be a valid integer``).
    """
    errs = exc.errors(include_url=False)
    first = errs[0]
    cut = next((k for k, part in enumerate(first["loc"]) if _union_label(part)), None)
    if cut is None:
        return first
    same = [e for e in errs if tuple(e["loc"][:cut]) == tuple(first["loc"][:cut])]
    return max(same, key=lambda e: sum(not _union_label(p) for p in e["loc"]))


def _problems(exc: ValidationError) -> set[tuple[int | str, ...]]:
    """The distinct places of ``exc``'s errors: a value that fails every member of a union is one problem, not one a member.

    ``output_tokens: "350"`` fails ``int`` and ``list[LengthBin]``: two errors, one place (it read "and 1 more error").
    """
    out: set[tuple[int | str, ...]] = set()
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        cut = next((k for k, part in enumerate(loc) if _union_label(part)), len(loc))
        out.add(loc[:cut])
    return out


def format_loc(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as ``models[3].moe.num_experts`` (union members' labels left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"decoder", "encoder", "generic", "[key]"} or _union_label(part):
            continue  # discriminated-union tag, union member label or pydantic's marker of a mapping key, not a field
        else:
            name = str(part)
            name = name if len(name) <= 40 and name.isprintable() else excerpt(name, 40)
            out += f".{name}" if out else name
    return out


def line_of(text: str, loc: Sequence[int | str], *, key: bool = False) -> int | None:
    """Return the 1-based line of the value at ``loc`` in YAML (or JSON) ``text``, or ``None``.

    ``key``: the line of the last key of ``loc`` itself (an unknown field: where its name is, not the block it holds,
    which starts a line further down).
    """
    try:
        check_yaml_shape("", text)
        node = yaml.compose(text, Loader=SAFE_LOADER)
    except (yaml.YAMLError, InputError, RecursionError):
        return None
    line = None if node is None else node.start_mark.line + 1
    for n, part in enumerate(loc):
        mark = None
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                continue
            mark = match[0][0].start_mark if key and n == len(loc) - 1 else None
            node = match[0][1]
        else:
            continue
        line = (mark or node.start_mark).line + 1
    return line


_QUOTED = re.compile(r"'([^'\n]{1,200})'")
_UNKNOWN = re.compile(r"unknown ([a-z][a-z -]{0,39}?) '([^'\n]{1,200})'")


def line_of_value(text: str, message: str) -> int | None:
    """The 1-based line of ``text`` holding, as a YAML value, the value an error ``message`` quotes.

    For errors found after validation (an unknown model, device or engine id in a fleet file): the
    message quotes the value (``unknown model 'llama-9'``; the one after "unknown" where it quotes
    several). Comment lines aside, the line is the first that gives it under the key the message names
    (``model: llama-9``), else the first that holds it as a value (``key: llama-9``, ``- llama-9``, ``[a,
    llama-9]``), else as a key (``{p5.48xlargex: 2}``): where the user fixes it. ``None`` if no line holds it.
    """
    m = _UNKNOWN.search(message)
    kind, value = (m.group(1), m.group(2)) if m else (None, None)
    if value is None:
        q = _QUOTED.search(message)
        if q is None:
            return None
        value = q.group(1)
    v = re.escape(value)
    word = rf"(?:{v}|'{v}'|\"{v}\")"
    end = r"\s*(?:[\],}]|#|$)"
    as_value = re.compile(rf"(?:^\s*-\s+|:\s+|[\[,{{]\s*){word}{end}")
    as_key = re.compile(rf"(?:^\s*(?:-\s+)?|[{{,]\s*){word}\s*:")
    under_kind = re.compile(rf"(?:^|[\s{{,])[\"']?{re.escape(kind)}[\"']?\s*:\s*(?:\[[^\]]*?)?{word}{end}") if kind else None
    lines = [(k, line) for k, line in enumerate(text.splitlines(), start=1) if not line.lstrip().startswith("#")]
    for pattern in (under_kind, as_value, as_key):
        if pattern is None:
            continue
        for k, line in lines:
            if pattern.search(line):
                return k
    return None


_MARKERS = {"decoder", "encoder", "generic", "[key]"}  # discriminator tags and pydantic's key marker: no fields of their own


def located(path: Path | str, message: str) -> str:
    """``path:line`` where the file at ``path`` holds the value an error ``message`` quotes (:func:`line_of_value`), else ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return str(path)
    line = line_of_value(text, message)
    return f"{path}:{line}" if line else str(path)


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The document models an annotation can hold (through lists, mappings, unions and ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _fields_at(models: list[type[BaseModel]], loc: Sequence[int | str]) -> list[str]:
    """Field names of the mapping at ``loc`` of a document of one of ``models`` (``[]`` when the path leaves them)."""
    for part in loc:
        if isinstance(part, int) or _union_label(part) or part in _MARKERS:
            continue
        inner = [m for cls in models if (f := cls.model_fields.get(part)) is not None for m in _models_in(f.annotation)]
        if inner:
            models = inner
        elif not any(part == m.__name__ for m in models):  # a union member's class name labels the member, not a field
            return []
    return sorted({name for cls in models for name in cls.model_fields})


def _nearest(word: str, names: Sequence[str]) -> str | None:
    """The name ``word`` was likely meant to be: the first one prefixing it or prefixed by it, else the closest (difflib 0.6)."""
    if not word:
        return None
    near = [n for n in names if n.startswith(word) or word.startswith(n)] or difflib.get_close_matches(word, names, 1, 0.6)
    return near[0] if near else None


def unknown_field(schema: object, loc: Sequence[int | str]) -> str:
    """The message for an unknown key: the field it was likely meant to be, or the valid ones."""
    models = _models_in(schema)
    names = _fields_at(models, loc[:-1]) if models and loc else []
    near = _nearest(str(loc[-1]) if loc else "", names)
    if near is not None:
        return f"unknown field; did you mean '{near}'?"
    if names and len(names) <= 16:
        return f"unknown field; valid: {', '.join(names)}"
    return "unknown field (check the spelling against the schema)"


def _misspelt(exc: ValidationError, missing: Any) -> Any:
    """The unknown key beside a ``missing`` required field that is most likely that field misspelt, else ``missing``.

    Of the mapping's unknown keys, the closest to the missing name (``difflib`` ratio 0.6 or more, or one a prefix of the
    other): ``modle`` for ``model``; ``colour`` beside it is left alone.
    """
    parent, name = tuple(missing["loc"][:-1]), str(missing["loc"][-1])
    unknown = [e for e in exc.errors(include_url=False) if e["type"] == "extra_forbidden" and tuple(e["loc"][:-1]) == parent]
    keys = [str(e["loc"][-1]) for e in unknown]
    near = _nearest(name, keys)
    return unknown[keys.index(near)] if near is not None else missing


def describe_validation_error(exc: ValidationError, where: str, text: str | None, prefix: Sequence[int | str] = (),
                              model: object = None) -> str:  # fmt: skip
    """Turn the first pydantic error into one human line: ``file:line: field: message``.

    A check across fields raised as a ``PydanticCustomError`` with ``{"at": (key, index, ...)}`` in its context is reported
    at that part of the document (a workload without a rate, found by the fleet's check that reads the objective).

    A required field missing where the same mapping has an unknown key like its name is reported as that key (``modle``:
    "unknown field; did you mean 'model'?", at its line): the misspelling is what the user fixes (:func:`_misspelt`).

    The offending value is quoted as a short excerpt (never a whole document); mappings and lists
    are not quoted at all. Given the document's ``model`` (a model class, or a type holding models), an
    unknown key is answered with the field it was likely meant to be (``budget`` -> ``budget_usd_per_month``),
    or the valid ones.
    """
    err = first_error(exc)
    paired = 0  # errors the reported one stands for beside itself (a misspelling for its missing field; missing siblings)
    if err["type"] == "missing":
        misspelt = _misspelt(exc, err)
        paired, err = int(misspelt is not err), misspelt
    loc = (*prefix, *err["loc"], *tuple((err.get("ctx") or {}).get("at", ())))  # a check across fields may name the part at fault
    at = (*loc, str((err.get("ctx") or {}).get("discriminator", "")).strip("'")) if err["type"] == "union_tag_invalid" else loc
    line = line_of(text, at, key=err["type"] in {"extra_forbidden", "union_tag_invalid"}) if text is not None else None
    place = f"{where}:{line}" if line else where
    field = format_loc(loc) or "document"
    # Every required field the same mapping lacks, at once (one run per missing field made a hand-written file slow going).
    missing = [e for e in exc.errors(include_url=False) if e["type"] == "missing" and tuple(e["loc"][:-1]) == tuple(err["loc"][:-1])]
    if err["type"] == "missing" and len(missing) > 1:
        field, paired = ", ".join(format_loc((*prefix, *e["loc"])) for e in missing), len(missing) - 1
    msg = one_line(err["msg"].removeprefix("Value error, "), 600)
    if err["loc"] and err["loc"][-1] == "[key]":
        msg = f"not a valid key: {msg}"
    got = err.get("input")
    ctx = err.get("ctx") or {}
    if err["type"] == "extra_forbidden":
        msg = unknown_field(model, err["loc"])
    elif err["type"] == "missing":
        msg = "required field is missing" if len(missing) < 2 else "required fields are missing"
    elif err["type"] == "union_tag_invalid":  # pydantic's message quotes the whole tag value
        field = ".".join(p for p in (format_loc(loc), str(ctx.get("discriminator", "")).strip("'")) if p)
        msg, got = f"must be one of {ctx.get('expected_tags', '')}", ctx.get("tag")
    quiet = err["type"] in {"missing", "extra_forbidden"} or isinstance(got, dict | list | tuple | set | frozenset)
    if err["type"] == "value_error" and isinstance(got, BaseModel | dict):  # a check across fields: its message has the values
        quiet = True
    shown = "" if quiet else f", got {excerpt(got)}"
    more = len(_problems(exc)) - 1 - paired
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    if field == "document" and err["type"] == "value_error":
        return f"{place}: {msg}{shown}{tail}"
    return f"{place}: {field}: {msg}{shown}{tail}"


def validate(adapter: TypeAdapter[T], data: Any, where: str, text: str | None = None, prefix: Sequence[int | str] = ()) -> T:
    """Validate ``data`` with ``adapter``; raise a one-line :class:`InputError` on failure."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, where, text, prefix, getattr(adapter, "_type", None))) from None


def validate_model(model: type[M], data: Any, where: str, text: str | None = None, prefix: Sequence[int | str] = ()) -> M:
    """Validate ``data`` into pydantic ``model``; raise a one-line :class:`InputError` on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, where, text, prefix, model)) from None
