"""Loader of the engines' flag maps (``hardware_db/export/<engine>.yaml``), for ``aicap export``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aicap.sizing.core.documents import load_yaml, validate_model
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.launch import FlagMap

#: Engines whose launch flags are mapped (``generic`` launches as vLLM, whose conventions it follows).
LAUNCH_ENGINES = ("vllm", "sglang", "trtllm")


@cache
def flag_map(engine: str) -> FlagMap:
    """The flag map of ``engine``; raises :class:`InputError` for an engine without one."""
    if engine not in LAUNCH_ENGINES:
        raise InputError(f"engine '{engine}' has no launch-flag map; aicap exports {', '.join(LAUNCH_ENGINES)}")
    where = f"hardware_db/export/{engine}.yaml"
    text = resources.files("aicap.hardware_db").joinpath("export").joinpath(f"{engine}.yaml").read_text(encoding="utf-8")
    from pathlib import Path

    return validate_model(FlagMap, load_yaml(Path(where), text), where, text, ())
