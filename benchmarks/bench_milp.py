"""Assembly and solve time of the replica/instance integer program on random fleets of realistic shape.

Each fleet has 13 instance types over 4 device types (1-, 2-, 4- and 8-device instances, a few of them
capped) and, per workload, candidates of 1, 2, 4 and 8 devices (about 20 per workload). The floor
from the issue: the whole sizer must size 1,000 workloads in ≤ 5 s, so assembly must stay well under
0.5 s at 1,000 workloads.

Run: python benchmarks/bench_milp.py [--sizes 100 300 1000 3000] [--time-limit 20] [--objective cost]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np

from aicap.sizing.solve.milp import Problem, _assemble, solve

# (device group, devices per instance, USD per instance-hour, cap); groups: 0 L4, 1 A10G, 2 A100, 3 H100
TYPES = [(0, 1, 0.8, np.inf), (0, 2, 1.6, np.inf), (0, 4, 3.4, np.inf), (0, 8, 6.6, 40), (1, 1, 1.0, np.inf), (1, 4, 5.7, np.inf),
         (1, 8, 16.3, np.inf), (2, 1, 3.7, 20), (2, 2, 7.3, np.inf), (2, 8, 32.8, np.inf), (3, 2, 24.0, np.inf), (3, 4, 47.0, 60),
         (3, 8, 98.3, np.inf)]  # fmt: skip
SPEED = np.array([1.0, 1.3, 3.0, 6.0])  # requests/s per device, relative


def fleet(nw: int, seed: int = 0, objective: str = "cost") -> Problem:
    rng = np.random.default_rng(seed)
    group, tdev, price, cap = (np.array(col) for col in zip(*TYPES, strict=True))
    min_dev = rng.choice([1, 1, 2, 4, 8], size=nw)  # smallest layout that holds each workload's model
    base = rng.lognormal(0.0, 0.7, size=nw)  # requests/s of one device, per workload
    # every (workload, type, size) with min_dev ≤ size ≤ devices of the type, kept with probability 0.7 (always on the last type)
    w, t, d = np.meshgrid(np.arange(nw), np.arange(len(TYPES)), np.array([1, 2, 4, 8]), indexing="ij")
    w, t, d = w.ravel(), t.ravel(), d.ravel()
    keep = (d >= min_dev[w]) & (d <= tdev[t]) & ((rng.random(w.size) < 0.7) | ((t == len(TYPES) - 1) & (d == min_dev[w])))
    w, t, d = w[keep], t[keep], d[keep]
    q = base[w] * SPEED[group[t]] * d**0.9 * rng.uniform(0.8, 1.2, w.size)
    lat = rng.uniform(0.5, 1.5, w.size) / np.sqrt(SPEED[group[t]])
    demand = base * rng.lognormal(1.5, 1.0, size=nw)
    # about 1.1 USD/hour buys a request/s at the cheapest here: latency gets slack, throughput half of what it needs
    budget = {"cost": None, "latency": float(1.6 * demand.sum()), "throughput": float(0.5 * demand.sum())}[objective]
    return Problem(demand=demand, cand_workload=w.astype(np.int64), cand_type=t.astype(np.int64), cand_devices=d.astype(np.int64),
                   cand_capacity=q, cand_latency=lat, type_devices=tdev.astype(np.int64), type_price=price.astype(np.float64),
                   type_group=group.astype(np.int64), type_cap=cap.astype(np.float64), budget_per_hour=budget,
                   objective=objective)  # type: ignore[arg-type]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--objective", default="cost", choices=["cost", "latency", "throughput"])
    args = ap.parse_args()
    print("floor (issue): whole sizer ≤ 5 s at 1,000 workloads; assembly should be well under 0.5 s there")
    print(f"{'workloads':>9} {'candidates':>10} {'assembly ms':>11} {'solve s':>8} {'status':>11} {'gap':>9} {'USD/h':>10}")
    for n in args.sizes:
        p = replace(fleet(n, objective=args.objective), time_limit_s=args.time_limit)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            _assemble(p)
            times.append(time.perf_counter() - t0)
        sol = solve(p)
        print(f"{n:>9} {len(p.cand_workload):>10} {1e3 * statistics.median(times):>11.1f} {sol.seconds:>8.2f} {sol.status.value:>11} "
              f"{sol.gap:>9.2e} {sol.cost_per_hour:>10.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
