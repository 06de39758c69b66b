"""The CUDA-graph batch cap of an engine: how close a replica's running count may come to it (``graph_use``).

A decode batch over ``G`` runs without its graphs, its step bound by the host's launches (often twice as long), so
past ``G`` the rate a replica carries falls (for Qwen3-30B-A3B on one H100 under SGLang, 800/200 tokens, from 31 to 15
requests/s). Every rate between the two is met twice, by ``d < G`` and by a slower ``d > G``; a count that once
reaches ``G`` slows its steps, which keeps requests longer and raises the count: the replica falls to the slow
equilibrium and stays, as no fluctuation brings it back. The fast one holds only while reaching ``G`` is rare: the
count relaxes like an Ornstein–Uhlenbeck process over a request's life ``T``, whose mean time to first reach ``k``
spreads is about ``T·sqrt(2π)·e^(k²/2)/k``, ``1.4·10⁴·T`` at ``k = 4.5`` (hours to days for lives of seconds to a
minute). Near the cap the iteration-level simulator's count runs up to 8% above this model's and its spread up to
15% wider (the case above at 0.79 of capacity: 164 ± 21 against 151 ± 18), so 4.5 of its spreads take 5.5 of the
model's. There, in an hour of simulated traffic (80,000 requests): at 0.79 of capacity (``G`` 5.8 model spreads
off) it stays graphed, at 0.82 (4.9) it falls, TPOT p99 39 -> 115 ms; at the load where ``graph_use`` reaches 1 it
stays graphed (and so it does for Qwen3-30B-A3B at 300/600 and Llama-3.1-8B at 200/800 and 2,000/100 tokens).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.serve.step_model import StepModel

F = NDArray[np.float64]
GRAPH_SIGMAS = 5.5  # spreads of the running count the cap must lie beyond, on the graphed side (module docstring)


def graph_use(step: StepModel, d: F, sd: F) -> F:
    """``(d + K·σ_d)/G`` where decode batches are graphed up to ``G`` and the mean ``d`` is at most ``G``, else 0.

    Parameters
    ----------
    step
        The step model (its ``graph_max``: ``G`` per row, ``inf`` without a cap, ``-inf`` eager).
    d, sd
        Mean decoding sequences per micro-batch and their standard deviation.

    Returns
    -------
    numpy.ndarray
        The share of the cap the count's reach uses (``K`` is :data:`GRAPH_SIGMAS`): past 1 the graphed load does not hold.
    """
    if step.graph_max is None:
        return np.zeros(np.shape(d))
    g = np.broadcast_to(step.graph_max, np.shape(d))
    capped = np.isfinite(g) & (g >= 0.0) & (d <= g)
    return np.asarray(np.where(capped, (d + GRAPH_SIGMAS * sd) / np.maximum(g, 1.0), 0.0), dtype=float)
