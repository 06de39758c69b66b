"""``aicap whatif``: the same demand sized under alternatives (formats, KV cache, sparsity, pruning, students, speculative decoding)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aicap.cli.render import Format, FormatOpt, Table, View, emit, progress
from aicap.cli.state import (
    STATE,
    catalogue,
    check_engine,
    check_hardware,
    check_plot,
    check_workload_source,
    guarded,
    info,
    typed_flags,
    warn_shadowing,
    workload_lengths,
)
from aicap.sizing.core.errors import InputError

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike
    from aicap.sizing.core.fleet import Fleet
    from aicap.sizing.plan.whatif import Change


def whatif_view(doc: Any) -> View:
    """One row per alternative, the baseline first."""
    rows = []
    for a in doc.alternatives:
        delta = None if a.delta_usd_per_month is None else f"{a.delta_usd_per_month:+,.0f}"
        rows.append([a.name, a.hardware or f"none: {a.infeasible}", a.usd_per_month, delta, a.ttft_ms, a.tpot_ms, a.memory_headroom_pct,
                     a.quality_note])  # fmt: skip
    sources = [f"{a.name}: {a.quality_source}" for a in doc.alternatives if a.quality_source]
    assumed = [f"{a.name}: {a.assumption}" for a in doc.alternatives if a.assumption]
    caption = ("Each row is a full plan for the same demand. TTFT/TPOT: the worst workload's promised percentile. Headroom: the least "
               "share of usable device memory left for KV cache and activations. Quality notes are published figures for the model "
               "named, not predictions for yours. " + "".join(f"Assumed: {x}. " for x in assumed) + "Sources: " + "; ".join(sources))  # fmt: skip
    csv = Table("", ["alternative", "hardware", "infeasible", "usd_per_month", "delta_usd_per_month", "ttft_ms", "tpot_ms",
                     "memory_headroom_pct", "quality_note"],
                [[a.name, a.hardware, a.infeasible, a.usd_per_month, a.delta_usd_per_month, a.ttft_ms, a.tpot_ms, a.memory_headroom_pct,
                  a.quality_note] for a in doc.alternatives])  # fmt: skip
    return View(doc.model_dump(mode="json"), [Table("What if", ["alternative", "hardware", "$/month", "Δ $/month", "TTFT ms", "TPOT ms", "headroom %",
                                        "quality note"], rows, caption)], csv=csv)  # fmt: skip


def _pareto(fleet: Fleet, cat: CatalogueLike, changes: list[Change], plot: Path | None, fmt: Format) -> None:
    """``whatif --pareto``: every alternative's front in one table, the joint front marked."""
    from aicap.sizing.plan.pareto import FACTORS, plot_pareto, whatif_pareto

    with progress(len(FACTORS) * (len(changes) + 1), "sizing the fronts", enabled=not STATE.quiet) as tick:
        fronts = whatif_pareto(fleet, cat, changes, on_done=tick)
    if plot is not None:
        plot_pareto(fronts, str(plot), f"Cost against latency by alternative: {', '.join(w.name for w in fleet.workloads)}")
        info(f"aicap: wrote {plot}")
    rows = [[p.alternative, p.target_scale, p.usd_per_month, p.devices, p.ttft_ms, p.tpot_ms, p.tokens_per_s_per_device,
             "★" if p.on_front else "", "◀ chosen" if p.chosen else ""] for p in fronts.pareto]  # fmt: skip
    caption = ("Each row is a full plan with every workload's TTFT and TPOT targets scaled by the factor, on its alternative's front. "
               "★: no plan of any alternative beats it on cost, TTFT and TPOT together. TTFT/TPOT: the worst workload's promised "
               "percentile." + "".join(f" No plan for {n}: {why}." for n, why in fronts.no_plan.items()))  # fmt: skip
    emit(View(fronts.model_dump(mode="json"), [Table("Cost against latency by alternative (Pareto fronts)", ["alternative", "target scale",
         "$/month", "devices", "TTFT ms", "TPOT ms", "tok/s per device", "best", ""], rows, caption)]), fmt)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``whatif`` to the root app."""

    @app.command("whatif")
    @guarded
    def whatif_cmd(
        ctx: typer.Context,
        fleet_file: Annotated[Path | None, typer.Argument(metavar="[FLEET.yaml]", help="Fleet file; omit it (and --model) for the built-in example.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="One workload of this model instead of a fleet file.")] = None,
        rate: Annotated[float | None, typer.Option("--rate", help="Requests per second (one-workload mode).")] = None,
        input_tokens: Annotated[int, typer.Option("--input-tokens", help="Prompt tokens of each request: throughput, tail latency and memory are sized for this length (a fleet file takes a histogram of lengths). Left at the default, a model whose context is shorter reads what its context holds (an encoder its max context, a decoder what the output leaves).")] = 1024,
        output_tokens: Annotated[int, typer.Option("--output-tokens", help="Generated tokens of each request (a fleet file takes a histogram).")] = 256,
        ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", help="TTFT target at the percentile (ms).")] = None,
        tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="TPOT target (ms).")] = None,
        percentile: Annotated[str, typer.Option("--percentile", help="p50, p90, p95 or p99.")] = "p99",
        precision: Annotated[str | None, typer.Option("--precision", help="Baseline weight formats (default bf16,fp8; a quantised checkpoint's format and bf16).")] = None,
        cloud: Annotated[str | None, typer.Option("--cloud", help="Comma-separated clouds: aws,gcp,azure,on-prem (owned machines, with --pricing owned).")] = None,
        hardware: Annotated[str | None, typer.Option("--hardware", help="Comma-separated device ids to allow.")] = None,
        engine: Annotated[str | None, typer.Option("--engine", help="Serving engine profile for workloads without their own.")] = None,
        alternatives: Annotated[str, typer.Option("--alternatives", help="Comma-separated: fp8, int8, int4, nvfp4, mxfp4, kv-fp8, kv-int8, spec-eagle, spec-mtp, spec-ngram, sparse-2:4, prune-N (MLP width pruned by N% of the parameters), disaggregate (separate prefill and decode pools).")] = "fp8,int4,kv-fp8,spec-eagle",
        buy_vs_rent: Annotated[bool, typer.Option("--buy-vs-rent", help="Compare renting the fleet (its pricing model) with owning the hardware, and the break-even utilisation.")] = False,
        pricing: Annotated[str | None, typer.Option("--pricing", help="Pricing model of the baseline: on_demand (default), spot, reserved_1y, reserved_3y or owned.")] = None,
        student: Annotated[list[str] | None, typer.Option("--student", help="Also try serving this smaller model (same tokenizer) in place of larger decoders; repeatable.")] = None,
        draft_model: Annotated[str | None, typer.Option("--draft-model", help="Also try speculative decoding with this draft model (same tokenizer); needs --acceptance.")] = None,
        acceptance: Annotated[float | None, typer.Option("--acceptance", help="Per-token acceptance, 0-1, for --draft-model and the spec-* alternatives (default: each method's published figure).")] = None,
        pareto: Annotated[bool, typer.Option("--pareto", help="Print each alternative's cost-versus-latency front (targets scaled 0.3x to 3x), marking the plans no alternative beats.")] = False,
        plot: Annotated[Path | None, typer.Option("--plot", help="With --pareto: draw the fronts (.png or .svg; the plot extra).")] = None,
        fmt: FormatOpt = Format.table,
    ) -> None:  # fmt: skip
        """Size the same demand under alternatives and compare cost, latency, memory and published quality."""
        from aicap.hardware_db.launch import quality_figures
        from aicap.sizing.plan.fleet_io import build_fleet, builtin_fleet, load_fleet
        from aicap.sizing.plan.whatif import Change, applies, named_change, whatif, with_acceptance

        check_workload_source(ctx, model, fleet_file)
        check_plot(plot)
        check_engine(engine)
        check_hardware(hardware)
        if model is not None and rate is None:
            raise InputError("--rate is required with --model (requests per second)")
        if buy_vs_rent:
            other = typed_flags(ctx, "alternatives", "student", "draft_model", "acceptance", "pareto", "plot")
            if other:
                raise InputError(f"--buy-vs-rent compares renting with owning the baseline plan; {other[0]} shapes the alternatives "
                                 "it does not size: choose one")  # fmt: skip
        cat = catalogue()
        if model is not None:
            warn_shadowing(model, cat.model(model))
            input_tokens, output_tokens = workload_lengths(ctx, cat.model(model), input_tokens, output_tokens)
            fleet = build_fleet(model=model, rate=rate, input_tokens=input_tokens, output_tokens=output_tokens, ttft_ms=ttft_ms,
                                tpot_ms=tpot_ms, percentile=percentile, precision=precision, cloud=cloud, hardware=hardware,
                                engine=engine, pricing=pricing)  # fmt: skip
        elif fleet_file is not None:
            replaced: list[tuple[str, object, str, object]] = []
            fleet = load_fleet(fleet_file, replaced=replaced, cloud=cloud, hardware=hardware, engine=engine, pricing=pricing)
            for flag, value, key, old in replaced:  # an option replaces the file's constraint, as size says (it was silent)
                info(f"aicap: note: {flag} {value} replaces {fleet_file.name}'s constraints.{key} ({old})")
        else:
            info("aicap: no fleet given; comparing alternatives for the built-in example. See `aicap whatif --help`.")
            fleet = builtin_fleet(cloud=cloud, hardware=hardware, engine=engine, pricing=pricing)
        if buy_vs_rent:
            from aicap.sizing.plan.buy_vs_rent import buy_vs_rent as compare

            b = compare(fleet, cat)
            rows = [[f"rent ({b.rent_pricing})", b.rent_hardware, b.rent_usd_per_month], ["own", b.own_hardware, b.own_usd_per_month]]
            if b.rent_over_profile_usd_per_month is not None:
                rows.insert(1, [f"rent ({b.rent_pricing}), scaled hour by hour", "as the hour needs", b.rent_over_profile_usd_per_month])
            caption = (f"Break-even utilisation {b.break_even_utilisation_pct:g}%: a rented fleet held less than this share of the month "
                       f"costs less than owning one. {b.note}.")  # fmt: skip
            for n in b.notes:
                info(f"aicap: note: {n}")
            emit(View(b.model_dump(mode="json"), [Table("Buy versus rent", ["", "hardware", "$/month"], rows, caption)]), fmt)
            return
        named = [n.strip() for n in alternatives.split(",") if n.strip()]
        twice = [n for n in dict.fromkeys(named) if named.count(n) > 1]
        if twice:  # each is compared once: say so rather than print one row for two names
            info(f"aicap: note: --alternatives names {', '.join(twice)} more than once: each is compared once")
        changes = [named_change(n) for n in dict.fromkeys(named)]
        if not changes and not student and draft_model is None:  # --alternatives "" compared the baseline with nothing
            raise InputError("--alternatives names no alternative: give at least one (fp8, int4, kv-fp8, spec-eagle, ...; see --help)")
        if not typed_flags(ctx, "alternatives"):  # the defaults: leave out those this fleet has nothing for (an encoder's KV cache)
            idle = [c.name for c in changes if not applies(fleet, c, cat)]
            if idle:
                info(f"aicap: left out {', '.join(idle)}: no workload of this fleet has it to change")
                changes = [c for c in changes if c.name not in idle]
        changes += [Change(f"student {s}", "student", _model_of(cat, s, "--student").id) for s in student or []]
        changes = with_acceptance(changes, draft_model and _model_of(cat, draft_model, "--draft-model").id, acceptance)
        if plot is not None and not pareto:
            raise InputError("--plot draws the fronts of --pareto: add --pareto")
        if pareto:
            _pareto(fleet, cat, changes, plot, fmt)
            return
        with progress(len(changes) + 1, "sizing alternatives", enabled=not STATE.quiet) as tick:
            result = whatif(fleet, cat, changes, quality_figures(), on_done=tick)
        for n in result.notes:  # caveats go to stderr, as size's warnings do (-q silences them); the document keeps them
            info(f"aicap: note: {n}")
        emit(whatif_view(result), fmt)


def _model_of(cat: CatalogueLike, ref: str, flag: str) -> Any:
    """The model ``ref`` names; an unknown one is an input error naming ``flag`` (the fleet's own models are named elsewhere)."""
    from aicap.sizing.core.errors import UnknownIdError

    try:
        return cat.model(ref)
    except UnknownIdError as exc:
        raise InputError(f"{flag}: {exc}") from None
