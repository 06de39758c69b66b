"""Long fuzz campaign of the CLI: the property tests of tests/cli/test_fuzz.py with many random examples.

The test suite runs a small, fixed (derandomised) set of examples so that it stays fast and never
flakes. This runs the same properties with ``--examples`` random examples per test (random seed, or
``--seed`` to repeat a campaign), reporting the exit-code mix of each test and, for a failure, the
command line, the document and Hypothesis's shrunk reproduction.

Run: python benchmarks/fuzz.py --examples 5000 [-k fleet] [--seed 1] [--hang-s 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="random examples per property (default 5000)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed, to repeat a campaign")
    parser.add_argument("-k", dest="select", default=None, help="only the properties whose name matches (pytest -k)")
    parser.add_argument("--hang-s", type=float, default=30.0, help="seconds after which one command counts as hung (default 30)")
    args = parser.parse_args()
    env = {**os.environ, "AICAP_FUZZ_EXAMPLES": str(args.examples), "AICAP_FUZZ_HANG_S": str(args.hang_s)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           str(ROOT / "tests" / "cli" / "test_fuzz.py")]  # fmt: skip
    if args.seed is not None:
        cmd += ["--hypothesis-seed", str(args.seed)]
    if args.select:
        cmd += ["-k", args.select]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
