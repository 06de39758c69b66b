"""The one error hierarchy of aicap.

Library code raises these; the CLI turns each into one line on stderr and the exit code it carries,
in exactly one place (:func:`aicap.cli.state.guarded`). Nothing else in aicap decides an exit code.
"""

from __future__ import annotations

from enum import IntEnum

#: Longest excerpt of a user's value that an error message quotes (characters, ellipsis included).
EXCERPT_CHARS = 60


class ExitCode(IntEnum):
    """Documented exit statuses of the ``aicap`` command."""

    OK = 0
    POLICY_BREACH = 1
    INPUT_ERROR = 2
    INFEASIBLE = 3
    INTERNAL_ERROR = 4


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """Quote a user's value for an error message: its ``repr``, cut to ``limit`` characters.

    The ``repr`` escapes newlines and control characters, so the message stays one line; a long
    value (a whole file read by mistake, say) is cut with an ellipsis, so an error never echoes it
    back.

    Parameters
    ----------
    value
        The offending value as the user gave it.
    limit
        Maximum length of the result, ellipsis included.

    Returns
    -------
    str
        ``repr(value)``, or its first ``limit - 1`` characters followed by ``…``.
    """
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still worth naming by its type
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AicapError(Exception):
    """Base of every error aicap reports to a person.

    The message is a single line that names the offending value, where it came from and, where
    there is a closed set, the valid choices.
    """

    exit_code: ExitCode = ExitCode.INPUT_ERROR


class InputError(AicapError):
    """A user input (option, file, document field) is malformed or out of range."""


class UnknownIdError(InputError):
    """An id (model, device, instance) is not in the loaded catalogues."""

    def __init__(self, what: str, value: str, choices: list[str]) -> None:
        hint = did_you_mean(value, choices)
        listing = {"model": "aicap models list", "device": "aicap hardware list", "hardware": "aicap hardware list",
                   "instance": "aicap instances list"}.get(what)  # fmt: skip
        more = len(choices) - 40
        shown = ", ".join(choices[:40]) + (f", … ({more} more{f': {listing}' if listing else ''})" if more > 0 else "")
        super().__init__(f"unknown {what} {excerpt(value)}: {hint}valid {what} ids: {shown}")
        self.value = value
        self.choices = choices

    def __reduce__(self) -> tuple[object, tuple[str, str, list[str]]]:
        """Pickle as the message it has (a worker process's error reaches the caller whole: sizing.sim.fanout)."""
        return _unknown_id, (str(self), self.value, self.choices)


def _unknown_id(message: str, value: str, choices: list[str]) -> UnknownIdError:
    """An :class:`UnknownIdError` with its message as made, without making it again (its unpickling)."""
    err = UnknownIdError.__new__(UnknownIdError)
    InputError.__init__(err, message)
    err.value, err.choices = value, choices
    return err


class InfeasibleError(AicapError):
    """No deployment satisfies the constraints; the message says which constraint binds."""

    exit_code = ExitCode.INFEASIBLE


class PolicyBreachError(AicapError):
    """A policy or budget limit marked ``fail`` was breached."""

    exit_code = ExitCode.POLICY_BREACH


def close_matches(value: str, choices: list[str]) -> list[str]:
    """Up to three ``choices`` near ``value``: equal ignoring case, else begun by it, else ``difflib``'s nearest (ratio ≥ 0.6).

    The first that finds any wins; those ``value`` begins come shortest first. Ids are lower case, so ``H100-SXM`` or ``SGLang``
    finds ``h100-sxm`` or ``sglang`` alone; a family's short name finds its members (``a100``: ``a100-40gb-sxm``,
    ``a100-80gb-sxm``, ``a100-80gb-pcie``, where the nearest by letters was ``a10g``).
    """
    import difflib

    if not isinstance(value, str) or len(value) > 200:
        return []
    folded = {c.casefold(): c for c in choices}
    v = value.casefold()
    if v in folded and value not in choices:
        return [folded[v]]
    if len(v) >= 2 and (begun := sorted((c for f, c in folded.items() if f.startswith(v) and f != v), key=lambda c: (len(c), c))):
        return begun[:3]
    return [folded[n] for n in difflib.get_close_matches(v, list(folded), n=3, cutoff=0.6)]


def did_you_mean(value: str, choices: list[str]) -> str:
    """``"did you mean a, b? "`` for :func:`close_matches` of ``value``, or ``""`` when none is near."""
    close = close_matches(value, choices)
    return f"did you mean {', '.join(close)}? " if close else ""
