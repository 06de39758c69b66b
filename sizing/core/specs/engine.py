"""Serving-engine profiles: how vLLM, SGLang, TensorRT-LLM, TGI, llama.cpp or JetStream reserve memory and schedule.

Engines differ in what the capacity model depends on most: how much device memory the KV cache gets,
how many requests run at once, how many tokens one step may prefill, and which devices and formats
they serve. An :class:`EngineSpec` holds those defaults for one engine version, each with its source
(``hardware_db/data/engines/*.yaml``); :meth:`EngineSpec.runtime` turns it into the
:class:`~aicap.sizing.core.specs.efficiency.RuntimeSpec` the memory and time models read.

Memory policies (``M`` device memory, ``f`` the engine's fraction, ``R`` what the engine holds
besides the KV cache: weights, activation workspace, CUDA context and graphs, communication buffers):

* ``total`` (vLLM ``gpu_memory_utilization``, SGLang ``mem_fraction_static``): the engine may use
  ``f·M`` in all, so the KV cache gets ``f·M − R``;
* ``free`` (TensorRT-LLM ``free_gpu_memory_fraction``, TGI, LMDeploy ``cache_max_entry_count``): the
  KV cache gets ``f·(M − R)``, a share of what the rest leaves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aicap.sizing.core.documents import Fraction, NonNegFloat, PosFloat, PosInt
from aicap.sizing.core.dtypes import KV_DTYPES, WEIGHT_DTYPES
from aicap.sizing.core.errors import excerpt
from aicap.sizing.core.specs.device import DeviceSpec
from aicap.sizing.core.specs.efficiency import EfficiencySpec, GraphCaps, ProjectedAdmission, RuntimeSpec

MemoryPolicy = Literal["total", "free"]


class EngineMemory(BaseModel):
    """How an engine sizes its KV cache (see the module docstring for the two policies).

    Attributes
    ----------
    policy
        ``total`` (a fraction of device memory for everything) or ``free`` (a fraction of what the
        weights, workspace and reserves leave, for the KV cache).
    fraction
        The engine's default fraction ``f`` [-].
    runtime_overhead_gib
        CUDA context, library workspaces and CUDA-graph pools per device [GiB].
    comm_buffer_gib
        Collective-communication buffers per device when a replica spans devices [GiB].
    kv_cache_tokens
        A KV cache of fixed size [tokens per replica] where the engine allocates one up front (llama.cpp
        ``--ctx-size``) rather than filling memory; ``None`` for the others.
    kv_cache_tokens_flag
        The launch option that sets ``kv_cache_tokens`` (llama.cpp: ``--ctx-size``), named where that
        setting is what binds; ``None`` when the engine has none or it is not recorded.
    source
        Where the defaults come from (documentation or code, with version).
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    policy: MemoryPolicy
    fraction: Fraction
    runtime_overhead_gib: NonNegFloat
    comm_buffer_gib: NonNegFloat
    kv_cache_tokens: PosInt | None = None
    kv_cache_tokens_flag: str | None = Field(None, min_length=1)
    source: str = Field(min_length=1)


