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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, ValidationError

from aicap.sizing.core.errors import InputError, excerpt

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Largest document aicap reads (bytes). Real fleet, plan, catalogue and case files are a few
#: hundred KiB at most; anything larger is a mistake (a checkpoint or a log passed by accident).
MAX_DOCUMENT_BYTES = 16 * 2**20
#: Deepest nesting of mappings and lists accepted in a document (aicap's own need fewer than 10).
MAX_DEPTH = 100
#: Most values a YAML document may hold once its aliases are expanded (guards against alias bombs).
MAX_EXPANDED_NODES = 5_000_000

_SAFE_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_TAG = "tag:yaml.org,2002:"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0") + " MiB"


def read_text(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """Return a file's UTF-8 text.

    Parameters
    ----------
    path
        File to read.
    limit
        Largest size accepted, in bytes (default :data:`MAX_DOCUMENT_BYTES`, 16 MiB).

    Returns
    -------
    str
        The decoded text, without a leading byte-order mark.

    Raises
    ------
    InputError
        For a missing, unreadable, oversized or non-UTF-8 file, naming the path and the reason.
    """
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"{path}: file is {_mib(size)}, over the {_mib(limit)} limit for an input document")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:  # an embedded NUL byte in a path taken from a document
        raise InputError(f"{excerpt(str(path))}: not a valid file path") from None
    if len(data) > limit:  # a pipe or device file that reports no size
        raise InputError(f"{path}: more than the {_mib(limit)} limit for an input document")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


# --- YAML --------------------------------------------------------------------------------------


class _Loader(_SAFE_LOADER):  # type: ignore[misc]
    """Safe loader whose scalar constructors report bad values as marked errors, not exceptions."""


def _scalar(construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(loader: Any, node: Any) -> Any:
        tag = str(node.tag).replace(_YAML_TAG, "!!")
        try:
            value = construct(loader, node)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None, None, f"{tag} value {excerpt(node.value)} is not valid", node.start_mark
            ) from None
        if (
            isinstance(value, float)
            and math.isfinite(value)
            and value.is_integer()
            and abs(value) < 2**53
            and _WHOLE.match(str(node.value))
        ):
            value = int(value)  # ``1e3`` written for a count: the integer it names (as ``1000`` would be)
        if isinstance(value, float) and not math.isfinite(value) and _EXPONENT.match(str(node.value)):
            return str(node.value)  # ``5e86725`` (a commit hash, say) is text, as YAML 1.1 read it, not an infinite number
        if isinstance(value, float) and not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{excerpt(node.value)} is not a finite number (NaN and infinity are not accepted)", node.start_mark
            )
        if isinstance(value, int) and not isinstance(value, bool) and not _float_ok(value):
            raise yaml.constructor.ConstructorError(None, None, f"integer {excerpt(node.value)} is too large", node.start_mark)
        return value

    return run


def _no_binary(loader: Any, node: Any) -> Any:
    raise yaml.constructor.ConstructorError(None, None, "!!binary values are not used in aicap documents", node.start_mark)


def _float_ok(value: int) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


for _tag in ("null", "bool", "int", "float", "timestamp", "str"):
    _Loader.add_constructor(_YAML_TAG + _tag, _scalar(yaml.SafeLoader.yaml_constructors[_YAML_TAG + _tag]))
_Loader.add_constructor(_YAML_TAG + "binary", _no_binary)

_WHOLE = re.compile(r"^[-+]?[0-9][0-9_]*[eE]\+?[0-9]+$")  # exponent form without a dot or a negative exponent: a whole number
#: Numbers in exponent form without a dot or an exponent sign (``1e-5``, ``5e1``, ``2.5e3``): floats, as in YAML
#: 1.2 and JSON; YAML 1.1's resolver, which PyYAML follows, reads them as strings. Read by :func:`load_yaml`
#: and quoted by :func:`dump_yaml` when they are strings, so what aicap writes it reads back unchanged.
_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _with_exponent_floats(cls: type[Any]) -> None:
    """Give a loader or dumper class the exponent-float resolver.

    Its resolver table is copied list by list first: ``add_implicit_resolver`` appends to lists the base
    classes share.
    """
    cls.yaml_implicit_resolvers = {ch: list(rs) for ch, rs in cls.yaml_implicit_resolvers.items()}
    cls.add_implicit_resolver(_YAML_TAG + "float", _EXPONENT, list("-+0123456789"))


_with_exponent_floats(_Loader)


