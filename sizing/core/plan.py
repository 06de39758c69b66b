"""The plan: what ``aicap size`` writes and ``check``, ``diff``, ``simulate`` and reloads read.

A versioned pydantic document (schema version 2; ``aicap schema plan`` prints its JSON Schema). Every
number in it is a promise with a unit in its name:

* money is USD (``usd_per_hour``, ``usd_per_month``), never negative or infinite;
* ``ttft_ms`` and ``tpot_ms`` of a deployment are the workload's **percentile** (``percentile``) at the
  load the plan routes to that deployment, as the load model of :mod:`aicap.sizing.serve.load` predicts
  them; a workload's figures are the worst of its deployments;
* ``capacity_requests_per_s`` is the most a deployment carries while meeting both targets, and
  ``utilisation`` the planned load over it.

Costs are attributed to workloads by the devices they occupy; idle devices of a bought instance are
charged to the workloads placed on that instance type, so workload costs add up to the total.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aicap.sizing.core.constraints import Objective
from aicap.sizing.core.dtypes import KvDtype, WeightDtype
from aicap.sizing.core.fleet import Fleet, Percentile

SCHEMA_VERSION = 2
SolverStatus = Literal["optimal", "time_limit"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)  # strict: true is not a number


MAX_USD = 1e15  # no plan costs a quadrillion dollars: larger figures are a corrupt or hand-made plan
Usd = Annotated[float, Field(ge=0, le=MAX_USD)]
"""US dollars: non-negative and below :data:`MAX_USD`."""


class Deployment(_Doc):
    """Replicas of one layout of a workload on one instance type, and what they promise."""

    instance_type: str
    hardware: str
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    ep: int = Field(1, ge=1)
    dp_attention: int = Field(
        1,
        ge=1,
        description="attention data-parallel groups per replica, one per device where > 1 "
        "(experts then split over all tp devices: ep = tp); max_running counts every group",
    )
    replicas: int = Field(ge=1)
    devices: int = Field(ge=1, description="devices all replicas occupy")
    instances: float = Field(ge=0, description="share of whole instances the replicas occupy")
    max_running: int = Field(ge=1, description="most requests one replica holds at once (KV-cache slots at the longest request)")
    weights_dtype: WeightDtype
    kv_dtype: KvDtype
    requests_per_s: float = Field(ge=0, description="planned load on all replicas of this deployment")
    capacity_requests_per_s: float = Field(ge=0, description="most these replicas carry within both targets")
    utilisation: float = Field(ge=0, description="planned load over capacity")
    ttft_ms: float = Field(
        ge=0,
        description="TTFT at the workload's percentile at the planned load (a verified plan: the larger of "
        "the model's and the simulation's)",
    )
    tpot_ms: float | None = Field(
        None,
        ge=0,
        description="TPOT at the workload's percentile at the planned load (decoders; a verified "
        "plan: the larger of the model's and the simulation's)",
    )
    usd_per_hour: Usd = Field(
        description="what the deployment is charged: the devices its workload's demand and its min_replicas floor need of it, and in "
        "proportion the rest of its instance type's devices (idle, or extra replicas filling them as free headroom: a deployment of "
        "those alone costs 0)"
    )
    usd_per_month: Usd | None = Field(
        None, description="usd_per_hour before rounding times the plan's hours_per_month (they add up to the workload's usd_per_month)"
    )
    efficiency_calibrated: bool


class Rejected(_Doc):
    """A device type that cannot carry a workload, with the reason of its best layout."""

    hardware: str
    reason: str


class Workload(_Doc):
    """One workload of the plan: demand, what is served, latency against targets and cost."""

    name: str
    model: str
    engine: str = Field("generic", description="serving-engine profile whose memory policy and scheduler limits the plan assumes")
    eager: bool = Field(False, description="the engine runs without CUDA graphs: on GPUs each step at least its kernels' launch time")
    speculative: str | None = Field(
        None, description="speculative decoding the plan assumes: method, draft tokens, acceptance and tokens per step (None: none)"
    )
    percentile: Percentile
    arrival_cv: float = Field(ge=0)
    requests_per_s: float | None = Field(None, ge=0, description="demanded rate (None: the throughput objective buys the most it can)")
    served_requests_per_s: float = Field(ge=0)
    capacity_requests_per_s: float = Field(ge=0)
    ttft_ms: float | None = Field(None, ge=0)
    tpot_ms: float | None = Field(None, ge=0)
    ttft_target_ms: float | None = None
    tpot_target_ms: float | None = None
    ttft_margin_pct: float | None = Field(None, description="100·(target − promised)/target; negative means a missed target")
    tpot_margin_pct: float | None = None
    error_band_pct: dict[str, float]
    usd_per_hour: Usd
    usd_per_month: Usd
    usd_per_million_output_tokens: Usd | None = Field(
        None,
        description="USD per million output tokens at the served rate; a disaggregated decode pool's counts both pools' cost, "
        "its prefill pool has none (it emits one token a request), nor has an encoder (it emits none)",
    )
    usd_per_million_requests: Usd | None = Field(
        None, description="USD per million requests at the served rate (an encoder's unit price: it answers a request with one item)"
    )
    disaggregated_role: Literal["prefill", "decode"] | None = Field(
        None, description="the pool of a disaggregated workload this entry is (its name ends .prefill or .decode); None: not split"
    )
    deployments: list[Deployment]
    rejected_hardware: list[Rejected] = Field(default_factory=list)


class Instance(_Doc):
    """Whole instances of one type that the plan buys."""

    instance_type: str
    cloud: str
    region: str
    hardware: str
    count: int = Field(ge=1)
    devices: int = Field(ge=1)
    devices_used: int = Field(ge=0)
    usd_per_hour: Usd
    price_date: str


class Alternative(_Doc):
    """The best plan restricted to one other device type, and why it lost."""

    hardware: str
    usd_per_month: Usd | None = None
    delta_usd_per_month: float | None = Field(None, ge=-MAX_USD, le=MAX_USD)
    why: str


class Totals(_Doc):
    """The fleet's cost and size."""

    usd_per_hour: Usd
    usd_per_month: Usd
    devices: int = Field(ge=0)
    devices_used: int = Field(ge=0)
    instances: int = Field(ge=0)


