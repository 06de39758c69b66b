"""The document ``aicap simulate PLAN --format json`` prints: every deployment of a plan simulated at its planned load.

Each deployment's run is a :class:`~aicap.sizing.sim.report.SimulationReport` with the plan's names beside it; a
disaggregated workload adds its composed TTFT (:mod:`aicap.sizing.sim.composed`). ``aicap schema simulation-plan``
prints the JSON Schema of :class:`PlanSimulation`; ``--per-replica`` prints :class:`ReplicaChecks` (``aicap schema
simulation-replicas``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.sim.report import SimulationReport


class DeploymentSimulation(SimulationReport):
    """One plan deployment's run, all its replicas behind the router, at its planned load."""

    workload: str
    instance_type: str
    percentile: str = Field(description="the workload's percentile, at which holds is judged")
    router: str
    holds: bool = Field(description="stable and within both targets at the percentile")
    planned_requests_per_s: float | None = Field(
        None, description="the plan's request rate for the deployment; setup.rate_per_s is the simulated arrivals' own rate"
    )


class ComposedRow(BaseModel):
    """A disaggregated workload's TTFT users see (ms at its percentile): prefill, KV transfer and decode, composed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    percentile: str
    prefill_ttft_ms: float
    transfer_ms: float
    decode_ttft_ms: float
    composed_ttft_ms: float
    ttft_target_ms: float | None
    holds: bool


class PlanSimulation(BaseModel):
    """Every deployment of a plan simulated at its planned load (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int
    holds: bool = Field(description="every deployment, and every composed TTFT, holds")
    deployments: list[DeploymentSimulation]
    disaggregated: list[ComposedRow]


class ReplicaCheck(BaseModel):
    """One deployment's replica simulated alone, as ``size --verify`` checks it (ms at the workload's percentile)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    instance_type: str
    hardware: str
    tp: int
    pp: int
    requests_per_s_per_replica: float
    ttft_promised_ms: float = Field(description="the performance model's tail at the planned load")
    ttft_simulated_ms: float | None = Field(description="the worst of the run's three stretches; none where nothing was served")
    tpot_promised_ms: float | None
    tpot_simulated_ms: float | None
    ttft_target_ms: float | None
    tpot_target_ms: float | None
    stable: bool
    preemptions: int
    rejected: int = Field(description="requests longer than a replica's KV cache holds")
    dp_attention: int
    utilisation: float = Field(description="the planned load over the capacity the plan gave the replica")
    holds: bool = Field(description="stable, nothing rejected, and within both targets")


class ReplicaChecks(BaseModel):
    """``aicap simulate PLAN --per-replica``: one replica alone of each deployment that carries traffic (``verify.verify``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int
    seed: int
    holds: bool = Field(description="every replica holds")
    replicas: list[ReplicaCheck]
