"""benchmarks/device_decode.py (its grid, without a GPU) and benchmarks/decode_check.py (on a synthetic measurement)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


device = _load("device_decode")
check = _load("decode_check")


def test_the_shape_is_the_catalogue_s_and_the_weights_add_up() -> None:
    s = device.shape_of(device.model_shape("llama-3.1-8b"))
    assert s == {"hidden": 4096, "heads": 32, "kv_heads": 8, "head_dim": 128, "intermediate": 14336, "vocab": 128256, "layers": 32}
    # 8.03e9 parameters less the 0.53e9 of the input embedding, which a decode step does not stream
    assert device.weight_bytes(s, 32) / 2 == pytest.approx(8.03e9 - 4096 * 128256, rel=0.005)
    assert device.kv_bytes(s, 32, 1, 4095) == 4096 * 32 * 2 * 8 * 128 * 2  # 128 KiB a token


def test_the_grid_keeps_only_what_fits_and_a_dry_run_needs_no_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    s = device.shape_of(device.model_shape("llama-3.1-8b"))
    pts = device.grid(s, 32, 40 * 2**30, (1, 64, 256), (512, 8192))
    assert (1, 8192) in pts and (256, 8192) not in pts
    assert all(device.weight_bytes(s, 32) + device.kv_bytes(s, 32, b, c) <= 40 * 2**30 for b, c in pts)
    assert device.main(["--dry-run", "--batches", "1,8", "--contexts", "512"]) == 0
    assert capsys.readouterr().out.count("batch") == 2


def test_a_moe_or_unknown_model_is_refused() -> None:
    with pytest.raises(SystemExit, match="dense decoder"):
        device.model_shape("mixtral-8x7b")
    with pytest.raises(SystemExit, match="unknown model"):
        device.model_shape("nope")


def _synthetic(tmp_path: Path, scale: float) -> Path:
    """A measurement that is aicap's own prediction times ``scale``: the check must read back 1/scale."""
    steps = [{"batch": b, "context": c} for c in (512, 4096) for b in (1, 16, 64)]
    doc = {"schema_version": 1, "kind": "decode_steps", "model": "llama-3.1-8b", "layers": 32, "steps": steps,
           "device": {"name": "NVIDIA H200", "torch": "test"}, "date": "2026-12-04",
           "gemms": [{"name": "qkv", "m": 1, "n": 6144, "k": 4096, "ms_median": 0.02, "tflops": 2.5}]}  # fmt: skip
    pred, _ = check.predicted_ms(doc, "h200-sxm")
    for s, p in zip(steps, pred, strict=True):
        s["ms_median"] = float(p * scale)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_check_reads_back_the_ratio_and_the_slopes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([str(_synthetic(tmp_path, 1.25))]) == 0  # the device found by its name
    out = capsys.readouterr().out
    assert "aicap/measured: median 0.80, range 0.80-0.80 over 6 steps" in out and "factors nvidia-hopper" in out
    fit = [line.split() for line in out.splitlines() if line.strip().startswith(("t_0", "s_B", "s_KV"))]
    assert len(fit) == 3 and all(float(f[-2]) == pytest.approx(1.25 * float(f[-1]), rel=0.02) for f in fit)


def test_the_line_fit_recovers_its_coefficients() -> None:
    b, c = np.array([1.0, 8, 64, 1, 8, 64]), np.array([512.0, 512, 512, 4096, 4096, 4096])
    assert check.line_fit(b, c, 5.0 + 0.02 * b + 3e-6 * b * c) == pytest.approx([5.0, 0.02, 3e-6], rel=1e-6)


def test_a_file_that_is_not_a_measurement_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("kind: other\n")
    assert check.main([str(bad)]) == 2 and "not a decode_steps document" in capsys.readouterr().err
    doc = yaml.safe_load(_synthetic(tmp_path, 1.0).read_text())
    doc["device"]["name"] = "Mystery GPU"
    bad.write_text(yaml.safe_dump(doc))
    assert check.main([str(bad)]) == 2 and "give --hardware" in capsys.readouterr().err
    assert check.main([str(bad), "--hardware", "h200-sxm"]) == 0
