"""Evaluate one deployment: ``aicap estimate`` as a library call.

:func:`estimate` resolves the layout (given, or the throughput-best one for the devices, of near-ties the one with the
lowest TPOT: :data:`LAYOUT_TIE`), the batch
(given, or ``auto``), and returns memory, latency, throughput and what bounds each phase, with the
error band implied by validation against published measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from aicap.sizing.calibrate.accuracy import error_bands
from aicap.sizing.core.deployment import MAX_DEVICES, Deployment, runs_format, valid_tp
from aicap.sizing.core.dtypes import checkpoint_kv, storage_formats
from aicap.sizing.core.engines import Engine
from aicap.sizing.core.errors import InfeasibleError, InputError
from aicap.sizing.core.fleet import check_prefix_cached
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.model import AnyModel, GenericModel
from aicap.sizing.core.speculative import Speculative
from aicap.sizing.perf import memory
from aicap.sizing.serve.serving import ServingMetrics, auto_batch, serve

SCHEMA_VERSION = 1
GIB = 2**30


def speculative_document(spec: Speculative | None) -> dict[str, Any] | None:
    """JSON form of a speculative-decoding configuration (``None`` without one)."""
    if spec is None:
        return None
    return {"method": spec.method, "draft_model": spec.draft_model, "draft_tokens": spec.draft_tokens, "acceptance": spec.acceptance,
            "tokens_per_step": _r(spec.tokens_per_step), "acceptance_source": spec.source}  # fmt: skip


@dataclass(frozen=True)
class EstimateRequest:
    """Inputs of one estimate. ``batch=None`` means auto; ``tp``/``pp`` ``None`` means search.

    The auto batch is the smallest that reaches 99% of the throughput of the largest that fits and meets ``tpot_ms``
    (:func:`_knee`); with ``best_batch``, a decoder's is that largest one (what a published peak-throughput run measured).
    """

    model: AnyModel
    device: DeviceSpec
    efficiency: EfficiencySpec
    runtime: RuntimeSpec
    devices: int | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int = 1
    batch: int | None = None
    input_tokens: int = 1024
    output_tokens: int = 256
    weights_dtype: str | None = None
    kv_dtype: str | None = None
    tpot_ms: float | None = None
    engine: EngineSpec | None = None  # the profile ``runtime`` came from (``None``: generic conventions)
    prefix_cached_share: float = 0.0  # share of each prompt found in the prefix cache (not recomputed)
    scale_out_bps: float | None = None  # bytes/s per device between instances (the device's slowest spanning instance network)
    dp_attention: int = 1  # attention data-parallel groups per stage (Deployment.dp_attention); experts then over all tp
    speculative: Speculative | None = None  # speculative decoding (drafter, draft tokens, acceptance)
    best_batch: bool = False  # auto batch: a decoder's throughput-best batch, not its knee (_knee; a published peak's setting)


@dataclass
class EstimateResult:
    """One evaluated deployment (whole-deployment throughput; per-device memory)."""

    request: EstimateRequest
    deployment: Deployment
    replicas: int
    batch: int
    metrics: ServingMetrics
    mem: dict[str, float]
    kv_cache_tokens: int
    fits: bool
    advice: str | None
    bands: dict[str, float] = field(default_factory=dict)
    limits: dict[str, int | None] = field(default_factory=dict)

    @property
    def tpot_missed(self) -> bool:
        """Whether a decoder's TPOT misses the requested ``tpot_ms`` even at the batch used."""
        if self.request.tpot_ms is None or self.deployment.model.kind != "decoder":
            return False
        return float(self.metrics.tpot_s) * 1e3 > self.request.tpot_ms * (1 + 1e-9)

    @property
    def shortfall(self) -> str | None:
        """Why the deployment cannot serve as asked (does not fit, or misses the TPOT target), in numbers; ``None`` if it can."""
        if not self.fits:
            return f"does not fit: {self.advice}"
        if self.tpot_missed:
            d = self.deployment
            tpot = float(self.metrics.tpot_s) * 1e3
            hints = self._wider_tp()
            if d.weights_dtype in {"bf16", "fp16", "fp32"}:
                hints.append("fp8 weights" if "fp8" in d.device.peak_tflops else "int8 weights")
            hints.append("a device with more memory bandwidth")
            return (f"TPOT {tpot:,.1f} ms at batch {self.batch} > target {self.request.tpot_ms:g} ms "
                    f"(decode is {self.metrics.decode.bound()}-bound); try {' or '.join(hints)}")  # fmt: skip
        return None

    def _wider_tp(self) -> list[str]:
        """A larger tensor-parallel degree to name for a missed TPOT, with its TPOT at the batch that missed.

        The smallest within the link domain that meets the target at that batch, else the largest; none where this is the
        largest already, or with data-parallel attention (whose groups the memory advice names).
        """
        d, target = self.deployment, self.request.tpot_ms
        heads = None if isinstance(d.model, GenericModel) else d.model.num_heads
        if heads is None or target is None or d.dp_attention > 1:
            return []
        wider = [t for t in valid_tp(heads, d.device.interconnect.domain_size) if t > d.tp]
        r = self.request
        for t in wider:
            wide = replace(d, tp=t, ep=max(d.ep, 1))
            tpot = float(serve(wide, self.batch, r.input_tokens, r.output_tokens, cached=r.prefix_cached_share).tpot_s)
            if tpot * 1e3 <= target:
                return [f"TP={t} ({tpot * 1e3:,.1f} ms at batch {self.batch:,})"]
            if t == wider[-1]:  # the nearest, said as such (it read as a remedy: "try TP=8 (4.2 ms)" for a 1 ms target)
                return [f"TP={t} (the widest on its link: {tpot * 1e3:,.1f} ms at batch {self.batch:,}, still over the target)"]
        return []

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (keys fixed by the CLI contract; floats rounded for stability).

        A deployment that does not fit memory runs at no speed: its TTFT, TPOT, end-to-end time and throughput are ``null``
        (they were the roofline's figures for a deployment that cannot start, beside ``fits: false``).
        """
        d, m, r = self.deployment, self.metrics, self.replicas
        dec = self.deployment.model.kind == "decoder"
        runs = self.fits

        def speed(x: float) -> float | None:
            return _r(x) if runs else None

        return {
            "schema_version": SCHEMA_VERSION,
            "model": d.model.id,
            "hardware": d.device.id,
            "devices": d.devices * r,
            "tp": d.tp,
            "pp": d.pp,
            "ep": d.ep,
            "dp_attention": d.dp_attention,
            "replicas": r,
            "batch": self.batch,
            "weights_dtype": d.weights_dtype,
            "kv_dtype": d.kv_dtype,
            "checkpoint_dtype": None if isinstance(d.model, GenericModel) else d.model.checkpoint_dtype,
            "input_tokens": self.request.input_tokens,
            "prefix_cached_share": self.request.prefix_cached_share,
            "speculative": speculative_document(d.speculative),
            "output_tokens": self.request.output_tokens if dec else 0,
            "fits": self.fits,
            "advice": self.shortfall,
            "memory_gib": {k: _r(v) for k, v in self.mem.items()},
            "kv_cache_tokens": self.kv_cache_tokens,
            "state_tokens_per_sequence": int(memory.state_tokens(d, d.tp, d.pp)) if dec else 0,
            "max_batch_at_context": self.limits.get("max_batch_at_context"),
            "max_context_at_batch": self.limits.get("max_context_at_batch"),
            "ttft_s": speed(float(m.ttft_s)),
            "tpot_s": speed(float(m.tpot_s)) if dec else None,
            "e2e_s": speed(float(m.e2e_s)),
            "throughput": {
                "output_tokens_per_s": speed(float(m.output_tokens_per_s) * r),
                "total_tokens_per_s": speed(float(m.total_tokens_per_s) * r),
                "requests_per_s": speed(float(m.requests_per_s) * r),
            },
            "bound": {"prefill": str(m.prefill.bound()), "decode": str(m.decode.bound()) if dec else None},
            "error_band_pct": self.bands,
            "efficiency_calibrated": d.efficiency.calibrated,
            "engine": engine_document(self.request.engine, d.runtime, d.efficiency, d.tp),
        }


def engine_document(spec: EngineSpec | None, runtime: RuntimeSpec, efficiency: EfficiencySpec, tp: int = 1) -> dict[str, Any]:
    """What an output says about the engine: profile, the limits it sets, and whose efficiency factors apply.

    ``cuda_graph_max_batch`` is the largest decode batch (per micro-batch) the engine replays from a CUDA graph at
    tensor-parallel degree ``tp`` (``None``: every one); a larger decode-only step pays its kernel launches.

    ``engine_memory_multiplier`` is the engine's multiplier on the family's memory efficiency, fitted on its
    runs under load (1.0 where it has none); the factors count as fitted for the engine when either a
    ``family@framework`` entry or such a multiplier applies.
    """
    multiplier = 1.0 if spec is None else spec.memory_multiplier(efficiency.family)
    return {
        "id": runtime.engine,
        "name": None if spec is None else spec.name,
        "version": None if spec is None else spec.version,
        "memory_policy": runtime.kv_memory_policy,
        "memory_fraction": runtime.usable_memory_fraction,
        "max_running_requests": runtime.max_batch,
        "max_prefill_tokens": runtime.max_prefill_tokens,
        "eager": runtime.eager,
        "cuda_graph_max_batch": None if runtime.eager else runtime.graph_max_batch(tp),
        "efficiency_factors": efficiency.key,
        "efficiency_fitted_for_engine": (efficiency.framework is not None and efficiency.calibrated) or multiplier != 1.0,
        "engine_memory_multiplier": multiplier,
    }


def _r(x: float) -> float:
    """Round to 4 significant digits so JSON is stable across platforms."""
    return float(f"{x:.4g}") if np.isfinite(x) else 0.0


def _defaults(req: EstimateRequest) -> tuple[str, str]:
    """Weight and KV formats: as asked, else the released checkpoint's, else the model's own.

    A quantised checkpoint (``checkpoint_dtype``) is served as stored where the device has a kernel path
    for it and the engine serves the format; served in that format, its KV cache stays at the model's
    16-bit dtype unless asked (:func:`~aicap.sizing.core.dtypes.checkpoint_kv`). fp32 checkpoints are
    served in 16 bit on accelerators, as every serving stack does.

    Returns
    -------
    tuple of str
        The weight and KV-cache formats.
    """
    native = req.model.native_dtype
    stored = None if isinstance(req.model, GenericModel) else req.model.checkpoint_dtype
    peaks = dict(req.device.peak_tflops)
    wdt = req.weights_dtype
    if wdt is None and stored is not None and runs_format(req.device, stored):
        as_released = storage_formats(stored, peaks, req.kv_dtype or checkpoint_kv(stored, stored, native))
        if req.engine is None or req.engine.runs(req.device, *as_released):
            return as_released
    wdt = wdt or ("bf16" if native == "fp32" and req.device.kind != "cpu" else native)
    return storage_formats(wdt, peaks, req.kv_dtype or checkpoint_kv(wdt, stored, native))


def format_fallback(req: EstimateRequest) -> str | None:
    """Why a quantised checkpoint is estimated in another weight format (:func:`_defaults`), or ``None`` where it is not.

    Only where no ``--weights-dtype`` was given: the device has no kernel path for the released format, or the engine
    does not serve it there, so the weights are taken de-quantised to the model's own format.
    """
    stored = None if isinstance(req.model, GenericModel) else req.model.checkpoint_dtype
    if req.weights_dtype is not None or stored is None:
        return None
    used = _defaults(req)[0]
    if used == stored:
        return None
    why = (
        f"{req.device.id} has no kernels for it"
        if not runs_format(req.device, stored)
        else f"{req.engine.name if req.engine is not None else 'the engine'} does not serve it on {req.device.id}"
    )
    return f"{req.model.id}'s checkpoint is {stored} and {why}: estimated with the weights in {used} (--weights-dtype to choose)"


def candidate_layouts(req: EstimateRequest, devices: int) -> list[tuple[int, int]]:
    """(tp, pp) pairs that use at most ``devices`` devices; tp stays inside the fast-link domain."""
    model = req.model
    domain = req.device.interconnect.domain_size
    heads = 1 if isinstance(model, GenericModel) else model.num_heads
    layers = 1 if isinstance(model, GenericModel) else model.num_layers
    groups = req.dp_attention
    if groups > 1:  # attention groups of a ≤ domain devices, experts over all tp = D·a; one pipeline stage (Deployment.check)
        tps = [req.tp] if req.tp else [groups * a for a in valid_tp(heads, min(devices // groups, domain))]
        if not req.tp and req.scale_out_bps is None:  # no network joins instances of the device: the group stays on one machine
            tps = [t for t in tps if t <= domain] or tps  # (none left: the first is refused with the reason)
        return [(tp, req.pp or 1) for tp in tps if tp * (req.pp or 1) <= devices]
    tps = [req.tp] if req.tp else [t for t in valid_tp(heads, min(devices, domain))]
    out: list[tuple[int, int]] = []
    for tp in tps:
        pps = [req.pp] if req.pp else list(range(1, min(devices // tp, layers) + 1))  # O(layers), whatever the device count
        out.extend((tp, pp) for pp in pps if tp * pp <= devices)
    return out


def estimate(req: EstimateRequest) -> EstimateResult:
    """Evaluate one deployment; search the layout when ``tp``/``pp`` are not given.

    Raises
    ------
    InputError
        For invalid degrees, lengths or dtypes.
    InfeasibleError
        When no layout within ``devices`` fits the model (the message gives the numbers).
    """
    if req.input_tokens < 1 or req.output_tokens < 0:
        raise InputError(f"--input-tokens {req.input_tokens} / --output-tokens {req.output_tokens}: lengths must be positive")
    if req.model.kind == "decoder" and req.output_tokens < 1:
        raise InputError(f"--output-tokens {req.output_tokens}: a decoder generates at least one token; give a positive count")
    check_prefix_cached(req.prefix_cached_share)
    if req.batch is not None and req.batch < 1:
        raise InputError(f"--batch {req.batch}: must be a positive integer or 'auto'")
    for flag, value in (("--devices", req.devices), ("--tp", req.tp), ("--pp", req.pp), ("--ep", req.ep)):
        if value is not None and value > MAX_DEVICES:
            raise InputError(f"{flag} {value}: at most {MAX_DEVICES:,} devices (the largest deployment aicap estimates); "
                             f"give a count between 1 and {MAX_DEVICES:,}")  # fmt: skip
    wdt, kvdt = _defaults(req)
    Engine(req.runtime, req.engine).check(req.device, wdt, kvdt)  # an engine that does not run here, before what it would refuse
    refused = req.runtime.refuses_prompt(req.input_tokens)
    if refused is not None:
        raise InfeasibleError(refused)
    if req.dp_attention > 1 and req.engine is not None and req.engine.dp_attention is None:
        raise InputError(f"--dp-attention {req.dp_attention}: the {req.engine.name} profile runs no data-parallel attention; "
                         "engines that do: vllm, sglang, trtllm (and generic)")  # fmt: skip
    # TensorRT-LLM: one attention group per device of the stage (its attention data-parallel size is the TP size)
    per_device = req.dp_attention > 1 and req.engine is not None and req.engine.dp_attention is not None and \
        req.engine.dp_attention.groups == "per_device"  # fmt: skip
    if per_device and req.tp is not None and req.tp != req.dp_attention:
        assert req.engine is not None
        raise InputError(f"--dp-attention {req.dp_attention} with --tp {req.tp}: {req.engine.name} runs one attention group per device "
                         f"of the stage (its attention data-parallel size is the tensor-parallel size): give --dp-attention "
                         f"{req.tp}")  # fmt: skip
    devices = req.devices or (req.tp or (req.dp_attention if req.dp_attention > 1 else 1)) * (req.pp or 1)
    if devices < 1:
        raise InputError(f"--devices {devices}: must be a positive integer")
    if devices > MAX_DEVICES:
        raise InputError(
            f"--tp {req.tp} × --pp {req.pp} = {devices:,} devices: at most {MAX_DEVICES:,} (the largest deployment aicap estimates)"
        )
    if (req.tp or req.pp) and (req.tp or 1) * (req.pp or 1) > devices:
        given = " × ".join(f"--{k} {v}" for k, v in (("tp", req.tp), ("pp", req.pp)) if v)
        raise InputError(f"{given} needs {(req.tp or 1) * (req.pp or 1)} devices but --devices is {devices}")
    if req.devices and req.tp and req.pp and devices % (req.tp * req.pp):
        raise InputError(f"--devices {devices}: not a whole number of TP{req.tp}·PP{req.pp} replicas ({req.tp * req.pp} devices each); "
                         f"give a multiple of {req.tp * req.pp}, or leave out --tp/--pp to choose the layout")  # fmt: skip
    ctx = req.input_tokens + (req.output_tokens if req.model.kind == "decoder" else 0)
    if hasattr(req.model, "max_context") and ctx > req.model.max_context:
        what = "--input-tokens + --output-tokens" if req.model.kind == "decoder" else "--input-tokens"
        longest, most_out = req.model.max_context - ctx + req.input_tokens, req.model.max_context - req.input_tokens
        fix = (f"--input-tokens of at most {longest:,}" if longest >= 1 else  # the output alone fills the context: shorten it
               f"--output-tokens of at most {most_out:,}" if most_out >= 1 else  # and so does the prompt
               f"--input-tokens and --output-tokens that sum to at most {req.model.max_context:,}")  # fmt: skip
        raise InputError(f"{what} = {ctx:,} tokens exceeds {req.model.id}'s max context of {req.model.max_context:,}: give {fix}")
    domain = req.device.interconnect.domain_size
    one_machine = req.engine is not None and not req.engine.spans_instances  # its profile records no multi-node start
    if one_machine and (req.tp or 1) * (req.pp or 1) > domain:
        assert req.engine is not None
        raise InputError(f"--tp {req.tp or 1} × --pp {req.pp or 1}: a replica of {(req.tp or 1) * (req.pp or 1)} devices spans more than "
                         f"one {req.device.id} machine's fast-link domain of {domain}, and {req.engine.name}'s profile records no start "
                         f"of a replica over several machines; give at most {domain} devices a replica, or an engine whose profile "
                         "records one (spans_instances in aicap engines show ID)")  # fmt: skip
    results: list[EstimateResult] = []
    for tp, pp in candidate_layouts(req, devices):
        if per_device and tp != req.dp_attention:
            continue
        if one_machine and tp * pp > domain:  # the search keeps such an engine's replicas on one machine, as the sizer does
            continue
        ep = tp if req.dp_attention > 1 and req.ep == 1 else req.ep  # data-parallel attention splits the experts over all tp
        dep = Deployment(req.model, req.device, req.efficiency, req.runtime, tp, pp, ep, wdt, kvdt, req.scale_out_bps, req.speculative,
                         req.dp_attention)  # fmt: skip
        dep.check()
        results.append(_evaluate(dep, req, devices // (tp * pp)))
    if not results:
        raise InputError(f"no tensor-parallel degree of {req.model.id} fits {devices} device(s) of {req.device.id}")
    best = results[0]
    for res in results[1:]:
        if _better(res, best):
            best = res
    best = _quickest_of_the_tied(best, results)
    best.bands = error_bands()
    return best


#: Layouts whose throughput is within this share of the best layout's tie, and the lowest TPOT among them wins
#: (:func:`_quickest_of_the_tied`). A choice, not a fit: the model's layouts differ by less than its error band
#: (±20% on throughput), and 2% more tokens are not worth a replica's pipeline stages (TP4·PP2 beside two TP4 replicas).
LAYOUT_TIE = 0.02


def _throughput(r: EstimateResult) -> float:
    """Output tokens/s (requests/s for an encoder or generic model) of all the replicas of ``r``."""
    m = r.metrics
    return float(m.output_tokens_per_s if r.deployment.model.kind == "decoder" else m.requests_per_s) * r.replicas


def _quickest_of_the_tied(best: EstimateResult, results: list[EstimateResult]) -> EstimateResult:
    """The lowest-TPOT layout of those within :data:`LAYOUT_TIE` of ``best``'s throughput that fit and meet the TPOT target.

    Then the most throughput, then the fewest devices; ``best`` itself on a full tie.

    A throughput-best layout that gains 0.5% with twice the pipeline stages (Llama-3.1-8B on 4 H100s: TP1·PP2 × 2
    replicas beside TP1 × 4, TPOT 23.7 against 14.1 ms in simulation) is no reason to double every token's latency.
    """
    if not best.fits or best.tpot_missed:
        return best
    floor = _throughput(best) / (1.0 + LAYOUT_TIE)
    tied = [r for r in results if r.fits and not r.tpot_missed and _throughput(r) >= floor]
    return min(tied, key=lambda r: (float(r.metrics.tpot_s), -_throughput(r), r.deployment.devices, r is not best))


def _better(a: EstimateResult, b: EstimateResult) -> bool:
    """Whether layout ``a`` beats ``b``.

    It fits where ``b`` does not; then it meets the TPOT target where ``b`` misses it (both missing: the nearer one, so
    the advice starts from the closest layout); then more throughput, then fewer devices.
    """
    if a.fits != b.fits:
        return a.fits
    if a.fits and a.tpot_missed != b.tpot_missed:
        return not a.tpot_missed
    if a.fits and a.tpot_missed and abs(float(a.metrics.tpot_s) - float(b.metrics.tpot_s)) > 1e-12:
        return float(a.metrics.tpot_s) < float(b.metrics.tpot_s)
    if not a.fits:  # neither fits: prefer the one closest to fitting
        return a.mem["total"] / a.mem["capacity"] < b.mem["total"] / b.mem["capacity"]
    ta, tb = _throughput(a), _throughput(b)
    return ta > tb * (1 + 1e-9) or (abs(ta - tb) <= tb * 1e-9 and a.deployment.devices < b.deployment.devices)


def _evaluate(dep: Deployment, req: EstimateRequest, replicas: int) -> EstimateResult:
    i, o = req.input_tokens, req.output_tokens
    tpot = None if req.tpot_ms is None else req.tpot_ms / 1000.0
    h = req.prefix_cached_share
    batch = req.batch or auto_batch(dep, i, o, tpot, h) or 1
    if req.batch is None and batch > 1 and not (req.best_batch and dep.model.kind == "decoder"):
        batch = _knee(dep, batch, i, o, h)
    metrics = serve(dep, batch, i, o, cached=h)
    limits: dict[str, int | None] = {"max_batch_at_context": None, "max_context_at_batch": None}
    mb = memory.breakdown(dep, dep.tp, dep.pp, batch, i, i + o)
    mem = {"weights": float(mb.weights) / GIB, "kv_cache": float(mb.kv_cache) / GIB,
           "activations": float(mb.activations) / GIB, "overhead": float(mb.overhead) / GIB}  # fmt: skip
    kv_tokens = 0
    if dep.model.kind == "decoder":
        kv_tokens = int(memory.kv_cache_tokens(dep, dep.tp, dep.pp))
        limits["max_batch_at_context"] = int(memory.max_batch(dep, dep.tp, dep.pp, i, i + o))
        limits["max_context_at_batch"] = memory.max_context(dep, dep.tp, dep.pp, batch)
    mem["total"] = sum(mem.values())
    mem["capacity"] = float(mb.capacity) / GIB
    held = limits["max_batch_at_context"]
    short_pool = held is not None and held < batch  # the engine sizes its KV pool after a whole step's workspace
    fits = mem["total"] <= mem["capacity"] and not short_pool
    context = None if dep.model.kind == "generic" else i + (o if dep.model.kind == "decoder" else 0)
    pool = kv_tokens if short_pool and mem["total"] <= mem["capacity"] else None  # only the pool binds: the bytes fit
    advice = None if fits else advise(dep, mem, batch=int(batch), context=context, max_batch=held,
                                      max_context=limits["max_context_at_batch"], pool_tokens=pool)  # fmt: skip
    res = EstimateResult(req, dep, max(replicas, 1), int(batch), metrics, mem, kv_tokens, fits, advice)
    res.limits = limits
    return res


KNEE_SHARE = 0.99  # the auto batch: the smallest reaching this share of the largest fitting batch's throughput


def _knee(dep: Deployment, largest: int, i: int, o: int, cached: float) -> int:
    """The smallest batch whose throughput reaches :data:`KNEE_SHARE` of batch ``largest``'s (requests/s; a decoder's output tokens/s).

    Latency grows with the batch while throughput flattens once the device is compute-bound: BERT-base at 512 tokens on an
    H100 runs about as many requests/s at batch 64 as at 2,048, and 16x sooner; Llama-3.1-8B on an EPYC 9654 socket decodes
    63 tokens/s at batch 32 (TPOT 0.5 s) and at 2,048, the largest that fits (TPOT 33 s). Bisection keeps a batch that
    reaches the goal, so the batch returned always does.
    """

    def rate(batch: int) -> float:
        m = serve(dep, batch, i, o if dep.model.kind == "decoder" else 1, cached=cached)
        return float(m.output_tokens_per_s if dep.model.kind == "decoder" else m.requests_per_s)

    goal = KNEE_SHARE * rate(largest)
    lo, hi = 1, largest  # hi reaches the goal
    while lo < hi:
        mid = (lo + hi) // 2
        if rate(mid) >= goal:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _gib(more: float, less: float, *others: float) -> list[str]:
    """GiB amounts of ``more``, ``less`` and ``others`` to one decimal, or more where needed to show ``more > less``."""
    digits = next((d for d in (1, 2, 3) if round(more, d) > round(less, d)), 1)
    return [f"{v:,.{digits}f} GiB" for v in (more, less, *others)]


def _weights_fit(dep: Deployment) -> bool:
    """Whether the weights and the runtime overhead alone fit one device of ``dep``'s layout."""
    need = float(memory.weight_bytes_per_device(dep, dep.tp, dep.pp)) + float(memory.overhead_bytes(dep, dep.tp, dep.pp))
    return need <= float(memory.capacity_bytes(dep, need))


