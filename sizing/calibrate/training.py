"""Score the training model on published runs, fit its two factors, and cross-validate by source.

Scored metrics per case (a case contributes each it has):

* **throughput**: ``tokens_per_s_per_device``; else ``tokens_per_s`` (the whole job's, as
  torchtune reports it); else Megatron's ``tflops_per_device``, converted to tokens/s with the
  paper's own count ``96 l h² (1 + s/6h + V/16lh)`` FLOPs per token; else ``step_time_s``;
* **memory**: ``peak_memory_gib_per_device`` against the predicted total less the runtime reserve
  (published peaks are PyTorch caching-allocator peaks, which do not include the CUDA context),
  ``fits`` and an upper bound ``peak_memory_gib_per_device_max`` against whether the whole
  predicted total fits.

Cases with none of these (GPU-hour totals without a layout, time-to-accuracy benchmarks, a FLOP
rate of unknown convention) are listed as unscored with the reason. Errors are
``|predicted / measured − 1|``. The fit picks ``step_efficiency`` and ``dp_overlap`` on a grid to
minimise the mean absolute log error of the throughput metrics (the median is flat near its optimum); leave-one-source-out refits
without each source and predicts it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aicap.sizing.calibrate.training_cases import TrainingCase
from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.engines import generic_runtime
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.train.estimate import Evaluation, Hardware, evaluate
from aicap.sizing.train.factors import TrainingFactors
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.shape import shape_of
from aicap.sizing.train.step import RawStep, assemble

THROUGHPUT = ("tokens_per_s_per_device", "tokens_per_s", "tflops_per_device", "step_time_s")
LOGITS_GRID = tuple(2.0 + 0.5 * i for i in range(17))
EFFICIENCY_GRID = tuple(round(0.40 + 0.01 * i, 2) for i in range(61))
OVERLAP_GRID = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class Score:
    """One scored metric of one case."""

    case: str
    source: str
    metric: str
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        """``|predicted / measured − 1|`` (for ``fits``: 0 when right, 1 when wrong)."""
        return abs(self.predicted / self.measured - 1.0)


@dataclass(frozen=True)
class Unscored:
    """A case the model cannot be scored on, and why."""

    case: str
    reason: str


def _megatron_flops_per_token(model: DecoderModel, seq: int) -> float:
    layers, h, v = model.num_layers, model.hidden_size, model.vocab_size
    return 96.0 * layers * h * h * (1.0 + seq / (6.0 * h) + v / (16.0 * layers * h))


def score_case(case: TrainingCase, cat: CatalogueLike, factors: TrainingFactors) -> list[Score] | Unscored:
    """Predict a case's scored metrics."""
    return _score(case, cat, factors)[0]


def _score(case: TrainingCase, cat: CatalogueLike, factors: TrainingFactors) -> tuple[list[Score] | Unscored, Evaluation]:
    """A case's scores and the evaluation they came from (the fit reuses its raw step terms)."""
    m = case.metrics
    model = case.model
    assert isinstance(model, DecoderModel)
    hw = Hardware(case.device, cat.efficiency_for(case.device), generic_runtime(cat), case.fabric)
    ev = evaluate(shape_of(model), Grid.of([case.setup]), hw, factors)
    tps = float(ev.tokens_per_s_per_device[0])
    devices = case.setup.devices
    out: list[Score] = []

    def add(metric: str, measured: float, predicted: float) -> None:
        out.append(Score(case.id, case.source, metric, float(measured), predicted))

    if "tokens_per_s_per_device" in m:
        add("tokens_per_s_per_device", float(m["tokens_per_s_per_device"]), tps)
    elif "tokens_per_s" in m:
        add("tokens_per_s", float(m["tokens_per_s"]), tps * devices)
    elif "tflops_per_device" in m and case.source == "S_MEGATRON_SC21":
        per_token = _megatron_flops_per_token(model, case.setup.seq_len)
        add("tokens_per_s_per_device", float(m["tflops_per_device"]) * 1e12 / per_token, tps)
    elif "step_time_s" in m:
        add("step_time_s", float(m["step_time_s"]), float(ev.step_time_s[0]))
    total = float(ev.memory.total[0])
    fits = bool(total <= case.device.memory_gib)
    if "peak_memory_gib_per_device" in m:
        allocator = total - generic_runtime(cat).runtime_overhead_gib
        add("peak_memory_gib_per_device", float(m["peak_memory_gib_per_device"]), allocator)
    if "fits" in m:
        add("fits", 1.0, 1.0 if fits == bool(m["fits"]) else 2.0)
    if "peak_memory_gib_per_device_max" in m:
        add("fits", 1.0, 1.0 if total <= float(m["peak_memory_gib_per_device_max"]) else 2.0)
    if not out:
        return Unscored(case.id, _reason(case)), ev
    if not math.isfinite(float(ev.step_time_s[0])):
        return Unscored(case.id, "the layout spans instances whose network bandwidth is not published"), ev
    return out, ev