class CatalogueRef(_Doc):
    """Which catalogue and prices the plan was made with."""

    version: str
    price_dates: tuple[str, str] = Field(  # a JSON array; its items stay strict strings
        strict=False, description="the earliest and the latest price date of the instance types bought (one date twice if they share it)"
    )
    pricing: str

    @classmethod
    def bought(cls, version: str, pricing: str, dates: Iterable[str], catalogue_dates: tuple[str, str]) -> CatalogueRef:
        """The reference of a plan buying instance types priced on ``dates`` (ISO 8601).

        Its ``price_dates`` are their first and last, or the catalogue's whole range where it buys none.
        """
        seen = sorted(dates)
        return cls(version=version, pricing=pricing, price_dates=(seen[0], seen[-1]) if seen else catalogue_dates)


#: The candidates a plan's integer program chose among (:attr:`Solver.shortlist`).
ShortlistKind = Literal["fast", "thorough", "widened", "none"]


class Solver(_Doc):
    """How the integer program ended: ``optimal``, or ``time_limit`` with the incumbent and its gap; and over which candidates."""

    status: SolverStatus
    gap_pct: float = Field(ge=0)
    shortlist: ShortlistKind | None = Field(
        None,
        description="the candidates the program chose among, its optimum being over them: the fast or thorough shortlist "
        "(constraints.search), one widened for full availability caps, or none (every candidate); absent in plans made "
        "before it was recorded",
    )


class VerifiedWorkload(_Doc):
    """One workload's modelled and simulated tails (ms at its percentile; the worst of its deployments).

    ``promised_*`` is the performance model's tail, what the plan promised before simulation; the plan states the
    larger of it and ``simulated_*`` (the label is the statistic).
    """

    workload: str
    percentile: Percentile
    promised_ttft_ms: float = Field(description="the performance model's tail before simulation; the plan states the larger of it "
                                    "and the simulated one")  # fmt: skip
    simulated_ttft_ms: float = Field(description="the worst tail of the stretches of the deployments' simulated runs")
    ttft_target_ms: float | None = None
    promised_tpot_ms: float | None = Field(None, description="as promised_ttft_ms, for TPOT")
    simulated_tpot_ms: float | None = Field(None, description="as simulated_ttft_ms, for TPOT")
    tpot_target_ms: float | None = None
    holds: bool = Field(description="every deployment's queue is stable and its simulated percentiles meet the targets")


