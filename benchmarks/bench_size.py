"""Sizer wall time for fleets of 1, 10, 100 and 1,000 workloads over the whole catalogue, and the
cold-start time of `aicap size` on the built-in example.

Run: python benchmarks/bench_size.py [--max 1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.sizer import size

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mistral-7b", "mixtral-8x7b", "llama-2-13b", "llama-3-8b", "bge-large-en"]


def fleet(n: int) -> Fleet:
    wl = []
    for k in range(n):
        m = MODELS[k % len(MODELS)]
        enc = m.startswith("bge")
        wl.append({"name": f"w{k}", "model": m, "requests_per_s": 1.0 + (k % 7), "input_tokens": 256 if enc else 500 + 100 * (k % 10),
                   "output_tokens": 1 if enc else 100 + 20 * (k % 5), "slo": {"ttft_ms": 3000, "tpot_ms": None if enc else 80},
                   "precisions": ["fp16"] if enc else ["bf16", "fp8"]})  # fmt: skip
    return Fleet.model_validate({"workloads": wl})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=1000)
    args = ap.parse_args()
    cat = load_catalogue()
    print(f"catalogue: {len(cat.instances)} instance types, {len(cat.devices)} devices")
    prev = None
    for n in (1, 10, 100, 1000):
        if n > args.max:
            break
        t0 = time.perf_counter()
        plan = size(fleet(n), cat, alternatives=False)
        dt = time.perf_counter() - t0
        growth = "" if prev is None else f"  ({dt / prev[1]:.1f}x time for {n / prev[0]:.0f}x workloads)"
        print(f"{n:5d} workloads: {dt:7.2f} s, ${plan.totals['usd_per_month']:,.0f}/month{growth}")
        prev = (n, dt)
    for label, args in (("one workload (--model llama-3.1-8b --rate 2)", ["--model", "llama-3.1-8b", "--rate", "2"]),
                        ("built-in example (3 workloads)", [])):  # fmt: skip
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", "size", *args, "-f", "json"], capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        print(f"cold start `aicap size`, {label}: {statistics.median(times):.2f} s (median of 3)")


if __name__ == "__main__":
    main()
