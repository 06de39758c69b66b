"""Options shared by every command (set by the root callback) and catalogue access."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from aicap.hardware_db import Catalogue


P = ParamSpec("P")
R = TypeVar("R")


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`~aicap.sizing.core.errors.AicapError` into one stderr line and its exit code.

    The line reads ``aicap: error: ...``; the exit code is the error's documented one. Never a traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from aicap.sizing.core.errors import AicapError

        try:
            return fn(*args, **kwargs)
        except AicapError as exc:
            sys.stderr.write(f"aicap: error: {exc}\n")
            raise typer.Exit(int(exc.exit_code)) from None

    return wrapper


@dataclass
class State:
    """Global flags: verbosity and catalogue overlays."""

    verbose: bool = False
    quiet: bool = False
    catalogs: list[Path] = field(default_factory=list)


STATE = State()


def info(message: str) -> None:
    """Write a progress or context line to stderr unless ``--quiet``."""
    if not STATE.quiet:
        sys.stderr.write(message + "\n")


def debug(message: str) -> None:
    """Write a line to stderr only with ``--verbose``."""
    if STATE.verbose and not STATE.quiet:
        sys.stderr.write(message + "\n")


def catalogue() -> Catalogue:
    """Load the catalogues with ``--catalog`` and ``AICAP_CATALOG`` overlays; report overrides."""
    from aicap.hardware_db import catalogue_dirs_from_env, load_catalogue

    cat = load_catalogue(tuple(catalogue_dirs_from_env() + STATE.catalogs))
    for line in cat.overrides:
        debug(f"aicap: {line}")
    return cat
