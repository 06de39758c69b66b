"""One measured case of a cases file, as ``aicap validate`` and ``aicap calibrate`` read it (``aicap schema cases``).

The typed fields are the ones the scorer uses (:mod:`aicap.sizing.calibrate.validation`); the rest of a case (its
sources, notes, ...) is kept as given. The format is ``hardware_db/validation/README.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aicap.sizing.core.documents import PosFloat, PosInt
from aicap.sizing.core.dtypes import Dtype
from aicap.sizing.core.errors import did_you_mean

Kind = Literal["offline_throughput", "static_batch", "single_stream", "prefill_latency", "server", "closed_loop"]
KINDS: tuple[str, ...] = get_args(Kind)
Metric = Literal[
    "output_tok_s_total", "output_tok_s_per_device", "total_tok_s_total", "requests_s", "single_stream_tok_s",
    "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean", "tpot_ms_p50", "tpot_ms_p99",
    "e2e_ms_mean", "e2e_ms_p50", "e2e_ms_p99", "itl_ms_mean", "itl_ms_p50", "itl_ms_p99",
]  # fmt: skip
METRICS: tuple[str, ...] = get_args(Metric)
#: Largest device count (and tp, pp, dp) a case may give: the largest published serving runs use far fewer.
MAX_CASE_DEVICES = 100_000
#: Largest batch (concurrent requests) a case may give.
MAX_CASE_BATCH = 1_000_000
#: Largest input or output length (tokens per request) a case may give.
MAX_CASE_TOKENS = 100_000_000


class EngineOptions(BaseModel):
    """How a measured run set up its engine where that departs from the engine profile (from the case's own source).

    Attributes
    ----------
    max_running_requests
        Requests running at once (vLLM ``max_num_seqs``, TurboMind ``max_batch_size``).
    step_tokens
        Tokens one engine step (scheduling iteration) may process (vLLM ``max_num_batched_tokens``).
    chunked_prefill
        Whether prompts are split over steps; ``None``: the profile's.
    prefill_first
        Whether a step that prefills decodes nothing (vLLM v0's default scheduler); ``None``: the profile's.
    scheduler_steps
        Decode-only steps per scheduling round (vLLM v0 ``--num-scheduler-steps``).
    kv_cache_tokens
        A KV cache of fixed size [tokens per replica] (TurboMind ``cache_max_entry_count`` blocks).
    eager
        Whether the engine ran without CUDA graphs (vLLM ``enforce_eager=True``); ``None``: the profile's.
    overlap_scheduling
        Whether the engine scheduled each step while the previous one ran (SGLang's overlap scheduler, on by
        default from 0.4); ``None``: the profile's.
    prompt_cache_hits
        Share of the run's requests whose prompt an earlier run of the same sweep left in the engine's prefix
        cache (the same seeded prompts sent again to a server with prefix caching on and room to keep
        them). A hit reuses the prompt's full KV blocks and prefills the rest: ``B·⌊(L − 1)/B⌋`` of its
        ``L`` tokens are cached, ``B`` = 16 (vLLM's KV block; the last token is always computed, for its
        logits). Which requests hit is drawn with the replay's seed; 0: a cold cache.
    memory_fraction
        The engine's share of device memory for weights and KV cache where the run set or defaulted it
        differently from the profile (SGLang ``--mem-fraction-static``); ``None``: the profile's.
    ignore_eos
        Whether the benchmark client asked for every request's whole output (``sglang.bench_serving``'s
        default, vLLM's ``--ignore-eos``).
    prefix_cache
        Whether the server kept a prefix cache (SGLang ``--disable-radix-cache`` turns it off); ``None``: on.
    cuda_graph_max_batch
        The largest decode batch the run's engine replayed from a CUDA graph (SGLang ``cuda_graph_max_bs``);
        larger decode-only steps launch their kernels one by one; ``None``: the profile's.
    all_reduce
        The kernels that ran the engine's tensor-parallel all-reduces: ``custom`` (the default: vLLM's,
        SGLang's and TensorRT-LLM's own peer-to-peer kernels) or ``nccl`` (TurboMind 0.1 calls NCCL), which
        pays the device family's ``nccl_all_reduce_us`` more per all-reduce
        (:meth:`~aicap.sizing.core.specs.efficiency.EfficiencySpec.with_nccl_all_reduce`).
    source
        Where these settings are published (the benchmark's command line or script, with its commit).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_running_requests: Annotated[PosInt, Field(le=MAX_CASE_BATCH)] | None = None
    step_tokens: Annotated[PosInt, Field(le=MAX_CASE_TOKENS)] | None = None
    chunked_prefill: bool | None = None
    prefill_first: bool | None = None
    scheduler_steps: Annotated[PosInt, Field(le=1024)] = 1
    kv_cache_tokens: Annotated[PosInt, Field(le=MAX_CASE_TOKENS)] | None = None
    eager: bool | None = None
    overlap_scheduling: bool | None = None
    prompt_cache_hits: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    memory_fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    ignore_eos: bool = False
    prefix_cache: bool | None = None
    cuda_graph_max_batch: Annotated[PosInt, Field(le=MAX_CASE_BATCH)] | None = None
    all_reduce: Literal["custom", "nccl"] = "custom"
    source: str = Field(min_length=1)


class CaseDataset(BaseModel):
    """Where a case under load drew its requests' lengths (when they are not fixed): the dataset, its means and its shape.

    Attributes
    ----------
    name
        The dataset as the source names it (a name holding ``random`` draws uniform lengths around the means).
    mean_input_tokens, mean_output_tokens
        The run's mean prompt and output tokens per request.
    lengths
        The shape its sampler draws, a dataset of ``hardware_db/traffic/datasets.yaml`` (default ``sharegpt-first-turn``).
    source, lengths_source
        Where the means and the shape come from.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1)
    mean_input_tokens: Annotated[PosFloat, Field(le=MAX_CASE_TOKENS)] | None = None
    mean_output_tokens: Annotated[PosFloat, Field(le=MAX_CASE_TOKENS)] | None = None
    lengths: str | None = None
    source: str | None = None
    lengths_source: str | None = None

    @field_validator("lengths")
    @classmethod
    def _shipped(cls, value: str | None) -> str | None:
        from aicap.sizing.sim.traffic import dataset_names

        names = dataset_names()
        if value is not None and value not in names:
            raise ValueError(f"{value!r} is not a shipped dataset: {did_you_mean(value, names)}valid: {', '.join(names)}")
        return value


class Case(BaseModel):
    """One measured case, as read from a cases file (schema: ``hardware_db/validation/README.md``).

    Only the fields the scorer uses are typed; the rest (sources, notes, ...) are kept as given.
    Numbers must be finite and positive (booleans are not numbers) and within what a published
    measurement can hold (at most :data:`MAX_CASE_DEVICES` devices, :data:`MAX_CASE_BATCH` requests
    per batch, :data:`MAX_CASE_TOKENS` tokens per request); metric names come from a fixed set.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    id: str = Field(min_length=1)
    model: str = Field(min_length=1)
    hardware: str = Field(min_length=1)
    kind: Kind
    metrics: dict[Metric, PosFloat] = Field(min_length=1)
    devices: Annotated[PosInt, Field(le=MAX_CASE_DEVICES)] | None = None
    tp: Annotated[PosInt, Field(le=MAX_CASE_DEVICES)] | None = None
    pp: Annotated[PosInt, Field(le=MAX_CASE_DEVICES)] | None = None
    dp: Annotated[PosInt, Field(le=MAX_CASE_DEVICES)] | None = None
    batch: Annotated[PosInt, Field(le=MAX_CASE_BATCH)] | None = None
    input_tokens: Annotated[PosInt, Field(le=MAX_CASE_TOKENS)] | None = None
    output_tokens: Annotated[PosInt, Field(le=MAX_CASE_TOKENS)] | None = None
    request_rate: PosFloat | None = None
    num_requests: Annotated[PosInt, Field(le=MAX_CASE_BATCH)] | None = None
    recorded_requests: bool = False
    measurement_window_s: PosFloat | None = None
    weights_dtype: Dtype | None = None
    kv_dtype: Dtype | None = None
    framework: str | None = None
    engine_options: EngineOptions | None = None
    dataset: CaseDataset | None = None
    comparable: bool = True
