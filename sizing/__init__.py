"""aicap's pure library: specs, the roofline performance model, and the sizer.

No Typer, no Rich, no printing. Everything the CLI does is one call away::

    from aicap.hardware_db import load_catalogue
    from aicap.sizing import EstimateRequest, estimate, size, builtin_fleet

Public names are imported lazily so that importing :mod:`aicap.sizing.core.errors` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EstimateRequest": "aicap.sizing.serve.estimate",
    "EstimateResult": "aicap.sizing.serve.estimate",
    "estimate": "aicap.sizing.serve.estimate",
    "Fleet": "aicap.sizing.core.fleet",
    "Workload": "aicap.sizing.core.fleet",
    "load_fleet": "aicap.sizing.plan.fleet_io",
    "builtin_fleet": "aicap.sizing.plan.fleet_io",
    "size": "aicap.sizing.plan.sizer",
    "Plan": "aicap.sizing.core.plan",
    "AicapError": "aicap.sizing.core.errors",
    "InputError": "aicap.sizing.core.errors",
    "InfeasibleError": "aicap.sizing.core.errors",
    "ExitCode": "aicap.sizing.core.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aicap.sizing' has no attribute {name!r}")
