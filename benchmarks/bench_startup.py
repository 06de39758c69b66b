"""Cold-start time of the CLI: `aicap --help` and `aicap models list` (median of 5 fresh processes).

Run: python benchmarks/bench_startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

# Bytecode caching on, as for any installed package (see benchmarks/bench_size.py).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
COMMANDS = [["--help"], ["models", "list"], ["hardware", "show", "h100-sxm", "--format", "json"]]


def cold(args: list[str], repeats: int = 5) -> float:
    subprocess.run([sys.executable, "-m", "aicap.cli.app", *args], capture_output=True, check=True, env=ENV)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aicap.cli.app", *args], capture_output=True, check=True, env=ENV)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    floor = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.perf_counter() - t0)
    t_py = statistics.median(floor)
    print(f"{'python -c pass':40s} {t_py * 1e3:7.0f} ms (interpreter floor)")
    for args in COMMANDS:
        t = cold(args)
        print(f"{'aicap ' + ' '.join(args):40s} {t * 1e3:7.0f} ms  ({t / t_py:4.1f}x the interpreter floor)")


if __name__ == "__main__":
    main()
