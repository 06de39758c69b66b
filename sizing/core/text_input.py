"""Reading an input document's text: bounded in size, UTF-8, errors as one line naming the file.

The first guarantee of :mod:`aicap.sizing.core.documents` (bounded input) lives here, with the
helpers the YAML and JSON readers share.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from aicap.sizing.core.errors import InputError, excerpt

#: Largest document aicap reads (bytes). Real fleet, plan, catalogue and case files are a few
#: hundred KiB at most; anything larger is a mistake (a checkpoint or a log passed by accident).
MAX_DOCUMENT_BYTES = 16 * 2**20
#: Deepest nesting of mappings and lists accepted in a document (aicap's own need fewer than 10).
MAX_DEPTH = 100


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0") + " MiB"


def read_text(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """Return a file's UTF-8 text.

    Parameters
    ----------
    path
        File to read; ``-`` reads standard input.
    limit
        Largest size accepted, in bytes (default :data:`MAX_DOCUMENT_BYTES`, 16 MiB).

    Returns
    -------
    str
        The decoded text, without a leading byte-order mark.

    Raises
    ------
    InputError
        For a missing, unreadable, oversized or non-UTF-8 file, naming the path and the reason.
    """
    if str(path) == "-":  # standard input, as shell tools read it (`... | aicap size -`)
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"<stdin>: standard input holds more than the {_mib(limit)} limit for an input document")
        return _decode(shown(path), data)
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"{path}: file is {_mib(size)}, over the {_mib(limit)} limit for an input document")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:  # an embedded NUL byte in a path taken from a document
        raise InputError(f"{excerpt(str(path))}: not a valid file path") from None
    if len(data) > limit:  # a pipe or device file that reports no size
        raise InputError(f"{path}: more than the {_mib(limit)} limit for an input document")
    return _decode(path, data)


def shown(path: Path) -> Path:
    """The name an error gives a document: ``<stdin>`` for ``-`` (``<stdin>:6: ...`` reads as a place; ``-:6:`` did not)."""
    return Path("<stdin>") if str(path) == "-" else path


def _decode(path: Path, data: bytes) -> str:
    """``data`` as UTF-8 text without a byte-order mark; an error names ``path`` and the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def one_line(message: str, limit: int = 200) -> str:
    """``message`` on one line (runs of white space made one space), cut to ``limit`` characters."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def float_ok(value: int) -> bool:
    """Whether integer ``value`` converts to a finite float (a number aicap can compute with)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
