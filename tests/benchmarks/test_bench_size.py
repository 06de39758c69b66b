"""benchmarks/bench_size.py's disaggregated line: it counts rows through the memo's internals, which must stay in step."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.plan import evaluation, row_memo

ROOT = Path(__file__).resolve().parents[2]


def test_the_disaggregated_line_counts_rows_and_puts_the_internals_back(capsys: pytest.CaptureFixture[str]) -> None:
    # its counting wrapper once lacked the memo's fourth argument: the bench died with a TypeError, no test ran it
    spec = importlib.util.spec_from_file_location("bench_size", ROOT / "benchmarks" / "bench_size.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_size"] = mod
    spec.loader.exec_module(mod)
    before = (row_memo.RowMemo.evaluate, evaluation._evaluate)
    mod.disaggregated(load_catalogue(), runs=1)
    line = capsys.readouterr().out
    done, asked = (int(x.replace(",", "")) for x in re.search(r"([\d,]+) of ([\d,]+) rows evaluated", line).groups())  # type: ignore[union-attr]
    assert 0 < done < asked / 2 and "$" in line
    assert (row_memo.RowMemo.evaluate, evaluation._evaluate) == before
