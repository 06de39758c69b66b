"""Per-operator breakdown of one phase of a deployment (``aicap explain``)."""

from __future__ import annotations

from typing import Any

from aicap.sizing.core.dtypes import compute_dtype
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.figures import pyplot
from aicap.sizing.perf.roofline import moe_latency_s
from aicap.sizing.serve.estimate import EstimateResult

PHASES = ("prefill", "decode")


def breakdown(result: EstimateResult, phase: str) -> dict[str, Any]:
    """FLOPs, bytes, arithmetic intensity, time and bound of each operator group in ``phase``.

    Returns a document with the device's roofline (peak FLOP/s and bandwidth after efficiency, in
    FLOP/s and B/s, the ridge intensity in FLOP/B, and the exposed share ``α``: each operator's time is
    ``max(c, m) + α·min(c, m)``) and one row per operator, plus network and
    fixed-overhead rows (a MoE model's expert-GEMM latency, ``L_moe · τ``, and the graphed kernels' fixed time, ``K_g · τ_k``,
    each in a row of its own).
    Prefill is the batch's prompts in one pass (``context_tokens`` each; an engine splits it into steps of its
    prefill budget, whose times add up to this one); decode is one step with every request at the mean context
    ``I + O/2`` (``context_tokens``), without the prefill steps that interleave with decoding under load (the TPOT of
    ``aicap estimate`` counts those).

    Raises
    ------
    InputError
        For the decode phase of a model that does not decode (an encoder or an item model).
    """
    dep = result.deployment
    if phase == "decode" and dep.model.kind != "decoder":
        raise InputError(f"--phase decode: {dep.model.id} is {'an encoder' if dep.model.kind == 'encoder' else 'not a decoder'} "
                         "and runs no decode step; use --phase prefill")  # fmt: skip
    req = result.request
    context = req.input_tokens if phase == "prefill" or dep.model.kind != "decoder" else req.input_tokens + req.output_tokens / 2.0
    step = result.metrics.prefill if phase == "prefill" else result.metrics.decode
    peaks: dict[str, float] = dict(dep.device.peak_tflops)
    cdt = compute_dtype(dep.weights_dtype, peaks)
    peak = peaks[cdt] * 1e12 * dep.efficiency.compute_for(cdt)
    bw = dep.device.memory_bw_gbps * 1e9 * dep.efficiency.memory_for(dep.weights_dtype)
    total = float(step.total)
    rows = []
    for name, op in step.ops.items():
        t = float(op.seconds)
        if float(op.flops) == 0 and float(op.bytes) == 0:
            continue
        rows.append({
            "operator": name,
            "gflops": round(float(op.flops) / 1e9, 3),
            "mbytes": round(float(op.bytes) / 1e6, 3),
            "intensity_flop_per_byte": round(float(op.intensity), 2),
            "time_ms": round(t * 1e3, 4),
            "share_pct": round(100 * t / total, 1),
            "bound": "compute" if float(op.compute_s) >= float(op.memory_s) else "memory",
        })  # fmt: skip
    # The step's overhead is t_0 + L_moe·τ per engine step, paid once per prefill chunk (serving.prefill_time): the experts'
    # fixed latency gets a row of its own, for as many steps as the overhead holds; so do the graphed kernels' (device time).
    moe = moe_latency_s(dep)
    per_step = dep.efficiency.step_overhead_ms * 1e-3 + moe
    moe *= float(step.overhead_s) / per_step if per_step > 0 else 1.0
    kernels = float(step.kernels_s)
    fixed = [("network", float(step.network_s), "network"), ("overhead", float(step.overhead_s) - moe, "overhead")]
    if moe > 0:
        fixed.append(("moe_latency", moe, "overhead"))
    if kernels > 0:
        fixed.append(("kernel_latency", kernels, "overhead"))
    launch = float(step.shares()["launch"])  # an eager engine's kernel launches beyond the device's work
    if launch > 0:
        fixed.append(("eager_launches", launch, "launch"))
    for name, t, bound in fixed:
        rows.append({"operator": name, "gflops": 0.0, "mbytes": 0.0, "intensity_flop_per_byte": None,
                     "time_ms": round(t * 1e3, 4), "share_pct": round(100 * t / total, 1), "bound": bound})  # fmt: skip
    return {
        "schema_version": 1,
        "model": dep.model.id,
        "hardware": dep.device.id,
        "phase": phase,
        "tp": dep.tp,
        "pp": dep.pp,
        "batch": result.batch,
        "context_tokens": round(float(context), 1),
        "compute_dtype": cdt,
        "roofline": {
            "peak_flops": peak,
            "bandwidth_bytes_per_s": bw,
            "ridge_flop_per_byte": round(peak / bw, 1),
            "exposed_share": dep.efficiency.exposed_share,
        },
        "step_time_ms": round(total * 1e3, 4),
        "bound": str(step.bound()),
        "operators": rows,
    }


def plot(doc: dict[str, Any], path: str) -> None:
    """Draw the roofline with the operators on it (needs the ``plot`` extra: matplotlib)."""
    plt = pyplot()
    import numpy as np

    peak, bw = doc["roofline"]["peak_flops"], doc["roofline"]["bandwidth_bytes_per_s"]
    x = np.logspace(-1, 4, 200)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.loglog(x, np.minimum(peak, bw * x) / 1e12, color="black", label="roofline (after efficiency)")
    for row in doc["operators"]:
        if row["intensity_flop_per_byte"] is None or row["time_ms"] == 0:
            continue
        achieved = row["gflops"] * 1e9 / (row["time_ms"] / 1e3) / 1e12
        ax.scatter([max(row["intensity_flop_per_byte"], 0.1)], [achieved], label=row["operator"])
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("TFLOP/s")
    ax.set_title(f"{doc['model']} on {doc['hardware']} — {doc['phase']} (batch {doc['batch']}, TP={doc['tp']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
