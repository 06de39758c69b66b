"""Independent integer programs solved as one block-diagonal program.

HiGHS spends about 10 ms setting up each mixed-integer solve that its presolve does not finish, however
small the problem; a plan's alternatives (one small program per device type) pay it a dozen times. Put
side by side, with each block's workloads, candidates and instance types re-indexed, the programs share
one setup. The cost objective is a sum over blocks and no row spans two blocks, so the combined optimum
restricted to a block is that block's optimum. The combined solve stops at a relative gap of
``BLOCK_GAP`` of the *total*; a block that is ``k`` times cheaper than the total may be up to ``k``
times that gap above its own optimum (HiGHS proves these small programs optimal, gap 0, in practice).
Blocks share no instance type, so when the combined program is small enough for the exact search of
:mod:`aicap.sizing.solve.exact` each block is searched as a part of its own, exactly.

Only blocks of at most ``COMBINE_MAX_CANDIDATES`` candidates are put together: a larger block's own
solve takes tens of times the setup it would share (a 1,000-workload fleet's alternative on one device
type: 5,768 candidates, 0.9 s), and one infeasible block makes the combined program infeasible, after
which every block is solved again alone (0.26 s lost on that fleet, whose other alternative cannot pack
within the availability caps). A block whose demand needs more devices than its caps hold, whatever the
layout, is therefore solved alone from the start (the built-in example's L4 alternative: 85,870 devices
at the least, 7,680 under the cap of 256 instances a type; the combined solve had taken 0.2 s to find the
program infeasible).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.solve.milp import Problem, Solution, solve

BLOCK_GAP = 1e-6  # relative gap of the combined program's total cost
COMBINE_MAX_CANDIDATES = 2048  # larger blocks are solved alone (module docstring)


def _separable(p: Problem) -> bool:
    """Whether ``p`` has no row that would span blocks: cost objective, no budget, no single device type."""
    return p.objective == "cost" and p.budget_per_hour is None and not p.single_type


def surely_infeasible(p: Problem) -> bool:
    """Whether ``p``'s demand needs more devices than its caps allow: ``Σ_w λ_w / max_{c∈w} (q_c/d_c) > Σ_t cap_t·D_t``.

    A necessary condition of feasibility (each workload needs at least ``λ_w`` over its best capacity per device,
    and no device serves two replicas), so a ``True`` is a proof; ``False`` proves nothing. A workload with demand
    and no candidate needs infinitely many.
    """
    dem = np.nan_to_num(np.asarray(p.demand, dtype=np.float64))
    cw = np.asarray(p.cand_workload, dtype=np.int64)
    per_device = np.asarray(p.cand_capacity, dtype=np.float64) / np.asarray(p.cand_devices, dtype=np.float64)
    best = np.zeros(len(dem))
    np.maximum.at(best, cw, per_device)
    with np.errstate(divide="ignore"):
        need = float(np.where(dem > 0.0, dem / best, 0.0).sum())
    have = float(np.asarray(p.type_cap, dtype=np.float64) @ np.asarray(p.type_devices, dtype=np.float64))
    return need > have * (1.0 + 1e-9)


def solve_blocks(problems: Sequence[Problem]) -> list[Solution]:
    """Solve each of ``problems`` (see :func:`~aicap.sizing.solve.milp.solve`), several at once where they allow it.

    Problems with the cost objective, no budget, no ``single_type`` and at most
    ``COMBINE_MAX_CANDIDATES`` candidates are solved as one program (time limit the sum of theirs); the
    others, and every problem when the combined program has no solution (one infeasible block makes it
    infeasible), are solved one by one. A problem whose demand needs more devices than its caps hold
    (:func:`surely_infeasible`) is kept out of the combined program: it would make it infeasible. Each returned
    :class:`~aicap.sizing.solve.milp.Solution` covers its own problem's candidates, types and
    workloads; ``gap``, ``seconds`` and ``message`` are the combined solve's.
    """
    together = [k for k, p in enumerate(problems)
                if _separable(p) and len(p.cand_workload) <= COMBINE_MAX_CANDIDATES and not surely_infeasible(p)]  # fmt: skip
    out: list[Solution | None] = [None] * len(problems)
    if len(together) > 1:
        for k, sol in zip(together, _combined([problems[k] for k in together]), strict=True):
            out[k] = sol
    return [s if s is not None else solve(p) for s, p in zip(out, problems, strict=True)]


def _combined(ps: Sequence[Problem]) -> list[Solution | None]:
    """The blocks' solutions from one combined solve, or ``None`` each when it has none."""
    ws = np.cumsum([0] + [len(p.demand) for p in ps])
    cs = np.cumsum([0] + [len(p.cand_workload) for p in ps])
    ts = np.cumsum([0] + [len(p.type_devices) for p in ps])

    def cat(name: str) -> NDArray[np.float64]:
        return np.concatenate([np.asarray(getattr(p, name), dtype=np.float64) for p in ps])

    def idx(name: str, offsets: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.concatenate([np.asarray(getattr(p, name), dtype=np.int64) + offsets[k] for k, p in enumerate(ps)])

    combined = Problem(
        demand=cat("demand"), cand_workload=idx("cand_workload", ws), cand_type=idx("cand_type", ts),
        cand_devices=idx("cand_devices", np.zeros(len(ps), np.int64)), cand_capacity=cat("cand_capacity"),
        cand_latency=cat("cand_latency"), type_devices=idx("type_devices", np.zeros(len(ps), np.int64)), type_price=cat("type_price"),
        type_group=idx("type_group", np.zeros(len(ps), np.int64)), type_cap=cat("type_cap"), objective="cost",
        time_limit_s=sum(p.time_limit_s for p in ps), mip_rel_gap=min(BLOCK_GAP, *(p.mip_rel_gap for p in ps)),
    )  # fmt: skip
    both = solve(combined)
    if not both.has_solution:
        return [None] * len(ps)
    out: list[Solution | None] = []
    for k, p in enumerate(ps):
        c, t, w = slice(cs[k], cs[k + 1]), slice(ts[k], ts[k + 1]), slice(ws[k], ws[k + 1])
        n = both.instances[t]
        cost = float(np.asarray(p.type_price, dtype=np.float64) @ n)
        out.append(Solution(both.status, both.replicas[c], n, both.served[w], both.share[c], cost, both.gap, both.seconds, both.message))
    return out