def _reason(case: TrainingCase) -> str:
    m = case.metrics
    if "device_hours" in m:
        return "GPU-hour total without a published layout or device count"
    if "wall_clock_minutes" in m:
        return "time to a target accuracy (token count not fixed)"
    return "FLOP rate of an unstated convention"


def score_all(cases: Sequence[TrainingCase], cat: CatalogueLike, factors: TrainingFactors) -> tuple[list[Score], list[Unscored]]:
    """Score every case; return the scores and the unscored cases."""
    scores: list[Score] = []
    unscored: list[Unscored] = []
    for case in cases:
        res = score_case(case, cat, factors)
        if isinstance(res, Unscored):
            unscored.append(res)
        else:
            scores.extend(res)
    return scores, unscored


def _loss(scores: Sequence[Score]) -> tuple[float, float]:
    logs = [abs(math.log(s.predicted / s.measured)) for s in scores if s.metric in THROUGHPUT]
    return (statistics.median(logs), statistics.fmean(logs)) if logs else (0.0, 0.0)


def _memory_loss(scores: Sequence[Score]) -> tuple[int, float, float]:
    wrong = sum(1 for s in scores if s.metric == "fits" and s.predicted != 1.0)
    errors = [s.error for s in scores if s.metric == "peak_memory_gib_per_device"]
    return (wrong, statistics.median(errors), statistics.fmean(errors)) if errors else (wrong, 0.0, 0.0)


@dataclass(frozen=True)
class _Rates:
    """Throughput metrics of many cases with their raw step terms, concatenated for a fast fit."""

    scores: list[Score]
    raw: RawStep
    scale: npt.NDArray[np.float64]
    per_step: npt.NDArray[np.bool_]

    def predict(self, eta: float, phi: float) -> npt.NDArray[np.float64]:
        total = assemble(self.raw, eta, phi).total
        return np.where(self.per_step, total, self.scale / total)

    def subset(self, keep: npt.NDArray[np.bool_]) -> _Rates:
        raw = RawStep(**{f: getattr(self.raw, f)[keep] for f in _RAW_FIELDS}, flops=self.raw.flops)
        return _Rates([s for s, k in zip(self.scores, keep, strict=True) if k], raw, self.scale[keep], self.per_step[keep])


_RAW_FIELDS = ("matmul", "attention", "memory_bound", "tensor", "cp_traffic", "expert", "p2p", "bubble_ratio", "dp_traffic", "optimizer")


def _rates(cases: Sequence[TrainingCase], cat: CatalogueLike, factors: TrainingFactors) -> _Rates:
    scores: list[Score] = []
    raws: list[RawStep] = []
    scale: list[float] = []
    per_step: list[bool] = []
    for case in cases:
        res, ev = _score(case, cat, factors)
        if isinstance(res, Unscored):
            continue
        for sc in res:
            if sc.metric not in THROUGHPUT:
                continue
            raws.append(ev.step.raw)
            tokens = float(case.setup.batch_tokens)
            scale.append(tokens if sc.metric == "tokens_per_s" else tokens / case.setup.devices)
            per_step.append(sc.metric == "step_time_s")
            scores.append(sc)
    cat_raw = RawStep(**{f: np.concatenate([getattr(r, f) for r in raws]) for f in _RAW_FIELDS}, flops=raws[0].flops)
    return _Rates(scores, cat_raw, np.asarray(scale), np.asarray(per_step))