def _check_unique_keys(loader: Any, node: Any) -> None:
    """Refuse a mapping node that gives one key twice (merged ``<<`` keys aside: those may be overridden).

    Checked once per node, before PyYAML flattens its merges: flattening rewrites a merged mapping in
    place, so a later look at it would see its merged keys beside its own.
    """
    checked: set[int] = loader.__dict__.setdefault("_aicap_unique_checked", set())
    if id(node) in checked:
        return
    checked.add(id(node))
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _YAML_TAG + "merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in first
        except TypeError:  # an unhashable key: the base constructor reports it
            continue
        if seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {excerpt(str(key))} (first given on line {first[key]})", key_node.start_mark
            )
        first[key] = key_node.start_mark.line + 1


def _flatten_mapping(loader: Any, node: Any) -> None:
    """Keys unique (:func:`_check_unique_keys`), then PyYAML's merge of ``<<`` keys."""
    if isinstance(node, yaml.MappingNode):
        _check_unique_keys(loader, node)
    _SAFE_LOADER.flatten_mapping(loader, node)


_Loader.flatten_mapping = _flatten_mapping


class _Dumper(yaml.SafeDumper):
    """Safe dumper that quotes strings :func:`load_yaml` would read as numbers (``'1e3'``, ``'5e86725'``)."""


_with_exponent_floats(_Dumper)


