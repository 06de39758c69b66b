"""Options shared by every command (set by the root callback) and catalogue access."""

from __future__ import annotations

import functools
import math
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException  # Typer's vendored Click: usage errors derive from it

if TYPE_CHECKING:
    from aicap.hardware_db import Catalogue
    from aicap.sizing.core.specs.model import AnyModel


P = ParamSpec("P")
R = TypeVar("R")

#: Set to ``1`` to let an unexpected exception through with its traceback (for a bug report).
DEBUG_ENV = "AICAP_DEBUG"
_BUG_LINE = "this is a bug in aicap; please report it with the command you ran"


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _flag(fn: Callable[..., Any], name: str) -> str:
    """The command-line spelling of parameter ``name`` of command ``fn`` (``--tpot-ms`` for ``tpot_ms``)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable annotations: fall back to the conventional spelling
        hints = {}
    for meta in getattr(hints.get(name), "__metadata__", ()):
        decls = [d for d in getattr(meta, "param_decls", None) or () if isinstance(d, str) and d.startswith("--")]
        if decls:
            return decls[0]
    return "--" + name.replace("_", "-")


def typed_flags(ctx: typer.Context, *names: str) -> list[str]:
    """The options among ``names`` (parameter names) the user gave (command line or environment), as flags.

    Lets a command refuse an option that does not apply, rather than ignore it: a default is not "given".
    """
    params = {p.name: p for p in ctx.command.params}
    out = []
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is None or source.name not in {"COMMANDLINE", "ENVIRONMENT"}:
            continue
        p = params.get(name)
        off = getattr(p, "secondary_opts", None) if ctx.params.get(name) is False else None  # --no-x given
        forms = off or (p.opts if p is not None else None)
        out.append(max(forms, key=len) if forms else "--" + name.replace("_", "-"))
    return out


def prompt_tokens(ctx: typer.Context, input_tokens: int, spec: AnyModel, output_tokens: int = 0) -> int:
    """``--input-tokens`` as given; left at its default where the model's context cannot hold it, what the context holds.

    The default (1,024) suits most decoders. An embedding or reranking model reads at most its context (BERT's 512),
    and a decoder whose context is short (1,024 positions) holds its ``output_tokens`` and a prompt of the rest: a
    default that a model cannot take was refused as if the user had typed it ("--input-tokens + --output-tokens =
    1,280 tokens exceeds ..."). A typed ``--input-tokens`` is kept (and refused where it is over), and so is the
    default where the output alone fills the decoder's context (the refusal then names ``--output-tokens``). A generic
    model reads one item a request: 1.
    """
    if spec.kind == "generic" and not typed_flags(ctx, "input_tokens"):  # one item a request (a typed count is refused by name)
        return 1
    limit = getattr(spec, "max_context", None)
    out = output_tokens if spec.kind == "decoder" else 0
    if typed_flags(ctx, "input_tokens") or limit is None or input_tokens + out <= limit or int(limit) - out < 1:
        return input_tokens
    fits = int(limit) - out
    why = f"its max context, {int(limit):,} tokens" + (f", less the {out:,} output tokens" if out else "")
    info(f"aicap: note: --input-tokens defaults to {fits:,} for {spec.id} ({why}; the default, {input_tokens:,}, is over it)")
    return fits


def workload_lengths(ctx: typer.Context, spec: AnyModel, input_tokens: int, output_tokens: int) -> tuple[int, int]:
    """The one workload's ``(input_tokens, output_tokens)`` of ``--model``: :func:`prompt_tokens`, or 1 and 1 for a generic model.

    A generic model's cost is per item, one item a request; ``--input-tokens`` or ``--output-tokens`` typed for one is refused
    by name (the library refuses lengths other than 1 in a fleet file, naming the fields).
    """
    from aicap.sizing.core.errors import InputError

    if spec.kind != "generic":
        return prompt_tokens(ctx, input_tokens, spec, output_tokens), output_tokens
    if typed := typed_flags(ctx, "input_tokens", "output_tokens"):
        raise InputError(f"{typed[0]} applies to a model that reads or writes tokens; {spec.id} is a generic model whose cost is per "
                         f"item (one {getattr(spec, 'item', 'item')} a request): drop {' and '.join(typed)}")  # fmt: skip
    return 1, 1


#: Options that describe the one workload of ``--model`` (a fleet file gives each workload its own).
ONE_WORKLOAD_OPTIONS = ("rate", "input_tokens", "output_tokens", "ttft_ms", "tpot_ms", "percentile", "arrival_cv", "precision",
                        "prefix_cached")  # fmt: skip


def check_workload_source(ctx: typer.Context, model: str | None, fleet_file: Path | None) -> None:
    """Refuse a fleet file together with ``--model``, and one-workload options without ``--model`` (never ignore them)."""
    from aicap.sizing.core.errors import InputError

    if model is not None and fleet_file is not None:
        raise InputError(f"give a fleet file ({fleet_file}) or --model {model}, not both")
    one = typed_flags(ctx, *(n for n in ONE_WORKLOAD_OPTIONS if n in ctx.params))
    if model is None and one:
        where = "a fleet file gives each workload its own (see `aicap schema fleet`)" if fleet_file is not None else "add --model MODEL"
        raise InputError(f"{one[0]} describes the one workload of --model; {where}")


def internal_error_line(exc: BaseException) -> str:
    """The one stderr line for an unexpected exception (a bug): its type, a short message, a plea."""
    detail = _one_line(str(exc), 160)
    return f"aicap: internal error: {type(exc).__name__}{': ' + detail if detail else ''} — {_BUG_LINE}"


def _check_finite(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Refuse NaN and infinity in any number option: they would pass every ``<= 0`` check."""
    from aicap.sizing.core.errors import InputError

    for name, value in kwargs.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{_flag(fn, name)} {value}: must be a finite number")


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that whatever goes wrong ends in one stderr line and a documented exit code.

    * An :class:`~aicap.sizing.core.errors.AicapError` prints ``aicap: error: ...`` and exits with
      its code (1 policy breach, 2 input error, 3 infeasible).
    * A number option given as NaN or infinity is an input error (exit 2).
    * Any other exception is a bug: ``aicap: internal error: TYPE: message — this is a bug ...`` and
      exit 4 (``ExitCode.INTERNAL_ERROR``), never a traceback, unless ``AICAP_DEBUG=1``, which
      re-raises it.
    * Ctrl-C prints ``aicap: interrupted`` and exits 130; a closed output pipe (``aicap ... | head``)
      exits 141 quietly, as a shell reports a process ended by SIGPIPE.

    Typer's own exits (``--help``, usage errors) pass through untouched.

    Context lines (:func:`info`, :func:`debug`: notes, warnings, "wrote ...") are held back while
    the command runs and written when it ends: all of them after a success, before the error line
    after a policy breach (exit 1) or an infeasible plan (exit 3), and none after an input error
    (exit 2), an internal error (exit 4) or an interrupt, so those print exactly one line.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from aicap.sizing.core.errors import AicapError, ExitCode

        outer, STATE.held = STATE.held, []

        def release(keep: bool) -> None:
            """Stop holding lines back; write the held ones (to the enclosing command's hold, if any) when ``keep``."""
            held, STATE.held = STATE.held or [], outer
            for line in held if keep else ():
                _say(line)

        try:
            _check_finite(fn, kwargs)
            result = fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException) as exc:
            release(isinstance(exc, typer.Exit) and exc.exit_code in {0, 1, 3})
            raise
        except AicapError as exc:
            release(exc.exit_code != ExitCode.INPUT_ERROR)
            sys.stderr.write(f"aicap: error: {_one_line(str(exc), 2000)}\n")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            release(False)
            sys.stderr.write("aicap: interrupted\n")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            release(False)
            _silence_stdout()
            raise typer.Exit(141) from None
        except Exception as exc:
            release(False)
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            sys.stderr.write(internal_error_line(exc) + "\n")
            raise typer.Exit(int(ExitCode.INTERNAL_ERROR)) from None
        except BaseException:
            release(False)
            raise
        release(True)
        return result

    wrapper.__aicap_guarded__ = True  # type: ignore[attr-defined]
    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests, embedded use)
        pass


