"""``aicap size`` as a library call: fleet → candidates → integer program → plan.

:func:`size` filters the instance catalogue by the fleet's constraints and checks its workloads
(:mod:`aicap.sizing.plan.inputs`), builds every candidate of every workload (:mod:`aicap.sizing.plan.candidates`),
explains infeasibility in numbers before solving, solves the integer program
(:mod:`aicap.sizing.solve.milp`) and assembles the :class:`~aicap.sizing.core.plan.Plan`
(:mod:`aicap.sizing.plan.assemble`) with, per device type, the best alternative that lost and why.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.fleet import Fleet, Workload
from aicap.sizing.core.plan import Plan, Rejected, ShortlistKind, Solver
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.alternatives import alternatives as best_alternatives
from aicap.sizing.plan.alternatives import closeness, closest_reason, filters_of
from aicap.sizing.plan.assemble import build_plan, with_alternatives
from aicap.sizing.plan.candidates import Candidate, prune
from aicap.sizing.plan.disaggregate import DECODE, PREFILL, split
from aicap.sizing.plan.generate import all_candidates, allowed
from aicap.sizing.plan.inputs import allowed_instances as allowed_instances  # re-exported: callers size with it
from aicap.sizing.plan.inputs import check_workloads
from aicap.sizing.plan.inputs import per_item as per_item
from aicap.sizing.plan.layouts import MAX_SPAN
from aicap.sizing.plan.problem import describe_failure, latency_scores, problem_for
from aicap.sizing.plan.row_memo import shared_rows
from aicap.sizing.solve.milp import SolveStatus, solve

GIB = 2**30


#: Arrivals at least this bursty (coefficient of variation of inter-arrival times) get a warning on an unverified plan: against the
#: simulator, the model's p99 TTFT is 0.98-1.22x the simulated one at cv 1-2 and 0.80-0.90x at cv 3 on chat fleets
#: (Llama-3.1-8B and Qwen3-30B-A3B, 800/200 tokens, `size --verify`; docs/simulator.md), runs to 0.45x at cv 2 for prompts
#: near the step budget, and the p99 TPOT runs 5-12% low at cv 1.5-3.
BURSTY_CV = 2.0
BURSTY_NOTE = "the model's TTFT and TPOT tails run low for arrivals this bursty"


def bursty_warnings(fleet: Fleet) -> list[str]:
    """The warning an unverified plan carries for workloads arriving with ``arrival_cv ≥ BURSTY_CV`` (none otherwise)."""
    bursty = [f"'{w.name}' (cv {w.arrival_cv:g})" for w in fleet.workloads if w.arrival_cv >= BURSTY_CV]
    if not bursty:
        return []
    return [f"workload(s) {', '.join(bursty)}: {BURSTY_NOTE} (a simulated p99 TTFT up to 1.15x the model's at cv 3 and 1.8x for "
            "prompts that fill much of the step budget, a p99 TPOT up to 1.35x and 1.6x for prompts near the budget); "
            "size --verify plays the plan through the simulator and states the larger of the two"]  # fmt: skip


def without_bursty_warning(warnings: list[str]) -> list[str]:
    """``warnings`` less :func:`bursty_warnings`' (a verified plan states the simulated tails)."""
    return [w for w in warnings if BURSTY_NOTE not in w]


