"""Renderers: one per output format, all fed the same :class:`View` of a result.

JSON and YAML print ``View.document`` (never through Rich markup); table, CSV and Markdown print
``View.tables``. Rich is imported here and nowhere else in aicap.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any

import typer


class Format(str, Enum):
    """Output formats every result command accepts."""

    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"


#: The ``--format/-f`` option of every result command (any case: ``-f JSON`` is ``-f json``).
FormatOpt = Annotated[Format, typer.Option("--format", "-f", case_sensitive=False, help="Output format.")]


@dataclass
class Table:
    """A titled table: column names and rows of plain values (str/int/float/None)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str | None = None
    left: bool = False  # every column left-aligned (a field/value listing, whose values mix text and numbers)


@dataclass
class View:
    """What a command shows: the machine document and its human tables."""

    document: Any
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    csv: Table | None = None  # the rows ``--format csv`` writes, one value a cell, where the first table packs several


class Cents(float):
    """A price a table shows to the cent (``110.08``, where a plain cell gives ``110``); right-aligned as numbers are."""


def cell(value: Any) -> str:
    """Format one table cell: thousands separators, 3 significant decimals (:class:`Cents` to the cent), blanks for None."""
    if value is None:
        return "–"
    if isinstance(value, Cents):
        return f"{value:,.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    return str(value)


def rate_text(x: float) -> str:
    """A request rate in three significant figures without an exponent: ``4,080``, ``10.9``, ``0.125``."""
    if x >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}"
    return f"{x:,.3g}"


def to_json(document: Any) -> str:
    """Deterministic JSON: fixed key order as built, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


#: Pydantic's bound names where a validator precedes the bounds (``fields.PosInt``: a number refusing true/false and text), and the
#: JSON Schema keywords they stand for: a validator that met ``gt`` would ignore it, and let ``batch: -5`` through.
_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _json_bounds(node: Any) -> Any:
    """``node`` with pydantic's ``gt``/``ge``/``lt``/``le`` beside a ``type`` renamed to JSON Schema's keywords (recursively)."""
    if isinstance(node, list):
        return [_json_bounds(x) for x in node]
    if not isinstance(node, dict):
        return node
    typed = node.get("type") in ("integer", "number")
    return {(_BOUNDS[k] if typed and k in _BOUNDS else k): _json_bounds(v) for k, v in node.items()}


def json_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema of a pydantic document type, declaring its dialect (pydantic writes draft 2020-12).

    Bounds pydantic leaves under its own names (:data:`_BOUNDS`) are written as JSON Schema's, which validators check.
    """
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_json_bounds(model.model_json_schema())}


def to_yaml(document: Any) -> str:
    """YAML with keys in the order they were built, that aicap reads back unchanged (``'1e3'`` quoted)."""
    from aicap.sizing.core.documents import dump_yaml

    return dump_yaml(document)


_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def flat_table(doc: Any, skip: tuple[str, ...] = ("schema_version",)) -> Table:
    """Every scalar of a JSON document as a ``field,value`` row, its field the dotted path (``plan.usd.on_demand``).

    A CSV a script can read where the tables hold prose; list items are numbered (``alternatives.2.hardware``).
    """
    rows: list[list[Any]] = []

    def walk(x: Any, path: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k not in skip:
                    walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}.{i}")
        else:
            rows.append([path, x])

    walk(doc, "")
    return Table("", ["field", "value"], rows, left=True)


def _csv_value(value: Any) -> Any:
    """A cell as CSV writes it: blank for None, ``true``/``false``, grouped numbers bare (``2,450.2`` -> ``2450.2``)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # as JSON spells it, not Python's True/False
        return "true" if value else "false"
    if isinstance(value, str) and _GROUPED.fullmatch(value):
        return value.replace(",", "")
    return value


def to_csv(view: View) -> str:
    """The view's CSV table, else its first (primary) table, as CSV with raw values.

    A cell that is a number carries no thousands separators.

    Cells of prose (``≤2,048 running``, ``$1,234``) keep their text; the JSON output has every figure bare.
    """
    out = io.StringIO()
    if not view.tables and view.csv is None:
        return ""
    t = view.csv or view.tables[0]
    w = csv.writer(out, lineterminator="\n")
    w.writerow(t.columns)
    for row in t.rows:
        w.writerow([_csv_value(v) for v in row])
    return out.getvalue()


def to_markdown(view: View) -> str:
    """Every table as a GitHub-flavoured Markdown table under a heading."""
    parts: list[str] = []
    for t in view.tables:
        parts.append(f"### {t.title}\n")
        parts.append("| " + " | ".join(t.columns) + " |")
        parts.append("|" + "|".join("---" for _ in t.columns) + "|")
        for row in t.rows:
            parts.append("| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |")
        if t.caption:
            parts.append(f"\n{t.caption}")
        parts.append("")
    parts.extend(f"> {n}" for n in view.notes)
    return "\n".join(parts).rstrip() + "\n"


def to_table(view: View, width: int | None = None, file: Any = None) -> None:
    """Render the tables with Rich (colour only on a terminal and when NO_COLOR is unset)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # Rich exits 1 (the policy-breach code); the command's guard exits 141
            raise BrokenPipeError

    target = file if file is not None else sys.stdout
    is_tty = hasattr(target, "isatty") and target.isatty()
    console = _Console(file=target, width=width or (None if is_tty else 200), color_system="auto" if is_tty else None,
                      highlight=False, soft_wrap=False)  # fmt: skip
    for t in view.tables:
        rt = RichTable(title=t.title, caption=t.caption, title_justify="left", caption_justify="left")
        for i, col in enumerate(t.columns):
            numeric = not t.left and any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in t.rows)
            rt.add_column(col, justify="right" if numeric else "left", overflow="fold")
        for row in t.rows:
            rt.add_row(*(cell(v) for v in row))
        console.print(rt)
    for n in view.notes:
        console.print(n, markup=False)


RENDERERS: dict[Format, Callable[[View], str | None]] = {
    Format.json: lambda v: to_json(v.document),
    Format.yaml: lambda v: to_yaml(v.document),
    Format.csv: to_csv,
    Format.markdown: to_markdown,
    Format.table: lambda v: to_table(v),
}


def emit(view: View, fmt: Format) -> None:
    """Write a view to stdout in ``fmt`` (flushed: a full disk is an input error naming it, not a bug at exit)."""
    from aicap.sizing.core.errors import InputError

    try:
        text = RENDERERS[fmt](view)
        if text is not None:
            sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise InputError(f"cannot write the result to standard output: {exc.strerror or exc}") from None


@contextmanager
def progress(total: int, label: str, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A Rich progress bar on stderr for ``total`` units of work; yields ``advance()`` (one unit).

    Drawn only when ``enabled`` and stderr is a terminal (so ``--quiet``, pipes and CI stay silent);
    the bar is removed when the work ends.
    """
    if not enabled or total <= 1 or not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # Redrawn at each unit, not by a refresh thread: with a thread running, work cannot be forked out to other processes
    # (sizing.sim.fanout, plan.evaluation.can_fork), and a bar would leave it on one core.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True, auto_refresh=False) as bar:  # fmt: skip
        task = bar.add_task(label, total=total)
        bar.refresh()

        def advance() -> None:
            bar.advance(task)
            bar.refresh()

        yield advance
