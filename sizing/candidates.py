"""Candidate deployments of each workload on each allowed instance type.

For a workload and an instance type, every layout that fits inside one instance's fast-link domain is
a candidate: ``tp · pp`` a power of two dividing the instance's device count (so replicas of
different sizes pack into whole instances exactly: sizes that divide one another bin-pack without
waste), ``tp ≤`` the device's link domain and dividing the head count, for each allowed precision.
The batch is the largest that fits memory at the longest request and keeps TPOT within target
(TPOT grows and throughput does not fall with the batch, so the largest such batch is best); it is
found by bisection, vectorised over layouts. The per-replica rate then comes from
:func:`aicap.sizing.queueing.sustainable_rate`. Candidates that fail keep their reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from aicap.sizing.fleet import PERCENTILES, Workload
from aicap.sizing.layout import Deployment
from aicap.sizing.queueing import sustainable_rate
from aicap.sizing.serving import max_fitting_batch, serve
from aicap.sizing.specs import InstanceSpec

_BATCH_BISECTIONS = 12


@dataclass(frozen=True)
class Candidate:
    """One (workload, instance type, layout, precision) option and how much traffic a replica carries."""

    workload: str
    instance: str
    hardware: str
    tp: int
    pp: int
    weights_dtype: str
    kv_dtype: str
    batch: int
    devices: int
    capacity_rps: float
    ttft_ms: float
    tpot_ms: float | None
    output_tokens_per_s: float
    reason: str | None = None
    service_s: float = 0.0

    @property
    def feasible(self) -> bool:
        """Whether a replica can carry traffic within the targets."""
        return self.reason is None and self.capacity_rps > 0


def _formats(precision: str, device: Any) -> tuple[str, str] | None:
    peaks = device.peak_tflops
    if precision == "fp8" and "fp8" not in peaks:
        return None
    w = precision
    if precision == "bf16" and "bf16" not in peaks:
        w = "fp16" if "fp16" in peaks else "fp32"
    kv = "fp8" if w == "fp8" else ("bf16" if w in {"int8", "int4"} and "bf16" in peaks else ("fp16" if w in {"int8", "int4"} else w))
    return w, kv


def _layouts(model: Any, inst: InstanceSpec, device: Any) -> list[tuple[int, int]]:
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if inst.devices % s == 0]
    heads = getattr(model, "num_heads", 1)
    layers = getattr(model, "num_layers", 1)
    out = []
    for size in sizes:
        for tp in (t for t in sizes if t <= size and size % t == 0):
            pp = size // tp
            if tp <= device.interconnect.domain_size and heads % tp == 0 and pp <= layers:
                out.append((tp, pp))
    return out


def _latency(dep: Deployment, batch: np.ndarray, i: float, o: float, tps: np.ndarray, pps: np.ndarray) -> np.ndarray:
    """The latency the batch is limited by: TPOT for decoders, the batch's forward time otherwise."""
    m = serve(dep, np.maximum(batch, 1.0), i, o, tps, pps)
    return np.asarray(m.tpot_s if dep.model.kind == "decoder" else m.ttft_s)


def _best_batches(dep: Deployment, tps: np.ndarray, pps: np.ndarray, i: float, o: float, ctx: float, limit_s: float | None) -> np.ndarray:
    """Largest batch per layout that fits memory at ``ctx`` and meets the latency limit.

    The limit applies to TPOT for decoders; for encoders and generic models to the forward time of
    the batch, which is part of every request's latency. 0 where no batch qualifies.
    """
    hi = np.asarray(max_fitting_batch(dep, i, max(ctx - i, 1.0), tps, pps), dtype=float)
    if limit_s is None:
        return hi
    ok_hi = _latency(dep, hi, i, o, tps, pps) <= limit_s
    lo = np.zeros_like(hi)
    top = hi.copy()
    for _ in range(_BATCH_BISECTIONS):
        mid = np.floor((lo + top) / 2.0)
        good = (mid >= 1) & (_latency(dep, mid, i, o, tps, pps) <= limit_s)
        lo = np.where(good, mid, lo)
        top = np.where(good, top, mid)
        top = np.maximum(top, lo)
    return np.where(ok_hi, hi, lo)