def _throughput_fit(rates: _Rates) -> tuple[float, float]:
    measured = np.asarray([s.measured for s in rates.scores])
    best: tuple[tuple[float, float], tuple[float, float]] | None = None
    for phi in OVERLAP_GRID:
        for eta in EFFICIENCY_GRID:
            logs = np.abs(np.log(rates.predict(eta, phi) / measured))
            loss = (float(np.mean(logs)), float(np.median(logs)))
            if best is None or loss < best[0]:
                best = (loss, (eta, phi))
    assert best is not None
    return best[1]


def _memory_fit(cases: Sequence[TrainingCase], cat: CatalogueLike, base: TrainingFactors) -> float:
    mem_best: tuple[tuple[int, float, float], float] | None = None
    for lb in LOGITS_GRID:
        loss_m = _memory_loss(score_all(cases, cat, base.model_copy(update={"logits_bytes": lb}))[0])
        if mem_best is None or loss_m < mem_best[0]:
            mem_best = (loss_m, lb)
    assert mem_best is not None
    return mem_best[1]


def fit_factors(cases: Sequence[TrainingCase], cat: CatalogueLike, base: TrainingFactors) -> TrainingFactors:
    """Fit the training factors on ``cases``.

    ``logits_bytes`` minimises (wrong fits, median, mean) memory error; ``step_efficiency`` and
    ``dp_overlap`` are grid-searched for the least mean (then median) absolute log error of throughput.
    """
    logits = _memory_fit(cases, cat, base)
    eta, phi = _throughput_fit(_rates(cases, cat, base))
    return base.model_copy(update={"logits_bytes": logits, "step_efficiency": eta, "dp_overlap": phi})


def leave_one_source_out(cases: Sequence[TrainingCase], cat: CatalogueLike, base: TrainingFactors) -> list[Score]:
    """Refit without each source and score that source's cases with the refitted factors."""
    rates = _rates(cases, cat, base)
    sources = np.asarray([s.source for s in rates.scores])
    out: list[Score] = []
    for source in sorted({c.source for c in cases}):
        held = [c for c in cases if c.source == source]
        rest = [c for c in cases if c.source != source]
        logits = _memory_fit(rest, cat, base)
        eta, phi = _throughput_fit(rates.subset(sources != source))
        fitted = base.model_copy(update={"logits_bytes": logits, "step_efficiency": eta, "dp_overlap": phi})
        out.extend(score_all(held, cat, fitted)[0])
    return out


@dataclass(frozen=True)
class Summary:
    """Absolute errors of one group of scores, in percent (``fits``: count of wrong answers)."""

    n: int
    median_pct: float
    p90_pct: float
    max_pct: float


def summarise(scores: Sequence[Score]) -> dict[str, Summary]:
    """Median, p90 (nearest rank) and max error per metric class: throughput, memory, fits."""
    groups: dict[str, list[float]] = {"throughput": [], "memory": [], "fits": []}
    for s in scores:
        key = "throughput" if s.metric in THROUGHPUT else ("fits" if s.metric == "fits" else "memory")
        groups[key].append(100.0 * s.error)
    out = {}
    for key, errs in groups.items():
        if not errs:
            continue
        errs.sort()
        out[key] = Summary(len(errs), statistics.median(errs), errs[min(len(errs) - 1, math.ceil(0.9 * len(errs)) - 1)], errs[-1])
    return out


def measured_families(cases: Sequence[TrainingCase], scores: Sequence[Score]) -> list[str]:
    """Device families (``efficiency.yaml``) of the cases whose throughput is scored: where the step factors were fitted."""
    scored = {s.case for s in scores if s.metric in THROUGHPUT}
    return sorted({c.device.family for c in cases if c.id in scored})


