"""The plan document that ``aicap size`` prints and ``check``/``diff``/``simulate`` read.

Costs are attributed to workloads by the devices they occupy: a deployment pays
``replicas · devices · p_t / D_t`` scaled by ``n_t·D_t / used_t`` so idle devices in bought instances
are charged to the workloads on that instance type and the workload costs add up to the total.
Latencies are at the workload's percentile, at its planned load: the demand is split across its
deployments in proportion to their capacity and each replica's TTFT percentile follows the M/M/c
approximation of :mod:`aicap.sizing.serve.queueing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aicap.sizing.calibrate.accuracy import error_bands
from aicap.sizing.core.fleet import PERCENTILES, Fleet
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.plan.candidates import Candidate
from aicap.sizing.serve.queueing import wait_quantile
from aicap.sizing.solve.milp import Solution

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Alternative:
    """The best plan restricted to one other device type, and why it lost."""

    hardware: str
    usd_per_month: float | None
    delta_usd_per_month: float | None
    why: str


def _r(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _money(x: float) -> float:
    return round(x, 2)


@dataclass
class Plan:
    """A sized fleet (JSON-ready via :meth:`to_dict`)."""

    fleet: Fleet
    catalogue_version: str
    price_dates: tuple[str, str]
    totals: dict[str, Any]
    instances: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    alternatives: list[Alternative] = field(default_factory=list)

    @classmethod
    def build(cls, fleet: Fleet, cat: Any, insts: list[InstanceSpec], feasible: list[Candidate], sol: Solution,
              demand: dict[str, float]) -> Plan:  # fmt: skip
        """Assemble the plan from the solver's counts."""
        c = fleet.constraints
        hours = c.hours_per_month
        by_name = {i.name: i for i in insts}
        used = {i.name: 0 for i in insts}
        chosen = [(cand, r) for cand, r in zip(feasible, sol.replicas, strict=True) if r > 0]
        for cand, r in chosen:
            used[cand.instance] += r * cand.devices
        counts = {i.name: n for i, n in zip(insts, sol.instances, strict=True) if n > 0}
        bands = error_bands()
        instances: list[dict[str, Any]] = []
        for name, n in sorted(counts.items()):
            inst = by_name[name]
            price = float(inst.price(c.pricing) or 0.0)
            instances.append({"instance_type": name, "cloud": inst.cloud, "region": inst.region, "hardware": inst.device, "count": n,
                              "devices": n * inst.devices, "devices_used": used[name], "usd_per_hour": _money(n * price),
                              "price_date": inst.price_date.isoformat()})  # fmt: skip
        workloads: list[dict[str, Any]] = []
        for w in fleet.workloads:
            mine = [(cand, r) for cand, r in chosen if cand.workload == w.name]
            cap_total = sum(cand.capacity_rps * r for cand, r in mine)
            served = sol.served[[x.name for x in fleet.workloads].index(w.name)] if sol.served else demand[w.name]
            deps: list[dict[str, Any]] = []
            for cand, r in mine:
                inst = by_name[cand.instance]
                price = float(inst.price(c.pricing) or 0.0)
                scale = counts[cand.instance] * inst.devices / max(used[cand.instance], 1)
                usd = r * cand.devices * price / inst.devices * scale
                lam = served * cand.capacity_rps * r / max(cap_total, 1e-12) / r
                servers = max(cand.batch, 1) if cand.tpot_ms is not None else 1
                wait = float(wait_quantile(servers, lam, cand.service_s, PERCENTILES[w.slo.percentile]))
                deps.append({
                    "instance_type": cand.instance, "hardware": cand.hardware, "instances": _r(r * cand.devices / inst.devices, 3),
                    "devices": r * cand.devices, "tp": cand.tp, "pp": cand.pp, "replicas": r, "batch": cand.batch,
                    "weights_dtype": cand.weights_dtype, "kv_dtype": cand.kv_dtype,
                    "ttft_ms": _r(cand.ttft_ms + wait * 1e3), "tpot_ms": None if cand.tpot_ms is None else _r(cand.tpot_ms),
                    "capacity_requests_per_s": _r(cand.capacity_rps * r), "utilisation": _r(lam * cand.service_s / servers, 3),
                    "usd_per_hour": _money(usd),
                    "efficiency_calibrated": cat.efficiency_for(cat.device(cand.hardware)).calibrated,
                })  # fmt: skip
            usd_h = sum(d["usd_per_hour"] for d in deps)
            out_tok_h = served * w.mean_output * 3600.0
            workloads.append({
                "name": w.name, "model": w.model, "requests_per_s": _r(demand[w.name]), "served_requests_per_s": _r(served),
                "capacity_requests_per_s": _r(cap_total), "percentile": w.slo.percentile,
                "ttft_ms": max((d["ttft_ms"] for d in deps), default=None),
                "tpot_ms": max((d["tpot_ms"] for d in deps if d["tpot_ms"] is not None), default=None),
                "ttft_target_ms": w.slo.ttft_ms, "tpot_target_ms": w.slo.tpot_ms,
                "error_band_pct": {k: bands[k] for k in ("ttft", "tpot") if k in bands},
                "usd_per_hour": _money(usd_h), "usd_per_month": _money(usd_h * hours),
                "usd_per_million_output_tokens": _money(usd_h / out_tok_h * 1e6) if out_tok_h > 0 else None,
                "deployments": deps,
            })  # fmt: skip
        total_h = sum(i["usd_per_hour"] for i in instances)
        totals = {"usd_per_hour": _money(total_h), "usd_per_month": _money(total_h * hours),
                  "devices": sum(i["devices"] for i in instances), "instances": sum(i["count"] for i in instances)}  # fmt: skip
        return cls(fleet, cat.version, cat.price_dates, totals, instances, workloads)

    def to_dict(self) -> dict[str, Any]:
        """The plan document (schema version 1)."""
        try:
            ver = version("aicap")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            ver = "unknown"
        c = self.fleet.constraints
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_by": f"aicap {ver}",
            "catalogue": {"version": self.catalogue_version, "price_dates": list(self.price_dates), "pricing": c.pricing},
            "objective": c.objective,
            "hours_per_month": c.hours_per_month,
            "totals": self.totals,
            "instances": self.instances,
            "workloads": self.workloads,
            "alternatives": [
                {
                    "hardware": a.hardware,
                    "usd_per_month": None if a.usd_per_month is None else _money(a.usd_per_month),
                    "delta_usd_per_month": None if a.delta_usd_per_month is None else _money(a.delta_usd_per_month),
                    "why": a.why,
                }
                for a in self.alternatives
            ],
            "inputs": self.fleet.model_dump(mode="json", exclude_none=True),
        }