def _diagnose(w: Workload, cat: CatalogueLike, cands: list[Candidate], insts: list[InstanceSpec], engine: str | None) -> str:
    """One line naming the binding constraint for a workload with no feasible candidate (served on ``engine``, a profile id)."""
    model = cat.model(w.model)
    if not cands:  # the workload's own filters left it no instance type at all: name them, not an empty list of devices
        names = {i.name for i in insts}
        outside = w.instance_types is not None and not set(w.instance_types) & names
        return (f"workload '{w.name}' ({model.id}): no allowed instance type passes its filters ({filters_of(w)})"
                + ("; none of its instance_types is among those the constraints allow (clouds, regions, pricing, hardware)"
                   if outside else ""))  # fmt: skip
    reasons = [c.reason for c in cands if c.reason]
    if reasons and all("supports none" in r or "serves none" in r for r in reasons):
        detail = "; ".join(sorted(set(reasons)))
        return (f"workload '{w.name}' ({model.id}): no allowed device has kernels for its allowed precisions ({detail}); "
                "allow another precision (e.g. bf16) or another device")  # fmt: skip
    if reasons and all("memory" in r or "supports none" in r or "no tensor-parallel" in r for r in reasons):
        from aicap.sizing.perf.describe import params

        total, _ = params(model)
        smallest = min(BYTES_PER_ELEMENT.get(p, 2.0) for p in allowed(w, model))
        best = max(insts, key=lambda i: i.devices * i.memory_gib_per_device(cat.device(i.device)))
        per_device = best.memory_gib_per_device(cat.device(best.device))
        span = f"across up to {MAX_SPAN} instances of a GPU type with a sourced network, else inside one"
        spec = engine_for(cat, engine).spec  # an unset engine is the catalogue's default profile; generic has none
        if spec is not None and not spec.spans_instances:
            spanning = ", ".join(sorted(e.id for e in cat.engines.values() if e.spans_instances))
            span = (f"inside one instance ({spec.name}'s profile records no start of a replica over several machines; "
                    f"engines that span instances: {spanning or 'none in this catalogue'})")  # fmt: skip
        return (f"workload '{w.name}': {model.id} needs ≥ {total * smallest / GIB:,.0f} GiB for weights alone at its smallest allowed "
                f"precision, plus KV cache for {w.max_context:,} tokens, {span}; the largest allowed instance "
                f"({best.name}) has {best.devices}×{per_device:g} GiB")  # fmt: skip
    by_hw: dict[str, list[Candidate]] = {}
    for c in cands:
        by_hw.setdefault(c.hardware, []).append(c)
    why = {h: r for h, xs in by_hw.items() if (r := closest_reason(xs)) is not None}
    nearest = sorted(why, key=lambda h: (closeness(why[h]), h))[:3]  # the devices that came closest, each by its best layout
    detail = "; ".join(f"{h}: {why[h]}" for h in nearest)
    return f"workload '{w.name}' ({model.id}) has no deployment meeting its targets on the allowed instances: {detail}"


SHORTLIST_STANDALONE = 6  # candidates per workload kept for what serving the workload alone on them costs
SHORTLIST_UNIT_COST = 4  # and for their cost per request/s (what sharing instances can reach)
SHORTLIST_DEVICE_TYPES = 5  # and the cheapest per request/s on each of the device types cheapest that way
SHORTLIST_LATENCY = 4  # and, for the latency objective, for their latency


def standalone_cost(x: Candidate, rate: float, inst: InstanceSpec, pricing: str) -> float:
    """USD/hour of serving ``rate`` requests/s with candidate ``x`` alone: whole instances, ``⌈⌈λ/q⌉·d/D⌉·p``."""
    one = np.ones(1)
    return float(standalone_costs(rate * one, x.capacity_rps * one, x.devices * one, inst.devices * one,
                                  float(inst.price(pricing) or 0.0) * one)[0])  # fmt: skip


