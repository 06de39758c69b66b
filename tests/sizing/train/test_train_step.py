"""Step time: FLOP counts, the pipeline bubble, communication terms and the utilisation metrics."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.sizing.core.specs import DecoderModel
from aicap.sizing.train import step
from aicap.sizing.train.grid import Grid
from aicap.sizing.train.setup import TrainSetup
from aicap.sizing.train.shape import shape_of
from aicap.sizing.train.step import RawStep, flops_per_token
from tests.sizing.train.conftest import run

ASSEMBLE = step.assemble


def test_model_flops_follow_palm(gpt: DecoderModel) -> None:
    """PaLM App. B: 6N + 12 L H Q T with N the non-embedding parameters (the LM head multiplies), attention
    halved for the causal mask (6 L H Q T)."""
    shape = shape_of(gpt)
    s = 2048
    f = flops_per_token(shape, Grid.of([TrainSetup(seq_len=s, recompute="none")]))
    n = shape.linear_active
    assert float(f.model[0]) == pytest.approx(6 * n + 6 * gpt.num_layers * gpt.hidden_size * s)
    assert float(f.utilised[0]) == pytest.approx(float(f.model[0]))
    full = flops_per_token(shape, Grid.of([TrainSetup(seq_len=s, recompute="full")]))
    assert float(full.utilised[0]) == pytest.approx(8 * n + 8 * gpt.num_layers * gpt.hidden_size * s)  # HFU with recompute
    assert n == pytest.approx(shape.total - shape.embedding)  # the untied LM head is counted in total
    tied = shape_of(gpt.model_copy(update={"tied_embeddings": True}))
    assert tied.linear_active == pytest.approx(tied.total - tied.embedding + gpt.vocab_size * gpt.hidden_size)  # tied: still multiplies


def test_pipeline_bubble_is_p_minus_1_over_m_plus_p_minus_1(cat: Catalogue, gpt: DecoderModel) -> None:
    """1F1B (Narayanan et al. 2021): the bubble is (p − 1)/(m + p − 1) of the pipelined time; interleaving divides it by v."""
    p, m = 4, 8
    ev = run(cat, gpt, "h100-sxm", TrainSetup(pp=p, dp=1, seq_len=2048, global_batch_tokens=m * 2048))
    st = ev.step
    pipelined = st.compute + st.tensor_parallel + st.context_parallel + st.expert_parallel
    assert float(st.bubble[0] / (pipelined[0] + st.bubble[0])) == pytest.approx((p - 1) / (m + p - 1))
    inter = run(cat, gpt, "h100-sxm", TrainSetup(pp=p, virtual_pipeline=2, dp=1, seq_len=2048, global_batch_tokens=m * 2048))
    assert float(inter.step.bubble[0]) == pytest.approx(float(st.bubble[0]) / 2, rel=1e-6)


def test_tensor_parallel_traffic_and_mfu_below_hfu(cat: Catalogue) -> None:
    model = cat.model("llama-3.1-70b")
    ev = run(cat, model, "h100-sxm", TrainSetup(tp=8, dp=8, fsdp="full", seq_len=8192, recompute="full"))
    assert float(ev.step.tensor_parallel[0]) > 0
    assert 0 < float(ev.mfu_pct[0]) < float(ev.hfu_pct[0]) < 100
    one = run(cat, model, "h100-sxm", TrainSetup(tp=1, dp=64, fsdp="full", seq_len=8192, recompute="full"))
    assert float(one.step.tensor_parallel[0]) == 0.0


def test_fp8_is_faster_than_bf16_on_hopper_and_refused_on_ampere(cat: Catalogue) -> None:
    from aicap.sizing.core.errors import InputError

    model = cat.model("llama-3.1-8b")
    bf16 = run(cat, model, "h100-sxm", TrainSetup(dp=8, seq_len=4096))
    fp8 = run(cat, model, "h100-sxm", TrainSetup(dp=8, seq_len=4096, precision="fp8"))
    assert float(fp8.tokens_per_s_per_device[0]) > float(bf16.tokens_per_s_per_device[0])
    with pytest.raises(InputError, match="fp8"):
        run(cat, model, "a100-80gb-sxm", TrainSetup(dp=8, precision="fp8"))


def test_groups_across_instances_move_at_their_rails_pace() -> None:
    """Inside the domain a collective runs at the link; across instances each of a group's ranks on an
    instance brings one network rail, capped at the link."""
    import numpy as np

    from aicap.sizing.train.step import Fabric, _group_bw

    fabric = Fabric(link_gbs=450.0, domain=8, node=8, network_gbs=50.0)
    link, net = 450e9, 50e9
    bw = _group_bw(np.array([8.0, 16.0, 16.0, 4.0]), np.array([1.0, 1.0, 8.0, 4.0]), fabric, link, net)
    assert list(bw) == [link, 8 * net, net, 2 * net]


def test_a_tpu_slice_keeps_its_ici_across_hosts(cat: Catalogue) -> None:
    """TPU hosts of one slice are joined by ICI (a v5p slice up to 6144 chips), not the data-centre network: an
    8-chip FSDP job over two v5p-8 hosts runs at nearly the 4-chip MFU (it once fell from 75% to 20% over DCN)."""
    from aicap.sizing.train.fabric import best_instance, fabric_of

    dev = cat.device("tpu-v5p")
    fab = fabric_of(dev, best_instance(dev, cat.instances.values()))
    assert dev.interconnect.slice_size == 6144 and fab.domain == fab.node == 6144 and fab.link_gbs == dev.interconnect.bw_gbps
    model = cat.model("llama-3.1-8b")
    four = run(cat, model, "tpu-v5p", TrainSetup(dp=4, fsdp="full", seq_len=4096))
    eight = run(cat, model, "tpu-v5p", TrainSetup(dp=8, fsdp="full", seq_len=4096))
    assert float(eight.tokens_per_s_per_device[0]) > 0.9 * float(four.tokens_per_s_per_device[0])
    h100 = cat.device("h100-sxm")  # a GPU's link still ends at its instance
    assert fabric_of(h100, best_instance(h100, cat.instances.values())).node == 8


def test_one_chip_tpu_vms_are_joined_by_the_network_not_a_slice(cat: Catalogue) -> None:
    from aicap.sizing.train.fabric import fabric_of, is_full_host

    dev = cat.device("tpu-v6e")
    one, eight = cat.instance("v6e-1"), cat.instance("v6e-8")
    assert not is_full_host(dev, one, cat.instances.values()) and is_full_host(dev, eight, cat.instances.values())
    assert fabric_of(dev, one, full_host=False).node == 1 and fabric_of(dev, eight).node == dev.interconnect.slice_size


def test_sliding_window_layers_attend_their_window(gpt: DecoderModel) -> None:
    # The attention term counted every layer as full causal attention: Mistral at 32K was charged 4.3x its attention.
    s, w = 32768, 4096
    full = shape_of(gpt)
    windowed = shape_of(gpt.model_copy(update={"sliding_window": w}))  # every layer windowed
    half = shape_of(gpt.model_copy(update={"sliding_window": w, "global_every": 2}))  # every second layer global
    assert float(full.attn_span(s)) == s and float(windowed.attn_span(s)) == pytest.approx(2 * w - w * w / s)
    assert float(half.attn_span(s)) == pytest.approx((s + 2 * w - w * w / s) / 2)
    assert float(windowed.attn_span(2048)) == 2048  # shorter than the window: full causal
    f = [float(flops_per_token(x, Grid.of([TrainSetup(seq_len=s, recompute="none")])).model[0]) for x in (full, windowed)]
    assert f[1] == pytest.approx(f[0] - 6 * gpt.num_layers * gpt.hidden_size * (s - (2 * w - w * w / s)))


def test_context_parallel_rings_each_tp_ranks_share_of_the_kv(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each TP rank holds kv_heads/tp of the KV: the ring moved the full width on every rank (8x at TP8).
    # On a TPU v5p slice both layouts ring over the same ICI, so the ring's time per rank is its bytes': an eighth at TP8.
    # (The raw ring time, before attention hides it: at 16K tokens attention hides all of it on either layout.)
    raw: list[RawStep] = []
    monkeypatch.setattr(step, "assemble", lambda r, eta, phi: (raw.append(r), ASSEMBLE(r, eta, phi))[1])
    model = cat.model("llama-3.1-8b")
    for tp in (1, 8):
        run(cat, model, "tpu-v5p", TrainSetup(tp=tp, cp=4, dp=1, seq_len=16384, global_batch_tokens=16384))
    ring = [float(r.cp_traffic[0]) for r in raw]
    assert ring[0] > 0.0 and ring[1] == pytest.approx(ring[0] / 8.0, rel=1e-9)


def test_expert_all_to_all_across_instances_goes_through_each_ranks_network_port(cat: Catalogue) -> None:
    # A ring crosses each node boundary once, so k ranks a node share k rails; an all-to-all sends every rank's
    # cross-node share through its own port: wide EP over p5 nodes was charged 400 GB/s a rank, not ~50.
    from aicap.sizing.train.fabric import fabric_of
    from aicap.sizing.train.step import _a2a_bw, _group_bw

    dev = cat.device("h100-sxm")
    fab = fabric_of(dev, cat.instance("p5.48xlarge"))
    import numpy as np

    link, net = 450e9, 50e9
    g = np.array([8.0, 64.0])
    ring, a2a = _group_bw(g, 1.0, fab, link, net), _a2a_bw(g, 1.0, fab, link, net)
    assert ring[0] == a2a[0] == link  # inside one instance: the link
    assert a2a[1] == pytest.approx(1 / ((7 / 63) / link + (56 / 63) / net)) and a2a[1] < ring[1] / 6


def test_ep_overlap_hides_that_share_of_the_all_to_all(cat: Catalogue) -> None:
    # DeepSeek-V3's DualPipe hides the all-to-all behind compute (its report, Sec. 3.2.1): a schedule aicap had no word for.
    model = cat.model("qwen3-30b-a3b")
    exposed = [float(run(cat, model, "h100-sxm", TrainSetup(dp=64, ep=64, seq_len=4096, ep_overlap=x)).step.expert_parallel[0])
               for x in (0.0, 0.75, 1.0)]  # fmt: skip
    assert exposed[0] > 0 and exposed[1] == pytest.approx(exposed[0] / 4) and exposed[2] == 0.0


def test_comm_sm_share_slows_only_the_compute_term(cat: Catalogue) -> None:
    # DeepSeek-V3 (report Sec. 3.2.2) kept 20 of the H800's 132 SMs for its all-to-all: the matmuls ran on 112.
    model = cat.model("qwen3-30b-a3b")
    base = run(cat, model, "h100-sxm", TrainSetup(dp=64, ep=64, seq_len=4096, recompute="none"))
    kept = run(cat, model, "h100-sxm", TrainSetup(dp=64, ep=64, seq_len=4096, recompute="none", comm_sm_share=20 / 132))
    assert float(kept.step.raw.matmul[0]) == pytest.approx(float(base.step.raw.matmul[0]) * 132 / 112)
    for term in ("expert_parallel", "optimizer", "pipeline_p2p"):
        assert float(getattr(kept.step, term)[0]) == pytest.approx(float(getattr(base.step, term)[0]))
    assert float(kept.step.raw.dp_traffic[0]) == pytest.approx(float(base.step.raw.dp_traffic[0]))
    assert float(kept.step.raw.memory_bound[0]) == pytest.approx(float(base.step.raw.memory_bound[0]))  # element-wise traffic
    # a longer compute hides as much of the data-parallel traffic or more
    assert float(kept.step.data_parallel_exposed[0]) <= float(base.step.data_parallel_exposed[0])
    assert float(kept.tokens_per_s_per_device[0]) < float(base.tokens_per_s_per_device[0])


def test_mtp_module_adds_a_block_a_projection_and_a_head_pass(cat: Catalogue) -> None:
    # DeepSeek-V3 Sec. 2.2: module k = RMSNorms, M_k (2h x h), one transformer block (an MoE block), the shared head.
    # Its checkpoint's module holds 11.5B unique parameters (README_WEIGHTS.md): the block and the projection.
    model = cat.model("deepseek-v3")
    shape = shape_of(model)
    assert shape.with_mtp(0) is shape
    mtp = shape.with_mtp(1)
    h, v = model.hidden_size, model.vocab_size
    assert (mtp.total - shape.total) / 1e9 == pytest.approx(11.5, rel=0.02)
    assert mtp.layers == shape.layers + 1 and mtp.moe_layers == shape.moe_layers + 1
    routed = shape.layer_experts / shape.num_experts * shape.experts_per_token
    block = shape.layer_moe_common + routed + 2 * h * h + 2 * h
    assert mtp.linear_active - shape.linear_active == pytest.approx(block + v * h)
    assert mtp.embedding == shape.embedding and mtp.head == shape.head  # shared with the model
    two = shape.with_mtp(2)
    assert two.linear_active - shape.linear_active == pytest.approx(2 * (mtp.linear_active - shape.linear_active))
    dense = shape_of(cat.model("llama-3.1-8b")).with_mtp(1)
    assert dense.moe_layers == 0 and dense.experts == 0


def test_mtp_depth_costs_its_flops_in_the_step(cat: Catalogue) -> None:
    model = cat.model("qwen3-30b-a3b")
    setup = TrainSetup(dp=8, seq_len=4096, recompute="none")
    base = run(cat, model, "h100-sxm", setup)
    mtp = run(cat, model, "h100-sxm", setup.model_copy(update={"mtp_depth": 1}))
    shape = shape_of(model)
    ratio = float(mtp.step.flops.hardware_linear[0] / base.step.flops.hardware_linear[0])
    assert ratio == pytest.approx(shape.with_mtp(1).linear_active / shape.linear_active)
    assert float(mtp.step.compute[0]) > float(base.step.compute[0])
    assert float(mtp.memory.weights[0]) > float(base.memory.weights[0])  # the module's parameters are trained too


def test_tensor_parallelism_splits_whole_query_groups(cat: Catalogue) -> None:
    """TP 16 on Llama-3.1-70B's 8 KV heads was costed (each head copied to two ranks); Megatron-Core refuses it."""
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.train.setup import check_against_model, kv_groups

    llama = cat.model("llama-3.1-70b")
    assert isinstance(llama, DecoderModel) and kv_groups(llama) == 8
    check_against_model(TrainSetup(tp=8), llama)
    with pytest.raises(InputError, match=r"^tp 16 does not divide llama-3\.1-70b's 8 key-value heads.*valid tp: 1, 2, 4, 8$"):
        check_against_model(TrainSetup(tp=16), llama)
    deepseek = cat.model("deepseek-v3")  # multi-head latent attention: one latent, no heads to split
    assert isinstance(deepseek, DecoderModel) and kv_groups(deepseek) == 0
    assert shape_of(llama).kv_groups == 8 and shape_of(deepseek).kv_groups == 0
