"""The fleet file (``aicap.yaml``): workloads with traffic and latency targets, plus constraints.

Schema version 1. ``aicap schema plan`` prints its JSON Schema. A minimal file::

    schema_version: 1
    workloads:
      - name: chat
        model: llama-3.1-70b
        requests_per_s: 20
        input_tokens: 1500
        output_tokens: 300
        slo: {ttft_ms: 2000, tpot_ms: 60, percentile: p99}
    constraints:
      clouds: [aws, gcp]
      pricing: on_demand
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aicap.sizing.core import lengths
from aicap.sizing.core.constraints import Constraints
from aicap.sizing.core.dtypes import WeightDtype
from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.lengths import LengthBin
from aicap.sizing.core.profile import WEEKLY_SHAPES, Diurnal, HourlyRates, Weekly, check_hours
from aicap.sizing.core.specs.instance import NetworkKind
from aicap.sizing.core.specs.speculative import SpeculativeConfig

Percentile = Literal["p50", "p90", "p95", "p99"]
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}

#: Smallest traffic a workload may demand, in requests per second: 1e-5, about 26 requests a month
#: (fewer than one a day). A smaller rate is almost always a unit slip (per month or per day given as
#: per second); and at 1e-6 requests/s and below, the demand is within the integer program's
#: feasibility tolerance, so the solver would call an empty plan feasible and find no real one.
MIN_REQUESTS_PER_S = 1e-5
#: The largest demanded rate [requests/s] (or its peak) a fleet may give: a billion requests a second, beyond any fleet
#: sized by whole instances (1e308 overflowed the replica counts to infinity).
MAX_REQUESTS_PER_S = 1e9


def too_small_rate() -> str:
    """Why a demanded rate below :data:`MIN_REQUESTS_PER_S` is refused (the caller names the value and where it came from)."""
    per_month = MIN_REQUESTS_PER_S * 730 * 3600
    return (f"below the minimum of {MIN_REQUESTS_PER_S:g} requests/s (about {per_month:.0f} requests a month); a rate this "
            "small is likely a unit slip (the rate is per second), and it would size an empty plan")  # fmt: skip


def too_large_rate() -> str:
    """Why a demanded rate above :data:`MAX_REQUESTS_PER_S` is refused (the caller names the value and where it came from)."""
    return (f"above the maximum of {MAX_REQUESTS_PER_S:,.0f} requests/s (a billion requests a second); a rate this large is "
            "likely a unit slip (the rate is per second)")  # fmt: skip


def check_prefix_cached(share: float) -> None:
    """Raise :class:`InputError` unless ``share`` (of each prompt found in the prefix cache) is in ``[0, 1)``."""
    if not (math.isfinite(share) and 0.0 <= share < 1.0):
        raise InputError(f"--prefix-cached {share:g}: the cached share of each prompt must be in [0, 1)")


Precision = WeightDtype
#: KV-cache formats a workload may name (an fp32 model's cache follows its weights, unnamed).
KvDtype = Literal["bf16", "fp16", "fp8", "int8"]
"""A weight format a workload may be served in (FP4 formats on Blackwell and MI355X, weight-only elsewhere)."""


DEFAULT_PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8")
"""The weight formats a workload that names none may be served in, for a model released in its own dtype."""


class _Doc(BaseModel):
    # Strict: a boolean is not a number and a string is not a count; NaN and infinity are never a rate or a target.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def repeated_name(names: Sequence[object]) -> tuple[int, int] | None:
    """``(k, j)``: the first workload ``k`` whose name workload ``j < k`` already has (names that are not strings skipped)."""
    first: dict[str, int] = {}
    for k, name in enumerate(names):
        if isinstance(name, str):
            if name in first:
                return k, first[name]
            first[name] = k
    return None


def repeated_name_message(name: str, k: int, j: int) -> str:
    """The error for :func:`repeated_name`'s find."""
    return f"workloads[{k}].name: {excerpt(name)} is already the name of workloads[{j}]; workload names must be unique"


#: Longest latency target a workload may set, ms (a day): a target beyond it is a unit slip, and the margins
#: computed against it would overflow.
MAX_TARGET_MS = 86_400_000.0