class VerifiedMiss(_Doc):
    """A deployment whose simulation missed its targets and made ``size --verify`` add capacity and re-solve.

    Tails in ms at the workload's percentile (the worst stretch of its run); ``None`` where none was simulated (nothing
    served, or a prefill pool's TPOT).
    """

    round: int = Field(ge=1, description="the re-solve the miss caused: 1 for the first plan's")
    workload: str
    hardware: str
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    dp_attention: int = Field(1, ge=1, description="attention groups per replica (as the deployment's)")
    hour: int | None = Field(None, ge=0, description="the busiest hour simulated (a plan over demand periods)")
    simulated_ttft_ms: float | None = None
    ttft_target_ms: float | None = None
    simulated_tpot_ms: float | None = None
    tpot_target_ms: float | None = None
    stable: bool = Field(description="the queue stayed bounded")
    rejected: int = Field(0, ge=0, description="requests longer than the replica's KV cache holds")

    def why(self) -> str:
        """The miss in words: ``TTFT 2,049.8 ms > 2,000``, the queue, requests the replica cannot hold, or nothing served."""
        parts = []
        if not self.stable:
            parts.append("queue grew without bound")
        if self.rejected:
            parts.append(f"{self.rejected:,} requests longer than its KV cache")
        if self.simulated_ttft_ms is None and not parts:  # nothing served, and neither the queue nor the cache says why
            parts.append("no request served")
        tails = (("TTFT", self.simulated_ttft_ms, self.ttft_target_ms), ("TPOT", self.simulated_tpot_ms, self.tpot_target_ms))
        for name, sim, target in tails:
            if sim is not None and target is not None and sim >= target:  # at it: a miss rounded to the target (4 decimals)
                parts.append(f"{name} {sim:,.1f} ms {'>' if sim > target else 'at'} {target:,.4g}")
        return ", ".join(parts) or "missed its targets"


REQUESTS_DESCRIPTION = "the fewest requests each deployment's run simulates (more where span_s of its traffic holds more)"
SPAN_DESCRIPTION = (
    "seconds of traffic each deployment's run is drawn to span: its rate times span_s requests, within requests_per_deployment "
    "and 200,000 (a replica above 55.6 req/s runs shorter); absent in plans made before (requests_per_deployment alone)"
)


class Verification(_Doc):
    """The plan played through the iteration-level simulator (``aicap size --verify``)."""

    requests_per_deployment: int = Field(gt=0, description=REQUESTS_DESCRIPTION)
    span_s: float | None = Field(None, ge=0, description=SPAN_DESCRIPTION)
    seed: int
    stretches: int | None = Field(None, ge=1, description="consecutive, equal stretches of each deployment's run (after warm-up) "
                                  "whose worst tail is stated and judged; absent in plans made before (the run's own tail)")  # fmt: skip
    resolves: int = Field(ge=0, description="times capacity was added and the plan re-solved until it held")
    derated: dict[str, float] = Field(
        default_factory=dict, description="capacity factor applied per 'workload/hardware/tpXppY' after simulation"
    )
    holds: bool
    workloads: list[VerifiedWorkload]
    misses: list[VerifiedMiss] = Field(default_factory=list, description="the deployments that missed in simulation, by the "
                                       "re-solve round they caused")  # fmt: skip


