"""Host time of a step whose kernels are launched one by one: an engine run without CUDA graphs.

An engine that captures CUDA graphs (vLLM, SGLang and TensorRT-LLM by default) replays a decode step as
one graph, and its host cost is the per-step overhead ``t_0`` of the efficiency factors. Run eagerly
(vLLM ``--enforce-eager``, SGLang ``--disable-cuda-graph``), the host dispatches every kernel from
Python, and the device idles whenever the host falls behind. The host runs ahead of the device
(launches are asynchronous), so a step takes the longer of the two::

    T = max(T_gpu, H) + t_0,    H = τ·K

    K = L·(k_layer + 2·a·[tp > 1]) + L_a·k_attn + L_lin·k_lin + L_d·k_mlp
        + L_m·(k_moe + k_shared·[shared experts]) + k_step

with ``τ`` the host time per launch, ``L`` the layers (``L_a`` of softmax or latent attention, ``k_attn``
the MLA count for a model with multi-head latent attention; ``L_lin`` of linear attention; ``L_d`` dense,
``L_m`` mixture-of-experts), ``a`` the launches of one tensor-parallel all-reduce and ``k_*`` the
launches of each block (:class:`~aicap.sizing.core.specs.efficiency.EagerLaunches`, counted from an
engine's model code, with the sources in ``hardware_db/data/runtime.yaml``). ``K`` does not depend
on the batch: a host-bound step costs the same for one sequence as for thirty, which is why eager
engines lose most at small batches and little at large ones.

An engine that captures graphs replays them only up to a batch size (SGLang's ``cuda_graph_max_bs``,
``RuntimeSpec.cuda_graph_max_batch``): a step that prefills nothing and decodes more sequences ``d`` than
the cap ``G`` runs eagerly, so ``H`` binds there too (:func:`step_host_s`)::

    H(d, p) = τ·K   where the engine is eager, or p = 0 and d > G;   0 otherwise

A step that carries a prefill keeps its fitted cost (those steps are long; their launches hide behind
the device).

Pipeline stages run in sequence for one batch, so ``L`` counts the whole model, as the device time does
(:mod:`aicap.sizing.perf.operators`). A generic model (parameters only) has no layers to count: ``H = 0``.

The same counts give the device side of a graphed step: each of its ``K_g`` kernels (``K`` at ``tp = 1``,
the collectives being costed by their latency ``λ``) takes a fixed ``τ_k`` beyond its roofline time, the
boundary between dependent kernels (:func:`kernel_floor_s`)::

    T_gpu = Σ t_i + t_net + K_g·τ_k
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.efficiency import EagerLaunches
from aicap.sizing.core.specs.model import DecoderModel, EncoderModel, GenericModel

F = NDArray[np.float64]


def launches_per_step(model: DecoderModel | EncoderModel | GenericModel, counts: EagerLaunches, tp: ArrayLike) -> F:
    """Kernel launches ``K`` of one forward step (module docstring), per tensor-parallel degree ``tp``.

    Parameters
    ----------
    model
        The model spec (an encoder counts as dense layers of softmax attention; a generic model as none).
    counts
        Launches per block.
    tp
        Tensor-parallel degrees (array): two all-reduces a layer when ``tp > 1``.

    Returns
    -------
    NDArray
        Launches per step [-], shaped as ``tp``.
    """
    tp_a = np.asarray(tp, dtype=float)
    if isinstance(model, GenericModel):
        return np.zeros(tp_a.shape)
    layers = model.num_layers
    linear = moe_layers = 0
    mla = has_shared = False
    if isinstance(model, DecoderModel):
        linear = 0 if model.linear_attention is None else model.linear_attention.layers
        mla = model.mla is not None
        if model.moe is not None:
            moe_layers = layers - model.moe.dense_layers
            has_shared = model.moe.num_shared_experts > 0
    attn = counts.mla_attention if mla else counts.attention
    fixed = (
        layers * counts.per_layer
        + (layers - linear) * attn
        + linear * counts.linear_attention
        + (layers - moe_layers) * counts.dense_mlp
        + moe_layers * (counts.moe_mlp + (counts.shared_experts if has_shared else 0.0))
        + counts.per_step
    )
    reduces = np.where(tp_a > 1.0, 2.0 * layers * counts.all_reduce, 0.0)
    return np.asarray(fixed + reduces, dtype=float)


def graph_kernels(model: DecoderModel | EncoderModel | GenericModel, counts: EagerLaunches | None) -> float:
    """Kernels ``K_g`` of one forward step replayed from a CUDA graph: the launches of :func:`launches_per_step` at ``tp = 1``.

    A collective's fixed cost is its latency ``λ`` (:func:`~aicap.sizing.perf.roofline.network_time`) and a MoE
    layer's routed experts' their latency ``τ`` (:func:`~aicap.sizing.perf.roofline.moe_latency_s`, measured on the
    fused-MoE call as a whole), so neither is counted here: ``K_g = K(tp = 1) − L_moe·k_moe``. 0 for a generic
    model or a runtime without launch counts.
    """
    if counts is None:
        return 0.0
    moe_layers = 0
    if isinstance(model, DecoderModel) and model.moe is not None:
        moe_layers = model.num_layers - model.moe.dense_layers
    return float(launches_per_step(model, counts, 1.0)) - moe_layers * counts.moe_mlp


def kernel_floor_s(dep: Deployment) -> float:
    """Fixed GPU time of a step's kernels [s]: ``K_g · τ_k`` (``kernel_latency_us`` of the efficiency; :func:`graph_kernels`).

    A speculative drafter's ``k`` passes launch its own kernels each: ``(K_g + k·K_g,d) · τ_k``.
    """
    tau = dep.efficiency.kernel_latency_us
    return 0.0 if tau == 0.0 else step_kernels(dep) * tau * 1e-6


def step_kernels(dep: Deployment) -> float:
    """Graphed kernels of one step of ``dep``: ``K_g`` of its model plus ``k·K_g,d`` of a speculative drafter's ``k`` passes."""
    counts = dep.runtime.eager_launches
    kernels = graph_kernels(dep.model, counts)
    drafter = dep.draft
    if drafter is not None:
        kernels += (dep.verify_tokens - 1) * graph_kernels(drafter.model, counts)
    return kernels


