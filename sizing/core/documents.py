"""Reading user and catalogue documents (YAML/JSON) and validating them at the edge.

Every document aicap reads goes through this module, which guarantees:

* **Bounded input.** A file larger than :data:`MAX_DOCUMENT_BYTES` (16 MiB) is refused before it is
  parsed; a document nested deeper than :data:`MAX_DEPTH` levels, or whose YAML aliases expand to
  more than :data:`MAX_EXPANDED_NODES` values, is refused before it is built.
* **Safe loading.** YAML is parsed with the safe loader only (libyaml's ``CSafeLoader`` where
  PyYAML was built with it, else ``SafeLoader``): no arbitrary objects, and no ``!!binary``.
  JSON documents (``.json`` files, or text that starts with ``{``) are parsed as JSON, so ``2e3``
  is a number rather than YAML 1.1's string.
* **Finite numbers.** NaN and infinity (``.nan``, ``.inf``, ``NaN``, ``Infinity``, ``1e999``)
  and integers too large for a float are refused wherever they appear, with their line.
* **One line per error.** Malformed text, a bad tagged value (``!!float abc``,
  ``!!timestamp x``) or a value that fails validation raises :class:`InputError` whose message
  names the file, the line, the field path and what was expected. Quoted values are cut to a short
  excerpt (:func:`~aicap.sizing.core.errors.excerpt`), so a file read by mistake is never echoed.

The work is split by noun: :mod:`~aicap.sizing.core.text_input` reads the bounded text,
:mod:`~aicap.sizing.core.yaml_doc` and :mod:`~aicap.sizing.core.json_doc` parse it,
:mod:`~aicap.sizing.core.fields` holds the numeric field types and
:mod:`~aicap.sizing.core.doc_errors` turns validation errors into one line. This module chooses the
parser and re-exports the names callers use, so ``from aicap.sizing.core.documents import ...`` stays
the one way in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicap.sizing.core.doc_errors import (
    describe_validation_error,
    first_error,
    format_loc,
    line_of,
    line_of_value,
    validate,
    validate_model,
)
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fields import Fraction, NonNegFloat, NonNegInt, NumberOnly, PosFloat, PosInt
from aicap.sizing.core.json_doc import load_json
from aicap.sizing.core.text_input import MAX_DEPTH, MAX_DOCUMENT_BYTES, read_text
from aicap.sizing.core.yaml_doc import MAX_EXPANDED_NODES, dump_yaml, load_yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_EXPANDED_NODES",
    "Fraction",
    "NonNegFloat",
    "NonNegInt",
    "NumberOnly",
    "PosFloat",
    "PosInt",
    "describe_validation_error",
    "dump_yaml",
    "first_error",
    "format_loc",
    "is_json",
    "line_of",
    "line_of_value",
    "load_document",
    "load_json",
    "load_yaml",
    "read_text",
    "validate",
    "validate_model",
]


def is_json(path: Path, text: str) -> bool:
    """Whether a document is JSON: a ``.json`` file, or text whose first non-blank character is ``{``."""
    return path.suffix.lower() == ".json" or text.lstrip()[:1] == "{"


def load_document(path: Path, text: str | None = None) -> Any:
    """Parse a document as JSON when it is JSON (see :func:`is_json`), else as YAML.

    JSON is parsed by :func:`load_json`, so ``2e3`` is the number 2000 (YAML 1.1 reads it as a
    string). Text that starts with ``{`` in a file not named ``.json`` may also be a YAML flow
    mapping (``{workloads: [...]}``): when it is not valid JSON it is read as YAML, and if that
    fails too the JSON error is reported. ``path`` and ``text`` are as :func:`load_yaml` takes them; an
    :class:`InputError` gives one line with ``file:line`` for a syntax error, a non-finite number or
    excessive nesting.
    """
    text = read_text(path) if text is None else text
    if not is_json(path, text):
        return load_yaml(path, text)
    if path.suffix.lower() == ".json":
        return load_json(path, text)
    try:
        return load_json(path, text)
    except InputError as json_error:
        if "malformed JSON" not in str(json_error):
            raise
        try:
            return load_yaml(path, text)
        except InputError:
            raise json_error from None