class Plan(_Doc):
    """A sized fleet (schema version 2)."""

    schema_version: Literal[2] = 2
    generated_by: str
    catalogue: CatalogueRef
    objective: Objective
    hours_per_month: float = Field(ge=1, le=744, description="hours a month the plan's instances are billed for (every hour, 730 or more, "
                                   "when its pricing is reserved or owned)")  # fmt: skip
    solver: Solver
    totals: Totals
    instances: list[Instance]
    workloads: list[Workload]
    alternatives: list[Alternative] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    inputs: Fleet
    verification: Verification | None = None

    def workload(self, name: str) -> Workload:
        """The workload called ``name`` (KeyError if absent)."""
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(name)

    def inconsistency(self) -> str | None:
        """What in a static plan does not add up, or ``None``: the checks a plan from ``aicap size`` always passes.

        ``check`` judges a plan by its own figures (totals, per-workload costs, devices), so an edited figure
        would pass a budget gate: the instances' hourly costs must sum to the total (each is rounded to cents),
        the monthly total be the hourly one times the plan's hours, the workloads' costs sum to the total (the
        chargeback shares every instance out), no instance type host more devices than the plan buys of it, and
        every workload serve the model its input workload names and carry the rate it names (``export`` and ``simulate``
        read the model from the inputs, so an edited one would launch or simulate another model than the plan says, and
        ``simulate`` replays the workload's rate: an edited one was simulated against capacity sized for the other).
        """
        given = {w.name: w for w in self.inputs.workloads}
        for w in self.workloads:
            src = given.get(w.name)
            if src is None:
                names = ", ".join(sorted(given)) or "none"
                return f"workload '{w.name}' is not one of the fleet's it was sized for (inputs.workloads: {names})"
            if src.model != w.model:
                return f"workload '{w.name}': model '{w.model}' is not the one it was sized for ('{src.model}' in inputs.workloads)"
            asked = src.rate  # the demand the plan carries (simulate replays it; check and diff judge it)
            if asked is not None and w.requests_per_s is not None and abs(w.requests_per_s - asked) > 1e-3 * asked:
                return (f"workload '{w.name}': requests_per_s {w.requests_per_s:g} is not the rate it was sized for "
                        f"({asked:.4g} in inputs.workloads)")  # fmt: skip
        tot = self.totals
        cents = 0.005 * (len(self.instances) + 1)
        if abs(sum(i.usd_per_hour for i in self.instances) - tot.usd_per_hour) > cents:
            return (f"totals.usd_per_hour {tot.usd_per_hour:,.2f} is not the instances' sum "
                    f"({sum(i.usd_per_hour for i in self.instances):,.2f})")  # fmt: skip
        if abs(tot.usd_per_hour * self.hours_per_month - tot.usd_per_month) > 0.006 * self.hours_per_month + 0.01:
            return (f"totals.usd_per_month {tot.usd_per_month:,.2f} is not totals.usd_per_hour × hours_per_month "
                    f"({tot.usd_per_hour * self.hours_per_month:,.2f})")  # fmt: skip
        if (why := shares_inconsistency([w.usd_per_month for w in self.workloads], tot.usd_per_month)) is not None:
            return why
        bought: dict[str, int] = {}
        device_of = {i.instance_type: i.hardware for i in self.instances}
        for i in self.instances:
            bought[i.instance_type] = bought.get(i.instance_type, 0) + i.devices
        held: dict[str, int] = {}
        for w in self.workloads:
            for d in w.deployments:
                held[d.instance_type] = held.get(d.instance_type, 0) + d.devices
                if d.devices != d.replicas * d.tp * d.pp:
                    n = d.replicas * d.tp * d.pp
                    return f"workload '{w.name}': {d.replicas} replica(s) of TP{d.tp}·PP{d.pp} hold {n} devices, not {d.devices}"
                if d.instance_type in device_of and device_of[d.instance_type] != d.hardware:
                    other = device_of[d.instance_type]
                    return f"workload '{w.name}': hardware {d.hardware} on {d.instance_type}, whose devices are {other}"
        for name, n in sorted(held.items()):
            if n > bought.get(name, 0):
                return f"its deployments hold {n} devices of {name}, but it buys {bought.get(name, 0)}"
        return None

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready document (``None`` fields of the inputs left out, as the user wrote them)."""
        doc = self.model_dump(mode="json")
        doc["inputs"] = self.inputs.model_dump(mode="json", exclude_none=True)
        if doc.get("verification") is None:
            doc.pop("verification", None)  # only plans sized with --verify carry one
        return doc


def shares_inconsistency(shares: list[float], total: float) -> str | None:
    """Whether the workloads' monthly cost shares [USD] sum to the plan's ``total``, each rounded to cents; else why not.

    ``|Σ shares − total| ≤ 0.005·n + 0.001·total + 0.01`` for ``n`` shares: their rounding, and the chargeback's.
    """
    if shares and abs(sum(shares) - total) > 0.005 * len(shares) + 0.001 * total + 0.01:
        return f"the workloads' usd_per_month sum to {sum(shares):,.2f}, not the total {total:,.2f}"
    return None
