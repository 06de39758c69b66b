"""``aicap estimate`` (one deployment) and ``aicap explain`` (its per-operator roofline)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aicap.cli.render import Format, FormatOpt, Table, View, emit, flat_table, rate_text
from aicap.cli.state import catalogue, check_engine, check_plot, guarded, info, prompt_tokens, typed_flags, warn_shadowing

if TYPE_CHECKING:
    from aicap.sizing.serve.estimate import EstimateRequest, EstimateResult

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model id, or a path to a Hugging Face config.json or model YAML.")]
HardwareOpt = Annotated[str, typer.Option("--hardware", help="Device id (see `aicap hardware list`).")]
DevicesOpt = Annotated[int | None, typer.Option("--devices", help="Total devices (at most 65,536); default tp × pp, 1 when neither is "
                                                 "given; more runs replicas.")]  # fmt: skip
TpOpt = Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree (default: the throughput-best layout on --devices; "
                                                        "within 2% of it, a decoder's lowest TPOT).")]  # fmt: skip
PpOpt = Annotated[int | None, typer.Option("--pp", help="Pipeline-parallel degree (default: the throughput-best layout on --devices; "
                                                        "within 2% of it, a decoder's lowest TPOT).")]  # fmt: skip
EpOpt = Annotated[int, typer.Option("--ep", help="Expert-parallel degree for MoE models (divides --tp).")]
DpaOpt = Annotated[int, typer.Option("--dp-attention", help="MoE models: run attention as this many data-parallel groups of "
                                     "--tp/N devices, experts over all --tp (wide EP; --tp may span instances). See docs/performance-model.md.")]  # fmt: skip
EagerOpt = Annotated[bool, typer.Option("--eager", help="Run the engine without CUDA graphs (vLLM --enforce-eager): every step launches "
                                       "its kernels from the host and takes at least that long. See docs/performance-model.md.")]  # fmt: skip
BatchOpt = Annotated[str, typer.Option("--batch", help="Concurrent requests per replica, or 'auto' (throughput-best that fits).")]
InOpt = Annotated[
    int,
    typer.Option(
        "--input-tokens",
        help="Prompt tokens per request (items' tokens for encoders). Left at the default, a model whose context is shorter reads what its context holds (an encoder its max context, a decoder what the output leaves).",
    ),
]
OutOpt = Annotated[int, typer.Option("--output-tokens", help="Generated tokens per request.")]
WdtOpt = Annotated[
    str | None,
    typer.Option(
        "--weights-dtype",
        help="fp32, bf16, fp16, fp8, int8, int4, nvfp4 or mxfp4 (default: the "
        "checkpoint's format where the device runs it, else the model's dtype).",
    ),
]
KvOpt = Annotated[
    str | None,
    typer.Option(
        "--kv-dtype", help="KV-cache dtype (default: follows the weights; 16 bit for a model served in its checkpoint's quantised format)."
    ),
]
TpotOpt = Annotated[float | None, typer.Option("--tpot-ms", help="Keep the mean time per output token at the batch at or under this "
                                                "(with --batch auto); size's --tpot-ms is a percentile under load.")]  # fmt: skip
PrefixOpt = Annotated[
    float, typer.Option("--prefix-cached", help="Share of each prompt found in the prefix cache, in [0, 1): attended to, not recomputed.")
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Serving engine profile: vllm, sglang, trtllm, tgi, lmdeploy, llamacpp, jetstream or generic (default: generic; see `aicap engines list`).",
    ),
]

SpecOpt = Annotated[
    str | None,
    typer.Option("--speculative", help="Speculative decoding: draft (with --draft-model), mtp, eagle or ngram (see docs/speculative.md)."),
]
DraftModelOpt = Annotated[str | None, typer.Option("--draft-model", help="Drafting model for --speculative draft (same tokenizer).")]
DraftTokensOpt = Annotated[
    int | None, typer.Option("--draft-tokens", help="Tokens proposed per step, 1-16 (default: the method's published figure).")
]
AcceptOpt = Annotated[
    float | None, typer.Option("--acceptance", help="Per-token acceptance probability, 0-1 (default: the method's published figure).")
]


def speculative_config(method: str | None, draft_model: str | None, draft_tokens: int | None, acceptance: float | None) -> Any:
    """The :class:`~aicap.sizing.core.specs.speculative.SpeculativeConfig` the options ask for (``None``: none)."""
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.core.specs.speculative import SpeculativeConfig
    from aicap.sizing.core.speculative import MAX_DRAFT_TOKENS, METHODS

    if method is None:
        if draft_model is not None or draft_tokens is not None or acceptance is not None:
            raise InputError(
                "--draft-model, --draft-tokens and --acceptance need --speculative METHOD; valid methods: " + ", ".join(METHODS)
            )
        return None
    if method not in METHODS:
        raise InputError(f"--speculative '{method}': valid methods: {', '.join(METHODS)}")
    if draft_tokens is not None and not 1 <= draft_tokens <= MAX_DRAFT_TOKENS:
        raise InputError(f"--draft-tokens {draft_tokens}: must be between 1 and {MAX_DRAFT_TOKENS}")
    if acceptance is not None and not 0.0 <= acceptance <= 1.0:
        raise InputError(f"--acceptance {acceptance}: must be between 0 and 1")
    if draft_model is not None and method != "draft":
        raise InputError(f"--draft-model is for --speculative draft, not '{method}'")
    if method == "draft" and (missing := [f for f, v in (("--draft-model", draft_model), ("--acceptance", acceptance)) if v is None]):
        # both at once, by their flags (it took two runs, and the second named the fleet file's draft_model)
        what = {"--draft-model": "the drafting model (the same tokenizer, e.g. llama-3.2-1b for the Llama 3.1 family)",
                "--acceptance": "the per-token acceptance rate, 0 to 1 (a draft model's depends on the pair and the traffic: no "
                                "published default)"}  # fmt: skip
        raise InputError(f"--speculative draft needs {' and '.join(missing)}: {'; '.join(what[f] for f in missing)}")
    return SpeculativeConfig(method=method, draft_model=draft_model, draft_tokens=draft_tokens, acceptance=acceptance)


def build_request(model: str, hardware: str, devices: int | None, tp: int | None, pp: int | None, ep: int, batch: str,
                  input_tokens: int, output_tokens: int, weights_dtype: str | None, kv_dtype: str | None,
                  tpot_ms: float | None, engine: str | None = None, prefix_cached: float = 0.0,
                  speculative: Any = None, dp_attention: int = 1, eager: bool = False) -> Any:  # fmt: skip
    """Turn options into an :class:`~aicap.sizing.serve.estimate.EstimateRequest` (validating them)."""
    from aicap.sizing.core.engines import engine_for
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.core.speculative import speculative_for
    from aicap.sizing.serve.estimate import EstimateRequest

    cat = catalogue()
    check_engine(engine)
    if batch == "auto":
        b = None
    else:
        try:
            b = int(batch)
        except ValueError:
            raise InputError(f"--batch '{batch}': expected a positive integer or 'auto'") from None
    if tpot_ms is not None and tpot_ms <= 0:
        raise InputError(f"--tpot-ms {tpot_ms}: must be positive")
    for name, value in (("--devices", devices), ("--tp", tp), ("--pp", pp), ("--ep", ep), ("--dp-attention", dp_attention)):
        if value is not None and value < 1:
            raise InputError(f"{name} {value}: must be a positive integer")
    dev = cat.device(hardware)
    eng = engine_for(cat, engine)
    from aicap.sizing.plan.layouts import scale_out_bps

    net = scale_out_bps([i for i in cat.instances.values() if i.device == dev.id], dev, eng.efficiency(cat, dev).link)
    target = cat.model(model)
    warn_shadowing(model, target)
    spec = speculative_for(cat, target, speculative, "--speculative")
    runtime = eng.on(dev)
    if eager:
        runtime = runtime.model_copy(update={"eager": True})
        if eng.spec is not None and eng.spec.id not in VLLM_LIKE:  # the launch counts are read from vLLM's model code
            info(f"aicap: note: --eager with {eng.spec.name}: each step's kernel launches are counted as vLLM's model code "
                 f"launches them (eager_launches in hardware_db/data/runtime.yaml); {eng.spec.name}'s own kernels are not "
                 "counted, so its eager TPOT is vLLM's, on its limits")  # fmt: skip
    return EstimateRequest(model=target, device=dev, efficiency=eng.efficiency(cat, dev), runtime=runtime,
                           devices=devices, tp=tp, pp=pp, ep=ep, batch=b, input_tokens=input_tokens,
                           output_tokens=output_tokens, weights_dtype=weights_dtype, kv_dtype=kv_dtype, tpot_ms=tpot_ms,
                           engine=eng.spec, prefix_cached_share=prefix_cached, scale_out_bps=net, speculative=spec,
                           dp_attention=dp_attention)  # fmt: skip


def _engine_line(e: dict[str, Any]) -> str:
    """``vLLM 0.11.0: 90% of memory, ≤256 running, 8,192-token steps``."""
    who = e["id"] if e["name"] is None else f"{e['name']} {e['version']}"
    mem = f"{e['memory_fraction']:.0%} of " + ("memory" if e["memory_policy"] == "total" else "what the weights leave, for KV")
    eager = ", eager (no CUDA graphs)" if e.get("eager") else ""
    if not e.get("eager") and e.get("cuda_graph_max_batch") is not None:
        eager = f", CUDA graphs up to {e['cuda_graph_max_batch']:,} decoding"
    return f"{who}: {mem}, ≤{e['max_running_requests']:,} running, {e['max_prefill_tokens']:,}-token steps{eager}"


def _spec_line(s: dict[str, Any]) -> str:
    """``mtp: 1 draft token, acceptance 0.85 -> 1.85 tokens per step``."""
    who = f"draft model {s['draft_model']}" if s["method"] == "draft" else s["method"]
    n = s["draft_tokens"]
    return f"{who}: {n} draft token{'s' if n > 1 else ''}, acceptance {s['acceptance']:g} -> {s['tokens_per_step']:g} tokens per step"


def _band(doc: dict[str, Any], key: str) -> str:
    b = doc["error_band_pct"].get(key)
    return f"±{b:.0f}%" if b is not None else ""


def _released(doc: dict[str, Any]) -> str:
    """A note where the weights are not in the format the checkpoint was released in."""
    stored = doc.get("checkpoint_dtype")
    return f" (the checkpoint is {stored}: this needs a {doc['weights_dtype']} copy)" if stored and stored != doc["weights_dtype"] else ""


#: Engines whose eager launch counts are those of vLLM's model code (SGLang's model files were ported from vLLM's).
VLLM_LIKE = frozenset({"vllm", "sglang"})


def estimate_view(doc: dict[str, Any], tpot_ms: float | None = None, item: str | None = None) -> View:
    """Tables for one estimate document (``item``: a generic model's item, named in the title instead of token counts)."""
    mem = doc["memory_gib"]
    layout = f"{doc['devices']}× {doc['hardware']} = {doc['replicas']} replica(s) × TP{doc['tp']}·PP{doc['pp']}"
    if doc.get("dp_attention", 1) > 1:
        layout += f", attention DP{doc['dp_attention']}×TP{doc['tp'] // doc['dp_attention']}, experts EP{doc['ep']}"
    generates = doc["output_tokens"] > 0 or doc["tpot_s"] is not None  # an encoder makes no token and keeps no KV cache
    kv = f", KV cache {doc['kv_dtype']}" if generates else ""
    kv_gib = f" + KV {mem['kv_cache']:.1f}" if generates else ""
    rows: list[list[Any]] = [
        ["deployment", layout],
        ["formats", f"weights {doc['weights_dtype']}{_released(doc)}{kv}"],
        ["engine", _engine_line(doc["engine"])],
        ["batch per replica", doc["batch"]],
        *([["prefix cache", f"{doc['prefix_cached_share']:.0%} of each prompt cached, not recomputed"]] if doc["prefix_cached_share"] else []),
        *([["speculative decoding", _spec_line(doc["speculative"])]] if doc.get("speculative") else []),
        ["fits", "yes" if doc["fits"] else f"NO: {doc['advice']}"],
        *([["meets --tpot-ms", "no: " + doc["advice"] if doc["fits"] and doc["advice"] else "yes"]] if tpot_ms is not None else []),
        ["memory per device (GiB)", f"weights {mem['weights']:.1f}{kv_gib} + activations {mem['activations']:.1f} "
                                     f"+ overhead {mem['overhead']:.1f} = {mem['total']:.1f} of {mem['capacity']:.1f}"],
        *([["KV-cache tokens per replica", doc["kv_cache_tokens"]]] if generates else []),
        *([["state per running sequence", f"{doc['state_tokens_per_sequence']:,} of those tokens (linear-attention state)"]]
          if doc.get("state_tokens_per_sequence") else []),
        ["largest batch at this context", doc["max_batch_at_context"]],
        ["largest context at this batch", doc["max_context_at_batch"]],
    ]  # fmt: skip
    if not doc["fits"]:  # speeds of a deployment that cannot run promise nothing (null in the JSON)
        rows.append(["TTFT, TPOT, throughput", "– (it does not fit: see above)"])
    else:
        first = "TTFT (one request, idle)" if doc["tpot_s"] is not None else f"latency (a batch of {doc['batch']:,}, all together)"
        rows.append([first, f"{doc['ttft_s'] * 1e3:,.1f} ms {_band(doc, 'ttft')}"])
        if doc["tpot_s"] is not None:
            rows.append(["TPOT (mean at this batch)", f"{doc['tpot_s'] * 1e3:,.2f} ms {_band(doc, 'tpot')}"])
        rows += [
            ["end-to-end", f"{doc['e2e_s']:,.3f} s"],
            *([["output tokens/s (all replicas)", f"{doc['throughput']['output_tokens_per_s']:,.0f} {_band(doc, 'throughput')}"]]
              if generates else []),
            ["requests/s (all replicas)", f"{rate_text(doc['throughput']['requests_per_s'])} {_band(doc, 'throughput')}"],
            ["bound", f"prefill: {doc['bound']['prefill']}, decode: {doc['bound']['decode'] or '-'}" if generates else doc["bound"]["prefill"]],
        ]  # fmt: skip
    lengths = f"one {item} a request" if item else f"{doc['input_tokens']} in / {doc['output_tokens']} out tokens"
    title = f"Estimate: {doc['model']} on {doc['hardware']} ({lengths})"
    caption = "± = 90th-percentile error of this metric against published measurements (aicap validate)."
    if not doc["efficiency_calibrated"]:
        caption += (
            f" {doc['hardware']}'s efficiency factors are not fitted on measurements of it (inherited from a measured family, "
            "or priors): expect larger errors (aicap calibrate fits them on your benchmarks)."
        )
    # the table holds prose: CSV has the JSON's figures
    return View(doc, [Table(title, ["", "value"], rows, caption, left=True)], csv=flat_table(doc))


def disaggregated_pair(model: str, hardware: str, decode_hardware: str, devices: int | None, tp: int | None, pp: int | None, ep: int,
                       batch: str, input_tokens: int, output_tokens: int, weights_dtype: str | None, kv_dtype: str | None,
                       tpot_ms: float | None, engine: str | None) -> tuple[EstimateResult, EstimateResult]:  # fmt: skip
    """The prefill replica (one output token) and the decode replica (the prompt cached but its last token) of a decoder.

    Shared by ``estimate --disaggregate`` and ``simulate --disaggregate``; an encoder or a one-token prompt is an input error.
    """
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.core.specs.model import DecoderModel
    from aicap.sizing.serve.estimate import estimate

    if not isinstance(catalogue().model(model), DecoderModel):
        raise InputError(f"--disaggregate splits prefill from decode; {model} is not a decoder")
    if input_tokens < 2:
        raise InputError(f"--input-tokens {input_tokens}: --disaggregate moves a prompt's KV cache; give at least 2 tokens")
    pre = estimate(build_request(model, hardware, devices, tp, pp, ep, batch, input_tokens, 1, weights_dtype, kv_dtype, None, engine))
    dec = estimate(build_request(model, decode_hardware, devices, tp, pp, ep, batch, input_tokens, output_tokens, weights_dtype, kv_dtype,
                                 tpot_ms, engine, prefix_cached=1.0 - 1.0 / input_tokens))  # fmt: skip
    return pre, dec


def _disaggregated(model: str, hardware: str, decode_hardware: str, devices: int | None, tp: int | None, pp: int | None, ep: int,
                   batch: str, input_tokens: int, output_tokens: int, weights_dtype: str | None, kv_dtype: str | None,
                   tpot_ms: float | None, engine: str | None, transfer_gbps: float | None, fmt: Format) -> None:  # fmt: skip
    """``estimate --disaggregate``: a prefill and a decode replica of one model, the KV link between them and their ratio."""
    from aicap.sizing.core.errors import InfeasibleError
    from aicap.sizing.serve.disaggregated import DisaggregatedEstimate, link_for

    pre, dec = disaggregated_pair(model, hardware, decode_hardware, devices, tp, pp, ep, batch, input_tokens, output_tokens, weights_dtype,
                                  kv_dtype, tpot_ms, engine)  # fmt: skip
    gbps = link_for(catalogue().instances.values(), {hardware, decode_hardware}, transfer_gbps)
    doc = DisaggregatedEstimate(pre, dec, gbps).to_dict()
    rows = []
    for role in ("prefill", "decode"):
        d = doc[role]
        rps = d["throughput"]["requests_per_s"]  # none where the replica does not fit
        rows.append([f"{role} replica", f"{d['devices'] // d['replicas']}× {d['hardware']} TP{d['tp']}·PP{d['pp']}, batch {d['batch']}, "
                     + ("-" if rps is None else f"{rps / d['replicas']:,.2f} req/s") + ("" if d["fits"] else f" — NO: {d['advice']}")])  # fmt: skip
    rows += [
        ["KV transfer (one prompt)", f"{doc['kv_transfer']['ms']:,.1f} ms at {gbps:g} Gbit/s" + ("" if transfer_gbps else " (slowest RDMA tier)")],
        ["TTFT (one request, idle)", "-" if doc["ttft_s"] is None else f"{doc['ttft_s'] * 1e3:,.1f} ms = prefill + transfer + first decode step"],
        ["TPOT (mean at the decode batch)", "-" if doc["tpot_s"] is None else f"{doc['tpot_s'] * 1e3:,.2f} ms"],
        ["prefill replicas per decode replica", "-" if (r := doc["prefill_replicas_per_decode_replica"]) is None else f"{r:.2f}"],
        ["requests/s per device (both pools)", "-" if (x := doc["requests_per_s_per_device"]) is None else f"{x:,.3f}"],
    ]  # fmt: skip
    title = f"Disaggregated estimate: {model} ({input_tokens} in / {output_tokens} out tokens), prefill on {hardware}, decode on {decode_hardware}"
    caption = "aicap size --disaggregate sizes both pools under load and verifies them."
    emit(View(doc, [Table(title, ["", "value"], rows, caption, left=True)]), fmt)
    if not doc["fits"]:
        raise InfeasibleError(f"{model}: " + "; ".join(f"{r} {doc[r]['advice']}" for r in ("prefill", "decode") if not doc[r]["fits"]))
    if tpot_ms is not None and doc["tpot_s"] is not None and doc["tpot_s"] * 1e3 > tpot_ms:  # it exited 0 on a miss
        raise InfeasibleError(f"TPOT {doc['tpot_s'] * 1e3:,.1f} ms at the decode replica's batch {doc['decode']['batch']} > target {tpot_ms:g} ms: "
                              "a faster decode device, more tensor parallelism or a smaller weights dtype")  # fmt: skip


def refuse_decode_flags(ctx: typer.Context, req: EstimateRequest) -> None:
    """Refuse flags a model would ignore: --output-tokens and --tpot-ms where it generates no tokens, --input-tokens where it reads none.

    An encoder or item model generates no tokens; an item model (a generic model) reads none either: its cost is per request.
    """
    from aicap.sizing.core.errors import InputError

    given = typed_flags(ctx, "output_tokens", "tpot_ms")
    if req.model.kind != "decoder" and given:
        what = "an encoder" if req.model.kind == "encoder" else "not a decoder"
        raise InputError(f"{given[0]} applies to a model that generates tokens; {req.model.id} is {what}: drop {' and '.join(given)}")
    prompt = typed_flags(ctx, "input_tokens")
    if req.model.kind == "generic" and prompt:  # its work is per item (an image), whatever a "token" count says
        raise InputError(f"{prompt[0]} applies to a model that reads tokens; {req.model.id} is a generic model whose cost is per item "
                         "(its FLOPs and bytes per request): drop it")  # fmt: skip


def note_format_fallback(req: EstimateRequest) -> None:
    """Say (stderr) where a quantised checkpoint is estimated in another weight format."""
    from aicap.sizing.serve.estimate import format_fallback

    why = format_fallback(req)
    if why is not None:
        info(f"aicap: note: {why}")


def note_substituted_formats(req: EstimateRequest, result: EstimateResult) -> None:
    """Say (stderr) where a --weights-dtype or --kv-dtype given is estimated in another format of its size (bf16 as fp16 on a T4)."""
    dep = result.deployment
    for flag, asked, used in (("--weights-dtype", req.weights_dtype, dep.weights_dtype), ("--kv-dtype", req.kv_dtype, dep.kv_dtype)):
        if asked is not None and used != asked:
            info(f"aicap: note: {flag} {asked}: {req.device.id} has no {asked} path; estimated in {used}, as an engine there serves it")


def warn_above_cap(req: EstimateRequest) -> None:
    """Warn (stderr) where ``--batch`` is above the engine's default cap of running requests."""
    cap = req.runtime.max_batch * max(req.dp_attention, 1)
    if req.batch is not None and req.batch > cap:
        who = req.runtime.engine if req.engine is None else req.engine.name
        info(f"aicap: warning: --batch {req.batch:,} is above {who}'s default cap of {cap:,} running requests: the estimate "
             f"assumes the engine is launched with a cap of at least {req.batch:,}{_cap_flag(req)}")  # fmt: skip


def _cap_flag(req: EstimateRequest) -> str:
    """The engine's running-request flag, from its launch-flag map (`` (--max-num-seqs)``); the mapped engines' for generic.

    An engine without a map (llama.cpp, TGI, ...) gets none: naming vLLM's flag for it would send the user to a flag it lacks.
    """
    from aicap.hardware_db.launch import LAUNCH_ENGINES, flag_map

    ids = LAUNCH_ENGINES if req.engine is None else (req.engine.id,) if req.engine.id in LAUNCH_ENGINES else ()
    spelled = [f"{e} {f.flag}" for e in ids for f in flag_map(e).flags if f.field == "max_running_requests"]
    return f" ({', '.join(spelled)})" if spelled else ""


def register(app: typer.Typer) -> None:
    """Add ``estimate`` and ``explain`` to the root app."""

    @app.command("estimate")
    @guarded
    def estimate_cmd(ctx: typer.Context, model: ModelOpt, hardware: HardwareOpt, devices: DevicesOpt = None, tp: TpOpt = None,
                     pp: PpOpt = None, ep: EpOpt = 1, batch: BatchOpt = "auto", input_tokens: InOpt = 1024, output_tokens: OutOpt = 256,
                     weights_dtype: WdtOpt = None, kv_dtype: KvOpt = None, tpot_ms: TpotOpt = None, engine: EngineOpt = None,
                     prefix_cached: PrefixOpt = 0.0, speculative: SpecOpt = None, draft_model: DraftModelOpt = None,
                     draft_tokens: DraftTokensOpt = None, acceptance: AcceptOpt = None, dp_attention: DpaOpt = 1, eager: EagerOpt = False,
                     disaggregate: Annotated[bool, typer.Option("--disaggregate", help="Estimate a prefill replica (on --hardware) and a decode replica (on --decode-hardware), the KV transfer between them and how many prefill replicas one decode replica needs.")] = False,
                     decode_hardware: Annotated[str | None, typer.Option("--decode-hardware", help="With --disaggregate: the decode replica's device (default --hardware).")] = None,
                     transfer_gbps: Annotated[float | None, typer.Option("--transfer-gbps", help="With --disaggregate: the KV link per device, Gbit/s (default: the slowest RDMA-class network of the two devices' instance types).")] = None,
                     fmt: FormatOpt = Format.table) -> None:  # fmt: skip
        """Predict memory, TTFT, TPOT and throughput of one deployment."""
        from aicap.sizing.core.errors import InfeasibleError, InputError
        from aicap.sizing.serve.estimate import estimate

        if not disaggregate and (decode_hardware is not None or transfer_gbps is not None):
            raise InputError("--decode-hardware and --transfer-gbps shape --disaggregate: add it")
        if disaggregate and dp_attention != 1:
            raise InputError("--dp-attention is not modelled with --disaggregate: drop one of them")
        if disaggregate and eager:
            raise InputError("--eager is not modelled with --disaggregate: drop one of them")
        if disaggregate and (prefix_cached or speculative is not None):
            given = "--prefix-cached" if prefix_cached else "--speculative"
            raise InputError(f"{given} is not applied by estimate --disaggregate: drop one of them, or size the "
                             "disaggregated fleet with `aicap size`, which applies both")  # fmt: skip
        input_tokens = prompt_tokens(ctx, input_tokens, catalogue().model(model), output_tokens)
        if disaggregate:
            _disaggregated(
                model,
                hardware,
                decode_hardware or hardware,
                devices,
                tp,
                pp,
                ep,
                batch,
                input_tokens,
                output_tokens,
                weights_dtype,
                kv_dtype,
                tpot_ms,
                engine,
                transfer_gbps,
                fmt,
            )
            return
        req = build_request(model, hardware, devices, tp, pp, ep, batch, input_tokens, output_tokens, weights_dtype, kv_dtype, tpot_ms,
                            engine, prefix_cached, speculative_config(speculative, draft_model, draft_tokens, acceptance),
                            dp_attention, eager)  # fmt: skip
        refuse_decode_flags(ctx, req)
        note_format_fallback(req)
        result = estimate(req)
        doc = result.to_dict()
        note_substituted_formats(req, result)
        warn_above_cap(req)
        if devices and doc["devices"] < devices:
            info(f"aicap: the layout uses {doc['devices']} of the {devices} devices: TP{doc['tp']}·PP{doc['pp']} replicas "
                 f"of {doc['tp'] * doc['pp']} leave {devices - doc['devices']} over")  # fmt: skip
        if req.speculative is not None and req.speculative.extrapolated:
            info(f"aicap: note: --speculative beyond its published evidence: {req.speculative.extrapolated}; expect fewer tokens "
                 "per step than estimated (give --acceptance for your own measurement)")  # fmt: skip
        emit(estimate_view(doc, tpot_ms, getattr(req.model, "item", None)), fmt)
        if result.shortfall is not None:
            raise InfeasibleError(f"{result.deployment.model.id} on {result.deployment.device.id}: {result.shortfall}")

    @app.command("explain")
    @guarded
    def explain_cmd(ctx: typer.Context, model: ModelOpt, hardware: HardwareOpt, devices: DevicesOpt = None, tp: TpOpt = None,
                    pp: PpOpt = None, ep: EpOpt = 1, batch: BatchOpt = "auto", input_tokens: InOpt = 1024, output_tokens: OutOpt = 256,
                    weights_dtype: WdtOpt = None, kv_dtype: KvOpt = None, tpot_ms: TpotOpt = None, engine: EngineOpt = None,
                    dp_attention: DpaOpt = 1, eager: EagerOpt = False,
                    phase: Annotated[str, typer.Option(help="prefill or decode (default: decode; prefill for a model that does not decode). With --batch auto a decoder's prefill is one request's prompt, as TTFT prices it.")] = "decode",
                    plot: Annotated[Path | None, typer.Option("--plot", help="Write the roofline picture (.png or .svg).")] = None,
                    fmt: FormatOpt = Format.table) -> None:  # fmt: skip
        """Show FLOPs, bytes, intensity, time and bound of each operator group in one phase.

        Exits 3, after the table, where the deployment does not fit or misses --tpot-ms (as estimate does).
        """
        from aicap.sizing.core.errors import InfeasibleError, InputError
        from aicap.sizing.serve import explain
        from aicap.sizing.serve.estimate import estimate

        if phase not in explain.PHASES:
            raise InputError(f"--phase '{phase}': valid choices: {', '.join(explain.PHASES)}")
        check_plot(plot)
        spec = catalogue().model(model)
        input_tokens = prompt_tokens(ctx, input_tokens, spec, output_tokens)
        if not typed_flags(ctx, "phase") and spec.kind != "decoder":  # no decode step: its one phase
            phase = "prefill"
        req = build_request(model, hardware, devices, tp, pp, ep, batch, input_tokens, output_tokens, weights_dtype, kv_dtype, tpot_ms,
                            engine, dp_attention=dp_attention, eager=eager)  # fmt: skip
        refuse_decode_flags(ctx, req)
        note_format_fallback(req)
        result = estimate(req)
        one_prompt = phase == "prefill" and spec.kind == "decoder" and batch == "auto"
        if one_prompt and result.batch > 1:
            # the auto batch is the decode batch; a prefill is explained as TTFT prices it: one request's prompt, same layout
            d = result.deployment
            req = dataclasses.replace(req, tp=d.tp, pp=d.pp, batch=1)
            result = estimate(req)
        doc = explain.breakdown(result, phase)
        note_substituted_formats(req, result)
        warn_above_cap(req)
        if plot is not None:
            explain.plot(doc, str(plot))
        cols = ["operator", "gflops", "mbytes", "intensity_flop_per_byte", "time_ms", "share_pct", "bound"]
        rows = [[r[c] for c in cols] for r in doc["operators"]]
        roof = doc["roofline"]
        dpa = f" DP-attn {dp_attention}" if dp_attention > 1 else ""
        title = (f"{doc['phase']} step of {doc['model']} on {doc['hardware']} (TP{doc['tp']}·PP{doc['pp']}{dpa}, batch {doc['batch']}): "
                 f"{doc['step_time_ms']:.3f} ms, {doc['bound']}-bound")  # fmt: skip
        step = (f"every request at the mean context of {doc['context_tokens']:,g} tokens (input + output/2); estimate's TPOT also counts "
                "the prefill steps that interleave with decoding" if phase == "decode" else
                (f"one request's prompt of {doc['context_tokens']:,g} tokens, as TTFT prices it (--batch N: N prompts in one pass)"
                 if one_prompt and doc["batch"] == 1 else
                 f"the batch's {doc['batch']:,} prompts of {doc['context_tokens']:,g} tokens in one pass")
                + f" (the engine splits it into steps of {req.runtime.max_prefill_tokens:,} tokens, whose times add up to this)")  # fmt: skip
        alpha = roof["exposed_share"]
        overlap = (f"each operator takes the longer of its compute and memory times plus {alpha:g} of the shorter (the family's exposed "
                   "share)" if alpha else "each operator takes the longer of its compute and memory times")  # fmt: skip
        caption = (f"roofline after efficiency: {roof['peak_flops'] / 1e12:,.0f} TFLOP/s ({doc['compute_dtype']}), "
                   f"{roof['bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s, ridge {roof['ridge_flop_per_byte']} FLOP/B; {overlap}; {step}")  # fmt: skip
        emit(View(doc, [Table(title, cols, rows, caption)]), fmt)
        if result.shortfall is not None:
            raise InfeasibleError(f"{result.deployment.model.id} on {result.deployment.device.id}: {result.shortfall}")
