"""A per-user cache of validated catalogues, so that a fresh process skips parsing YAML.

Parsing and validating the catalogue's YAML takes about 0.1 s of every ``aicap`` run; unpickling the
validated :class:`~aicap.hardware_db.loader.Catalogue` takes about 3 ms. An entry is keyed by

* the SHA-256 of every catalogue text read (built-in data, overlays, ownership), in load order;
* the size and modification time of aicap's own catalogue and spec code, and the Python and pydantic
  versions (a pickle is only read back by the code that wrote it).

So an entry is used only for byte-identical inputs and unchanged code, and the loaded catalogue equals
a freshly parsed one (tested). Entries live in ``$AICAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/aicap``,
else ``~/.cache/aicap`` (a directory of the user's own, mode 0700); the newest ``KEEP`` entries are kept.
``AICAP_NO_CACHE=1`` turns the cache off. A cache that cannot be read or written is silently skipped:
it only ever saves time. Pickles are trusted like the user's own files, and only files this module
wrote under the cache directory are read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aicap.hardware_db.loader import Catalogue

KEEP = 8  # entries kept (one per combination of overlays in use)
_PREFIX = "catalogue-"
_SUFFIX = ".pickle"


def cache_dir() -> Path | None:
    """Where entries live, or ``None`` when ``AICAP_NO_CACHE`` is set."""
    if os.environ.get("AICAP_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("AICAP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aicap"


def _code_stamp() -> bytes:
    """Size and modification time of the code that builds and defines a catalogue, with the interpreter and pydantic versions."""
    import pydantic

    here = Path(__file__).resolve().parent
    roots = [here, here.parent / "sizing" / "core"]
    parts = [sys.version, pydantic.VERSION]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts).encode()


def entry_key(digest: str) -> str:
    """The cache key of a catalogue whose texts hash to ``digest``."""
    return hashlib.sha256(digest.encode() + b"\n" + _code_stamp()).hexdigest()[:32]


def load(key: str) -> Catalogue | None:
    """The cached catalogue of ``key``, or ``None`` (no cache, no entry, or an entry that cannot be read)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{_PREFIX}{key}{_SUFFIX}"
    try:
        with path.open("rb") as fh:
            cat = pickle.load(fh)
    except Exception:  # a missing, truncated or foreign entry only costs the parse it would have saved
        return None
    from aicap.hardware_db.loader import Catalogue

    return cat if isinstance(cat, Catalogue) else None


def store(key: str, cat: Catalogue) -> None:
    """Write ``cat`` under ``key`` atomically, keeping the newest :data:`KEEP` entries; errors are ignored."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(cat, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / f"{_PREFIX}{key}{_SUFFIX}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entries = sorted(folder.glob(f"{_PREFIX}*{_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # an unwritable cache (or an unpicklable overlay object) only costs the next parse
        return
