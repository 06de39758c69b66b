"""Vectorised evaluation speed: 10,000 candidate deployments (layouts × batches) in one call.

Run: python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import time

import numpy as np

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.serve.serving import serve


def main() -> None:
    cat = load_catalogue()
    dev = cat.device("h100-sxm")
    dep = Deployment(cat.model("llama-3.1-70b"), dev, cat.efficiency_for(dev), cat.runtime_spec, 1, 1, 1, "bf16", "bf16")
    tp = np.repeat([1.0, 2.0, 4.0, 8.0], 2500)
    batch = np.tile(np.arange(1, 2501, dtype=float), 4)
    serve(dep, batch[:10], 1000, 200, tp[:10], 1.0)  # warm caches
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        m = serve(dep, batch, 1000, 200, tp, 1.0)
    dt = (time.perf_counter() - t0) / reps
    print(f"candidates per call: {batch.size:,}")
    print(f"time per call:       {dt * 1e3:.1f} ms  ({batch.size / dt:,.0f} candidates/s)")
    print(f"fitting candidates:  {int(m.fits.sum()):,}")


if __name__ == "__main__":
    main()
