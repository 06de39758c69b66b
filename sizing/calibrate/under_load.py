"""Predicting measurements taken under load (kinds ``server`` and ``closed_loop``) with the simulator.

A case is replayed the way its benchmark ran: ``num_requests`` requests (``max(1000, 10·C)`` when the
source does not say), sent at ``request_rate`` with the case's arrival process (Poisson when not
given) or by ``batch`` closed-loop clients, through one replica per data-parallel group
(``devices / (tp·pp)`` replicas, round-robin) of the case's layout, formats and framework efficiency,
under FCFS, with the engine settings the case's source gives (``engine_options``: running requests,
step budget, chunked prefill, prefill-first steps, multi-step rounds, a fixed KV cache, NCCL all-reduces)
over its engine profile. Lengths: the case's fixed ``input_tokens``/``output_tokens``; else the dataset's means —
uniform on ``[1, 2m − 1]`` for ``random`` datasets (sglang's ``random_range_ratio 0``), otherwise the
shape of ShareGPT first turns as benchmark samplers draw them (``sharegpt-first-turn``: one published
run's 200 requests; the samplers of vLLM, SGLang and LMDeploy take the first two messages, prompts of at most
1,024 tokens) or the shape the case's ``dataset.lengths`` names (``sharegpt-first-turn-unfiltered`` for a
harness without that length filter), scaled to the case's means (most sources publish means only);
ShareGPT means from ``datasets.yaml`` when the case gives none. Where the source publishes every request's lengths
(``recorded_requests: true``; ``request_lengths.yaml`` holds them by case id), the case is replayed with
exactly those requests in the order they were sent, each at its own arrival of the case's process.
A run whose prompts an earlier run of its sweep left in the prefix cache (``prompt_cache_hits``, the
share of requests that find theirs) prefills only what follows a hit's cached full blocks
(:func:`warm_prefix_tokens`).
Open-loop arrivals (Poisson, gamma) are drawn and then conditioned on the ``n``-th arriving at ``n/λ``,
the expected span: the benchmark's own draw is unknown, and one seed's span of a few hundred arrivals
can be 15% long, which would put an unsaturated run's throughput 15% under its offered rate.
Statistics are over every request, as benchmark clients report them (no warm-up cut); throughput is
finished requests (tokens) over the simulated duration.

A case with ``measurement_window_s`` ``T`` was measured the way guidellm measures a rate: requests are
sent for ``T`` seconds and the benchmark ends at ``T``, cancelling what is in flight. Its TTFT, TPOT and
end-to-end statistics are then over the requests finished by ``T`` (its inter-token gaps, kept by the
simulator as one sample, over every request), and its throughputs are over ``[0, T]``: requests finished,
and tokens streamed, partial outputs included (a request's tokens spread evenly between its first token
and its finish), each divided by ``T``. With requests arriving from ``0`` at ``λ``, the output rate is
about ``λ·n·(1 − E/(2T))`` for end-to-end latency ``E``: the ramp-up, not a drain, is what it misses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.calibrate.case import EngineOptions
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment as Layout
from aicap.sizing.core.documents import load_yaml
from aicap.sizing.core.engines import engine_for_framework
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.efficiency import EfficiencySpec
from aicap.sizing.sim.arrivals import ArrivalKind
from aicap.sizing.sim.replay import Setup
from aicap.sizing.sim.traffic import Lengths, TrafficSpec, dataset

DEFAULT_REQUESTS = 1000
SEED = 0
CACHE_BLOCK_TOKENS = 16  # vLLM's default KV block (CacheConfig block_size on CUDA), the prefix cache's unit


def warm_prefix_tokens(prompt: NDArray[np.int64], share: float, seed: int = SEED) -> NDArray[np.int64]:
    """Cached prompt tokens of each request when a ``share`` of the prompts is found in the prefix cache.

    A hit reuses every full block but the one holding the last token, which is computed for its logits:
    ``cached = B·⌊(L − 1)/B⌋`` for a prompt of ``L`` tokens and blocks of ``B`` =
    :data:`CACHE_BLOCK_TOKENS` (vLLM V1 ``KVCacheManager.get_computed_blocks``); a miss caches nothing.
    The hits are the requests whose uniform draw (generator seeded with ``seed``) is below ``share``.

    Parameters
    ----------
    prompt : numpy.ndarray of int64
        Prompt lengths ``L``, tokens (≥ 1).
    share : float
        Share of requests that hit, in ``[0, 1]``.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray of int64
        Cached tokens per request, ``0 ≤ cached < L``.
    """
    hit = np.random.default_rng(seed).random(prompt.size) < share
    b = CACHE_BLOCK_TOKENS
    return np.where(hit, b * ((prompt - 1) // b), 0).astype(np.int64)


def _scaled(shape: Lengths, mean: float) -> Lengths:
    k = mean / shape.mean
    return Lengths(tuple(max(round(v * k), 1) for v in shape.values), shape.weights)


def _uniform(mean: float) -> Lengths:
    top = max(round(2 * mean - 1), 1)
    values = np.unique(np.linspace(1, top, min(top, 64)).round().astype(int))
    return Lengths(tuple(int(v) for v in values), tuple(1.0 for _ in values))


FIRST_TURN = "sharegpt-first-turn"  # the shape of ShareGPT first turns, as the filtering samplers draw them


@lru_cache(maxsize=1)
def _recorded() -> dict[str, tuple[NDArray[np.int64], NDArray[np.int64]]]:
    where = "hardware_db/validation/request_lengths.yaml"
    node = resources.files("aicap.hardware_db").joinpath("validation/request_lengths.yaml")
    doc = load_yaml(Path(where), node.read_text(encoding="utf-8"))
    out = {}
    for case_id, entry in (doc.get("cases") or {}).items():
        lin, lout = (np.asarray(entry[k], dtype=np.int64) for k in ("input_tokens", "output_tokens"))
        if lin.size == 0 or lin.shape != lout.shape or (lin < 1).any() or (lout < 0).any() or not entry.get("source"):
            raise InputError(f"{where}: cases.{case_id}: needs a source and equal-length input_tokens (>= 1) and output_tokens (>= 0)")
        out[str(case_id)] = (lin, lout)
    return out


def request_lengths(case_id: str) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Every request's prompt and output tokens of a case, in the order sent, where its source publishes them (else ``None``)."""
    return _recorded().get(case_id)