def dump_yaml(document: Any) -> str:
    """YAML text of ``document``, keys in the order built, that :func:`load_yaml` reads back unchanged."""
    return str(yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


def _yaml_depth_bound(text: str) -> int:
    """An upper bound on a YAML text's nesting depth, without parsing it.

    A block collection starts at a column beyond its parent's (a list under a mapping key may share
    the key's column), so block depth is at most twice the deepest content column; every flow level
    needs its own bracket. Anchors and tags can hide compact nesting, so their presence voids the
    bound.
    """
    if "&" in text or "!" in text:
        return MAX_DEPTH + 1
    flow = text.count("[") + text.count("{")
    if flow > MAX_DEPTH:
        return flow
    column = max((len(line) - len(line.lstrip(" \t-?:")) for line in text.splitlines()), default=0)
    return flow + 2 * (column + 1)


def _check_yaml_shape(where: str, text: str) -> None:
    """Refuse a YAML text nested deeper than :data:`MAX_DEPTH` or expanding past :data:`MAX_EXPANDED_NODES`.

    Streams parser events (libyaml's parser keeps its own stack, so this never recurses) and tracks,
    per open collection, its expanded size and height; an alias counts as the size and height of
    its anchor.
    """
    if _yaml_depth_bound(text) <= MAX_DEPTH:
        return
    anchors: dict[str, tuple[int, int]] = {}
    stack: list[list[Any]] = [[None, 0, 0]]  # [anchor, expanded size, height] of each open collection

    def add(size: int, height: int, line: int) -> None:
        top = stack[-1]
        top[1] += size
        top[2] = max(top[2], height)
        if len(stack) - 1 + height > MAX_DEPTH:
            raise InputError(f"{where}:{line}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)")
        if top[1] > MAX_EXPANDED_NODES:
            raise InputError(f"{where}:{line}: aliases expand the document to more than {MAX_EXPANDED_NODES:,} values")

    for ev in yaml.parse(text, Loader=_SAFE_LOADER):
        line = ev.start_mark.line + 1 if ev.start_mark is not None else 1
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(stack) > MAX_DEPTH:
                raise InputError(f"{where}:{line}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)")
            stack.append([ev.anchor, 1, 1])
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, size, height = stack.pop()
            if anchor is not None:
                anchors[anchor] = (size, height)
            add(size, height, line)
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor is not None:
                anchors[ev.anchor] = (1, 0)
            add(1, 0, line)
        elif isinstance(ev, yaml.AliasEvent):
            size, height = anchors.get(ev.anchor or "", (1, 0))
            add(size, height, line)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML (or JSON) file safely.

    Parameters
    ----------
    path
        The file; read with :func:`read_text` unless ``text`` is given, and named in errors.
    text
        The file's text, when already read.

    Returns
    -------
    Any
        The document: mappings, lists, strings, finite numbers, booleans, dates and ``None``.

    Raises
    ------
    InputError
        With ``file:line: malformed YAML: ...`` when it does not parse or holds a bad tagged
        value, NaN or infinity; ``file:line: nested too deeply`` past :data:`MAX_DEPTH` levels.
    """
    text = read_text(path) if text is None else text
    try:
        _check_yaml_shape(str(path), text)
        return yaml.load(text, Loader=_Loader)  # _Loader is a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "cannot parse"
        if "maximum nesting depth" in problem:  # libyaml's own guard, met before ours while scanning ahead
            raise InputError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)") from None
        raise InputError(f"{where}: malformed YAML: {_one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)") from None


def _one_line(message: str, limit: int = 200) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- JSON --------------------------------------------------------------------------------------

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
    if not _float_ok(value):
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

    Parameters
    ----------
    path
        The file; read with :func:`read_text` unless ``text`` is given, and named in errors.
    text
        The file's text, when already read.

    Returns
    -------
    Any
        The document.

    Raises
    ------
    InputError
        ``file:line: malformed JSON: ...``, ``file:line: ... is not a finite number`` or
        ``file:line: nested too deeply``.
    """
    text = read_text(path) if text is None else text
    depth, at = _json_depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{path}:{text.count(chr(10), 0, at) + 1}: nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)")
    try:
        return json.loads(text, parse_float=_json_float, parse_int=_json_int, parse_constant=_json_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
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


def is_json(path: Path, text: str) -> bool:
    """Whether a document is JSON: a ``.json`` file, or text whose first non-blank character is ``{``."""
    return path.suffix.lower() == ".json" or text.lstrip()[:1] == "{"


def load_document(path: Path, text: str | None = None) -> Any:
    """Parse a document as JSON when it is JSON (see :func:`is_json`), else as YAML.

    JSON is parsed by :func:`load_json`, so ``2e3`` is the number 2000 (YAML 1.1 reads it as a
    string). Text that starts with ``{`` in a file not named ``.json`` may also be a YAML flow
    mapping (``{workloads: [...]}``): when it is not valid JSON it is read as YAML, and if that
    fails too the JSON error is reported.

    Parameters
    ----------
    path
        The file; read with :func:`read_text` unless ``text`` is given, and named in errors.
    text
        The file's text, when already read.

    Returns
    -------
    Any
        The document.

    Raises
    ------
    InputError
        One line with ``file:line`` for a syntax error, a non-finite number or excessive nesting.
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


# --- numeric field types ---------------------------------------------------------------------
# Pydantic's lax mode reads ``true`` as 1 in an integer or float field, so ``num_layers: true`` would
# become a one-layer model; these types refuse booleans before the number is checked. NaN and
# infinity are refused by ``allow_inf_nan=False`` in each document model's configuration (and by
# the loaders above before that).


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


NotBool = BeforeValidator(_not_bool)
"""Refuse ``True``/``False`` where a number is expected."""

PosInt = Annotated[int, NotBool, Field(gt=0)]
"""A positive integer (not a boolean)."""
NonNegInt = Annotated[int, NotBool, Field(ge=0)]
"""A non-negative integer (not a boolean)."""
PosFloat = Annotated[float, NotBool, Field(gt=0)]
"""A positive number (not a boolean)."""
NonNegFloat = Annotated[float, NotBool, Field(ge=0)]
"""A non-negative number (not a boolean)."""
Fraction = Annotated[float, NotBool, Field(gt=0, le=1)]
"""A number in (0, 1]: an efficiency factor or a usable share (not a boolean)."""


# --- validation --------------------------------------------------------------------------------


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


def line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Return the 1-based line of the value at ``loc`` in YAML (or JSON) ``text``, or ``None``."""
    try:
        _check_yaml_shape("", text)
        node = yaml.compose(text, Loader=_SAFE_LOADER)
    except (yaml.YAMLError, InputError, RecursionError):
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


def describe_validation_error(exc: ValidationError, where: str, text: str | None, prefix: Sequence[int | str] = ()) -> str:
    """Turn the first pydantic error into one human line: ``file:line: field: message``.

    The offending value is quoted as a short excerpt (never a whole document); mappings and lists
    are not quoted at all.
    """
    err = first_error(exc)
    loc = (*prefix, *err["loc"])
    line = line_of(text, loc) if text is not None else None
    place = f"{where}:{line}" if line else where
    field = format_loc(loc) or "document"
    msg = _one_line(err["msg"].removeprefix("Value error, "), 600)
    if err["loc"] and err["loc"][-1] == "[key]":
        msg = f"not a valid key: {msg}"
    got = err.get("input")
    ctx = err.get("ctx") or {}
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling against the schema)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "union_tag_invalid":  # pydantic's message quotes the whole tag value
        field = ".".join(p for p in (format_loc(loc), str(ctx.get("discriminator", "")).strip("'")) if p)
        msg, got = f"must be one of {ctx.get('expected_tags', '')}", ctx.get("tag")
    quiet = err["type"] in {"missing", "extra_forbidden"} or isinstance(got, dict | list | tuple | set | frozenset)
    if err["type"] == "value_error" and isinstance(got, BaseModel | dict):  # a check across fields: its message has the values
        quiet = True
    shown = "" if quiet else f", got {excerpt(got)}"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    if field == "document" and err["type"] == "value_error":
        return f"{place}: {msg}{shown}{tail}"
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
