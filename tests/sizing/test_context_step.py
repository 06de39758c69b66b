"""ContextStep: a step priced at its decode contexts and prefill spans is engine_step at those lengths."""

from __future__ import annotations

import itertools

import pytest

from aicap.hardware_db import load_catalogue
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.specs.speculative import SpeculativeConfig
from aicap.sizing.core.speculative import speculative_for
from aicap.sizing.serve.context_step import ContextStep
from aicap.sizing.serve.step import engine_step
from aicap.sizing.serve.step_model import Hardware
from aicap.sizing.sim.engine import step_seconds
from aicap.sizing.sim.request_table import RequestTable
from aicap.sizing.sim.virtual_engine import VirtualEngine

CAT = load_catalogue()


def _step(model_id: str, device_id: str, *, tp: int = 1, context: float = 1500.0, prompt: float = 800.0, spec: bool = False,
          dtype: str = "bf16") -> tuple[Deployment, ContextStep]:  # fmt: skip
    model, dev = CAT.model(model_id), CAT.device(device_id)
    eff = CAT.efficiency_for(dev)
    sp = speculative_for(CAT, model, SpeculativeConfig(method="mtp" if model_id.startswith("deepseek") else "eagle"), "t") if spec else None
    dep = Deployment(model, dev, eff, CAT.runtime_spec, tp, 1, 1, dtype, dtype, speculative=sp)
    return dep, ContextStep.build(dep, Hardware.of([(dev, eff)], dtype), tp, 1, 1.0, context, prompt)


def _at(step: ContextStep, d: int, ctx: int, chunks: list[tuple[int, int]] = []) -> float:  # noqa: B006 -- read only
    """The step time the simulator computes for ``d`` decoders holding ``ctx`` KV tokens and prefill ``chunks`` of (offset, tokens)."""
    ve = VirtualEngine(0, 1, 1, 1, 1, RequestTable([], [], []))
    ve.context, ve.decoders = ctx, dict.fromkeys(range(d))
    ve.span_mo, ve.span_mm = sum(m * o for o, m in chunks), sum(m * m for _, m in chunks)
    ve.span_o, ve.chunks = sum(o for o, _ in chunks), len(chunks)
    return step_seconds(step.parts(d, sum(m for _, m in chunks)), ve, d)


# StepModel is exact algebra on engine_step's costs, except a mixture-of-experts drafter (DeepSeek's MTP head),
# whose touched experts it interpolates (a few per cent high; serve.step): there, the rest of the step carries that error.
@pytest.mark.parametrize(("model_id", "tp", "spec", "rel"), [("llama-3.1-8b", 1, False, 1e-9), ("llama-3.1-70b", 4, False, 1e-9),
                                                             ("mixtral-8x7b", 2, False, 1e-9), ("deepseek-v3", 8, False, 1e-9),
                                                             ("llama-3.1-8b", 1, True, 1e-9), ("deepseek-v3", 8, True, 0.05)])  # fmt: skip
@pytest.mark.parametrize("actual", [200, 1500, 12_000])
def test_decoders_at_their_context_cost_what_engine_step_says(model_id: str, tp: int, spec: bool, rel: float, actual: int) -> None:
    dtype = "fp8" if model_id == "deepseek-v3" else "bf16"
    dep, step = _step(model_id, "h100-sxm", tp=tp, spec=spec, dtype=dtype)
    for d in (1, 16, 128):
        want = float(engine_step(dep, d, actual, 0, 800.0).total)
        assert _at(step, d, d * actual) == pytest.approx(want, rel=rel)
        # the context's part exactly, whatever the rest of the step carries
        built = float(engine_step(dep, d, 1500.0, 0, 800.0).total)
        assert _at(step, d, d * actual) - step(d, 0) == pytest.approx(want - built, rel=1e-6, abs=1e-12)
    # built context, through __call__: the StepModel's value
    assert step(16, 0) == pytest.approx(float(engine_step(dep, 16, 1500.0, 0, 800.0).total), rel=rel)


@pytest.mark.parametrize(("offset", "chunk"), [(0, 2000), (1536, 512), (6000, 2048)])
def test_a_prefill_chunk_attends_over_what_came_before_it(offset: int, chunk: int) -> None:
    dep, step = _step("llama-3.1-8b", "h100-sxm")
    # engine_step prices a chunk after `offset` tokens of its prompt as a prompt of `chunk` tokens with a cached prefix
    want = float(engine_step(dep, 0, 0, chunk, chunk, cached_tokens=offset).total)
    assert _at(step, 0, 0, [(offset, chunk)]) == pytest.approx(want, rel=1e-9)
    # two chunks of two prompts in one step: one call prices both
    both = float(engine_step(dep, 0, 0, 2 * chunk, chunk, cached_tokens=offset).total)
    assert _at(step, 0, 0, [(offset, chunk), (offset, chunk)]) == pytest.approx(both, rel=1e-9)


def test_mixed_step_with_decoders_and_a_chunk() -> None:
    dep, step = _step("llama-3.1-70b", "h100-sxm", tp=4)
    want = float(engine_step(dep, 32, 4000, 512, 512, cached_tokens=3000).total)
    assert _at(step, 32, 32 * 4000, [(3000, 512)]) == pytest.approx(want, rel=1e-9)


def test_longer_contexts_cost_more_and_the_mean_is_the_built_step() -> None:
    _, step = _step("llama-3.1-8b", "a100-80gb-sxm")
    times = [_at(step, 64, 64 * c) for c in (100, 1500, 8000, 32_000)]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[1] == pytest.approx(step(64, 0), rel=1e-12)
    # A long prompt's later chunks cost more than its first: the same tokens attend over more.
    first, later = _at(step, 0, 0, [(0, 2048)]), _at(step, 0, 0, [(14_000, 2048)])
    assert later > 1.2 * first


def test_an_encoder_prompt_attends_both_ways_and_a_generic_model_has_no_attention() -> None:
    dep, step = _step("bge-large-en", "l4", prompt=256.0)
    want = float(engine_step(dep, 0, 0, 512, 512).total)
    assert _at(step, 0, 0, [(0, 512)]) == pytest.approx(want, rel=1e-9)
    _, generic = _step("resnet-50", "l4", prompt=1.0)
    c = generic.parts(0, 8)
    assert c[0] == pytest.approx(generic(0, 8)) and not any(c[1:])