class Slo(_Doc):
    """Latency targets at a percentile (milliseconds). Encoders use ``ttft_ms`` as their latency."""

    ttft_ms: PositiveFloat | None = Field(None, le=MAX_TARGET_MS, description="TTFT target, ms (at most a day)")
    tpot_ms: PositiveFloat | None = Field(None, le=MAX_TARGET_MS, description="TPOT target, ms (at most a day)")
    percentile: Percentile = "p99"


class Disaggregation(_Doc):
    """Serve a decoder workload with separate prefill and decode pools (see :mod:`aicap.sizing.plan.disaggregate`).

    The prefill pool computes each prompt and its first token; the KV cache crosses the instance network
    to the decode pool, which generates the rest. The TTFT target is split: ``decode_ttft_share`` of it
    for the decode pool's admission, the KV transfer at ``transfer_gbps`` (both pools use only instance
    types at least that fast), the rest for the prefill pool.
    """

    decode_ttft_share: float = Field(0.1, gt=0.0, lt=1.0, description="share of the TTFT target left to the decode pool")
    transfer_gbps: PositiveFloat | None = Field(
        None, description="KV-transfer link, Gbit/s per device: the pools use only instance types with at least this much sourced "
        "scale-out network per device (default: each RDMA-class network tier of the allowed types is tried and the cheapest "
        "plan's wins)",
    )  # fmt: skip
    prefill_hardware: list[str] | None = Field(None, description="devices the prefill pool may use (default: any allowed)")
    decode_hardware: list[str] | None = Field(None, description="devices the decode pool may use (default: any allowed)")