def case_lengths(case: dict[str, Any], sharegpt_means: tuple[float, float]) -> tuple[Lengths, Lengths]:
    """Input and output length distributions of a case (module docstring)."""
    ds = case.get("dataset") or {}
    mi = case.get("input_tokens") or ds.get("mean_input_tokens") or sharegpt_means[0]
    mo = case.get("output_tokens") or ds.get("mean_output_tokens") or sharegpt_means[1]
    if case.get("input_tokens") and case.get("output_tokens"):
        return Lengths.fixed(int(mi)), Lengths.fixed(int(mo))
    if "random" in str(ds.get("name", "")).lower():
        return _uniform(float(mi)), _uniform(float(mo))
    shape = dataset(str(ds.get("lengths") or FIRST_TURN))
    lin = Lengths.fixed(int(mi)) if case.get("input_tokens") else _scaled(shape.input_tokens, float(mi))
    lout = Lengths.fixed(int(mo)) if case.get("output_tokens") else _scaled(shape.output_tokens, float(mo))
    return lin, lout


def predict_under_load(case: dict[str, Any], cat: CatalogueLike, eff: EfficiencySpec, sharegpt_means: tuple[float, float],
                       request_overheads: Mapping[str, float] | None = None) -> dict[str, float]:  # fmt: skip
    """Simulated metrics of a ``server`` or ``closed_loop`` case (keys as in ``metrics``).

    ``eff`` is the case's factors as its engine reaches them; ``request_overheads`` replaces the per-request
    overhead [ms] of the engines it names (by id).

    Raises
    ------
    InputError
        When the case lacks its rate or concurrency, or the layout does not fit.
    """
    from aicap.sizing.sim.replay import run_raw

    kind = case["kind"]
    model, device = cat.model(case["model"]), cat.device(case["hardware"])
    tp, pp = int(case.get("tp") or 1), int(case.get("pp") or 1)
    devices = int(case.get("devices") or tp * pp)
    wdt = case.get("weights_dtype") or ("bf16" if "bf16" in device.peak_tflops else "fp16")
    opts = EngineOptions.model_validate(case["engine_options"]) if case.get("engine_options") else None
    runtime = engine_for_framework(cat, case.get("framework")).on(device)
    if request_overheads and runtime.engine in request_overheads:
        runtime = runtime.model_copy(update={"request_overhead_ms": float(request_overheads[runtime.engine])})
    if opts is not None:
        given = {
            "kv_cache_tokens": opts.kv_cache_tokens,
            "chunked_prefill": opts.chunked_prefill,
            "eager": opts.eager,
            "overlap_scheduling": opts.overlap_scheduling,
            "usable_memory_fraction": opts.memory_fraction,
            "cuda_graph_max_batch": None if opts.cuda_graph_max_batch is None else {1: opts.cuda_graph_max_batch},
        }
        runtime = runtime.model_copy(update={k: v for k, v in given.items() if v is not None})
    if opts is not None and opts.all_reduce == "nccl" and tp > 1:  # at tp = 1 there is nothing to all-reduce
        try:
            eff = eff.with_nccl_all_reduce()
        except InputError as exc:
            raise InputError(f"case {case['id']}: engine_options all_reduce nccl: {exc}") from None
    layout = Layout(model, device, eff, runtime, tp, pp, 1, wdt, case.get("kv_dtype") or wdt)
    layout.check()
    lin, lout = case_lengths(case, sharegpt_means)
    conc = int(case["batch"]) if kind == "closed_loop" and case.get("batch") else None
    rate = case.get("request_rate") if kind == "server" else None
    if conc is None and rate is None:
        raise InputError(f"case {case['id']}: a {kind} case needs {'batch (clients)' if kind == 'closed_loop' else 'request_rate'}")
    recorded = request_lengths(str(case["id"])) if case.get("recorded_requests") else None
    if case.get("recorded_requests") and recorded is None:
        raise InputError(f"case {case['id']}: recorded_requests is set but request_lengths.yaml has no entry for it")
    n = len(recorded[0]) if recorded is not None else int(case.get("num_requests") or max(DEFAULT_REQUESTS, 10 * (conc or 0)))
    arrival = case.get("arrival") or {}
    proc = arrival.get("process") or "poisson"
    kindname: ArrivalKind = "constant" if proc == "constant" else "gamma" if proc == "gamma" else "poisson"
    spec = TrafficSpec(n, lin, lout, rate_per_s=None if conc or rate is None else float(rate), concurrency=conc, arrival=kindname,
                       cv=float(arrival.get("cv") or 1.0), seed=SEED)  # fmt: skip
    reqs = spec.build()
    if rate is not None and conc is None and kindname != "constant" and reqs.arrival_s[-1] > 0.0:
        # The benchmark's own draw of arrivals is unknown: replay the draw conditioned on its n-th arrival at
        # n/λ, the expected span (exponential gaps rescaled to that sum are the arrival times of a Poisson
        # process given n arrivals by then), so throughput is not off by one seed's span (seed 0's first 300
        # gaps sum to 1.16·n/λ).
        reqs = dataclasses.replace(reqs, arrival_s=reqs.arrival_s * (n / float(rate) / reqs.arrival_s[-1]))
    if recorded is not None:  # the source's own requests, in the order it sent them
        reqs = dataclasses.replace(reqs, input_tokens=recorded[0].copy(), output_tokens=recorded[1].copy())
    if opts is not None and opts.prompt_cache_hits > 0.0:
        reqs = dataclasses.replace(reqs, cached_tokens=warm_prefix_tokens(reqs.input_tokens, opts.prompt_cache_hits))
    setup = Setup(layout, replicas=max(devices // (tp * pp), 1), max_num_seqs=None if opts is None else opts.max_running_requests,
                  max_batched_tokens=None if opts is None else opts.step_tokens, prefill_first=None if opts is None else opts.prefill_first,
                  decode_steps=1 if opts is None else opts.scheduler_steps, ignore_eos=opts is not None and opts.ignore_eos,
                  prefix_cache=opts is None or opts.prefix_cache is not False)  # fmt: skip
    res = run_raw(setup, reqs, concurrency=conc)
    window = case.get("measurement_window_s") if kind == "server" else None
    if window is not None:
        out, kept = _windowed(reqs.arrival_s, reqs.input_tokens, reqs.output_tokens, res.ttft_s, res.e2e_s, float(window))
    else:
        dur = max(res.duration_s, 1e-12)
        fin = res.finished
        out = {
            "requests_s": float(fin.sum()) / dur,
            "output_tok_s_total": float(reqs.output_tokens[fin].sum()) / dur,
            "total_tok_s_total": float((reqs.input_tokens + reqs.output_tokens)[fin].sum()) / dur,
        }
        kept = np.ones(len(reqs), dtype=bool)  # every request's latencies, as benchmark clients report them
    for name, values in (("ttft", res.ttft_s), ("tpot", res.tpot_s), ("e2e", res.e2e_s)):
        v = values[kept & ~np.isnan(values)] * 1e3
        if v.size:
            out[f"{name}_ms_mean"] = float(v.mean())
            out[f"{name}_ms_p50"] = float(np.percentile(v, 50))
            out[f"{name}_ms_p99"] = float(np.percentile(v, 99))
    gaps = res.itl
    if gaps is not None and gaps.tokens:  # inter-token latency: every gap between two tokens of a request, token-weighted
        out["itl_ms_mean"], out["itl_ms_p50"], out["itl_ms_p99"] = gaps.mean() * 1e3, gaps.quantile(0.5) * 1e3, gaps.quantile(0.99) * 1e3
    return out


def _windowed(arrival: NDArray[np.float64], prompt: NDArray[np.int64], output: NDArray[np.int64], ttft: NDArray[np.float64],
              e2e: NDArray[np.float64], window: float) -> tuple[dict[str, float], NDArray[np.bool_]]:  # fmt: skip
    """Throughputs over ``[0, T]`` and the requests finished by ``T`` (module docstring), ``T = window`` [s] after the first arrival.

    A request streams its first token at ``a + ttft`` and its last at ``a + e2e``; by ``T`` it has sent
    ``1 + (n − 1)·(T − a − ttft)/(e2e − ttft)`` of its ``n`` tokens (all of them once finished), and its
    prompt counts once its first token is out (guidellm's token rate counts the prompt with the first token).
    """
    t = arrival - arrival.min()
    first = t + np.nan_to_num(ttft, nan=np.inf)
    finish = t + np.nan_to_num(e2e, nan=np.inf)
    done = finish <= window
    started = first <= window
    n = output.astype(float)
    span = np.maximum(finish - first, 1e-12)
    partial = np.where(started, 1.0 + (n - 1.0) * np.clip((window - first) / span, 0.0, 1.0), 0.0)
    tokens = np.where(done, n, np.minimum(partial, n))
    out = {
        "requests_s": float(done.sum()) / window,
        "output_tok_s_total": float(tokens.sum()) / window,
        "total_tok_s_total": float(tokens.sum() + prompt[started].sum()) / window,
    }
    return out, done


KNEE_FACTOR = 3.0  # a sweep's knee: the first rate whose TTFT exceeds this multiple of the TTFT at its lowest rate
TTFT_KEYS = ("ttft_ms_p50", "ttft_ms_mean")


@dataclass(frozen=True)
class Knee:
    """Where a request-rate sweep's TTFT explodes, measured and predicted (``None``: not within the sweep)."""

    sweep: str
    rates: tuple[float, ...]
    measured: float | None
    predicted: float | None

    @property
    def within_one_step(self) -> bool:
        """The predicted knee is the measured one or a neighbouring rate of the sweep (both absent counts)."""
        pos = {r: k for k, r in enumerate(self.rates)}
        m = len(self.rates) if self.measured is None else pos[self.measured]
        p = len(self.rates) if self.predicted is None else pos[self.predicted]
        return abs(m - p) <= 1


def _knee(rates: list[float], ttft: list[float]) -> float | None:
    return next((r for r, t in zip(rates, ttft, strict=True) if t > KNEE_FACTOR * ttft[0]), None)


def knees(cases: list[dict[str, Any]], predicted: dict[tuple[str, str], float]) -> list[Knee]:
    """Knees of every ``server`` sweep with three or more rates and a TTFT at each.

    A sweep is the cases sharing source, model, hardware, framework, layout and dataset; ``predicted``
    maps ``(case id, metric)`` to the prediction. The knee is the first rate whose TTFT exceeds
    :data:`KNEE_FACTOR` times the TTFT at the sweep's lowest rate.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for c in cases:
        if c["kind"] == "server" and c.get("request_rate"):
            fields = [str(c.get(k)) for k in ("source_key", "model", "hardware", "framework")] + [str(c.get(k) or 1) for k in ("tp", "pp")]
            key = (*fields, str((c.get("dataset") or {}).get("name") or "fixed lengths"))
            groups.setdefault(key, []).append(c)
    out = []
    for key, group in sorted(groups.items()):
        group.sort(key=lambda c: float(c["request_rate"]))
        metric = next((m for m in TTFT_KEYS if all(m in c["metrics"] and (c["id"], m) in predicted for c in group)), None)
        if len(group) < 3 or metric is None:
            continue
        rates = [float(c["request_rate"]) for c in group]
        meas = _knee(rates, [float(c["metrics"][metric]) for c in group])
        pred = _knee(rates, [predicted[c["id"], metric] for c in group])
        out.append(Knee(" ".join(key[:4]) + f" tp{key[4]} {key[6][:40]}", tuple(rates), meas, pred))
    return out
