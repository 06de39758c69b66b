"""Pictures of one simulated run: latency, queue length, running batch and KV-cache use over time.

Needs the ``plot`` extra (matplotlib).

The queue length at time ``t`` is the number of requests that have arrived but not yet been admitted,
``Q(t) = #{arrival ≤ t} − #{admission ≤ t}``, drawn as a step function over the run.
"""

from __future__ import annotations

import numpy as np

from aicap.sizing.core.figures import pyplot
from aicap.sizing.sim.cluster import ClusterStats
from aicap.sizing.sim.result import SimResult


def queue_length(res: SimResult) -> tuple[np.ndarray, np.ndarray]:
    """Times [s] and queue lengths right after each arrival or admission (module docstring).

    Requests never admitted (rejected, or still waiting when the run stopped) are left out.
    """
    admit = res.arrival_s + (res.queue_s if res.queue_s is not None else np.zeros_like(res.arrival_s))
    seen = ~np.isnan(admit)
    t = np.concatenate([res.arrival_s[seen], admit[seen]])
    step = np.concatenate([np.ones(int(seen.sum())), -np.ones(int(seen.sum()))])
    order = np.lexsort((-step, t))  # at one instant, an arrival counts before its own admission
    return t[order], np.cumsum(step[order])


def plot_run(res: SimResult, stats: ClusterStats, path: str, title: str) -> None:
    """Write TTFT and TPOT per request by arrival time, the queue length, and the running batch and KV use over time to ``path``.

    ``path`` ends in .png or .svg.

    Raises
    ------
    InputError
        Without matplotlib (install the ``plot`` extra).
    """
    plt = pyplot()
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    ax1.scatter(res.arrival_s, res.ttft_s * 1e3, s=2, alpha=0.4, label="TTFT")
    if not np.isnan(res.tpot_s).all():
        ax1.scatter(res.arrival_s, res.tpot_s * 1e3, s=2, alpha=0.4, label="TPOT")
    ax1.set_yscale("log")
    ax1.set_ylabel("ms (per request, by arrival)")
    ax1.legend(markerscale=4, fontsize=8)
    t, q = queue_length(res)
    ax2.step(t, q, where="post", linewidth=0.8)
    ax2.set_ylabel("requests waiting")
    if stats.timeline:
        tl = np.array(stats.timeline, dtype=np.float64)
        ax3.plot(tl[:, 0], tl[:, 1], linewidth=0.8, label="running (all replicas)")
        ax3.set_ylabel("requests running")
        kv = ax3.twinx()
        kv.plot(tl[:, 0], 100.0 * tl[:, 3] / max(stats.kv_blocks * len(stats.busy_s), 1), color="tab:red", linewidth=0.8)
        kv.set_ylabel("KV cache held (%)", color="tab:red")
    ax3.set_xlabel("simulated time (s)")
    ax1.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
