"""``--speculative`` on estimate, size and simulate, through the CLI."""

from __future__ import annotations

import pytest

ARGS = ("--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--weights-dtype", "fp8")


def test_estimate_names_the_drafter_and_its_published_acceptance(aicap) -> None:
    plain = aicap("estimate", *ARGS, "--batch", "4", "-f", "json").json()
    spec = aicap("estimate", *ARGS, "--batch", "4", "--speculative", "eagle", "-f", "json").json()
    assert plain["speculative"] is None
    s = spec["speculative"]
    assert s["method"] == "eagle" and s["draft_tokens"] == 5 and s["tokens_per_step"] == pytest.approx(3.61, rel=0.01)
    assert "Spec-Bench" in s["acceptance_source"]
    assert spec["tpot_s"] < 0.5 * plain["tpot_s"]
    table = aicap("estimate", *ARGS, "--batch", "4", "--speculative", "draft", "--draft-model", "llama-3.2-1b", "--acceptance", "0.7")
    assert table.code == 0 and "draft model llama-3.2-1b" in table.stdout


def test_simulate_decodes_faster_with_a_drafter(aicap) -> None:
    common = ("simulate", *ARGS, "--rate", "2", "--requests", "800", "-f", "json")
    plain, spec = aicap(*common).json(), aicap(*common, "--speculative", "eagle", "--acceptance", "0.8", "--draft-tokens", "2").json()
    assert spec["tpot_ms"]["p50"] < 0.7 * plain["tpot_ms"]["p50"]


def test_size_records_speculative_decoding_in_the_plan(aicap) -> None:
    plan = aicap("size", "--model", "llama-3.1-70b", "--rate", "10", "--tpot-ms", "20", "--ttft-ms", "2000", "--cloud", "aws",
                 "--hardware", "h100-sxm", "--speculative", "eagle", "--acceptance", "0.8", "--draft-tokens", "3",
                 "-f", "json").json()  # fmt: skip
    assert plan["inputs"]["workloads"][0]["speculative"] == {"method": "eagle", "draft_tokens": 3, "acceptance": 0.8}
    assert plan["workloads"][0]["speculative"].startswith("eagle k=3")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--speculative", "medusa"), "valid methods: draft, mtp, eagle, ngram"),
        (("--speculative", "draft", "--draft-model", "qwen3-8b", "--acceptance", "0.6"), "same tokenizer"),
        (("--acceptance", "0.6"), "need --speculative"),
        (("--speculative", "mtp", "--acceptance", "1.5"), "--acceptance 1.5"),
        (("--speculative", "mtp", "--draft-tokens", "0"), "--draft-tokens 0"),
        (("--speculative", "mtp", "--draft-model", "llama-3.2-1b"), "--draft-model is for --speculative draft"),
        # both missing options at once, by their flags (two runs, the second naming the fleet file's draft_model)
        (("--speculative", "draft"), "--speculative draft needs --draft-model and --acceptance: the drafting model"),
        (("--speculative", "draft", "--acceptance", "0.7"), "--speculative draft needs --draft-model: the drafting model"),
        (("--speculative", "draft", "--draft-model", "llama-3.2-1b"), "--speculative draft needs --acceptance: the per-token"),
        (
            (
                "--speculative",
                "mtp",
            ),
            "ships no multi-token-prediction module",
        ),  # Llama has none: the plan could not be launched
    ],
)
def test_bad_speculative_options_are_exit_2_with_one_line(aicap, extra: tuple[str, ...], needle: str) -> None:
    r = aicap("estimate", *ARGS, *extra)
    assert r.code == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_more_draft_tokens_than_the_published_figure_or_the_mtp_modules_is_flagged(aicap) -> None:
    # DeepSeek-V3's one MTP module chained 16 times at its published second-token acceptance gave 6.2 tokens a step,
    # silently; a plan on it said nothing either.
    r = aicap("estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--batch", "1", "--speculative", "mtp",
              "--draft-tokens", "3", "-f", "json")  # fmt: skip
    assert r.code == 0 and "measured at 1 draft token(s)" in r.stderr and "ships 1 MTP module(s)" in r.stderr
    assert "beyond its published evidence" not in aicap("estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8",
                                                        "--batch", "1", "--speculative", "mtp", "-f", "json").stderr  # fmt: skip
    r = aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "h100-sxm", "--cloud", "aws", "--speculative", "eagle",
              "--draft-tokens", "8", "-f", "json")  # fmt: skip
    assert r.code == 0 and any("measured at 5 draft token(s)" in w for w in r.json()["warnings"])


def test_mla_verify_steps_decode_absorbed_so_mtp_speeds_deepseek_up(aicap) -> None:  # type: ignore[no-untyped-def]
    # a verify step (k + 1 tokens a sequence) was costed as an MLA prefill, every cached context up-projected each step:
    # DeepSeek-V3 with MTP decoded at 104.8 ms a token, twice its 54.4 ms without speculation
    base = ("estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--batch", "64", "--input-tokens", "4096",
            "--output-tokens", "512", "-f", "json")  # fmt: skip
    plain, mtp = aicap(*base).json(), aicap(*base, "--speculative", "mtp").json()
    assert mtp["tpot_s"] < plain["tpot_s"]