def factors_document(fitted: TrainingFactors, in_sample: Sequence[Score], loso: Sequence[Score], date: str,
                     families: Sequence[str] = ()) -> str:  # fmt: skip
    """The text of ``hardware_db/training/factors.yaml`` for fitted factors, their accuracy and the families measured."""
    ins, out = summarise(in_sample), summarise(loso)
    thr, mem = out["throughput"], out.get("memory")
    lines = [
        "# Training-time factors of aicap's training model (aicap.sizing.train). Generated by",
        "# `aicap validate --set training --write-factors hardware_db/training/factors.yaml`; do not edit by hand",
        "# (tests/sizing/calibrate/test_training_validation.py checks the shipped values equal a fresh fit).",
        "# Device peaks, matmul efficiencies (`compute` / `compute_fp8` per family in data/efficiency.yaml), link",
        "# efficiency and runtime reserves are shared with the serving model; this file holds what training adds.",
        "schema_version: 1",
        "training:",
        "  # Fraction of the family's matmul efficiency a whole training step realises on its compute",
        "  # (kernel launches, data loading, framework overheads; element-wise traffic is counted apart, at",
        "  # memory bandwidth, by aicap.sizing.train.traffic). Fitted, at most 1.",
        f"  step_efficiency: {fitted.step_efficiency}",
        "  # Fraction of a step's compute time that hides data-parallel traffic (bucketed all-reduce, FSDP",
        "  # prefetch). Fitted.",
        f"  dp_overlap: {fitted.dp_overlap:g}",
        "  # Bytes per logit element held for the loss (16-bit logits plus what the loss keeps in fp32; fused",
        "  # and chunked cross-entropy keep less than an fp32 copy). Fitted on the peak-memory cases.",
        f"  logits_bytes: {fitted.logits_bytes}",
        "  # NF4 storage with double quantisation: 4 bits + 0.127 bits of quantisation constants per weight.",
        '  # Dettmers et al. (2023), "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv:2305.14314, Sec. 3.',
        f"  nf4_bits_per_param: {fitted.nf4_bits_per_param}",
        "  # Vendors whose accelerators run QLoRA's NF4 base: bitsandbytes supports NVIDIA CUDA GPUs, with backends",
        "  # for AMD ROCm, Intel XPU and Gaudi HPU (and CPUs); none for TPUs (huggingface.co/docs/bitsandbytes/v0.46.0/",
        "  # installation). QLoRA elsewhere is refused, and not suggested as a remedy.",
        f"  nf4_vendors: [{', '.join(fitted.nf4_vendors)}]",
        "  # Host link for optimizer/parameter offload, per device, one direction, decimal GB/s: PCIe 4.0 x16",
        "  # = 16 GT/s x 16 lanes x 128/130 = 31.5 GB/s (PCI-SIG PCIe 4.0 base specification).",
        f"  host_link_gbps: {fitted.host_link_gbps}",
        "  # Device families with a scored published training run: elsewhere the step model is extrapolated.",
        f"  measured_families: [{', '.join(families)}]",
        "  # Leave-one-source-out absolute errors on the public cases (percent): the error band of predictions.",
        "  accuracy:",
        f"    throughput_median_pct: {thr.median_pct:.1f}",
        f"    throughput_p90_pct: {thr.p90_pct:.1f}",
        f"    memory_median_pct: {0.0 if mem is None else mem.median_pct:.1f}",
        f"    scored_throughput: {thr.n}",
        f"    in_sample_throughput_median_pct: {ins['throughput'].median_pct:.1f}",
        f"  source: 'fitted by aicap validate --set training on hardware_db/validation/training_cases.yaml ({thr.n} throughput",
        f"    and {0 if mem is None else mem.n} peak-memory metrics of published runs), {date}'",
        "",
    ]
    return "\n".join(lines)
