"""Throughput, utilisation and memory of a grid of layouts: the training model in one call."""

from __future__ import annotations

from dataclasses import dataclass

from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.train.factors import TrainingFactors
from aicap.sizing.train.grid import Col, Grid
from aicap.sizing.train.memory import MemoryColumns, memory
from aicap.sizing.train.shape import ModelShape
from aicap.sizing.train.step import Fabric, StepColumns, step_time


@dataclass(frozen=True)
class Evaluation:
    """Memory, step time and the rates derived from them, one value per layout.

    ``mfu_pct`` and ``hfu_pct`` divide model and utilised FLOPs per second per device by the
    device's dense 16-bit peak (also for fp8 runs, as torchtitan and PaLM report it):
    ``MFU = tokens/s/device · F_model / P_16``, with attention counted causally; ``mfu_palm_pct``
    counts it unmasked, as PaLM's ``6N + 12 L H Q T`` does (it can pass 100% at long sequences).
    """

    memory: MemoryColumns
    step: StepColumns
    step_time_s: Col
    tokens_per_s_per_device: Col
    tflops_per_device: Col
    mfu_pct: Col
    hfu_pct: Col
    mfu_palm_pct: Col


@dataclass(frozen=True)
class Hardware:
    """The device, its efficiency factors, runtime reserves and the fabric the job runs on."""

    device: DeviceSpec
    efficiency: EfficiencySpec
    runtime: RuntimeSpec
    fabric: Fabric
    host_gib_per_device: float | None = None

    @property
    def peak16_tflops(self) -> float:
        """Dense 16-bit peak (bf16, else fp16, else fp32) in TFLOP/s."""
        peaks = self.device.peak_tflops
        return peaks.get("bf16") or peaks.get("fp16") or peaks["fp32"]


def evaluate(shape: ModelShape, g: Grid, hw: Hardware, factors: TrainingFactors) -> Evaluation:
    """Evaluate every layout of ``g`` on ``hw``.

    ``tokens/s/device = B / (t_step · D)`` for ``B`` tokens per step on ``D`` devices. The recipe's
    multi-token-prediction modules (``mtp_depth``) join the model first (:meth:`ModelShape.with_mtp`).
    """
    shape = shape.with_mtp(g.recipe.mtp_depth)
    mem = memory(shape, g, hw.device.memory_gib, hw.runtime, factors, hw.host_gib_per_device)
    step = step_time(shape, g, hw.device, hw.efficiency, hw.fabric, factors)
    t = step.total
    tps = g.batch_tokens / (t * g.devices)
    peak = hw.peak16_tflops * 1e12
    return Evaluation(
        memory=mem,
        step=step,
        step_time_s=t,
        tokens_per_s_per_device=tps,
        tflops_per_device=tps * step.flops.model / 1e12,
        mfu_pct=100.0 * tps * step.flops.model / peak,
        hfu_pct=100.0 * tps * step.flops.utilised / peak,
        mfu_palm_pct=100.0 * tps * step.flops.palm / peak,
    )
