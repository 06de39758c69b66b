"""A replica at a given request rate: the load model (:mod:`aicap.sizing.serve.load`) inverted.

The load model is written in the arrivals per round ``x``; a plan gives each replica a rate ``λ``. :func:`at_rate`
finds the ``x`` whose ``λ(x) = x/τ(x)`` is that rate, by bisection, and where an engine's CUDA graphs stop at a batch
size (:mod:`aicap.sizing.serve.graph_cap`) picks, of the two loads that then carry a rate, the one the replica holds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.serve.load import at_arrivals, at_arrivals_of, of_rows
from aicap.sizing.serve.loaded import Loaded, Traffic
from aicap.sizing.serve.search import bisect_rows
from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]
_RATE_BISECTIONS = 30  # inverting λ(x): 2^-30 of the range


def at_rate(step: StepModel, pp: ArrayLike, budget: float, traffic: Traffic, rate: ArrayLike) -> Loaded:
    """Metrics of replicas receiving ``rate`` requests/s (inverts ``λ(x) = x/τ(x)`` by bisection).

    Where the rate exceeds what the replica can carry, the result is unstable (``stable`` is False).

    An engine whose CUDA graphs stop at ``G`` decoders has a round that jumps where ``d`` crosses ``G`` (the
    launches bind above it), so ``λ(x)`` falls there before it rises again, and a rate below the fall is met
    twice: by ``d < G`` and by a slower ``d > G``. A replica that starts empty settles on the first, the
    smallest ``x`` whose ``λ(x)`` reaches the rate: the bisection runs on the step with every batch graphed
    (``λ`` increasing, equal below ``G``). It stays there only while its running count rarely reaches ``G``
    (:data:`~aicap.sizing.serve.graph_cap.GRAPH_SIGMAS`): where the count reaches it (``graph_use`` over 1) or the answer lies past ``G``,
    and the step as it is carries less than the rate just past ``G`` (so that the slow equilibrium exists),
    the replica is taken where it ends up, at the smallest ``x`` past ``G`` that carries the rate.
    """
    pp_a = np.asarray(pp, dtype=float)
    lam = np.asarray(rate, dtype=float)
    shape = np.broadcast_shapes(pp_a.shape, traffic.input_tokens.shape, lam.shape)
    o1 = traffic.decode_steps
    top = np.broadcast_to(budget * pp_a / np.maximum(traffic.input_tokens, 1.0) + traffic.slots / (o1 + 1.0), shape).astype(float)
    lam_b = np.broadcast_to(lam, shape)

    def under(model: StepModel, pp_r: F, tr: Traffic, lam_r: F) -> Callable[[NDArray[np.int64] | None, F], NDArray[np.bool_]]:
        def below(rows: NDArray[np.int64] | None, x: F) -> NDArray[np.bool_]:
            return np.asarray(at_arrivals_of(model, pp_r, budget, tr, rows, x, ttft=False).rate < of_rows(lam_r, rows))

        return below

    graphed = step.all_graphed()
    _, hi = bisect_rows(under(graphed, pp_a, traffic, lam_b), np.zeros(shape), top, _RATE_BISECTIONS)
    out = at_arrivals(step, pp_a, budget, traffic, hi)
    if graphed is not step:  # where the graphed equilibrium does not hold: the slow one, on the step as it is
        assert step.graph_max is not None
        pp_b = np.broadcast_to(pp_a, shape)
        cap = np.broadcast_to(step.graph_max, shape)  # -inf: an eager row, the same on both models
        rows = np.flatnonzero((cap >= 0.0) & np.isfinite(cap) & ((hi * np.broadcast_to(o1, shape) / pp_b > cap) | (out.graph_use > 1.0)))
        if rows.size:
            # Just past G: the slow equilibrium exists where the step as it is carries less than the rate there.
            o1_r = np.maximum(np.broadcast_to(o1, shape)[rows], 1e-9)
            past_g = np.maximum(hi[rows], cap[rows] * pp_b[rows] / o1_r * (1.0 + 1e-9) + 1e-12)
            real = under(step.take(rows), pp_b[rows], traffic.take(rows), lam_b[rows])
            slow = real(None, past_g)
            if (past := rows[slow]).size:
                real = under(step.take(past), pp_b[past], traffic.take(past), lam_b[past])
                _, hi_past = bisect_rows(real, past_g[slow].copy(), top[past].copy(), _RATE_BISECTIONS)
                hi = hi.copy()
                hi[past] = hi_past
                out = out.copy()
                out.put(past, at_arrivals(step.take(past), pp_b[past], budget, traffic.take(past), hi_past))
    reached = out.rate >= lam * (1 - 1e-6)
    inf = np.full(shape, np.inf)
    return Loaded(
        arrivals_per_round=out.arrivals_per_round,
        rate=np.broadcast_to(lam, shape).astype(float),
        round_s=out.round_s,
        running=out.running,
        ttft_s=np.where(reached, out.ttft_s, inf),
        tpot_s=np.where(reached, out.tpot_s, inf),
        budget_use=np.where(reached, out.budget_use, inf),
        slot_use=np.where(reached, out.slot_use, inf),
        graph_use=out.graph_use,
    )
