"""Mutation testing of the planner and policy modules with mutmut 3: stage, run, score (docs/mutation.md).

    python benchmarks/mutation.py                       # every target mutant, then the score per module
    python benchmarks/mutation.py --only policy diff    # some modules
    python benchmarks/mutation.py --drop-tests tests/sizing/test_policy.py ...   # score without some tests
    python benchmarks/mutation.py --tests "tests/cli/test_ci_cli.py --deselect tests/cli/test_ci_cli.py::test_shell_ci_job"

mutmut names a mutant by its file's path (``sizing/plan/policy.py`` → ``sizing.plan.policy``) and only
counts a test as covering a function when the imported module has that name; the tests import
``aicap.sizing``. So the stage ``build/mutation/`` holds ``aicap/sizing/`` (a copy of ``sizing/``),
``tests/`` and ``pyproject.toml`` (``[tool.mutmut]``), and mutmut runs there: its ``mutants/aicap/sizing``
comes first on ``sys.path`` and wins over the editable install, while ``aicap.cli`` and
``aicap.hardware_db`` (with the catalogue's data) still come from the install. Every run starts fresh.

Only the functions in ``TARGETS`` run (all of policy, diff, assemble and problem in ``sizing/plan`` and
of exact and reduce in ``sizing/solve``; named helpers of sizer and candidates). The score is
killed / (killed + survived + timeout + no tests) per module.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutation"
PKG = "aicap.sizing"
TARGETS: dict[str, list[str]] = {
    "policy": ["*"],
    "diff": ["*"],
    "assemble": ["*"],
    "problem": ["*"],
    "sizer": ["x_shortlist", "x_standalone_cost", "x_standalone_costs"],
    "inputs": ["x_allowed_instances", "x_check_workloads", "x_per_item"],
    "candidates": ["x_prune", "x_formats", "x__reasons", "x__binding"],
    "screen": ["x_screen", "x__rank_in_group", "x_shadowed"],
    "generate": ["x_shadows", "x_cheapest_types"],
    "layouts": ["x_layouts"],
    "disaggregate": ["x_split", "x_transfer_ms", "x_link_tiers", "x__down"],
    "exact": ["*"],
    "reduce": ["*"],
    "covers": ["*"],
    "highs": ["x_run", "x__priced", "x__relaxation", "x__mip", "x__gap"],
    "milp": ["x__assemble", "x__formulate", "x__violated", "x_solve", "x__primary", "x__cheapest_at"],
    "polish": ["*"],
}
SOLVE = ("exact", "reduce", "covers", "highs", "milp", "polish")
PACKAGE = {m: "solve" if m in SOLVE else "plan" for m in TARGETS}  # sizing/<package>/<module>.py
KILLED = {"killed", "caught by type check"}
COUNTED = KILLED | {"survived", "timeout", "no tests", "suspicious"}


def globs(modules: list[str]) -> list[str]:
    """mutmut's mutant-name patterns for the target functions of ``modules``."""
    return [f"{PKG}.{PACKAGE[m]}.{m}.{f}__mutmut_*" if f != "*" else f"{PKG}.{PACKAGE[m]}.{m}.*" for m in modules for f in TARGETS[m]]


def stage(drop: list[str], tests: str | None) -> None:
    """Fresh ``build/mutation/``: aicap/sizing, tests (less ``drop``) and pyproject.toml with existing selections only."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    (STAGE / "aicap").mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "sizing", STAGE / "aicap" / "sizing", ignore=ignore)
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=ignore)
    for path in drop:
        (STAGE / path).unlink()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    selection = tomllib.loads(text)["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
    missing = [s for s in selection if s.startswith("tests/") and s.endswith(".py") and not (STAGE / s).exists()]
    for s in missing:
        print(f"mutation: {s} is not in the stage; left out of the test selection")
        text = re.sub(rf'\n\s*"{re.escape(s)}",', "", text)
    if tests is not None:
        args = ", ".join(f'"{a}"' for a in shlex.split(tests))
        text = re.sub(r"pytest_add_cli_args_test_selection = \[[^\]]*\]", f"pytest_add_cli_args_test_selection = [{args}]", text)
    (STAGE / "pyproject.toml").write_text(text, encoding="utf-8")


def scores(modules: list[str]) -> dict[str, Counter[str]]:
    """Status counts per module from ``mutmut results --all true``, target functions only."""
    cmd = [sys.executable, "-m", "mutmut", "results", "--all", "true"]
    out = subprocess.run(cmd, cwd=STAGE, check=True, capture_output=True, text=True)
    pats = [re.compile(re.escape(g).replace(r"\*", ".*") + "$") for g in globs(modules)]
    counts: dict[str, Counter[str]] = {m: Counter() for m in modules}
    for line in out.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if any(p.match(name) for p in pats):
            counts[name[len(PKG) + 1 :].split(".")[1]][status] += 1
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(TARGETS), default=list(TARGETS), help="modules to mutate")
    ap.add_argument("--drop-tests", nargs="*", default=[], help="test files to leave out of the stage (a 'before' score)")
    ap.add_argument("--tests", help="pytest arguments replacing the configured test selection, in one string")
    ap.add_argument("--max-children", type=int, default=min(os.cpu_count() or 2, 4))
    ap.add_argument("--survivors", action="store_true", help="print each surviving mutant's diff")
    args = ap.parse_args()
    stage(args.drop_tests, args.tests)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AICAP_CATALOG", None)
    run = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *globs(args.only)]
    subprocess.run(run, cwd=STAGE, env=env, check=False)
    counts = scores(args.only)
    print(f"\n{'module':<12} {'killed':>6} {'survived':>8} {'other':>5} {'score':>6}")
    for m, c in counts.items():
        killed = sum(c[s] for s in KILLED)
        counted = sum(c[s] for s in COUNTED)
        other = counted - killed - c["survived"]
        print(f"{m:<12} {killed:>6} {c['survived']:>8} {other:>5} {100 * killed / max(counted, 1):>5.1f}%")
        if set(c) - COUNTED:
            print(f"{'':<12} not counted: {dict((s, n) for s, n in c.items() if s not in COUNTED)}")
    survivors = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=STAGE, capture_output=True, text=True).stdout
    pats = [re.compile(re.escape(g).replace(r"\*", ".*") + "$") for g in globs(args.only)]
    for line in survivors.splitlines():
        name = line.strip().rpartition(": ")[0]
        if any(p.match(name) for p in pats):
            print(line)
            if args.survivors:
                print(subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=STAGE, capture_output=True, text=True).stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
