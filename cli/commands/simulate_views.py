"""Tables of ``aicap simulate``: one run, a policy comparison, and the deployments of a simulated plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aicap.cli.render import Table, View

if TYPE_CHECKING:
    from aicap.sizing.sim.composed import ComposedTtft
    from aicap.sizing.sim.plan_runs import DeploymentRun
    from aicap.sizing.sim.replay import PolicyRow
    from aicap.sizing.sim.report import SimulationReport, Stats
    from aicap.sizing.sim.verify import Check


def ms(s: Stats, key: str = "p99") -> str | None:
    """A statistic of ``s`` in ms, one decimal with thousands separators (``None`` when it is not there)."""
    v = s.at(key)
    return None if v is None else f"{v:,.1f}"


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{100 * x:.1f}%"


def report_view(rep: SimulationReport, percentile: str) -> View:
    """Tables of one simulated run."""
    s = rep.setup
    load = f"{s.rate_per_s:,.4g} req/s" if s.concurrency is None else f"{s.concurrency} concurrent clients"
    if s.concurrency is None and s.requested_rate_per_s is not None and s.rate_per_s is not None and \
            f"{s.rate_per_s:,.4g}" != f"{s.requested_rate_per_s:,.4g}":  # fmt: skip
        load += f" drawn ({s.requested_rate_per_s:,.4g} asked: the arrivals of one run realise the rate only on average)"
    if s.concurrency is None and rep.requests < 2:  # one arrival has no rate (it read "0 req/s" whatever --rate said)
        load = "one request: no arrival rate"
    title = f"Simulated latency: {rep.requests:,} requests, policy {s.policy}"
    rows: list[list[Any]] = []
    for name, st in (("TTFT", rep.ttft_ms), ("TPOT (per request)", rep.tpot_ms), ("ITL (per streamed chunk)", rep.itl_ms), ("end-to-end", rep.e2e_ms),
                     ("queue wait", rep.queue_ms)):  # fmt: skip
        rows.append([name, ms(st, "mean"), ms(st, "p50"), ms(st, "p90"), *([ms(st, "p95")] if percentile == "p95" else []), ms(st, "p99")])
    cols = ["latency (ms)", "mean", "p50", "p90", *(["p95"] if percentile == "p95" else []), "p99"]  # the percentile judged is shown
    lat = Table(title, cols, rows,
                caption=f"After a 10% warm-up. Traffic: {s.traffic}; mean {s.mean_input_tokens:,.0f} in / {s.mean_output_tokens:,.0f} out "
                        f"tokens; seed {s.seed}.")  # fmt: skip
    slo = []
    if rep.slo.ttft_ms is not None or rep.slo.tpot_ms is not None:
        tg = ", ".join(f"{k} ≤ {v:g} ms" for k, v in (("TTFT", rep.slo.ttft_ms), ("TPOT", rep.slo.tpot_ms)) if v is not None)
        slo_pct = [["targets checked at", percentile]]
        slo = [["SLO attainment", f"{_pct(rep.slo_attainment)} of requests meet {tg} (after the warm-up)"],
               ["goodput", f"{rep.goodput_requests_per_s:,.3g} req/s (over the whole run)"], *slo_pct]  # fmt: skip
    th = rep.throughput
    run_rows: list[list[Any]] = [
        ["deployment", f"{s.model} on {s.replicas}× TP{s.tp}·PP{s.pp} {s.hardware} ({s.weights_dtype}), engine {s.engine}, router {s.router}"
                       + (f"; attention DP{s.dp_attention}×TP{s.tp // s.dp_attention}, experts EP{s.ep}, an engine per group"
                          if s.dp_attention > 1 else "")
                       + ("; eager (no CUDA graphs)" if s.eager else "")
                       + ("; overlap scheduler (a request arriving mid-step waits a step more)" if s.overlap_scheduling else "")
                       + {"prompt": "", "projected": "; admits only with KV room for the running requests' remaining output",
                          "exact": "; admits only what fits to the end (requests ignore EOS, no prefix cache)"}[s.admission]],
        ["load", load],
        ["stable queue", ("yes" if s.concurrency is None else "yes (closed loop)") if rep.stable else
                         ("NO: requests were rejected or left unfinished" if rep.rejected or s.concurrency is not None
                          else "NO: the queue grows without bound at this load")],
        ["finished / rejected", f"{rep.finished:,} / {rep.rejected:,}"],
        ["throughput", f"{th.requests_per_s:,.3g} req/s, {th.output_tokens_per_s:,.0f} output tok/s"],
        *slo,
        ["busy (share of time stepping)", _pct(rep.utilisation)],
        ["running batch per replica (mean)", f"{rep.mean_running_per_replica:,.1f} of {s.max_num_seqs:,}"],
        ["KV cache use (mean / peak)", None if rep.kv_cache_use is None else
                                       f"{_pct(rep.kv_cache_use['mean'])} / {_pct(rep.kv_cache_use['peak'])} of {s.kv_cache_tokens:,} tokens"],
        ["preemptions", f"{rep.preemptions:,}"],
        ["simulated time", f"{rep.duration_s:,.1f} s"],
    ]  # fmt: skip
    tables = [lat, Table("Run", ["", "value"], run_rows)]
    if rep.classes:
        tables.append(Table(f"Per priority class (ms, {percentile})", ["class", "requests", "TTFT", "TPOT", "queue", "SLO attainment"],
                            [[c.priority, c.requests, ms(c.ttft_ms, percentile), ms(c.tpot_ms, percentile), ms(c.queue_ms, percentile),
                              _pct(c.slo_attainment)] for c in rep.classes],
                            caption="requests: all of the class, warm-up included; latencies and attainment after the warm-up "
                                    "(a class seen only then has none)."))  # fmt: skip
    doc = rep.model_dump(mode="json")
    return View(doc, tables, csv=_long_csv(doc))


#: Policies whose TTFT at the percentile all lie within this share of fcfs's changed little (:func:`alike_policies_note`).
ALIKE_POLICIES = 0.05

_WHY = (
    "a scheduling policy orders only the waiting queue (admitted requests take their prefill chunks and decode steps oldest "
    "first), so it acts where requests queue: more load or burstier arrivals, a smaller --max-num-seqs or a smaller step budget"
)


def idle_queue_note(timeline: Sequence[tuple[float, int, int, int]]) -> str | None:
    """A note that no step began with a request left waiting, so that a policy had nothing to order; else ``None``.

    ``timeline`` is the run's step-start samples (time, running, waiting, KV blocks held;
    :attr:`~aicap.sizing.sim.cluster.ClusterStats.timeline`), not the report's slice means, which a burst averages away:
    a burst that leaves requests waiting at 0.3% of the steps is enough for strict priority to cut a class's p99 TTFT by 60%.
    """
    if not timeline or any(waiting > 0 for _, _, waiting, _ in timeline):
        return None
    return f"aicap: note: no step began with a request left waiting: requests waited for the step in flight (the queue wait), and {_WHY}"


def alike_policies_note(rows: list[PolicyRow], percentile: str) -> str | None:
    """A note that every policy's TTFT at ``percentile`` lies within :data:`ALIKE_POLICIES` of fcfs's; else ``None``."""
    base = next((r.report.ttft_ms.at(percentile) for r in rows if r.policy == "fcfs"), None)
    others = [r.report.ttft_ms.at(percentile) for r in rows if r.policy != "fcfs"]
    if base is None or not others or not base or any(x is None or abs(x - base) > ALIKE_POLICIES * base for x in others):
        return None
    return f"aicap: note: every policy's TTFT {percentile} is within {ALIKE_POLICIES:.0%} of fcfs's: {_WHY}"


def _long_csv(doc: dict[str, Any]) -> Table:
    """Every figure of a run in long format, one a row: ``scope`` (``all`` or ``class N``), ``metric`` (its JSON key), ``statistic``, ``value``.

    The setup comes first, a row a field (scope ``setup``; a list's items joined by ``;``), so a file names its run; the
    timeline is left out (``-f json`` has it); a figure without statistics has ``value`` in ``statistic``.
    """
    rows: list[list[Any]] = [["setup", key, "value", ";".join(map(str, v)) if isinstance(v, list) else v]
                             for key, v in (doc.get("setup") or {}).items()]  # fmt: skip

    def add(scope: str, d: dict[str, Any]) -> None:
        for key, v in d.items():
            if key in ("schema_version", "setup", "timeline", "classes", "priority"):
                continue
            if isinstance(v, dict):
                rows.extend([scope, key, stat, x] for stat, x in v.items())
            else:
                rows.append([scope, key, "value", v])

    add("all", doc)
    for c in doc.get("classes") or []:
        add(f"class {c['priority']}", c)
    return Table("", ["scope", "metric", "statistic", "value"], rows)


def compare_view(rows: list[PolicyRow], percentile: str) -> View:
    """One row per policy (the document: :class:`~aicap.sizing.sim.comparison.PolicyComparison`)."""
    from aicap.sizing.sim.comparison import PolicyComparison, PolicyResult

    first = rows[0].report
    doc = PolicyComparison(
        schema_version=1, percentile=percentile, requests=first.requests, setup=first.setup, slo=first.slo,
        policies=[PolicyResult(policy=r.policy, ttft_ms=r.report.ttft_ms, tpot_ms=r.report.tpot_ms, queue_ms=r.report.queue_ms,
                               e2e_ms=r.report.e2e_ms, slo_attainment=r.report.slo_attainment, preemptions=r.report.preemptions,
                               stable=r.report.stable, throughput=r.report.throughput, utilisation=r.report.utilisation,
                               replicas_for_slo=r.replicas_for_slo) for r in rows],
    ).model_dump(mode="json")  # fmt: skip
    s = rows[0].report.setup
    table = Table(f"Policies compared: {s.model} on {s.replicas}× TP{s.tp}·PP{s.pp} {s.hardware}, same {rows[0].report.requests:,} requests "
                  f"(ms at {percentile} unless noted)",
                  ["policy", "TTFT", "TTFT mean", "TPOT", "queue", "e2e mean", "SLO attainment", "preemptions", "stable", "replicas for SLO"],
                  [[r.policy, ms(r.report.ttft_ms, percentile), ms(r.report.ttft_ms, "mean"), ms(r.report.tpot_ms, percentile),
                    ms(r.report.queue_ms, percentile), ms(r.report.e2e_ms, "mean"), _pct(r.report.slo_attainment), r.report.preemptions,
                    "yes" if r.report.stable else "NO", r.replicas_for_slo] for r in rows],
                  caption="replicas for SLO: the fewest replicas whose simulated run is stable and meets every target at the percentile "
                          "(- without targets, or where none does: no count up to 4,096, requests too long for a replica's KV cache, "
                          "or a tail that more replicas do not shorten, as a target below one request's own latency).")  # fmt: skip
    p = percentile
    csv = Table("", ["policy", f"ttft_ms_{p}", "ttft_ms_mean", f"tpot_ms_{p}", f"queue_ms_{p}", "e2e_ms_mean", "slo_attainment",
                     "preemptions", "stable", "requests_per_s", "output_tokens_per_s", "utilisation", "replicas_for_slo"],
                [[r.policy, r.report.ttft_ms.at(p), r.report.ttft_ms.at("mean"), r.report.tpot_ms.at(p), r.report.queue_ms.at(p),
                  r.report.e2e_ms.at("mean"), r.report.slo_attainment, r.report.preemptions, r.report.stable,
                  r.report.throughput.requests_per_s, r.report.throughput.output_tokens_per_s, r.report.utilisation, r.replicas_for_slo]
                 for r in rows])  # fmt: skip
    return View(doc, [table], csv=csv)


def _composed(c: ComposedTtft | None) -> tuple[float | None, float | None, bool | None]:
    """A pool's composed TTFT, its target and whether it holds, rounded as the JSON document rounds them (``None`` for other pools)."""
    if c is None:
        return None, None, None
    return round(c.composed_ms, 3), None if c.target_ms is None else round(c.target_ms, 3), c.holds


def plan_runs_view(runs: list[DeploymentRun], composed: list[ComposedTtft] | None = None) -> View:
    """One row per simulated plan deployment; a second table for disaggregated workloads' composed TTFT."""
    composed = composed or []
    doc = {"schema_version": 1, "holds": all(r.holds for r in runs) and all(c.holds for c in composed),
           "deployments": [{"workload": r.workload, "instance_type": r.instance_type, "percentile": r.percentile, "router": r.router,
                            "holds": r.holds, "planned_requests_per_s": r.planned_requests_per_s, **r.report.model_dump(mode="json")}
                           for r in runs],
           "disaggregated": [{"workload": c.workload, "percentile": c.percentile, "prefill_ttft_ms": round(c.prefill_ms, 3),
                              "transfer_ms": round(c.transfer_ms, 3), "decode_ttft_ms": round(c.decode_ms, 3),
                              "composed_ttft_ms": round(c.composed_ms, 3),
                              "ttft_target_ms": None if c.target_ms is None else round(c.target_ms, 3), "holds": c.holds}
                             for c in composed]}  # fmt: skip
    rows = [[r.workload, r.instance_type, f"{r.report.setup.replicas}× TP{r.report.setup.tp}·PP{r.report.setup.pp}"
             + (f" DP-attn {r.report.setup.dp_attention}" if r.report.setup.dp_attention > 1 else "")
             + (" eager" if r.report.setup.eager else ""),
             f"{r.planned_requests_per_s if r.planned_requests_per_s is not None else r.report.setup.rate_per_s:,.4g}", r.percentile, ms(r.report.ttft_ms, r.percentile), r.report.slo.ttft_ms,
             ms(r.report.tpot_ms, r.percentile), r.report.slo.tpot_ms, _pct(r.report.slo_attainment), "yes" if r.report.stable else "NO",
             "yes" if r.holds else "NO"] for r in runs]  # fmt: skip
    routers = sorted({r.router.replace("_", " ") for r in runs}) or ["round robin"]
    tables = [Table("Plan simulated: every deployment with all its replicas at its planned load (ms at the workload's percentile)",
                    ["workload", "instance", "replicas", "req/s", "pctl", "TTFT", "TTFT target", "TPOT", "TPOT target",
                     "SLO attainment", "stable", "holds"], rows,
                    caption=f"All replicas of a deployment behind a {', '.join(routers)} router, for an hour of its traffic "
                            "(stretched to 6,000 requests a replica, cut at 200,000 a deployment); each tail the whole run's "
                            "percentile. holds: stable and within both "
                            "targets at the workload's own percentile. `size --verify` simulates one replica alone at its share "
                            "of the rate with the workload's whole burstiness (its arrival cv: no router spreads a burst over the "
                            "replicas) and states the worst of three stretches of its run: a stricter test, with longer tails for "
                            "bursty traffic (--per-replica runs it here).")]  # fmt: skip
    if composed:
        tables.append(Table("Disaggregated workloads: the TTFT users see (ms at the workload's percentile)",
                            ["workload", "prefill TTFT", "KV transfer", "decode TTFT", "composed TTFT", "target", "holds"],
                            [[c.workload, c.prefill_ms, c.transfer_ms, c.decode_ms, c.composed_ms, c.target_ms, "yes" if c.holds else "NO"]
                             for c in composed],
                            caption="composed: the percentile of prefill TTFT + transfer + decode TTFT over paired simulated "
                                    "requests, checked against the workload's own target."))  # fmt: skip
    # A disaggregated workload's pools (``name.prefill``, ``name.decode``) carry the TTFT users see, composed over both.
    whole = {name: c for c in composed for name in (f"{c.workload}.prefill", f"{c.workload}.decode")}
    csv = Table("", ["workload", "instance_type", "replicas", "tp", "pp", "dp_attention", "eager", "requests_per_s", "percentile",
                     "ttft_ms", "ttft_target_ms", "tpot_ms", "tpot_target_ms", "slo_attainment", "stable", "holds", "composed_ttft_ms",
                     "composed_ttft_target_ms", "composed_holds"],
                [[r.workload, r.instance_type, r.report.setup.replicas, r.report.setup.tp, r.report.setup.pp, r.report.setup.dp_attention,
                  r.report.setup.eager, r.planned_requests_per_s if r.planned_requests_per_s is not None else r.report.setup.rate_per_s,
                  r.percentile, r.report.ttft_ms.at(r.percentile), r.report.slo.ttft_ms,
                  r.report.tpot_ms.at(r.percentile), r.report.slo.tpot_ms, r.report.slo_attainment, r.report.stable, r.holds,
                  *(_composed(whole.get(r.workload)))]
                 for r in runs])  # fmt: skip
    return View(doc, tables, csv=csv)


def check_misses(c: Check) -> list[str]:
    """What one replica's check misses, one phrase each: ``TTFT 215.6 ms > target 200 ms``, nothing served, an unbounded queue, rejections."""
    if c.ttft_simulated_ms != c.ttft_simulated_ms:  # NaN: no request was served, so there is no tail
        out = ["nothing served"]
    else:
        out = [f"{name} {simulated:,.1f} ms > target {target:g} ms"
               for name, simulated, target in (("TTFT", c.ttft_simulated_ms, c.ttft_target_ms), ("TPOT", c.tpot_simulated_ms, c.tpot_target_ms))
               if target is not None and simulated is not None and not simulated <= target]  # fmt: skip
    if not c.stable:
        out.append("the queue grows without bound")
    if c.rejected:
        out.append(f"{c.rejected:,} request(s) rejected")
    return out


def per_replica_view(checks: Sequence[Check], seed: int) -> View:
    """``simulate PLAN --per-replica``: the checks of ``size --verify``, one row per deployment."""
    from dataclasses import asdict

    from aicap.cli.commands.size_views import layout_label
    from aicap.sizing.sim.plan_report import ReplicaCheck, ReplicaChecks

    def figures(c: Check) -> dict[str, Any]:  # NaN (nothing served) as null: JSON has no NaN
        return {k: None if isinstance(v, float) and v != v else v for k, v in asdict(c).items()}

    checked = ReplicaChecks(schema_version=1, seed=seed, holds=all(c.meets_targets for c in checks),
                            replicas=[ReplicaCheck(**figures(c), holds=c.meets_targets) for c in checks])  # fmt: skip
    doc = checked.model_dump(mode="json")
    replicas: list[dict[str, Any]] = doc["replicas"]
    fields = list(replicas[0]) if replicas else ["workload", "holds"]
    csv = Table("", fields, [[r[f] for f in fields] for r in replicas])
    rows = [[c.workload, c.instance_type, layout_label(c.tp, c.pp, c.dp_attention), f"{c.requests_per_s_per_replica:,.4g}",
             ms_or_dash(c.ttft_simulated_ms), c.ttft_target_ms, ms_or_dash(c.tpot_simulated_ms), c.tpot_target_ms,
             "yes" if c.stable else "NO", "yes" if c.meets_targets else "NO"] for c in checks]  # fmt: skip
    return View(doc, [Table("Plan checked as `size --verify` checks it: one replica of each deployment alone (ms at the workload's "
                            "percentile)",
                            ["workload", "instance", "layout", "req/s a replica", "TTFT", "TTFT target", "TPOT", "TPOT target", "stable",
                             "holds"], rows,
                            caption=f"Each replica at its share of the deployment's rate with the workload's whole burstiness (its "
                                    f"arrival cv, as if every burst reached every replica), for an hour of its traffic (at least 6,000 "
                                    f"requests, at most 200,000), seed {seed}; each tail the worst of the run's three stretches. "
                                    "Without --per-replica the plan's replicas run behind a router, which spreads the bursts.")],
                csv=csv)  # fmt: skip


def ms_or_dash(x: float | None) -> float | str:
    """A latency for a table cell: the number, or '–' where there is none (nothing served, or no decode)."""
    return "–" if x is None or x != x else round(x, 1)
