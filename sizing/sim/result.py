"""Outcome of one simulated run: per-request latencies, percentiles and a stability verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.sim.token_gaps import GapSample

F = NDArray[np.float64]
Metric = Literal["ttft", "tpot", "e2e", "queue", "itl"]

STABLE_FINISHED = 0.99  # share of post-warm-up requests that must finish
STABLE_GROWTH = 1.5  # last-quarter mean TTFT may be at most this multiple of the second quarter's ...
STABLE_SLACK_S = 1.0  # ... or at most this many seconds above it
WARMUP = 0.1


@dataclass(frozen=True)
class SimResult:
    """Per-request latencies of one run, in the order of the input requests.

    Attributes
    ----------
    ttft_s : numpy.ndarray of float64
        Time to first token, seconds: end of the step that completes the prompt minus the arrival
        (an encoder request's latency). ``nan`` if the request never got its first token.
    tpot_s : numpy.ndarray of float64
        Time per output token, seconds: ``(finish − first token) / (output − 1)``; ``nan`` for
        ``output ≤ 1`` or unfinished requests.
    e2e_s : numpy.ndarray of float64
        End-to-end latency, seconds: finish minus arrival; ``nan`` if unfinished.
    finished : numpy.ndarray of bool
        Whether the request finished before the run ended.
    preemptions : int
        Preemptions (recompute) over the run.
    steps : int
        Engine steps; with ``pipeline_stages > 1``, pipeline rounds.
    mean_running : float
        Time-weighted mean number of running (admitted, unfinished) requests over ``[0, duration_s]``.
    mean_step_s : float
        Mean step (round) duration, seconds.
    duration_s : float
        Simulated time at the end of the last step, seconds (the clock starts at 0).
    arrival_s : numpy.ndarray of float64
        Arrival instants, seconds (as given), used for the warm-up cut and the stability test.
    rejected : int
        Requests never admitted because their peak KV need, ``ceil((input + max(output − 1, 0))/B)``
        blocks, exceeds one virtual engine's KV blocks (vLLM rejects them against ``max_model_len``).
        They count as unfinished.
    queue_s : numpy.ndarray of float64, optional
        Queue wait, seconds: start of the step that first admitted the request minus its arrival
        (``nan`` if never admitted); ``None`` when the run did not record it.
    priority : numpy.ndarray of int64, optional
        Priority class per request (``None``: one class).
    itl : GapSample, optional
        Inter-token gaps, token-weighted (:mod:`aicap.sizing.sim.token_gaps`); ``None`` when not recorded.
    """

    ttft_s: F
    tpot_s: F
    e2e_s: F
    finished: NDArray[np.bool_]
    preemptions: int
    steps: int
    mean_running: float
    mean_step_s: float
    duration_s: float
    arrival_s: F
    rejected: int = 0
    queue_s: F | None = None
    priority: NDArray[np.int64] | None = None
    itl: GapSample | None = None

    def _post_warmup(self, warmup: float) -> NDArray[np.intp]:
        """Indices of the requests after the first ``warmup`` fraction by arrival (stable order)."""
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}")
        order = np.argsort(self.arrival_s, kind="stable")
        return order[int(warmup * order.size) :]

    def percentile(self, metric: Metric, q: float, *, warmup: float = WARMUP) -> float:
        """The ``q`` quantile of ``metric`` over the requests after warm-up.

        Parameters
        ----------
        metric : {"ttft", "tpot", "e2e", "queue", "itl"}
            Latency, in seconds; ``"itl"`` is over the tokens emitted from the first post-warm-up arrival on
            (:meth:`itl_after_warmup`).
        q : float
            Quantile in ``(0, 1)`` (0.99 for p99).
        warmup : float, optional
            Fraction of requests, earliest arrivals first, dropped as warm-up (default 0.1).

        Returns
        -------
        float
            Seconds, numpy's ``"linear"`` percentile of the non-``nan`` values; ``nan`` if there are
            none.
        """
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1), got {q}")
        if metric == "itl":
            gaps = self.itl_after_warmup(warmup)
            if gaps is None:
                raise ValueError("this run did not record inter-token gaps")
            return gaps.quantile(q)
        values = {"ttft": self.ttft_s, "tpot": self.tpot_s, "e2e": self.e2e_s, "queue": self.queue_s}.get(metric)
        if values is None:
            raise ValueError(f"unknown metric {metric!r}; expected 'ttft', 'tpot', 'e2e' or 'queue' (when recorded)")
        x = values[self._post_warmup(warmup)]
        x = x[~np.isnan(x)]
        return float(np.percentile(x, 100.0 * q, method="linear")) if x.size else float("nan")

    def worst_stretch(self, metric: Literal["ttft", "tpot"], q: float, stretches: int, *, warmup: float = WARMUP) -> float:
        """The largest ``q`` quantile of ``metric`` over ``stretches`` consecutive, equal stretches of the run after warm-up.

        The requests after warm-up, in arrival order, are cut into ``stretches`` contiguous parts and each part's
        :meth:`percentile` is taken: ``max_k Q_q(part_k)``. One run's percentile is a draw that another run of as many
        requests exceeds about half the time; the worst stretch's, a tail the run held throughout, less often (for a bursty
        workload's hour, about one run in twenty for TTFT and one in twelve for TPOT: :mod:`aicap.sizing.sim.verify`).

        Returns
        -------
        float
            Seconds; ``nan`` if no stretch has a value.
        """
        if not 0.0 < q < 1.0 or stretches < 1:
            raise ValueError(f"q must be in (0, 1) and stretches >= 1, got {q}, {stretches}")
        values = self.ttft_s if metric == "ttft" else self.tpot_s
        worst = float("nan")
        for part in np.array_split(values[self._post_warmup(warmup)], stretches):
            x = part[~np.isnan(part)]
            if x.size:
                p = float(np.percentile(x, 100.0 * q, method="linear"))
                worst = p if np.isnan(worst) else max(worst, p)
        return worst

    def itl_after_warmup(self, warmup: float = WARMUP) -> GapSample | None:
        """The inter-token gaps of tokens emitted from the first post-warm-up arrival on (``None`` when not recorded)."""
        if self.itl is None:
            return None
        post = self._post_warmup(warmup)
        return self.itl.after(float(self.arrival_s[post[0]]) if post.size else np.inf)

    @property
    def finished_after_warmup(self) -> bool:
        """Whether at least 99% of the requests after the 10% warm-up finished.

        It is the whole verdict of a closed loop, whose queue its clients bound.
        """
        post = self._post_warmup(WARMUP)
        return not post.size or bool(self.finished[post].mean() >= STABLE_FINISHED)

    @property
    def stable(self) -> bool:
        """Heuristic verdict that the replica kept up with the traffic.

        True when both hold:

        1. at least 99% of the requests after the 10% warm-up finished, and
        2. the waiting queue did not grow through the run: with the requests split into quarters by
           arrival, the mean TTFT of the last quarter ``m₄`` is not both ``> 1.5·m₂`` and ``> m₂ + 1 s``,
           ``m₂`` the mean TTFT of the second quarter (``nan`` TTFTs ignored; a last quarter without any
           first token is unstable), and
        3. nor did the requests in the system (:meth:`_backlog_grows`), which catches an overload that a
           length-ordered queue hides from the TTFT in arrival order.

        Under overload the queue, and so TTFT, grows linearly with arrival time from the moment the
        replica saturates; from the start of the run that gives ``m₄/m₂ = 0.875/0.375 ≈ 2.3`` (a 3×
        threshold would miss it), less if saturation comes later. In a stable run ``m₄ ≈ m₂``. The 1 s
        slack keeps noise on millisecond-scale TTFTs from tripping the ratio. Runs near saturation can
        go either way.
        """
        n = self.arrival_s.size
        if n == 0:
            return True
        if not self.finished_after_warmup:
            return False
        order = np.argsort(self.arrival_s, kind="stable")
        q2 = self.ttft_s[order[n // 4 : n // 2]]
        q4 = self.ttft_s[order[3 * n // 4 :]]
        q2, q4 = q2[~np.isnan(q2)], q4[~np.isnan(q4)]
        if q4.size == 0:
            return False
        if q2.size == 0:
            return True
        m2, m4 = float(q2.mean()), float(q4.mean())
        return not (m4 > STABLE_GROWTH * m2 and m4 > m2 + STABLE_SLACK_S) and not self._backlog_grows(order)

    def _backlog_grows(self, order: NDArray[np.intp]) -> bool:
        """Whether the requests in the system grew through the run, whatever order the queue served them in.

        A policy that serves the shortest first (SRTF, SJF) keeps an overloaded queue's TTFT flat in arrival order (the
        long requests wait to the end, whenever they came), so the TTFT test alone called 8 req/s served of 30 "stable".
        At each arrival ``i`` (in arrival order) the backlog is the requests still waiting for their first token,
        ``N_i = i − #{t_j + TTFT_j < t_i}`` (requests never admitted left out); stable, it hovers at ``λ·E[TTFT]``
        (counted to the last token instead, it climbs to ``λ·E[e2e]`` over the first e2e seconds of a run, and a
        short run of long outputs looked unstable). It grows as the TTFT does, with the same bounds: the last
        quarter's mean ``n₄`` is not both ``> 1.5·n₂`` and ``> n₂ + λ·1 s``, ``λ = n/span`` the arrival rate
        (Little's law turns the TTFT's 1 s slack into requests).
        """
        served = order[~np.isnan(self.ttft_s[order])]  # requests never admitted (too long for the KV cache) wait for nothing
        n = served.size
        arrivals = self.arrival_s[served]
        span = float(arrivals[-1] - arrivals[0]) if n else 0.0
        if n < 8 or span <= 0:
            return False
        first = np.sort(self.arrival_s[served] + self.ttft_s[served])
        backlog = np.arange(n) - np.searchsorted(first, arrivals, side="left")
        n2, n4 = float(backlog[n // 4 : n // 2].mean()), float(backlog[3 * n // 4 :].mean())
        return n4 > STABLE_GROWTH * n2 and n4 > n2 + n / span * STABLE_SLACK_S
