"""The solver-ready integer program's data: :class:`Problem`, its checks and its variable bounds.

The formulation (indices, variables, constraints, objectives) is stated in :mod:`aicap.sizing.solve.milp`,
which solves it; this module holds what describes one instance of it, shared by the HiGHS path, the exact
search (:mod:`aicap.sizing.solve.exact`) and the candidate reduction (:mod:`aicap.sizing.solve.reduce`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
Objective = Literal["cost", "latency", "throughput"]

_INT_FIELDS = ("cand_workload", "cand_type", "cand_devices", "type_devices", "type_group")
_FLOAT_FIELDS = ("demand", "cand_capacity", "cand_latency", "type_price", "type_cap")


@dataclass(frozen=True, eq=False)
class Problem:
    """A solver-ready problem (symbols as in :mod:`aicap.sizing.solve.milp`).

    Attributes
    ----------
    demand : F
        ``λ_w`` [requests/s], shape ``(nw,)``; ``nan`` = no rate (objective ``throughput`` only).
    cand_workload, cand_type, cand_devices : I
        Workload index, instance-type index and ``d_c`` of each candidate, shape ``(nc,)``.
    cand_capacity, cand_latency : F
        ``q_c`` [requests/s] and ``lat_c`` [-] of each candidate, both finite and > 0.
    type_devices, type_price, type_group, type_cap : I, F, I, F
        ``D_t``, ``p_t`` [USD/hour], device group and ``cap_t`` (``np.inf`` = uncapped), shape ``(nt,)``.
    budget_per_hour : float or None
        ``B`` [USD/hour]; required for objectives ``latency`` and ``throughput``.
    objective, single_type, time_limit_s, mip_rel_gap
        What to optimise, whether one device group only, and HiGHS's limits.
    min_replicas : I or None
        ``k_w``, the fewest replicas each workload keeps whatever its demand (availability), shape ``(nw,)``;
        ``None``: none beyond what the demand needs.
    """

    demand: F
    cand_workload: I
    cand_type: I
    cand_devices: I
    cand_capacity: F
    cand_latency: F
    type_devices: I
    type_price: F
    type_group: I
    type_cap: F
    budget_per_hour: float | None = None
    objective: Objective = "cost"
    single_type: bool = False
    time_limit_s: float = 20.0
    mip_rel_gap: float = 1e-4
    min_replicas: I | None = None

    @property
    def floors(self) -> I:
        """``k_w`` per workload (0 where none is set)."""
        if self.min_replicas is None:
            return np.zeros(len(self.demand), dtype=np.int64)
        return np.asarray(self.min_replicas, dtype=np.int64)

    @property
    def has_floors(self) -> bool:
        """Whether a workload keeps more replicas than one (what the demand alone already needs)."""
        return bool((self.floors > 1).any())

    def without_limits(self) -> Problem:
        """The same problem without caps or budget, objective ``cost`` (to explain infeasibility).

        Raises
        ------
        ValueError
            If a workload has no rate (``nan`` demand): the cost objective needs every rate.
        """
        if np.isnan(np.asarray(self.demand, dtype=np.float64)).any():
            raise ValueError("without_limits: every workload needs a rate (no nan demand) for the cost objective")
        return replace(self, type_cap=np.full(np.shape(self.type_cap), np.inf), budget_per_hour=None, objective="cost")


class _Arrays(NamedTuple):
    """The problem's arrays with their dtypes fixed."""

    cw: I
    ct: I
    cd: I
    td: I
    grp: I
    dem: F
    q: F
    lat: F
    price: F
    cap: F


def _arrays(p: Problem) -> _Arrays:
    """Typed views of ``p``'s arrays (fields in ``_INT_FIELDS`` then ``_FLOAT_FIELDS`` order)."""
    i = [np.asarray(getattr(p, k), dtype=np.int64) for k in _INT_FIELDS]
    f = [np.asarray(getattr(p, k), dtype=np.float64) for k in _FLOAT_FIELDS]
    return _Arrays(i[0], i[1], i[2], i[3], i[4], f[0], f[1], f[2], f[3], f[4])


