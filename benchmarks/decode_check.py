"""aicap's decode-step model beside decode steps measured on a GPU (benchmarks/device_decode.py).

Run: python benchmarks/decode_check.py benchmarks/data/decode-h200-sxm-llama-3.1-8b.yaml [--hardware h200-sxm]

For every measured (batch, context) step it prints the measured device time, aicap's (the operator groups
of :func:`aicap.sizing.decode_step` for the measured layers, with the device family's fitted efficiency
and no per-step overhead, since a CUDA-graph replay has no host work) and their ratio. It then fits, to
both, the same line

    t(B, C) = t_0 + s_B·B + s_KV·B·C        (ms; B sequences at context C)

by least squares and prints the three coefficients side by side: ``t_0`` the batch-1 weight streaming,
``s_B`` the cost of one more sequence at no context (its share of the GEMMs and the LM head), ``s_KV``
the cost of one cached token (reading its K and V). The per-sequence slope of a decode step under load,
which published runs under load put above the model's (README, accuracy), is ``s_B + s_KV·C``.
The GEMM rows print the measured TFLOP/s and weight bytes per second (against the device's peak and the
family's fitted efficiencies in the header line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.serve.step import decode_step

#: Device names as PyTorch reports them -> catalogue ids (the first substring found wins).
DEVICE_IDS = (("H200", "h200-sxm"), ("H100 PCIe", "h100-pcie"), ("H100 NVL", "h100-nvl"), ("H100", "h100-sxm"),
              ("A100-SXM4-40GB", "a100-40gb-sxm"), ("A100-SXM4-80GB", "a100-80gb-sxm"), ("A100 80GB PCIe", "a100-80gb-pcie"),
              ("L40S", "l40s"), ("L4", "l4"), ("B200", "b200"))  # fmt: skip


def hardware_for(name: str) -> str | None:
    """The catalogue id of a device PyTorch names ``name`` (``None``: not known)."""
    return next((hw for key, hw in DEVICE_IDS if key in name), None)


def line_fit(batch: np.ndarray, context: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """Least-squares ``(t_0, s_B, s_KV)`` of ``t = t_0 + s_B·B + s_KV·B·C`` [ms, ms per sequence, ms per token]."""
    a = np.column_stack([np.ones_like(batch), batch, batch * context])
    coef, *_ = np.linalg.lstsq(a, ms, rcond=None)
    return np.asarray(coef, dtype=float)


def predicted_ms(doc: dict[str, Any], hardware: str) -> tuple[np.ndarray, dict[str, Any]]:
    """aicap's device time [ms] of each measured step (operator groups only), and the deployment's description."""
    cat = load_catalogue()
    model = cat.model(doc["model"])
    layers = int(doc["layers"])
    if layers != model.num_layers and isinstance(model, DecoderModel):  # a partial stack: the measured layers only
        model = model.model_copy(update={"num_layers": layers})
    dev = cat.device(hardware)
    eff = cat.efficiency_for(dev)
    dep = Deployment(model, dev, eff, cat.runtime_spec, 1, 1, 1, "bf16", "bf16")
    steps = doc["steps"]
    b = np.array([s["batch"] for s in steps], dtype=float)
    c = np.array([s["context"] for s in steps], dtype=float)
    st = decode_step(dep, b, c)
    return np.asarray(st.device_s * 1e3, dtype=float), {"hardware": hardware, "efficiency": eff.key,
                                                          "memory": eff.memory, "compute": eff.compute}  # fmt: skip


def report(doc: dict[str, Any], hardware: str) -> list[str]:
    """The printed lines: one per step, the fitted lines of both, one per GEMM."""
    pred, about = predicted_ms(doc, hardware)
    steps = doc["steps"]
    meas = np.array([s["ms_median"] for s in steps], dtype=float)
    b = np.array([s["batch"] for s in steps], dtype=float)
    c = np.array([s["context"] for s in steps], dtype=float)
    dev = doc.get("device", {})
    out = [
        f"{doc['model']} ({doc['layers']} layers) measured on {dev.get('name', '?')} (torch {dev.get('torch', '?')}, "
        f"{doc.get('date', '?')}); aicap: {about['hardware']}, factors {about['efficiency']} (memory {about['memory']:.3f}, "
        f"compute {about['compute']:.3f}), no per-step overhead",
        f"{'batch':>6} {'context':>8} {'measured ms':>12} {'aicap ms':>10} {'aicap/measured':>15}",
    ]
    for s, m, p in zip(steps, meas, pred, strict=True):
        out.append(f"{s['batch']:>6} {s['context']:>8} {m:>12.3f} {p:>10.3f} {p / m:>15.2f}")
    ratio = pred / meas
    out.append(f"aicap/measured: median {np.median(ratio):.2f}, range {ratio.min():.2f}-{ratio.max():.2f} over {len(steps)} steps")
    if len(steps) >= 3:
        fm, fp = line_fit(b, c, meas), line_fit(b, c, pred)
        out.append("fit t = t_0 + s_B*B + s_KV*B*C       measured      aicap")
        for name, unit, i, scale in (("t_0", "ms", 0, 1.0), ("s_B", "us/seq", 1, 1e3), ("s_KV", "ns/token", 2, 1e6)):
            out.append(f"  {name:<5} [{unit}]{'':<22} {fm[i] * scale:>10.3f} {fp[i] * scale:>10.3f}")
    for g in doc.get("gemms", []):
        out.append(
            f"gemm {g['name']:<8} m={g['m']:<5} n={g['n']:<6} k={g['k']:<6} {g['ms_median']:.4f} ms  {g['tflops']:.1f} TFLOP/s"
            f"  {g.get('weight_gb_per_s', float('nan')):.0f} GB/s of weights"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="YAML written by benchmarks/device_decode.py")
    ap.add_argument("--hardware", default=None, help="catalogue device id (default: from the measured device's name)")
    args = ap.parse_args(argv)
    try:
        doc = yaml.safe_load(args.data.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        print(f"decode_check: {args.data}: {e}", file=sys.stderr)
        return 2
    if not isinstance(doc, dict) or doc.get("kind") != "decode_steps" or not doc.get("steps"):
        print(f"decode_check: {args.data}: not a decode_steps document of benchmarks/device_decode.py", file=sys.stderr)
        return 2
    hardware = args.hardware or hardware_for(str(doc.get("device", {}).get("name", "")))
    if hardware is None:
        print(f"decode_check: {args.data}: device {doc.get('device', {}).get('name')!r} has no catalogue id here; give --hardware",
              file=sys.stderr)  # fmt: skip
        return 2
    print("\n".join(report(doc, hardware)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
