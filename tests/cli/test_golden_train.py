"""Golden training jobs: ``aicap train -f json`` of a search and of one LoRA layout, byte for byte.

A change to the training model, its factors or the catalogue shows up here as a diff to review.
Regenerate after an intended change with ``AICAP_UPDATE_GOLDEN=1 pytest tests/cli/test_golden_train.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).with_name("golden") / "train"
CASES = {
    "search-llama-3.1-8b-1T-14d": ("-m", "llama-3.1-8b", "--tokens", "1T", "--deadline-days", "14", "--seq-len", "8192"),
    "qlora-llama-3.1-70b-a100": ("-m", "llama-3.1-70b", "--method", "qlora", "--hardware", "a100-80gb-sxm", "--devices", "1",
                                 "--seq-len", "2048", "--recompute", "full", "--tokens", "100M"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_train_matches_golden(aicap: Any, name: str) -> None:
    r = aicap("train", *CASES[name], "-f", "json")
    assert r.code == 0, r.stderr
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"{name} changed; regenerate with AICAP_UPDATE_GOLDEN=1 if intended"
