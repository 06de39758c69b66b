"""Fixtures of the training tests: a GPT of Korthikanti et al.'s shape and helpers to evaluate setups."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.specs import DecoderModel
from aicap.sizing.train.estimate import Evaluation, Hardware, evaluate
from aicap.sizing.train.fabric import best_instance, fabric_of
from aicap.sizing.train.factors import load_factors
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.setup import TrainSetup
from aicap.sizing.train.shape import shape_of


@pytest.fixture(scope="session")
def gpt() -> DecoderModel:
    """A GPT-3-style decoder (plain GeLU MLP of 4h, multi-head attention, two LayerNorms per layer)."""
    return DecoderModel(id="gpt-test", name="GPT test", family="gpt", source="test", hidden_size=4096, num_layers=32,
                        num_heads=32, intermediate_size=16384, vocab_size=51200, max_context=2048, mlp="plain",
                        norm="layernorm", position="learned")  # fmt: skip


def run(cat: Catalogue, model: object, device: str, setup: TrainSetup) -> Evaluation:
    """Evaluate one setup on a device inside its best instance."""
    dev = cat.device(device)
    hw = Hardware(dev, cat.efficiency_for(dev), cat.runtime_spec, fabric_of(dev, best_instance(dev, cat.instances.values())))
    return evaluate(shape_of(model), Grid.of([setup]), hw, load_factors())  # type: ignore[arg-type]