def eager_host_s(dep: Deployment, tp: ArrayLike | None = None) -> F:
    """Host seconds ``H = τ·K`` of one step of ``dep``, shaped as ``tp`` (a scalar 0 where its engine captures CUDA graphs).

    Raises
    ------
    InputError
        The runtime runs eagerly but has no launch counts (``eager_launches`` in the runtime section).
    """
    if not dep.runtime.eager:
        return np.zeros(())
    return launch_s(dep, tp)


def launch_s(dep: Deployment, tp: ArrayLike | None = None) -> F:
    """Host seconds ``τ·K`` of launching one step's kernels one by one, shaped as ``tp``, graphs or not.

    Raises
    ------
    InputError
        The runtime has no launch counts (``eager_launches`` in the runtime section).
    """
    rt = dep.runtime
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    counts = rt.eager_launches
    if counts is None:
        raise InputError(f"engine {rt.engine} runs steps eagerly but the catalogue's runtime section has no eager_launches to cost them")
    return np.asarray(counts.launch_us * 1e-6 * launches_per_step(dep.model, counts, tp_a), dtype=float)


def graph_max_batch(dep: Deployment, tp: ArrayLike | None = None) -> F:
    """Largest decode batch ``G`` replayed from a CUDA graph, shaped as ``tp`` (``inf`` where the engine has no cap; ``-inf`` eager).

    Each distinct degree is looked up once with :meth:`~aicap.sizing.core.specs.efficiency.RuntimeSpec.graph_max_batch`.
    """
    rt = dep.runtime
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    if rt.eager:
        return np.full(tp_a.shape, -np.inf)
    if rt.cuda_graph_max_batch is None:
        return np.full(tp_a.shape, np.inf)
    degrees, back = np.unique(tp_a, return_inverse=True)
    caps = np.array([float(rt.graph_max_batch(int(t)) or np.inf) for t in degrees])
    return np.asarray(caps[back].reshape(tp_a.shape), dtype=float)


def launched(decode_seqs: ArrayLike, prefill_tokens: ArrayLike, cap: ArrayLike) -> NDArray[np.bool_]:
    """Whether a step launches its kernels from the host (module docstring), given the graph cap ``G`` (``-inf``: eager).

    ``d > G`` and, unless the engine is eager, ``p = 0``: the rule :func:`step_host_s`, the step model and the
    simulator's per-context costs share.
    """
    g = np.asarray(cap, dtype=float)
    return np.asarray((np.asarray(decode_seqs, dtype=float) > g) & ((np.asarray(prefill_tokens, dtype=float) <= 0.0) | (g < 0.0)))


def step_host_s(dep: Deployment, decode_seqs: ArrayLike, prefill_tokens: ArrayLike, tp: ArrayLike | None = None) -> F:
    """Host launch time ``H(d, p)`` of a step (module docstring): ``τ·K`` where it runs without its graph, else 0.

    Raises
    ------
    InputError
        A step runs eagerly but the runtime has no launch counts.
    """
    rt = dep.runtime
    if not rt.eager and rt.cuda_graph_max_batch is None:
        return np.zeros(())
    tp_a = np.asarray(dep.tp if tp is None else tp, dtype=float)
    over = launched(decode_seqs, prefill_tokens, graph_max_batch(dep, tp_a))
    if not np.any(over):
        return np.zeros(np.broadcast_shapes(over.shape, tp_a.shape))
    return np.asarray(np.where(over, launch_s(dep, tp_a), 0.0), dtype=float)
