"""aicap's pure library: specs, the roofline performance model, and the sizer.

No Typer, no Rich, no printing. Everything the CLI does is one call away::

    from aicap.hardware_db import load_catalogue
    from aicap.sizing import builtin_fleet, size, verify

    cat = load_catalogue()
    plan = size(builtin_fleet(), cat)          # a typed, versioned Plan
    checks = verify(plan, cat)                 # the plan played through the simulator

Public names are imported lazily so that importing :mod:`aicap.sizing.core.errors` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "EstimateRequest": "aicap.sizing.serve.estimate",
    "EstimateResult": "aicap.sizing.serve.estimate",
    "estimate": "aicap.sizing.serve.estimate",
    "engine_step": "aicap.sizing.serve.step",
    "prefill_step": "aicap.sizing.serve.step",
    "decode_step": "aicap.sizing.serve.step",
    "Deployment": "aicap.sizing.core.deployment",
    "Fleet": "aicap.sizing.core.fleet",
    "Workload": "aicap.sizing.core.fleet",
    "Constraints": "aicap.sizing.core.constraints",
    "Plan": "aicap.sizing.core.plan",
    "load_fleet": "aicap.sizing.plan.fleet_io",
    "builtin_fleet": "aicap.sizing.plan.fleet_io",
    "load_plan": "aicap.sizing.plan.fleet_io",
    "any_plan_or_size": "aicap.sizing.plan.fleet_io",
    "PeriodPlan": "aicap.sizing.core.period_plan",
    "size_periods": "aicap.sizing.plan.periods",
    "size": "aicap.sizing.plan.sizer",
    "diff": "aicap.sizing.plan.diff",
    "Policy": "aicap.sizing.plan.policy",
    "check": "aicap.sizing.plan.policy",
    "verify": "aicap.sizing.sim.verify",
    "size_verified": "aicap.sizing.sim.verify",
    "AicapError": "aicap.sizing.core.errors",
    "InputError": "aicap.sizing.core.errors",
    "InfeasibleError": "aicap.sizing.core.errors",
    "ExitCode": "aicap.sizing.core.errors",
}
_RENAMED = {"check": "evaluate"}  # facade name -> name in its module

__all__ = [
    "AicapError",
    "Constraints",
    "Deployment",
    "EstimateRequest",
    "EstimateResult",
    "ExitCode",
    "Fleet",
    "InfeasibleError",
    "InputError",
    "PeriodPlan",
    "Plan",
    "Policy",
    "Workload",
    "any_plan_or_size",
    "builtin_fleet",
    "check",
    "decode_step",
    "diff",
    "engine_step",
    "estimate",
    "load_fleet",
    "load_plan",
    "prefill_step",
    "size",
    "size_periods",
    "size_verified",
    "verify",
]

if TYPE_CHECKING:  # precise types for mypy and editors; at run time names load lazily
    from aicap.sizing.core.constraints import Constraints
    from aicap.sizing.core.deployment import Deployment
    from aicap.sizing.core.errors import AicapError, ExitCode, InfeasibleError, InputError
    from aicap.sizing.core.fleet import Fleet, Workload
    from aicap.sizing.core.period_plan import PeriodPlan
    from aicap.sizing.core.plan import Plan
    from aicap.sizing.plan.diff import diff
    from aicap.sizing.plan.fleet_io import any_plan_or_size, builtin_fleet, load_fleet, load_plan
    from aicap.sizing.plan.periods import size_periods
    from aicap.sizing.plan.policy import Policy
    from aicap.sizing.plan.policy import evaluate as check
    from aicap.sizing.plan.sizer import size
    from aicap.sizing.serve.estimate import EstimateRequest, EstimateResult, estimate
    from aicap.sizing.serve.step import decode_step, engine_step, prefill_step
    from aicap.sizing.sim.verify import size_verified, verify


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'aicap.sizing' has no attribute {name!r}")