def _layout_hints(dep: Deployment, *, spelled: bool = False) -> list[str]:
    """Steps that shrink every per-device term and at which the weights fit: a larger TP (or PP) degree, smaller weights.

    Each step is checked with the memory model before it is named (the smallest TP or PP that fits,
    smaller weights at this layout, or both together); ``fp8 weights`` rather than ``fp8`` when ``spelled``.
    """
    heads = None if isinstance(dep.model, GenericModel) else dep.model.num_heads
    layers = None if isinstance(dep.model, GenericModel) else dep.model.num_layers
    tps = [t for t in valid_tp(heads, dep.device.interconnect.domain_size) if t > dep.tp] if heads else []
    pps = [p for p in (dep.pp * 2**k for k in range(1, 7)) if layers and p <= layers]
    smaller = ("fp8" if "fp8" in dep.device.peak_tflops else "int8") if dep.weights_dtype in {"bf16", "fp16", "fp32"} else None
    smaller = "int4" if dep.weights_dtype in {"fp8", "int8"} else smaller
    label = (f"{smaller} weights" if spelled else smaller) if smaller else ""
    hints: list[str] = []
    if dep.dp_attention > 1:  # one pipeline stage; more devices are whole instances, each with as many attention groups
        a, dom = dep.attention_tp, dep.device.interconnect.domain_size
        wider = [n * dom for n in (1, 2, 4, 8) if n * dom > dep.tp] if dep.scale_out_bps is not None or dom > dep.tp else []
        tps, pps = [], []
        fit = next((t for t in wider if _weights_fit(replace(dep, tp=t, ep=t, dp_attention=t // a))), None)
        if fit is not None:
            hints.append(f"TP={fit} with DP-attention {fit // a}")
    tp_fit = next((t for t in tps if _weights_fit(replace(dep, tp=t))), None)
    pp_fit = next((q for q in pps if _weights_fit(replace(dep, pp=q))), None)
    if tp_fit is not None:
        hints.append(f"TP={tp_fit}")
    elif pp_fit is not None:
        hints.append(f"PP={pp_fit}")
    if smaller:
        quant = replace(dep, weights_dtype=smaller, kv_dtype=smaller if smaller != "int4" else dep.kv_dtype)
        if _weights_fit(quant):
            hints.append(label)
        elif (both := next((t for t in tps if _weights_fit(replace(quant, tp=t))), None)) is not None:
            hints.append(f"TP={both} with {label}")
    return hints or ["a device with more memory (no layout within one link domain fits the weights)"]


def advise(dep: Deployment, mem: dict[str, float], *, batch: int = 1, context: int | None = None,
           max_batch: int | None = None, max_context: int | None = None, pool_tokens: int | None = None) -> str:  # fmt: skip
    """Say in numbers why a deployment does not fit, naming the term that binds, and what would help.

    ``mem`` holds GiB per device (``weights``, ``kv_cache``, ``activations``, ``overhead``,
    ``capacity``). Exactly one of two cases:

    * **The weights bind** when weights plus the runtime overhead alone exceed the usable memory:
      no batch or context fits, and only a larger TP (or PP) degree or smaller weights help.
    * **The KV cache or the activations bind** otherwise (whichever is larger; activations are the
      prefill workspace and the logits): the terms that grow with batch and context exceed what
      weights and overhead leave. A smaller batch helps (down to ``max_batch``, the most that fit at
      this context); at batch 1, a shorter context (``max_context``), a larger TP degree or smaller
      weights; an 8-bit KV cache when the KV cache binds.

    The message quotes the sum that exceeds the capacity, so its numbers never contradict the verdict.
    ``pool_tokens`` (the KV tokens the engine allocates) names a third case: the batch's bytes fit, but the
    engine reserves the workspace of a whole step before it sizes the pool, which then holds fewer than
    ``batch`` requests of ``context`` tokens. An engine whose KV cache has a set size (``kv_cache_tokens``
    ``N``, llama.cpp's ``--ctx-size``) binds first where ``batch · context > N``: only that setting helps.
    """
    cap, w, ovh = mem["capacity"], mem["weights"], mem["overhead"]
    fixed = dep.runtime.kv_cache_tokens
    if fixed is not None and context and batch * context > fixed and w + ovh <= cap:
        # An engine that allocates its KV cache for a set number of tokens (llama.cpp's --ctx-size, its profile's
        # memory.kv_cache_tokens_flag) binds there, whatever memory is free: more memory, TP or smaller weights do not
        # help; a larger setting does.
        flag = f", the launch option {dep.runtime.kv_cache_tokens_flag}" if dep.runtime.kv_cache_tokens_flag else ""
        return (f"{dep.runtime.engine} allocates its KV cache for {fixed:,} tokens (memory.kv_cache_tokens{flag}), shared by the "
                f"running requests: fewer than batch {batch:,} × {context:,} tokens; what helps: "
                + (f"lower the batch to at most {fixed // context:,}, or " if batch > 1 and fixed >= context else "")
                + f"a kv_cache_tokens of at least {batch * context:,} in a catalogue overlay (--catalog DIR, docs/engines.md) and the "
                f"engine launched to match, or shorter requests (at most {fixed:,} tokens)")  # fmt: skip
    if pool_tokens is not None and w + ovh <= cap:
        helps = ([f"lower the batch to at most {max_batch:,}"] if max_batch else []) + _layout_hints(dep, spelled=True)
        return (f"the KV cache the engine allocates holds {pool_tokens:,} tokens (what weights, overhead and the workspace of "
                f"one step of {dep.runtime.max_prefill_tokens:,} tokens leave), fewer than batch {batch:,} × {context or 0:,} "
                f"tokens; what helps: {', or '.join(helps)}")  # fmt: skip
    if w + ovh > cap:
        total, caps, ws, os_ = _gib(w + ovh, cap, w, ovh)
        drafter = dep.draft
        share = memory.draft_weight_bytes(dep) / float(memory.attention_tp(dep, dep.tp)) / GIB if drafter is not None else 0.0
        of = f" (of which the drafter {drafter.model.id}'s {share:,.1f} GiB)" if drafter is not None and share > 0 else ""
        bigger = (f"; the drafter is larger than {dep.model.id}: draft with a smaller model of its family"
                  if drafter is not None and share > w / 2 else "")  # fmt: skip
        return (f"weights {ws} per device{of} + overhead {os_} = {total} > {caps} usable, before any KV cache or activations; "
                f"try {' or '.join(_layout_hints(dep))}{bigger}")  # fmt: skip
    kv, act = mem["kv_cache"], mem["activations"]
    (big, big_v), (small, small_v) = sorted([("KV cache", kv), ("activations", act)], key=lambda t: -t[1])
    need, free, big_s, small_s, caps, ws, os_ = _gib(big_v + small_v, cap - w - ovh, big_v, small_v, cap, w, ovh)
    terms = f"{big} {big_s} + {small} {small_s} = {need}" if small_v > 0 else f"{big} {need}"
    at = f"batch {batch:,}" + (f" × {context:,} tokens" if context else "")
    hints: list[str] = []
    if batch > 1 and max_batch:
        hints.append(f"lower the batch to at most {max_batch:,} (the most that fit at this context)")
    else:
        if batch > 1 and max_batch is None:  # no limit computed (generic models): the batch is all there is to lower
            hints.append("lower the batch")
        if max_context and context and max_context < context:
            hints.append(f"shorten requests to at most {max_context:,} tokens")
        hints += _layout_hints(dep, spelled=True)
    if big == "KV cache" and dep.kv_dtype in {"bf16", "fp16", "fp32"}:
        hints.append(f"an 8-bit KV cache (--kv-dtype {'fp8' if 'fp8' in dep.device.peak_tflops else 'int8'})")
    what = "the KV cache binds" if big == "KV cache" else "the activations (prefill workspace and logits) bind"
    return (f"{what}: at {at}, {terms} > {free} left of {caps} usable after weights {ws} and overhead {os_}; "
            f"what helps: {', or '.join(hints)}")  # fmt: skip
