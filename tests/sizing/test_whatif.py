"""What-ifs: every alternative is a real plan, and each moves cost the way its technique must."""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue
from aicap.hardware_db.launch import quality_figures
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet
from aicap.sizing.plan.fleet_io import build_fleet
from aicap.sizing.plan.whatif import NAMED, Change, apply, named_change, whatif

# Llama-3.1-8B on L4 in bf16, bandwidth- and memory-bound at 20 req/s: every technique has room to save.
FLEET = {"model": "llama-3.1-8b", "rate": 20.0, "input_tokens": 2000, "output_tokens": 300, "ttft_ms": 3000.0, "tpot_ms": 60.0,
         "percentile": "p99", "precision": "bf16", "hardware": "l4", "cloud": "aws,gcp"}  # fmt: skip
CHEAPER = ("fp8", "int8", "int4", "kv-fp8", "kv-int8", "spec-eagle", "spec-ngram", "prune-30")


@pytest.fixture(scope="module")
def result(cat: Catalogue):  # type: ignore[no-untyped-def]
    changes = [named_change(n) for n in CHEAPER] + [Change("student llama-3.2-3b", "student", "llama-3.2-3b")]
    return whatif(build_fleet(**FLEET), cat, changes, quality_figures())  # type: ignore[arg-type]


def test_the_baseline_comes_first_and_every_alternative_is_a_plan(result) -> None:  # type: ignore[no-untyped-def]
    rows = result.alternatives
    assert rows[0].name == "baseline" and rows[0].delta_usd_per_month is None
    assert len(rows) == len(CHEAPER) + 2
    for r in rows:
        assert r.usd_per_month is not None and r.devices and r.hardware and r.tpot_ms is not None and r.tpot_ms <= 60.0


@pytest.mark.parametrize("name", [*(named_change(n).name for n in CHEAPER), "student llama-3.2-3b"])
def test_each_alternative_serves_the_same_demand_for_less(result, name: str) -> None:  # type: ignore[no-untyped-def]
    base = result.alternatives[0]
    alt = next(r for r in result.alternatives if r.name == name)
    assert alt.usd_per_month < base.usd_per_month
    assert alt.delta_usd_per_month == pytest.approx(alt.usd_per_month - base.usd_per_month, abs=0.01)


def test_smaller_weights_leave_more_memory_for_the_kv_cache(cat: Catalogue) -> None:
    # On one H100 a replica holds the whole model in every format, so the headroom compares like with like (on
    # L4s the baseline spreads its weights over four devices and fp8 over one: the layouts differ, not the formats).
    res = whatif(build_fleet(**{**FLEET, "hardware": "h100-sxm"}), cat, [named_change("fp8"), named_change("int8")],  # type: ignore[arg-type]
                 quality_figures())  # fmt: skip
    base, *alts = res.alternatives
    assert [a.name for a in alts] == ["weights fp8", "weights int8"]
    for alt in alts:
        assert alt.memory_headroom_pct is not None and base.memory_headroom_pct is not None
        assert alt.memory_headroom_pct > base.memory_headroom_pct


def test_quality_notes_are_published_figures_for_the_closest_model(cat: Catalogue) -> None:
    fleet = build_fleet(**{**FLEET, "model": "llama-3.1-70b", "hardware": "h100-sxm"})  # type: ignore[arg-type]
    res = whatif(fleet, cat, [named_change("fp8"), named_change("spec-eagle")], quality_figures())
    fp8, spec = res.alternatives[1], res.alternatives[2]
    assert fp8.quality_note.startswith("published for Meta-Llama-3.1-70B") and fp8.quality_source and "huggingface.co" in fp8.quality_source
    assert spec.quality_note.startswith("lossless") and spec.quality_source and "Spec-Bench" in spec.quality_source