class Workload(_Doc):
    """One served model with its traffic and targets.

    Give traffic as ``requests_per_s`` or ``tokens_per_s`` (output tokens/s; items/s for encoders
    and generic models), or neither with the ``throughput`` objective (then the plan buys the most
    capacity the budget allows); a rate (a profile's peak) lies between :data:`MIN_REQUESTS_PER_S` and
    :data:`MAX_REQUESTS_PER_S` requests/s. ``requests_per_s`` may be an hourly profile (24 or 168 rates, or a
    ``diurnal`` shape; :mod:`aicap.sizing.core.profile`): the fleet is then planned period by period
    (:mod:`aicap.sizing.plan.periods`), with at least ``min_replicas`` replicas in every hour. A static
    plan keeps at least ``min_replicas`` replicas too (for availability: a replica may fail or be drained),
    whatever fewer its demand would need.
    Lengths are one number for every request, or histograms: the weighted mean sets throughput, the
    bin at the latency percentile sets the TTFT tail, and the largest bin bounds memory (and the context
    length an export launches with: give the long tail a bin to size and launch for it).
    ``arrival_cv`` is the coefficient of variation of inter-arrival times: 1 for Poisson arrivals,
    above 1 for bursty traffic (queueing waits grow by ``(1 + cv²)/2``).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str
    requests_per_s: PositiveFloat | HourlyRates | Diurnal | Weekly | None = None
    tokens_per_s: PositiveFloat | None = None
    min_replicas: int = Field(
        1, ge=0, le=100_000, description="the fewest replicas the workload keeps (a static plan, and every period of a profile plan)"
    )
    input_tokens: PositiveInt | list[LengthBin] = 1024
    output_tokens: PositiveInt | list[LengthBin] = 256
    slo: Slo = Slo()
    arrival_cv: float = Field(1.0, ge=0.0, le=10.0)
    precisions: list[Precision] | None = Field(
        None,
        description="weight formats the workload may be served in; default bf16 and fp8, or, for a model released quantised "
        "(checkpoint_dtype: mxfp4 for gpt-oss, fp8 for DeepSeek-V3), that format and bf16",
    )
    engine: str | None = Field(None, description="serving engine profile (vllm, sglang, trtllm, ...); default: the constraints' engine")
    eager: bool = Field(
        False,
        description="the engine runs without CUDA graphs (vLLM --enforce-eager, SGLang --disable-cuda-graph): sized on GPUs only, "
        "where every step takes at least the host time of launching its kernels one by one",
    )
    prefix_cached_share: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of each prompt found in the prefix cache (a shared system prompt, earlier turns): "
        "attended to but not recomputed; memory still holds the whole prompt",
    )
    kv_dtype: KvDtype | None = Field(
        None,
        description="KV-cache format (default: follows the weights: fp8 with fp8 or FP4 weights, else 16 bit; 16 bit for a model "
        "served in the format its checkpoint was released in)",
    )
    speculative: SpeculativeConfig | None = Field(
        None, description="speculative decoding: drafting method (draft, mtp, eagle, ngram), draft model, draft tokens, acceptance"
    )
    hardware: list[str] | None = Field(None, description="devices this workload may use (default: every device the constraints allow)")
    min_network_gbps: PositiveFloat | None = Field(
        None, description="only instance types with a sourced scale-out network of at least this much per device, Gbit/s"
    )
    instance_types: list[str] | None = Field(
        None, description="only these instance types (aicap sets it to keep a disaggregated workload's two pools in one cloud and region)"
    )
    network_kinds: list[NetworkKind] | None = Field(
        None, description="only instance types whose scale-out network is one of these kinds (a disaggregated pool: RDMA-class)"
    )
    disaggregation: Disaggregation | None = Field(None, description="serve prefill and decode on separate pools (decoders)")
    disaggregated_role: Literal["prefill", "decode"] | None = Field(
        None, description="the pool of a disaggregated workload this one is (aicap sets it when it splits a workload)"
    )

    @field_validator("requests_per_s", mode="before")
    @classmethod
    def _shape(cls, v: object) -> object:
        """A mapping with ``shape`` is one of the built-in shapes; say which are valid, and what is wrong, in one line.

        A scalar that is not a positive number is refused here in one line, rather than once per member of the union
        (number, hourly list, diurnal or weekly shape) with the message of whichever member failed deepest.
        """
        if isinstance(v, bool | str) or (isinstance(v, int | float) and not v > 0):
            what = "a positive number" if isinstance(v, int | float) and not isinstance(v, bool) else "a number"
            raise ValueError(f"not a rate: give {what} of requests per second, a list of 24 or 168 hourly "
                             "rates, or a shape ({shape: diurnal, peak: ..., trough: ...})")  # fmt: skip
        if isinstance(v, dict) and "shape" not in v:  # not the union's members one by one: what a mapping may be
            keys = ", ".join(repr(k) for k in v) or "none"
            raise ValueError(f"a mapping here is a shape ({{shape: diurnal, peak: ..., trough: ...}}) or one file ({{csv: FILE}} "
                             f"or {{trace: FILE}}); got keys {keys}")  # fmt: skip
        if not isinstance(v, dict):
            return v
        shape = v["shape"]
        kinds: dict[str, type[Diurnal] | type[Weekly]] = {"diurnal": Diurnal, **{w: Weekly for w in WEEKLY_SHAPES}}
        if not isinstance(shape, str) or shape not in kinds:
            raise ValueError(f"shape {excerpt(shape)}: valid: {', '.join(kinds)}")
        try:
            return kinds[shape].model_validate(v)
        except ValidationError as exc:
            errs = exc.errors()
            err = next((e for e in errs if e["type"] == "extra_forbidden"), errs[0])  # a misspelt key is why one is missing
            where = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                from aicap.sizing.core.doc_errors import unknown_field

                raise ValueError(f"shape {shape}: {where}: {unknown_field(kinds[shape], err['loc'])}") from None
            raise ValueError(f"shape {shape}: {where + ': ' if where else ''}{str(err['msg']).removeprefix('Value error, ')}") from None

    @field_validator("tokens_per_s", mode="before")
    @classmethod
    def _tokens_one_number(cls, v: object) -> object:
        """An hourly profile (a list or a shape) is a request rate: say so rather than "not a valid number"."""
        if isinstance(v, list | dict):
            raise ValueError("tokens_per_s takes one number; an hourly profile (a list, a shape or a file) is given as requests_per_s")
        return v

    @field_validator("input_tokens", "output_tokens")
    @classmethod
    def _histogram_not_empty(cls, v: int | list[LengthBin]) -> int | list[LengthBin]:
        if isinstance(v, list) and not v:
            raise ValueError("a length histogram lists at least one {tokens, weight} bin (or give one number of tokens)")
        return v

    @field_validator("hardware")
    @classmethod
    def _devices_not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("list at least one device id, or leave hardware out for any the constraints allow")
        return v

    @field_validator("requests_per_s")
    @classmethod
    def _rate_not_tiny(cls, v: float | list[float] | Diurnal | Weekly | None) -> float | list[float] | Diurnal | Weekly | None:
        if v is None:
            return v
        if isinstance(v, list):
            check_hours(v, "")  # the error is placed at workloads[i].requests_per_s already
        elif isinstance(v, Diurnal):
            v.rates()  # checks trough <= peak
        peak = max(v) if isinstance(v, list) else v.peak if isinstance(v, Diurnal) else max(v.rates()) if isinstance(v, Weekly) else v
        at = "" if isinstance(v, float | int) else "the profile's peak: "
        if peak < MIN_REQUESTS_PER_S:
            raise ValueError(at + too_small_rate())
        if peak > MAX_REQUESTS_PER_S:
            raise ValueError(at + too_large_rate())
        return v

    def allowed_precisions(self, checkpoint_dtype: str | None = None) -> list[str]:
        """The weight formats to consider: ``precisions`` as given, else the defaults for the model's checkpoint.

        A model released in its own dtype may be served in bf16 or fp8 (:data:`DEFAULT_PRECISIONS`); one
        released quantised, in that format or a de-quantised bf16 copy (where a device has no kernel path
        for the format), not re-quantised to another: an engine loads the checkpoint's own method.

        Parameters
        ----------
        checkpoint_dtype
            The workload model's ``checkpoint_dtype`` (``None`` for a model stored in its own dtype).

        Returns
        -------
        list of str
            Weight formats, as listed or in that order.
        """
        if self.precisions is not None:
            return list(self.precisions)
        return list(DEFAULT_PRECISIONS) if checkpoint_dtype is None else [checkpoint_dtype, "bf16"]

    @model_validator(mode="after")
    def _one_traffic(self) -> Workload:
        if self.requests_per_s is not None and self.tokens_per_s is not None:
            raise ValueError("give one of requests_per_s or tokens_per_s, not both")
        if self.precisions is not None and not self.precisions:
            raise ValueError("precisions must list at least one format")
        if self.eager and self.speculative is not None:
            raise ValueError("eager with speculative decoding: the drafter's kernel launches are not modelled; drop one of them")
        if self.eager and self.disaggregation is not None:
            raise ValueError("eager with disaggregation: eager prefill and decode pools are not modelled; drop one of them")
        rate = self.rate
        if self.tokens_per_s is not None and rate is not None and rate < MIN_REQUESTS_PER_S:
            raise ValueError(f"tokens_per_s {self.tokens_per_s:g} at {self.mean_output:g} output tokens per request is "
                             f"{rate:.3g} requests/s, {too_small_rate()}")  # fmt: skip
        if self.tokens_per_s is not None and rate is not None and rate > MAX_REQUESTS_PER_S:
            raise ValueError(f"tokens_per_s {self.tokens_per_s:g} at {self.mean_output:g} output tokens per request is "
                             f"{rate:.3g} requests/s, {too_large_rate()}")  # fmt: skip
        return self

    @property
    def mean_input(self) -> float:
        """Mean prompt length in tokens."""
        return lengths.mean_tokens(self.input_tokens)

    @property
    def mean_output(self) -> float:
        """Mean generated length in tokens."""
        return lengths.mean_tokens(self.output_tokens)

    @property
    def decode_context(self) -> float:
        """Mean context of a decode step [tokens]: ``E[I] + E[O²]/(2·E[O])`` (:func:`.lengths.decode_context`)."""
        return lengths.decode_context(self.input_tokens, self.output_tokens)

    @property
    def input_span(self) -> float:
        """Token-weighted mean prompt length [tokens]: ``E[I²]/E[I]`` (:func:`.lengths.token_weighted_mean`)."""
        return lengths.token_weighted_mean(self.input_tokens)

    @property
    def input_skew(self) -> float:
        """Prompt lengths' third over second moment, ``E[I³]/E[I²]^(3/2)`` (:func:`.lengths.skew_ratio`; 1 when fixed)."""
        return lengths.skew_ratio(self.input_tokens)

    @property
    def has_rate(self) -> bool:
        """Whether the workload states its traffic (otherwise only the throughput objective can size it)."""
        return self.requests_per_s is not None or self.tokens_per_s is not None

    @property
    def profile(self) -> tuple[float, ...] | None:
        """Hourly demanded rates [requests/s] when ``requests_per_s`` is a profile, else ``None``."""
        v = self.requests_per_s
        if isinstance(v, Diurnal | Weekly):
            return v.rates()
        if isinstance(v, list):
            return tuple(float(x) for x in v)
        return None

    @property
    def rate(self) -> float | None:
        """Demanded requests per second (``tokens_per_s`` over the mean output; a profile's peak), ``None`` when not given."""
        p = self.profile
        if p is not None:
            return max(p)
        if isinstance(self.requests_per_s, float | int):
            return float(self.requests_per_s)
        if self.tokens_per_s is not None:
            return self.tokens_per_s / max(self.mean_output, 1.0)
        return None

    def input_at(self, quantile: float) -> float:
        """Prompt length (tokens) at ``quantile`` of the histogram: the bin where the cumulative weight reaches it."""
        return lengths.at_quantile(self.input_tokens, quantile)

    def input_share_from(self, tokens: float) -> float:
        """Share of requests whose prompt is at least ``tokens`` long (1 for a fixed length)."""
        return lengths.share_from(self.input_tokens, tokens)

    def input_above(self, tokens: float) -> tuple[float, float]:
        """Mean length (tokens) and share of the prompts longer than ``tokens`` (``(0, 0)`` when none is)."""
        return lengths.above(self.input_tokens, tokens)

    @property
    def max_input(self) -> int:
        """Longest prompt in tokens."""
        return lengths.max_tokens(self.input_tokens)

    @property
    def max_context(self) -> int:
        """Longest request (input + output) the memory plan must hold, in tokens."""
        return self.max_input + lengths.max_tokens(self.output_tokens)


