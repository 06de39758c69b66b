"""Step times of many candidate replicas at once: the vectorised form of :func:`~aicap.sizing.serve.step.engine_step`.

:class:`Hardware` holds the achieved rates of the devices candidates run on; :class:`StepModel` holds,
per operator group, the FLOPs and bytes of a step as affine functions of the decoding sequences ``d`` and
prefill tokens ``p``, built from three evaluations of :func:`~aicap.sizing.serve.step.engine_costs`, so
the sizer, the load model and the simulator get a step time in a few array operations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import compute_dtype
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.perf.launches import graph_max_batch, launch_s, launched, step_kernels
from aicap.sizing.perf.operators import expert_bytes_terms
from aicap.sizing.perf.roofline import attention_projections_16bit, moe_layer_count, network_time
from aicap.sizing.serve.smoothing import DecodeKinks
from aicap.sizing.serve.step import OP_ORDER, engine_costs

F = NDArray[np.float64]


@dataclass(frozen=True)
class Hardware:
    """Achieved rates of the device each candidate runs on (arrays over candidates).

    ``flops`` and ``expert_flops`` are FLOP/s after the compute efficiency (the latter times the MoE
    factor), ``attention_flops`` the attention products' (at the slower of the weights' and the KV cache's compute
    dtypes) and ``sixteen_flops`` the 16-bit rate (at most ``flops``: a checkpoint's unquantised attention projections;
    :func:`~aicap.sizing.perf.roofline.op_times` prices the groups alike), ``bandwidth`` bytes/s after the memory
    efficiency, ``link`` bytes/s per direction after
    the link efficiency, ``link_latency_s``, ``overhead_s`` and ``moe_latency_s`` (the fixed latency of one
    MoE layer's expert GEMMs: :func:`~aicap.sizing.perf.roofline.moe_latency_s`) and ``kernel_latency_s`` (``τ_k``, the fixed
    time of one graphed kernel: :func:`~aicap.sizing.perf.launches.kernel_floor_s`) seconds, and ``domain`` the
    devices of one fast-link domain (a tensor-parallel group beyond it crosses the instance network), and ``exposed``
    the family's ``α``, the share of each group's shorter time (compute or memory) its kernels do not hide.
    """

    flops: F
    expert_flops: F
    bandwidth: F
    link: F
    link_latency_s: F
    overhead_s: F
    moe_latency_s: F
    kernel_latency_s: F
    domain: F
    attention_flops: F
    sixteen_flops: F
    exposed: F

    @classmethod
    def of(cls, pairs: Sequence[tuple[DeviceSpec, EfficiencySpec]], weights_dtype: str, kv_dtype: str | None = None) -> Hardware:
        """Rates of each ``(device, efficiency)`` for weights stored in ``weights_dtype`` and a KV cache in ``kv_dtype``."""
        rows = []
        for dev, eff in pairs:
            peaks: dict[str, float] = dict(dev.peak_tflops)

            def rate(dtype: str, peaks: dict[str, float] = peaks, eff: EfficiencySpec = eff) -> float:
                cdt = compute_dtype(dtype, peaks)
                return peaks[cdt] * 1e12 * eff.compute_for(cdt)

            flops = rate(weights_dtype)
            rows.append((flops, flops * eff.moe_compute, dev.memory_bw_gbps * 1e9 * eff.memory_for(weights_dtype),
                         dev.interconnect.bw_gbps * 1e9 * eff.link, eff.link_latency_us * 1e-6, eff.step_overhead_ms * 1e-3,
                         eff.moe_latency_us * 1e-6, eff.kernel_latency_us * 1e-6, dev.interconnect.domain_size,
                         min(flops, rate(kv_dtype or weights_dtype)), min(flops, rate("bf16")), eff.exposed_share))  # fmt: skip
        a = np.array(rows, dtype=float).reshape(-1, 12).T
        return cls(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11])

    def take(self, index: ArrayLike) -> Hardware:
        """The candidates at ``index`` (an integer array): rates computed once per device, repeated per candidate."""
        ix = np.asarray(index)
        return Hardware(
            self.flops[ix],
            self.expert_flops[ix],
            self.bandwidth[ix],
            self.link[ix],
            self.link_latency_s[ix],
            self.overhead_s[ix],
            self.moe_latency_s[ix],
            self.kernel_latency_s[ix],
            self.domain[ix],
            self.attention_flops[ix],
            self.sixteen_flops[ix],
            self.exposed[ix],
        )


_POINTS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))

_DERIVED = frozenset({"_seconds_coefficients", "_live_coefficients", "_slope_coefficients", "_both_slope"})  # StepModel's cached properties


def _affine(c: F, dx: F, px: F | None) -> F:
    """``c[0] + c[1]·dx + c[2]·px`` on one fresh array of the full broadcast shape (the terms in ``d`` formed once)."""
    const = c[0] + c[1] * dx
    if px is None:  # no prefill: the terms in d are all there is
        return np.array(np.broadcast_to(const, np.broadcast_shapes(const.shape, c[2].shape)), dtype=float)
    out = c[2] * px
    if out.shape == np.broadcast_shapes(out.shape, const.shape):
        out += const
        return np.asarray(out, dtype=float)
    return np.asarray(out + const, dtype=float)


@dataclass(frozen=True)
class StepModel:
    """Step times of many candidate replicas as exact affine functions of ``(d, p)`` per operator group.

    Per operator group the FLOPs and bytes of :func:`engine_costs` are affine in the decoding sequences
    ``d`` and prefill tokens ``p`` (for fixed context, prompt length and layout), except the bytes of
    MoE experts, which follow the touched-expert count ``E·(1 − (1 − k/E)^N)``. So three evaluations
    give every coefficient, and a step time costs a few array operations::

        T(d, p) = Σ_i g(F_i(d, p)/P_i, Q_i(d, p)/BW) + t_net(N) + t_0 + L_moe·τ,   N = d + p,
        g(c, m) = max(c, m) + α·min(c, m) = (1 − α)·max(c, m) + α·(c + m)

    (the experts' group with its bytes ``Q_e(N)``; ``α`` the family's exposed share; for an engine without
    CUDA graphs, ``max(·, H)`` over all but the last two terms, ``H`` the host time of launching the step's
    kernels: :mod:`aicap.sizing.perf.launches`; for one whose graphs hold decode batches up to ``G``, the same
    where ``p = 0`` and ``d > G``)

    which is :func:`engine_step` to rounding. (A mixture-of-experts *drafter* of speculative decoding is
    the exception: its touched experts are interpolated from ``d = 0`` and ``1``, a few per cent high.)
    The simulator and the load model call it many times.
    """

    flops: F  # (3, ops, n): constant, per decode sequence, per prefill token
    bytes: F  # (3, ops, n)
    peak: F  # (ops, n)
    bandwidth: F  # (n,)
    expert_fixed: F  # (n,) bytes
    expert_per_touched: F  # (n,) bytes
    expert_per_token: F  # (n,) bytes
    num_experts: int
    experts_per_token: float  # k; with data-parallel attention k' = E·(1 − (1 − k/E)^D), the experts one group token brings
    net: F  # (2, n): seconds constant (with the graphed kernels' fixed time K_g·τ_k, device time) and per token
    overhead_s: F  # (n,): the step overhead t_0 plus the MoE layers' expert-GEMM latency L_moe·τ
    decode_tokens: float = 1.0  # tokens each decoding sequence puts through the model (k + 1 with speculative decoding)
    host_s: F | None = None  # (n,): host time H of launching the kernels one by one (an eager engine); None: graphs, H = 0
    graph_max: F | None = None  # (n,): with host_s, the decode batch G above which a decode-only step pays H (-inf: every step)
    exposed: F | None = None  # (n,): α, the share of each group's shorter time not hidden behind the longer; None: 0 everywhere

    @classmethod
    def build(cls, dep: Deployment, hw: Hardware, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike, context: ArrayLike,
              prompt: ArrayLike, cached: ArrayLike = 0.0, crossings: ArrayLike | None = None,
              cross_bps: ArrayLike | None = None) -> StepModel:  # fmt: skip
        """Coefficients for candidates of one model and format on devices ``hw`` (arrays broadcast).

        ``prompt`` is the computed part of each prompt and ``cached`` its prefix already in the cache;
        ``crossings`` pipeline boundaries of a replica spanning instances cross the instance network at
        ``cross_bps`` bytes/s per device (:func:`~aicap.sizing.perf.roofline.network_time`).
        """
        tp_a, pp_a, ep_a, ctx, pr, cache, bw = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (tp, pp, ep, context, prompt, cached, hw.bandwidth))
        )
        evals = [engine_costs(dep, d, ctx, p, pr, tp_a, cache) for d, p in _POINTS]
        names = list(evals[0])
        f = np.stack([np.stack([np.broadcast_to(e[k].flops, tp_a.shape) for k in names]) for e in evals])
        q = np.stack([np.stack([np.broadcast_to(e[k].bytes, tp_a.shape) for k in names]) for e in evals])
        coef_f = np.stack([f[0], f[1] - f[0], f[2] - f[0]])
        coef_q = np.stack([q[0], q[1] - q[0], q[2] - q[0]])
        zero = np.zeros(tp_a.shape)
        e_fixed, e_touch, e_tok = zero, zero, zero
        num_e, k = 1, 0.0
        if dep.model.kind != "generic" and "experts" in names and dep.model.kind == "decoder" and dep.model.moe is not None:
            ie = names.index("experts")
            coef_q[:, ie] = 0.0  # experts' bytes are not affine: kept apart
            e_fixed, e_touch, e_tok = (np.broadcast_to(v, tp_a.shape) for v in expert_bytes_terms(dep, tp_a, tp_a / dep.dp_attention))
            num_e, k = dep.model.moe.num_experts, dep.model.moe.experts_per_token
            if dep.dp_attention > 1:  # an attention group's engine: its N tokens come with D·N routed (engine_costs)
                groups = float(dep.dp_attention)
                e_tok = e_tok * groups
                k = num_e * (1.0 - (1.0 - k / num_e) ** groups)  # E·(1 − (1 − k'/E)^N) = E·(1 − (1 − k/E)^(D·N))
        group = {"experts": hw.expert_flops, "attention": hw.attention_flops,
                 "attn_proj": hw.sixteen_flops if attention_projections_16bit(dep) else hw.flops}  # fmt: skip
        peak = np.stack([np.broadcast_to(group.get(name, hw.flops), tp_a.shape) for name in names])
        n0, n1 = (network_time(dep, t, tp_a, pp_a, ep_a, link_bps=hw.link, latency_s=hw.link_latency_s, crossings=crossings,
                               cross_bps=cross_bps, domain=hw.domain) for t in (0.0, 1.0))  # fmt: skip
        kernels = step_kernels(dep) * hw.kernel_latency_s  # device time with no work to scale it: the constant beside the network's
        net = np.stack([np.broadcast_to(n0 + kernels, tp_a.shape), np.broadcast_to(n1 - n0, tp_a.shape)])
        return cls(
            coef_f,
            coef_q,
            peak,
            bw,
            e_fixed,
            e_touch,
            e_tok,
            num_e,
            k,
            net,
            np.broadcast_to(hw.overhead_s + moe_layer_count(dep) * hw.moe_latency_s, tp_a.shape).astype(float),
            float(dep.verify_tokens),
            *_host_terms(dep, tp_a),
            _exposed(np.broadcast_to(hw.exposed, tp_a.shape)),
        )

    def seconds(self, decode_seqs: ArrayLike, prefill_tokens: ArrayLike) -> F:
        """Step time (s) with ``decode_seqs`` decoding and ``prefill_tokens`` prefilling, per candidate.

        Arguments broadcast against the candidates (last axis); leading axes evaluate many steps at once.
        """
        return self._time(decode_seqs, prefill_tokens, slope=False)[0]

    def seconds_and_slope(self, decode_seqs: ArrayLike, prefill_tokens: ArrayLike) -> tuple[F, F, F]:
        """Step time (s) and its partial derivatives ``∂T/∂d`` (s per decoding sequence) and ``∂T/∂p`` (s per prefill token).

        ``T`` is piecewise affine: each operator group contributes the slope of its binding side
        (``F_i'/P_i`` where compute binds, ``Q_i'/BW`` where memory does), the network its per-token
        term, and MoE experts ``(ΔE_touched(N)·q_touched + q_token)/BW`` where their bytes bind
        (``ΔE_touched`` the experts one more token touches: the touched count is concave in ``N``).
        """
        total, grads = self._time(decode_seqs, prefill_tokens, slope=True)
        assert grads is not None
        return total, grads[0], grads[1]

    def _time(self, decode_seqs: ArrayLike, prefill_tokens: ArrayLike, *, slope: bool) -> tuple[F, tuple[F, F] | None]:
        n_cand = self.bandwidth.shape
        d_in, p_in = np.asarray(decode_seqs, dtype=float), np.asarray(prefill_tokens, dtype=float)
        # Each argument keeps its own shape (at least the candidates'): the terms in d are formed once,
        # not once per leading index of p (the load model passes d per candidate, p per lump count).
        d = np.broadcast_to(d_in, np.broadcast_shapes(d_in.shape, n_cand))
        p = np.broadcast_to(p_in, np.broadcast_shapes(p_in.shape, n_cand))
        # No prefill at all (``p`` the scalar 0): its terms are skipped, not multiplied by zero.
        dx, px = d[..., None, :], (None if p_in.ndim == 0 and float(p_in) == 0.0 else p[..., None, :])
        fn, qn, _ = self._live_coefficients
        # F_i(d, p) and Q_i(d, p) as (..., ops, n), each on one fresh array (the arrays are the bulk of the cost).
        f, q = _affine(fn, dx, px), _affine(qn, dx, px)
        n = d * self.decode_tokens + p
        row = self._live_experts_row
        compute = f >= q if slope else None
        if row >= 0:
            e_time, missed = self._experts(n)
            f_row = f[..., row, :].copy()
        parts = np.maximum(f, q, out=f)
        if row >= 0:
            parts[..., row, :] = np.maximum(f_row, e_time)
        groups = np.einsum("...in->...n", parts)
        alpha = self.exposed
        if alpha is not None:  # Σ_i max + α·Σ_i min = Σ_i max + α·(Σ_i (c + m) − Σ_i max), Σ_i (c + m) affine: no array per group
            both = self._both_slope
            total_cm = both[0] + both[1] * d if px is None else both[0] + both[1] * d + both[2] * p
            if row >= 0:
                total_cm = total_cm + f_row + e_time
            groups = groups + alpha * (total_cm - groups)
        device = groups + self.net[0] + self.net[1] * n
        host = self.host_s
        if host is not None and self.graph_max is not None:  # graphs up to G: a decode-only step over G pays H, others as eager or not
            host = np.where(launched(d, 0.0 if px is None else p, self.graph_max), host, 0.0)
        if host is None:
            total = np.asarray(device + self.overhead_s, dtype=float)
        else:
            total = np.asarray(np.maximum(device, host) + self.overhead_s, dtype=float)
        if compute is None:
            return total, None
        # Per argument: each group's binding side's slope, summed, plus the network's per-token term:
        # Σ_i (compute_i ? F_i' : Q_i') = Σ_i Q_i' + Σ_i compute_i·(F_i' − Q_i'), the experts' row apart;
        # with α, (1 − α) of that plus α·Σ_i (F_i' + Q_i').
        memory_slope, gap = self._slope_coefficients
        if row >= 0:
            e_compute = f_row >= e_time
            e_grad = self._experts_slope(missed)
        grads = []
        for j, per in ((1, self.decode_tokens), (2, 1.0)):  # tokens per unit of d and of p
            g = memory_slope[j] + np.einsum("...in,in->...n", compute, gap[j])
            if row >= 0:
                g = g + np.where(e_compute, fn[j][row], per * e_grad)
            if alpha is not None:
                g = (1.0 - alpha) * g + alpha * self._both_slope[j]
                if row >= 0:
                    g = g + alpha * (fn[j][row] + per * e_grad)
            g = g + per * self.net[1]
            if host is not None:  # where the host's launches bind, more tokens cost nothing
                g = np.where(device >= host, g, 0.0)
            grads.append(np.asarray(g, dtype=float))
        return total, (grads[0], grads[1])

    def _experts(self, tokens: F) -> tuple[F, F]:
        """Seconds of the experts' bytes for ``tokens`` tokens, ``Q_e(N)/BW``, and ``b^N`` (``b = 1 − k/E``) for their slope.

        The touched experts are ``E·(1 − b^N)`` (expected_distinct_experts).
        """
        missed = (1.0 - self.experts_per_token / self.num_experts) ** tokens
        touched = self.num_experts * (1.0 - missed)
        return (self.expert_fixed + self.expert_per_touched * touched + self.expert_per_token * tokens) / self.bandwidth, missed

    def _experts_slope(self, missed: F) -> F:
        """Seconds one more token adds to the experts' bytes, given ``b^N`` from :meth:`_experts`.

        Tokens are whole: the slope is the forward difference over one more token (the touched count is concave).
        ``E·(1 − b^(N+1)) − E·(1 − b^N) = E·b^N·(1 − b) = k·b^N`` (no cancellation, no second power).
        """
        return np.asarray((self.expert_per_touched * (self.experts_per_token * missed) + self.expert_per_token) / self.bandwidth,
                          dtype=float)  # fmt: skip

    @property
    def _live_experts_row(self) -> int:
        """Index of the experts' group among the live groups of :attr:`_live_coefficients` (``-1``: no experts)."""
        live = self._live_coefficients[2]
        return live.index(self._experts_row) if self.experts_per_token and self._experts_row in live else -1

    @functools.cached_property
    def _slope_coefficients(self) -> tuple[F, F]:
        """``Σ_i Q_i'`` per argument and ``F_i' − Q_i'`` per live group (the experts' row zeroed in both: it is timed apart)."""
        fn, qn, _ = self._live_coefficients
        row = self._live_experts_row
        mem, gap = qn.copy(), fn - qn
        if row >= 0:
            mem[:, row] = 0.0
            gap[:, row] = 0.0
        return np.asarray(mem.sum(axis=1), dtype=float), np.asarray(gap, dtype=float)

    @functools.cached_property
    def _both_slope(self) -> F:
        """``Σ_i (F_i' + Q_i')`` per argument, the experts' row apart: the slope of the groups' ``c + m`` (the ``α`` part)."""
        mem, gap = self._slope_coefficients
        return np.asarray(2.0 * mem + gap.sum(axis=1), dtype=float)

    @functools.cached_property
    def _live_coefficients(self) -> tuple[F, F, list[int]]:
        """:attr:`_seconds_coefficients` without the operator groups that are zero for every candidate, and the kept rows.

        A dense model has no experts and a model without a drafter no draft: their ``max(0, 0)`` adds nothing.
        The experts' row stays while the model has experts (their bytes are kept apart, not in ``bytes``).
        """
        fn, qn = self._seconds_coefficients
        experts = self._experts_row if self.experts_per_token else -1
        live = [i for i in range(fn.shape[1]) if np.any(fn[:, i]) or np.any(qn[:, i]) or i == experts]
        return fn[:, live], qn[:, live], live

    @functools.cached_property
    def _seconds_coefficients(self) -> tuple[F, F]:
        """FLOPs over peak and bytes over bandwidth: ``(3, ops, n)`` seconds per unit of each argument."""
        return self.flops / self.peak, self.bytes / self.bandwidth

    def decode_kinks(self, decode_seqs: ArrayLike) -> DecodeKinks:
        """The decode-only step ``T(d, 0)`` at ``decode_seqs`` per candidate, as the gaps a spread of ``d`` smooths.

        Per operator group, compute minus memory time and its slope in ``d``; the experts' group on its local slope
        (their touched bytes are concave in ``d``). An eager engine, whose host time may bind instead, has none.
        """
        d = np.broadcast_to(np.asarray(decode_seqs, dtype=float), self.bandwidth.shape)
        fn = self._live_coefficients[0]
        gap = self._slope_coefficients[1]
        if self.host_s is not None and (self.graph_max is None or np.any(self.graph_max < 0.0)):
            empty = np.zeros((0, d.size))
            return DecodeKinks(empty, empty)
        g, g1 = gap[0] + gap[1] * d, gap[1].copy()
        row = self._live_experts_row
        if row >= 0:
            e_time, missed = self._experts(d * self.decode_tokens)
            g[row] = fn[0][row] + fn[1][row] * d - e_time
            g1[row] = fn[1][row] - self.decode_tokens * self._experts_slope(missed)
        # A kink at d* = d − g/g' ≤ 0 is out of the running count's reach (it is never negative): no kink there.
        with np.errstate(divide="ignore", invalid="ignore"):
            g1 = np.where((g1 != 0.0) & (g / g1 < d), g1, 0.0)
        keep = np.any(g1 != 0.0, axis=1)  # groups whose gap does not move with d have no kink in it
        if self.exposed is not None:  # (1 − α)·max(c, m) + α·(c + m): only (1 − α) of each kink is one
            g, g1 = g * (1.0 - self.exposed), g1 * (1.0 - self.exposed)
        return DecodeKinks(np.asarray(g[keep], dtype=float), np.asarray(g1[keep], dtype=float))

    def slope_floor(self) -> F:
        """A lower bound on ``∂T/∂d`` anywhere (s per decoding sequence): each group's smaller side's slope plus ``α`` of the larger."""
        mem = self.bytes[1] / self.bandwidth
        if self.experts_per_token:
            mem = mem.copy()
            mem[self._experts_row] = self.decode_tokens * self.expert_per_token / self.bandwidth
        comp = self.flops[1] / self.peak
        per_group = np.minimum(comp, mem) if self.exposed is None else np.minimum(comp, mem) + self.exposed * np.maximum(comp, mem)
        floor = np.asarray(per_group.sum(axis=0) + self.decode_tokens * self.net[1], dtype=float)
        if self.host_s is not None:  # an eager engine: where the host's launches bind, more sequences cost nothing
            floor = np.where(self.host_s > 0.0, 0.0, floor)
        return floor

    def __getstate__(self) -> dict[str, object]:
        """What pickling sends: the fields, not the coefficients derived from them (three times their size; derived again on use)."""
        return {k: v for k, v in self.__dict__.items() if k not in _DERIVED}

    @property
    def _experts_row(self) -> int:
        return OP_ORDER.index("experts")

    def take(self, index: ArrayLike) -> StepModel:
        """The candidates at ``index`` (an integer array or a boolean mask).

        The coefficients derived for this model (seconds per unit, the live operator groups and the
        slopes) are taken along rather than derived again: the bisections take subsets many times. A model
        that has not derived them yet does so on a take of at least a quarter of its candidates; a smaller
        subset derives its own. Where a live group is zero for every candidate taken, the subset's live
        groups are derived afresh (fewer terms sum in another order): step times are the same bit for bit
        as a fresh model's.
        """
        ix = np.asarray(index)
        out = StepModel(self.flops[:, :, ix], self.bytes[:, :, ix], self.peak[:, ix], self.bandwidth[ix], self.expert_fixed[ix],
                        self.expert_per_touched[ix], self.expert_per_token[ix], self.num_experts, self.experts_per_token,
                        self.net[:, ix], self.overhead_s[ix], self.decode_tokens, None if self.host_s is None else self.host_s[ix],
                        None if self.graph_max is None else self.graph_max[ix],
                        None if self.exposed is None else _exposed(self.exposed[ix]))  # fmt: skip
        if "_live_coefficients" not in self.__dict__ and 4 * out.bandwidth.size < self.bandwidth.size:
            return out  # a few candidates of a model that has not derived its coefficients (a plan's chosen replicas)
        fl, ql, live = self._live_coefficients
        fl, ql = np.ascontiguousarray(fl[..., ix]), np.ascontiguousarray(ql[..., ix])  # laid out as a fresh model's (einsum's order)
        still = np.any(fl, axis=(0, 2)) | np.any(ql, axis=(0, 2))
        row = self._live_experts_row
        if row >= 0:
            still[row] = True
        if still.all():
            mem, gap = self._slope_coefficients
            out.__dict__["_live_coefficients"] = (fl, ql, live)
            out.__dict__["_slope_coefficients"] = (np.ascontiguousarray(mem[..., ix]), np.ascontiguousarray(gap[..., ix]))
        else:  # a group dead for every candidate taken: derived afresh from the seconds per unit
            fs, qs = self._seconds_coefficients
            out.__dict__["_seconds_coefficients"] = (fs[..., ix], qs[..., ix])
        return out

    @classmethod
    def concat(cls, parts: Sequence[StepModel]) -> StepModel:
        """One model over the candidates of ``parts``, in order.

        The parts must have the same form: operator groups, expert count and routing, and tokens per
        decoding sequence (models of one kind and expert layout, with the same speculative decoding).
        """
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        form = (first.flops.shape[:2], first.num_experts, first.experts_per_token, first.decode_tokens)
        if any((p.flops.shape[:2], p.num_experts, p.experts_per_token, p.decode_tokens) != form for p in parts):
            raise ValueError("StepModel.concat: the parts differ in operator groups, experts or tokens per decoding sequence")

        def cat(name: str) -> F:
            return np.concatenate([getattr(p, name) for p in parts], axis=-1)

        return cls(cat("flops"), cat("bytes"), cat("peak"), cat("bandwidth"), cat("expert_fixed"), cat("expert_per_touched"),
                   cat("expert_per_token"), first.num_experts, first.experts_per_token, cat("net"), cat("overhead_s"),
                   first.decode_tokens, *_concat_host(parts),
                   _exposed(np.concatenate([np.zeros(p.bandwidth.shape) if p.exposed is None else p.exposed for p in parts])))  # fmt: skip

    def all_graphed(self) -> StepModel:
        """The model with every decode batch replayed from a graph (no graph cap): the same where ``d ≤ G``, faster above.

        Eager candidates keep their launch floor. The model itself where none has a cap.
        """
        if self.host_s is None or self.graph_max is None or not np.any(self.graph_max >= 0.0):
            return self
        eager = self.graph_max < 0.0
        if not eager.any():
            return replace(self, host_s=None, graph_max=None)
        return replace(self, host_s=np.where(eager, self.host_s, 0.0), graph_max=np.where(eager, -np.inf, np.inf))

    def one(self, k: int) -> Callable[[int, int], float]:
        """Scalar step time of candidate ``k``: ``f(decode_seqs, prefill_tokens) -> seconds`` (for the simulator)."""
        single = self.take(np.array([k]))

        def step(decode_seqs: int, prefill_tokens: int) -> float:
            return float(single.seconds(decode_seqs, prefill_tokens)[0])

        return step


