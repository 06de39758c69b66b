"""aicap's pure library: specs, the roofline performance model, and the sizer.

No Typer, no Rich, no printing. Everything the CLI does is one call away::

    from aicap.hardware_db import load_catalogue
    from aicap.sizing import EstimateRequest, estimate, size, builtin_fleet

Public names are imported lazily so that importing :mod:`aicap.sizing.errors` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EstimateRequest": "aicap.sizing.estimate",
    "EstimateResult": "aicap.sizing.estimate",
    "estimate": "aicap.sizing.estimate",
    "Fleet": "aicap.sizing.fleet",
    "Workload": "aicap.sizing.fleet",
    "load_fleet": "aicap.sizing.fleet_io",
    "builtin_fleet": "aicap.sizing.fleet_io",
    "size": "aicap.sizing.sizer",
    "Plan": "aicap.sizing.plan",
    "AicapError": "aicap.sizing.errors",
    "InputError": "aicap.sizing.errors",
    "InfeasibleError": "aicap.sizing.errors",
    "ExitCode": "aicap.sizing.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aicap.sizing' has no attribute {name!r}")
