"""``aicap simulate``: replay traffic through one deployment (or every deployment of a plan) under a scheduling policy."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from aicap.cli.commands.estimate_cmd import (
    AcceptOpt,
    DevicesOpt,
    DpaOpt,
    DraftModelOpt,
    DraftTokensOpt,
    EagerOpt,
    EngineOpt,
    EpOpt,
    KvOpt,
    PpOpt,
    PrefixOpt,
    SpecOpt,
    TpOpt,
    WdtOpt,
    build_request,
    speculative_config,
)
from aicap.cli.commands.simulate_checks import (
    check_some_policy_holds,
    check_whole_prompts,
    floats,
    missed_targets,
    note_short_run,
    warn_unbounded,
)
from aicap.cli.commands.simulate_views import alike_policies_note, compare_view, idle_queue_note, report_view
from aicap.cli.render import Format, FormatOpt, Table, View, emit, progress
from aicap.cli.state import STATE, catalogue, check_plot, check_tpot_target, guarded, info, prompt_tokens, typed_flags

if TYPE_CHECKING:
    from aicap.sizing.core.fleet import Percentile
    from aicap.sizing.sim.report import SimulationReport

PERCENTILES = ("p50", "p90", "p95", "p99")

#: Options ``aicap simulate PLAN`` uses; a plan brings its own traffic, layouts and targets.
PLAN_OPTIONS = frozenset(
    {"plan", "seed", "policy", "router", "predictor_error", "quantum", "sjf_by", "aging", "fmt", "jobs", "per_replica"}
)


#: Options ``--disaggregate`` does not take: it simulates both pools with the engine's defaults under ``--policy`` alone.
_NOT_DISAGGREGATED = ("ep", "dp_attention", "eager", "prefix_cached", "speculative", "draft_model", "draft_tokens", "acceptance",
                      "max_num_seqs", "max_batched_tokens", "chunked_prefill", "prefill_first", "overlap_scheduling", "scheduler_steps",
                      "ignore_eos", "prefix_cache",
                      "predictor_error", "quantum", "sjf_by", "aging", "class_weights", "compare_policies", "jobs", "plot")  # fmt: skip


def _asked(rep: SimulationReport, rate: float) -> SimulationReport:
    """``rep`` whose setup states the rate asked for beside the rate its random draw realises (``requested_rate_per_s``)."""
    return rep.model_copy(update={"setup": rep.setup.model_copy(update={"requested_rate_per_s": rate})})


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the root app."""

    @app.command("simulate")
    @guarded
    def simulate_cmd(
        ctx: typer.Context,
        plan: Annotated[
            Path | None, typer.Argument(help="A plan JSON from `aicap size -f json`: simulate each of its deployments.")
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", "-m", help="Model id, or a path to a Hugging Face config.json or model YAML.")
        ] = None,
        hardware: Annotated[str | None, typer.Option("--hardware", help="Device id (see `aicap hardware list`).")] = None,
        devices: DevicesOpt = None,
        tp: TpOpt = None,
        pp: PpOpt = None,
        ep: EpOpt = 1,
        dp_attention: DpaOpt = 1,
        eager: EagerOpt = False,
        weights_dtype: WdtOpt = None,
        kv_dtype: KvOpt = None,
        engine: EngineOpt = None,
        prefix_cached: PrefixOpt = 0.0,
        speculative: SpecOpt = None,
        draft_model: DraftModelOpt = None,
        draft_tokens: DraftTokensOpt = None,
        acceptance: AcceptOpt = None,
        replicas: Annotated[
            int | None, typer.Option("--replicas", help="Replicas behind the router (default: --devices / (tp·pp), else 1).")
        ] = None,
        disaggregate: Annotated[
            bool,
            typer.Option(
                "--disaggregate",
                help="Simulate a prefill pool (--hardware, --prefill-replicas) and a decode pool (--decode-hardware, --replicas) end to end, the KV cache crossing the link. Here --devices (or --tp/--pp) bounds ONE replica of each pool, not the total.",
            ),
        ] = False,
        decode_hardware: Annotated[
            str | None, typer.Option("--decode-hardware", help="With --disaggregate: the decode pool's device (default --hardware).")
        ] = None,
        prefill_replicas: Annotated[int, typer.Option("--prefill-replicas", help="With --disaggregate: prefill replicas.")] = 1,
        transfer_gbps: Annotated[
            float | None,
            typer.Option(
                "--transfer-gbps",
                help="With --disaggregate: KV link per device, Gbit/s (default: the slowest RDMA-class network of the two devices' instance types).",
            ),
        ] = None,
        rate: Annotated[float | None, typer.Option("--rate", help="Mean arrival rate, requests/s (open loop).")] = None,
        concurrency: Annotated[
            int | None, typer.Option("--concurrency", help="Closed loop: clients that each send the next request when the last finishes.")
        ] = None,
        arrival: Annotated[str, typer.Option("--arrival", help="poisson, gamma (with --cv) or constant.")] = "poisson",
        cv: Annotated[float, typer.Option("--cv", help="Coefficient of variation of inter-arrival gaps (gamma).")] = 2.0,
        input_tokens: Annotated[
            int,
            typer.Option(
                "--input-tokens",
                help="Prompt tokens per request (fixed). Left at the default, a model whose context is shorter reads what its context holds (an encoder its max context, a decoder what the output leaves).",
            ),
        ] = 1024,
        output_tokens: Annotated[int, typer.Option("--output-tokens", help="Output tokens per request (fixed).")] = 256,
        dataset: Annotated[
            str | None, typer.Option("--dataset", help="Length histogram of a public trace (see `aicap simulate --list-datasets`).")
        ] = None,
        trace: Annotated[
            Path | None, typer.Option("--trace", help="Replay a CSV (arrival_s,input_tokens,output_tokens[,priority]) or JSONL trace.")
        ] = None,
        requests: Annotated[int, typer.Option("--requests", help="Requests to simulate (synthetic traffic).")] = 10_000,
        seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw.")] = 0,
        policy: Annotated[str, typer.Option("--policy", help="fcfs, sjf, srtf, rr, priority or edf.")] = "fcfs",
        router: Annotated[str, typer.Option("--router", help="round_robin, least_outstanding or shortest_queue.")] = "round_robin",
        ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", help="TTFT target for SLO attainment (and EDF deadlines).")] = None,
        tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", help="TPOT target for SLO attainment.")] = None,
        percentile: Annotated[str, typer.Option("--percentile", help="p50, p90, p95 or p99: where targets are checked.")] = "p99",
        classes: Annotated[
            str | None,
            typer.Option("--classes", help="Shares of priority classes 0,1,… of synthetic requests, e.g. 0.2,0.8 (class 0 first)."),
        ] = None,
        class_weights: Annotated[
            str | None, typer.Option("--class-weights", help="Weighted priority: admissions per class, e.g. 4,1 (default strict).")
        ] = None,
        predictor_error: Annotated[
            float, typer.Option("--predictor-error", help="Log-normal σ of the output-length predictor (sjf, srtf).")
        ] = 0.0,
        quantum: Annotated[int, typer.Option("--quantum", help="Round-robin time slice, decode steps.")] = 256,
        sjf_by: Annotated[str, typer.Option("--sjf-by", help="SJF job size: work (prompt + predicted output) or prompt.")] = "work",
        aging: Annotated[float, typer.Option("--aging", help="SJF aging: tokens of job size forgiven per second waited.")] = 100.0,
        max_num_seqs: Annotated[
            int | None, typer.Option("--max-num-seqs", help="Running-batch cap per replica (default: the runtime's).")
        ] = None,
        max_batched_tokens: Annotated[
            int | None, typer.Option("--max-batched-tokens", help="Token budget per step (default: the runtime's).")
        ] = None,
        chunked_prefill: Annotated[
            bool | None,
            typer.Option(
                "--chunked-prefill/--no-chunked-prefill", help="Split prompts over steps to fit the token budget (default: the engine's)."
            ),
        ] = None,
        prefill_first: Annotated[
            bool | None,
            typer.Option(
                "--prefill-first/--mixed-steps",
                help="A step that prefills decodes nothing (SGLang's and vLLM v0's scheduler), or prompt chunks ride along with "
                "decode steps (vLLM v1, TensorRT-LLM); default: the engine's.",
            ),
        ] = None,
        overlap_scheduling: Annotated[
            bool | None,
            typer.Option(
                "--overlap-scheduling/--no-overlap-scheduling",
                help="The engine schedules each step while the previous one runs, so a request arriving mid-step waits a step "
                "more (SGLang from 0.4, TensorRT-LLM, vLLM --async-scheduling); default: the engine's.",
            ),
        ] = None,
        ignore_eos: Annotated[
            bool,
            typer.Option(
                "--ignore-eos",
                help="Clients ask for every request's whole output (sglang.bench_serving's default). With "
                "--no-prefix-cache an engine that projects admission (SGLang) admits exactly what fits to the end.",
            ),
        ] = False,
        prefix_cache: Annotated[
            bool,
            typer.Option(
                "--prefix-cache/--no-prefix-cache",
                help="The server keeps a prefix cache (SGLang's radix cache; --no-prefix-cache for --disable-radix-cache).",
            ),
        ] = True,
        scheduler_steps: Annotated[
            int, typer.Option("--scheduler-steps", help="Decode steps per scheduling round (vLLM v0 --num-scheduler-steps).")
        ] = 1,
        compare_policies: Annotated[
            bool, typer.Option("--compare-policies", help="Run the same requests under every policy; one row each.")
        ] = False,
        per_replica: Annotated[
            bool,
            typer.Option(
                "--per-replica",
                help="With a plan: check it as `size --verify` does, one replica of each deployment alone at "
                "its share of the rate with the workload's whole burstiness (no router spreads it), the worst of three "
                "stretches of an hour.",
            ),
        ] = False,
        jobs: Annotated[
            int, typer.Option("--jobs", help="Processes for --compare-policies' policies or a plan's deployments (results identical to 1).")
        ] = 1,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Draw latency and queue length over time (.png or .svg; needs the plot extra).")
        ] = None,
        list_datasets: Annotated[
            bool, typer.Option("--list-datasets", help="List the shipped datasets with their sources and exit.")
        ] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Simulate serving traffic at iteration level: latency percentiles, SLO attainment, throughput, preemptions."""
        from aicap.sizing.core.errors import InfeasibleError, InputError
        from aicap.sizing.sim import replay
        from aicap.sizing.sim.cluster import ROUTERS
        from aicap.sizing.sim.report import Targets
        from aicap.sizing.sim.traffic import MAX_REQUESTS, ContextLimit, Lengths, TrafficSpec, dataset_names, load_trace
        from aicap.sizing.sim.traffic import dataset as get_dataset

        if list_datasets:
            ds_all = [get_dataset(n) for n in dataset_names()]
            ds_rows: list[list[str]] = [[d.name, d.description, f"{d.input_tokens.mean:,.0f}", f"{d.output_tokens.mean:,.0f}", d.source]
                                        for d in ds_all]  # fmt: skip
            emit(View({"datasets": [{"name": d.name, "description": d.description, "source": d.source,
                                     "mean_input_tokens": round(d.input_tokens.mean, 1), "mean_output_tokens": round(d.output_tokens.mean, 1)}
                                    for d in ds_all]},
                      [Table("Datasets (length histograms)", ["name", "description", "mean in", "mean out", "source"], ds_rows)]), fmt)  # fmt: skip
            return
        if plan is not None:  # before the values are checked: an option a plan does not take is refused as such
            misplaced = typed_flags(ctx, *(n for n in ctx.params if n not in PLAN_OPTIONS and n not in ("model", "hardware")))
            if misplaced:
                raise InputError(f"{misplaced[0]} does not apply to a plan, whose deployments are simulated at their planned rates, "
                                 "lengths and targets (a plan takes --seed, --policy and its options, --router and --jobs)")  # fmt: skip
        if policy not in replay.POLICIES:
            raise InputError(f"--policy {policy!r}: valid policies: {', '.join(replay.POLICIES)}")
        if plan is not None and policy == "priority":  # its classes come from --classes or a trace, neither of which a plan takes
            choices = ", ".join(p for p in replay.POLICIES if p != "priority")
            raise InputError(f"--policy priority orders requests by class and a plan's replay has none: choose {choices} for a plan, "
                             "or simulate a model with --classes or a --trace with a priority column")  # fmt: skip
        if router not in ROUTERS:
            raise InputError(f"--router {router!r}: valid routers: {', '.join(ROUTERS)}")
        if percentile not in PERCENTILES:
            raise InputError(f"--percentile {percentile!r}: valid: {', '.join(PERCENTILES)}")
        if arrival not in ("poisson", "gamma", "constant"):
            raise InputError(f"--arrival {arrival!r}: valid: poisson, gamma, constant")
        for flag, v in (("--requests", requests), ("--quantum", quantum), ("--jobs", jobs), ("--scheduler-steps", scheduler_steps)):
            if v < 1:
                raise InputError(f"{flag} {v}: must be >= 1")
        if seed < 0:
            raise InputError(f"--seed {seed}: must be >= 0")
        if requests > MAX_REQUESTS:
            raise InputError(f"--requests {requests:,}: at most {MAX_REQUESTS:,} (the simulator keeps about 1.3 KB per request); "
                             "for a longer horizon replay a --trace or run several --seed values")  # fmt: skip
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise InputError(f"--rate {rate:g}: must be a positive number of requests per second")
        if arrival == "gamma" and not (math.isfinite(cv) and 0 < cv <= 10):
            raise InputError(f"--cv {cv:g}: gamma arrivals need a coefficient of variation above 0 and at most 10 "
                             "(1 is Poisson-like, 2 bursty)")  # fmt: skip
        if replicas is not None and replicas > replay.MAX_REPLICAS_SEARCHED:
            raise InputError(f"--replicas {replicas:,}: at most {replay.MAX_REPLICAS_SEARCHED:,} behind one router "
                             "(simulate a share of the traffic on fewer replicas)")  # fmt: skip
        from aicap.sizing.core.fleet import MAX_TARGET_MS

        for flag, x in (("--ttft-ms", ttft_ms), ("--tpot-ms", tpot_ms)):  # as `size` bounds them: beyond a day is a unit slip
            if x is not None and not (math.isfinite(x) and 0 < x <= MAX_TARGET_MS):
                raise InputError(f"{flag} {x:g}: must be a positive number of milliseconds, at most {MAX_TARGET_MS:,.0f} (a day)")
        check_plot(plot)
        for flag, limit in (("--max-num-seqs", max_num_seqs), ("--max-batched-tokens", max_batched_tokens), ("--concurrency", concurrency),
                            ("--replicas", replicas)):  # fmt: skip
            if limit is not None and limit < 1:
                raise InputError(f"{flag} {limit}: must be >= 1")
        weights = floats(class_weights, "--class-weights", positive=True)
        shares = floats(classes, "--classes")
        if shares is not None and abs(sum(shares) - 1.0) > 1e-3:
            raise InputError(f"--classes {classes!r}: shares of the requests per class sum to {sum(shares):g}, not 1; "
                             f"give shares that sum to 1 (e.g. {','.join(f'{v / sum(shares):.3g}' for v in shares)})")  # fmt: skip
        if weights is not None and shares is not None and len(weights) != len(shares):
            raise InputError(f"--class-weights {class_weights!r}: {len(weights)} weights for the {len(shares)} classes of --classes; "
                             "give one weight per class")  # fmt: skip
        if plot is not None and compare_policies:
            raise InputError("--plot draws one run; --compare-policies runs one per policy: drop one of them")
        if compare_policies and typed_flags(ctx, "policy"):
            raise InputError(f"--policy {policy} picks one policy; --compare-policies runs every one: drop one of them")
        if policy == "priority" and not compare_policies and classes is None and trace is None:
            raise InputError("--policy priority orders requests by class: give --classes (shares of synthetic requests per class) "
                             "or a --trace with a priority column")  # fmt: skip
        if classes is not None and trace is not None:
            raise InputError("--classes draws priority classes for synthetic requests; a --trace brings its own (its priority column)")
        if class_weights is not None and policy != "priority" and not compare_policies:
            raise InputError(f"--class-weights weigh the classes of --policy priority, not of --policy {policy}")
        if not 0 <= predictor_error <= 5:
            raise InputError(f"--predictor-error {predictor_error:g}: the log-normal σ must be from 0 to 5 (5: off by e^5 ≈ 150x)")
        if not aging >= 0:
            raise InputError(f"--aging {aging}: must be >= 0 tokens/s")
        if sjf_by not in ("work", "prompt"):
            raise InputError(f"--sjf-by {sjf_by!r}: valid: work, prompt")
        options = replay.PolicyOptions(predictor_error=predictor_error, quantum_steps=quantum, aging_tokens_per_s=aging, sjf_by=sjf_by,
                                       class_weights=weights)  # fmt: skip
        on = not STATE.quiet
        if plan is not None:
            if model is not None or hardware is not None:
                raise InputError("give either a plan file or --model/--hardware, not both")
            from aicap.cli.commands.simulate_plan import simulate_plan_file

            if per_replica and (routed := typed_flags(ctx, "policy", "router", "predictor_error", "quantum", "sjf_by", "aging")):
                raise InputError(f"{routed[0]} does not apply with --per-replica, which checks each replica alone as `size --verify` "
                                 "does (fcfs, no router): drop one of them")  # fmt: skip
            simulate_plan_file(plan, seed=seed, policy=policy, router=router, options=options, fmt=fmt, progress_on=on, jobs=jobs,
                               per_replica=per_replica)  # fmt: skip
            return
        if per_replica:
            raise InputError("--per-replica checks a plan's replicas as `size --verify` does: give a plan file (aicap simulate plan.json)")
        if jobs != 1 and not compare_policies:
            raise InputError(f"--jobs {jobs} runs the policies of --compare-policies, or a plan's deployments, in parallel: add "
                             "--compare-policies or drop --jobs")  # fmt: skip
        if model is None or hardware is None:
            raise InputError("give --model and --hardware (a deployment to simulate), or a plan file")
        if rate is not None and concurrency is not None:
            raise InputError(f"--rate {rate:g} and --concurrency {concurrency} are two kinds of traffic, an open loop and a closed one: "
                             "give one of them")  # fmt: skip
        if rate is None and concurrency is None and trace is None:
            raise InputError("give --rate R (open loop) or --concurrency C (closed loop), or --trace FILE")
        if trace is not None and (clash := [f for f, v in (("--rate", rate), ("--dataset", dataset)) if v is not None]):
            raise InputError(f"--trace replays its own arrivals and lengths: drop {' and '.join(clash)}")
        if concurrency is not None and trace is None and requests < 2 * concurrency:
            info(f"aicap: note: {concurrency:,} clients send their first {min(concurrency, requests):,} requests at once, so a run of "
                 f"{requests:,} is mostly that burst; give --requests of ten times the clients or more for a steady state")  # fmt: skip
        # Options the run would ignore are refused, naming what they conflict with (they once ran silently).
        for given, others, why in (
            (
                trace,
                ("input_tokens", "output_tokens", "requests", "arrival", "cv", "concurrency"),
                "--trace replays its own arrivals and lengths",
            ),
            (dataset, ("input_tokens", "output_tokens"), f"--dataset {dataset} draws the lengths"),
            (concurrency, ("arrival", "cv"), "--concurrency runs a closed loop: each client sends when its last reply ends"),
        ):
            if given is not None and (clash := typed_flags(ctx, *others)):
                raise InputError(f"{why}: drop {', '.join(clash)}")
        if class_weights is not None and classes is None and trace is None:
            raise InputError("--class-weights weigh priority classes: give --classes (or a --trace with a priority column)")
        if (
            typed_flags(ctx, "percentile")
            and ttft_ms is None
            and tpot_ms is None
            and classes is None
            and trace is None
            and not disaggregate
            and not compare_policies
        ):  # (their tables report latencies at the percentile)
            raise InputError(f"--percentile {percentile} is where --ttft-ms/--tpot-ms are checked (and the per-class table's "
                             "statistic): give a target or --classes")  # fmt: skip
        if typed_flags(ctx, "cv") and arrival != "gamma":
            raise InputError(f"--cv shapes gamma arrivals: add --arrival gamma (or drop --cv; --arrival is {arrival})")
        if not compare_policies:  # (every policy runs under --compare-policies: each takes its own options)
            uses = {"predictor_error": ("sjf", "srtf"), "quantum": ("rr",), "sjf_by": ("sjf",), "aging": ("sjf",)}
            for name, policies in uses.items():
                if policy not in policies and (named := typed_flags(ctx, name)):
                    raise InputError(f"{named[0]} does not apply to --policy {policy}: it shapes {' and '.join(policies)}")
        spec = catalogue().model(model)
        target_kind = spec.kind
        context = getattr(spec, "max_context", None)
        context_limit = ContextLimit(spec.id, int(context), target_kind == "decoder") if context else None
        check_tpot_target(tpot_ms, model, target_kind)  # it was reported met by every request, with no TPOT measured
        if target_kind != "decoder":  # an encoder's (or generic model's) request is one forward pass: no tokens out
            if typed_flags(ctx, "output_tokens") and output_tokens > 0:
                raise InputError(f"--output-tokens {output_tokens}: {model} is an {target_kind} model and emits no tokens: drop it")
            output_tokens = 0  # the traffic line said '256 out' (the decoder default) beside 'mean 0 out'
        # one item a request (prompt_tokens reads a generic model's default as 1): a typed length or dataset is refused
        if target_kind == "generic" and (typed := typed_flags(ctx, "input_tokens") or (["--dataset"] if dataset is not None else [])):
            raise InputError(f"{typed[0]} applies to a model that reads tokens; {spec.id} is a generic model whose cost is per "
                             f"item (one {getattr(spec, 'item', 'item')} a request): drop it")  # fmt: skip
        if trace is not None:
            from aicap.sizing.core.fleet import check_prefix_cached
            from aicap.sizing.sim.traffic import cached_prefix

            reqs = load_trace(trace, limit=context_limit, min_output=1 if target_kind == "decoder" else 0)
            if bool((reqs.arrival_s[1:] < reqs.arrival_s[:-1]).any()):
                info(f"aicap: note: the rows of {trace.name} are not in arrival order: they are replayed by arrival_s")
            if target_kind == "generic":  # its arrivals replayed, each request one item: the lengths mean nothing to it
                info(f"aicap: note: {spec.id} is a generic model whose cost is per item: each request of {trace.name} is one item, "
                     "its input_tokens and output_tokens unread")  # fmt: skip
                import numpy as np

                reqs = replace(reqs, input_tokens=np.ones_like(reqs.input_tokens), output_tokens=np.zeros_like(reqs.output_tokens))
            if weights is not None:  # one weight per class, as with --classes (an unused weight was echoed as if it weighed)
                n_classes = 1 if reqs.priority is None else int(reqs.priority.max()) + 1
                if len(weights) != n_classes:
                    raise InputError(f"--class-weights {class_weights!r}: {len(weights)} weights for the {n_classes} priority "
                                     f"class{'es' if n_classes > 1 else ''} of {trace.name} (priority 0 to {n_classes - 1}); "
                                     "give one weight per class")  # fmt: skip
            if prefix_cached:
                check_prefix_cached(prefix_cached)
                reqs = replace(reqs, cached_tokens=cached_prefix(reqs.input_tokens, prefix_cached))
            label = f"trace {trace.name}"
        else:
            if dataset is not None:
                ds = get_dataset(dataset)
                lin, lout, label = ds.input_tokens, ds.output_tokens, f"dataset {dataset}"
            else:
                # (only fixed lengths read it: a trace or dataset has its own)
                input_tokens = prompt_tokens(ctx, input_tokens, spec, output_tokens)
                if input_tokens < 1:
                    raise InputError(f"--input-tokens {input_tokens}: a prompt has at least one token; give a positive count")
                if output_tokens < 1 and target_kind == "decoder":
                    raise InputError(f"--output-tokens {output_tokens}: a decoder generates at least one token; give a positive count")
                lin, lout, label = (
                    Lengths.fixed(input_tokens),
                    Lengths.fixed(output_tokens),
                    "one item a request" if target_kind == "generic" else f"fixed {input_tokens} in / {output_tokens} out",
                )
            kind = arrival if rate is not None else "poisson"
            label += "" if concurrency is not None else f", {kind} arrivals" + (f" (cv {cv:g})" if kind == "gamma" else "")
            reqs = TrafficSpec(requests, lin, lout, rate_per_s=rate, concurrency=concurrency, arrival=kind, cv=cv,  # type: ignore[arg-type]
                               class_shares=shares, seed=seed, cached_share=prefix_cached).build()  # fmt: skip
            if dataset is not None and context_limit is not None:  # (fixed lengths are judged with the layout, naming their flags)
                context_limit.check_drawn(reqs, f"--dataset {dataset}")
        if disaggregate:
            from aicap.cli.commands.simulate_pd import simulate_disaggregated

            if concurrency is not None:
                raise InputError("--disaggregate simulates open-loop traffic: give --rate or --trace, not --concurrency")
            if clash := typed_flags(ctx, *_NOT_DISAGGREGATED):
                raise InputError(
                    f"--disaggregate simulates the two pools with the engine's defaults and --policy alone: drop {', '.join(clash)}"
                )
            note_short_run(reqs.arrival_s.size, traced=trace is not None)  # (notes are held until the command ends)
            simulate_disaggregated(model, hardware, decode_hardware or hardware, reqs, devices=devices, tp=tp, pp=pp,
                                   prefill_replicas=prefill_replicas,
                                   replicas=replicas or 1, transfer_gbps=transfer_gbps, engine=engine, weights_dtype=weights_dtype,
                                   kv_dtype=kv_dtype, policy=policy, router=router, percentile=percentile, ttft_ms=ttft_ms,
                                   tpot_ms=tpot_ms, seed=seed, fmt=fmt)  # fmt: skip
            return
        if decode_hardware is not None or transfer_gbps is not None or prefill_replicas != 1:
            raise InputError("--decode-hardware, --prefill-replicas and --transfer-gbps shape --disaggregate: add it")
        est = build_request(model, hardware, devices, tp, pp, ep, "auto", max(int(reqs.input_tokens.mean()), 1),
                            int(reqs.output_tokens.mean()), weights_dtype, kv_dtype, None, engine, prefix_cached,
                            speculative_config(speculative, draft_model, draft_tokens, acceptance), dp_attention, eager)  # fmt: skip
        from aicap.sizing.serve.estimate import estimate

        longest = int((reqs.input_tokens - (0 if reqs.cached_tokens is None else reqs.cached_tokens)).max())
        overrides = {"chunked_prefill": chunked_prefill, "max_prefill_tokens": max_batched_tokens, "overlap_scheduling": overlap_scheduling}
        if any(x is not None for x in overrides.values()):  # the layout is chosen (and a long prompt judged) under the run's own settings
            est = replace(est, runtime=est.runtime.model_copy(update={k: x for k, x in overrides.items() if x is not None}))
            if chunked_prefill is not None or max_batched_tokens is not None:
                check_whole_prompts(est.runtime.chunked_prefill, longest, est.runtime.max_prefill_tokens)
        chosen = estimate(est)
        if not chosen.fits:
            raise InfeasibleError(f"{chosen.deployment.model.id} on {chosen.deployment.device.id}: {chosen.shortfall}")
        n_rep = replicas if replicas is not None else chosen.replicas
        used = chosen.replicas * chosen.deployment.tp * chosen.deployment.pp
        if devices is not None and used < devices:  # as estimate says it
            info(f"aicap: the layout uses {used} of the {devices} devices: TP{chosen.deployment.tp}·PP{chosen.deployment.pp} replicas "
                 f"of {chosen.deployment.tp * chosen.deployment.pp} leave {devices - used} over")  # fmt: skip
        if replicas is not None and devices is not None and replicas != chosen.replicas:
            per = chosen.deployment.tp * chosen.deployment.pp
            raise InputError(f"--devices {devices} makes {chosen.replicas} replica(s) of TP{chosen.deployment.tp}·PP{chosen.deployment.pp} "
                             f"({per} devices each), not --replicas {replicas}: give one of them")  # fmt: skip
        if n_rep < 1:
            raise InputError(f"--replicas {n_rep}: must be >= 1")
        if n_rep == 1 and not compare_policies and typed_flags(ctx, "router"):  # (--compare-policies searches replica counts)
            raise InputError(f"--router {router} spreads requests over replicas and this run has one: give --replicas N (or --devices "
                             "for several replicas), or drop --router")  # fmt: skip
        layout = chosen.deployment
        if prefix_cached and not prefix_cache:
            raise InputError(f"--prefix-cached {prefix_cached:g} needs a prefix cache: drop it or --no-prefix-cache")
        setup = replay.Setup(layout, replicas=n_rep, router=router, max_num_seqs=max_num_seqs, max_batched_tokens=max_batched_tokens,
                             prefill_first=prefill_first, decode_steps=scheduler_steps, ignore_eos=ignore_eos,
                             prefix_cache=prefix_cache)  # fmt: skip
        if named := typed_flags(ctx, "ignore_eos", "prefix_cache"):  # they choose SGLang's admission path, and nothing else
            flags = " and ".join(named)
            if setup.layout.runtime.admission is None:
                raise InputError(f"{flags} only {'change' if len(named) > 1 else 'changes'} an engine that projects admission "
                                 "(--engine sglang); the simulated requests already run to their given output lengths and reuse only "
                                 f"--prefix-cached: drop {'them' if len(named) > 1 else 'it'}")  # fmt: skip
            if not (ignore_eos and not prefix_cache):
                raise InputError(f"{flags}: SGLang admits exactly what fits only with both --ignore-eos and --no-prefix-cache; "
                                 "one alone changes nothing")  # fmt: skip
        eng = setup.engine()
        check_whole_prompts(eng.chunked_prefill, longest, eng.max_batched_tokens)
        checked_at = cast("Percentile", percentile) if ttft_ms is not None or tpot_ms is not None else None  # validated above
        targets = Targets(ttft_ms=ttft_ms, tpot_ms=tpot_ms, percentile=checked_at)
        asked = rate if rate is not None and trace is None and concurrency is None else None  # a drawn open-loop rate
        if compare_policies:
            todo = tuple(p for p in replay.POLICIES if not (p == "edf" and ttft_ms is None))
            if ttft_ms is None:
                info("aicap: note: edf skipped (it needs --ttft-ms); without targets there is no replica count to search")
            with progress(len(todo), "comparing policies", enabled=on) as tick:
                compared = replay.compare_policies(setup, reqs, policies=todo, targets=targets, percentile=percentile, options=options,
                                               concurrency=concurrency, seed=seed, traffic=label, jobs=jobs, on_done=tick)  # fmt: skip
            if asked is not None:  # as a single run's setup: the rate asked beside the draw's
                compared = [replace(r, report=_asked(r.report, asked)) for r in compared]
            emit(compare_view(compared, percentile), fmt)
            note_short_run(reqs.arrival_s.size, traced=trace is not None)
            if unstable := [r.policy for r in compared if not r.report.stable]:
                warn_unbounded(", ".join(unstable), n_rep, traced=trace is not None)
            alike = [p for p in todo if p in ("sjf", "srtf", "priority", "edf")]
            if reqs.uniform() and alike:
                info(f"aicap: note: every request has the same prompt and output lengths and one class, so {', '.join(alike)} order "
                     "them as fcfs does; give --dataset, --trace or --classes to compare them")  # fmt: skip
            elif note := alike_policies_note(compared, percentile):
                info(note)
            if not reqs.uniform() and (reqs.priority is None or not (reqs.priority != reqs.priority[0]).any()):
                more = "a trace whose priority column has more than one class" if trace is not None else "--classes"
                info("aicap: note: every request is in one priority class, so priority orders them as fcfs does (its row is fcfs's); "
                     f"give {more} to compare it")  # fmt: skip
            if ttft_ms is not None or tpot_ms is not None:
                check_some_policy_holds(compared, percentile, n_rep)
            return
        rep, raw, stats = replay.run_detailed(setup, reqs, policy=policy, options=options, targets=targets, concurrency=concurrency, seed=seed,
                                       traffic=label)  # fmt: skip
        if asked is not None:  # the draw's own rate is rate_per_s: say what was asked too
            rep = _asked(rep, asked)
        if plot is not None:
            from aicap.sizing.sim.plot import plot_run

            s = rep.setup
            plot_run(raw, stats, str(plot), f"{s.model} on {s.replicas}× TP{s.tp}·PP{s.pp} {s.hardware}, {s.traffic}, policy {s.policy}")
            info(f"aicap: wrote {plot}")
        emit(report_view(rep, percentile), fmt)
        note_short_run(rep.requests, traced=trace is not None)
        if not rep.stable and ttft_ms is None and tpot_ms is None:  # with a target, the miss below says it and exits 3
            warn_unbounded(policy, n_rep, served=rep.throughput.requests_per_s, traced=trace is not None)
        if policy != "fcfs" and (note := idle_queue_note(stats.timeline)):
            info(note)
        if rep.rejected:
            groups = rep.setup.dp_attention
            holder = "one replica's KV cache holds" if groups == 1 else f"one of a replica's {groups} attention groups holds"
            raise InfeasibleError(f"{rep.rejected:,} request(s) rejected: longer than {holder} "
                                  f"({(rep.setup.kv_cache_tokens or 0) // groups:,} tokens); use more devices per replica or shorter "
                                  "requests")  # fmt: skip
        if (ttft_ms is not None or tpot_ms is not None) and not replay.holds(rep, percentile):
            missed = missed_targets(rep, percentile)
            raise InfeasibleError(f"the simulated run misses a target: {'; '.join(missed) or 'nothing served'}")
