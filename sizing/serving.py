"""Serving metrics under continuous batching, built from prefill and decode step times.

For ``B`` concurrent requests of ``I`` input and ``O`` output tokens (decode at the mean context
``c̄ = I + O/2``):

* ``TTFT = T_prefill(1, I)``: a request's prefill when it is admitted (queueing is the sizer's job);
* a cycle serves ``B`` requests in ``T_cycle = T_prefill(B, I) + (O − 1)·T_decode(B, c̄)``, where
  ``T_prefill(B, I)`` runs in ``max(B·I / max_prefill_tokens, 1)`` chunks, each paying the step overhead;
* ``TPOT = (T_cycle − TTFT)/(O − 1)``: decode steps plus the other requests' prefills that interrupt
  them (``T_decode`` alone when ``O = 1``); ``E2E = TTFT + (O − 1)·TPOT``;
* output tokens/s ``= B·O / T_cycle``, requests/s ``= B / T_cycle`` per replica.

Encoders and generic models have a single phase: latency ``T_forward(B)`` and items/s ``B / T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing import memory
from aicap.sizing.layout import Deployment
from aicap.sizing.roofline import StepTime, step_time

F = NDArray[np.float64]


@dataclass(frozen=True)
class ServingMetrics:
    """Per-replica serving metrics (arrays over candidates); times in seconds."""

    batch: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    output_tokens_per_s: F
    total_tokens_per_s: F
    requests_per_s: F
    fits: NDArray[np.bool_]
    prefill: StepTime
    decode: StepTime


def prefill_time(
    dep: Deployment, batch: ArrayLike, input_tokens: ArrayLike, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike
) -> tuple[F, StepTime]:
    """Time to prefill ``batch`` requests of ``input_tokens`` (chunked), and the step it came from."""
    b = np.asarray(batch, dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    causal = dep.model.kind == "decoder"
    st = step_time(dep, b, i, 0.0, tp, pp, ep, causal=causal)
    # Chunks counted continuously (tokens / budget) so the per-chunk overhead amortises smoothly.
    chunks = np.maximum(b * i / dep.runtime.max_prefill_tokens, 1.0)
    return np.asarray(st.total + (chunks - 1.0) * st.overhead_s, dtype=float), st


def serve(dep: Deployment, batch: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike, tp: ArrayLike | None = None,
          pp: ArrayLike | None = None, ep: ArrayLike | None = None) -> ServingMetrics:  # fmt: skip
    """Serving metrics of one replica for ``batch`` concurrent requests (see module docstring)."""
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    pp_a = np.asarray(dep.pp if pp is None else pp, dtype=float)
    ep_a = np.asarray(dep.ep if ep is None else ep, dtype=float)
    b = np.asarray(batch, dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    o = np.maximum(np.asarray(output_tokens, dtype=float), 1.0)
    if dep.model.kind != "decoder":
        t, st = prefill_time(dep, b, i, tp_a, pp_a, ep_a)
        fits = _fits_encoder(dep, tp_a, pp_a, b, i)
        rate = b / t
        return ServingMetrics(b + 0 * t, t, 0 * t, t, 0 * t, rate * i, rate, fits, st, st)
    ttft, _ = prefill_time(dep, 1.0, i, tp_a, pp_a, ep_a)
    t_pre, pre_step = prefill_time(dep, b, i, tp_a, pp_a, ep_a)
    dec = step_time(dep, b, 1.0, i + o / 2.0, tp_a, pp_a, ep_a)
    cycle = t_pre + (o - 1.0) * dec.total
    tpot = np.where(o > 1, (cycle - ttft) / np.maximum(o - 1.0, 1.0), dec.total)
    fits = memory.breakdown(dep, tp_a, pp_a, b, i, i + o).fits
    return ServingMetrics(
        batch=b + 0 * cycle,
        ttft_s=ttft + 0 * cycle,
        tpot_s=np.asarray(tpot, dtype=float),
        e2e_s=ttft + (o - 1.0) * tpot,
        output_tokens_per_s=b * o / cycle,
        total_tokens_per_s=b * (i + o) / cycle,
        requests_per_s=b / cycle,
        fits=np.asarray(fits),
        prefill=pre_step,
        decode=dec,
    )


def _fits_encoder(dep: Deployment, tp: F, pp: F, batch: F, tokens: F) -> NDArray[np.bool_]:
    if dep.model.kind == "generic":
        act = (dep.model.activation_bytes_per_item or 0.0) * batch
        need = memory.weight_bytes_generic(dep) / tp + act + memory.overhead_bytes(dep, tp, pp)
        return np.asarray(need <= memory.capacity_bytes(dep))
    mb = memory.breakdown(dep, tp, pp, batch, tokens, 0.0)
    return mb.fits


def max_fitting_batch(dep: Deployment, input_tokens: ArrayLike, output_tokens: ArrayLike, tp: ArrayLike, pp: ArrayLike) -> F:
    """Largest batch that fits memory at full context ``I + O``, capped at the runtime's ``max_batch``."""
    if dep.model.kind != "decoder":
        return np.asarray(np.full(np.shape(np.asarray(tp)), float(dep.runtime.max_batch)), dtype=float)
    i = np.asarray(input_tokens, dtype=float)
    b = memory.max_batch(dep, tp, pp, i, i + np.asarray(output_tokens, dtype=float))
    return np.asarray(np.minimum(b, dep.runtime.max_batch), dtype=float)


def auto_batch(dep: Deployment, input_tokens: float, output_tokens: float, tp: int, pp: int, ep: int = 1,
               tpot_limit_s: float | None = None) -> int:  # fmt: skip
    """Throughput-maximising batch that fits memory and, if given, keeps TPOT within the limit.

    Evaluates every batch from 1 to the memory limit at once (vectorised) and returns the one with
    the highest output tokens/s among those that meet the TPOT limit; 0 when none fits.
    """
    limit = int(max_fitting_batch(dep, input_tokens, output_tokens, tp, pp))
    if limit < 1:
        return 0
    grid = np.arange(1, limit + 1, dtype=float)
    m = serve(dep, grid, input_tokens, output_tokens, tp, pp, ep)
    ok = m.fits.copy()
    if tpot_limit_s is not None and dep.model.kind == "decoder":
        ok &= m.tpot_s <= tpot_limit_s
    if not ok.any():
        return 0
    score = np.where(ok, m.output_tokens_per_s if dep.model.kind == "decoder" else m.requests_per_s, -1.0)
    return int(grid[int(np.argmax(score))])