class DeviceRule(BaseModel):
    """Defaults an engine picks by device (vLLM: more sequences and a larger step on ≥ 70 GiB GPUs but the A100).

    A rule applies to a device whose vendor, kind, family or id prefix is in ``match`` (any device when
    empty), with ``min_memory_gib ≤ memory < max_memory_gib``, and whose id does not start with one of
    ``except_devices``. The first rule of :attr:`EngineSpec.device_rules` that applies wins; its fields
    that are set replace the engine's defaults.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    match: list[str] = Field(default_factory=list)
    min_memory_gib: NonNegFloat = 0.0
    max_memory_gib: PosFloat | None = None
    except_devices: list[str] = Field(default_factory=list)
    max_running_requests: PosInt | None = None
    max_prefill_tokens: PosInt | None = None
    memory_fraction: Fraction | None = None
    cuda_graph_max_batch: GraphCaps | None = None
    source: str = Field(min_length=1)

    def applies(self, device: DeviceSpec) -> bool:
        """Whether ``device`` gets these defaults."""
        named = (
            not self.match or bool({device.vendor, device.kind, device.family} & set(self.match)) or device.id.startswith(tuple(self.match))
        )
        big = device.memory_gib >= self.min_memory_gib and (self.max_memory_gib is None or device.memory_gib < self.max_memory_gib)
        return named and big and not device.id.startswith(tuple(self.except_devices))


class EngineScheduler(BaseModel):
    """An engine's default scheduler limits.

    Attributes
    ----------
    max_running_requests
        Most requests decoding at once (vLLM ``max_num_seqs``, TensorRT-LLM ``max_batch_size``).
    max_prefill_tokens
        Tokens one step may process (vLLM ``max_num_batched_tokens``, SGLang ``chunked_prefill_size``,
        TensorRT-LLM ``max_num_tokens``): the chunked-prefill budget and the activation workspace.
    chunked_prefill
        Whether a prompt is split over steps to fit the budget (vLLM v1 and SGLang by default). Without
        it (TensorRT-LLM's ``enable_chunked_prefill`` off, JetStream) a prompt is prefilled whole in one
        step: one longer than ``max_prefill_tokens`` is refused, and a shorter one waits for a step with
        room for all of it.
    prefill_first
        Whether a step that prefills decodes nothing: the scheduler runs waiting prompts before the
        running batch's next token (SGLang, whose mixed chunks are off by default; vLLM v0). Off: chunks
        of prompts ride along with every decode step (vLLM v1, TensorRT-LLM).
    overlap_scheduling
        Whether the engine schedules each step while the previous one runs (SGLang's overlap scheduler,
        TensorRT-LLM's; vLLM's ``--async-scheduling``): a request that arrives during a step is first
        scheduled two steps on, so a busy engine adds about one step to TTFT (:mod:`aicap.sizing.sim.engine`).
    admission
        How the engine keeps room for what running requests will still generate
        (:class:`~aicap.sizing.core.specs.efficiency.ProjectedAdmission`, SGLang); ``None``: it admits a
        request once its prompt's KV blocks are free and preempts when decoding runs out (vLLM).
    source
        Where the defaults come from.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    max_running_requests: PosInt
    max_prefill_tokens: PosInt
    chunked_prefill: bool = True
    prefill_first: bool = False
    overlap_scheduling: bool = False
    admission: ProjectedAdmission | None = None
    source: str = Field(min_length=1)


class CudaGraphs(BaseModel):
    """The largest decode batch an engine replays from a CUDA graph, by tensor-parallel degree.

    ``max_batch`` maps the smallest tensor-parallel degree each cap applies from to the cap (SGLang:
    ``cuda_graph_max_bs``, 256 below TP4 and 512 from it on an 80 GB GPU). A step that prefills nothing
    and decodes more sequences than the cap runs without its graph: the host launches every kernel,
    and the step takes at least that launch time (:mod:`aicap.sizing.perf.launches`). A
    :class:`DeviceRule` may set its own caps.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    max_batch: GraphCaps
    source: str = Field(min_length=1)


class DpAttention(BaseModel):
    """How an engine runs data-parallel attention with expert-parallel MoE layers (``Deployment.dp_attention``).

    Attributes
    ----------
    launch
        The engine's switches for it, as its documentation gives them (``aicap export`` spells them from the
        engine's flag map, :class:`~aicap.sizing.core.specs.launch.DpAttentionFlags`). The profile's
        ``max_running_requests`` is each data-parallel rank's scheduler's own.
    step_budget
        ``per_group``: each rank's step takes the profile's ``max_prefill_tokens`` (vLLM's engines);
        ``shared``: the engine divides it by the rank count (SGLang), so a group's step takes ``1/D``.
    groups
        ``divisor``: any group count ``D`` dividing the stage's ``tp`` (groups of ``tp/D`` devices: vLLM,
        SGLang); ``per_device``: one group per device, ``D = tp`` (TensorRT-LLM, whose attention
        data-parallel size is its tensor-parallel size).
    spans_instances
        Whether ``aicap export`` can start such a replica over several machines (the engine's multi-node flags are
        recorded in its flag map); the sizer places one over several instances only then.
    source
        Where the engine documents it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    launch: str = Field(min_length=1)
    step_budget: Literal["per_group", "shared"] = "per_group"
    groups: Literal["divisor", "per_device"] = "divisor"
    spans_instances: bool = False
    source: str = Field(min_length=1)


class SparseKernels(BaseModel):
    """Where an engine runs 2:4 semi-structured sparse linear layers on sparse tensor cores, and how much faster.

    Attributes
    ----------
    families
        Device families the engine ships sparse kernels for.
    weights_dtypes
        Weight formats those kernels take.
    speedup
        Published end-to-end speed-up of a 2:4-sparse model over its dense original on those devices
        [-], applied to the linear layers only (attention is not sparse), so the modelled end-to-end
        gain is below the published one.
    speedup_source
        Where the speed-up was published, and for what.
    source
        Where the kernels and the devices they are built for are documented, with versions.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    families: list[str] = Field(min_length=1)
    weights_dtypes: list[str] = Field(min_length=1)
    speedup: float = Field(ge=1.0)
    speedup_source: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @field_validator("weights_dtypes")
    @classmethod
    def _weights(cls, v: list[str]) -> list[str]:
        return _known(v, WEIGHT_DTYPES)


class EngineFactors(BaseModel):
    """How the engine's own runs on one device family depart from the family's efficiency factors.

    ``memory`` multiplies the family's memory efficiency ``η_m`` (weights and KV cache alike): fitted on
    the engine's published runs under load on that family (``aicap validate --set server
    --fit-engine-factors``, per-token latencies and throughput, the simulator replaying each run): the
    median of each source's optimum, shrunk toward 1 by ``S/(S + 2)`` for ``S`` sources, so that a family
    measured by few sources keeps most of its no-load fit. ``source`` says which runs and when.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    family: str = Field(min_length=1)
    memory: float = Field(gt=0.0, le=2.0)
    source: str = Field(min_length=1)


