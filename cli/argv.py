"""The words of a command line that Click reads without a word: an option given twice, an empty file name.

Click keeps the last of two values of a single-valued option silently (``aicap size --hardware a100-80gb-sxm --hardware
h100-sxm`` sized H100s only), and reads an empty word given for a file as ``Path("")``, the current folder (``--output ''``
said "--output .: is a directory", a value the user never typed; ``--catalog ''`` loaded the current folder as a
catalogue). :func:`check_words` refuses both, naming the option as typed, before the command runs. It runs in the root
callback: :class:`RootGroup` keeps the words after the root's own options, which Typer clears from the context first.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer._click.core import Command, Context
from typer.core import TyperArgument, TyperGroup, TyperOption

#: Key in the root context's ``meta``: every word given to ``aicap``, and the words after its own options.
_ALL, _REST = "aicap.argv.all", "aicap.argv.rest"


class RootGroup(TyperGroup):
    """The ``aicap`` group: keeps its words for :func:`check_words` (Typer clears them before the root callback runs)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        """Parse the root's options as Typer does, keeping every word and the words after them in ``ctx.meta``."""
        words = list(args)
        rest = super().parse_args(ctx, args)
        ctx.meta[_ALL], ctx.meta[_REST] = words, [*ctx._protected_args, *ctx.args]
        return rest


def check_words(ctx: typer.Context) -> None:
    """Refuse a single-valued option given twice with different values, and an empty word given for a file.

    Follows the sub-command names down the command tree, then reads the command's words as Click would: ``--opt value``
    and ``--opt=value`` (the value is skipped, so a value that looks like an option is not counted), until ``--``.
    Repeatable options and flags are left alone, as is one value given twice; a line asking for ``--help`` is not checked.

    Raises
    ------
    UsageError
        Click's, through ``Context.fail`` (exit 2): the message names the option and the values given, and the error line
        the command's ``--help``.
    """
    every, rest = list(ctx.meta.get(_ALL, [])), list(ctx.meta.get(_REST, []))
    if any(w in ("-h", "--help") for w in every[: every.index("--") if "--" in every else len(every)]):
        return  # help asked for: Click shows it, whatever else the line holds
    _scan(every[: len(every) - len(rest)], ctx.command, ctx)
    command: Command = ctx.command
    where: Context = ctx
    while rest and isinstance(command, TyperGroup):  # a group: its next word names the sub-command
        sub = command.get_command(where, rest[0])
        if sub is None:
            return  # an unknown command: Click says so, with the valid ones
        command, where, rest = sub, Context(sub, parent=where, info_name=rest[0]), rest[1:]
    _scan(rest, command, where)


def _is_path(param: TyperOption | TyperArgument) -> bool:
    """Whether a parameter is a file or folder (``Path``, ``Path | None`` or ``list[Path]``)."""
    annotation = param.type_descriptor.annotation
    return annotation is Path or Path in getattr(annotation, "__args__", ())


def _scan(words: list[str], command: Command, where: Context) -> None:
    """Refuse, in one command's words, a single-valued option given twice and an empty word for a file (see :func:`check_words`)."""
    options = [p for p in command.params if isinstance(p, TyperOption) and not p.is_flag and not p.count]
    taking = {opt: p for p in options for opt in p.opts}
    paths = [p for p in command.params if isinstance(p, TyperArgument)]
    file_arguments = bool(paths) and all(_is_path(p) for p in paths)
    given: dict[TyperOption, list[tuple[str, str]]] = {}
    k = 0
    while k < len(words):
        word = words[k]
        if word == "--":
            if file_arguments and "" in words[k + 1 :]:
                where.fail("'': an empty word where a file name was expected; give the file")
            break
        flag, eq, value = word.partition("=")
        if flag.startswith("--") and eq and flag in taking:
            k += 1
        elif not word.startswith("--") and len(word) > 2 and word[:2] in taking:  # -ofile: Click's short option, value attached
            flag, value, k = word[:2], word[2:], k + 1
        elif word in taking and k + 1 < len(words):
            flag, value, k = word, words[k + 1], k + 2
        else:
            if word == "" and file_arguments:
                where.fail("'': an empty word where a file name was expected; give the file")
            k += 1
            continue
        param = taking[flag]
        if value == "" and _is_path(param):
            where.fail(f"{flag} '': an empty path; give a file or folder name (an empty word reads as the current folder)")
        if not param.multiple:
            given.setdefault(param, []).append((flag, value))
    for param, uses in given.items():
        values = list(dict.fromkeys(value for _, value in uses))
        if len(values) > 1:
            name = max((flag for flag, _ in uses), key=len)
            several = re.match(r"(with --[a-z-]+: )?comma-separated", (param.help or "").lower()) is not None  # a list it allows
            joined = ",".join(dict.fromkeys(v.strip() for value in values for v in value.split(",") if v.strip()))
            hint = f"give it once, with the values comma-separated ({name} {joined})" if several else "give it once"
            times = "twice" if len(uses) == 2 else f"{len(uses)} times"
            where.fail(f"{name} given {times} ({', '.join(repr(v) for v in values)}); it takes one value and the last "
                       f"would silently win: {hint}")  # fmt: skip
