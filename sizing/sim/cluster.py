"""Several replicas behind a router, open or closed loop: the event loop above the replica engine.

Each replica runs the iteration-level engine of :mod:`aicap.sizing.sim.engine` (same scheduling, KV
and pipeline semantics; one clock per replica, so replicas step asynchronously). Events, in time order
(arrivals before a step that ends at the same instant, so they join the next step as in the
single-replica loop): an **arrival** is routed to a replica, and reaches the virtual engine of that
replica with the fewest requests running plus waiting at the replica's next step boundary (as in the
one-replica loop); an idle replica starts a step at once, after every arrival of the same instant is
routed. A **step end** closes the replica's step and starts the next
one if it has work.

Routers (``n_k`` = requests running plus waiting on replica ``k``, ``w_k`` waiting, ``u_k`` running;
ties go round-robin, to the first replica from ``j mod R`` on):

* ``round_robin`` — the ``j``-th routed request goes to replica ``j mod R``;
* ``least_outstanding`` — ``argmin_k n_k`` (what a proxy counting in-flight requests sees);
* ``shortest_queue`` — ``argmin_k (w_k, u_k)`` (join the shortest waiting queue).

Closed loop (``concurrency = C``): ``C`` clients each send a request at time 0 and the next one as soon
as the previous finishes (or is rejected), until ``n`` requests are sent; request lengths are fixed in
advance and arrival instants are set when sent.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from aicap.sizing.sim.costs import memoised
from aicap.sizing.sim.engine import (
    EngineConfig,
    Requests,
    StepTime,
    _fill_round,
    _outcome,
    _replica,
    _table,
    _too_big,
    in_steps,
    step_bound,
)
from aicap.sizing.sim.request_table import REJECTED, WAITING
from aicap.sizing.sim.result import SimResult
from aicap.sizing.sim.scheduler import FcfsScheduler, Scheduler
from aicap.sizing.sim.token_gaps import GapSample
from aicap.sizing.sim.virtual_engine import VirtualEngine

TIMELINE_POINTS = 4096
Router = Literal["round_robin", "least_outstanding", "shortest_queue"]
ROUTERS: tuple[Router, ...] = ("round_robin", "least_outstanding", "shortest_queue")


@dataclass(frozen=True)
class ClusterStats:
    """What the replicas did, beyond per-request latencies.

    Attributes
    ----------
    busy_s : tuple of float
        Seconds each replica spent stepping.
    kv_block_s, running_s : float
        Time integrals over all replicas of KV blocks held and requests running (block·s, request·s).
    kv_blocks : int
        KV blocks of one replica.
    peak_kv_share : float
        Largest share of one replica's KV blocks held at a step start.
    timeline : tuple of (float, int, int, int)
        Samples ``(t [s], running, waiting, KV blocks held)`` over all replicas at step starts: every
        step until :data:`TIMELINE_POINTS` are held, then every 2nd, 4th, … (the list is thinned as
        the run grows, so it spans the whole run with at most that many points).
    """

    busy_s: tuple[float, ...]
    kv_block_s: float
    running_s: float
    kv_blocks: int
    peak_kv_share: float
    timeline: tuple[tuple[float, int, int, int], ...] = ()


class _Replica:
    __slots__ = ("busy", "engines", "last_start", "pending", "stepped")

    def __init__(self, engines: list[VirtualEngine]) -> None:
        self.engines = engines
        self.stepped: list[VirtualEngine] = []
        self.pending: list[int] = []  # routed here, given to a virtual engine at the next step start
        self.busy = 0.0
        self.last_start = 0.0  # start of the replica's last step (overlap scheduling: what its next step could see)

    def waiting(self) -> int:
        return len(self.pending) + sum(len(e.waiting) for e in self.engines)

    def running(self) -> int:
        return sum(len(e.running) for e in self.engines)


def simulate_cluster(step: StepTime, requests: Requests, config: EngineConfig, *, replicas: int = 1, router: Router = "round_robin",
                     concurrency: int | None = None, scheduler: Scheduler | None = None,
                     max_steps: int = 20_000_000) -> tuple[SimResult, ClusterStats]:  # fmt: skip
    """Simulate ``replicas`` identical replicas behind ``router`` (module docstring).

    Parameters
    ----------
    step, requests, config, scheduler, max_steps
        As :func:`aicap.sizing.sim.engine.simulate`; ``max_steps`` counts steps over all replicas.
    replicas : int
        Number of replicas ``R`` (≥ 1).
    router : {"round_robin", "least_outstanding", "shortest_queue"}
        How arrivals are spread.
    concurrency : int or None
        Closed loop with this many clients (``requests.arrival_s`` is then ignored); ``None``: open
        loop at the given arrival instants.

    Returns
    -------
    tuple of (SimResult, ClusterStats)
        Per-request latencies (in the order of ``requests``) and replica statistics.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    max_steps = max(max_steps, step_bound(requests, config))  # never short of the work (engine.step_bound)
    if router not in ROUTERS:
        raise ValueError(f"unknown router {router!r}; expected one of {', '.join(ROUTERS)}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    n = len(requests)
    given = requests
    requests = in_steps(requests, config.tokens_per_step)  # speculative decoding: decode counted in steps
    closed = concurrency is not None
    order = np.arange(n) if closed else np.argsort(requests.arrival_s, kind="stable")
    arrivals: list[float] = [0.0] * n if closed else requests.arrival_s[order].tolist()
    table = _table(requests, order, arrivals)
    policy: Scheduler = FcfsScheduler() if scheduler is None else scheduler
    p = config.pipeline_stages
    per_blocks = -(-config.blocks // p)
    reps = [_Replica(_replica(config, table, policy)) for _ in range(replicas)]
    cache, timed = memoised(step)
    too_big = _too_big(requests, order, config)
    # Closed loop: pending send instants (a heap); open loop: the sorted arrival list.
    sends: list[float] = [0.0] * min(concurrency, n) if concurrency is not None else []
    nxt = 0  # next request to arrive
    rejected = steps = 0
    kv_block_s = running_s = 0.0
    peak_used = 0  # most KV blocks one replica held at a step start
    events: list[tuple[float, int]] = []  # (step end, replica)
    idle = set(range(replicas))
    lag = config.overlap_scheduling
    routed = 0
    timeline: list[tuple[float, int, int, int]] = []
    stride = 1

    def route() -> int:
        if router == "round_robin" or replicas == 1:
            return routed % replicas
        after = routed % replicas  # ties go round-robin from here (always to the lowest index, replica 0 drew more arrivals)
        if router == "least_outstanding":
            return min(range(replicas), key=lambda k: (reps[k].waiting() + reps[k].running(), (k - after) % replicas))
        return min(range(replicas), key=lambda k: (reps[k].waiting(), reps[k].running(), (k - after) % replicas))

    def give(rep: _Replica, ids: list[int]) -> None:
        for i in ids:  # as the one-replica loop: requests reach a virtual engine at a step boundary
            ve = rep.engines[0] if p == 1 else min(rep.engines, key=lambda e: e.load)
            table.engine[i] = ve.index
            ve.waiting.append(i)

    def start(k: int, t: float, after_step: bool = False) -> None:
        nonlocal steps, kv_block_s, running_s, peak_used, stride, timeline
        rep = reps[k]
        late: list[int] = []
        if lag and after_step:  # overlap scheduling: this step was chosen when the last one began (engine module docstring)
            seen = rep.last_start
            late = [i for i in rep.pending if arrivals[i] > seen]
            give(rep, [i for i in rep.pending if arrivals[i] <= seen])
        else:
            give(rep, rep.pending)
        rep.pending.clear()
        rep.stepped.clear()
        dur, running, used = _fill_round(rep.engines, policy, t, cache, timed, rep.stepped)
        if not rep.stepped and late:  # nothing else to run: the late requests start now
            give(rep, late)
            late = []
            dur, running, used = _fill_round(rep.engines, policy, t, cache, timed, rep.stepped)
        rep.pending.extend(late)
        if not rep.stepped:
            idle.add(k)
            return
        rep.last_start = t
        idle.discard(k)
        steps += 1
        rep.busy += dur
        kv_block_s += used * dur
        running_s += running * dur
        if used > peak_used:
            peak_used = used
        heapq.heappush(events, (t + dur, k))
        if steps % stride == 0:
            held = sum(e.used for r in reps for e in r.engines)
            timeline.append((t, sum(r.running() for r in reps), sum(r.waiting() for r in reps), held))
            if len(timeline) >= TIMELINE_POINTS:
                timeline = timeline[::2]
                stride *= 2

    def send_next(t: float) -> None:
        if closed:
            heapq.heappush(sends, t)

    def arrive(t: float) -> list[int]:
        """Route every request that has arrived by ``t``; return the idle replicas that got work."""
        nonlocal nxt, rejected, routed
        woken: list[int] = []
        while nxt < n and ((sends and sends[0] <= t) if closed else arrivals[nxt] <= t):
            if closed:
                heapq.heappop(sends)
                arrivals[nxt] = t
            i = nxt
            nxt += 1
            if too_big[i]:
                table.state[i] = REJECTED
                rejected += 1
                send_next(t)
                continue
            k = route()
            routed += 1
            table.state[i] = WAITING
            reps[k].pending.append(i)
            if k in idle:
                woken.append(k)
        return woken

    t = 0.0
    while steps < max_steps:
        t_arr = (sends[0] if sends else math.inf) if closed else (arrivals[nxt] if nxt < n else math.inf)
        if nxt >= n:
            t_arr = math.inf
        t_evt = events[0][0] if events else math.inf
        if t_arr == math.inf and t_evt == math.inf:
            break
        if t_arr <= t_evt:
            t = t_arr
            for k in dict.fromkeys(arrive(t)):
                if k in idle:
                    start(k, t)
            continue
        t, k = heapq.heappop(events)
        rep = reps[k]
        for ve in rep.stepped:
            ve.end_step(t)
            if ve.finished:
                for _ in ve.finished:
                    send_next(t)
                ve.finished.clear()
        # A closed-loop client's next request, sent at this step end, joins the next step. (The test is
        # arrive()'s own loop condition, inlined: most step ends have nothing to route.)
        due = (sends and sends[0] <= t) if closed else (nxt < n and arrivals[nxt] <= t)
        woken = arrive(t) if due else ()
        start(k, t, after_step=True)
        for j in dict.fromkeys(woken):
            if j in idle:
                start(j, t)

    inv = np.empty(n, dtype=np.intp)
    inv[order] = np.arange(n)
    arr = np.asarray(table.arrival_s, dtype=np.float64)[inv]
    never = np.arange(n)[inv] >= nxt  # closed loop: requests never sent (max_steps)
    arr = np.where(never, np.nan, arr) if closed else arr
    first, queue, finish, finished, tpot = _outcome(table, order, given, arr)
    arr_for_result = np.where(np.isnan(arr), t, arr)
    result = SimResult(
        ttft_s=first - arr + config.request_overhead_s, tpot_s=tpot,
        e2e_s=np.where(finished, finish - arr + config.request_overhead_s, np.nan), finished=finished,
        preemptions=sum(e.preemptions for r in reps for e in r.engines), steps=steps,
        mean_running=running_s / t if t > 0 else 0.0, mean_step_s=sum(r.busy for r in reps) / steps if steps else 0.0,
        duration_s=t, arrival_s=arr_for_result, rejected=rejected, queue_s=queue, priority=requests.priority,
        itl=GapSample.of([e.gaps for r in reps for e in r.engines if e.gaps is not None]) if config.record_gaps else None,
    )  # fmt: skip
    stats = ClusterStats(busy_s=tuple(r.busy for r in reps), kv_block_s=kv_block_s, running_s=running_s, kv_blocks=per_blocks * p,
                         peak_kv_share=peak_used / max(per_blocks * p, 1), timeline=tuple(timeline))  # fmt: skip
    return result, stats
