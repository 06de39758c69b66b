"""Reading user and catalogue documents (YAML/JSON) and validating them at the edge.

Documents are parsed with ``yaml.safe_load`` only. When validation fails, the error names the file,
the line of the offending value (found by walking the YAML node tree along the error's field path),
the field path and what was expected, in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from aicap.sizing.core.errors import InputError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def read_text(path: Path) -> str:
    """Return a file's text, raising :class:`InputError` for a missing or unreadable file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML (or JSON) file safely.

    Raises
    ------
    InputError
        With ``file:line: malformed YAML: ...`` when it does not parse.
    """
    text = read_text(path) if text is None else text
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {exc}") from None


def format_loc(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as ``models[3].moe.num_experts``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"decoder", "encoder", "generic"}:
            continue  # discriminated-union tag, not a field
        else:
            out += f".{part}" if out else str(part)
    return out


def line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Return the 1-based line of the value at ``loc`` in YAML ``text``, or ``None``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                continue
            node = match[0]
        else:
            continue
        line = node.start_mark.line + 1
    return line


def describe_validation_error(exc: ValidationError, where: str, text: str | None, prefix: Sequence[int | str] = ()) -> str:
    """Turn the first pydantic error into one human line: ``file:line: field: message``."""
    err = exc.errors(include_url=False)[0]
    loc = (*prefix, *err["loc"])
    line = line_of(text, loc) if text is not None else None
    place = f"{where}:{line}" if line else where
    field = format_loc(loc) or "document"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling against the schema)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    got = err.get("input")
    shown = "" if err["type"] in {"missing", "extra_forbidden"} or isinstance(got, dict | list) else f", got {got!r}"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{place}: {field}: {msg}{shown}{tail}"


def validate(adapter: TypeAdapter[T], data: Any, where: str, text: str | None = None, prefix: Sequence[int | str] = ()) -> T:
    """Validate ``data`` with ``adapter``; raise a one-line :class:`InputError` on failure."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, where, text, prefix)) from None


def validate_model(model: type[M], data: Any, where: str, text: str | None = None, prefix: Sequence[int | str] = ()) -> M:
    """Validate ``data`` into pydantic ``model``; raise a one-line :class:`InputError` on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, where, text, prefix)) from None
