"""Published defaults for speculative decoding, one per drafting method (catalogue section ``speculative``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SpeculativeDefault(BaseModel):
    """The draft length and acceptance rate aicap assumes for a method when the user gives none.

    ``acceptance`` is the per-token acceptance probability ``α`` (so ``E = (1 − α^{k+1})/(1 − α)``
    tokens per step); where the source reports a mean accepted length instead, it is kept in
    ``published_tokens_per_step`` and ``α`` is the root of ``E(α, k) = `` that length. ``source`` is the
    publication it was read from and ``conditions`` what it was measured on. A method without a
    sourced figure has no entry, and the user must give ``acceptance``.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["draft", "mtp", "eagle", "ngram"]
    draft_tokens: int = Field(ge=1, le=16)
    acceptance: float = Field(ge=0.0, le=1.0)
    published_tokens_per_step: float | None = Field(
        None, ge=1.0, description="mean accepted length the source reports (tokens per step); acceptance is solved from it"
    )
    conditions: str = Field(min_length=1)
    source: str = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SpeculativeDefault:
        """A published mean accepted length must be what ``acceptance`` gives at ``draft_tokens`` (within 1%)."""
        e = self.published_tokens_per_step
        if e is not None:
            a, k = self.acceptance, self.draft_tokens
            got = float(k + 1) if a >= 1.0 else (1.0 - a ** (k + 1)) / (1.0 - a)
            if abs(got - e) > 0.01 * e:
                raise ValueError(f"acceptance {a} at {k} draft tokens gives {got:.3f} tokens per step, not the published {e}")
        return self


class SpeculativeConfig(BaseModel):
    """Speculative decoding as a workload (fleet file) or a command line asks for it.

    ``draft_tokens`` and ``acceptance`` default to the catalogue's published figures for ``method``;
    ``draft_model`` (a catalogue id or model file) is required for ``method: draft``.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["draft", "mtp", "eagle", "ngram"]
    draft_model: str | None = Field(None, description="drafting model (method: draft): catalogue id, config.json or model folder")
    draft_tokens: int | None = Field(None, ge=1, le=16, description="tokens proposed per step, k (default: the method's published figure)")
    acceptance: float | None = Field(
        None, ge=0.0, le=1.0, description="per-token acceptance probability (default: the method's published figure)"
    )
