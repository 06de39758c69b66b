"""Built-in weekly profiles shaped like the Azure LLM inference 2024 week."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from aicap.sizing.core.fleet import Fleet
from aicap.sizing.core.profile import WEEKLY_SHAPES, Weekly

#: Mean rates derived from the stated row counts over the week (traces.md): requests/s.
STATED = {"azure-code-2024": 16_803_695 / (7 * 86400), "azure-conv-2024": 27_303_999 / (7 * 86400)}


def _data() -> dict[str, Any]:
    text = resources.files("aicap.hardware_db").joinpath("traffic/profiles.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text)["profiles"])


@pytest.mark.parametrize("shape", WEEKLY_SHAPES)
def test_shipped_week_matches_the_stated_volume_and_carries_its_source(shape: str) -> None:
    entry = _data()[shape]
    rates = entry["rates"]
    assert len(rates) == 168 and min(rates) > 0
    assert sum(rates) / 168 == pytest.approx(STATED[shape], rel=0.02)  # the digitisation keeps the week's volume
    assert "AzureLLMInferenceDataset2024.ipynb" in entry["source"] and "APPROXIMATE" in entry["source"]


def test_the_weeks_have_the_shapes_the_traces_show() -> None:
    code, conv = (Weekly(shape=s, mean=1.0).rates() for s in WEEKLY_SHAPES)  # type: ignore[arg-type]
    day = [code[24 * d : 24 * d + 24] for d in range(7)]
    weekday_peak = min(max(d) for d in day[:5])
    assert weekday_peak / min(min(d) for d in day[:5]) > 6  # code: weekday peak/trough near 10
    assert max(max(d) for d in day[5:]) < 0.5 * weekday_peak  # quiet weekend
    conv_days = [conv[24 * d : 24 * d + 24] for d in range(7)]
    assert all(1.5 < max(d) / min(d) < 4 for d in conv_days[:5])  # chat: 2-3x daily swing


@pytest.mark.parametrize(("scale", "value"), [("mean", 6.0), ("peak", 40.0)])
def test_a_fleet_scales_the_week_to_its_mean_or_peak(scale: str, value: float) -> None:
    f = Fleet.model_validate(
        {"workloads": [{"name": "c", "model": "llama-3.1-8b", "requests_per_s": {"shape": "azure-conv-2024", scale: value}}]}
    )
    p = f.workloads[0].profile
    assert p is not None and len(p) == 168
    got = sum(p) / 168 if scale == "mean" else max(p)
    assert got == pytest.approx(value, rel=1e-6)
    assert f.workloads[0].rate == pytest.approx(max(p))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{shape: foo, mean: 3}", "valid: diurnal, azure-code-2024, azure-conv-2024"),
        ("{shape: [[diurnal]], peak: 40, trough: 6}", "shape [['diurnal']]: valid: diurnal"),  # not a name at all (fuzz: was a TypeError)
        ("{shape: azure-code-2024}", "exactly one of mean or peak"),
        ("{shape: azure-conv-2024, mean: 3, peak: 4}", "exactly one of mean or peak"),
        ("{shape: azure-conv-2024, mean: -3}", "mean"),
    ],
)
def test_bad_shapes_are_one_line(aicap: Any, tmp_path: Any, body: str, needle: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(f"workloads:\n  - name: c\n    model: llama-3.1-8b\n    requests_per_s: {body}\n")
    r = aicap("size", str(path), "-f", "json")
    assert r.code == 2 and needle in r.stderr and r.stderr.count("\n") == 1 and f"{path}:4" in r.stderr
