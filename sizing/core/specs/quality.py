"""Published quality figures of compression techniques (``hardware_db/whatif/quality.yaml``), for ``aicap whatif`` notes.

Each figure is what a named publication measured for a named model; aicap prints it beside an
alternative as that publication's figure, never as a prediction for the user's model.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Technique = Literal["fp8", "int8-w8a8", "int4-awq", "int4-gptq", "nvfp4", "mxfp4", "kv-fp8", "kv-int8", "sparse-2-4", "prune-width",
                    "distill", "speculative"]  # fmt: skip


class QualityFigure(BaseModel):
    """One published accuracy of a compressed model against its own baseline."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    technique: Technique
    model: str
    benchmark: str
    baseline: float | None = None
    value: float
    unit: str
    source: str = Field(min_length=1)
    quote: str = Field(min_length=1)
    date: str | None = None

    def short(self) -> str:
        """``published for Meta-Llama-3.1-70B-Instruct, MMLU: 82.6 vs 83.1 accuracy %`` (the benchmark's first clause)."""
        original = "original" if self.technique in ("sparse-2-4", "prune-width", "distill", "speculative") else "unquantised"
        against = f" vs {self.baseline:g} {original}" if self.baseline is not None else ""
        bench = self.benchmark.split(" (")[0]
        return f"published for {self.model}, {bench}: {self.value:g}{against} {self.unit}"


class QualityData(BaseModel):
    """The published figures; the file's speed-up, acceptance and not-found sections are kept as reference."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    quality: list[QualityFigure]

    def best(self, techniques: tuple[str, ...], model_id: str) -> QualityFigure | None:
        """The figure of one of ``techniques`` whose model name shares most tokens with ``model_id`` (first on ties).

        ``None`` when no figure's model shares a family name with it (a token with a letter that is neither a size
        nor a variant such as ``instruct``): Llama's figure says nothing of an embedding model or of Qwen.
        """
        want = _tokens(model_id)
        found = [q for q in self.quality if q.technique in techniques and _family(want & _tokens(q.model))]
        if not found:
            return None
        return max(found, key=lambda q: (len(want & _tokens(q.model)), -found.index(q)))


def _tokens(name: str) -> set[str]:
    """Lower-case name tokens (``Meta-Llama-3.1-70B-Instruct`` → meta, llama, 3.1, 70b, instruct)."""
    return {t for t in re.split(r"[-_/ ]+", name.lower()) if t}


_VARIANTS = frozenset({"instruct", "chat", "base", "it", "hf", "en", "large", "small", "v1", "v2", "v3"})


def _family(shared: set[str]) -> bool:
    """Whether shared name tokens include a family name (``llama``, ``qwen2.5``), not only a size, version or variant."""
    return any(re.search(r"[a-z]", t) and not re.fullmatch(r"\d+(\.\d+)?[bmk]", t) and t not in _VARIANTS for t in shared)
