"""``aicap whatif`` through the CLI: JSON shape, table, errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ARGS = ("whatif", "--model", "llama-3.1-8b", "--rate", "20", "--input-tokens", "2000", "--output-tokens", "300", "--ttft-ms", "3000",
        "--tpot-ms", "60", "--precision", "bf16", "--hardware", "l4", "--cloud", "aws,gcp")  # fmt: skip
KEYS = {"name", "usd_per_month", "devices", "hardware", "ttft_ms", "tpot_ms", "memory_headroom_pct", "delta_usd_per_month", "quality_note",
        "quality_source", "assumption", "infeasible"}  # fmt: skip


def test_json_lists_the_baseline_and_each_alternative(aicap) -> None:
    doc = aicap(*ARGS, "--alternatives", "int4,spec-eagle", "--student", "llama-3.2-3b", "-f", "json").json()
    names = [a["name"] for a in doc["alternatives"]]
    assert names == ["baseline", "weights int4", "speculative eagle", "student llama-3.2-3b"]
    assert all(set(a) == KEYS for a in doc["alternatives"])
    assert all(a["delta_usd_per_month"] < 0 for a in doc["alternatives"][1:])


def test_the_table_names_sources_and_says_what_the_notes_are(aicap) -> None:
    r = aicap(*ARGS, "--alternatives", "fp8")
    assert r.code == 0 and "What if" in r.stdout and "not predictions for yours" in r.stdout and "Sources:" in r.stdout


def test_errors_are_one_line_exit_2(aicap) -> None:
    r = aicap(*ARGS, "--alternatives", "int3")
    assert r.code == 2 and "--alternatives 'int3'" in r.stderr and "kv-fp8" in r.stderr
    r = aicap(*ARGS, "--student", "qwen3-8b")  # the cause, not a catch-all list of every rule
    assert r.code == 2 and "changes no workload: 'llama-3.1-8b': qwen3-8b has a 151,936-token vocabulary" in r.stderr
    r = aicap(*ARGS, "--alternatives", "spec-mtp")
    assert r.code == 2 and "changes no workload: 'llama-3.1-8b': llama-3.1-8b ships no multi-token-prediction heads" in r.stderr
    doc = aicap(*ARGS, "--alternatives", "fp8,fp8", "-f", "json").json()  # a name given twice is sized once
    assert [a["name"] for a in doc["alternatives"]] == ["baseline", "weights fp8"]
    r = aicap(*ARGS, "--student", "no-such-model")
    assert r.code == 2 and "no-such-model" in r.stderr
    r = aicap(*ARGS, "--alternatives", "prune-80")
    assert r.code == 2 and "pruning 80% of llama-3.1-8b" in r.stderr and r.stderr.count("\n") == 1


def test_a_pruned_share_out_of_range_names_the_range(aicap) -> None:
    for name in ("prune-0", "prune-100"):
        r = aicap(*ARGS, "--alternatives", name)
        assert r.code == 2 and f"--alternatives '{name}': prune-N takes N from 1 to 99" in r.stderr


def test_sparse_and_pruned_rows_say_what_they_assume(aicap) -> None:
    r = aicap(*ARGS, "--alternatives", "sparse-2:4,prune-30")
    assert r.code == 0 and "Assumed: 2:4 sparse: l4 bf16: served dense" in " ".join(r.stdout.split())
    doc = aicap(*ARGS, "--alternatives", "sparse-2:4,prune-30", "-f", "json").json()
    sparse, pruned = doc["alternatives"][1:]
    assert sparse["usd_per_month"] == doc["alternatives"][0]["usd_per_month"] and pruned["delta_usd_per_month"] < 0


PARETO = ("size", "--model", "llama-3.1-70b", "--rate", "5", "--ttft-ms", "2000", "--tpot-ms", "40", "--cloud", "aws", "--pareto")


def test_size_pareto_json_and_table(aicap) -> None:
    doc = aicap(*PARETO, "-f", "json").json()
    keys = {"target_scale", "usd_per_month", "devices", "ttft_ms", "tpot_ms", "tokens_per_s_per_device", "tokens_per_s_per_user", "chosen"}
    assert doc["pareto"] and all(set(p) == keys for p in doc["pareto"])
    assert sum(p["chosen"] for p in doc["pareto"]) == 1
    table = aicap(*PARETO)
    assert table.code == 0 and "Pareto front" in table.stdout and "chosen" in table.stdout
    # CSV: one value a cell under the JSON's names (the last header was empty and the chosen row held the glyph '◀ chosen')
    rows = list(csv.DictReader(io.StringIO(aicap(*PARETO, "-f", "csv").stdout)))
    assert set(rows[0]) == keys and [r["chosen"] for r in rows] == [str(p["chosen"]).lower() for p in doc["pareto"]]
    assert [float(r["usd_per_month"]) for r in rows] == [p["usd_per_month"] for p in doc["pareto"]]


def test_size_pareto_plot_writes_a_picture(aicap, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "front.svg"
    r = aicap(*PARETO, "--plot", str(out))
    assert r.code == 0 and out.read_text().lstrip().startswith("<?xml")


def test_size_pareto_refuses_verify(aicap) -> None:
    r = aicap(*PARETO, "--verify")
    assert r.code == 2 and "--pareto" in r.stderr


def test_buy_vs_rent_json_and_errors(aicap) -> None:
    args = ("whatif", "--model", "llama-3.1-70b", "--rate", "5", "--ttft-ms", "2000", "--tpot-ms", "40", "--cloud", "aws", "--buy-vs-rent")
    doc = aicap(*args, "-f", "json").json()
    assert doc["rent_pricing"] == "on_demand" and doc["own_usd_per_month"] < doc["rent_usd_per_month"]
    assert doc["break_even_utilisation_pct"] == round(100 * doc["own_usd_per_month"] / doc["rent_usd_per_month"], 1)
    r = aicap(*args, "--pricing", "owned")
    assert r.code == 2 and "rental pricing model" in r.stderr
    assert doc["rent_over_profile_usd_per_month"] is None and doc["notes"] == []


def test_buy_vs_rent_of_hourly_demand_prices_renting_hour_by_hour_too(aicap) -> None:
    # The peak-sized rented fleet held all month ($12.8k) was the only rent figure, while aicap size plans the same
    # fleet hour by hour for $8.4k; owning must cover the peak, renting need not.
    fleet = str(ROOT / "examples" / "diurnal-chat.yaml")
    doc = aicap("whatif", fleet, "--buy-vs-rent", "-f", "json").json()
    periods = aicap("-q", "size", fleet, "--pricing", "on_demand", "-f", "json").json()
    assert doc["rent_over_profile_usd_per_month"] == pytest.approx(periods["totals"]["usd_per_month"], rel=1e-9)
    assert doc["own_usd_per_month"] < doc["rent_over_profile_usd_per_month"] < doc["rent_usd_per_month"]
    assert "sized at its peak hour for both" in doc["notes"][0]
    r = aicap("whatif", fleet, "--buy-vs-rent")
    assert "scaled hour by hour" in r.stdout and "aicap: note: the hourly demand of chat, code" in r.stderr


def test_whatif_pareto_json_table_and_plot(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = aicap(*ARGS, "--alternatives", "int4", "--pareto", "-f", "json").json()
    keys = {"target_scale", "usd_per_month", "devices", "ttft_ms", "tpot_ms", "tokens_per_s_per_device", "tokens_per_s_per_user", "chosen",
            "alternative", "on_front"}  # fmt: skip
    assert doc["pareto"] and all(set(p) == keys for p in doc["pareto"]) and doc["no_plan"] == {}
    assert {p["alternative"] for p in doc["pareto"]} == {"baseline", "weights int4"}
    r = aicap(*ARGS, "--alternatives", "int4", "--plot", str(tmp_path / "f.png"))
    assert r.code == 2 and "add --pareto" in r.stderr
    pytest.importorskip("matplotlib")
    out = tmp_path / "fronts.svg"
    r = aicap(*ARGS, "--alternatives", "int4", "--pareto", "--plot", str(out))
    assert r.code == 0 and out.read_text().lstrip().startswith("<?xml") and "weights int4" in out.read_text()


def test_a_draft_model_alternative_takes_the_given_acceptance(aicap) -> None:
    doc = aicap(*ARGS, "--alternatives", "spec-eagle", "--draft-model", "llama-3.2-1b", "--acceptance", "0.6", "-f", "json").json()
    _, eagle, draft = doc["alternatives"]
    assert draft["name"] == "speculative draft llama-3.2-1b" and draft["delta_usd_per_month"] < 0
    assert "acceptance 0.6" in eagle["quality_note"] and "acceptance 0.6" in draft["quality_note"]
    r = aicap(*ARGS, "--draft-model", "llama-3.2-1b")
    assert r.code == 2 and "give --acceptance" in r.stderr
    r = aicap(*ARGS, "--acceptance", "1.5")
    assert r.code == 2 and "between 0 and 1" in r.stderr
    # with nothing speculative to apply it to, it was ignored
    r = aicap(*ARGS, "--alternatives", "fp8", "--acceptance", "0.5")
    assert r.code == 2 and r.stdout == "" and "--acceptance 0.5 applies to speculative alternatives" in r.stderr


def test_default_alternatives_an_encoder_has_nothing_for_are_left_out(aicap) -> None:
    # The defaults include a KV-cache format and speculative decoding, which an embedding model has no use for: they are
    # left out with a note. Named on the command line, the same alternative is still an error (test above).
    r = aicap("whatif", "-m", "bge-large-en", "--rate", "5", "--input-tokens", "256", "--output-tokens", "1", "-f", "json")
    assert r.code == 0 and "left out KV cache fp8, speculative eagle" in r.stderr
    assert [a["name"] for a in r.json()["alternatives"]] == ["baseline", "weights fp8", "weights int4"]


def test_quality_notes_speak_for_every_model_and_unfitted_devices_are_named(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The fp8 and int4 notes spoke of the first workload's model alone; a baseline on a device with unfitted factors
    # was not flagged, as size flags it.
    f = tmp_path / "f.yaml"
    f.write_text("schema_version: 1\nworkloads:\n  - {name: a, model: llama-3.1-8b, requests_per_s: 2}\n"
                 "  - {name: b, model: gpt-oss-20b, requests_per_s: 2}\nconstraints: {hardware: [b200]}\n")  # fmt: skip
    r = aicap("-q", "whatif", str(f), "--alternatives", "int4", "-f", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    note = next(a["quality_note"] for a in doc["alternatives"] if a["name"] == "weights int4")
    assert note.startswith("llama-3.1-8b: ") and "; gpt-oss-20b: gpt-oss-20b is released in mxfp4" in note
    assert any(n.startswith("baseline: b200 efficiency factors are not fitted") for n in doc["notes"])


def test_whatif_csv_has_bare_figures(aicap) -> None:  # type: ignore[no-untyped-def]
    # the delta column carried the table's "+8,121"
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(aicap(*ARGS, "--alternatives", "fp8,int4", "-f", "csv").stdout)))
    doc = aicap(*ARGS, "--alternatives", "fp8,int4", "-f", "json").json()
    assert [r["alternative"] for r in rows] == [a["name"] for a in doc["alternatives"]]
    for r, a in zip(rows, doc["alternatives"], strict=True):
        assert float(r["usd_per_month"]) == a["usd_per_month"]
        assert r["delta_usd_per_month"] == ("" if a["delta_usd_per_month"] is None else str(a["delta_usd_per_month"]))


def test_an_alternative_named_twice_is_compared_once_and_said_so(aicap) -> None:  # type: ignore[no-untyped-def]
    # "fp8,fp8" printed one fp8 row without a word
    r = aicap(*ARGS, "--alternatives", "fp8,int4, fp8", "-f", "json")
    assert r.code == 0 and "--alternatives names fp8 more than once: each is compared once" in r.stderr
    assert [a["name"] for a in r.json()["alternatives"]] == [
        a["name"] for a in aicap(*ARGS, "--alternatives", "fp8,int4", "-f", "json").json()["alternatives"]
    ]
    assert "more than once" not in aicap(*ARGS, "--alternatives", "fp8,int4", "-f", "json").stderr


def test_an_empty_list_of_alternatives_is_a_usage_error(aicap) -> None:  # type: ignore[no-untyped-def]
    r = aicap("whatif", "--alternatives", " , ")  # it printed the baseline alone and a dangling "Sources:"
    assert r.code == 2 and r.stdout == "" and "--alternatives names no alternative" in r.stderr


def test_an_alternative_the_baseline_already_runs_and_fp4_without_fp4_cores_say_so(aicap) -> None:
    # The baseline sizes fp8 weights and an fp8 cache on an L40S: the "weights fp8" and "KV cache fp8" rows were its
    # copies, +0, without a word; nvfp4 on the L40S (Ada, no FP4 tensor cores) ran weight-only without saying so.
    args = ("whatif", "--model", "llama-3.1-8b", "--rate", "5", "--ttft-ms", "2000", "--tpot-ms", "50", "--cloud", "aws", "-f", "json")
    rows = {a["name"]: a for a in aicap(*args, "--alternatives", "fp8,kv-fp8,int4,nvfp4").json()["alternatives"]}
    base = rows["baseline"]
    for name in ("weights fp8", "KV cache fp8"):
        same = rows[name]["usd_per_month"] == base["usd_per_month"] and rows[name]["hardware"] == base["hardware"]
        assert same == (rows[name]["assumption"] or "").startswith("the baseline plan already runs this"), name
    assert rows["weights fp8"]["assumption"].startswith("the baseline plan already runs this")
    fp4 = rows["weights nvfp4"]
    assert fp4["hardware"] == "1× l40s" and "l40s nvfp4: weight-only, de-quantised to bf16" in fp4["assumption"]
    assert rows["weights int4"]["assumption"] is None or "already runs" not in rows["weights int4"]["assumption"]