@dataclass
class State:
    """Global flags: verbosity and catalogue overlays."""

    verbose: bool = False
    quiet: bool = False
    catalogs: list[Path] = field(default_factory=list)
    #: Context lines held back while a guarded command runs (``None`` outside one: written at once).
    held: list[str] | None = None
    #: Catalogue overrides already reported in this run (a command reads the catalogue several times).
    reported: set[str] = field(default_factory=set)


STATE = State()


def _say(message: str) -> None:
    if STATE.held is not None:
        STATE.held.append(message)
    else:
        sys.stderr.write(message + "\n")


def info(message: str) -> None:
    """Write a context line (note, warning, "wrote ...") to stderr unless ``--quiet``.

    Inside a command it is held back until the command ends, and dropped when the command ends
    with an input error, whose single error line stays alone on stderr (:func:`guarded`).
    """
    if not STATE.quiet:
        _say(message)


def debug(message: str) -> None:
    """Write a line to stderr only with ``--verbose`` (held back like :func:`info`)."""
    if STATE.verbose and not STATE.quiet:
        _say(message)


def check_tpot_target(tpot_ms: float | None, model: str, kind: str) -> None:
    """Refuse ``--tpot-ms`` on a model that emits no tokens (an encoder's, or a generic model's, target is ``--ttft-ms``)."""
    if tpot_ms is not None and kind != "decoder":
        from aicap.sizing.core.errors import InputError

        raise InputError(f"--tpot-ms {tpot_ms:g}: {model} is an {kind} model and emits no tokens, so has no TPOT "
                         "(its target is --ttft-ms, the request's latency)")  # fmt: skip


