"""``aicap check`` (budget and policy gate) and ``aicap diff`` (what a change costs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aicap.cli.render import Cents, Format, FormatOpt, Table, View, emit, flat_table
from aicap.cli.state import catalogue, guarded, info


def _fmt_usd(x: Any) -> Any:
    return f"${x:,.0f}" if isinstance(x, int | float) else x


def _money(key: str, value: Any) -> Any:
    """A dollar figure to the cent (a delta then equals head − base as shown); other values as they are."""
    return Cents(value) if key.startswith("usd") and isinstance(value, int | float) and not isinstance(value, bool) else value


def diff_view(doc: dict[str, Any]) -> View:
    """Tables for a diff: the headline and totals, then one row per workload."""
    t = doc["totals"]
    total_rows = [
        [k, *(_money(k, t[side].get(k)) for side in ("base", "head", "delta"))]
        for k in ("usd_per_hour", "usd_per_month", "devices", "instances")
    ]
    rows = []
    for w in doc["workloads"]:
        a, b, d = w["base"] or {}, w["head"] or {}, w["delta"]
        # as the size table writes them: TTFT in whole ms, TPOT to a tenth (a TPOT of 6.3 ms read "6")
        lat = [f"{a[k]:,{f}} → {b[k]:,{f}}" if a.get(k) is not None and b.get(k) is not None else None
               for k, f in (("ttft_ms", ".0f"), ("tpot_ms", ".1f"))]  # fmt: skip
        margins = [None if d.get(k) is None else f"{d[k]:+.1f}" for k in ("ttft_margin_pct", "tpot_margin_pct")]  # one decimal, signed
        rows.append([w["workload"], w["status"], a.get("hardware"), b.get("hardware"), d.get("devices"), _money("usd", a.get("usd_per_month")),
                     _money("usd", b.get("usd_per_month")), _money("usd", d.get("usd_per_month")), lat[0], lat[1], *margins])  # fmt: skip
    tables = [
        Table(f"Change: {doc['headline']}", ["", "base", "head", "delta"], total_rows),
        Table("Per workload", ["workload", "status", "base devices", "head devices", "Δ devices", "base $/month", "head $/month",
                               "Δ $/month", "TTFT ms", "TPOT ms", "Δ TTFT margin %", "Δ TPOT margin %"], rows),
    ]  # fmt: skip
    moved = [[w["workload"], (w["base"] or {}).get("layout", "—"), (w["head"] or {}).get("layout", "—")] for w in doc["workloads"]
             if (w["base"] or {}).get("layout") != (w["head"] or {}).get("layout")]  # fmt: skip
    if moved:
        tables.append(Table("Layouts that changed (engine: replicas × parallelism, weights, batch cap, instance type)", ["workload", "base", "head"],
                            moved))  # fmt: skip
    return View(doc, tables, [f"note: {n}" for n in doc["notes"]], csv=flat_table(doc))


def diff_periods_view(doc: dict[str, Any]) -> View:
    """Tables for a diff of two plans over demand periods."""
    t = doc["totals"]
    keys = ("usd_per_month", "reserved_usd_per_month", "static_peak_usd_per_month", "on_demand_only_usd_per_month", "peak_devices")
    rows = []
    for w in doc["workloads"]:
        a, b, d = w["base"] or {}, w["head"] or {}, w["delta"]
        rows.append([w["workload"], w["status"], a.get("usd_per_month"), b.get("usd_per_month"), d.get("usd_per_month"),
                     ", ".join(a.get("hardware") or []) or None, ", ".join(b.get("hardware") or []) or None,
                     a.get("busiest_hour_replicas"), b.get("busiest_hour_replicas"), d.get("busiest_hour_replicas"),
                     a.get("busiest_hour_capacity_requests_per_s"), b.get("busiest_hour_capacity_requests_per_s"),
                     a.get("max_replicas"), b.get("max_replicas")])  # fmt: skip
    tables = [
        Table(f"Change: {doc['headline']}", ["", "base", "head", "delta"],
              [[k, t["base"].get(k), t["head"].get(k), t["delta"].get(k)] for k in keys]
              + [["reserved", ", ".join(doc["reserved"]["base"]) or "none", ", ".join(doc["reserved"]["head"]) or "none", None]]),
        Table("Per workload ($/month: its chargeback; the rest at its busiest hour)",
              ["workload", "status", "base $/month", "head $/month", "Δ $/month", "base hardware", "head hardware", "base replicas",
               "head replicas", "Δ replicas", "base req/s capacity", "head req/s capacity", "base most replicas (any hour)",
               "head most replicas (any hour)"], rows),
    ]  # fmt: skip
    return View(doc, tables, [f"note: {n}" for n in doc["notes"]], csv=flat_table(doc))


def _shown(value: object) -> str | int | float | None:
    """A limit's actual or threshold value as a table (and CSV) cell: ``l40s: 4, tpu-v6e: 1``, ``aws, gcp``; None when absent.

    A number stays a number, which the table writes with thousands separators (``48,923`` beside a threshold of ``45,000``,
    where it read ``48923.14``) and the CSV as it is; a whole float as an integer (a threshold of 150000.0 dollars: 150000).
    """
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool) or value is None:
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int | float) else str(value)


def register(app: typer.Typer, schema_app: typer.Typer) -> None:
    """Add ``check``, ``diff`` and ``schema policy``."""

    @app.command("check")
    @guarded
    def check_cmd(
        target: Annotated[
            Path, typer.Argument(metavar="FLEET.yaml|PLAN.json", help="A fleet file to size, or a plan made by `aicap size --output`.")
        ],
        policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (YAML); see `aicap schema policy`.")] = None,
        budget_monthly: Annotated[
            float | None, typer.Option("--budget-monthly", help="Fail when the fleet costs more than this many USD a month.")
        ] = None,
        baseline: Annotated[Path | None, typer.Option("--baseline", help="Plan (or fleet) to compare against for increase limits.")] = None,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict",
                help="Fail (exit 1) a plan whose hourly prices are not this catalogue's (edited by hand, or made "
                "with another catalogue or --catalog overlay); without it they are a warning.",
            ),
        ] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Evaluate budget and policy limits; exit 0 pass/warn, 1 a fail limit breached, 2 bad input, 3 infeasible."""
        import math

        from aicap.sizing.core.documents import load_yaml, read_text, validate_model
        from aicap.sizing.core.errors import InputError, PolicyBreachError
        from aicap.sizing.core.period_plan import PeriodPlan
        from aicap.sizing.core.plan import Plan
        from aicap.sizing.plan.fleet_io import any_plan_or_size, fleet_budget
        from aicap.sizing.plan.policy import Limit, Policy, blocking, check_ids, evaluate, evaluate_periods, verdict
        from aicap.sizing.plan.prices import price_rows, repriced

        notes = []
        stated, ceiling = fleet_budget(target)  # a fleet's own constraints.budget_usd_per_month is a limit of the gate, not of its plan
        if not ceiling and (policy is not None or budget_monthly is not None):  # a latency or throughput plan's spend, sized to it
            stated = None
        if policy is None and budget_monthly is None and stated is None and not strict:  # a gate with no limit would pass anything
            raise InputError("no limits to check: give --policy FILE, --budget-monthly USD or --strict (or a fleet whose "
                             "constraints.budget_usd_per_month sets one)")  # fmt: skip
        cat = catalogue()
        pol = Policy()
        if policy is not None:
            text = read_text(policy)
            doc = load_yaml(policy, text) or {}
            if isinstance(doc, dict) and ({"totals", "generated_by"} <= set(doc) or doc.get("kind") == "periods"):
                raise InputError(f"--policy {policy}: this is a plan (aicap size --output), not a policy; the plan is check's argument "
                                 f"and --policy names a file of limits (aicap schema policy)")  # fmt: skip
            pol = validate_model(Policy, doc, str(policy), text)
            check_ids(pol, cat.devices, str(policy), text)
            if not pol.limits.model_dump(exclude_none=True):  # a truncated or wrong file would open the gate
                raise InputError(f"{policy}: sets no limits; name at least one under 'limits:' "
                                 f"({', '.join(type(pol.limits).model_fields)})")  # fmt: skip
        if budget_monthly is not None:
            if not (math.isfinite(budget_monthly) and budget_monthly > 0):
                raise InputError(f"--budget-monthly {budget_monthly}: must be a positive, finite amount of USD")
            if (own := pol.limits.max_usd_per_month) is not None:
                raise InputError(f"--budget-monthly {budget_monthly:g} and {policy}'s limits.max_usd_per_month ({own.value:g}, "
                                 f"{own.action}) both set the monthly limit: give one of them")  # fmt: skip
            pol = pol.model_copy(update={"limits": pol.limits.model_copy(update={"max_usd_per_month": Limit[float](value=budget_monthly)})})
        if stated is not None:  # the fleet's budget is a limit too: the lower of it and the gate's own applies (a team's budget
            # beneath a company-wide cap); the plan is sized without it, so that over it is a breach (exit 1), not infeasible (exit 3)
            own = pol.limits.max_usd_per_month
            if own is None or stated < own.value:
                pol = pol.model_copy(update={"limits": pol.limits.model_copy(update={"max_usd_per_month": Limit[float](value=stated)})})
            gate = "--budget-monthly" if budget_monthly is not None else f"{policy}'s limits.max_usd_per_month"
            notes.append(f"note: the monthly limit is {target}'s constraints.budget_usd_per_month (${stated:,.0f})" if own is None else
                         f"note: two monthly limits, {target}'s constraints.budget_usd_per_month (${stated:,.0f}) and {gate} "
                         f"(${own.value:,.0f}): the check applies the lower")  # fmt: skip
        plan = any_plan_or_size(target, cat, budget_as_limit=stated is not None and ceiling)
        if plan.catalogue.version != cat.version:  # a plan file from another catalogue: its prices are what it was made with
            notes.append(f"warning: {target} was made with catalogue {plan.catalogue.version} and this aicap's is {cat.version}: the "
                         "limits judge the plan's own prices and layouts; size the fleet again to check today's")  # fmt: skip
        if strict and not isinstance(plan, Plan):
            raise InputError(f"--strict compares a static plan's prices with the catalogue's; {target} is a plan over demand "
                             "periods, whose prices it does not compare: check it without --strict")  # fmt: skip
        found = repriced(plan, cat) if isinstance(plan, Plan) else []
        if not strict:
            notes += [f"warning: {r.describe(plan.catalogue.pricing)}" for r in found]
        base = any_plan_or_size(baseline, cat) if baseline is not None else None
        periodic = isinstance(plan, PeriodPlan)
        if base is not None and isinstance(base, PeriodPlan) != periodic:
            kinds = ("a plan over demand periods", "a static plan")
            raise InputError(f"--baseline {baseline}: {kinds[not isinstance(base, PeriodPlan)]}, and the target {kinds[not periodic]}; "
                             "compare two of a kind")  # fmt: skip
        if isinstance(plan, PeriodPlan):
            rows = evaluate_periods(pol, plan, cat, base if isinstance(base, PeriodPlan) else None)
            what = f"plan over {plan.hours} hours"
        else:
            rows = evaluate(pol, plan, base if isinstance(base, Plan) else None)
            what = "fleet"
        if strict:
            rows += price_rows(found, plan.catalogue.pricing)
        if base is not None and base.catalogue.version != plan.catalogue.version:
            notes.append(f"warning: baseline was made with catalogue {base.catalogue.version}, "
                         f"this plan with {plan.catalogue.version}: prices or factors may differ")  # fmt: skip
        result = verdict(rows)
        if (stuck := blocking(rows)) and result != "fail":  # a judged breach fails the plan whatever the others would say
            raise InputError(f"{policy}: fail limits that cannot be checked here: "
                             + "; ".join(f"{r.limit} ({r.detail})" for r in stuck)
                             + "; give what they need, or set their action to warn to accept them unchecked")  # fmt: skip
        doc = {
            "schema_version": 2,
            "verdict": result,
            "usd_per_month": plan.totals.usd_per_month,
            "baseline_usd_per_month": None if base is None else base.totals.usd_per_month,
            "limits": [r.__dict__ for r in rows],
            "notes": notes,
        }
        table_rows = [[r.limit, r.action, r.status.upper(), _shown(r.actual), _shown(r.threshold), r.detail] for r in rows]
        emit(View(doc, [Table(f"Policy check: {result.upper()} ({what} ${plan.totals.usd_per_month:,.0f}/month)",
                              ["limit", "action", "status", "actual", "threshold", "detail"], table_rows)]), fmt)  # fmt: skip
        # notes on stderr (the JSON keeps them): in a table they were printed twice, below it and on stderr
        for n in notes:
            info(f"aicap: {n}")
        if result == "fail":
            breached = list(dict.fromkeys(r.limit for r in rows if r.status == "fail"))  # a limit of several rows, once
            raise PolicyBreachError(f"policy check failed: {', '.join(breached)}")

    @app.command("diff")
    @guarded
    def diff_cmd(
        base: Annotated[Path, typer.Argument(help="Base plan or fleet file.")],
        head: Annotated[Path, typer.Argument(help="Head plan or fleet file.")],
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Show what changed between two plans: instances, devices, $/hour, $/month, $/1M tokens, TTFT/TPOT."""
        from aicap.sizing.core.errors import InputError
        from aicap.sizing.core.period_plan import PeriodPlan
        from aicap.sizing.plan.diff import diff, diff_periods
        from aicap.sizing.plan.fleet_io import any_plan_or_size

        cat = catalogue()
        pb, ph = any_plan_or_size(base, cat), any_plan_or_size(head, cat)
        if isinstance(pb, PeriodPlan) and isinstance(ph, PeriodPlan):
            doc = diff_periods(pb, ph)
            view = diff_periods_view(doc)
        elif not isinstance(pb, PeriodPlan) and not isinstance(ph, PeriodPlan):
            doc = diff(pb, ph)
            view = diff_view(doc)
        else:
            raise InputError(f"{base if isinstance(pb, PeriodPlan) else head} is a plan over demand periods and the other a static plan; "
                             "diff two of a kind")  # fmt: skip
        if fmt == Format.markdown:
            from aicap.cli.render import to_markdown

            typer.echo(f"**aicap: {doc['headline']}** (${doc['totals']['base']['usd_per_month']:,.0f} → "
                       f"${doc['totals']['head']['usd_per_month']:,.0f} per month)\n")  # fmt: skip
            typer.echo(to_markdown(view), nl=False)
            return
        emit(view, fmt)

    @schema_app.command("policy")
    @guarded
    def schema_policy() -> None:
        """Print the JSON Schema of the policy file that `aicap check --policy` reads."""
        from aicap.cli.render import json_schema, to_json
        from aicap.sizing.plan.policy import Policy

        typer.echo(to_json(json_schema(Policy)), nl=False)