def validate(p: Problem) -> None:
    """Check shapes, index ranges and values of a problem.

    Raises
    ------
    ValueError
        On any inconsistency (a programming error of the caller), with the offending field named.
    """
    for name in _INT_FIELDS + _FLOAT_FIELDS:
        v, kinds = np.asarray(getattr(p, name)), "iu" if name in _INT_FIELDS else "fiu"
        if v.ndim != 1 or v.dtype.kind not in kinds:
            raise ValueError(f"{name} must be a 1-D {'integer' if kinds == 'iu' else 'numeric'} array, got {v.dtype} {v.shape}")
    nw, nc, nt = len(p.demand), len(p.cand_workload), len(p.type_devices)
    for name in ("cand_type", "cand_devices", "cand_capacity", "cand_latency", "type_price", "type_group", "type_cap"):
        if len(getattr(p, name)) != (nc if name.startswith("cand") else nt):
            raise ValueError(f"{name} has {len(getattr(p, name))} entries, expected {nc if name.startswith('cand') else nt}")
    if nw == 0 or nt == 0:
        raise ValueError("a problem needs at least one workload and one instance type")
    if p.objective not in ("cost", "latency", "throughput"):
        raise ValueError(f"unknown objective {p.objective!r}")
    a = _arrays(p)
    checks: list[tuple[Callable[[], bool], str]] = [  # in order: later checks index with what earlier ones vetted
        (lambda: bool(((a.cw < 0) | (a.cw >= nw)).any()), "cand_workload out of range"),
        (lambda: bool(((a.ct < 0) | (a.ct >= nt)).any()), "cand_type out of range"),
        (lambda: bool((a.grp < 0).any()), "type_group must be ≥ 0"),
        (lambda: bool((a.td < 1).any()), "type_devices must be ≥ 1"),
        (lambda: bool(((a.cd < 1) | ((a.cd & (a.cd - 1)) != 0)).any()), "cand_devices must be powers of two"),
        (lambda: bool(((a.td[a.ct] % a.cd != 0) & (a.cd % a.td[a.ct] != 0)).any()),
         "cand_devices must divide its type's device count or be a multiple of it (a replica spanning instances)"),
        (lambda: not bool(np.isfinite(a.q).all() and (a.q > 0).all()), "cand_capacity must be finite and > 0"),
        (lambda: not bool(np.isfinite(a.lat).all() and (a.lat > 0).all()), "cand_latency must be finite and > 0"),
        (lambda: not bool(np.isfinite(a.price).all() and (a.price >= 0).all()), "type_price must be finite and ≥ 0"),
        (lambda: bool((np.isnan(a.cap) | (a.cap < 0)).any()), "type_cap must be ≥ 0 (np.inf = uncapped)"),
        (lambda: bool((~np.isnan(a.dem) & ~(np.isfinite(a.dem) & (a.dem > 0))).any()), "demand must be finite and > 0, or nan"),
        (lambda: bool(np.isnan(a.dem).any()) and p.objective != "throughput", "nan demand (no rate) needs objective 'throughput'"),
        (lambda: p.objective != "cost" and p.budget_per_hour is None, f"objective {p.objective!r} needs budget_per_hour"),
        (lambda: p.budget_per_hour is not None and not (0 <= p.budget_per_hour < np.inf), "budget_per_hour must be finite and ≥ 0"),
        (lambda: not (p.time_limit_s > 0 and p.mip_rel_gap >= 0), "time_limit_s must be > 0 and mip_rel_gap ≥ 0"),
        (lambda: p.min_replicas is not None and (np.shape(p.min_replicas) != (nw,) or bool((p.floors < 0).any())),
         "min_replicas must have one count ≥ 0 per workload"),
        (lambda: bool((np.isnan(a.dem[a.cw]) & (a.price[a.ct] == 0) & np.isinf(a.cap[a.ct])).any()),
         "a workload without a rate has a candidate on a free, uncapped instance type: throughput is unbounded"),
    ]  # fmt: skip
    for bad, msg in checks:
        if bad():
            raise ValueError(msg)


def _bounds(p: Problem, a: _Arrays, extra_devices: F | None = None) -> tuple[F, F]:
    """Finite upper bounds of ``r_c`` and ``n_t`` (:mod:`aicap.sizing.solve.milp`), vectorised.

    ``extra_devices`` ``(nt,)``: devices per type that columns other than the candidates' may use at most
    (the cover columns of :mod:`aicap.sizing.solve.covers`), added to ``n_t``'s bound.
    """
    n_cap = np.floor(a.cap)
    if p.budget_per_hour is not None:
        afford = np.divide(p.budget_per_hour, a.price, out=np.full(len(a.price), np.inf), where=a.price > 0)
        n_cap = np.minimum(n_cap, np.floor(afford + 1e-9))
    by_cap = np.floor(a.td[a.ct] * n_cap[a.ct] / a.cd)  # td, cd ≥ 1: no 0 × inf
    need = np.maximum(np.ceil(a.dem[a.cw] / a.q), p.floors[a.cw])  # the floor k_w; a nan demand stays nan
    r_ub = np.fmin(need, by_cap)  # fmin: a nan demand (no rate) takes by_cap
    devices: F = np.bincount(a.ct, weights=a.cd * r_ub, minlength=len(a.td)).astype(np.float64)
    if extra_devices is not None:
        devices = devices + extra_devices
    return r_ub, np.minimum(np.ceil(devices / a.td), n_cap)