def test_a_model_released_quantised_is_the_reference_for_its_own_format(cat: Catalogue) -> None:
    # gpt-oss is released in MXFP4: its published scores are for those weights, so the MXFP4 row is the release (the
    # baseline's plan) and another format is a re-quantised copy; a figure for another model against its unquantised
    # original would compare with weights gpt-oss was never released in.
    fleet = build_fleet(**{**FLEET, "model": "gpt-oss-120b", "rate": 1.0, "precision": None, "hardware": "h100-sxm"})  # type: ignore[arg-type]
    res = whatif(fleet, cat, [named_change("mxfp4"), named_change("int4"), named_change("kv-fp8")], quality_figures())
    base, own, other, kv = res.alternatives
    assert own.quality_note.startswith("the format gpt-oss-120b is released in") and own.quality_source is None
    assert own.usd_per_month == base.usd_per_month
    assert "released in mxfp4" in other.quality_note and "re-quantised copy" in other.quality_note and other.quality_source is None
    assert kv.quality_note.startswith("published for")  # the KV cache is not part of the release


def test_an_alternative_no_device_can_run_is_a_row_without_a_plan(cat: Catalogue) -> None:
    fleet = build_fleet(**{**FLEET, "rate": 2.0, "hardware": "t4", "tpot_ms": None})  # type: ignore[arg-type]
    res = whatif(fleet, cat, [named_change("fp8")], quality_figures())
    assert res.alternatives[0].usd_per_month is not None
    assert res.alternatives[1].usd_per_month is None and res.alternatives[1].infeasible


def test_bad_alternatives_are_input_errors(cat: Catalogue) -> None:
    with pytest.raises(InputError, match="valid: " + ", ".join(NAMED[:3])):
        named_change("int3")
    with pytest.raises(InputError, match="changes no workload"):
        apply(build_fleet(**FLEET), Change("student qwen3-8b", "student", "qwen3-8b"), cat)  # type: ignore[arg-type]


def test_pruning_names_the_parameters_it_leaves(result) -> None:  # type: ignore[no-untyped-def]
    alt = next(r for r in result.alternatives if r.name == "pruned 30%")
    assert alt.assumption and "5.62 B parameters" in alt.assumption and alt.quality_note.startswith("published for Llama-3.1-8B ->")


def test_sparsity_saves_only_where_the_engine_has_sparse_kernels_for_the_device(cat: Catalogue) -> None:
    # A TPOT target of 20 ms: decode-bound, where faster linear layers shorten every step (at 60 ms the prefill
    # rounds' spread sets the capacity and a 1.2x faster matmul saves no whole device; at 25 ms four devices carry
    # the rate with or without it, at 20 ms five without and four with).
    fleet = {**FLEET, "hardware": "h100-sxm", "engine": "vllm", "tpot_ms": 20.0}
    hopper = whatif(build_fleet(**fleet), cat, [named_change("sparse-2:4")], quality_figures())  # type: ignore[arg-type]
    base, alt = hopper.alternatives
    assert alt.usd_per_month is not None and base.usd_per_month is not None and alt.usd_per_month < base.usd_per_month
    assert alt.memory_headroom_pct is not None and base.memory_headroom_pct is not None
    assert alt.memory_headroom_pct > base.memory_headroom_pct and alt.assumption and "sparse kernels" in alt.assumption
    ampere = whatif(build_fleet(**{**fleet, "hardware": "a100-80gb-sxm"}), cat, [named_change("sparse-2:4")], quality_figures())  # type: ignore[arg-type]
    base, alt = ampere.alternatives
    assert alt.usd_per_month == base.usd_per_month and alt.ttft_ms == base.ttft_ms
    assert alt.assumption and "served dense" in alt.assumption and "--engine vllm on nvidia-hopper" in alt.assumption


def test_named_compression_alternatives_parse() -> None:
    assert named_change("sparse-2:4").kind == "sparse"
    prune = named_change("prune-25")
    assert prune.kind == "prune" and prune.value == 0.25 and prune.name == "pruned 25%"
    with pytest.raises(InputError, match="prune-N"):
        named_change("prune-0")


