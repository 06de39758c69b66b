"""A training job's layout and recipe: parallelism, sharding, recomputation, precision and method.

One :class:`TrainSetup` describes how a job runs on ``devices = tp · pp · cp · dp`` accelerators:

* **tp** tensor parallel (Megatron column/row splits), with **sequence parallel** on by default
  when ``tp > 1`` (norms and dropouts split along the sequence, Korthikanti et al. 2022);
* **pp** pipeline stages running 1F1B, ``virtual_pipeline`` model chunks per stage (interleaved);
* **cp** context parallel (ring attention over the sequence);
* **dp** data-parallel replicas; **ep** expert parallel, carved out of the ``dp · cp`` ranks;
* **zero** 0-3 (ZeRO stages: optimizer states, then gradients, then weights sharded over the
  ``dp · cp`` ranks) or **fsdp** ``full`` (= ZeRO-3) / ``hybrid`` (ZeRO-3 inside groups of
  ``hybrid_shard_size`` ranks, replicated across groups);
* **recompute** ``none`` / ``selective`` (recompute the attention core and element-wise ops, keep
  matmul outputs) / ``full`` (keep only each layer's input);
* **master_weights**: an fp32 master copy of the trained weights (mixed precision); ``False`` for
  pure 16-bit training (torchtune's single-device recipes);
* **flash_attention**: fused attention that never stores the score matrix (every current stack);
  ``False`` for pre-2022 runs that materialise ``s × s`` scores per head;
* **offload** of optimizer states (and master weights), or of everything, to host memory;
* **comm_sm_share**: the share of the device's compute units (SMs) given to communication kernels that run
  beside compute for the whole step (DeepSeek-V3 kept 20 of the H800's 132 SMs for its all-to-all and
  pipeline traffic); the matmuls run on the rest;
* **mtp_depth**: multi-token-prediction modules trained with the model (DeepSeek-V3: 1), each a transformer
  block of the model's last kind, a ``2h × h`` projection and one more pass through the shared output head;
* **method** ``full`` fine-tuning/pre-training, ``lora`` (frozen 16-bit base, rank-``lora_rank``
  adapters on ``lora_targets``) or ``qlora`` (4-bit NF4 base).

The setup is a value: validation refuses layouts that cannot run (a degree that does not divide
its dimension is checked where the model is known, in :func:`check_against_model`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aicap.sizing.core.documents import PosInt
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import DecoderModel

MAX_SEQ_LEN = 16 * 1024 * 1024  # tokens per training sequence (TrainSetup.seq_len)

Method = Literal["full", "lora", "qlora"]
Precision = Literal["bf16", "fp16", "fp8"]
Optimizer = Literal["adamw", "adam8bit", "sgd"]
Recompute = Literal["none", "selective", "full"]
Fsdp = Literal["none", "full", "hybrid"]
Offload = Literal["none", "optimizer", "all"]
LoraTargets = Literal["qv", "attention", "all"]

METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
PRECISIONS: tuple[Precision, ...] = ("bf16", "fp16", "fp8")
OPTIMIZERS: tuple[Optimizer, ...] = ("adamw", "adam8bit", "sgd")
RECOMPUTES: tuple[Recompute, ...] = ("none", "selective", "full")
#: Offload settings by their grid code (``Grid.offload``: 0, 1, 2).
OFFLOADS: tuple[Offload, ...] = ("none", "optimizer", "all")


class TrainSetup(BaseModel):
    """Parallel layout and recipe of one training job (all degrees are device counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tp: PosInt = 1
    pp: PosInt = 1
    dp: PosInt = 1
    cp: PosInt = 1
    ep: PosInt = 1
    virtual_pipeline: PosInt = 1
    sequence_parallel: bool | None = None
    zero: Literal[0, 1, 2, 3] = 1
    fsdp: Fsdp = "none"
    hybrid_shard_size: PosInt = 8
    recompute: Recompute = "selective"
    flash_attention: bool = True
    micro_batch: PosInt = 1
    # At most 16Mi tokens: beyond any context a published model trains or extends to (Llama 4 Scout's 10M); a longer
    # one is a unit slip, and its activations (hundreds of TiB) say nothing a user can act on.
    seq_len: Annotated[PosInt, Field(le=MAX_SEQ_LEN)] = 4096
    global_batch_tokens: PosInt | None = None
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"
    master_weights: bool = True
    offload: Offload = "none"
    optimizer_in_backward: bool = False
    method: Method = "full"
    lora_rank: PosInt = 16
    lora_targets: LoraTargets = "attention"
    ep_overlap: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of the expert-parallel all-to-all hidden behind compute: 0 "
        "as Megatron's default schedule runs it, 1 under a schedule that overlaps it whole (DeepSeek-V3's DualPipe)",
    )
    comm_sm_share: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the device's compute units (SMs) reserved for communication kernels running beside compute: "
        "0 when collectives run between compute kernels (Megatron's default), 20/132 = 0.152 for DeepSeek-V3's DualPipe on H800",
    )
    mtp_depth: int = Field(
        0,
        ge=0,
        le=8,
        description="multi-token-prediction modules trained with the model (DeepSeek-V3 trains 1): each adds one transformer "
        "block, a 2h x h projection and a pass through the shared output head",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainSetup:
        if self.ep > 1 and (self.dp * self.cp) % self.ep:
            raise ValueError(f"ep ({self.ep}) must divide dp × cp ({self.dp * self.cp}): experts are spread over data-parallel ranks")
        if self.virtual_pipeline > 1 and self.pp == 1:
            raise ValueError("virtual_pipeline > 1 needs pp > 1 (interleaved stages)")
        if self.mtp_depth and self.method != "full":
            raise ValueError(f"mtp_depth {self.mtp_depth} with method {self.method}: multi-token-prediction modules are trained in full "
                             "with the model, which LoRA's frozen base does not model; use method full or mtp_depth 0")  # fmt: skip
        if self.global_batch_tokens is not None and self.global_batch_tokens < self.dp * self.micro_batch * self.seq_len:
            raise ValueError(
                f"global_batch_tokens ({self.global_batch_tokens}) is smaller than one micro-batch on every "
                f"data-parallel replica (dp {self.dp} × micro_batch {self.micro_batch} × seq_len {self.seq_len})"
            )
        return self

    @property
    def devices(self) -> int:
        """Devices the layout occupies: ``tp · pp · cp · dp``."""
        return self.tp * self.pp * self.cp * self.dp

    @property
    def sp(self) -> bool:
        """Whether sequence parallelism is on (default: whenever ``tp > 1``)."""
        return self.tp > 1 if self.sequence_parallel is None else self.sequence_parallel and self.tp > 1

    @property
    def zero_stage(self) -> int:
        """Effective ZeRO stage: FSDP (full or hybrid) shards like stage 3."""
        return 3 if self.fsdp != "none" else self.zero

    @property
    def shard_degree(self) -> int:
        """Ranks the sharded states are split over: ``dp · cp``, or the hybrid group size."""
        group = self.dp * self.cp
        return min(group, self.hybrid_shard_size) if self.fsdp == "hybrid" else group

    @property
    def batch_tokens(self) -> int:
        """Tokens per optimizer step: ``global_batch_tokens`` or one micro-batch per replica."""
        return self.global_batch_tokens or self.dp * self.micro_batch * self.seq_len

    @property
    def micro_batches(self) -> float:
        """Micro-batches each pipeline runs per step: ``m = B / (dp · b · s)`` (at least 1)."""
        return max(1.0, self.batch_tokens / (self.dp * self.micro_batch * self.seq_len))


def kv_groups(model: DecoderModel) -> int:
    """Key-value heads a tensor-parallel degree must divide: the query groups of grouped-query attention, else 0.

    Megatron-Core splits whole groups over the ranks (``megatron/core/transformer/attention.py``:
    ``divide(self.config.num_query_groups, world_size)``); with one KV head per query head (MHA) the
    attention heads' own rule covers it, and multi-head latent attention keeps one latent, not heads.
    """
    if model.mla is not None or model.kv_heads >= model.num_heads:
        return 0
    return model.kv_heads


def check_against_model(setup: TrainSetup, model: DecoderModel) -> None:
    """Refuse a layout the model cannot be split into.

    Raises
    ------
    InputError
        When ``tp`` does not divide the attention heads or the key-value heads (:func:`kv_groups`), ``pp`` exceeds the layers, ``ep`` does
        not divide the experts, or ``cp`` does not divide the sequence.
    """
    if model.num_heads % setup.tp:
        raise InputError(f"tp {setup.tp} does not divide {model.id}'s {model.num_heads} attention heads; "
                         f"valid tp: {', '.join(str(t) for t in _divisors(model.num_heads) if t <= 64)}")  # fmt: skip
    groups = kv_groups(model)
    if groups and groups % setup.tp:
        raise InputError(f"tp {setup.tp} does not divide {model.id}'s {groups} key-value heads: training frameworks give each "
                         "tensor-parallel rank whole query groups (Megatron-Core: num_query_groups / tp); "
                         f"valid tp: {', '.join(str(t) for t in _divisors(groups) if t <= 64)}")  # fmt: skip
    if setup.pp > model.num_layers:
        raise InputError(f"pp {setup.pp} exceeds {model.id}'s {model.num_layers} layers")
    if setup.pp * setup.virtual_pipeline > model.num_layers:
        raise InputError(f"pp × virtual_pipeline ({setup.pp * setup.virtual_pipeline}) exceeds {model.id}'s {model.num_layers} layers")
    if setup.ep > 1 and model.moe is None:
        raise InputError(f"ep {setup.ep}: expert parallelism shards a mixture-of-experts model's experts, and {model.id} is dense; "
                         "drop ep (or give 1)")  # fmt: skip
    if setup.ep > 1 and model.moe is not None and model.moe.num_experts % setup.ep:
        experts = model.moe.num_experts
        raise InputError(f"ep {setup.ep} does not divide {model.id}'s {experts} experts; "
                         f"valid ep: {', '.join(str(e) for e in _divisors(experts) if e <= 256)}")  # fmt: skip
    if setup.seq_len % setup.cp:
        raise InputError(f"cp {setup.cp} does not divide seq_len {setup.seq_len}")
    check_lora_rank(setup.method, setup.lora_rank, model)


def check_lora_rank(method: str, rank: int, model: DecoderModel) -> None:
    """Refuse a LoRA rank above the model's hidden size.

    An adapter ``B·A`` of rank ``r`` factors a ``d_in × d_out`` matrix only up to ``min(d_in, d_out)``; more trains
    (and stores) parameters that add nothing. The hidden size bounds every adapted matrix's rank from above (the
    narrower ones, GQA's key and value projections, cap lower: such a rank is accepted and counted as given).
    """
    if method != "full" and rank > model.hidden_size:
        raise InputError(f"lora_rank {rank:,}: above {model.id}'s hidden size {model.hidden_size:,}, the most an adapter of its "
                         "projections can use (ranks of 8 to 256 are usual)")  # fmt: skip


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
