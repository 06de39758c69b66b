"""YAML documents: safe loading (no objects, no ``!!binary``), finite numbers, bounded nesting and aliases.

The YAML half of :mod:`aicap.sizing.core.documents`. Parsing uses libyaml's ``CSafeLoader`` where
PyYAML was built with it, else ``SafeLoader``; bad tagged values, NaN, infinity, duplicate keys and
documents nested deeper than :data:`~aicap.sizing.core.text_input.MAX_DEPTH` (or whose aliases expand
past :data:`MAX_EXPANDED_NODES` values) are refused with ``file:line``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.text_input import MAX_DEPTH, float_ok, one_line, read_text

#: Most values a YAML document may hold once its aliases are expanded (guards against alias bombs).
MAX_EXPANDED_NODES = 5_000_000

#: The safe loader this module builds on (libyaml's where available).
SAFE_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_TAG = "tag:yaml.org,2002:"


class _Loader(SAFE_LOADER):  # type: ignore[misc]
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
        if isinstance(value, int) and not isinstance(value, bool) and not float_ok(value):
            raise yaml.constructor.ConstructorError(None, None, f"integer {excerpt(node.value)} is too large", node.start_mark)
        return value

    return run


def _no_binary(loader: Any, node: Any) -> Any:
    raise yaml.constructor.ConstructorError(None, None, "!!binary values are not used in aicap documents", node.start_mark)


for _tag in ("null", "bool", "int", "float", "timestamp", "str"):
    _Loader.add_constructor(_YAML_TAG + _tag, _scalar(yaml.SafeLoader.yaml_constructors[_YAML_TAG + _tag]))
_Loader.add_constructor(_YAML_TAG + "binary", _no_binary)

#: Exponent form without a negative exponent (``1e3``, ``1.5e3``): a whole number where its value is one (a count written so)
_WHOLE = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9]*)?[eE]\+?[0-9]+$")
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
    SAFE_LOADER.flatten_mapping(loader, node)


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


def check_yaml_shape(where: str, text: str) -> None:
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

    for ev in yaml.parse(text, Loader=SAFE_LOADER):
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
        check_yaml_shape(str(path), text)
        return yaml.load(text, Loader=_Loader)  # _Loader is a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "cannot parse"
        if "maximum nesting depth" in problem:  # libyaml's own guard, met before ours while scanning ahead
            raise InputError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)") from None
        raise InputError(f"{where}: malformed YAML: {one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {one_line(str(exc))}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)") from None
