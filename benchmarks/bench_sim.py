"""Speed of the replica simulator (aicap.sizing.sim): requests and engine steps simulated per second.

Synthetic linear step time 0.010 + 2e-5·decode + 6e-5·prefill seconds. "distinct steps" counts the
calls that reach the step callable (the rest hit the memo); with the sizer's own callable (~50 µs a
call) add that many × 50 µs.

Run: python benchmarks/bench_sim.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate


@dataclass
class Counted:
    calls: int = 0

    def __call__(self, d: int, p: int) -> float:
        self.calls += 1
        return 0.010 + 2e-5 * d + 6e-5 * p


def case(name: str, req: Requests, cfg: EngineConfig, reps: int = 3) -> None:
    best = float("inf")
    for _ in range(reps):
        step = Counted()
        t0 = time.perf_counter()
        r = simulate(step, req, cfg)
        best = min(best, time.perf_counter() - t0)
    n = len(req)
    print(
        f"{name:<44} {n:>8,} req {r.steps:>9,} steps {best:6.2f} s  {n / best:>9,.0f} req/s {r.steps / best:>9,.0f} steps/s"
        f"  running {r.mean_running:6.1f}  p99 TTFT {r.percentile('ttft', 0.99) * 1e3:7.1f} ms"
        f"  preempt {r.preemptions:>6,}  distinct steps {step.calls:>7,}"
    )


def main() -> None:
    n = 20_000
    fixed = Requests(arrival_times(10.0, n, seed=0), np.full(n, 1000), np.full(n, 200))
    # Capacity with 256 sequences ≈ 13.9 requests/s, so 10/s is ≈ 72% load.
    case("1000/200 tokens, 10 req/s (~72% load)", fixed, EngineConfig(256, 2048, 10**7))
    case("1000/200 tokens, 10 req/s, pp = 4", fixed, EngineConfig(256, 2048, 10**7, pipeline_stages=4))
    inp = sample_lengths(np.array([128, 512, 2048, 8192]), np.array([0.4, 0.3, 0.2, 0.1]), n, seed=1)
    out = sample_lengths(np.array([16, 128, 512]), np.array([0.3, 0.5, 0.2]), n, seed=2)
    mixed = Requests(arrival_times(6.0, n, cv=2.0, seed=3), inp, out)
    case("histogram lengths, gamma cv 2, tight KV", mixed, EngineConfig(128, 4096, 80_000))
    m = 200_000
    enc = Requests(arrival_times(50.0, m, seed=4), np.full(m, 100), np.zeros(m, dtype=np.int64))
    case("encoders one at a time (M/D/1, rho 0.8)", enc, EngineConfig(1, 4096, 10**6))


if __name__ == "__main__":
    main()
