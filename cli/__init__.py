"""The ``aicap`` command line: a thin Typer layer over :mod:`aicap.sizing`."""
