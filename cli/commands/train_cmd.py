"""``aicap train``: evaluate one training layout (``--devices``) or search for the best job."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from aicap.cli.render import Format, FormatOpt, Table, View, cell, emit, flat_table
from aicap.cli.state import catalogue, guarded, info, typed_flags, warn_shadowing

_SUFFIX = {
    "": 1.0,
    "k": 1e3,
    "m": 1e6,
    "b": 1e9,
    "g": 1e9,
    "t": 1e12,
    "p": 1e15,
    "ki": 2.0**10,
    "mi": 2.0**20,
    "gi": 2.0**30,
    "ti": 2.0**40,
}
MAX_DEVICES = 65_536
#: Default tokens per optimizer step in a search: 4 Mi for pre-training (Llama 2/3 used ~4M), 128 Ki for fine-tuning.
DEFAULT_BATCH = {"full": 2**22, "lora": 2**17, "qlora": 2**17}


def parse_tokens(text: str, flag: str = "--tokens") -> float:
    """``2T``, ``500B``, ``1.5e12``, ``10M`` or binary ``4Mi`` → a number of tokens, at least 1."""
    from aicap.sizing.core.errors import InputError

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP][iI]?)?\s*", text)
    if m is None or (m.group(2) or "").lower() not in _SUFFIX:
        raise InputError(f"{flag} {text!r}: expected a number of tokens such as 2T, 500B, 10M, 4Mi or 1.5e12")
    value = float(m.group(1)) * _SUFFIX[(m.group(2) or "").lower()]
    if not 1 <= value <= 1e18:
        raise InputError(f"{flag} {text!r}: must be at least 1 token and at most 1e18")
    if value != round(value):
        raise InputError(f"{flag} {text!r}: {value:,.6g} is not a whole number of tokens")
    return value


def significant(v: float) -> float:
    """A total rounded for reading: whole units from 10 up, three significant digits below.

    The estimate carries a band of tens of percent, so more digits would be noise; a short job's device-hours, dollars
    and kilowatt-hours are fractions that whole units would round to 0.
    """
    return float(round(v)) if abs(v) >= 10 else float(f"{v:.3g}")


def token_count(n: float) -> str:
    """A token count as people say it: ``100M``, ``15T``, ``2.5B``, ``131,072`` (four significant digits, no exponent)."""
    r = float(format(n, ".4g")) if n >= 1e6 else n  # rounded first, so 999,960,000 reads 1B, not 1000M
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if r >= scale:
            v = r / scale
            return f"{v:,.0f}{suffix}" if v >= 1000 else f"{v:.4g}{suffix}"
    return f"{n:,.0f}"


def amount(v: float) -> str:
    """:func:`significant` as a table cell prints it: ``12,366``, ``312``, ``4.57``, ``0.0262``."""
    return cell(significant(v))


def _usd(v: float | None) -> str:
    return "–" if v is None else f"${amount(v)}"


def layout_text(lay: dict[str, Any], short: bool = False) -> str:
    """``TP2·PP4·CP1·DP16·EP8, FSDP full, recompute full, micro-batch 1 × 8192 tokens`` (short: the degrees, sharding and any offload)."""
    degrees = f"TP{lay['tp']}·PP{lay['pp']}" + (f"·CP{lay['cp']}" if lay["cp"] > 1 or not short else "") + f"·DP{lay['dp']}"
    degrees += f"·EP{lay['ep']}" if lay["ep"] > 1 else ""
    degrees += f"·VP{lay['virtual_pipeline']}" if lay["virtual_pipeline"] > 1 else ""
    sharding = f"FSDP {lay['fsdp']}" if lay["fsdp"] != "none" else f"ZeRO-{lay['zero']}"
    offload = f", offload {lay['offload']}" if lay.get("offload", "none") != "none" else ""
    if short:
        return f"{degrees}, {sharding}, {lay['recompute']}{offload}"
    return f"{degrees}, {sharding}, recompute {lay['recompute']}, micro-batch {lay['micro_batch']} × {lay['seq_len']} tokens"  # (offload: recipe)


def duration(days: float) -> str:
    """Days, hours or minutes, whichever reads best."""
    if days >= 1:
        return f"{days:,.2f} days"
    if days * 24 >= 1:
        return f"{days * 24:,.2f} hours"
    if days * 1440 >= 1:
        return f"{days * 1440:,.1f} minutes"
    return f"{days * 86400:,.1f} seconds"


def job_rows(doc: dict[str, Any]) -> list[list[Any]]:
    """Key/value rows describing one job document."""
    lay = doc["layout"]
    mem = doc["memory_gib_per_device"]
    st = doc["step_breakdown_s"]
    layout = layout_text(lay)
    where = f"{doc['instances']}× {doc['instance']}" if doc["instance"] else "no catalogue instance"
    recipe = f"{lay['method']}" + (f" (rank {lay['lora_rank']} on {lay['lora_targets']})" if lay["method"] != "full" else "")
    if lay.get("mtp_depth"):
        recipe += f" + {lay['mtp_depth']} MTP module{'s' if lay['mtp_depth'] > 1 else ''}"
    schedule = [f"expert all-to-all {lay['ep_overlap']:.0%} hidden"] if lay.get("ep_overlap") and lay["ep"] > 1 else []
    schedule += [f"{100 * lay['comm_sm_share']:.3g}% of compute units kept for communication"] if lay.get("comm_sm_share") else []
    rows: list[list[Any]] = [
        ["job", f"{doc['model']} on {doc['devices']}× {doc['hardware']} ({where})"],
        ["recipe", f"{recipe}, {lay['precision']}, {lay['optimizer']}" + (", offload " + lay["offload"] if lay["offload"] != "none" else "")
                   + "".join(", " + x for x in schedule)],
        ["layout", layout],
        ["fits", "yes" if doc["fits"] else "NO: " + "; ".join(doc["advice"])],
        ["memory per device (GiB)", f"weights {mem['weights']:.1f} + gradients {mem['gradients']:.1f} + optimizer {mem['optimizer']:.1f} "
                                     f"+ activations {mem['activations']:.1f} + overhead {mem['overhead']:.1f} = {mem['total']:.1f} of {mem['capacity']:g}"
                                     + (f"; {mem['host_offload']:.1f} offloaded to host memory" if mem["host_offload"] > 0 else "")],
        ["step time", f"{doc['step_time_s']:,.3f} s for {doc['tokens_per_step']:,} tokens (compute {st['compute']:.3f}, TP {st['tensor_parallel']:.3f}, "
                      f"CP {st['context_parallel']:.3f}, EP {st['expert_parallel']:.3f}, PP bubble {st['pipeline_bubble']:.3f} + p2p {st['pipeline_p2p']:.3f}, "
                      f"DP exposed {st['data_parallel_exposed']:.3f}, optimizer {st['optimizer']:.3f})"],
        ["tokens/s per device", f"{doc['tokens_per_s_per_device']:,.0f} (band {doc['error_band']['tokens_per_s_per_device'][0]:,.0f}–"
                                f"{doc['error_band']['tokens_per_s_per_device'][1]:,.0f})"],
        ["model TFLOP/s per device", f"{doc['tflops_per_device']:,.1f} (MFU {doc['mfu_pct']:.1f}%, HFU {doc['hfu_pct']:.1f}%)"],
    ]  # fmt: skip
    if doc["tokens"] is not None:
        band = doc["error_band"]["wall_clock_days"]
        rows += [
            ["tokens", f"{token_count(doc['tokens'])} in {doc['steps']:,} steps"],
            ["wall clock", f"{duration(doc['wall_clock_days'])} (band {duration(band[0])} – {duration(band[1])})"],
            ["device-hours", amount(doc["device_hours"])],
            ["cost", _cost_text(doc)],
            ["energy", "–" if doc["energy_kwh"] is None else f"{amount(doc['energy_kwh'])} kWh at board power (before PUE)"],
        ]
    return rows


def _cost_text(doc: dict[str, Any]) -> str:
    """The cost row: each price the instance has, with the date the hourly prices were read."""
    text = ", ".join(f"{k} {_usd(v)}" for k, v in doc["usd"].items() if v is not None)
    if not text:
        return "no price for this hardware"
    return text + (f" (cloud prices of {doc['price_date']})" if doc.get("price_date") else "")


def _caption(doc: dict[str, Any]) -> str:
    band = doc["error_band"]
    text = f"band = ±{band['error_pct']:g}%: {band['basis']} (aicap validate --set training)."
    if not doc["efficiency_calibrated"]:
        text += (
            f" {doc['hardware']}'s family has no published measurement: its efficiency is inherited from the nearest "
            "fitted family (or a prior): expect larger errors."
        )
    elif not doc.get("training_measured", True):
        text += (
            f" {doc['hardware']}'s family has no published training run: its matmul efficiency is fitted on serving, and the "
            "training step model on other families' runs: expect larger errors than the band."
        )
    return text


def _efficiency(a: dict[str, Any]) -> str:
    """The efficiency column: fitted on serving or inherited, and whether any training run of the family was measured."""
    base = "fitted (serving)" if a["efficiency_calibrated"] else "inherited/prior"
    return base if a.get("training_measured", True) else f"{base}; no training run"


def register(app: typer.Typer) -> None:
    """Add ``train`` to the root app."""

    @app.command("train")
    @guarded
    def train_cmd(
        ctx: typer.Context,
        model: Annotated[str, typer.Option("--model", "-m", help="Model id, or a path to a Hugging Face config.json or model YAML.")],
        tokens: Annotated[str | None, typer.Option("--tokens", help="Training tokens: 2T, 500B, 1.5e12 (needed for days, cost and the search).")] = None,
        hardware: Annotated[list[str] | None, typer.Option("--hardware", help="Device id or instance name; with --devices the one to evaluate, else a filter (repeatable or comma-separated).")] = None,
        devices: Annotated[int | None, typer.Option("--devices", help="Evaluate this many devices in the given layout (no search).")] = None,
        tp: Annotated[int, typer.Option("--tp", help="Tensor parallel.")] = 1,
        pp: Annotated[int, typer.Option("--pp", help="Pipeline stages (1F1B).")] = 1,
        dp: Annotated[int | None, typer.Option("--dp", help="Data parallel (default: devices / (tp·pp·cp)).")] = None,
        cp: Annotated[int, typer.Option("--cp", help="Context parallel.")] = 1,
        ep: Annotated[int, typer.Option("--ep", help="Expert parallel (MoE; divides dp·cp).")] = 1,
        vp: Annotated[int, typer.Option("--virtual-pipeline", help="Interleaved model chunks per stage.")] = 1,
        zero: Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3.")] = 1,
        fsdp: Annotated[str, typer.Option("--fsdp", help="none, full (= ZeRO-3) or hybrid (sharded within 8-device groups).")] = "none",
        recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full activation recomputation.")] = "selective",
        micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = 1,
        seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")] = 4096,
        global_batch_tokens: Annotated[str | None, typer.Option("--global-batch-tokens", help="Tokens per optimizer step: 4M, 4Mi (default: 4Mi full, 128Ki LoRA/QLoRA, at least one micro-batch per replica).")] = None,
        precision: Annotated[str, typer.Option("--precision", help="bf16, fp16 or fp8 (fp8 linear layers).")] = "bf16",
        optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam8bit or sgd.")] = "adamw",
        offload: Annotated[str, typer.Option("--offload", help="none, optimizer or all (states in host memory).")] = "none",
        ep_overlap: Annotated[float, typer.Option("--ep-overlap", help="Share of the expert all-to-all hidden behind compute: 0 (Megatron's "
                                                  "default schedule) to 1 (a DualPipe-style schedule).")] = 0.0,
        comm_sm_share: Annotated[float, typer.Option("--comm-sm-share", help="Share of each device's compute units kept for communication "
                                                     "kernels running beside compute (DeepSeek-V3: 20 of 132 SMs = 0.152); the matmuls run on the rest.")] = 0.0,
        mtp_depth: Annotated[int, typer.Option("--mtp-depth", help="Multi-token-prediction modules trained with the model (DeepSeek-V3: 1): "
                                               "each adds a transformer block, a projection and an output-head pass per token.")] = 0,
        method: Annotated[str, typer.Option("--method", help="full, lora or qlora.")] = "full",
        lora_rank: Annotated[int, typer.Option("--lora-rank", help="LoRA rank.")] = 16,
        lora_targets: Annotated[str, typer.Option("--lora-targets", help="qv, attention or all (attention + MLP).")] = "attention",
        deadline_days: Annotated[float | None, typer.Option("--deadline-days", help="Finish within this many days (search: the cheapest that does; --devices: exit 3 if not).")] = None,
        budget: Annotated[float | None, typer.Option("--budget", help="Spend at most this many USD (search: the fastest that does; --devices: exit 3 if not).")] = None,
        cloud: Annotated[list[str] | None, typer.Option("--cloud", help="Search: only these clouds (aws, gcp, azure, on-prem; repeatable or comma-separated).")] = None,
        max_devices: Annotated[int, typer.Option("--max-devices", help="Search: at most this many devices.")] = 4096,
        pricing: Annotated[str, typer.Option("--pricing", help="on_demand, spot, reserved_1y, reserved_3y or owned (the job's hours of owning the same hardware; with --devices: the instance priced so).")] = "on_demand",
        fmt: FormatOpt = Format.table,
    ) -> None:  # fmt: skip
        """Size a pre-training or fine-tuning job: memory, step time, MFU, days, device-hours, cost and energy."""
        from pydantic import ValidationError

        from aicap.sizing.core.errors import InfeasibleError, InputError
        from aicap.sizing.plan.fleet_io import split_list
        from aicap.sizing.train.grid import whole_rounds
        from aicap.sizing.train.setup import TrainSetup

        cat = catalogue()
        spec_model = cat.model(model)
        warn_shadowing(model, spec_model)
        limit = getattr(spec_model, "max_context", None)
        if seq_len < 1:
            raise InputError(f"--seq-len {seq_len}: must be a positive number of tokens")
        if isinstance(limit, int) and seq_len > limit:
            info(f"aicap: note: --seq-len {seq_len:,} is beyond {spec_model.id}'s context of {limit:,} tokens "
                 "(costed as context-extension training: positions past it need a rescaled RoPE)")  # fmt: skip
        n_tokens = None if tokens is None else parse_tokens(tokens)
        gbt = None if global_batch_tokens is None else int(parse_tokens(global_batch_tokens, "--global-batch-tokens"))
        if pricing not in ("on_demand", "spot", "reserved_1y", "reserved_3y", "owned"):
            raise InputError(f"--pricing {pricing!r}: valid: on_demand, spot, reserved_1y, reserved_3y, owned")
        for name, value in (("--deadline-days", deadline_days), ("--budget", budget)):
            if value is not None and value <= 0:
                raise InputError(f"{name} {value:g}: must be positive")
        if not 0.0 <= ep_overlap <= 1.0:
            raise InputError(f"--ep-overlap {ep_overlap:g}: a share from 0 to 1")
        if ep_overlap > 0 and getattr(spec_model, "moe", None) is None:  # as --ep is: it changes nothing on a dense model
            raise InputError(f"--ep-overlap {ep_overlap:g}: hides a mixture-of-experts model's expert all-to-all, and {spec_model.id} "
                             "is dense: drop it")  # fmt: skip
        if not 0.0 <= comm_sm_share < 1.0:
            raise InputError(f"--comm-sm-share {comm_sm_share:g}: a share from 0 up to (not including) 1")
        if not 0 <= mtp_depth <= 8:
            raise InputError(f"--mtp-depth {mtp_depth}: 0 to 8 modules (DeepSeek-V3 trains 1)")
        if mtp_depth and method != "full":
            raise InputError(f"--mtp-depth {mtp_depth} with --method {method}: multi-token-prediction modules are trained in full with "
                             "the model (pre-training), which LoRA's frozen base does not model; use --method full or drop --mtp-depth")  # fmt: skip
        recipe_fields: dict[str, Any] = {"precision": precision, "optimizer": optimizer, "method": method, "lora_rank": lora_rank,
                                         "lora_targets": lora_targets, "ep_overlap": ep_overlap, "comm_sm_share": comm_sm_share,
                                         "mtp_depth": mtp_depth}  # fmt: skip
        if method not in DEFAULT_BATCH:
            raise InputError(f"--method {method!r}: valid: {', '.join(DEFAULT_BATCH)}")
        if method == "full" and (named := typed_flags(ctx, "lora_rank", "lora_targets")):  # they were ignored in silence
            raise InputError(f"{' and '.join(named)} shape{'' if len(named) > 1 else 's'} LoRA adapters, which --method full "
                             f"trains without: add --method lora (or qlora), or drop {'them' if len(named) > 1 else 'it'}")  # fmt: skip
        # Repeated or comma-separated, as `size` takes them: --hardware h100-sxm,l40s is --hardware h100-sxm --hardware l40s.
        hardware = split_list(",".join(hardware)) if hardware else None
        cloud = split_list(",".join(cloud)) if cloud else None
        if devices is not None:
            hw = hardware or []
            if len(hw) != 1:
                raise InputError("--devices evaluates one layout: give exactly one --hardware (a device id or an instance name)")
            if cloud or max_devices != 4096:
                raise InputError("--cloud and --max-devices filter the search; with --devices name the instance in --hardware instead")
            for name, value in (("--tp", tp), ("--pp", pp), ("--cp", cp), ("--ep", ep), ("--virtual-pipeline", vp), ("--micro-batch", micro_batch),
                                ("--seq-len", seq_len), ("--lora-rank", lora_rank)):  # fmt: skip
                if value < 1:
                    raise InputError(f"{name} {value}: must be a positive integer")
            if not 1 <= devices <= MAX_DEVICES or devices % (tp * pp * cp):
                raise InputError(f"--devices {devices}: must be a multiple of tp × pp × cp = {tp * pp * cp} between 1 and {MAX_DEVICES:,}")
            n_dp = dp or devices // (tp * pp * cp)
            if n_dp * tp * pp * cp != devices:
                raise InputError(f"--dp {dp}: tp × pp × cp × dp = {n_dp * tp * pp * cp}, not --devices {devices}")
            if fsdp != "none" and (named := typed_flags(ctx, "zero")):
                raise InputError(f"{named[0]} {zero} and --fsdp {fsdp} both choose how the states are sharded (--fsdp full is ZeRO-3): "
                                 "give one of them")  # fmt: skip
            if (deadline_days is not None or budget is not None) and n_tokens is None:  # before any output: exit 2 prints nothing else
                raise InputError("--deadline-days and --budget need --tokens")
            per_step = n_dp * micro_batch * seq_len  # one micro-batch on every data-parallel replica
            # frameworks step whole micro-batches on every replica (gradient accumulation): a given batch and the default
            # alike are costed as whole rounds (the default 4Mi at --seq-len 3000 on 8 replicas was 174.76 rounds)
            batch = int(whole_rounds(gbt if gbt is not None else max(DEFAULT_BATCH[method], per_step), per_step))
            batch_notes: list[str] = []  # on stderr and in the document's notes: a script sees the batch that was costed
            if gbt is not None and batch != gbt:
                batch_notes.append(f"--global-batch-tokens {gbt:,} is costed as {batch:,}: {batch // per_step:,} round(s) of one "
                                   f"micro-batch ({micro_batch} × {seq_len:,} tokens) on each of the {n_dp:,} data-parallel replicas")  # fmt: skip
            if gbt is None and per_step > DEFAULT_BATCH[method]:
                batch_notes.append(f"the global batch is {per_step:,} tokens, one micro-batch on each of the {n_dp:,} replicas, above "
                                   f"the {DEFAULT_BATCH[method]:,}-token default (--global-batch-tokens sets it; a larger batch can "
                                   "change convergence)")  # fmt: skip
            for note in batch_notes:
                info(f"aicap: note: {note}")
            fields = {"tp": tp, "pp": pp, "cp": cp, "dp": n_dp, "ep": ep, "virtual_pipeline": vp, "zero": zero,
                      "fsdp": fsdp, "recompute": recompute, "micro_batch": micro_batch, "seq_len": seq_len,
                      "global_batch_tokens": batch, "offload": offload, **recipe_fields}  # fmt: skip
            try:
                setup = TrainSetup.model_validate(fields)
            except ValidationError as exc:
                raise InputError(_one_line(exc)) from None
            from aicap.sizing.train.api import estimate_job

            res = estimate_job(cat, spec_model, hw[0], setup, n_tokens, pricing=pricing)  # type: ignore[arg-type]
            doc = res.model_dump(mode="json")
            doc["notes"] = [*batch_notes, *doc["notes"]]
            emit(View(doc, [Table(f"Training job: {res.model}", ["", "value"], job_rows(doc), _caption(doc))], csv=flat_table(doc)), fmt)
            for note in res.notes:
                info(f"aicap: note: {note}")
            if res.tokens is not None and res.usd.get(pricing) is None and budget is None:  # with a budget: exit 3 below
                have = [k for k, v in res.usd.items() if v is not None]
                info(f"aicap: warning: {res.instance or res.hardware} has no {pricing} price in the catalogue (--pricing {pricing}): "
                     + (f"the cost shows the prices it has ({', '.join(have)})" if have else "no cost is given"))  # fmt: skip
            _note_overlaid_factors(cat, [res.hardware])
            if not res.fits:
                raise InfeasibleError(f"{res.model} does not fit on {res.hardware}: {res.advice[0]}")
            if deadline_days is not None and res.wall_clock_days is not None and res.wall_clock_days > deadline_days:
                raise InfeasibleError(f"the job takes {duration(res.wall_clock_days)}, over the {deadline_days:g}-day deadline")
            cost = res.usd.get(pricing)
            if budget is not None and cost is None:
                raise InfeasibleError(
                    f"{res.instance or res.hardware} has no {pricing} price to check the ${amount(budget)} budget against"
                )
            if budget is not None and cost is not None and cost > budget:
                raise InfeasibleError(f"the job costs ${amount(cost)} ({pricing}), over the ${amount(budget)} budget")
            return
        if n_tokens is None:
            raise InputError("the search needs --tokens (or give --devices and one --hardware to evaluate a layout)")
        layout_given = (tp, pp, cp, ep, vp, dp, zero, fsdp, recompute, micro_batch, offload) != (
            1,
            1,
            1,
            1,
            1,
            None,
            1,
            "none",
            "selective",
            1,
            "none",
        )
        if layout_given:
            raise InputError("layout options (--tp, --pp, --dp, --cp, --ep, --virtual-pipeline, --zero, --fsdp, --recompute, --micro-batch, "
                             "--offload) need --devices; without it aicap searches layouts itself")  # fmt: skip
        try:
            probe = TrainSetup.model_validate({"seq_len": seq_len, **recipe_fields})
        except ValidationError as exc:
            raise InputError(_one_line(exc)) from None
        from aicap.sizing.train.api import plan_job
        from aicap.sizing.train.grid import Recipe
        from aicap.sizing.train.search import SearchSpec

        spec = SearchSpec(model=spec_model, tokens=n_tokens, recipe=Recipe.of(probe), seq_len=seq_len,
                          global_batch_tokens=gbt or DEFAULT_BATCH[method], deadline_days=deadline_days, budget_usd=budget,
                          pricing=pricing, clouds=tuple(cloud or ()), hardware=tuple(hardware or ()), max_devices=max_devices)  # type: ignore[arg-type]  # fmt: skip
        plan = plan_job(cat, spec)
        best = plan.best.model_dump(mode="json")
        alts = [a.model_dump(mode="json") for a in plan.alternatives]
        objective = ("cheapest meeting the deadline and the budget" if deadline_days and budget else
                     "cheapest meeting the deadline" if deadline_days else "fastest within the budget" if budget else "cheapest")  # fmt: skip
        doc = {"schema_version": 1, "objective": objective, "pricing": pricing, "plan": best, "alternatives": alts,
               "layouts_evaluated": plan.evaluated, "layouts_feasible": plan.feasible}  # fmt: skip
        alt_rows = [[a["hardware"], f"{a['instances']}× {a['instance']}", a["devices"], layout_text(a["layout"], short=True),
                     duration(a["wall_clock_days"]), a["usd"][pricing] and significant(a["usd"][pricing]), f"{a['mfu_pct']:.1f}",
                     _efficiency(a)] for a in alts]  # fmt: skip
        tables = [
            Table(f"Training plan ({objective}, {pricing})", ["", "value"], job_rows(best), _caption(best)),
            Table(
                "Best job per device type",
                ["device", "instances", "devices", "layout", "wall clock", f"usd_{pricing}", "mfu_%", "efficiency"],
                alt_rows,
                "efficiency: whether the device family's matmul efficiency is fitted on measurements or a datasheet-derived prior, "
                "and whether any published training run of the family was measured (none: the step model is extrapolated)",
            ),
        ]
        info(f"aicap: searched {plan.evaluated:,} layouts ({plan.feasible:,} fit)")
        asked = gbt or DEFAULT_BATCH[method]
        if best["tokens_per_step"] != asked:  # each layout steps whole rounds of one micro-batch on every replica
            lay = best["layout"]
            costed = (f"the global batch of {asked:,} tokens is costed as {best['tokens_per_step']:,}: "
                      f"{best['tokens_per_step'] // (lay['dp'] * lay['micro_batch'] * lay['seq_len']):,} round(s) of one micro-batch "
                      f"({lay['micro_batch']} × {lay['seq_len']:,} tokens) on each of the plan's {lay['dp']:,} data-parallel replicas")  # fmt: skip
            info(f"aicap: note: {costed}")
            best["notes"] = [costed, *best["notes"]]  # in the document too: a script sees the batch that was costed
        off = [f"{a['hardware']} {a['tokens_per_step']:,}" for a in alts if abs(a["tokens_per_step"] / asked - 1) > 0.05]
        if off:  # whole rounds of a wide layout's micro-batches can land far from the batch asked (a step's size moves convergence)
            info(f"aicap: note: alternatives whose layout steps a batch more than 5% from {asked:,} tokens (whole rounds of "
                 f"their micro-batches): {', '.join(off)}")  # fmt: skip
        emit(View(doc, tables, csv=flat_table(doc)), fmt)
        for note in plan.best.notes:
            info(f"aicap: note: {note}")
        if best["mfu_pct"] < 10.0:  # the deadline bought devices the batch cannot keep busy
            info(f"aicap: warning: the plan runs at {best['mfu_pct']:.1f}% MFU: most of each step is pipeline bubble and communication, "
                 "not compute; a larger --global-batch-tokens (or a later deadline) runs the job on far fewer devices")  # fmt: skip
        _note_overlaid_factors(cat, [best["hardware"]])


def _note_overlaid_factors(cat: Any, devices: list[str]) -> None:
    """Say when a device's efficiency factors come from an overlay (``aicap calibrate``, ``--catalog``).

    The training step model and its band were fitted with the shipped factors, so the overlay moves the answer and the
    band no longer says how far it can be off.
    """
    for dev_id in dict.fromkeys(devices):
        family = cat.devices[dev_id].family if dev_id in cat.devices else None
        where = [line.split(" overridden by ", 1)[1] for line in cat.overrides
                 if family is not None and line.startswith(f"efficiency '{family}'")]  # fmt: skip
        if where:
            info(f"aicap: note: {family}'s efficiency factors come from {where[-1]}, not the shipped catalogue: the training "
                 "figures move with them, and the band was measured with the shipped factors")  # fmt: skip


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        given = err.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f" {given!r}" if isinstance(given, str) else f" {given}"
        return f"--{loc.replace('_', '-')}{shown}: {msg}" if loc else f"layout: {msg}"
    return str(exc)
