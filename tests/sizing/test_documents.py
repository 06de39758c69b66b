"""User documents fail with one line naming the file, the line, the field and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicap.sizing.core.documents import load_yaml
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.hf_config import load_model_file

GOOD = """kind: decoder
id: tiny
name: Tiny
family: llama
source: test
hidden_size: 256
num_layers: 4
num_heads: 8
intermediate_size: 1024
vocab_size: 1000
max_context: 2048
"""


def test_malformed_yaml_gives_line(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(InputError, match=r"m\.yaml:\d+: malformed YAML"):
        load_yaml(p)


def test_model_yaml_loads(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(GOOD)
    assert load_model_file(p).num_layers == 4


def test_negative_number_names_field_and_line(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(GOOD.replace("num_layers: 4", "num_layers: -4"))
    with pytest.raises(InputError, match=r"m\.yaml:7: num_layers: Input should be greater than 0, got -4"):
        load_model_file(p)


def test_missing_field_is_named(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(GOOD.replace("vocab_size: 1000\n", ""))
    with pytest.raises(InputError, match=r"vocab_size: required field is missing"):
        load_model_file(p)


def test_unknown_field_is_flagged(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(GOOD + "hiden_size: 3\n")
    with pytest.raises(InputError, match=r"m\.yaml:12: hiden_size: unknown field"):
        load_model_file(p)


def test_line_of_value_finds_the_quoted_value_as_a_value_or_a_key() -> None:
    from aicap.sizing.core.documents import line_of_value

    text = "a: 1\nname: x\nmodel: llama-9  # typo\nlist: [h1, 'h2']\nmap: {k9: 2}\n"
    assert line_of_value(text, "unknown model 'llama-9': did you mean") == 3
    assert line_of_value(text, "workload 'x': unknown device 'h2'") == 4  # the value after "unknown", not the first quote
    assert line_of_value(text, "unknown instance 'k9'") == 5
    assert line_of_value(text, "unknown model 'llama'") is None  # a prefix of a value is not the value
    assert line_of_value(text, "no quote here") is None


def test_a_shown_model_document_names_the_line_under_architecture(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aicap.cli.app import app

    shown = CliRunner().invoke(app, ["-q", "models", "show", "llama-3.1-8b", "-f", "yaml"]).stdout
    lines = shown.splitlines()
    k = next(n for n, line in enumerate(lines) if line.strip().startswith("num_layers:"))
    lines[k] = "  num_layers: -3"
    f = tmp_path / "m.yaml"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"m.yaml:{k + 1}: architecture.num_layers: Input should be greater than 0, got -3"):
        load_model_file(f)


def test_yaml_aicap_writes_it_reads_back_unchanged() -> None:
    from aicap.sizing.core.documents import dump_yaml

    doc = {"name": "1e3", "version": "123456e78901", "hash": "5e86725", "n": 1000.0, "small": 1e-5, "s": "abc"}
    text = dump_yaml(doc)
    assert "'1e3'" in text and "'123456e78901'" in text
    assert load_yaml(Path("x.yaml"), text) == doc


def test_yaml_numbers_and_hash_like_text() -> None:
    got = load_yaml(Path("x.yaml"), "v: [1e-5, 5E1, 2.5e3, 1.0e+5, 1_000e2, -2e2, 5e86725, '1e3', 1.5, 1.5e0, 1000.0]\n")
    assert got == {"v": [1e-5, 50, 2500, 100000, 100000, -200, "5e86725", "1e3", 1.5, 1.5, 1000.0]}
    # a whole number in exponent form is an int, dot or not (input_tokens: 1.5e3 was refused as "got 1500.0"); plain decimals
    # and fractions stay floats
    assert [type(x) for x in got["v"]] == [float, int, int, int, int, int, str, str, float, float, float]


@pytest.mark.parametrize(("text", "line"), [
    ("a: 1\nb: 2\na: 3\n", 3),
    ("- {name: a, r: 5, r: 500}\n", 1),  # on one line too
    ("x:\n  y: 1\n  'y': 2\n", 3),
])  # fmt: skip
def test_yaml_duplicate_keys_are_refused(text: str, line: int) -> None:
    with pytest.raises(InputError, match=rf"x.yaml:{line}: malformed YAML: duplicate key"):
        load_yaml(Path("x.yaml"), text)


def test_yaml_merge_keys_may_be_overridden_at_any_depth() -> None:
    nested = "outer:\n  inner: &b\n    <<: {x: 1}\n    x: 2\nc:\n  <<: *b\n"
    import yaml

    assert load_yaml(Path("x.yaml"), nested) == yaml.safe_load(nested)  # as PyYAML merges, no false duplicate
    assert load_yaml(Path("x.yaml"), "a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n") == {"a": {"b": 1, "c": 2}, "d": {"b": 3, "c": 2}}


def test_json_duplicate_keys_are_refused() -> None:
    from aicap.sizing.core.documents import load_json

    with pytest.raises(InputError, match=r"a\.json: malformed JSON: duplicate key 'c' in one object"):
        load_json(Path("a.json"), '{"a": 1, "b": {"c": 1, "c": 2}}')


def test_line_of_value_prefers_the_key_the_message_names_and_skips_comments() -> None:
    from aicap.sizing.core.documents import line_of_value

    text = "workloads:\n  - name: mistral-7b\n    model: llama-3.1-8b\n    engine: 8b\n# model: llama-9\n    x: llama-9\n"
    assert line_of_value(text, "workload 'a': unknown engine '8b'") == 4  # not the end of llama-3.1-8b
    assert line_of_value(text, "unknown model 'llama-9'") == 6  # the comment line is skipped
    assert line_of_value("  - name: m7\n    model: m7\n", "unknown model 'm7'") == 2  # under `model:` first
    assert line_of_value("hardware:\n  - h100-sxx\n", "unknown hardware 'h100-sxx'") == 2
