"""``aicap size`` (the sizer) and ``aicap schema`` (JSON Schemas of the documents)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aicap.cli.commands.estimate_cmd import AcceptOpt, DraftModelOpt, DraftTokensOpt, SpecOpt, speculative_config
from aicap.cli.commands.size_views import period_plan_view, plan_view
from aicap.cli.render import Format, FormatOpt, Table, View, emit, json_schema, progress, to_json, to_yaml
from aicap.cli.state import (
    STATE,
    catalogue,
    check_engine,
    check_hardware,
    check_plot,
    check_tpot_target,
    check_workload_source,
    guarded,
    info,
    typed_flags,
    warn_shadowing,
    workload_lengths,
)

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike
    from aicap.sizing.core.fleet import Fleet


def _warn_shadowing(fleet: Fleet, cat: CatalogueLike) -> None:
    """Warn about each model file of the fleet that reuses a catalogue model's id with other shapes."""
    from aicap.sizing.core.errors import InputError

    for ref in sorted({w.model for w in fleet.workloads if w.model not in cat.models}):
        try:
            warn_shadowing(ref, cat.model(ref))
        except InputError:  # the sizer names a bad model with its place in the fleet file
            continue


#: ``aicap schema NAME``: the document class (``module:Class``) whose JSON Schema it prints, and its help.
_SCHEMAS: tuple[tuple[str, str, str], ...] = (
    ("plan", "aicap.sizing.core.plan:Plan",
     "Print the JSON Schema of the static plan that `aicap size` writes and `check`/`diff` read (hourly demand: `schema period-plan`)."),
    ("period-plan", "aicap.sizing.core.period_plan:PeriodPlan",
     "Print the JSON Schema of the plan over demand periods (`kind: periods`) that `aicap size` writes for hourly demand."),
    ("fleet", "aicap.sizing.core.fleet:Fleet", "Print the JSON Schema of the fleet file (aicap.yaml) that `aicap size` reads."),
    ("simulation", "aicap.sizing.sim.report:SimulationReport",
     "Print the JSON Schema of the report `aicap simulate --format json` prints for one run."),
    ("simulation-compare", "aicap.sizing.sim.comparison:PolicyComparison",
     "Print the JSON Schema of the report `aicap simulate --compare-policies --format json` prints."),
    ("simulation-disaggregated", "aicap.sizing.sim.comparison:DisaggregatedRun",
     "Print the JSON Schema of the report `aicap simulate --disaggregate --format json` prints."),
    ("simulation-plan", "aicap.sizing.sim.plan_report:PlanSimulation",
     "Print the JSON Schema of the report `aicap simulate PLAN --format json` prints (every deployment of a plan)."),
    ("simulation-replicas", "aicap.sizing.sim.plan_report:ReplicaChecks",
     "Print the JSON Schema of the report `aicap simulate PLAN --per-replica --format json` prints (size --verify's checks)."),
    ("cases", "aicap.sizing.calibrate.case:Case",
     "Print the JSON Schema of one measured case that `aicap validate` and `aicap calibrate` read (a YAML file lists them; a CSV "
     "has one row per metric: the case's fields, then metric and value)."),
)  # fmt: skip


def _schema_command(target: str) -> Callable[[], None]:
    """A command printing the JSON Schema of ``target`` (``module:Class``), imported only when it runs."""

    @guarded
    def show() -> None:
        import importlib

        module, name = target.split(":")
        typer.echo(to_json(json_schema(getattr(importlib.import_module(module), name))), nl=False)

    return show


