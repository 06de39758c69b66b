"""Many layouts at once: the columns the vectorised memory and time models compute on.

A :class:`Grid` holds one numpy column per layout field (``tp``, ``pp``, ... as float64 so the
formulas broadcast without casts) and one :class:`Recipe` shared by every row: the method,
precision and optimizer do not vary inside a search, the parallel layout does. One layout is a
grid of one row, so a single estimate and a catalogue-wide search run the same equations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aicap.sizing.train.setup import LoraTargets, Method, Optimizer, Precision, TrainSetup

Col = npt.NDArray[np.float64]
"""One value per layout (float64; booleans as 0/1, recompute as 0 none / 1 selective / 2 full)."""

RECOMPUTE_CODE = {"none": 0.0, "selective": 1.0, "full": 2.0}
OFFLOAD_CODE = {"none": 0.0, "optimizer": 1.0, "all": 2.0}


def whole_rounds(batch: npt.ArrayLike, per_round: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A global batch as whole rounds of one micro-batch on every data-parallel replica (gradient accumulation).

    ``max(round(B / r), 1) · r`` tokens for an asked batch ``B`` and ``r = dp · b · s`` tokens a round: frameworks
    step whole micro-batches, so the batch costed is the nearest whole number of rounds, at least one.
    """
    r = np.asarray(per_round, dtype=float)
    return np.asarray(np.maximum(np.round(np.asarray(batch, dtype=float) / r), 1.0) * r, dtype=float)


@dataclass(frozen=True)
class Recipe:
    """What every layout of a grid shares: method, precision, optimizer, adapters and the schedule's overlap settings."""

    method: Method = "full"
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"
    lora_rank: int = 16
    lora_targets: LoraTargets = "attention"
    master_weights: bool = True
    ep_overlap: float = 0.0
    comm_sm_share: float = 0.0
    mtp_depth: int = 0

    @classmethod
    def of(cls, setup: TrainSetup) -> Recipe:
        """The recipe part of a setup."""
        return cls(setup.method, setup.precision, setup.optimizer, setup.lora_rank, setup.lora_targets, setup.master_weights,
                   setup.ep_overlap, setup.comm_sm_share, setup.mtp_depth)  # fmt: skip


@dataclass(frozen=True)
class Grid:
    """Layout columns (see the module docstring); all columns have the same length."""

    tp: Col
    pp: Col
    dp: Col
    cp: Col
    ep: Col
    vp: Col
    sp: Col
    zero: Col
    shard: Col
    recompute: Col
    micro_batch: Col
    seq_len: Col
    batch_tokens: Col
    offload: Col
    opt_in_bwd: Col
    flash: Col
    recipe: Recipe

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    @property
    def devices(self) -> Col:
        """``tp · pp · cp · dp`` per row."""
        return self.tp * self.pp * self.cp * self.dp

    @property
    def micro_batches(self) -> Col:
        """Micro-batches per pipeline per step ``m = B / (dp · b · s)``, at least 1."""
        return np.maximum(1.0, self.batch_tokens / (self.dp * self.micro_batch * self.seq_len))

    @property
    def micro_tokens(self) -> Col:
        """Tokens of one micro-batch on one context-parallel rank: ``b · s / cp``."""
        return self.micro_batch * self.seq_len / self.cp

    @classmethod
    def of(cls, setups: Sequence[TrainSetup]) -> Grid:
        """Columns of explicit setups (they must share one recipe)."""
        if not setups:
            raise ValueError("a grid needs at least one setup")
        recipe = Recipe.of(setups[0])
        if any(Recipe.of(s) != recipe for s in setups):
            raise ValueError("setups of one grid must share method, precision, optimizer and adapters")

        def col(values: Sequence[float]) -> Col:
            return np.asarray(values, dtype=np.float64)

        return cls(
            tp=col([s.tp for s in setups]),
            pp=col([s.pp for s in setups]),
            dp=col([s.dp for s in setups]),
            cp=col([s.cp for s in setups]),
            ep=col([s.ep for s in setups]),
            vp=col([s.virtual_pipeline for s in setups]),
            sp=col([float(s.sp) for s in setups]),
            zero=col([s.zero_stage for s in setups]),
            shard=col([s.shard_degree for s in setups]),
            recompute=col([RECOMPUTE_CODE[s.recompute] for s in setups]),
            micro_batch=col([s.micro_batch for s in setups]),
            seq_len=col([s.seq_len for s in setups]),
            batch_tokens=col([s.batch_tokens for s in setups]),
            offload=col([OFFLOAD_CODE[s.offload] for s in setups]),
            opt_in_bwd=col([float(s.optimizer_in_backward) for s in setups]),
            flash=col([float(s.flash_attention) for s in setups]),
            recipe=recipe,
        )

    def take(self, index: npt.NDArray[np.intp]) -> Grid:
        """The rows at ``index`` (same recipe)."""
        cols = {name: getattr(self, name)[index] for name in _COLUMNS}
        return Grid(**cols, recipe=self.recipe)


_COLUMNS = ("tp", "pp", "dp", "cp", "ep", "vp", "sp", "zero", "shard", "recompute", "micro_batch", "seq_len",
            "batch_tokens", "offload", "opt_in_bwd", "flash")  # fmt: skip
