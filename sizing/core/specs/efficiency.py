"""Efficiency factors and runtime conventions that turn datasheet peaks into predictions.

A roofline with vendor peaks is an upper bound. These few, physically meaningful factors say what
fraction of each peak a serving stack reaches, per device family; they are calibrated on published
measurements (see ``hardware_db/data/efficiency.yaml`` for provenance) and a user can refit them on
their own benchmarks with ``aicap calibrate``.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from aicap.sizing.core.documents import Fraction, NonNegFloat, PosFloat, PosInt
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.errors import InputError, excerpt

T = TypeVar("T")


class EfficiencySpec(BaseModel):
    """Achieved fractions of peak for one device family.

    Attributes
    ----------
    family
        Device family the factors apply to (``nvidia-hopper``, ``google-tpu``, ...).
    framework
        Serving stack these factors describe when they differ from the family default (``None``):
        used where one set of factors cannot describe two stacks on the same chip within 2×.
    compute
        Fraction of the dense 16-bit peak reached by large matrix multiplies.
    compute_fp8
        Same for fp8 GEMMs (defaults to ``compute``), and for fp4 GEMMs: the same low-precision
        tensor path, with no published fp4 serving case to fit a factor of its own.
    memory
        Fraction of peak memory bandwidth reached when streaming weights and KV cache.
    memory_by_dtype
        Multipliers on ``memory`` for weight formats whose kernels de-quantise on the fly (int4).
    moe_compute
        Multiplier on ``compute`` for mixture-of-experts layers: grouped GEMMs over many small
        per-expert batches run below dense-GEMM efficiency.
    link
        Fraction of the per-direction link bandwidth reached by collectives.
    link_latency_us
        Fixed latency of one collective (microseconds).
    nccl_all_reduce_us
        What one tensor-parallel all-reduce of a decode step takes beyond ``link_latency_us`` when the engine
        runs it with NCCL rather than a custom peer-to-peer kernel (microseconds), at decode batches of tens to
        hundreds of sequences (0.25-4 MiB a message): ``link_latency_us`` is fitted on runs whose all-reduces are
        custom kernels or one-token messages. Not fitted: derived from a published A/B of the two in one engine
        (``hardware_db/validation/efficiency_priors.yaml``); ``None`` where no such measurement exists.
        Applied only where a run is known to all-reduce with NCCL (a case's ``engine_options.all_reduce``).
    step_overhead_ms
        Fixed time per forward step: kernel launches, scheduling, sampling (milliseconds).
    kernel_latency_us
        Fixed GPU time of each kernel of a step replayed from a CUDA graph, beyond its roofline time
        (microseconds): the boundary between dependent kernels (the next grid's launch and ramp-up, the
        last wave's tail), which no bandwidth or FLOP rate describes. A step of ``K`` kernels (counted from
        the engine's model code: :func:`~aicap.sizing.perf.launches.graph_kernels`) pays ``K · τ_k``, so a
        deep model sharded thin (70B at TP 8) pays it on little work per kernel. Fitted per family where a
        sourced bound is given (``kernel_latency`` in ``hardware_db/validation/efficiency_priors.yaml``), else 0.
    exposed_share
        Share ``α`` of the shorter of an operator group's compute and memory times that the longer does not
        hide: ``t = max(t_c, t_m) + α·min(t_c, t_m)`` (0: the ideal roofline, every byte streamed under the
        math; 1: no overlap at all). Real kernels overlap their loads and math only in part (prologue and
        epilogue tiles, a wave's tail, attention's softmax between its two products), most where the two
        times are close: at the roofline's ridge, where a plain maximum is most optimistic. Fitted per family
        where its cases support it, else 0.
    moe_latency_us
        Fixed time of one mixture-of-experts layer's grouped expert GEMMs that does not shrink with
        the bytes they read (microseconds): token routing and alignment, two grouped GEMM launches and
        their tails. A step pays ``L_moe · τ`` on top of the experts' roofline time, as a collective pays
        its latency on top of its bytes; it dominates small-batch decode of fine-grained MoE models.
        Not fitted: derived from published kernel timings (``hardware_db/validation/efficiency_priors.yaml``).
    source
        How the numbers were obtained.
    inherits
        For a family without any published case: the fitted family whose factors it uses instead of
        its own prior (the nearest one: same vendor's previous generation, or the same class of
        part), so that no unmeasured device wins a plan on a more optimistic guess than a measured
        family shows. The prior stays in the file for reference; :meth:`CatalogueLike.efficiency_for`
        applies the inheritance and the result is still reported as not calibrated.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    family: str
    framework: str | None = None
    compute: Fraction
    compute_fp8: Fraction | None = None
    memory: Fraction
    memory_by_dtype: dict[str, Fraction] = Field(default_factory=dict)
    moe_compute: Fraction = 1.0
    link: Fraction = 0.7
    link_latency_us: NonNegFloat = 10.0
    nccl_all_reduce_us: NonNegFloat | None = None
    step_overhead_ms: NonNegFloat = 0.0
    kernel_latency_us: NonNegFloat = 0.0
    moe_latency_us: NonNegFloat = 0.0
    exposed_share: Annotated[NonNegFloat, Field(le=1)] = 0.0
    source: str = Field(min_length=1)
    inherits: str | None = None

    @field_validator("memory_by_dtype")
    @classmethod
    def _known_formats(cls, v: dict[str, float]) -> dict[str, float]:
        return _known_dtypes(v)

    @property
    def key(self) -> str:
        """Catalogue key: ``family`` or ``family@framework``."""
        return self.family if self.framework is None else f"{self.family}@{self.framework}"

    @property
    def calibrated(self) -> bool:
        """Whether these factors were fitted on measurements (``source`` starts with "fitted")."""
        return self.source.startswith("fitted")

    def compute_for(self, dtype: str) -> float:
        """Return the compute efficiency for GEMMs in ``dtype``."""
        if dtype in {"fp8", "fp4"} and self.compute_fp8 is not None:
            return self.compute_fp8
        return self.compute

    def memory_for(self, weights_dtype: str) -> float:
        """Return the memory efficiency when weights are stored in ``weights_dtype``."""
        return self.memory * self.memory_by_dtype.get(weights_dtype, 1.0)

    def with_nccl_all_reduce(self) -> EfficiencySpec:
        """These factors for an engine that all-reduces with NCCL: an all-reduce's fixed latency ``λ + λ_nccl`` [µs].

        Only for tensor-parallel steps: ``link_latency_us`` also prices pipeline hand-offs and all-to-alls.

        Raises
        ------
        InputError
            When the family has no measured ``nccl_all_reduce_us``.
        """
        if self.nccl_all_reduce_us is None:
            raise InputError(f"device family {self.family} has no measured cost of an NCCL all-reduce (nccl_all_reduce_us); "
                             "hardware_db/validation/efficiency_priors.yaml lists the families that have one")  # fmt: skip
        lat = self.link_latency_us + self.nccl_all_reduce_us
        note = f"{self.source}; all-reduce {lat:g} us with NCCL (+{self.nccl_all_reduce_us:g})"
        return self.model_copy(update={"link_latency_us": lat, "source": note})


class EagerLaunches(BaseModel):
    """What a step costs the host when the engine launches its kernels one by one (no CUDA graphs).

    The counts are kernel launches of one decode forward pass by block, from an engine's model code;
    :func:`aicap.sizing.perf.launches.eager_host_s` turns them into host seconds per step.

    Attributes
    ----------
    launch_us
        Host time per launched kernel [µs]: Python module and dispatcher work plus the driver's launch.
    per_layer
        Launches every layer makes outside its mixer and MLP (its two fused residual-add norms) [-].
    attention, mla_attention, linear_attention
        Launches of one softmax-attention (MHA/GQA), multi-head latent attention, or linear-attention
        (gated delta rule) block, projections included [-].
    dense_mlp, moe_mlp, shared_experts
        Launches of a dense gated MLP, of a routed-expert MoE block (router, top-k, expert GEMMs,
        combine), and of its shared experts where the model has them [-].
    all_reduce
        Launches of one tensor-parallel all-reduce (two a layer when ``tp > 1``) [-].
    per_step
        Launches outside the layers: embedding, final norm, LM head, logits processing and sampling [-].
    source
        Where the counts and the per-launch time come from.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    launch_us: PosFloat
    per_layer: NonNegFloat
    attention: NonNegFloat
    mla_attention: NonNegFloat
    linear_attention: NonNegFloat
    dense_mlp: NonNegFloat
    moe_mlp: NonNegFloat
    shared_experts: NonNegFloat
    all_reduce: NonNegFloat
    per_step: NonNegFloat
    source: str = Field(min_length=1)


class ProjectedAdmission(BaseModel):
    """How an engine admits a request only where the KV cache holds its projected output too (SGLang's ``PrefillAdder``).

    A waiting request of prompt ``I`` and ``M`` tokens still to generate (``M`` clipped at ``clip_tokens``)
    is admitted while ``I + M < F − ρ·Σ_running M_j − Σ_admitted M_k``: ``F`` the free KV tokens, ``M_j``
    what each running request may still emit (clipped), ``M_k`` those admitted in the same round, and ``ρ``
    the new-token ratio. ``ρ`` starts at ``init_ratio``, falls by ``(ρ_0 − ρ_min)/decay_steps`` each decode
    step to ``ρ_min = init_ratio · min_ratio_factor``, and when a decode step runs out of KV and retracts
    requests it is reset to ``min(1, (Σ g_j + retract_steps·n)/Σ O_j)`` over the ``n`` requests left
    (``g_j`` emitted, ``O_j`` their output lengths). Requests that ignore EOS on a server without a prefix
    cache take the exact path: with every request's remaining output known, one is admitted only while the
    batch's projected peak fits (:mod:`aicap.sizing.sim.admission`).

    Attributes
    ----------
    init_ratio, min_ratio_factor
        ``ρ_0`` and ``ρ_min/ρ_0`` [-].
    decay_steps
        Decode steps over which ``ρ`` falls from ``ρ_0`` to ``ρ_min`` [-].
    retract_steps
        Decode steps of headroom per request in the ratio set after a retraction [-].
    clip_tokens
        Cap on a request's remaining output in the projection [tokens].
    source
        Where the rule and its constants are published.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    init_ratio: Annotated[float, Field(gt=0.0, le=1.0)]
    min_ratio_factor: Annotated[float, Field(gt=0.0, le=1.0)]
    decay_steps: PosInt
    retract_steps: NonNegFloat
    clip_tokens: PosInt
    source: str = Field(min_length=1)


def _from_tp_one(caps: dict[int, int]) -> dict[int, int]:
    """Check a table of CUDA-graph batch caps by smallest tensor-parallel degree: it must start at ``tp = 1``."""
    if 1 not in caps:
        raise ValueError(f"cuda_graph_max_batch needs a cap for tensor-parallel degree 1 (keys are the smallest degree each cap "
                         f"applies from); got keys {sorted(caps)}")  # fmt: skip
    return caps


GraphCaps = Annotated[dict[PosInt, PosInt], AfterValidator(_from_tp_one)]
"""CUDA-graph batch caps keyed by the smallest tensor-parallel degree each applies from (starting at 1)."""


class RuntimeSpec(BaseModel):
    """Conventions of the serving runtime that the memory and time model assume.

    Units: GiB for memory, tokens for token counts. ``engine`` names the serving engine whose defaults
    these are (``generic`` for the catalogue's own ``runtime`` section); ``kv_memory_policy`` says how
    ``usable_memory_fraction`` applies: ``total`` (the engine uses that share of device memory in
    all) or ``free`` (the KV cache gets that share of what weights, workspace and reserves leave), as
    :mod:`aicap.sizing.core.specs.engine` explains. ``eager`` says the engine runs without CUDA graphs
    (vLLM ``--enforce-eager``, SGLang ``--disable-cuda-graph``): every step then takes at least the host
    time of launching its kernels, :class:`EagerLaunches`. ``cuda_graph_max_batch`` caps the decode batches an
    engine with CUDA graphs replays from them (SGLang ``cuda_graph_max_bs``), keyed by the smallest
    tensor-parallel degree each cap applies from: a step that prefills nothing and decodes more sequences
    launches its kernels one by one, as an eager engine's do (``None``: every decode batch is graphed).
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    engine: str = "generic"
    kv_memory_policy: Literal["total", "free"] = "total"
    usable_memory_fraction: Fraction
    runtime_overhead_gib: NonNegFloat
    comm_buffer_gib: NonNegFloat
    max_prefill_tokens: PosInt
    max_batch: PosInt
    quant_group_size: dict[str, PosInt]
    quant_scale_bytes: dict[str, PosFloat]
    unquantised_embeddings: bool = True
    cpu_usable_memory_fraction: Fraction = 0.8
    kv_cache_tokens: PosInt | None = None
    kv_cache_tokens_flag: str | None = None  # the engine's launch option for kv_cache_tokens (llama.cpp --ctx-size)
    request_overhead_ms: NonNegFloat = 0.0
    chunked_prefill: bool = True
    prefill_first: bool = False
    overlap_scheduling: bool = False  # steps are scheduled while the previous one runs: a busy engine's TTFT gains a step
    shares_step_budget: bool = False  # with data-parallel attention the groups share max_prefill_tokens (SGLang divides it by dp)
    eager: bool = False  # kernels launched one by one from the host (vLLM --enforce-eager): steps pay eager_launches
    eager_launches: EagerLaunches | None = None
    cuda_graph_max_batch: GraphCaps | None = None  # {smallest tp: largest graphed decode batch}; None: no cap
    admission: ProjectedAdmission | None = None  # None: a request is admitted when its prompt's KV blocks are free (vLLM)
    default_engine: str | None = None
    sparse_speedup: dict[str, PosFloat] = Field(
        default_factory=dict,
        description="published speed-up of 2:4-sparse linear layers by weight format, where the engine has sparse kernels for the "
        "device (empty: sparse models run dense)",
    )
    source: str = Field(min_length=1)

    @field_validator("quant_group_size", "quant_scale_bytes", "sparse_speedup")
    @classmethod
    def _known_formats(cls, v: dict[str, T]) -> dict[str, T]:
        return _known_dtypes(v)

    def graph_max_batch(self, tp: int) -> int | None:
        """Largest decode batch replayed from a CUDA graph at tensor-parallel degree ``tp`` (``None``: no cap)."""
        caps = self.cuda_graph_max_batch
        if caps is None:
            return None
        return caps[max(k for k in caps if k <= max(int(tp), 1))]

    def refuses_prompt(self, tokens: float) -> str | None:
        """Why this runtime cannot serve a prompt of ``tokens`` (no chunked prefill, a prompt over the budget), or ``None``."""
        if self.chunked_prefill or tokens <= self.max_prefill_tokens:
            return None
        return (
            f"{self.engine} does not chunk prefill: a prompt of {tokens:,.0f} tokens exceeds its step budget of "
            f"{self.max_prefill_tokens:,} tokens (max_prefill_tokens; raise it in an engine overlay, "
            "or use an engine that chunks)"
        )


def _known_dtypes(table: dict[str, T]) -> dict[str, T]:
    """Refuse a per-format table keyed by a format aicap does not know."""
    unknown = sorted(set(table) - set(BYTES_PER_ELEMENT))
    if unknown:
        raise ValueError(f"unknown dtype {excerpt(unknown[0])}; valid: {', '.join(BYTES_PER_ELEMENT)}")
    return table
