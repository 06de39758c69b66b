"""The documents of ``aicap simulate --compare-policies`` and ``aicap simulate --disaggregate`` (``--format json``).

:class:`PolicyComparison` is one deployment and one set of requests run under every policy, each row with the
fewest replicas that meet the targets under it; :class:`DisaggregatedRun` is one prefill pool, the KV link and one
decode pool simulated end to end (:func:`~aicap.sizing.sim.composed.chain`). ``aicap schema simulation-compare`` and
``aicap schema simulation-disaggregated`` print their JSON Schemas.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.sim.report import Setup, Stats, Targets, Throughput


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyResult(_Doc):
    """One policy's run of the compared requests [ms for latencies]."""

    policy: str
    ttft_ms: Stats
    tpot_ms: Stats
    queue_ms: Stats
    e2e_ms: Stats
    slo_attainment: float | None = Field(description="share of the requests after warm-up meeting every target; none without targets")
    preemptions: int
    stable: bool
    throughput: Throughput | None = Field(None, description="finished work per second of simulated time")
    utilisation: float | None = Field(None, description="share of the simulated time the replicas were running a step")
    replicas_for_slo: int | None = Field(
        description="the fewest replicas whose run is stable and meets every target at the percentile; none without targets or "
        "where no count up to the search's limit does"
    )


class PolicyComparison(_Doc):
    """The same requests on the same deployment under every policy (module docstring)."""

    schema_version: int
    percentile: str = Field(description="the statistic the targets are checked at, and replicas_for_slo is judged by")
    requests: int
    setup: Setup = Field(description="the deployment and traffic compared (its policy is the first row's)")
    slo: Targets
    policies: list[PolicyResult]


class PoolLayout(_Doc):
    """One pool of a disaggregated deployment."""

    hardware: str
    tp: int
    pp: int
    replicas: int


class KvTransfer(_Doc):
    """The KV cache's hand-off from the prefill pool to the decode pool."""

    link_gbps: float = Field(description="the link per device, Gbit/s")
    ms: float = Field(description="the longest prompt's KV cache over the link, ms")


class DisaggregatedRun(_Doc):
    """One disaggregated deployment simulated end to end [ms at the percentile]."""

    schema_version: int
    model: str
    percentile: str
    requests: int
    prefill: PoolLayout
    decode: PoolLayout
    kv_transfer: KvTransfer
    prefill_ttft_ms: float | None
    decode_ttft_ms: float | None = Field(description="the decode pool's TTFT after the hand-off")
    ttft_ms: float | None = Field(description="the TTFT users see: prefill, transfer and decode, composed per request")
    tpot_ms: float | None
    ttft_target_ms: float | None
    tpot_target_ms: float | None
    finished_share: float
    stable: bool
    holds: bool