def check_plot(plot: Path | None) -> None:
    """Refuse a ``--plot`` file that is not .png or .svg, or whose folder does not exist (before any work is done)."""
    from aicap.sizing.core.errors import InputError

    if plot is None:
        return
    if plot.suffix.lower() not in {".png", ".svg"}:
        raise InputError(f"--plot {plot}: the file must end in .png or .svg")
    from aicap.cli.files import check_writable

    check_writable(plot, "--plot")


def check_engine(engine: str | None) -> None:
    """Refuse an ``--engine`` the catalogue lacks, naming the flag and the valid ids (before a fleet is built from it)."""
    from aicap.sizing.core.errors import InputError, did_you_mean, excerpt

    if engine is None:
        return
    valid = sorted([*catalogue().engines, "generic"])
    if engine not in valid:
        raise InputError(f"--engine {excerpt(engine)}: {did_you_mean(engine, valid)}valid engines: {', '.join(valid)}")


def check_hardware(values: str | None, flag: str = "--hardware") -> None:
    """Refuse a device id of a comma-separated flag that the catalogue lacks, naming the flag (not the fleet file beside it)."""
    from aicap.sizing.core.errors import InputError, did_you_mean, excerpt

    valid = sorted(catalogue().devices)
    for value in (v.strip() for v in (values or "").split(",") if v.strip()):
        if value not in valid:
            hint = did_you_mean(value, valid)
            raise InputError(f"{flag}: unknown hardware {excerpt(value)}: {hint}valid hardware ids: {', '.join(valid)}")


def catalogue() -> Catalogue:
    """Load the catalogues with ``--catalog`` and ``AICAP_CATALOG`` overlays; report overrides."""
    from aicap.hardware_db import catalogue_dirs_from_env, load_catalogue

    cat = load_catalogue(tuple(catalogue_dirs_from_env() + STATE.catalogs))
    for line in cat.overrides:
        if line not in STATE.reported:  # once per run: a command reads the catalogue several times (size said each 4-8 times)
            STATE.reported.add(line)
            debug(f"aicap: {line}")
    return cat


def warn_shadowing(ref: str, target: Any) -> None:
    """Warn about what a model file (``ref``) leaves uncertain: a catalogue id with other shapes, an unread format, stale figures.

    Stale figures: derived figures of a ``models show`` document that its fields no longer give
    (:mod:`aicap.sizing.core.show_document`).

    Outputs and plans say the id, so they would read as the catalogue model's while costing the file's. A checkpoint whose
    ``quantization_config`` aicap cannot read is costed at its ``torch_dtype`` (:mod:`aicap.sizing.core.hf_quant`): a
    3-bit GPTQ checkpoint would be sized 5x too large, silently, without this warning.
    """
    same = catalogue().models.get(target.id)
    if ref != target.id and same is not None and _differs(same, target):
        info(f"aicap: warning: {ref} names itself '{target.id}', a catalogue model, but differs from it; outputs say "
             f"'{target.id}' for this file's model (give it an id of its own)")  # fmt: skip
    from aicap.sizing.core.hf_config import UNREAD_QUANT

    notes = getattr(target, "notes", None)
    if ref != target.id and isinstance(notes, str) and notes.startswith(UNREAD_QUANT):
        info(f"aicap: warning: {ref}: {notes}")
    if ref != target.id and Path(ref).is_file():
        from aicap.sizing.core.show_document import stale_in_file

        if stale := stale_in_file(Path(ref), target):
            info(f"aicap: warning: {stale}")


def _differs(a: Any, b: Any) -> bool:
    """Whether two model specs differ in a stated field (one side's unstated default, as a derived head_dim, is no difference)."""
    prose = {"name", "source", "notes"}
    da, db = a.model_dump(exclude=prose), b.model_dump(exclude=prose)
    return type(a) is not type(b) or any(da[k] is not None and db.get(k) is not None and da[k] != db[k] for k in da)