def standalone_costs(rate: NDArray[np.float64], capacity: NDArray[np.float64], devices: NDArray[np.float64],
                     per_instance: NDArray[np.float64], price: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """:func:`standalone_cost` of many candidates: ``⌈⌈λ/q⌉·d/D⌉·p`` USD/hour, at least one replica each."""
    replicas = np.maximum(np.ceil(rate / np.maximum(capacity, 1e-12) - 1e-9), 1.0)
    return np.asarray(np.ceil(replicas * devices / per_instance) * price, dtype=float)


def shortlist(fleet: Fleet, cands: list[Candidate], insts: list[InstanceSpec],
              rates: Mapping[str, float] | None = None) -> list[Candidate]:  # fmt: skip
    """Keep, per workload, the candidates a cheapest (or fastest) plan plausibly uses.

    A heuristic bound on the integer program's size, so that many workloads solve in seconds: the
    ``SHORTLIST_STANDALONE`` cheapest ways to serve the workload alone in whole instances (so the plan
    is never dearer than the best single-workload plans side by side), the ``SHORTLIST_UNIT_COST``
    cheapest per request/s (what sharing instances with other workloads can reach), the cheapest per
    request/s on each of the ``SHORTLIST_DEVICE_TYPES`` best device types (so workloads can share one
    device type's instances), and for the latency objective the ``SHORTLIST_LATENCY`` fastest that the
    budget buys alone, and the fastest so on each device type. Packing several workloads on one instance
    type can, rarely, prefer a dropped candidate; the plan is then optimal among the kept ones. Dominated
    candidates are already gone (:func:`prune`); with ``single_type`` every candidate stays. ``rates``
    replaces workloads' demands (req/s) in the standalone costs: what is left to carry once capped types are full.
    That shortlist, and a thorough one (``constraints.search``: ``thorough``, or ``auto`` for a fleet of at most
    :data:`~aicap.sizing.core.constraints.THOROUGH_AUTO_WORKLOADS` workloads), also keeps the cheapest replica on each of
    those device types: what carries a remainder. On the 100-workload benchmark fleet that makes the plan 4.4% cheaper.
    """
    c = fleet.constraints
    names = {w.name: k for k, w in enumerate(fleet.workloads)}
    mine = [x for x in cands if x.workload in names]
    if c.single_type or not mine:
        return mine  # one device type for all: every type must stay available
    pricing = c.price_model
    by_name = {i.name: i for i in insts}
    # Per instance type once: its rank by name (ties are broken by name, as sorted() would), price and devices.
    kinds = sorted({x.instance for x in mine})
    inst_rank = {n: k for k, n in enumerate(kinds)}
    hw_code = {h: k for k, h in enumerate(sorted({x.hardware for x in mine}))}
    fields = np.array([(names[x.workload], inst_rank[x.instance], hw_code[x.hardware], x.devices, x.tp, x.pp) for x in mine],
                      dtype=np.int64)  # fmt: skip
    w, inst, hw, tp, pp = fields[:, 0], fields[:, 1], fields[:, 2], fields[:, 4], fields[:, 5]
    dev = fields[:, 3].astype(float)
    price = np.array([float(by_name[n].price(pricing) or 0.0) for n in kinds])[inst]
    per = np.array([float(by_name[n].devices) for n in kinds])[inst]
    cap = np.array([x.capacity_rps for x in mine])
    pos = np.arange(len(mine))
    unit = price * dev / per / np.maximum(cap, 1e-12)  # cost_per_rps, operation for operation
    keep = np.zeros(len(mine), dtype=bool)

    def ranked(*keys: NDArray[np.float64] | NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Candidates ordered by workload, then ``keys``, then (instance, tp, pp, position); each one's rank in its workload."""
        order = np.lexsort((pos, pp, tp, inst, *reversed(keys), w))
        ws = w[order]
        return order, np.arange(ws.size) - np.searchsorted(ws, ws, side="left")

    order, rank = ranked(unit)
    keep[order[rank < SHORTLIST_UNIT_COST]] = True
    # The cheapest per request/s on each device type, for the SHORTLIST_DEVICE_TYPES types cheapest that way.
    pair = w[order] * len(hw_code) + hw[order]
    _, first = np.unique(pair, return_index=True)
    first.sort()
    fw = w[order[first]]
    top = first[np.arange(fw.size) - np.searchsorted(fw, fw, side="left") < SHORTLIST_DEVICE_TYPES]
    keep[order[top]] = True
    if rates or c.thorough(len(fleet.workloads)):
        # A thorough search (and the re-shortlist at what is left once capped types are full): on those device types, also
        # the cheapest replica (then per request/s), what carries a remainder that whole replicas of the best layout
        # overshoot (three TP2 replicas and one TP1 cost a device less than four TP2). Not on every shortlist
        # (constraints.THOROUGH_AUTO_WORKLOADS): on the 1,000-workload benchmark fleet these rows save 5.7% but take the
        # size from 4.4 s to 29 s, nearly all of it in HiGHS.
        replica = price * dev / per
        by_replica = np.lexsort((pos, pp, tp, inst, unit, replica, hw, w))
        pair_r = w[by_replica] * len(hw_code) + hw[by_replica]
        _, first_r = np.unique(pair_r, return_index=True)
        keep[by_replica[first_r[np.isin(pair_r[first_r], pair[top])]]] = True
    given = {wl.name: wl.rate for wl in fleet.workloads} | dict(rates or {})
    rate = np.array([np.nan if given[wl.name] is None else given[wl.name] for wl in fleet.workloads])[w]
    alone = standalone_costs(np.where(np.isfinite(rate), rate, 0.0), cap, dev, per, price)
    if np.isfinite(rate).any():
        order, rank = ranked(np.where(np.isfinite(rate), alone, 0.0), unit)
        keep[order[(rank < SHORTLIST_STANDALONE) & np.isfinite(rate[order])]] = True
    if c.objective == "latency":
        # The fastest that the budget buys serving the workload alone (the fastest of all may each cost more than
        # the whole budget), and the fastest so affordable on each device type.
        budget = c.budget_usd_per_month / c.billed_hours() if c.budget_usd_per_month is not None else np.inf
        score = np.where(alone <= budget * (1 + 1e-9), latency_scores(mine, fleet), np.inf)
        order, rank = ranked(score)
        keep[order[(rank < SHORTLIST_LATENCY) & np.isfinite(score[order])]] = True
        pair = w[order] * len(hw_code) + hw[order]
        _, first = np.unique(pair, return_index=True)
        keep[order[first[np.isfinite(score[order[first]])]]] = True
    return [x for x, k in zip(mine, keep.tolist(), strict=True) if k]


def deployment_key(workload: str, hardware: str, tp: int, pp: int, dp_attention: int = 1) -> str:
    """The name of a (workload, device, layout) in :func:`size`'s ``derate``: ``'workload/hardware/tpXppY'`` (``…dpaD``: DP attention)."""
    return f"{workload}/{hardware}/tp{tp}pp{pp}" + (f"dpa{dp_attention}" if dp_attention > 1 else "")


def _derated(cands: dict[str, list[Candidate]], derate: Mapping[str, float]) -> dict[str, list[Candidate]]:
    """Candidates with the capacity of each derated (workload, device, layout) multiplied by its factor (0 drops it)."""
    if not derate:
        return cands
    out: dict[str, list[Candidate]] = {}
    for name, mine in cands.items():
        factors = [derate.get(deployment_key(x.workload, x.hardware, x.tp, x.pp, x.dp_attention), 1.0) for x in mine]
        out[name] = [x if f == 1.0 else replace(x, capacity_rps=x.capacity_rps * f) for x, f in zip(mine, factors, strict=True) if f > 0]
    return out


def size(fleet: Fleet, cat: CatalogueLike, *, alternatives: bool = True, time_limit_s: float = 20.0,
         derate: Mapping[str, float] | None = None, jobs: int | None = None) -> Plan:  # fmt: skip
    """Size a fleet: the cheapest (or fastest, or most-serving) set of whole instances.

    A workload whose demand is an hourly profile is sized at its peak, and a list of pricing models
    prices with its first: the static peak plan (:func:`aicap.sizing.plan.periods.size_periods` plans
    such a fleet hour by hour).

    ``derate`` multiplies the per-replica capacity of some (workload, device, layout) candidates, keyed
    by :func:`deployment_key` (factors in ``[0, 1]``; 0 drops the layout): what :func:`aicap.sizing.sim.verify.size_verified`
    learns from simulating a plan.

    ``jobs``: processes the evaluation of candidates may use (``None``: every available core; only an
    evaluation of tens of thousands of rows, on Linux, from a single-threaded caller, is shared out:
    :mod:`aicap.sizing.plan.evaluation`). The plan is the same whatever it is.

    Raises
    ------
    InfeasibleError
        With the binding constraint: memory, latency target, availability caps or budget; or when the
        solver found no plan within its time limit (then the message says it is not proven infeasible).
    """
    fleet = per_item(fleet, cat)
    with _cyclic_gc_paused(), shared_rows():
        plan = _size(fleet, cat, alternatives, time_limit_s, derate, jobs)
        if not _pools_apart(plan, cat):
            return plan
        # A disaggregated workload's pools landed in different clouds or regions: the KV hand-off cannot run at the
        # planned link there. Keep the pools (only them) in each (cloud, region) in turn and take the cheapest plan.
        best: Plan | None = None
        for place in sorted({(i.cloud, i.region) for i in allowed_instances(fleet, cat)[0]}):
            try:
                p = _size(fleet, cat, alternatives, time_limit_s, derate, jobs, pools_in=place)
            except (InfeasibleError, InputError):
                continue
            if not _pools_apart(p, cat) and (best is None or p.totals.usd_per_month < best.totals.usd_per_month):
                best = p
        if best is None:
            raise InfeasibleError("a disaggregated workload's prefill and decode pools find no cloud and region that holds both "
                                  "(the KV cache moves between them over the instance network): allow more instance types, or "
                                  "give disaggregation.transfer_gbps for a slower link")  # fmt: skip
        return best


def _pools_apart(plan: Plan, cat: CatalogueLike) -> bool:
    """Whether some disaggregated workload's prefill and decode pools use instances in different (cloud, region)s."""
    where: dict[str, set[tuple[str, str]]] = {}
    for w in plan.workloads:
        for suffix in (PREFILL, DECODE):
            if w.name.endswith(suffix):
                base = w.name.removesuffix(suffix)
                for d in w.deployments:
                    i = cat.instance(d.instance_type)
                    where.setdefault(base, set()).add((i.cloud, i.region))
    return any(len(places) > 1 for places in where.values())


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration (reference counting still frees everything).

    Sizing a large fleet makes a few hundred thousand short-lived, acyclic objects (rows, candidates); each
    of them counts towards the collector's thresholds, which then walks every live object several times
    over for nothing: about 0.5 s of a 1,000-workload size. Cycles made meanwhile are collected afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _size(fleet: Fleet, cat: CatalogueLike, alternatives: bool, time_limit_s: float, derate: Mapping[str, float] | None,
          jobs: int | None, pools_in: tuple[str, str] | None = None) -> Plan:  # fmt: skip
    """:func:`size` with the collector paused; ``pools_in`` keeps disaggregated pools in one (cloud, region)."""
    insts, warnings = allowed_instances(fleet, cat)
    warnings += bursty_warnings(fleet)
    if untimed := [f"'{w.name}'" for w in fleet.workloads if w.slo.ttft_ms is None and w.slo.tpot_ms is None]:
        warnings.append(f"workload(s) {', '.join(untimed)}: no TTFT or TPOT target, so replicas are sized by memory and throughput "
                        "alone and the TTFT and TPOT shown are what that load gives (minutes, for long prompts); give slo.ttft_ms and "
                        "slo.tpot_ms (--ttft-ms, --tpot-ms) to bound them")  # fmt: skip
    c0 = fleet.constraints
    if c0.billed_hours() > c0.hours_per_month:  # a committed model: hours_per_month shortens nothing it bills
        warnings.append(f"pricing {c0.price_model} bills every hour of the month ({c0.billed_hours():g}), not the "
                        f"{c0.hours_per_month:g} hours_per_month given, which on-demand capacity would be billed for: compare "
                        "with --pricing on_demand")  # fmt: skip
    if any(w.profile is not None for w in fleet.workloads) or len(fleet.constraints.pricing_models) > 1:
        warnings.append(f"a static plan: each workload sized at its busiest hour, priced {fleet.constraints.price_model} "
                        "(size_periods plans a fleet with hourly profiles or several pricing models hour by hour)")  # fmt: skip
    check_workloads(fleet, cat)  # the user's workloads, named as given (the pools split from them are checked below)
    given = fleet
    fleet, pools = split(fleet, cat, insts, derate)
    warnings += pools
    if pools_in is not None:
        there = [i.name for i in insts if (i.cloud, i.region) == pools_in]
        fleet = fleet.model_copy(update={"workloads": [w.model_copy(update={"instance_types": there}) if w.disaggregated_role else w
                                                       for w in fleet.workloads]})  # fmt: skip
        warnings.append(f"disaggregated prefill and decode pools kept in one cloud and region ({pools_in[0]} {pools_in[1]}): "
                        "the KV cache moves between them over the instance network")  # fmt: skip
    if fleet is not given:
        check_workloads(fleet, cat)
    c = fleet.constraints
    raw = all_candidates(fleet, cat, insts, workers=jobs)
    all_cands = _derated(raw, derate or {})
    if c.price_model == "spot" and c.spot_headroom > 0:
        # Spot instances keep spot_headroom of their capacity free against interruptions, as the hourly planner keeps that
        # share of their devices: every replica carries (1 − h) of what it could (a static plan is spot through and through).
        all_cands = {n: [replace(x, capacity_rps=x.capacity_rps * (1.0 - c.spot_headroom)) for x in xs] for n, xs in all_cands.items()}
        warnings.append(f"spot: each replica is planned at {1.0 - c.spot_headroom:.0%} of its capacity (spot_headroom "
                        f"{c.spot_headroom:g}), the rest kept against interruptions"
                        + ("; spot_max_share applies to plans over demand periods, and this static plan is all spot"
                           if "spot_max_share" in c.model_fields_set and c.spot_max_share < 1.0 else ""))  # fmt: skip
    for name, mine in all_cands.items() if derate else ():  # only a derate can empty a workload's candidates
        if any(x.feasible for x in raw[name]) and not any(x.feasible for x in mine):
            raise InfeasibleError(f"every layout of workload '{name}' that meets its targets was dropped by the simulation of "
                                  "the plan (size --verify): they reject requests longer than one pipeline stage's share of "
                                  "the KV cache; allow devices with more memory, or shorten the longest request")  # fmt: skip
    rejected: dict[str, list[Rejected]] = {}
    feasible: list[Candidate] = []
    for w in fleet.workloads:
        mine = all_cands[w.name]
        good = [x for x in mine if x.feasible]
        feasible += good
        if not mine and (w.hardware or w.min_network_gbps):
            kinds = f" ({'/'.join(w.network_kinds)})" if w.network_kinds else ""
            need = ([f"devices {', '.join(w.hardware)}"] if w.hardware else []) + (
                [f"at least {w.min_network_gbps:g} Gbit/s of sourced scale-out network{kinds} per device"] if w.min_network_gbps else []
            )
            raise InfeasibleError(f"workload '{w.name}' needs {' and '.join(need)}: no allowed instance type has them "
                                  f"(constraints: clouds={c.clouds or 'any'}, hardware={c.hardware or 'any'})")  # fmt: skip
        if not good:  # the devices it came closest on may not be the cause: name the types the pricing model left out
            reasons = {x.reason for x in mine}
            if reasons and all(r is not None and " does not run on " in r for r in reasons):  # the engine and devices asked for clash
                spec = engine_for(cat, fleet.constraints.engine_of(w)).spec
                runs = f"; it runs on: {', '.join(spec.runs_on)}" if spec is not None else ""
                raise InputError(f"workload '{w.name}': {'; '.join(sorted(r for r in reasons if r))}{runs}: allow such a device "
                                 "(hardware) or choose another engine")  # fmt: skip
            unpriced = [x for x in warnings if "have no published" in x]
            raise InfeasibleError(_diagnose(w, cat, mine, insts, fleet.constraints.engine_of(w)) + "".join(f"; {x}" for x in unpriced))
        ok = {x.hardware for x in good}
        by_hw: dict[str, list[Candidate]] = {}
        for x in mine:
            if x.hardware not in ok and x.reason:
                by_hw.setdefault(x.hardware, []).append(x)
        why = {h: r for h, xs in by_hw.items() if (r := closest_reason(xs)) is not None}
        rejected[w.name] = [Rejected(hardware=h, reason=r) for h, r in sorted(why.items())]
    every = prune(feasible)
    short = shortlist(fleet, every, insts)
    kind: ShortlistKind = "none" if len(short) == len(every) else "thorough" if c.thorough(len(fleet.workloads)) else "fast"
    try:
        plan = _solve(fleet, cat, insts, short, rejected, warnings, time_limit_s, kind)
    except InfeasibleError:
        if len(short) == len(every):
            raise
        # The shortlist ranks candidates alone, blind to caps and the budget: what they exclude may be what fits.
        plan = _solve(fleet, cat, insts, every, rejected, warnings, time_limit_s, "none")
    else:
        full = {i.hardware for i in plan.instances if i.instance_type in c.availability and i.count >= c.cap(i.instance_type)}
        if full and len(short) < len(every):
            # A type capped by `availability` is full: the candidates the shortlist dropped on its device (other
            # instance types, other layouts) may carry the rest for less. Those are added, not every candidate: a
            # thousand workloads' every candidate is a program HiGHS does not finish in its time limit. (The default
            # per-type cap, a guard against unit slips, does not trigger it: at a thousand workloads it binds on
            # g6e.xlarge and the wider program took 14 s where the plan takes 4.)
            # And what is left once the full types carry their capacity is shortlisted again on the other types, at
            # that residual rate: a smaller rate can prefer smaller replicas the whole rate's ranking dropped.
            capped = {i.instance_type for i in plan.instances if i.hardware in full and i.instance_type in c.availability
                      and i.count >= c.cap(i.instance_type)}  # fmt: skip
            carried = {w.name: sum(d.capacity_requests_per_s for d in w.deployments if d.instance_type in capped) for w in plan.workloads}
            left = {wl.name: max(wl.rate - carried.get(wl.name, 0.0), 0.0) for wl in fleet.workloads if wl.rate is not None}
            rest = shortlist(fleet, [x for x in every if x.instance not in capped], insts, rates=left)
            kept = {id(x) for x in short}
            more = short + [x for x in every if x.hardware in full and id(x) not in kept]
            kept |= {id(x) for x in more}
            more += [x for x in rest if id(x) not in kept]
            widened: ShortlistKind = "none" if len(more) == len(every) else "widened"
            wider = _solve(fleet, cat, insts, more, rejected, warnings, time_limit_s, widened)
            if c.objective != "cost" or wider.totals.usd_per_month < plan.totals.usd_per_month - 0.005:
                plan = wider
    if alternatives:
        alts = best_alternatives(fleet, insts, all_cands, plan, time_limit_s)
        if c.objective == "cost" and any(a.delta_usd_per_month is not None and a.delta_usd_per_month < -0.01 for a in alts):
            # The shortlist cost money: one device type alone is cheaper. Solve over every candidate instead.
            plan = _solve(fleet, cat, insts, every, rejected, warnings, time_limit_s, "none")
            alts = best_alternatives(fleet, insts, all_cands, plan, time_limit_s)
        plan = with_alternatives(plan, alts)
    return plan


def _solve(fleet: Fleet, cat: CatalogueLike, insts: list[InstanceSpec], feasible: list[Candidate], rejected: dict[str, list[Rejected]],
           base_warnings: list[str], time_limit_s: float, kind: ShortlistKind) -> Plan:  # fmt: skip
    """Solve the integer program over ``feasible`` (a shortlist of ``kind``) and assemble the plan (with its own warnings)."""
    c = fleet.constraints
    warnings = list(base_warnings)
    prob = problem_for(fleet, feasible, insts, time_limit_s)
    sol = solve(prob)
    if not sol.has_solution:
        raise InfeasibleError(describe_failure(fleet, feasible, insts, prob, sol))
    if (
        c.objective == "cost"
        and c.budget_usd_per_month is not None
        and sol.cost_per_hour * c.billed_hours() > c.budget_usd_per_month * (1 + 1e-9)
    ):
        raise InfeasibleError(f"budget ${c.budget_usd_per_month:,.0f}/month is below the cheapest plan, "
                              f"${sol.cost_per_hour * c.billed_hours():,.0f}/month")  # fmt: skip
    if c.objective == "throughput" and float(np.sum(sol.served)) <= 0:
        raise InfeasibleError(f"budget ${c.budget_usd_per_month:,.0f}/month buys no instance that serves any workload; "
                              "raise the budget or allow cheaper instance types")  # fmt: skip
    if sol.status == SolveStatus.TIME_LIMIT:
        warnings.append(f"the integer program hit its {time_limit_s:g} s time limit: this plan is the best found, "
                        f"within {100 * sol.gap:.2g}% of optimal")  # fmt: skip
    priors = sorted({x.hardware for x, r in zip(feasible, sol.replicas, strict=True) if r > 0
                     and not cat.efficiency_for(cat.device(x.hardware)).calibrated})  # fmt: skip
    if priors:
        warnings.append(f"{', '.join(priors)} efficiency factors are not fitted on measurements of that hardware (inherited from a "
                        "measured family, or priors); expect errors beyond the ± bands")  # fmt: skip
    chosen = [(x, int(r), float(s) if c.objective == "latency" else float("nan"))
              for x, r, s in zip(feasible, sol.replicas, sol.share, strict=True) if r > 0]  # fmt: skip
    counts = {insts[t].name: int(n) for t, n in enumerate(sol.instances) if n > 0}
    served = {w.name: float(sol.served[k]) for k, w in enumerate(fleet.workloads)}
    solver = Solver(status="optimal" if sol.status == SolveStatus.OPTIMAL else "time_limit",
                    gap_pct=round(100 * float(sol.gap), 4) if np.isfinite(sol.gap) else 0.0, shortlist=kind)  # fmt: skip
    return build_plan(fleet, cat, insts, chosen, counts, served, rejected, solver, warnings)
