"""Training memory against the published formulas it implements (ZeRO, Korthikanti et al.)."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.specs import DecoderModel
from aicap.sizing.train.factors import load_factors
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.memory import GIB, activation_bytes_per_token, params_per_device
from aicap.sizing.train.setup import TrainSetup
from aicap.sizing.train.shape import shape_of
from tests.sizing.train.conftest import run


@pytest.mark.parametrize(("zero", "per_param"), [(0, 16.0), (1, 4.0 + 12.0 / 64), (2, 2.0 + 14.0 / 64), (3, 16.0 / 64)])
def test_model_states_follow_the_zero_paper(cat: Catalogue, gpt: DecoderModel, zero: int, per_param: float) -> None:
    """ZeRO (Rajbhandari et al. 2020) Fig. 1: 2Ψ + 2Ψ + KΨ with K = 12, split over N_d = 64 by stage."""
    setup = TrainSetup(dp=64, zero=zero, seq_len=2048)  # type: ignore[arg-type]
    ev = run(cat, gpt, "a100-80gb-sxm", setup)
    mem = ev.memory
    psi = float(params_per_device(shape_of(gpt), Grid.of([setup]))[0])
    states = float(mem.weights[0] + mem.gradients[0] + mem.optimizer[0]) * GIB
    buffers = 0.0 if zero < 3 else 6.0 * shape_of(gpt).max_layer  # two gathered layers of weights + one of gradients
    assert states == pytest.approx(per_param * psi + buffers, rel=1e-9)


def test_activations_follow_korthikanti_without_flash_attention(gpt: DecoderModel) -> None:
    """Korthikanti et al. 2022, Sec. 4.1: s b h (34 + 5 a s / h) bytes per layer, less the 2 s b h of dropout masks
    (aicap models LLM pre-training without hidden-state dropout)."""
    s, h, a = 2048, gpt.hidden_size, gpt.num_heads
    g = Grid.of([TrainSetup(seq_len=s, recompute="none", flash_attention=False)])
    kept, _ = activation_bytes_per_token(shape_of(gpt), g)
    assert float(kept[0]) == pytest.approx(h * (32 + 5 * a * s / h))


def test_tensor_and_sequence_parallel_split_activations(gpt: DecoderModel) -> None:
    """With sequence parallelism every tensor is split by t; without it the (2n + 4)h replicated part is not."""
    shape = shape_of(gpt)
    base = float(activation_bytes_per_token(shape, Grid.of([TrainSetup(recompute="none")]))[0][0])
    sp = float(activation_bytes_per_token(shape, Grid.of([TrainSetup(tp=8, recompute="none")]))[0][0])
    no_sp = float(activation_bytes_per_token(shape, Grid.of([TrainSetup(tp=8, recompute="none", sequence_parallel=False)]))[0][0])
    replicated = (2 * 2 + 4) * gpt.hidden_size
    assert sp == pytest.approx(base / 8)
    assert no_sp == pytest.approx(replicated + (base - replicated) / 8)
    full = float(activation_bytes_per_token(shape, Grid.of([TrainSetup(tp=8, recompute="full")]))[0][0])
    assert full == pytest.approx(2 * gpt.hidden_size / 8)


def test_first_pipeline_stage_holds_the_whole_model_of_activations(cat: Catalogue, gpt: DecoderModel) -> None:
    """1F1B: stage 1 keeps p micro-batches of L/p layers = L layers of one micro-batch (Korthikanti Sec. 4.2.3)."""
    one = run(cat, gpt, "h100-sxm", TrainSetup(pp=1, dp=1, recompute="selective", seq_len=2048))
    four = run(cat, gpt, "h100-sxm", TrainSetup(pp=4, dp=1, recompute="selective", seq_len=2048, global_batch_tokens=16 * 2048))
    logits = 2048 * gpt.vocab_size * load_factors().logits_bytes / GIB + 2 * gpt.hidden_size * 2048 / GIB  # on stage 1 only when pp == 1
    assert float(four.memory.activations[0]) == pytest.approx(float(one.memory.activations[0]) - logits, rel=1e-9)
    inter = run(cat, gpt, "h100-sxm", TrainSetup(pp=4, virtual_pipeline=2, dp=1, recompute="selective", seq_len=2048,
                                                 global_batch_tokens=16 * 2048))  # fmt: skip
    assert float(inter.memory.activations[0]) == pytest.approx(float(four.memory.activations[0]) * (1 + 3 / 8), rel=1e-9)


def test_lora_and_qlora_shrink_the_weights(cat: Catalogue) -> None:
    model = cat.model("llama-3.1-70b")
    full = run(cat, model, "a100-80gb-sxm", TrainSetup(method="full", seq_len=2048))
    lora = run(cat, model, "a100-80gb-sxm", TrainSetup(method="lora", seq_len=2048))
    qlora = run(cat, model, "a100-80gb-sxm", TrainSetup(method="qlora", seq_len=2048))
    assert float(lora.memory.weights[0]) == pytest.approx(float(full.memory.weights[0]), rel=0.01)  # frozen 16-bit base
    assert float(lora.memory.optimizer[0]) < 0.01 * float(full.memory.optimizer[0])
    assert float(qlora.memory.weights[0]) < 0.3 * float(lora.memory.weights[0])
    assert not bool(lora.memory.fits[0]) and bool(qlora.memory.fits[0])


def test_optimizer_offload_and_8bit_adam(cat: Catalogue, gpt: DecoderModel) -> None:
    adam = run(cat, gpt, "h100-sxm", TrainSetup(zero=0, seq_len=2048))
    eight = run(cat, gpt, "h100-sxm", TrainSetup(zero=0, seq_len=2048, optimizer="adam8bit"))
    off = run(cat, gpt, "h100-sxm", TrainSetup(zero=0, seq_len=2048, offload="optimizer"))
    assert float(eight.memory.optimizer[0]) == pytest.approx(float(adam.memory.optimizer[0]) / 2)
    assert float(off.memory.optimizer[0]) == 0.0
    assert float(off.step_time_s[0]) > float(adam.step_time_s[0])


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_an_experts_states_split_over_the_ranks_that_hold_it(cat: Catalogue, zero: int) -> None:
    """With expert parallelism e over S = dp ranks, each expert lives on S/e of them: its sharded states split
    S/e ways, the dense parameters' S ways (at e = S an expert's optimizer states are not split at all)."""
    model = cat.model("qwen3-30b-a3b")
    shape = shape_of(model)
    setup = TrainSetup(dp=8, ep=8, zero=zero, seq_len=2048)  # type: ignore[arg-type]
    mem = run(cat, model, "h100-sxm", setup).memory
    g = Grid.of([setup])
    experts = shape.experts / 8  # per device: 1/e of the routed experts, whole (tp = pp = 1)
    dense = float(params_per_device(shape, g)[0]) - experts
    assert float(mem.optimizer[0]) * GIB == pytest.approx(12.0 * (dense / 8 + experts), rel=1e-9)
    if zero >= 2:
        layer = max(shape.layer_dense, shape.layer_moe_common + shape.layer_experts / 8)  # one gathered layer's gradient buffer
        assert float(mem.gradients[0]) * GIB == pytest.approx(2.0 * (dense / 8 + experts) + (2.0 * layer if zero == 3 else 0.0), rel=1e-9)
    # Twice the ranks, each expert on two: its states halve.
    two = run(cat, model, "h100-sxm", TrainSetup(dp=16, ep=8, zero=zero, seq_len=2048)).memory  # type: ignore[arg-type]
    assert float(two.optimizer[0]) * GIB == pytest.approx(12.0 * (dense / 16 + experts / 2), rel=1e-9)


def test_qlora_keeps_a_tied_embedding_16_bit(cat) -> None:  # type: ignore[no-untyped-def]
    # A tied LM head is the embedding: it was counted as a linear layer in NF4, undercounting Llama 3.2 1B's frozen
    # base by a third (0.64 GB for 1.03).
    from aicap.sizing.train.factors import load_factors
    from aicap.sizing.train.grid import Grid
    from aicap.sizing.train.memory import parameter_states
    from aicap.sizing.train.setup import TrainSetup
    from aicap.sizing.train.shape import shape_of

    model = cat.model("llama-3.2-1b")
    shape = shape_of(model)
    frozen = float(parameter_states(shape, Grid.of([TrainSetup(method="qlora")]), load_factors()).frozen_bytes[0])
    nf4 = load_factors().nf4_bits_per_param / 8.0
    want = (shape.total - shape.embedding - shape.head) * nf4 + (shape.embedding + shape.head) * 2.0
    assert model.tied_embeddings and frozen == pytest.approx(want)


def test_lora_adapters_on_routed_experts_split_over_expert_parallelism(cat) -> None:  # type: ignore[no-untyped-def]
    # Every device kept the states of every expert's adapters (Mixtral at EP8: 0.4 + 2.7 GiB where its share is 0.4).
    from aicap.sizing.train.factors import load_factors
    from aicap.sizing.train.grid import Grid
    from aicap.sizing.train.memory import parameter_states
    from aicap.sizing.train.setup import TrainSetup
    from aicap.sizing.train.shape import shape_of

    shape = shape_of(cat.model("mixtral-8x7b"))
    lora = shape.lora_params(16, "all")
    experts = shape.lora_expert_params(16, "all")
    assert 0 < experts < lora
    for ep in (1, 8):
        g = Grid.of([TrainSetup(method="lora", lora_targets="all", dp=8, ep=ep)])
        assert float(parameter_states(shape, g, load_factors()).trainable[0]) == pytest.approx(lora - experts + experts / ep)
