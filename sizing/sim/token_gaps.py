"""Inter-token latency (ITL): the gaps between one request's consecutive output tokens, as a token-weighted sample.

TPOT is a per-request mean, ``(finish − first token)/(O − 1)``; what a streaming client sees token by token
is the inter-token latency, each gap between two tokens of the same request. A step that prefills new
prompts, a round of a pipeline, a decoder skipped for lack of budget or a prefill-only step (vLLM v0,
TurboMind) all lengthen a gap, and the tail of the gaps (ITL p99) is where they show.

A virtual engine tracks the gaps without touching its decoders one by one (the simulator's decode clock
never does): decoders whose last token came at the end of the engine's last decode step (``last``) are
counted together (``regular``); the others, which got their first token in a prefill-only step or were
skipped by a step, are kept in groups by the instant of their last token, oldest first. A decode step that
schedules ``d`` decoders emits ``d`` gaps: the regular decoders first (they are the oldest admitted, which
the scheduler serves first), then the groups in order; each gap is the step's end minus the group's instant.
A step stores its end and its regular decoders (their gap is the time since the previous decode step,
taken by ``np.diff`` when the run is summarised), plus a sample per group it reaches.

Approximations: the decoders a step skips are taken to be the newest (the scheduler decodes oldest first);
a preempted decoder is taken from the newest group; a recomputed request's token after its re-prefill counts
as a first token, not a gap; with speculative decoding a step's accepted tokens arrive together and count as
one gap.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]


class TokenGaps:
    """The inter-token gaps of one virtual engine (module docstring)."""

    __slots__ = ("counts", "ends", "extra", "groups", "last", "regular")

    def __init__(self) -> None:
        self.last = -math.inf  # end of the last step that decoded, seconds
        self.regular = 0  # decoders whose last token came at ``last``
        self.groups: deque[list[float]] = deque()  # [instant of last token, decoders], oldest first
        # One entry per decode step: its end [s] and the regular decoders it decoded, whose gap is the time
        # since the previous decode step's end (so the hot loop stores two numbers and computes nothing).
        self.ends: list[float] = []
        self.counts: list[int] = []
        self.extra: list[tuple[float, float, int]] = []  # the groups' samples: (step end [s], gap [s], tokens)

    def decoded(self, now_s: float, d: int) -> None:
        """A step ending at ``now_s`` emitted one token for each of ``d`` scheduled decoders."""
        take = min(d, self.regular)
        self.ends.append(now_s)
        self.counts.append(take)
        if take == d == self.regular and not self.groups:  # the common step: the same decoders as last step, none skipped
            self.last = now_s
            return
        rest, left = d - take, self.regular - take
        groups = self.groups
        while rest and groups:
            g = groups[0]
            k = min(rest, int(g[1]))
            self.extra.append((now_s, now_s - g[0], k))
            rest -= k
            if k == g[1]:
                groups.popleft()
            else:
                g[1] -= k
        if left:
            groups.appendleft([self.last, float(left)])  # skipped: the oldest of those still waiting for a token
        self.regular = d - rest
        self.last = now_s

    def started(self, now_s: float, n: int) -> None:
        """``n`` requests got their first token at ``now_s`` and go on decoding."""
        if now_s == self.last:
            self.regular += n
        elif self.groups and self.groups[-1][0] == now_s:
            self.groups[-1][1] += n
        else:
            self.groups.append([now_s, float(n)])

    def finished(self, n: int) -> None:
        """``n`` decoders emitted their last token in the step just decoded and leave."""
        self.regular = max(self.regular - n, 0)

    def preempted(self) -> None:
        """One decoder stopped decoding (preempted): the newest group's, else a regular one."""
        if self.groups:
            g = self.groups[-1]
            g[1] -= 1
            if g[1] <= 0:
                self.groups.pop()
        elif self.regular:
            self.regular -= 1


@dataclass(frozen=True)
class GapSample:
    """Token-weighted inter-token gaps of a run: each ``gap_s[i]`` was had by ``count[i]`` tokens emitted at ``at_s[i]``."""

    at_s: F
    gap_s: F
    count: F

    @classmethod
    def of(cls, trackers: list[TokenGaps]) -> GapSample:
        """All trackers' samples together."""
        parts = []
        for t in trackers:
            ends, counts = np.asarray(t.ends, dtype=np.float64), np.asarray(t.counts, dtype=np.float64)
            gaps = np.diff(ends, prepend=-np.inf)  # a regular decoder's last token came at the previous decode step
            extra = np.asarray(t.extra, dtype=np.float64).reshape(-1, 3)
            keep = counts > 0
            parts.append(np.column_stack([np.concatenate([ends[keep], extra[:, 0]]), np.concatenate([gaps[keep], extra[:, 1]]),
                                          np.concatenate([counts[keep], extra[:, 2]])]))  # fmt: skip
        rows = np.concatenate(parts) if parts else np.zeros((0, 3))
        return cls(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy())

    def after(self, t0_s: float) -> GapSample:
        """The samples of tokens emitted at or after ``t0_s``."""
        keep = self.at_s >= t0_s
        return GapSample(self.at_s[keep], self.gap_s[keep], self.count[keep])

    @property
    def tokens(self) -> int:
        """Tokens in the sample."""
        return int(self.count.sum())

    def mean(self) -> float:
        """Token-weighted mean gap, seconds (``nan`` when empty): ``Σ gap·count / Σ count``."""
        w = float(self.count.sum())
        return float((self.gap_s * self.count).sum() / w) if w > 0 else float("nan")

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the tokens' gaps, seconds: the smallest gap ``g`` with ``P(gap ≤ g) ≥ q`` (``nan`` when empty)."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1), got {q}")
        w = float(self.count.sum())
        if w <= 0:
            return float("nan")
        order = np.argsort(self.gap_s, kind="stable")
        cum = np.cumsum(self.count[order])
        i = int(np.searchsorted(cum, q * w, side="left"))
        return float(self.gap_s[order][min(i, order.size - 1)])
