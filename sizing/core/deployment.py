"""A deployment layout: one model on a group of devices, and its numeric formats.

A replica spans ``tp · pp`` devices: tensor parallel inside a fast-link domain, pipeline stages in
sequence. Expert parallelism ``ep`` divides the tensor-parallel group's experts (``ep ≤ tp``,
``tp % ep == 0``); it changes communication (all-to-all instead of all-reduce in MoE layers), not
the bytes each device holds.

Data-parallel attention (``dp_attention = D > 1``, MoE models; SGLang's ``--enable-dp-attention``,
vLLM's data-parallel ranks with ``--enable-expert-parallel``) runs the attention, dense layers, shared
experts and LM head of a stage's ``tp`` devices as ``D`` groups of ``a = tp/D`` devices, each on its
own sequences, and splits the routed experts over all ``tp`` devices (``ep = tp``, all-to-all dispatch
and combine). A group keeps only its own sequences' KV cache, so a model whose KV heads do not split
``tp`` ways (MLA, few KV heads) stores up to ``D`` times more sequences; each device holds the attention
weights ``D/tp``-split instead of ``1/tp``. The group of ``tp`` devices may span whole instances over
their scale-out network (wide expert parallelism).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT, FP4_FORMATS, KV_DTYPES, WEIGHT_DTYPES
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.model import AnyModel, DecoderModel, EncoderModel, GenericModel
from aicap.sizing.core.speculative import Speculative

#: Most devices one estimate may span (``--devices``, and each of ``--tp`` and ``--pp``), over all its
#: replicas: 65,536, past the largest serving deployment (and most training clusters) there is. A larger
#: count is a unit slip, and it would only multiply the replica count; refusing it keeps the layout
#: search bounded.
MAX_DEVICES = 65_536


#: Device families that run FP4 weights without FP4 tensor cores, weight-only (de-quantised to 16 bit
#: by the Marlin kernels; vLLM: "Weight-only FP4 compression will be used leveraging the Marlin kernel",
#: Marlin needing Ampere or later, docs.vllm.ai/en/v0.11.2/features/quantization/).
FP4_WEIGHT_ONLY_FAMILIES = frozenset({"nvidia-ampere", "nvidia-ada", "nvidia-hopper"})


def runs_format(device: DeviceSpec, weights_dtype: str) -> bool:
    """Whether ``device`` has a kernel path for weights stored in ``weights_dtype``.

    fp8 needs fp8 tensor cores. MXFP4 (the OCP microscaling format) needs FP4 tensor cores (Blackwell,
    MI355X); NVFP4 (FP8 scales per 16 values) is NVIDIA's and needs Blackwell's. Either runs weight-only on
    a family of :data:`FP4_WEIGHT_ONLY_FAMILIES`. Other formats run everywhere (16-bit fallbacks).
    """
    if weights_dtype == "fp8":
        return "fp8" in device.peak_tflops
    if weights_dtype in FP4_FORMATS:
        native = "fp4" in device.peak_tflops and (weights_dtype == "mxfp4" or device.vendor == "nvidia")
        return native or device.family in FP4_WEIGHT_ONLY_FAMILIES
    return True


@dataclass(frozen=True)
class Deployment:
    """Everything the performance model needs about one replica, except batch and lengths.

    Attributes
    ----------
    model, device, efficiency, runtime
        Specs from the catalogue.
    tp, pp, ep
        Tensor-, pipeline- and expert-parallel degrees (devices per replica = tp · pp).
    weights_dtype, kv_dtype
        Storage formats of the weights and of the KV cache.
    scale_out_bps
        Achieved bytes/s per device over the instances' scale-out network: pipeline hand-offs between
        fast-link domains (a replica of more devices than one domain holds) cross it. ``None``: unknown,
        and such hand-offs are costed on the fast link.
    speculative
        Speculative decoding (drafter, draft tokens, acceptance), or ``None``.
    dp_attention
        Attention data-parallel groups per pipeline stage (module docstring); 1: tensor-parallel attention.
    """

    model: AnyModel
    device: DeviceSpec
    efficiency: EfficiencySpec
    runtime: RuntimeSpec
    tp: int = 1
    pp: int = 1
    ep: int = 1
    weights_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    scale_out_bps: float | None = None  # achieved bytes/s per device between instances, for replicas spanning fast-link domains
    speculative: Speculative | None = None
    dp_attention: int = 1

    def __post_init__(self) -> None:
        """An engine that shares its step budget over the attention groups gives each group its share (:func:`group_runtime`)."""
        if self.dp_attention > 1 and self.runtime.shares_step_budget:
            object.__setattr__(self, "runtime", group_runtime(self.runtime, self.dp_attention))

    @property
    def attention_tp(self) -> int:
        """Devices of one attention group, ``a = tp / dp_attention`` (``tp`` without data-parallel attention)."""
        return self.tp // self.dp_attention

    @property
    def max_running(self) -> int:
        """Most requests a replica runs at once: the engine's limit per scheduler, one scheduler per attention group."""
        return self.runtime.max_batch * self.dp_attention

    @property
    def draft(self) -> Deployment | None:
        """The drafter of speculative decoding as a deployment on the same devices and formats (``None``: no network drafts)."""
        spec = self.speculative
        if spec is None or spec.drafter is None:
            return None
        return dataclasses.replace(self, model=spec.drafter, speculative=None)

    @property
    def verify_tokens(self) -> int:
        """Query tokens a decoding sequence puts through the model per step (``k + 1`` with speculative decoding, else 1)."""
        return 1 if self.speculative is None else self.speculative.verify_tokens

    @property
    def tokens_per_step(self) -> float:
        """Expected output tokens a decoding sequence emits per step (``E``; 1 without speculative decoding)."""
        return 1.0 if self.speculative is None else self.speculative.tokens_per_step

    @property
    def transformer(self) -> DecoderModel | EncoderModel:
        """The model narrowed to a transformer (decoder or encoder); generic models have no layer shapes."""
        if isinstance(self.model, GenericModel):
            raise InputError(f"model '{self.model.id}' is a generic model: it has no transformer layers to cost")
        return self.model

    @property
    def decoder(self) -> DecoderModel | None:
        """The model narrowed to a decoder, or ``None`` (encoders and generic models keep no KV cache)."""
        return self.model if isinstance(self.model, DecoderModel) else None

    @property
    def devices(self) -> int:
        """Devices in one replica: ``tp · pp``."""
        return self.tp * self.pp

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV-cache element."""
        return BYTES_PER_ELEMENT[self.kv_dtype]

    def check(self) -> None:
        """Raise :class:`InputError` when the layout cannot run the model at all."""
        if self.weights_dtype not in WEIGHT_DTYPES:
            raise InputError(f"--weights-dtype '{self.weights_dtype}': valid choices: {', '.join(WEIGHT_DTYPES)}")
        if self.kv_dtype not in KV_DTYPES:
            raise InputError(f"--kv-dtype '{self.kv_dtype}': valid choices: {', '.join(KV_DTYPES)}")
        if self.weights_dtype == "fp8" and not runs_format(self.device, "fp8"):
            raise InputError(f"--weights-dtype fp8: {self.device.id} has no fp8 tensor cores (fp8 runs on Ada, Hopper, Blackwell, TPU v5p, "
                             "MI300 and later, Gaudi 2/3); for 8-bit weights de-quantised to 16 bit, as vLLM's FP8 Marlin runs them "
                             "on Ampere, use --weights-dtype int8")  # fmt: skip
        if self.weights_dtype in FP4_FORMATS and not runs_format(self.device, self.weights_dtype):
            raise InputError(f"--weights-dtype {self.weights_dtype}: {self.device.id} has no kernels for it; MXFP4 runs on Blackwell "
                             "and MI355X, NVFP4 on Blackwell, and both weight-only on NVIDIA Ampere, Ada and Hopper")  # fmt: skip
        for name, value in (("tp", self.tp), ("pp", self.pp), ("ep", self.ep), ("dp-attention", self.dp_attention)):
            if value < 1:
                raise InputError(f"--{name} {value}: must be a positive integer")
        if self.dp_attention > 1:
            self._check_dp_attention()
        if self.runtime.eager:
            self._check_eager()
        heads = getattr(self.model, "num_heads", None)
        if heads is not None and heads % self.attention_tp:
            what = "tensor parallelism" if self.dp_attention == 1 else f"each attention group's {self.attention_tp} devices"
            raise InputError(
                f"--tp {self.tp}: {self.model.id} has {heads} attention heads, which {what} must divide; "
                f"valid: {', '.join(str(t * self.dp_attention) for t in valid_tp(heads, 64))}"
            )
        dom = self.device.interconnect.domain_size
        if self.tp > dom and (self.tp % dom or self.scale_out_bps is None):
            why = (f"a group beyond it must fill whole domains (a multiple of {dom})" if self.tp % dom else
                   "no catalogued instance of it has a scale-out network for a group that spans instances")  # fmt: skip
            raise InputError(f"--tp {self.tp}: {self.device.id} links {dom} device(s) per fast-link domain and {why}; "
                             f"use --tp {dom} or less, with --pp for more devices")  # fmt: skip
        layers = getattr(self.model, "num_layers", None)
        if layers is not None and self.pp > layers:
            raise InputError(f"--pp {self.pp}: {self.model.id} has only {layers} layers")
        if self.ep > 1 and getattr(self.model, "moe", None) is None:
            raise InputError(f"--ep {self.ep}: expert parallelism needs a mixture-of-experts model; {self.model.id} has no experts")
        if self.ep > 1 and self.tp % self.ep and self.dp_attention == 1:
            raise InputError(f"--ep {self.ep}: the expert-parallel group is carved from the tensor-parallel one, so it must divide "
                             f"--tp {self.tp} (valid: {', '.join(str(e) for e in range(1, self.tp + 1) if self.tp % e == 0)})")  # fmt: skip

    def _check_eager(self) -> None:
        """An engine without CUDA graphs (``runtime.eager``): a GPU, a transformer's layers to count, no drafter."""
        if self.device.kind != "gpu":
            raise InputError(f"--eager: {self.device.id} is {_article(self.device.kind)}; running without CUDA graphs is a GPU engine's "
                             "setting (its launch costs are vLLM's on GPUs): drop --eager")  # fmt: skip
        if self.model.kind == "generic":
            raise InputError(f"--eager: {self.model.id} is a generic model, with no layers whose kernel launches could be counted")
        if self.speculative is not None:
            raise InputError("--eager with --speculative: the drafter's kernel launches are not modelled; drop one of them")

    def _check_dp_attention(self) -> None:
        """The rules of data-parallel attention (module docstring): a MoE model, whole groups, experts over the stage, no pipeline."""
        d = self.dp_attention
        if getattr(self.model, "moe", None) is None:
            raise InputError(f"--dp-attention {d}: data-parallel attention pays with experts split over the devices; "
                             f"{self.model.id} has no experts (use more replicas)")  # fmt: skip
        if self.tp % d:
            raise InputError(f"--dp-attention {d}: attention groups split --tp {self.tp} evenly; valid: "
                             f"{', '.join(str(k) for k in range(2, self.tp + 1) if self.tp % k == 0)}")  # fmt: skip
        if self.ep != self.tp:
            raise InputError(f"--ep {self.ep}: with --dp-attention the routed experts split over all --tp {self.tp} devices; "
                             f"give --ep {self.tp} or leave it out")  # fmt: skip
        if self.speculative is not None:
            raise InputError(f"--speculative with --dp-attention {d}: a drafter inside attention groups is not modelled; drop one of them")
        if self.pp > 1:
            raise InputError(f"--pp {self.pp}: data-parallel attention is costed for one pipeline stage; use --pp 1 "
                             "(a wider --tp spans instances)")  # fmt: skip
        if self.attention_tp > self.device.interconnect.domain_size:
            raise InputError(f"--dp-attention {d}: an attention group of {self.attention_tp} devices exceeds {self.device.id}'s "
                             f"fast-link domain of {self.device.interconnect.domain_size}; use --dp-attention "
                             f"{self.tp // self.device.interconnect.domain_size} or more")  # fmt: skip


def _article(kind: str) -> str:
    """``"a gpu"``, ``"an accelerator"``."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def group_runtime(runtime: RuntimeSpec, groups: int) -> RuntimeSpec:
    """The runtime of one of ``groups`` attention groups: an engine that shares its step budget gives each ``⌊C/D⌋`` tokens.

    SGLang divides ``--chunked-prefill-size`` by the data-parallel size under data-parallel attention
    (server_args.py ``_handle_data_parallelism``); vLLM's data-parallel engines each keep their own. The
    result no longer shares (applying it twice divides once).
    """
    if groups <= 1 or not runtime.shares_step_budget:
        return runtime
    return runtime.model_copy(update={"max_prefill_tokens": max(runtime.max_prefill_tokens // groups, 1), "shares_step_budget": False})


def valid_tp(num_heads: int, limit: int) -> list[int]:
    """Tensor-parallel degrees (powers of two and divisors of the head count) up to ``limit``."""
    return [t for t in range(1, limit + 1) if num_heads % t == 0 and (t & (t - 1)) == 0]
