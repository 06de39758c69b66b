"""Root of the ``aicap`` command: global options, sub-commands, and the one place errors become exit codes.

Exit codes: 0 ok, 1 policy or budget breach, 2 usage or input error, 3 infeasible, 4 internal
error (a bug), 130 interrupted. Library errors and unexpected exceptions become one stderr line and
their exit code in :func:`aicap.cli.state.guarded`, which wraps every command, the only place that
does so; Typer itself exits 2 on usage errors. :func:`main` catches what escapes outside a command
(option parsing, eager callbacks) the same way. ``AICAP_DEBUG=1`` shows the traceback of an internal
error instead.
Heavy modules (numpy, scipy, pydantic) are imported inside commands, never here, so
``aicap --help`` starts fast.
"""

from __future__ import annotations

import errno
import io
import os

# aicap uses no pydantic plugins; finding them scans every installed distribution's entry points (~20 ms
# of each start). A user who wants them set PYDANTIC_DISABLE_PLUGINS themselves.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from aicap.cli.argv import RootGroup, check_words
from aicap.cli.commands import catalog_cmds, estimate_cmd, export_cmd, simulate_cmd, size_cmd, train_cmd, validate_cmds, whatif_cmd
from aicap.cli.state import DEBUG_ENV, STATE, internal_error_line

app = typer.Typer(
    name="aicap",
    cls=RootGroup,
    help="Capacity advisor for serving and training large AI models: how many of which accelerators, "
    "in what layout, at what cost, meeting which latency.\n\n"
    "Exit codes: 0 ok, 1 policy/budget breach, 2 usage or input error, 3 infeasible, "
    "4 internal error (a bug: please report it). AICAP_DEBUG=1 shows an internal error's traceback.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_cmds.models_app, name="models")
app.add_typer(catalog_cmds.hardware_app, name="hardware")
app.add_typer(catalog_cmds.instances_app, name="instances")
app.add_typer(catalog_cmds.engines_app, name="engines")
estimate_cmd.register(app)
validate_cmds.register(app)
size_cmd.register(app)
simulate_cmd.register(app)
train_cmd.register(app)
export_cmd.register(app)
whatif_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"aicap {version('aicap')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            typer.echo("aicap (version unknown: not installed)")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr (catalogue overrides, assumptions).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors.")] = False,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="Directory (or file) of YAML catalogue overlays; repeatable. Also AICAP_CATALOG."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Set global options."""
    if verbose and quiet:  # -q won in silence
        raise typer.BadParameter("--quiet and --verbose ask for less and more on stderr: give one of them", param_hint="'-q/-v'")
    STATE.verbose, STATE.quiet = verbose, quiet
    STATE.catalogs = list(catalog or [])
    STATE.reported = set()
    check_words(ctx)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


#: Options of ``aicap`` itself, given before the command.
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--catalog", "--version"})


def _with_given_value(message: str, param: object, argv: list[str]) -> str:
    """Click's "Invalid value for '--rate': <reason>" as ``--rate 'abc': <reason>``: the value as typed, which it left out.

    The value is the word after the option in ``argv`` (or after its ``=``); a message without it is returned as it was.
    """
    opts = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    if not message.startswith("Invalid value for ") or ": " not in message or not opts:
        return message
    for k, word in enumerate(argv):
        flag, eq, value = word.partition("=")
        if flag in opts and (eq or k + 1 < len(argv)):
            given = value if eq else argv[k + 1]
            reason = message.split(": ", 1)[1].removeprefix("Value error, ")
            return f"{flag}: {reason}" if repr(given) in reason else f"{flag} {given!r}: {reason}"
    return message


class _ClosedStdout(io.TextIOBase):
    """Standard output of a process started without one: a write fails as on a closed descriptor, a flush does nothing."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed (give -o FILE, or redirect it: > FILE)")

    def writable(self) -> bool:
        return True


