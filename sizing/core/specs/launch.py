"""Flag maps: how each serving engine spells the settings a plan fixes (``hardware_db/export/<engine>.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The plan settings an engine launch carries (the ``field`` of a flag).
FIELDS = (
    "model", "served_model_name", "host", "port", "tensor_parallel", "pipeline_parallel", "expert_parallel", "data_parallel",
    "max_running_requests", "max_prefill_tokens", "memory_fraction", "context_length", "dtype", "quantization", "kv_cache_dtype",
    "prefix_caching", "prefix_caching_off", "chunked_prefill", "chunked_prefill_off", "speculative_method", "speculative_draft_model",
    "speculative_draft_tokens", "speculative_verify_tokens", "speculative_num_steps", "speculative_eagle_topk", "mtp_layers",
    "trust_remote_code", "disaggregation_role", "kv_connector", "metrics", "attention_data_parallel", "eager",
)  # fmt: skip
ValueKind = Literal["int", "float", "str", "bool-switch", "bool", "choice"]


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class Flag(_Strict):
    """One command-line flag: the plan ``field`` it carries, its spelling and how its value is written."""

    field: str
    flag: str = Field(min_length=1)
    value: ValueKind
    source: str = Field(min_length=1)

    @property
    def positional(self) -> bool:
        """A positional argument (its ``flag`` names it and does not start with ``-``)."""
        return not self.flag.startswith("-")


class ExtraKey(_Strict):
    """One key of an engine's options file (dotted path into the YAML document)."""

    field: str
    key: str = Field(min_length=1)
    value: ValueKind
    source: str = Field(min_length=1)


class ExtraOptions(_Strict):
    """An options file the launch command points at with ``flag``."""

    flag: str
    flag_source: str
    keys: list[ExtraKey]


class Image(_Strict):
    """The engine's official container image at the profiled version."""

    name: str = Field(min_length=1)
    source: str = Field(min_length=1)


class QueueGauges(_Strict):
    """The engine's Prometheus gauges of requests running and waiting (what an autoscaler on in-flight requests sums)."""

    running: str
    waiting: str
    source: str = Field(min_length=1)


class MultiNode(_Strict):
    """How an engine's replica starts across the pods of a LeaderWorkerSet.

    ``leader`` is a shell prefix run before the serving command, ``worker`` the whole command of each
    worker; ``$(LWS_...)`` are LWS's own environment variables.
    """

    leader: str = Field(min_length=1)
    worker: str = Field(min_length=1)
    source: str = Field(min_length=1)


class MultiNodeFlags(_Strict):
    """How a replica starts over several machines by flags alone: what each machine's serving command adds.

    Every machine runs the engine's serving command for the whole replica (its tensor-parallel and data-parallel sizes are the
    replica's) plus ``head`` (the first machine, which serves HTTP) or ``worker`` (the others). ``scope``: ``any`` replica over
    several machines (SGLang), or only one with data-parallel attention (vLLM, whose tensor- and pipeline-parallel replicas
    start a Ray cluster instead: :class:`MultiNode`). Placeholders: ``{nodes}`` machines, ``{rank}`` this machine's index from
    0, ``{local}`` attention groups on each machine, ``{start}`` the first group on this machine (``rank · local``),
    ``{address}`` the first machine's address and ``{port}`` its rendezvous port.
    """

    scope: Literal["any", "dp_attention"]
    head: str = Field(min_length=1)
    worker: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    source: str = Field(min_length=1)

    def flags(self, *, rank: int | str, nodes: int, local: int, start: int | str, address: str) -> str:
        """The flags of the machine of index ``rank`` (0: the head)."""
        text = self.head if rank == 0 else self.worker
        return text.format(nodes=nodes, rank=rank, local=local, start=start, address=address, port=self.port)


