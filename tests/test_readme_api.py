"""The README's Python API block runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_api_block_runs(capsys) -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api -->\n```python\n(.*?)```", text, re.S)
    assert block, "README lacks the <!-- api --> block"
    exec(compile(block.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "+$0/month (+0%)" in out and "chat" in out


def test_facade_names_are_the_functions_not_modules() -> None:
    import aicap.sizing as s

    for name in s.__all__:
        obj = getattr(s, name)
        assert type(obj).__name__ != "module", name
    assert callable(s.estimate) and callable(s.size) and callable(s.check)


def test_a_script_passes_paths_as_strings_and_plans_a_profile_fleet_hour_by_hour() -> None:
    # load_fleet("f.yaml") raised AttributeError ('str' object has no attribute 'stat'); size() on a fleet with
    # hourly profiles returned the static peak plan without a word, and size_periods was not in the facade.
    import aicap.sizing as s
    from aicap.hardware_db import load_catalogue

    root = Path(__file__).resolve().parents[1]
    cat = load_catalogue()
    fleet = s.load_fleet(str(root / "examples" / "diurnal-chat.yaml"))
    static = s.size(fleet, cat, alternatives=False)
    assert any("a static plan: each workload sized at its busiest hour" in w for w in static.warnings)
    hourly = s.size_periods(fleet, cat)
    assert isinstance(hourly, s.PeriodPlan) and hourly.totals.usd_per_month < static.totals.usd_per_month
    assert isinstance(s.any_plan_or_size(str(root / "examples" / "diurnal-chat.yaml"), cat), s.PeriodPlan)
