"""Loaders of the data beside the catalogue: flag maps and Kubernetes facts (``export/``), published quality figures (``whatif/``)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from aicap.sizing.core.documents import load_yaml, validate_model
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.launch import FlagMap, KubernetesFacts, LlmdChart
from aicap.sizing.core.specs.quality import QualityData

#: Engines whose launch flags are mapped (``generic`` launches as vLLM, whose conventions it follows).
LAUNCH_ENGINES = ("vllm", "sglang", "trtllm")
M = TypeVar("M", bound=BaseModel)


@cache
def flag_map(engine: str) -> FlagMap:
    """The flag map of ``engine``; raises :class:`InputError` for an engine without one."""
    if engine not in LAUNCH_ENGINES:
        raise InputError(f"engine '{engine}' has no launch-flag map; aicap exports {', '.join(LAUNCH_ENGINES)}")
    return _load(FlagMap, f"{engine}.yaml")


@cache
def kubernetes_facts() -> KubernetesFacts:
    """Device resource names and node labels for manifests (``hardware_db/export/kubernetes.yaml``)."""
    return _load(KubernetesFacts, "kubernetes.yaml")


@cache
def quality_figures() -> QualityData:
    """Published quality of compression techniques (``hardware_db/whatif/quality.yaml``)."""
    return _load(QualityData, "quality.yaml", "whatif")


def _load(kind: type[M], name: str, folder: str = "export") -> M:
    where = f"hardware_db/{folder}/{name}"
    text = resources.files("aicap.hardware_db").joinpath(folder).joinpath(name).read_text(encoding="utf-8")
    return validate_model(kind, load_yaml(Path(where), text), where, text, ())


@cache
def llmd_chart() -> LlmdChart:
    """The llm-d modelservice chart's pinned version, image and the values keys aicap writes (``hardware_db/export/llmd.yaml``)."""
    return _load(LlmdChart, "llmd.yaml")
