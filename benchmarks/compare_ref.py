"""The sizer's speed at this working tree against an earlier commit, measured side by side.

Issue 13 asks that no path of ``bench_size.py`` become more than 10% slower. On a machine whose speed drifts
by 20-30% within minutes, two ``bench_size.py`` runs minutes apart cannot show a 10% difference. This script
runs both trees in alternation, in fresh processes, round after round (the first tree of each round
alternates), on the same fleets (``bench_size.fleet``), and compares the least time of each: the run the
machine disturbed least.

* cold ``aicap size`` on the built-in example (CPU seconds of the whole process, ``getrusage`` of the child,
  and wall seconds);
* 100 workloads, 120 distinct shapes and 1,000 workloads in process, as ``bench_size.py`` times them
  (``alternatives=False``, after a one-workload size), by CPU seconds (``getrusage`` of the process and of the
  processes it forked to share out a large evaluation: what the machine's other load disturbs least) and wall
  seconds; the 1,000-workload case also with one process (``jobs=1``).

The earlier commit's ``cli/``, ``sizing/`` and ``hardware_db/`` are taken with ``git archive`` into a
temporary folder and imported from there (``aicap`` is a namespace package: a folder ``aicap/`` holding links
to the three is all it needs); so is this working tree, so that neither depends on how aicap is installed.
The fleets are built by this tree's ``bench_size.fleet`` for both.

Run: python benchmarks/compare_ref.py REF [--rounds N] [--skip-large]   (REF: a commit, e.g. b478a29)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("cli", "sizing", "hardware_db")

# Run in a child whose sys.path starts with one tree: prints {case: [cpu_s, wall_s, usd_per_month]} as JSON.
CHILD = """
import json, resource, sys, time
def cpu():
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))
sys.path.insert(0, {bench!r})
from bench_size import fleet
from aicap.hardware_db import load_catalogue
from aicap.sizing.plan.sizer import size
import scipy.optimize  # noqa: F401  (the cold figure times scipy's import, not these)
cat = load_catalogue()
size(fleet(1), cat, alternatives=False)
import aicap.sizing
out = {{"_from": aicap.sizing.__file__}}
for name, n, distinct, jobs in {cases!r}:
    f = fleet(n, distinct=distinct)
    c, w = cpu(), time.perf_counter()
    plan = size(f, cat, alternatives=False, jobs=jobs)
    out[name] = [cpu() - c, time.perf_counter() - w, plan.totals.usd_per_month]
print(json.dumps(out))
"""


def tree(ref: str | None, into: Path) -> Path:
    """A folder to put first on ``sys.path`` for ``ref``'s sources (``None``: this working tree)."""
    src = ROOT
    if ref is not None:
        src = into / "src"
        src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *PARTS], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    root = into / "root"
    (root / "aicap").mkdir(parents=True)
    for part in PARTS:
        (root / "aicap" / part).symlink_to(src / part, target_is_directory=True)
    return root


def run(root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with ``root`` first on the path and bytecode caching on (as an installed package has it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(root)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, env=env, cwd=root)


def cold(root: Path) -> tuple[float, float]:
    """CPU and wall seconds of a whole ``aicap size`` of the built-in example in a fresh process."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    run(root, ["-m", "aicap.cli.app", "-q", "size", "-f", "json"])
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="the commit to compare with (git rev)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (each runs both trees once)")
    ap.add_argument("--skip-large", action="store_true", help="skip the 1,000-workload cases")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds {args.rounds}: give 1 or more")
    cases: list[tuple[str, int, bool, int | None]] = [("100 workloads", 100, False, None), ("120 distinct shapes", 120, True, None)]
    if not args.skip_large:
        cases += [("1,000 workloads", 1000, False, None), ("1,000 workloads, --jobs 1", 1000, False, 1)]
    child = CHILD.format(bench=str(ROOT / "benchmarks"), cases=cases)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"worktree": tree(None, Path(tmp) / "head"), "ref": tree(args.ref, Path(tmp) / "ref")}  # keys no rev can clash with
        for root in trees.values():  # compile both trees' bytecode once, untimed
            run(root, ["-m", "aicap.cli.app", "-q", "size", "-f", "json"])
        times: dict[str, dict[str, list[tuple[float, float, float]]]] = {name: {} for name in trees}
        for k in range(args.rounds):
            order = list(trees) if k % 2 == 0 else list(reversed(trees))
            for name in order:
                times[name].setdefault("cold aicap size (built-in example)", []).append((*cold(trees[name]), float("nan")))
                got = json.loads(run(trees[name], ["-c", child]).stdout)
                if not got.pop("_from").startswith(str(trees[name])):  # the child imported another aicap (an installed one)
                    raise SystemExit(f"{name}: the child did not import aicap from {trees[name]}")
                for case, (cpu, wall, usd) in got.items():
                    times[name].setdefault(case, []).append((cpu, wall, usd))
            print(f"round {k + 1} of {args.rounds} done", file=sys.stderr)
    head, ref = times["worktree"], times["ref"]
    print(f"least of {args.rounds} alternating runs each; HEAD = this working tree, ref = {args.ref}")
    header = f"{'cpu HEAD':>9s} {'cpu ref':>8s} {'ratio':>6s}   {'wall HEAD':>9s} {'wall ref':>8s} {'ratio':>6s}"
    print(f"{'case':40s} {header}   $/month HEAD / ref")
    for case in head:
        h_cpu, r_cpu = min(t[0] for t in head[case]), min(t[0] for t in ref[case])
        h_wall, r_wall = min(t[1] for t in head[case]), min(t[1] for t in ref[case])
        cpu = f"{h_cpu:9.2f} {r_cpu:8.2f} {h_cpu / r_cpu:6.2f}"
        usd = head[case][0][2], ref[case][0][2]
        cost = f"{usd[0]:,.0f} / {usd[1]:,.0f}" if usd[0] == usd[0] else ""
        print(f"{case:40s} {cpu}   {h_wall:9.2f} {r_wall:8.2f} {h_wall / r_wall:6.2f}   {cost}")


if __name__ == "__main__":
    main()
