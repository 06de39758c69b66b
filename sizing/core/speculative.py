"""Speculative decoding: a cheap drafter proposes tokens, the target model verifies them in one pass.

Each decode step of a sequence runs the drafter ``k`` times (one proposed token each) and then the
target once over ``q = k + 1`` query tokens (the last accepted token and the ``k`` proposals) at the
sequence's context. With each proposal accepted with probability ``α``, independently, until the first
rejection, the step emits the accepted prefix plus the target's own next token, on average

    E = Σ_{j=0}^{k} α^j = (1 − α^{k+1}) / (1 − α)        (Leviathan, Kalman and Matias 2023, eq. 1)

tokens. So a request of ``O`` output tokens needs ``(O − 1)/E`` decode steps after its first token,
and its time per output token is the step time over ``E``.

Drafters (``method``):

* ``draft``: a separate, smaller model of the same vocabulary (its own weights and KV cache);
* ``mtp``: multi-token-prediction heads trained with the model (DeepSeek-V3): one transformer layer
  that shares the target's embedding and LM head;
* ``eagle``: an EAGLE-style head, costed like ``mtp``: one target-shaped layer on the target's
  embedding and LM head;
* ``ngram``: prompt lookup, no network (drafting costs nothing on the accelerator).

The verification pass counts ``q`` tokens per decoding sequence in the engine's token budget, as vLLM
and SGLang schedule it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.model import AnyModel, DecoderModel
from aicap.sizing.core.specs.speculative import SpeculativeConfig

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike

Method = Literal["draft", "mtp", "eagle", "ngram"]
METHODS: tuple[Method, ...] = ("draft", "mtp", "eagle", "ngram")
#: Most draft tokens per step aicap accepts (engines use 1–8; a longer chain only adds rejected work).
MAX_DRAFT_TOKENS = 16


def tokens_per_step(acceptance: float, draft_tokens: int) -> float:
    """Expected tokens a sequence emits per verification step: ``E = (1 − α^{k+1})/(1 − α)`` (``k + 1`` at ``α = 1``)."""
    a, k = float(acceptance), int(draft_tokens)
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


@dataclass(frozen=True)
class Speculative:
    """A resolved speculative-decoding configuration.

    Attributes
    ----------
    method : {"draft", "mtp", "eagle", "ngram"}
        The drafter (module docstring).
    draft_tokens : int
        Tokens proposed per step, ``k`` (≥ 1).
    acceptance : float
        Probability that a proposed token is accepted, ``α`` in [0, 1].
    drafter : DecoderModel or None
        The network that drafts: the draft model, one target-shaped layer (``mtp``, ``eagle``), or
        ``None`` (``ngram``).
    shares_embeddings : bool
        Whether the drafter uses the target's embedding and LM head (no weights of its own for them).
    draft_model : str or None
        Catalogue id or path of the draft model (``method == "draft"``).
    source : str
        Where the acceptance rate comes from (the user, or a published figure).
    extrapolated : str or None
        Why the speculation lies beyond its published evidence (``None``: within it): more draft tokens
        than the published figure was measured at, or an MTP chain longer than the modules the model ships.
    """

    method: Method
    draft_tokens: int
    acceptance: float
    drafter: DecoderModel | None
    shares_embeddings: bool
    draft_model: str | None
    source: str
    extrapolated: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.draft_tokens <= MAX_DRAFT_TOKENS:
            raise ValueError(f"draft tokens must be in 1..{MAX_DRAFT_TOKENS}, got {self.draft_tokens}")
        if not 0.0 <= self.acceptance <= 1.0:
            raise ValueError(f"acceptance must be in [0, 1], got {self.acceptance}")

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens emitted per decode step, ``E`` (see :func:`tokens_per_step`)."""
        return tokens_per_step(self.acceptance, self.draft_tokens)

    @property
    def verify_tokens(self) -> int:
        """Query tokens each decoding sequence puts through the target per step, ``q = k + 1``."""
        return self.draft_tokens + 1

    def label(self) -> str:
        """Short human-readable form, e.g. ``mtp k=1 α=0.85 (1.85 tokens/step)``."""
        what = f"draft {self.draft_model}" if self.method == "draft" else self.method
        return f"{what} k={self.draft_tokens} α={self.acceptance:g} ({self.tokens_per_step:.2f} tokens/step)"


def one_layer_drafter(target: DecoderModel) -> DecoderModel:
    """A drafter of one layer shaped like the target's last (MoE where the target is MoE), for ``mtp`` and ``eagle``."""
    update: dict[str, object] = {"id": f"{target.id}-draft-layer", "num_layers": 1, "published_params": None,
                                 "published_active_params": None, "checkpoint_bytes": None, "global_every": None}  # fmt: skip
    if target.moe is not None:
        update["moe"] = target.moe.model_copy(update={"dense_layers": 0})
    return target.model_copy(update=update)


