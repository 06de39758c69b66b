"""JSON documents, read strictly: no NaN or infinity, no repeated key, bounded nesting.

The JSON half of :mod:`aicap.sizing.core.documents`: ``2e3`` is the number 2000 here, where YAML 1.1
reads it as a string.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.text_input import MAX_DEPTH, float_ok, read_text

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class _NonFinite(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _json_depth(text: str) -> tuple[int, int]:
    """Deepest nesting of a JSON text and the offset where it is reached (strings skipped)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0, 0
    bare = _JSON_STRING.sub(lambda m: "_" * len(m.group()), text)
    depth, best, at = 0, 0, 0
    for m in _JSON_BRACKET.finditer(bare):
        depth += 1 if m.group() in "[{" else -1
        if depth > best:
            best, at = depth, m.start()
            if best > MAX_DEPTH:
                break
    return best, at


def _json_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NonFinite(token)
    return value


def _json_int(token: str) -> int:
    value = int(token)
    if not float_ok(value):
        raise _NonFinite(token)
    return value


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (a repeated key is an error, not a silent override)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_constant(token: str) -> Any:
    raise _NonFinite(token)


def load_json(path: Path, text: str | None = None) -> Any:
    """Parse a JSON file strictly: no NaN or infinity, nesting at most :data:`MAX_DEPTH` deep.

    ``path`` and ``text`` are as :func:`~aicap.sizing.core.yaml_doc.load_yaml` takes them. Raises
    :class:`InputError`: ``file:line: malformed JSON: ...``, ``file:line: ... is not a finite number`` or
    ``file:line: nested too deeply``.
    """
    text = read_text(path) if text is None else text
    depth, at = _json_depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{path}:{text.count(chr(10), 0, at) + 1}: nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)")
    try:
        return json.loads(text, parse_float=_json_float, parse_int=_json_int, parse_constant=_json_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" ("Unterminated string starting at"), the position following in str(exc).
        where = f" column {exc.colno}" if exc.msg.endswith(" at") else ""
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}{where}") from None
    except _DuplicateKey as exc:
        raise InputError(f"{path}: malformed JSON: duplicate key {excerpt(exc.key)} in one object") from None
    except _NonFinite as exc:
        found = re.search(re.escape(exc.token), _JSON_STRING.sub(lambda m: "_" * len(m.group()), text))
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise InputError(f"{path}:{line}: {excerpt(exc.token)} is not a finite number (NaN and infinity are not accepted)") from None
    except ValueError:  # an integer literal longer than Python converts (4300 digits)
        raise InputError(f"{path}: malformed JSON: an integer literal is too long") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)") from None


def json_line(text: str, where: str) -> Any:
    """One value of a JSON Lines file (a trace), read as strictly as :func:`load_json`; errors name ``where`` (``file:line``)."""
    try:
        return json.loads(text, parse_float=_json_float, parse_int=_json_int, parse_constant=_json_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not a JSON object ({exc.msg})") from None
    except _DuplicateKey as exc:
        raise InputError(f"{where}: key {excerpt(exc.key)} given twice (a JSON object names each field once)") from None
    except _NonFinite as exc:
        raise InputError(f"{where}: {excerpt(exc.token)} is not a finite number (NaN and infinity are not accepted)") from None
    except (ValueError, RecursionError):  # an integer literal longer than Python converts; nesting past the interpreter's limit
        raise InputError(f"{where}: malformed JSON") from None