class EngineSpec(BaseModel):
    """One serving engine's defaults, at one version.

    Attributes
    ----------
    id
        Short name used by ``--engine`` and fleet files (``vllm``, ``trtllm``, ...).
    name, version
        The engine's own name and the release the defaults were read from.
    frameworks
        Names published measurements use for this engine (``framework`` of a validation case).
    efficiency_key
        The framework key of per-engine efficiency factors (``family@key`` entries of
        ``efficiency.yaml``), when the engine has its own; else the family's factors apply.
    factors
        Per device family, how the engine's measured runs depart from those factors
        (:class:`EngineFactors`, applied by :meth:`adjust`).
    runs_on
        Device vendors, kinds or families the engine serves (``nvidia``, ``tpu``, ``cpu``, ...); a vendor
        covers its accelerators, not its CPUs (:meth:`serves`).
    weights_dtypes, kv_dtypes
        Storage formats the engine serves (further limited by what each device supports).
    memory, scheduler
        See :class:`EngineMemory` and :class:`EngineScheduler`.
    request_overhead_ms, request_overhead_source
        Latency each request pays outside the accelerator's steps (HTTP server, tokenisation, scheduling
        hand-offs) [ms], added to TTFT and end-to-end latency; fitted on published measurements of the
        engine under load (``aicap validate --set server --fit-overheads``), with how.
    device_rules
        Defaults the engine picks by device (:class:`DeviceRule`; the first that applies wins).
    sparse_kernels
        Where the engine runs 2:4-sparse models on sparse kernels (:class:`SparseKernels`); ``None``:
        nowhere (they run as dense models).
    cuda_graphs
        The decode batches the engine replays from CUDA graphs (:class:`CudaGraphs`); ``None``: every one.
    dp_attention
        How the engine runs data-parallel attention for MoE models (:class:`DpAttention`); ``None``: it
        does not (not in this profile).
    spans_instances, spans_instances_source
        Whether a tensor- or pipeline-parallel replica may span several instances over their network: only
        where ``aicap export`` can start one (the engine's flag map records its multi-node start), with where
        the engine documents that start. The sizer places a replica over instances only then.
    notes
        What the profile does not capture.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    frameworks: list[str] = Field(default_factory=list)
    efficiency_key: str | None = None
    runs_on: list[str] = Field(min_length=1)
    weights_dtypes: list[str] = Field(min_length=1)
    kv_dtypes: list[str] = Field(min_length=1)
    memory: EngineMemory
    scheduler: EngineScheduler
    request_overhead_ms: NonNegFloat = 0.0
    request_overhead_source: str | None = None
    factors: list[EngineFactors] = Field(default_factory=list)
    device_rules: list[DeviceRule] = Field(default_factory=list)
    sparse_kernels: SparseKernels | None = None
    cuda_graphs: CudaGraphs | None = None
    dp_attention: DpAttention | None = None
    spans_instances: bool = False
    spans_instances_source: str | None = None
    notes: str | None = None

    @field_validator("weights_dtypes")
    @classmethod
    def _weights(cls, v: list[str]) -> list[str]:
        return _known(v, WEIGHT_DTYPES)

    @field_validator("kv_dtypes")
    @classmethod
    def _kv(cls, v: list[str]) -> list[str]:
        return _known(v, KV_DTYPES)

    @model_validator(mode="after")
    def _span_sourced(self) -> EngineSpec:
        if self.spans_instances and not self.spans_instances_source:
            raise ValueError("spans_instances: true needs spans_instances_source, where the engine documents its multi-node start")
        return self

    def serves(self, device: DeviceSpec) -> bool:
        """Whether the engine runs on ``device``: its kind or family is in ``runs_on``, or its vendor for an accelerator.

        A vendor names its accelerators: SGLang's ``amd`` is the Instinct GPUs, not an EPYC; a CPU needs ``cpu`` or its family.
        """
        on = set(self.runs_on)
        return device.kind in on or device.family in on or (device.vendor in on and device.kind != "cpu")

    def runs(self, device: DeviceSpec, weights_dtype: str, kv_dtype: str) -> bool:
        """Whether the engine serves ``device`` with weights and KV cache in these formats."""
        return self.serves(device) and weights_dtype in self.weights_dtypes and kv_dtype in self.kv_dtypes

    def rule_for(self, device: DeviceSpec | None) -> DeviceRule | None:
        """The first of :attr:`device_rules` that applies to ``device`` (``None``: none, or no device)."""
        if device is None:
            return None
        return next((r for r in self.device_rules if r.applies(device)), None)

    def runtime(self, base: RuntimeSpec, device: DeviceSpec | None = None) -> RuntimeSpec:
        """The runtime conventions of this engine on ``device``: ``base`` (quantisation layout, host reserve) with its memory and scheduler.

        Without a device, the engine's defaults before any :class:`DeviceRule`.
        """
        rule = self.rule_for(device)

        def pick(name: str, default: float) -> float:
            value = None if rule is None else getattr(rule, name)
            return default if value is None else value

        return base.model_copy(update={
            "engine": self.id,
            "kv_memory_policy": self.memory.policy,
            "usable_memory_fraction": pick("memory_fraction", self.memory.fraction),
            "runtime_overhead_gib": self.memory.runtime_overhead_gib,
            "comm_buffer_gib": self.memory.comm_buffer_gib,
            "kv_cache_tokens": self.memory.kv_cache_tokens,
            "kv_cache_tokens_flag": self.memory.kv_cache_tokens_flag,
            "request_overhead_ms": self.request_overhead_ms,
            "max_prefill_tokens": int(pick("max_prefill_tokens", self.scheduler.max_prefill_tokens)),
            "max_batch": int(pick("max_running_requests", self.scheduler.max_running_requests)),
            "chunked_prefill": self.scheduler.chunked_prefill,
            "prefill_first": self.scheduler.prefill_first,
            "overlap_scheduling": self.scheduler.overlap_scheduling,
            "admission": self.scheduler.admission,
            "sparse_speedup": self._sparse_speedup(device),
            "shares_step_budget": self.dp_attention is not None and self.dp_attention.step_budget == "shared",
            "cuda_graph_max_batch": self._graph_caps_on(rule),
        })  # fmt: skip

    def _graph_caps_on(self, rule: DeviceRule | None) -> dict[int, int] | None:
        """The CUDA-graph batch caps on a device (its rule's, else the engine's; ``None``: no cap)."""
        if rule is not None and rule.cuda_graph_max_batch is not None:
            return dict(rule.cuda_graph_max_batch)
        return None if self.cuda_graphs is None else dict(self.cuda_graphs.max_batch)

    def memory_multiplier(self, family: str) -> float:
        """The engine's multiplier on ``family``'s memory efficiency (1.0 where it has none)."""
        return next((f.memory for f in self.factors if f.family == family), 1.0)

    def adjust(self, eff: EfficiencySpec, multiplier: float | None = None) -> EfficiencySpec:
        """``eff`` as this engine reaches it: ``η_m · m`` (at most 1), ``m`` its multiplier for the family or ``multiplier``.

        The ``source`` gains the multiplier, so that explanations show where the factor came from.
        """
        m = self.memory_multiplier(eff.family) if multiplier is None else multiplier
        if m == 1.0:
            return eff
        return eff.model_copy(update={"memory": min(eff.memory * m, 1.0), "source": f"{eff.source}; memory x{m:g} for {self.name} runs"})

    def _sparse_speedup(self, device: DeviceSpec | None) -> dict[str, float]:
        """Speed-up of 2:4-sparse linear layers by weight format on ``device`` (empty where the engine has no sparse kernels for it)."""
        sk = self.sparse_kernels
        if sk is None or device is None or device.family not in sk.families:
            return {}
        return dict.fromkeys(sk.weights_dtypes, sk.speedup)


def _known(v: list[str], valid: tuple[str, ...]) -> list[str]:
    unknown = [d for d in v if d not in valid]
    if unknown:
        raise ValueError(f"unknown format {excerpt(unknown[0])}; valid: {', '.join(valid)}")
    return v
