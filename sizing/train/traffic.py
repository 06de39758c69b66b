r"""Memory-bound activation traffic of a training step: the element-wise work between the matmuls.

Normalisations, rotary embeddings, the MLP's activation, residual adds, the loss and (fp8) the
casts into and out of the fp8 matmuls each read and write whole activation tensors and do almost no
arithmetic, so they run at the device's memory bandwidth, not its tensor rate. Their cost per token
grows with the hidden width ``h`` while the matmuls' grows with ``h²``: it is a larger share of a
small model's step, and of an fp8 step (whose matmuls run twice as fast while this traffic does not
shrink). Counted per token and layer, in 16-bit elements (2 bytes) with fused kernels as
Megatron-Core and Transformer Engine run them (one read of each input and one write of each output
per op):

* forward ``E_f = 2 n h + 6 h + 2 (q + k) + a``: ``n`` RMS/LayerNorms (read ``h``, write ``h``),
  two residual adds (read ``2h``, write ``h``), rotary embedding of queries and keys (read and
  write ``q`` and ``k``, the query and key widths), and the MLP activation ``a`` (SwiGLU: read
  ``2f``, write ``f``, so ``3f``; GELU: ``2f``; an MoE layer's ``f`` is the ``k`` routed experts'
  plus the shared ones', and dispatching and combining each token's ``k`` copies adds ``4 k h``);
* backward ``2 E_f`` (each op reads its saved inputs and the output gradient and writes the input
  gradients), and full recomputation runs the forward again;
* without sequence parallelism the normalisations and residual adds are repeated on every
  tensor-parallel rank, the rest is split over it;
* fp8 matmuls (Transformer Engine's ``cast_transpose``): each matmul input in the forward pass
  and each output gradient in the backward pass is read in 16 bit and written twice in fp8 (the
  tensor and its transpose for the weight-gradient matmul), 4 bytes per element: inputs
  ``2h + q + f`` and output gradients ``2h + q + 2k + f_up`` per layer (``f_up = 2f`` gated);
* the loss reads and writes the logits three times, 6 bytes per logit, ``6 V / t`` per token.

Time is ``bytes / (B · e_mem)`` at the family's memory efficiency (:mod:`aicap.sizing.train.step`).
"""

from __future__ import annotations

import numpy as np

from aicap.sizing.train.grid import Col, Grid
from aicap.sizing.train.shape import ModelShape

#: Bytes per 16-bit activation element.
ELEMENT = 2.0
#: Bytes an fp8 cast-transpose moves per element: a 16-bit read and two 8-bit writes.
CAST_TRANSPOSE = 4.0
#: Bytes per logit and token the loss moves: the logits written, read by the fused cross-entropy,
#: and their gradient written (16 bit each).
LOSS_PER_LOGIT = 6.0


def _mlp_width(shape: ModelShape) -> tuple[float, float]:
    """Mean activated MLP width per layer and the dispatch traffic factor: ``(f, k)``."""
    dense = shape.layers - shape.moe_layers
    moe_f = shape.experts_per_token * shape.expert_ffn + shape.shared_ffn
    f = (dense * shape.ffn + shape.moe_layers * moe_f) / shape.layers
    k = shape.moe_layers * shape.experts_per_token / shape.layers
    return f, k


def activation_bytes_per_token(shape: ModelShape, g: Grid) -> Col:
    """Bytes of element-wise traffic per trained token, over all devices (module docstring).

    ``L · ((2 + r_full) · (t_rep · R + S) · 2 + C) + 6 V`` bytes with ``R`` the normalisations' and
    residual adds' elements, ``S`` the rest of ``E_f``, ``t_rep = t`` without sequence parallelism
    (``1`` with it) and ``C`` the fp8 casts; the step divides it over the devices as it does the
    FLOPs. Llama-3-8B in bf16 without tensor parallelism, selective recomputation:
    ``E_f = 2·2·4096 + 6·4096 + 2·(4096 + 1024) + 3·14336 = 94,208`` elements per layer, so
    ``32 · 3 · 94,208 · 2 + 6 · 128,256 = 18.9`` MB per token.
    """
    h = float(shape.hidden)
    q, kv = float(shape.q_dim), float(shape.kv_dim)
    f, k_routed = _mlp_width(shape)
    act = (3.0 if shape.gated else 2.0) * f + 4.0 * k_routed * h
    replicated = 2.0 * shape.norms_per_layer * h + 6.0 * h  # norms and residual adds
    split = 2.0 * (q + kv) + act
    repeats = np.where(g.sp > 0, 1.0, g.tp)
    passes = 3.0 + (g.recompute == 2)
    elementwise = passes * (repeats * replicated + split) * ELEMENT
    fp8 = 0.0
    if g.recipe.precision == "fp8":
        f_up = (2.0 if shape.gated else 1.0) * f
        fp8 = ((2.0 * h + q + f) + (2.0 * h + q + 2.0 * kv + f_up)) * CAST_TRANSPOSE
    return np.asarray(shape.layers * (elementwise + fp8) + LOSS_PER_LOGIT * shape.vocab, dtype=np.float64)