def _size(m: DecoderModel) -> float:
    """Parameters a token reads (:func:`~aicap.sizing.perf.params.inventory`'s active count)."""
    from aicap.sizing.perf.params import inventory

    return inventory(m).active


def resolve(target: AnyModel, method: Method, draft_tokens: int, acceptance: float, source: str,
            draft: AnyModel | None = None, draft_ref: str | None = None) -> Speculative:  # fmt: skip
    """A :class:`Speculative` for ``target``; raises ``ValueError`` with a reason a person can act on."""
    if not isinstance(target, DecoderModel):
        raise ValueError(f"speculative decoding needs a decoder; '{target.id}' is a {target.kind} model")
    drafter: DecoderModel | None
    if method == "draft":
        if draft is None:
            raise ValueError("method 'draft' needs a draft model (e.g. a smaller model of the same family)")
        if not isinstance(draft, DecoderModel):
            raise ValueError(f"draft model '{draft.id}' is a {draft.kind} model; a draft model must be a decoder")
        if draft.vocab_size != target.vocab_size:
            raise ValueError(f"draft model '{draft.id}' has a vocabulary of {draft.vocab_size:,} tokens and '{target.id}' "
                             f"{target.vocab_size:,}; speculative decoding needs the same tokenizer")  # fmt: skip
        drafter = draft
    elif method in ("mtp", "eagle"):
        if method == "mtp" and target.mtp_layers == 0:
            raise ValueError(f"'{target.id}' ships no multi-token-prediction module (mtp_layers 0; num_nextn_predict_layers in a "
                             "config.json): use eagle (with a trained EAGLE head), draft (a smaller model) or ngram")  # fmt: skip
        drafter = one_layer_drafter(target)
    else:
        drafter = None
    return Speculative(method, draft_tokens, acceptance, drafter, method in ("mtp", "eagle"),
                       draft_ref if method == "draft" else None, source)  # fmt: skip


def speculative_for(
    cat: CatalogueLike, target: AnyModel, config: SpeculativeConfig | None, where: str = "speculative"
) -> Speculative | None:
    """Resolve a requested configuration against the catalogue's published defaults.

    Raises :class:`InputError` naming ``where`` when the method has no sourced default and no acceptance
    was given, or the draft model is unknown or incompatible.
    """
    if config is None:
        return None
    default = cat.speculative.get(config.method)
    if config.acceptance is None and default is None:
        known = ", ".join(sorted(cat.speculative)) or "none"
        raise InputError(f"{where}: method '{config.method}' has no published acceptance rate in the catalogue; give an "
                         "acceptance rate between 0 and 1 (--acceptance, or acceptance: in a fleet file). "
                         f"Methods with a sourced default: {known}")  # fmt: skip
    k = config.draft_tokens or (default.draft_tokens if default is not None else 1)
    if config.acceptance is not None:
        acceptance, source = config.acceptance, "given"
    else:
        assert default is not None
        acceptance, source = default.acceptance, f"{default.source} ({default.conditions})"
    draft = None
    if config.method == "draft":
        if config.draft_model is None:
            raise InputError(f"{where}: method 'draft' needs draft_model (e.g. llama-3.2-1b for the Llama 3.1 family)")
        draft = cat.model(config.draft_model)
    try:
        spec = resolve(target, config.method, k, acceptance, source, draft, config.draft_model)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    if isinstance(draft, DecoderModel) and isinstance(target, DecoderModel) and _size(draft) >= _size(target):
        # its passes cost as much as the target's: a 70B drafting for an 8B was planned, twelve times dearer than none
        raise InputError(f"{where}: draft model '{draft.id}' is no smaller than '{target.id}' ({_size(draft) / 1e9:,.1f}B parameters "
                         f"a token against {_size(target) / 1e9:,.1f}B): its passes would cost as much as the target's; draft with a "
                         "model a fraction of its size (e.g. llama-3.2-1b for the Llama 3.1 family)")  # fmt: skip
    why = []
    if config.acceptance is None and default is not None and k > default.draft_tokens:
        why.append(f"the published acceptance {acceptance:g} was measured at {default.draft_tokens} draft token(s); each of the "
                   f"{k} is assumed accepted at that rate")  # fmt: skip
    mtp = getattr(target, "mtp_layers", 0)
    if config.method == "mtp" and k > mtp:
        why.append(f"{target.id} ships {mtp} MTP module(s): {k} draft tokens chain them {k - mtp} more time(s) than trained")
    return replace(spec, extrapolated="; ".join(why)) if why else spec
