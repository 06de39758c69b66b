"""Deployment factory for the performance-model tests."""

from __future__ import annotations

from typing import Any

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.deployment import Deployment


@pytest.fixture
def deploy(cat: Catalogue):
    def make(model: str, device: str, **kw: Any) -> Deployment:
        dev = cat.device(device)
        m = cat.model(model)
        kw.setdefault("weights_dtype", "bf16")
        kw.setdefault("kv_dtype", kw["weights_dtype"] if kw["weights_dtype"] in {"bf16", "fp16", "fp8"} else "bf16")
        return Deployment(m, dev, cat.efficiency_for(dev), cat.runtime_spec, **kw)

    return make
