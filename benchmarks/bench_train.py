"""Speed of the training search against the floor of the issue "Training and fine-tuning sizing".

The search over the whole catalogue for one model must run in <= 2 s on this machine. Prints the
time per model (pre-training a dense 8B and 70B, an MoE, LoRA of a 70B), the layouts evaluated per
second, and the chosen job.

Run: python benchmarks/bench_train.py
"""

from __future__ import annotations

import time

from aicap.hardware_db import load_catalogue
from aicap.sizing.train.api import plan_job
from aicap.sizing.train.grid import Recipe
from aicap.sizing.train.search import SearchSpec

FLOOR_S = 2.0
JOBS = [
    ("llama-3.1-8b", Recipe(), 1e12, 8192, 2**22, 14.0),
    ("llama-3.1-70b", Recipe(), 2e12, 8192, 2**22, 30.0),
    ("mixtral-8x7b", Recipe(), 1e12, 4096, 2**22, 30.0),
    ("llama-3.1-70b", Recipe(method="lora"), 1e9, 4096, 2**17, 2.0),
]


def main() -> None:
    cat = load_catalogue()
    plan_job(cat, SearchSpec(model=cat.model("llama-3.1-8b"), tokens=1e9, recipe=Recipe(), seq_len=2048, global_batch_tokens=2**20))
    for model, recipe, tokens, seq, batch, deadline in JOBS:
        spec = SearchSpec(model=cat.model(model), tokens=tokens, recipe=recipe, seq_len=seq, global_batch_tokens=batch,
                          deadline_days=deadline)  # fmt: skip
        t0 = time.perf_counter()
        plan = plan_job(cat, spec)
        dt = time.perf_counter() - t0
        b = plan.best
        print(f"{model:14} {recipe.method:5} {tokens:8.0e} tokens, deadline {deadline:4g} d: {dt:5.2f} s (floor {FLOOR_S:g} s: "
              f"{dt / FLOOR_S:.2f}x), {plan.evaluated / dt:9,.0f} layouts/s; {b.devices}x {b.hardware} on {b.instance}, "
              f"{b.wall_clock_days:.1f} d, ${b.usd['on_demand'] or 0:,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
