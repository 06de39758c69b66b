"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aicap.sizing.core.errors import InputError

_NO_NEW_FILE = frozenset({errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS})  # why a folder refuses a new file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The text goes to a temporary file in the target's directory, which is then renamed over the
    target. Deliberate choices:

    * **Symbolic links are written through.** When ``path`` is a symbolic link, the file it points
      to is replaced and the link is kept (as ``echo > link`` would do), so a link into a
      configuration repository keeps working.
    * **Permissions are kept.** An existing target keeps its permission bits; a new file gets the
      mode a newly created file normally gets (``0666`` less the umask: ``0644`` under the usual
      umask ``022``), not the ``0600`` of a temporary file.
    * **Nothing is left behind.** The temporary file is removed when anything fails, including
      Ctrl-C (``KeyboardInterrupt``) during the write.
    * **Devices and pipes** (``/dev/null``, ``/dev/stdout``) are written directly: there is
      nothing to replace atomically, and replacing a device node would be wrong. So is an existing
      file in a folder that takes no new file (``/proc``, a read-only folder holding a writable file):
      there is no room for the temporary file.

    Parameters
    ----------
    path
        The file to write.
    text
        Its new content (written as UTF-8).

    Raises
    ------
    InputError
        When the target is a directory or cannot be written, naming ``path`` and the reason.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory, expected a file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_in_place(path, target, text)
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    directory = target.parent if str(target.parent) else Path(".")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        # A folder that takes no new file beside an existing one (procfs, a read-only folder): written in place. Not on
        # a full disk or quota (ENOSPC, EDQUOT), where truncating the old file could lose it.
        if st is None or exc.errno not in _NO_NEW_FILE:
            raise InputError(f"{path}: cannot write: cannot create a file in {directory} ({exc.strerror or exc})") from None
        _write_in_place(path, target, text)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except UnicodeEncodeError:
        raise InputError(f"{path}: cannot write: the text holds characters that are not valid Unicode") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _write_in_place(path: Path, target: Path, text: str) -> None:
    """Write ``text`` into the existing ``target`` directly (as ``echo > file`` would), naming ``path`` on failure."""
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except UnicodeEncodeError:
        raise InputError(f"{path}: cannot write: the text holds characters that are not valid Unicode") from None


def check_writable(path: Path, flag: str, inputs: Sequence[Path | None] = ()) -> None:
    """Refuse an output path that cannot be written, before any work (``--write-bands``, ``--output``, ...).

    ``inputs``: files the command reads; writing over one of them would replace what it was given (``aicap size
    fleet.yaml -o fleet.yaml`` turned the fleet into a plan).

    Raises
    ------
    InputError
        When ``path`` is a directory, or its folder does not exist or is not writable, or it is one of ``inputs``
        (the same file by any name), naming the flag.
    """
    if str(path) == "-":  # standard output is where results go already: a file named "-" is never what was meant
        raise InputError(f"{flag} -: give a file name (results print on standard output; -f json prints the document there)")
    for given in inputs:
        if given is not None and path.exists() and given.exists() and os.path.samefile(path, given):
            raise InputError(f"{flag} {path}: is the input {given}; writing there would replace it: give another file")
    folder = (Path(os.path.realpath(path)) if path.is_symlink() else path).resolve().parent
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory; give a file name")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise InputError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) and not (path.exists() and os.access(path, os.W_OK)):
        raise InputError(f"{flag} {path}: cannot write in {folder} (permission denied)")
