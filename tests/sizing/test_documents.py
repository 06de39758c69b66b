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
