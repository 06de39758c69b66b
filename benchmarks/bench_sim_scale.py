"""The simulator's floors from the issue "Traffic simulator with scheduling policies":

* 1,000,000 requests of an 8B chat workload on one replica ≤ 20 s on one core (Vidur does about 600
  requests/s, so this is 80x its speed): llama-3.1-8b bf16 on one H100 SXM with aicap's own step times
  (:class:`~aicap.sizing.serve.step_model.StepModel`), Azure conversation 2023 lengths, Poisson arrivals at
  16 req/s (a load the replica carries with a stable queue), FCFS; the one-replica engine and the cluster loop (which
  ``aicap simulate`` runs) side by side;
* ``aicap size --verify`` of the built-in example ≤ 5 s (cold, a subprocess);
* the hand-written loop against a library: SimPy (if installed) on the simplest queue the engine
  runs, M/D/1 with 200,000 requests — if a general event library is slower there, it is slower on
  continuous batching, whose per-step work it would also have to do in Python.

Run: python benchmarks/bench_sim_scale.py [--requests N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.sim.arrivals import arrival_times
from aicap.sizing.sim.cluster import simulate_cluster
from aicap.sizing.sim.engine import EngineConfig, Requests, simulate
from aicap.sizing.sim.replay import Setup
from aicap.sizing.sim.traffic import TrafficSpec, dataset


def chat(n: int) -> tuple[Setup, Requests]:
    cat = load_catalogue()
    dev = cat.device("h100-sxm")
    setup = Setup(Deployment(cat.model("llama-3.1-8b"), dev, cat.efficiency_for(dev), cat.runtime_spec, 1, 1, 1, "bf16", "bf16"))
    ds = dataset("azure-conv-2023")
    return setup, TrafficSpec(n, ds.input_tokens, ds.output_tokens, rate_per_s=16.0, seed=1).build()


def simpy_md1(n: int, service_s: float, rate: float) -> float:
    import simpy

    arrivals = arrival_times(rate, n, seed=1)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    waits: list[float] = []

    def request(t: float) -> simpy.events.ProcessGenerator:
        with server.request() as req:
            yield req
            waits.append(env.now - t)
            yield env.timeout(service_s)

    def source() -> simpy.events.ProcessGenerator:
        for t in arrivals:
            yield env.timeout(t - env.now)
            env.process(request(t))

    env.process(source())
    env.run()
    return float(np.mean(waits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    n = ap.parse_args().requests
    setup, req = chat(n)
    cfg = setup.engine()
    step = setup.step(float(req.input_tokens.mean()), float(req.output_tokens.mean()))
    t0 = time.perf_counter()
    one = simulate(step, req, cfg, max_steps=50_000_000)
    t1 = time.perf_counter()
    res, _ = simulate_cluster(step, req, cfg, max_steps=50_000_000)
    t2 = time.perf_counter()
    print(f"{n:,} requests, llama-3.1-8b on 1x H100, azure-conv-2023 lengths, 16 req/s: "
          f"{one.steps:,} steps, p99 TTFT {one.percentile('ttft', 0.99) * 1e3:,.0f} ms, stable {one.stable}")  # fmt: skip
    for label, dt in (("engine (one replica)", t1 - t0), ("cluster loop (aicap simulate)", t2 - t1)):
        print(f"  {label:32s} {dt:6.2f} s  {n / dt:>10,.0f} req/s  ({n / dt / 600:,.0f}x Vidur's ~600 req/s; floor 20 s: {dt / 20:.2f}x)")
    assert np.array_equal(one.ttft_s, res.ttft_s, equal_nan=True)

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", "size", "--verify", "-f", "json"], check=True, capture_output=True)
    dt = time.perf_counter() - t0
    print(f"aicap size --verify (built-in example), cold   {dt:6.2f} s  (floor 5 s: {dt / 5:.2f}x)")

    m, s, rho = 200_000, 0.01, 0.8
    md1 = Requests(arrival_times(rho / s, m, seed=1), np.full(m, 100), np.zeros(m, dtype=np.int64))
    t0 = time.perf_counter()
    r = simulate(lambda d, p: s, md1, EngineConfig(1, 4096, 10**6))
    ours = time.perf_counter() - t0
    print(f"M/D/1, {m:,} requests: aicap engine {ours:5.2f} s (mean wait {float(np.mean(r.ttft_s)) - s:.4f} s; "
          f"closed form {rho * s / (2 * (1 - rho)):.4f} s)")  # fmt: skip
    try:
        t0 = time.perf_counter()
        w = simpy_md1(m, s, rho / s)
        lib = time.perf_counter() - t0
        print(f"M/D/1, {m:,} requests: SimPy         {lib:5.2f} s (mean wait {w:.4f} s): {lib / ours:.1f}x the engine's time")
    except ImportError:
        print("M/D/1 with SimPy: not installed (pip install simpy to compare)")


if __name__ == "__main__":
    main()