def _host_terms(dep: Deployment, tp: F) -> tuple[F | None, F | None]:
    """``(host_s, graph_max)`` of a model built for ``dep``: ``(None, None)`` where every step is graphed.

    An eager engine pays ``H`` every step (``graph_max`` ``None``); one whose graphs hold decode batches up to ``G``
    carries ``H`` and ``G`` (:func:`~aicap.sizing.perf.launches.graph_max_batch`).
    """
    rt = dep.runtime
    if rt.eager:
        return np.broadcast_to(launch_s(dep, tp), tp.shape).astype(float), None
    if rt.cuda_graph_max_batch is None:
        return None, None
    return np.broadcast_to(launch_s(dep, tp), tp.shape).astype(float), graph_max_batch(dep, tp)


def _exposed(alpha: F) -> F | None:
    """The candidates' ``α`` as :class:`StepModel` keeps it: ``None`` where it is 0 for all (the plain roofline, no extra terms)."""
    return np.asarray(alpha, dtype=float) if np.any(alpha) else None


def _concat_host(parts: Sequence[StepModel]) -> tuple[F | None, F | None]:
    """The parts' host launch times and graph caps side by side (H = 0 for a part whose steps are all graphed).

    ``(None, None)`` where no part launches eagerly; a graph cap of ``-inf`` (every step) for an eager part, ``inf`` for a graphed one.
    """
    if all(p.host_s is None for p in parts):
        return None, None
    host = np.concatenate([np.zeros(p.bandwidth.shape) if p.host_s is None else p.host_s for p in parts])
    if all(p.graph_max is None for p in parts):
        return host, None
    caps = [np.full(p.bandwidth.shape, np.inf if p.host_s is None else -np.inf) if p.graph_max is None else p.graph_max for p in parts]
    return host, np.concatenate(caps)
