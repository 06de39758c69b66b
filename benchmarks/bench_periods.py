"""Speed of the plan over demand periods against the floor of the issue "Demand that changes over time".

A week of hourly periods for 10 workloads over the whole catalogue (every cloud; on-demand, reserved
1-year and spot allowed) must plan in <= 10 s on this machine. Prints the time with every core (the
default: candidates are evaluated and the hours' programs solved in worker processes) and with one
process,
the solver's status and gap, and the money (the same plan either way).

Run: python benchmarks/bench_periods.py
"""

from __future__ import annotations

import time

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.profile import Diurnal
from aicap.sizing.plan.evaluation import available_cores
from aicap.sizing.plan.periods import size_periods

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mistral-7b", "qwen2.5-7b", "gemma-2-9b", "mixtral-8x7b"]


def week_fleet(n: int = 10) -> Fleet:
    """``n`` workloads with daily swings peaking at different hours, lower on the weekend (days 5 and 6)."""
    wl = []
    for k in range(n):
        day = Diurnal(shape="diurnal", peak=10.0 + 5 * k, trough=2.0 + k, peak_hour=float((3 * k + 14) % 24)).rates()
        week = [r * (0.6 if d >= 5 else 1.0) for d in range(7) for r in day]
        wl.append({"name": f"w{k}", "model": MODELS[k % len(MODELS)], "requests_per_s": week, "input_tokens": 1000 + 100 * k,
                   "output_tokens": 200, "slo": {"ttft_ms": 2000.0, "tpot_ms": 60.0}})  # fmt: skip
    return Fleet.model_validate({"workloads": wl, "constraints": {"pricing": ["on_demand", "reserved_1y", "spot"]}})


def main() -> None:
    cat = load_catalogue()
    f = week_fleet()
    for jobs, label in ((None, f"{available_cores()} cores"), (1, "1 process")):
        t0 = time.perf_counter()
        plan = size_periods(f, cat, jobs=jobs)
        dt = time.perf_counter() - t0
        t = plan.totals
        print(f"a week (168 h) x 10 workloads, whole catalogue, {label:9s} {dt:6.2f} s  (floor 10 s: {dt / 10:.2f}x)  "
              f"solver {plan.solver.status}, gap {plan.solver.gap_pct:.2g}%")  # fmt: skip
        print(f"  ${t.usd_per_month:,.0f}/month; static peak ${t.static_peak_usd_per_month:,.0f}; on-demand only "
              f"${t.on_demand_only_usd_per_month or 0:,.0f}; reserved {[(r.instance_type, r.count) for r in t.reserved]}")  # fmt: skip


if __name__ == "__main__":
    main()
