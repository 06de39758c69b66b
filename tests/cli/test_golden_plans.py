"""Golden plans: ``aicap size -f json`` of the built-in example and every ``examples/*.yaml``, byte for byte.

A change to the performance model, the planner or the catalogue shows up here as a plan diff to review.
Regenerate after an intended change with::

    AICAP_UPDATE_GOLDEN=1 pytest tests/cli/test_golden_plans.py

and read the diff (``git diff tests/cli/golden/plans``) before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden") / "plans"
CASES = [("builtin", None), *((p.stem, p) for p in sorted((ROOT / "examples").glob("*.yaml")))]


@pytest.mark.parametrize(("name", "path"), CASES, ids=[c[0] for c in CASES])
def test_plan_matches_golden(aicap, name: str, path: Path | None) -> None:
    r = aicap("size", *([str(path)] if path else []), "-f", "json")
    assert r.code == 0, r.stderr
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"plan of {name} changed; regenerate with AICAP_UPDATE_GOLDEN=1 if intended"