class DpAttentionFlags(BaseModel):
    """How an engine's flags count a replica with data-parallel attention (``Deployment.dp_attention = D`` of a ``tp``-device stage).

    ``tensor_parallel``: the tensor-parallel flag gives a ``group``'s devices (``tp/D``, vLLM beside
    ``--data-parallel-size``) or the ``stage``'s (``tp``, SGLang's ``--tp``). ``max_running``: the
    running-request flag is each group's (``per_group``, vLLM's per-engine ``--max-num-seqs``) or the
    replica's, shared out over the groups (``replica``, SGLang); ``step_budget`` likewise for the
    prefill-chunk flag (SGLang divides ``--chunked-prefill-size`` by the groups). Data-parallel attention is switched on by
    the ``attention_data_parallel`` flag where the map has one, else it follows from data parallelism of
    an expert-parallel MoE model (vLLM).
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    tensor_parallel: Literal["group", "stage"]
    max_running: Literal["per_group", "replica"]
    step_budget: Literal["per_group", "replica"]
    source: str = Field(min_length=1)


class FlagMap(BaseModel):
    """A serving engine's launch command and flag spellings, each with the source it was read from."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    engine: str
    version: str
    command: list[str] = Field(min_length=1)
    model_argument: str
    image: Image
    # Images for platforms the main one (a CUDA build) does not serve, keyed by "tpu" or a GPU vendor ("amd").
    platform_images: dict[str, Image] = Field(default_factory=dict)
    default_port: int = Field(ge=1, le=65535)
    port_source: str
    health_path: str
    health_source: str
    metrics_path: str
    queue_gauges: QueueGauges | None = None
    multi_node: MultiNode | None = None
    flags: list[Flag]
    choices: dict[str, dict[str, str] | str] = Field(default_factory=dict)
    extra_options_file: ExtraOptions | None = None
    dp_attention: DpAttentionFlags | None = None
    multi_node_flags: MultiNodeFlags | None = None
    not_found: list[dict[str, str] | str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_fields(self) -> FlagMap:
        names = [f.field for f in self.flags] + [k.field for k in (self.extra_options_file.keys if self.extra_options_file else [])]
        for name in names:
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; valid: {', '.join(FIELDS)}")
        return self

    def choice(self, field: str, value: str) -> str | None:
        """The engine's spelling of ``value`` for a ``choice`` field (``None``: the engine has none)."""
        table = self.choices.get(field)
        return table.get(value) if isinstance(table, dict) else None


class ResourceName(_Strict):
    """The extended resource a pod requests for one kind of device (its device plugin's name)."""

    vendor: str
    kind: str
    resource: str
    source: str = Field(min_length=1)


class NodeLabel(_Strict):
    """A node label key a pod can select on, with the values it takes where they depend on the device."""

    cloud: str
    key: str
    values: dict[str, str | list[str]] | None = None
    source: str = Field(min_length=1)


class ModelToken(_Strict):
    """Where a pod reads the Hugging Face token a gated checkpoint needs: an environment variable from a Secret's key."""

    env: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    key: str = Field(min_length=1)
    source: str = Field(min_length=1)


class KubernetesFacts(BaseModel):
    """Sourced Kubernetes facts the manifests need (``hardware_db/export/kubernetes.yaml``); other keys are reference notes."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    resource_names: list[ResourceName]
    node_labels: list[NodeLabel]
    model_token: ModelToken | None = None

    def resource(self, vendor: str, kind: str) -> str | None:
        """The extended resource for a device: by vendor and kind, else by kind alone (TPUs), else ``None`` (CPUs)."""
        for r in self.resource_names:
            if r.vendor == vendor and r.kind == kind:
                return r.resource
        return next((r.resource for r in self.resource_names if r.kind == kind), None)

    def label(self, key: str) -> NodeLabel | None:
        """The node label with ``key``, if recorded."""
        return next((x for x in self.node_labels if x.key == key), None)


class AcceleratorType(_Strict):
    """llm-d's ``accelerator.type`` for one kind of device."""

    vendor: str
    kind: str
    type: str


class ChartRef(_Strict):
    """A helm chart, its repository and pinned version."""

    name: str
    repository: str
    version: str
    source: str = Field(min_length=1)


class ValuesKey(_Strict):
    """One values key aicap writes (a dotted path, ``[]`` for list items) and where the chart reads it."""

    path: str
    source: str = Field(min_length=1)


class RoutingProxy(_Strict):
    """llm-d's routing sidecar of a prefill/decode pair: its KV connector and the port vLLM listens on behind it."""

    connector: str
    target_port: int = Field(ge=1, le=65535)
    source: str = Field(min_length=1)


class LlmdChart(_Strict):
    """The llm-d ``llm-d-modelservice`` chart as ``aicap export --to llm-d`` fills it (``hardware_db/export/llmd.yaml``)."""

    schema_version: Literal[1]
    chart: ChartRef
    image: Image
    proxy: RoutingProxy
    chart_managed_fields: list[str] = Field(min_length=1)
    chart_managed_source: str = Field(min_length=1)
    accelerator_types: list[AcceleratorType]
    accelerator_source: str = Field(min_length=1)
    keys: list[ValuesKey] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_fields(self) -> LlmdChart:
        for name in self.chart_managed_fields:
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; valid: {', '.join(FIELDS)}")
        return self

    def accelerator(self, vendor: str, kind: str) -> str | None:
        """The chart's accelerator type for a device, or ``None`` (none the chart knows)."""
        return next((a.type for a in self.accelerator_types if a.vendor == vendor and a.kind == kind), None)