def register(app: typer.Typer) -> None:
    """Add ``size`` and ``schema`` to the root app."""

    @app.command("size")
    @guarded
    def size_cmd(
        ctx: typer.Context,
        fleet_file: Annotated[Path | None, typer.Argument(metavar="[FLEET.yaml]", help="Fleet file (`-` reads standard input); omit it (and --model) for the built-in example.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Size one workload of this model instead of a fleet file.")] = None,
        rate: Annotated[float | None, typer.Option("--rate", help="Requests per second, at least 1e-5 (one-workload mode; optional with --objective throughput).")] = None,
        input_tokens: Annotated[int, typer.Option("--input-tokens", help="Prompt tokens of each request: throughput, tail latency and memory are sized for this length (a fleet file takes a histogram of lengths). Left at the default, a model whose context is shorter reads what its context holds (an encoder its max context, a decoder what the output leaves).")] = 1024,
        output_tokens: Annotated[int, typer.Option("--output-tokens", help="Generated tokens of each request (a fleet file takes a histogram).")] = 256,
        ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", help="TTFT target at the percentile (ms).")] = None,
        tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="TPOT target (ms).")] = None,
        percentile: Annotated[str, typer.Option("--percentile", help="p50, p90, p95 or p99.")] = "p99",
        arrival_cv: Annotated[float, typer.Option("--arrival-cv", help="Burstiness: coefficient of variation of inter-arrival times (1 = Poisson, 2 = bursty).")] = 1.0,
        cloud: Annotated[str | None, typer.Option("--cloud", help="Comma-separated clouds: aws,gcp,azure,on-prem (owned machines, with --pricing owned).")] = None,
        hardware: Annotated[str | None, typer.Option("--hardware", help="Comma-separated device ids to allow.")] = None,
        precision: Annotated[str | None, typer.Option("--precision", help="Comma-separated weight formats to allow (default bf16,fp8; a quantised checkpoint's format and bf16).")] = None,
        pricing: Annotated[str | None, typer.Option("--pricing", help="on_demand, spot, reserved_1y, reserved_3y or owned (bought hardware, hardware_db/ownership); a comma-separated list lets the plan mix them hour by hour.")] = None,
        budget: Annotated[float | None, typer.Option("--budget", help="Monthly budget in USD.")] = None,
        objective: Annotated[str | None, typer.Option("--objective", help="cost (default), latency or throughput (the last two need --budget).")] = None,
        single_type: Annotated[bool, typer.Option("--single-type", help="Use one device type for the whole fleet.")] = False,
        search: Annotated[str | None, typer.Option("--search", help="auto (default), fast or thorough: thorough also shortlists each "
                                                   "workload's cheapest replica per device type, which carries what whole replicas "
                                                   "of the best layout overshoot (large fleets: plans up to ~6% cheaper, solved "
                                                   "several times slower); auto is thorough up to 100 workloads "
                                                   "(plans over demand periods: fast).")] = None,
        prefix_cached: Annotated[float, typer.Option("--prefix-cached", help="Share of each prompt found in the prefix cache, in [0, 1) "
                                                     "(one-workload mode; fleet files: prefix_cached_share).")] = 0.0,
        speculative: SpecOpt = None,
        draft_model: DraftModelOpt = None,
        draft_tokens: DraftTokensOpt = None,
        acceptance: AcceptOpt = None,
        disaggregate: Annotated[bool, typer.Option("--disaggregate", help="Serve prefill and decode on separate pools, each sized to the demand (one-workload mode; fleet files: disaggregation).")] = False,
        prefill_hardware: Annotated[str | None, typer.Option("--prefill-hardware", help="With --disaggregate: comma-separated devices for the prefill pool.")] = None,
        decode_hardware: Annotated[str | None, typer.Option("--decode-hardware", help="With --disaggregate: comma-separated devices for the decode pool.")] = None,
        transfer_gbps: Annotated[float | None, typer.Option("--transfer-gbps", help="With --disaggregate: KV-transfer link per device, Gbit/s (default: each sourced network tier of the allowed types is tried; the cheapest plan's wins).")] = None,
        engine: Annotated[str | None, typer.Option("--engine", help="Serving engine profile (vllm, sglang, trtllm, tgi, lmdeploy, llamacpp, jetstream, generic) "
                                                   "for workloads without their own; default generic (`aicap engines list`).")] = None,
        eager: Annotated[bool, typer.Option("--eager", help="The engine runs without CUDA graphs (vLLM --enforce-eager): on GPUs each step "
                                            "takes at least its kernels' launch time (one-workload mode; fleet files: a workload's eager).")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the plan (JSON, or YAML for .yaml) to this file, atomically.")] = None,
        verify: Annotated[bool, typer.Option("--verify", help="Play the plan through the simulator; add capacity and re-solve until it holds (exit 3 if it never does).")] = False,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of --verify's simulated traffic.")] = 0,
        jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Processes for evaluating a large fleet's candidates, "
                                                 "for a plan over demand periods' hours and for --verify's simulated deployments "
                                                 "(default: every core this process may use; the plan is identical with 1).")] = None,
        autoscaler: Annotated[Path | None, typer.Option("--autoscaler", help="Write KEDA ScaledObjects for a plan over demand periods (YAML).")] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="Draw a plan over demand periods (capacity by pricing model against demand), or with --pareto the front (.png or .svg).")] = None,
        pareto: Annotated[bool, typer.Option("--pareto", help="Print the cost-versus-latency front: the fleet sized with its TTFT/TPOT targets scaled 0.3x to 3x.")] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:  # fmt: skip
        """Pick the cheapest set of whole cloud instances that serves every workload within its latency targets."""
        from aicap.cli.files import write_atomic
        from aicap.sizing.core.errors import InfeasibleError, InputError
        from aicap.sizing.plan.fleet_io import build_fleet, builtin_fleet, load_fleet, split_list
        from aicap.sizing.plan.sizer import size

        if output is not None:  # fail before sizing, not after (write_atomic checks again)
            from aicap.cli.files import check_writable

            check_writable(output, "--output", [fleet_file, *STATE.catalogs])
            if (kind := output.suffix.lower()) in {".csv", ".md", ".markdown"}:  # it wrote JSON into them
                shown = "csv" if kind == ".csv" else "markdown"
                raise InputError(f"--output {output}: writes the plan document, JSON (or YAML for .yaml); for a {shown} table "
                                 f"redirect the output: -f {shown} > {output}")  # fmt: skip
        check_plot(plot)
        check_engine(engine)
        for named, devices in (("--hardware", hardware), ("--prefill-hardware", prefill_hardware), ("--decode-hardware", decode_hardware)):
            check_hardware(devices, named)
        if seed < 0:
            raise InputError(f"--seed {seed}: must be >= 0")
        if typed_flags(ctx, "seed") and not verify:  # the static sizer draws nothing: a seed that changes nothing is a mistake to name
            raise InputError(f"--seed {seed} seeds --verify's simulated traffic; the plan without --verify draws none: add --verify "
                             "or drop --seed")  # fmt: skip
        cat = catalogue()
        overrides = {"cloud": cloud, "hardware": hardware, "pricing": pricing, "budget": budget, "objective": objective,
                     "single_type": single_type or None, "engine": engine, "search": search}  # fmt: skip
        pools = {
            "prefill_hardware": split_list(prefill_hardware),
            "decode_hardware": split_list(decode_hardware),
            "transfer_gbps": transfer_gbps,
        }
        if not disaggregate and any(v is not None for v in pools.values()):
            raise InputError("--prefill-hardware, --decode-hardware and --transfer-gbps shape --disaggregate: add it")
        check_workload_source(ctx, model, fleet_file)
        if model is not None:
            spec = cat.model(model)
            if tpot_ms is not None:  # its TPOT was shown '-', the target dropped
                check_tpot_target(tpot_ms, model, spec.kind)
            input_tokens, output_tokens = workload_lengths(ctx, spec, input_tokens, output_tokens)
            fleet = build_fleet(model=model, rate=rate, input_tokens=input_tokens, output_tokens=output_tokens, ttft_ms=ttft_ms,
                                tpot_ms=tpot_ms, percentile=percentile, precision=precision, arrival_cv=arrival_cv,
                                prefix_cached=prefix_cached,
                                speculative=speculative_config(speculative, draft_model, draft_tokens, acceptance),
                                disaggregation=pools if disaggregate else None, eager=eager, **overrides)  # fmt: skip
        elif eager:
            raise InputError("--eager sizes one workload (with --model); in a fleet file give a workload eager: true")
        elif disaggregate:
            raise InputError("--disaggregate sizes one workload (with --model); in a fleet file give a workload disaggregation: {}")
        elif speculative is not None or draft_model is not None or draft_tokens is not None or acceptance is not None:
            raise InputError("--speculative and its options size one workload (with --model); in a fleet file give a workload "
                             "speculative: {method: ..., acceptance: ...}")  # fmt: skip
        elif fleet_file is not None:
            replaced: list[tuple[str, object, str, object]] = []
            fleet = load_fleet(fleet_file, replaced=replaced, **overrides)
            for flag, value, key, old in replaced:  # an option replaces the file's constraint, it does not narrow it
                info(f"aicap: note: {flag} {value} replaces {fleet_file.name}'s constraints.{key} ({old})")
        else:
            info("aicap: no fleet given; sizing the built-in example (chat, long-context summariser, embeddings). See `aicap size --help`.")
            fleet = builtin_fleet(**overrides)
        _warn_shadowing(fleet, cat)
        periodic = any(w.profile is not None for w in fleet.workloads) or len(fleet.constraints.pricing_models) > 1
        why = "(a workload with an hourly profile, or several pricing models)"
        if pareto:
            if periodic or verify or autoscaler is not None or output is not None:
                raise InputError("--pareto sizes one static fleet: drop --verify, --autoscaler and --output, and give one rate per workload "
                                 "and one pricing model")  # fmt: skip
            _pareto(fleet, cat, plot, fmt)
            return
        if not periodic and autoscaler is not None:
            raise InputError(f"--autoscaler writes settings for plans over demand periods {why}")
        if not periodic and plot is not None:
            raise InputError(f"--plot draws plans over demand periods {why}")
        try:  # name the fleet file when the sizer finds a bad id or length in it
            if periodic:
                from aicap.sizing.plan.periods import size_periods
                from aicap.sizing.sim.verify_periods import size_periods_verified

                pplan = size_periods_verified(fleet, cat, seed=seed, jobs=jobs) if verify else size_periods(fleet, cat, jobs=jobs)
            elif verify:
                from aicap.sizing.sim.verify import size_verified

                plan = size_verified(fleet, cat, seed=seed, jobs=jobs)
            else:
                plan = size(fleet, cat, jobs=jobs)
        except InputError as exc:
            if fleet_file is None or str(exc).startswith(str(fleet_file)):
                raise
            from aicap.sizing.core.doc_errors import located

            raise InputError(f"{located(fleet_file, str(exc))}: {exc}") from None
        if periodic:
            if plot is not None:
                from aicap.sizing.plan.periods_plot import plot_periods

                plot_periods(pplan, cat, str(plot))
                info(f"aicap: wrote {plot}")
            if autoscaler is not None:
                import yaml

                from aicap.sizing.plan.periods import keda_floor_usd_per_month, keda_scaled_objects

                write_atomic(autoscaler, yaml.safe_dump_all(keda_scaled_objects(pplan), sort_keys=False))
                info(f"aicap: wrote {len(pplan.autoscaling)} KEDA ScaledObject(s) to {autoscaler}")
                if (floor := keda_floor_usd_per_month(pplan, cat)) > 0.005:
                    info(f"aicap: note: the ScaledObjects keep at least one replica of each deployment (with no pods there is no metric "
                         f"to wake on): in the hours the plan runs none, that costs at least ${floor:,.0f}/month more than the plan's "
                         f"${pplan.totals.usd_per_month:,.0f}. Each also scales on its own load: moving traffic between deployments "
                         "as the hourly plan does needs a router that follows it")  # fmt: skip
        view = period_plan_view(pplan) if periodic else plan_view(plan)
        for note in view.notes:
            info(f"aicap: {note}")
        if output is not None:
            write_atomic(output, to_yaml(view.document) if output.suffix.lower() in {".yaml", ".yml"} else to_json(view.document))
            info(f"aicap: wrote plan to {output}")
        emit(View(view.document, view.tables, csv=view.csv), fmt)
        if periodic and pplan.verification is not None and not pplan.verification.holds:
            missed = ", ".join(f"{c.workload} on {c.instance_type} at hour {c.hour}" for c in pplan.verification.checks if not c.holds)
            raise InfeasibleError(f"in simulation, the busiest hour still misses its targets after {pplan.verification.resolves} "
                                  f"re-plans: {missed}")  # fmt: skip
        if not periodic and plan.verification is not None and not plan.verification.holds:
            cv = {w.name: w.arrival_cv for w in plan.inputs.workloads}
            parts = []
            for x in plan.verification.workloads:
                if x.holds:
                    continue
                tails = [f"{k} {x.percentile} {sim:,.0f} ms vs {tgt:,.0f}" for k, sim, tgt in
                         (("TTFT", x.simulated_ttft_ms, x.ttft_target_ms), ("TPOT", x.simulated_tpot_ms, x.tpot_target_ms))
                         if sim is not None and tgt is not None and sim > tgt]  # fmt: skip
                bursty = (f"; its arrivals are bursty (cv {cv[x.workload]:g}): a tail set by bursts needs more headroom than cutting a "
                          "layout's capacity gives, so raise the target, lower the percentile or size for a higher rate"
                          if cv.get(x.workload, 1.0) > 1.0 else "")  # fmt: skip
                parts.append(f"{x.workload} ({', '.join(tails) or 'an unbounded queue'}{bursty})")
            raise InfeasibleError(
                f"the plan still misses its targets in simulation after {plan.verification.resolves} re-solves: " + "; ".join(parts)
            )

    def _pareto(fleet: Fleet, cat: CatalogueLike, plot: Path | None, fmt: Format) -> None:
        from aicap.sizing.plan.pareto import FACTORS, pareto, plot_pareto

        with progress(len(FACTORS), "sizing the front", enabled=not STATE.quiet) as tick:
            front = pareto(fleet, cat, on_done=tick)
        if plot is not None:
            plot_pareto(front, str(plot), f"Cost against latency: {', '.join(w.name for w in fleet.workloads)}")
            info(f"aicap: wrote {plot}")
        rows = [[p.target_scale, p.usd_per_month, p.devices, p.ttft_ms, p.tpot_ms, p.tokens_per_s_per_device, p.tokens_per_s_per_user,
                 "◀ chosen" if p.chosen else ""] for p in front.pareto]  # fmt: skip
        caption = ("Each row is a full plan with every workload's TTFT and TPOT targets scaled by the factor; rows no other plan beats on "
                   "cost, TTFT and TPOT together. TTFT/TPOT: the worst workload's promised percentile.")  # fmt: skip
        cols = ["target_scale", "usd_per_month", "devices", "ttft_ms", "tpot_ms", "tokens_per_s_per_device", "tokens_per_s_per_user"]
        flat = Table("pareto", [*cols, "chosen"], [[getattr(p, c) for c in cols] + [p.chosen] for p in front.pareto])  # one value a cell
        emit(View(front.model_dump(mode="json"), [Table("Cost against latency (Pareto front)", ["target scale", "$/month", "devices",
             "TTFT ms", "TPOT ms", "tok/s per device", "tok/s per user", ""], rows, caption)], csv=flat), fmt)  # fmt: skip

    schema_app = typer.Typer(help="JSON Schemas of aicap's documents.", no_args_is_help=True)
    app.add_typer(schema_app, name="schema")

    for name, target, about in _SCHEMAS:
        schema_app.command(name, help=about)(_schema_command(target))

    from aicap.cli.commands import ci_cmds

    ci_cmds.register(app, schema_app)
