"""Chargeback over demand periods: each workload's share of what a plan over hours costs.

A plan over periods holds instances of several types, hour by hour, some of them committed for the whole horizon;
workloads share them. Each hour, each type's cost is split over the workloads in proportion to the devices their
replicas hold of that type then (:func:`period_shares`), so a workload pays for the hours and the devices it uses,
and for its part of the headroom and idle devices of the instances it runs on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]


def period_shares(cost: F, use: F) -> F:
    """Each workload's share of the cost of a plan over periods [USD over the horizon].

    Parameters
    ----------
    cost : F
        ``c_{t,h}``, shape ``(nt, H)``: what instance type ``t`` costs in hour ``h`` [USD] (its hourly and spot
        instances, and its commitments' share of the hour).
    use : F
        ``d_{w,t,h}``, shape ``(nw, nt, H)``: devices of type ``t`` the replicas of workload ``w`` hold in hour ``h``.

    Returns
    -------
    F
        ``C_w = Σ_h Σ_t c_{t,h}·d_{w,t,h} / Σ_v d_{v,t,h}``, shape ``(nw,)`` [USD]. A type that costs something in an
        hour none of its devices is used (a commitment idle that hour) is split by the workloads' device-hours on
        that type over the horizon, else by their device-hours on any type, else evenly; so ``Σ_w C_w = Σ c``.
    """
    cost = np.asarray(cost, dtype=float)
    use = np.asarray(use, dtype=float)
    nw = use.shape[0]
    if nw == 0:
        return np.zeros(0)
    held = use.sum(axis=0)  # (nt, H)
    weight = np.where(held > 0, use / np.where(held > 0, held, 1.0), 0.0)  # (nw, nt, H)
    out = np.einsum("th,wth->w", cost, weight)
    idle = np.where(held > 0, 0.0, cost).sum(axis=1)  # (nt,): cost in hours none used the type
    if np.any(idle > 0):
        by_type = use.sum(axis=2)  # (nw, nt) device-hours per type
        anywhere = by_type.sum(axis=1)  # (nw,)
        fallback = anywhere / anywhere.sum() if anywhere.sum() > 0 else np.full(nw, 1.0 / nw)
        for t in np.flatnonzero(idle > 0).tolist():
            total = by_type[:, t].sum()
            out += idle[t] * (by_type[:, t] / total if total > 0 else fallback)
    return np.asarray(out, dtype=float)
