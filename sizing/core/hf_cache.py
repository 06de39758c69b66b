"""Where a model reference that is not a catalogue id points: a file, a model folder, or a cached Hub id.

aicap works offline: a Hugging Face id is read from the local hub cache, never downloaded.
"""

from __future__ import annotations

from pathlib import Path

from aicap.sizing.core.errors import InputError


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def model_path(ref: str) -> Path | None:
    """Where a model reference that is not a catalogue id points: a file, a model folder, or a cached Hub id.

    * an existing ``.json``/``.yaml`` file, or a folder holding ``config.json``;
    * ``ORG/NAME``: ``config.json`` of the snapshot ``refs/main`` names in the local Hugging Face cache
      (:func:`hf_cache_dir`; nothing is downloaded), else of its newest snapshot.

    Returns ``None`` when ``ref`` looks like neither (a mistyped catalogue id).

    Raises
    ------
    InputError
        For a folder without ``config.json``, or a Hub id that is not in the cache (naming the cache
        path and how to fetch the config).
    """
    import re

    if not ref.strip():  # Path("") is the working folder: it was called "a folder without config.json"
        raise InputError("an empty model id; give a catalogue id (aicap models list), a model folder, a config.json or a model YAML file")
    path = Path(ref).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise InputError(f"{ref}: a folder without config.json; give a model folder, a config.json or a model YAML file")
        return cfg
    if path.is_file() or ref.endswith((".json", ".yaml", ".yml")):
        return path
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", ref):
        return None
    repo = hf_cache_dir() / ("models--" + ref.replace("/", "--"))
    snapshots = repo / "snapshots"
    main = repo / "refs" / "main"
    candidates: list[Path] = []
    if main.is_file():
        candidates.append(snapshots / main.read_text(encoding="utf-8").strip() / "config.json")
    if snapshots.is_dir():
        candidates += sorted((d / "config.json" for d in snapshots.iterdir()), key=lambda p: -p.stat().st_mtime if p.exists() else 0)
    for cfg in candidates:
        if cfg.is_file():
            return cfg
    raise InputError(f"{ref}: not a catalogue id, a file or a folder, and not in the Hugging Face cache at {repo} "
                     f"(aicap works offline; fetch the config first, e.g. `huggingface-cli download {ref} config.json`)")  # fmt: skip