def test_whatif_fronts_mark_the_plans_no_alternative_beats(cat: Catalogue) -> None:
    from aicap.sizing.plan.pareto import _dominated, whatif_pareto

    changes = [named_change("int4"), named_change("spec-eagle")]
    fronts = whatif_pareto(build_fleet(**FLEET), cat, changes, factors=(0.5, 1.0, 2.0))  # type: ignore[arg-type]
    rows = whatif(build_fleet(**FLEET), cat, changes, quality_figures()).alternatives  # type: ignore[arg-type]
    assert {p.alternative for p in fronts.pareto} == {"baseline", "weights int4", "speculative eagle"} and not fronts.no_plan
    for row in rows:
        chosen = [p for p in fronts.pareto if p.alternative == row.name and p.chosen]
        assert len(chosen) == 1 and chosen[0].usd_per_month == row.usd_per_month
    for p in fronts.pareto:
        assert p.on_front == (not any(_dominated(p, q) for q in fronts.pareto))
    assert any(p.on_front for p in fronts.pareto if p.alternative != "baseline")
    # An alternative that no plan can meet is named, not dropped silently.
    none = whatif_pareto(build_fleet(**{**FLEET, "rate": 2.0, "hardware": "t4", "tpot_ms": None}), cat, [named_change("fp8")],  # type: ignore[arg-type]
                         factors=(1.0,))  # fmt: skip
    assert "weights fp8" in none.no_plan and all(p.alternative == "baseline" for p in none.pareto)


def test_a_fleet_with_hourly_profiles_and_several_pricing_models_says_what_whatif_compares(cat: Catalogue) -> None:
    # whatif sizes static plans: it says so where the fleet asks for more (it once priced the peak silently).
    day = [2.0] * 12 + [8.0] * 12
    fleet = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": day, "input_tokens": 500,
                                        "output_tokens": 100, "slo": {"ttft_ms": 2000, "tpot_ms": 60}}],
                         "constraints": {"clouds": ["gcp"], "pricing": ["on_demand", "spot"]}})  # fmt: skip
    got = whatif(fleet, cat, [], quality_figures())
    assert len(got.notes) == 2 and "peak hour" in got.notes[0] and "chat" in got.notes[0] and "on_demand, the first" in got.notes[1]
    plain = Fleet.model_validate({"workloads": [{"name": "chat", "model": "llama-3.1-8b", "requests_per_s": 8.0, "input_tokens": 500,
                                        "output_tokens": 100, "slo": {"ttft_ms": 2000, "tpot_ms": 60}}],
                         "constraints": {"clouds": ["gcp"]}})  # fmt: skip
    peak = whatif(plain, cat, [], quality_figures())
    assert peak.notes == [] and peak.alternatives[0].usd_per_month == got.alternatives[0].usd_per_month  # sized at the peak, 8 req/s


def test_spec_mtp_changes_only_models_that_ship_mtp_heads(cat: Catalogue) -> None:
    # MTP once went to every decoder: a Llama in the fleet aborted the whole comparison.
    wl = [{"name": n, "model": m, "requests_per_s": 2.0, "input_tokens": 500, "output_tokens": 100, "slo": {"ttft_ms": 2000, "tpot_ms": 60}}
          for n, m in (("llama", "llama-3.1-8b"), ("qwen", "qwen3.5-9b"))]  # fmt: skip
    fleet = Fleet.model_validate({"workloads": wl, "constraints": {"clouds": ["gcp"]}})
    changed, _ = apply(fleet, named_change("spec-mtp"), cat)
    assert [w.speculative is not None for w in changed.workloads] == [False, True]
    only_llama = Fleet.model_validate({"workloads": wl[:1], "constraints": {"clouds": ["gcp"]}})
    with pytest.raises(InputError, match=r"'llama': llama-3\.1-8b ships no multi-token-prediction heads"):
        apply(only_llama, named_change("spec-mtp"), cat)
    got = whatif(fleet, cat, [named_change("spec-mtp")], quality_figures())
    assert got.alternatives[1].usd_per_month is not None and "acceptance" in (got.alternatives[1].quality_note or "")


def test_a_quality_figure_is_only_cited_for_a_model_of_its_family() -> None:
    # Llama-3.1-70B's OpenLLM fp8 figure was cited for an embedding model and for Qwen2.5
    from aicap.hardware_db.launch import quality_figures

    q = quality_figures()
    fig = q.best(("fp8",), "llama-3.1-70b")
    assert fig is not None and "Llama-3.1-70B" in fig.model
    assert q.best(("fp8",), "bge-large-en") is None
    assert q.best(("fp8",), "llama-3.1-8b") is not None