def main() -> None:
    """Console entry point (``aicap``).

    Commands report their own errors (:func:`aicap.cli.state.guarded`); this reports what happens
    outside any command the same way: a usage error (unknown option, a value of the wrong type) is
    one ``aicap: error:`` line and exit 2; an unexpected exception is one line and exit 4, or the
    traceback with ``AICAP_DEBUG=1``.
    """
    import sys

    from typer.exceptions import TyperException

    from aicap.sizing.core.errors import ExitCode

    if sys.stdout is None:  # started with stdout closed (`aicap ... >&-`): writing the result is an input error, not a bug
        sys.stdout = _ClosedStdout()
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        sys.stderr.write("aicap: interrupted\n")
        sys.exit(130)
    except TyperException as exc:  # Click's usage errors: one line, like every other input error
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # a command group run bare: its help
            sys.stderr.write(ctx.get_help() + "\n")
        else:
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = _with_given_value(" ".join(str(exc.format_message()).split()), getattr(exc, "param", None), sys.argv[1:])
            if message.startswith("No such command") and ctx is not None and hasattr(ctx.command, "list_commands"):  # name the valid ones
                group = ctx.command
                names = [n for n in group.list_commands(ctx) if not getattr(group.get_command(ctx, n), "hidden", False)]
                message = f"{message.rstrip('.')}; valid: {', '.join(names)}." if names else message
            flag = getattr(exc, "option_name", None)
            if message.startswith("No such option") and flag and ctx is not None:
                message = _elsewhere(message, str(flag), ctx)
            if flag in GLOBAL_FLAGS and ctx is not None and ctx.parent is not None:  # `aicap size ... --quiet`
                names, c = [], ctx
                while c.parent is not None:  # the command's path below the root, whatever the program is called
                    names.append(str(c.info_name))
                    c = c.parent
                command = " ".join(reversed(names))
                given = f"{flag} DIR" if flag == "--catalog" else flag
                hint = "aicap --version" if flag == "--version" else f"aicap {given} {command} ..."
                message = f"{flag} is a global option: put it before the command ({hint})"
                where = ""
            sys.stderr.write(f"aicap: error: {message}{where}\n")
        sys.exit(int(getattr(exc, "exit_code", ExitCode.INPUT_ERROR)))
    except OSError as exc:
        if not isinstance(sys.stdout, _ClosedStdout) or exc.errno != errno.EBADF:
            _internal(exc)
        sys.stderr.write(f"aicap: error: cannot write to standard output: {exc.strerror}\n")  # --help, --version
        sys.exit(int(ExitCode.INPUT_ERROR))
    except Exception as exc:
        _internal(exc)
    sys.exit(code if isinstance(code, int) else 0)


#: Options that say the same thing under another name in other commands: (command, option given) -> the option here.
#: ``size`` allows several weight formats (a fleet's ``precisions``); ``estimate`` and ``simulate`` run one.
SAME_MEANING = {
    ("size", "--weights-dtype"): "--precision, which allows several formats (--precision fp8,bf16)",
    ("estimate", "--precision"): "--weights-dtype",
    ("simulate", "--precision"): "--weights-dtype",
}


def _elsewhere(message: str, flag: str, ctx: typer.Context) -> str:
    """``No such option: --x`` with the option this command has for it, or the commands that have ``--x``."""
    name = str(ctx.info_name)
    if (name, flag) in SAME_MEANING:
        return f"{message.rstrip('.')}; here it is {SAME_MEANING[(name, flag)]}"
    root = ctx.find_root()
    group = root.command
    if not isinstance(group, TyperGroup):
        return message
    owners = []
    for cmd in group.list_commands(root):
        sub = group.get_command(root, cmd)
        if sub is not None and cmd != name and any(flag in getattr(p, "opts", ()) for p in getattr(sub, "params", ())):
            owners.append(f"aicap {cmd}")
    return f"{message.rstrip('.')}; it is an option of {', '.join(owners)}" if owners else message


def _internal(exc: Exception) -> None:
    """Report an unexpected exception outside any command: one line and exit 4 (the traceback with ``AICAP_DEBUG=1``)."""
    import sys

    from aicap.sizing.core.errors import ExitCode

    if os.environ.get(DEBUG_ENV) == "1":
        raise exc
    sys.stderr.write(internal_error_line(exc) + "\n")
    sys.exit(int(ExitCode.INTERNAL_ERROR))


if __name__ == "__main__":
    main()
