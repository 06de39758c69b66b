"""Step time at a step's actual decode contexts and prefill spans: what the simulator times.

:class:`~aicap.sizing.serve.step_model.StepModel` gives ``T(d, p)`` with every decoding sequence at one
context ``c0`` and every prefill token at one attention span ``s0`` (it is built at the workload's mean
lengths). In a running engine each decoding sequence has its own context, and a chunk of a long
prompt attends over everything of its prompt before it. Of the operator groups only attention
depends on them (and a speculative drafter's, which attends over the same contexts), and linearly:

.. math::

    F_a(d, p; S, W) = F_a(d, p) + f_S·(S − d·c_0) + f_W·(W − p·s_0)

    Q_a(d, p; S, V) = Q_a(d, p) + q_S·(S − d·c_0) + q_V·(V − p·s_0/I)

with ``S = Σ_r c_r`` over the decoding sequences (tokens in each one's KV cache before the step), ``W``
the prefill attention work in token-spans, ``Σ_j m_j·σ_j``, and ``V = Σ_j σ_j`` the spans whose KV a
chunk reads once, over the step's prompt chunks (``m_j`` tokens after ``o_j`` tokens of the same
prompt, a cached prefix included; span ``σ_j = o_j + (m_j + 1)/2`` for a causal model, ``o_j + m_j``
for a bidirectional one). The step model prices ``p`` prefill tokens as ``p/I`` prompts of the mean
computed length ``I`` at span ``s_0``. So, per group ``T_g = max(c, m) + α·min(c, m)`` with ``c = F_g/P_g``,
``m = Q_g/BW`` as in the step model (``α`` the family's exposed share),

.. math::

    T(d, p; S, W, V) = T(d, p) − T_a(d, p) − T_{draft}(d, p) + T_a(d, p; S, W, V) + T_{draft}(d, p; S),

exact where :class:`StepModel` is, but for layers with a sliding window, which take the derivative at
``c0`` (their span is ``min(c, window)``, not linear). The coefficients ``f_S, q_S, f_W, q_V`` are
finite differences of :func:`~aicap.sizing.serve.step.engine_costs` in the context and the cached prefix.

The simulator keeps ``S`` up to date in O(1) per step and memoises :meth:`ContextStep.parts` per
``(d, p)``; ``W`` and ``V`` come from four running sums of the step's chunks (``Σ m·o``, ``Σ m²``,
``Σ o`` and their number) and ``p = Σ m``, so the step time is a few Python float operations.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.perf.launches import launched
from aicap.sizing.serve.step import engine_costs
from aicap.sizing.serve.step_model import Hardware, StepModel

F = NDArray[np.float64]
Parts = tuple[float, ...]
"""``(rest, a_F, a_S, a_MO, a_MM, a_Q, b_S, b_O, b_N, d_F, d_S, d_Q, e_S, α)`` (eager: ``H, t_0`` too): :meth:`ContextStep.parts`."""

_ATTENTION, _DRAFT = 1, 6  # rows of the attention and drafter groups in StepModel (serve.step.OP_ORDER, then the drafter)


@dataclass(frozen=True, eq=False)
class ContextStep:
    """Step time of one replica with the decode contexts and prefill spans as variables (module docstring).

    Called as ``step(d, p)`` it is :meth:`StepModel.seconds` at the built context (any
    :class:`~aicap.sizing.sim.engine.StepTime` caller can use it); :meth:`parts` is what the simulator uses.

    Attributes
    ----------
    model : StepModel
        The step model of this one replica (built at context ``context`` and span ``span``).
    context, span : float
        ``c0`` [tokens] and ``s0`` [tokens] it was built at.
    causal : bool
        Whether prompts attend causally (decoders) or both ways (encoders).
    prompt : float
        ``I``, the mean computed prompt it was built at [tokens].
    ctx_s, ctx_bytes_s, span_s, read_s : F
        Per operator group: seconds of compute per decode-context token (``f_S/P``), of memory per
        decode-context token (``q_S/BW``), of compute per prefill token-span (``f_W/P``) and of memory
        per span a chunk reads (``q_V/BW``).
    """

    model: StepModel
    context: float
    span: float
    causal: bool
    prompt: float
    ctx_s: F
    ctx_bytes_s: F
    span_s: F
    read_s: F

    @classmethod
    def build(cls, dep: Deployment, hw: Hardware, tp: int, pp: int, ep: float, context: float, prompt: float, cached: float = 0.0,
              crossings: ArrayLike | None = None, cross_bps: ArrayLike | None = None) -> ContextStep:  # fmt: skip
        """The step of ``dep`` on ``hw`` (one device) built at decode context ``context`` [tokens].

        ``prompt`` is the computed part of the mean prompt and ``cached`` its cached prefix [tokens];
        ``crossings`` and ``cross_bps`` as in :meth:`StepModel.build`.
        """
        model = StepModel.build(dep, hw, np.array([tp]), np.array([pp]), ep, np.array([context]), np.array([prompt]), np.array([cached]),
                                crossings, cross_bps)  # fmt: skip
        tp_a = np.array([float(tp)])
        pr = max(float(prompt), 1.0)

        def groups(d: float, c: float, p: float, cache: float) -> tuple[F, F]:
            costs = engine_costs(dep, d, c, p, pr, tp_a, cache)
            return (np.array([float(np.sum(v.flops)) for v in costs.values()]), np.array([float(np.sum(v.bytes)) for v in costs.values()]))

        f0, q0 = groups(1.0, context, 0.0, cached)
        f1, q1 = groups(1.0, context + 1.0, 0.0, cached)
        g0, r0 = groups(0.0, 0.0, 1.0, cached)
        g1, r1 = groups(0.0, 0.0, 1.0, cached + 1.0)  # one more token before the prompt: every prefill token's span + 1
        peak, bw = model.peak[:, 0], float(model.bandwidth[0])
        causal = dep.model.kind == "decoder"
        span = cached + ((pr + 1.0) / 2.0 if causal else pr)
        # One prefill token is 1/I of a prompt: its KV reads grow by 1/I per span, so a whole chunk's by I times that.
        return cls(model, float(context), float(span), causal, pr, (f1 - f0) / peak, (q1 - q0) / bw, (g1 - g0) / peak, (r1 - r0) * pr / bw)

    @functools.cached_property
    def _per_group(self) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]], int]:
        """Per group, seconds of compute and of memory (constant, per decoding sequence, per prefill token); the experts' row."""
        m = self.model
        fs, qs = (m.flops[:, :, 0] / m.peak[None, :, 0]).T.tolist(), (m.bytes[:, :, 0] / m.bandwidth[0]).T.tolist()
        experts = 3 if m.experts_per_token and len(fs) > 3 else -1  # serve.step.OP_ORDER
        return [(a, b, c) for a, b, c in fs], [(a, b, c) for a, b, c in qs], experts

    def _seconds(self, f: list[float], q: list[float], d: float, p: float, *, host: bool = True) -> float:
        """:meth:`StepModel.seconds` of the one replica from its groups' seconds ``f`` and ``q`` (Python floats).

        ``host=False``: without an eager engine's launch floor (the device's time plus the overhead).
        """
        m = self.model
        n = d * m.decode_tokens + p
        total = 0.0
        row = self._per_group[2]
        alpha = self._alpha
        for i, (fi, qi) in enumerate(zip(f, q, strict=True)):
            if i == row:  # the experts' bytes follow the touched experts, not an affine term
                e, k = m.num_experts, m.experts_per_token
                touched = e * (1.0 - (1.0 - k / e) ** n)
                qi = float(m.expert_fixed[0] + m.expert_per_touched[0] * touched + m.expert_per_token[0] * n) / float(m.bandwidth[0])
            total += fi + alpha * qi if fi > qi else qi + alpha * fi
        device = total + float(m.net[0, 0] + m.net[1, 0] * n)
        if host and self._launched(d, p):  # launched kernel by kernel: the host's launches, if longer, set the step
            device = max(device, float(m.host_s[0]))  # type: ignore[index]
        return device + float(m.overhead_s[0])

    @functools.cached_property
    def _alpha(self) -> float:
        """The family's exposed share ``α`` (0 for the plain roofline)."""
        return 0.0 if self.model.exposed is None else float(self.model.exposed[0])

    def _launched(self, d: float, p: float) -> bool:
        """Whether a step of ``d`` decoding and ``p`` prefilling launches its kernels from the host.

        Every step of an eager engine; a decode-only step over the graph cap of one whose graphs hold only so many.
        """
        m = self.model
        if m.host_s is None:
            return False
        return m.graph_max is None or bool(launched(d, p, m.graph_max[0]))

    def __call__(self, decode_seqs: int, prefill_tokens: int, /) -> float:
        """Seconds of a step with every decoding sequence at the built context and every prefill token at the built span."""
        return float(self.model.seconds(decode_seqs, prefill_tokens)[0])

    def parts(self, decode_seqs: int, prefill_tokens: int) -> Parts:
        """Coefficients of the step time in the chunks' sums and ``S`` for ``d`` decoding and ``p`` prefilling.

        ``T = rest + g(a_F + a_S·S + a_MO·Σmo + a_MM·Σm², a_Q + b_S·S + b_O·Σo + b_N·n) + g(d_F + d_S·S, d_Q + e_S·S)``
        [s] over the step's ``n`` chunks (``Σ m`` is ``p``), ``g(x, y) = max(x, y) + α·min(x, y)`` (``α`` the 14th
        entry), the first attention's, the second the drafter's (zeros without one). A step launched kernel by kernel
        (an eager engine's, or a decode-only step over the graph cap) ends with its launch time ``H`` and the overhead
        ``t_0`` (16 entries): it takes ``max(T − t_0, H) + t_0``.
        """
        d, p = float(decode_seqs), float(prefill_tokens)
        fs, qs, _rows = self._per_group
        # Seconds of compute and of memory per group at the built context and span, in Python floats: the
        # simulator calls this once per distinct (d, p), thousands of times a run.
        f = [a + b * d + c * p for a, b, c in fs]
        q = [a + b * d + c * p for a, b, c in qs]
        total = self._seconds(f, q, d, p, host=False)
        # A step launched kernel by kernel is max(device, H) + t_0: the launch time H and t_0 ride along for step_seconds.
        host = (float(self.model.host_s[0]), float(self.model.overhead_s[0])) if self._launched(d, p) else ()  # type: ignore[index]
        alpha = self._alpha
        if len(f) <= _ATTENTION:  # a generic model: one group, no attention
            return (total, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, alpha, *host)
        s0, w0 = d * self.context, p * self.span
        a = _ATTENTION
        # W = Σmo + (Σm² + p)/2 and V = Σo + (p + n)/2 (causal), or Σmo + Σm² and Σo + p (both ways): p's terms are constants.
        half = 0.5 if self.causal else 1.0
        w, v = self.span_s[a], self.read_s[a]
        a_f = f[a] - self.ctx_s[a] * s0 - w * w0 + (w * p / 2.0 if self.causal else 0.0)
        a_q = q[a] - self.ctx_bytes_s[a] * s0 - v * w0 / self.prompt + v * p * half
        rest = total - max(f[a], q[a]) - alpha * min(f[a], q[a])
        d_f = d_s = d_q = e_s = 0.0
        if len(f) > _DRAFT:
            dr = _DRAFT
            rest -= max(f[dr], q[dr]) + alpha * min(f[dr], q[dr])
            d_f, d_s = f[dr] - self.ctx_s[dr] * s0, self.ctx_s[dr]
            d_q, e_s = q[dr] - self.ctx_bytes_s[dr] * s0, self.ctx_bytes_s[dr]
        return (rest, float(a_f), float(self.ctx_s[a]), float(w), float(w * half), float(a_q), float(self.ctx_bytes_s[a]), float(v),
                float(v / 2.0 if self.causal else 0.0), float(d_f), float(d_s), float(d_q), float(e_s), alpha, *host)  # fmt: skip
