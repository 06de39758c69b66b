"""The "did you mean" hints of unknown ids (aicap.sizing.core.errors)."""

from __future__ import annotations

from aicap.sizing.core.errors import UnknownIdError, close_matches, did_you_mean

IDS = ["h100-sxm", "h200-sxm", "v100-sxm", "l4", "sglang", "vllm"]


def test_a_match_ignoring_case_comes_first() -> None:
    assert close_matches("H100-SXM", IDS) == ["h100-sxm"]
    assert close_matches("SGLang", IDS) == ["sglang"]
    assert close_matches("vLLM", IDS) == ["vllm"]


def test_near_misses_are_still_found_and_far_ones_are_not() -> None:
    assert close_matches("h100-sx", IDS)[0] == "h100-sxm"
    assert close_matches("zzzz", IDS) == []
    assert did_you_mean("zzzz", IDS) == ""
    assert did_you_mean("L4", IDS) == "did you mean l4? "


def test_at_most_three_and_no_repeats() -> None:
    got = close_matches("H100-sxm", IDS)
    assert got == ["h100-sxm"]
    got = close_matches("x100-sxm", IDS)
    assert len(got) == len(set(got)) == 3


def test_an_unknown_id_error_carries_the_hint() -> None:
    assert str(UnknownIdError("hardware", "L4", IDS)).startswith("unknown hardware 'L4': did you mean l4? valid hardware ids: ")
    assert close_matches("x" * 300, IDS) == []


def test_a_familys_short_name_suggests_its_members() -> None:
    # 'a100' suggested a10g alone (nearest by letters), not the three A100s it begins
    from aicap.sizing.core.errors import close_matches

    ids = ["a100-40gb-sxm", "a100-80gb-pcie", "a100-80gb-sxm", "a10g", "h100-sxm", "l4"]
    assert close_matches("a100", ids) == ["a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie"]  # the shortest completion first
    assert close_matches("A100-80GB-SXM", ids) == ["a100-80gb-sxm"]  # equal but for case: that one alone
    assert close_matches("h100-sx", ids) == ["h100-sxm"]
    assert close_matches("a10", ids) == ["a10g", "a100-40gb-sxm", "a100-80gb-sxm"]
    assert close_matches("x", ids) == []  # one letter begins too much to mean anything