MAX_WORKLOADS = 2000
"""Most workloads one fleet may hold: sizing time grows faster than linearly past about a thousand
(1,000 realistic workloads take about 10 s on two cores), so a larger fleet is refused
at once, before its workloads are validated, with a request to split it."""


class Fleet(_Doc):
    """A fleet file: schema version, workloads and constraints."""

    schema_version: Literal[1] = 1
    workloads: list[Workload] = Field(min_length=1)
    constraints: Constraints = Constraints()

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("workloads"), list) and len(data["workloads"]) > MAX_WORKLOADS:
            raise ValueError(f"{len(data['workloads']):,} workloads is more than one fleet may hold ({MAX_WORKLOADS:,}); "
                             "split it into fleets of related workloads and size each")  # fmt: skip
        return data

    _by_name: dict[str, Workload] | None = PrivateAttr(default=None)

    def workload(self, name: str) -> Workload:
        """The workload called ``name`` (``KeyError`` if none)."""
        if self._by_name is None:
            self._by_name = {w.name: w for w in self.workloads}
        return self._by_name[name]

    @model_validator(mode="after")
    def _unique_names(self) -> Fleet:
        repeat = repeated_name([w.name for w in self.workloads])
        if repeat is not None:
            raise ValueError(repeated_name_message(self.workloads[repeat[0]].name, *repeat))
        no_rate = [k for k, w in enumerate(self.workloads) if not w.has_rate]
        if no_rate and self.constraints.objective != "throughput":  # reported at the workload's own line (ctx "at")
            name = self.workloads[no_rate[0]].name  # the name pattern allows no brace, which the template would read
            raise PydanticCustomError("value_error", f"workload '{name}' gives no requests_per_s or tokens_per_s; only the throughput "
                                      "objective sizes a workload without a rate (the most the budget buys)",
                                      {"at": ("workloads", no_rate[0])})  # fmt: skip
        return self
