"""Figures: matplotlib's ``pyplot``, imported only when a picture is asked for (the ``plot`` extra)."""

from __future__ import annotations

from types import ModuleType

from aicap.sizing.core.errors import InputError


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display).

    Raises
    ------
    InputError
        Without matplotlib: one line saying how to install the ``plot`` extra.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install '.[plot]' from the aicap repository") from None
    plt: ModuleType = matplotlib.pyplot  # typed here: without the plot extra installed, mypy sees Any
    return plt