def candidates_for(w: Workload, model: Any, inst: InstanceSpec, device: Any, efficiency: Any, runtime: Any) -> list[Candidate]:
    """Every candidate of workload ``w`` on instance type ``inst`` (feasible or with a reason)."""
    layouts = _layouts(model, inst, device)
    out: list[Candidate] = []
    if not layouts:
        heads = getattr(model, "num_heads", 1)
        return [Candidate(w.name, inst.name, device.id, 0, 0, "-", "-", 0, 0, 0.0, 0.0, None, 0.0,
                          f"no tensor-parallel degree divides {heads} heads within {inst.devices} devices")]  # fmt: skip
    tps = np.array([t for t, _ in layouts], dtype=float)
    pps = np.array([p for _, p in layouts], dtype=float)
    decoder = model.kind == "decoder"
    i, o = w.mean_input, w.mean_output
    ctx = float(w.max_context) if decoder else i + 1.0
    tpot_s = None if w.slo.tpot_ms is None else w.slo.tpot_ms / 1000.0
    ttft_s = None if w.slo.ttft_ms is None else w.slo.ttft_ms / 1000.0
    for precision in w.precisions:
        fmt = _formats(precision, device)
        if fmt is None:
            continue
        dep = Deployment(model, device, efficiency, runtime, 1, 1, 1, fmt[0], fmt[1])
        # Encoders spend at most half the TTFT target on the batch's forward pass; queueing gets the rest.
        limit = tpot_s if decoder else (None if ttft_s is None else ttft_s / 2.0)
        batch = _best_batches(dep, tps, pps, i, o if decoder else 1.0, ctx, limit)
        m = serve(dep, np.maximum(batch, 1.0), i, o if decoder else 1.0, tps, pps)
        service = m.e2e_s if decoder else m.ttft_s
        servers = batch if decoder else np.ones_like(batch)
        # Encoders batch requests per forward pass: a replica is one server of rate requests_per_s.
        svc = service if decoder else 1.0 / np.maximum(m.requests_per_s, 1e-12)
        rate = sustainable_rate(np.maximum(servers, 1.0), svc, m.ttft_s, ttft_s, PERCENTILES[w.slo.percentile])
        rate = np.where(batch >= 1, rate, 0.0)
        for k, (tp, pp) in enumerate(layouts):
            reason = None
            if batch[k] < 1:
                if max_fitting_batch(dep, i, max(ctx - i, 1.0), tp, pp) < 1:
                    reason = "does not fit memory at the longest request"
                elif decoder:
                    reason = f"TPOT {float(m.tpot_s[k]) * 1e3:.0f} ms > target {w.slo.tpot_ms:g} ms even at batch 1"
                else:
                    reason = f"latency {float(m.ttft_s[k]) * 1e3:.0f} ms > half the target {w.slo.ttft_ms:g} ms even at batch 1"
            elif rate[k] <= 0:
                reason = f"TTFT {float(m.ttft_s[k]) * 1e3:.0f} ms > target {w.slo.ttft_ms:g} ms even when idle"
            out.append(Candidate(
                workload=w.name, instance=inst.name, hardware=device.id, tp=tp, pp=pp, weights_dtype=fmt[0], kv_dtype=fmt[1],
                batch=int(batch[k]), devices=tp * pp, capacity_rps=float(rate[k]), ttft_ms=float(m.ttft_s[k]) * 1e3,
                tpot_ms=float(m.tpot_s[k]) * 1e3 if decoder else None,
                output_tokens_per_s=float(m.output_tokens_per_s[k]) if decoder else 0.0, reason=reason,
                service_s=float(np.broadcast_to(svc, batch.shape)[k]),
            ))  # fmt: skip
    if not out:
        out.append(Candidate(w.name, inst.name, device.id, 0, 0, "-", "-", 0, 0, 0.0, 0.0, None, 0.0,
                             f"{device.id} supports none of the allowed precisions {', '.join(w.precisions)}"))  # fmt: skip
    return out
