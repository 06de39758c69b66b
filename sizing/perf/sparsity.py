"""2:4 semi-structured sparsity: what a sparse model's linear layers occupy and how fast they run.

A model with ``sparsity: "2:4"`` keeps two of every four weights of its linear layers (attention
projections, MLP, experts). Whether that saves anything depends on the engine and the device
(``RuntimeSpec.sparse_speedup``, from the engine profile's ``sparse_kernels``):

* **with sparse kernels** the engine stores each linear layer compressed, the kept values plus a 2-bit
  position index per kept value (the cuSPARSELt/CUTLASS layout, documented for hipSPARSELt as a
  "matrix of nnz elements containing the element indices in every 4:2 array"), so a weight of ``b``
  bits takes ``s_mem = (b + 2)/(2b)`` of its dense storage (0.5625 at 16 bit, 0.625 at 8 bit); and
  the layers run ``g`` times faster, ``g`` the engine's published end-to-end speed-up on that device
  family, applied to the linear layers' FLOPs and weight traffic (attention and the LM head stay
  dense, so the modelled end-to-end gain is below ``g``: conservative);
* **without** them (another device family, another engine, a format the kernels do not take) the
  model is served as the dense model it is stored as: same memory, same speed.
"""

from __future__ import annotations

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.specs.model import DecoderModel, EncoderModel

#: Bits of position metadata per kept weight in the 2:4 compressed layout (index 0-3 of 4).
INDEX_BITS = 2.0


def active(dep: Deployment) -> bool:
    """Whether the deployment runs a 2:4-sparse model on sparse kernels (the engine has them for this device and format)."""
    m = dep.model
    return isinstance(m, DecoderModel | EncoderModel) and m.sparsity == "2:4" and dep.weights_dtype in dep.runtime.sparse_speedup


def linear_speedup(dep: Deployment) -> float:
    """Speed-up ``g`` of the linear layers' FLOPs and weight traffic (1 unless sparse kernels run them)."""
    return float(dep.runtime.sparse_speedup[dep.weights_dtype]) if active(dep) else 1.0


def storage_factor(dep: Deployment) -> float:
    """Share of dense storage a linear weight takes: ``(b + 2)/(2b)`` compressed (``b`` its bits), else 1."""
    if not active(dep):
        return 1.0
    bits = 8.0 * BYTES_PER_ELEMENT[dep.weights_dtype]
    return (bits + INDEX_BITS) / (2.0 * bits)
