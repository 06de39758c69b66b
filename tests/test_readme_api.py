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
