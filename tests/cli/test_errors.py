"""Bad input never crashes, never succeeds absurdly, never leaks a file: one regression test per guarantee.

Each test drives the real CLI (or the one library function that owns the guarantee) with one kind of
bad input and checks the exit code, that stderr is exactly one ``aicap: ...`` line, and what it says.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from aicap.cli import app as app_module
from aicap.cli.app import app
from aicap.cli.commands import catalog_cmds
from aicap.cli.files import write_atomic
from aicap.sizing.core.documents import MAX_DEPTH, load_document, load_json, load_yaml, read_text
from aicap.sizing.core.errors import ExitCode, InputError, UnknownIdError
from aicap.sizing.core.hf_config import checkpoint_bytes, from_hf_config, load_model_file

ROOT = Path(__file__).resolve().parents[2]
LLAMA = {
    "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192, "torch_dtype": "bfloat16",
}  # fmt: skip
DEVICE = """devices:
  - id: my-gpu
    name: My GPU
    vendor: nvidia
    kind: gpu
    family: nvidia-hopper
    memory_gib: 80
    memory_bw_gbps: 3000
    peak_tflops: {bf16: 900}
    interconnect: {kind: nvlink4, bw_gbps: 450, domain_size: 8}
    sources: [my benchmark]
"""


def one_error_line(r: Any, code: int = 2) -> str:
    """Assert exit ``code``, empty stdout and exactly one ``aicap: error:`` line on stderr; return it."""
    assert r.code == code, (r.code, r.stdout[:500], r.stderr[:500])
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aicap: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return str(lines[0])


# --- internal errors, interrupts, and every command guarded ------------------------------------


def test_unexpected_exception_is_exit_4_with_one_line(aicap, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise ValueError("something impossible happened\nsecond line")

    monkeypatch.setattr(catalog_cmds, "catalogue", boom)
    r = aicap("models", "list")
    assert r.code == ExitCode.INTERNAL_ERROR == 4
    assert r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("aicap: internal error: ValueError: something impossible happened second line")
    assert "this is a bug in aicap; please report it" in lines[0]


def test_aicap_debug_reraises_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise ValueError("debug me")

    monkeypatch.setattr(catalog_cmds, "catalogue", boom)
    r = CliRunner().invoke(app, ["models", "list"], env={"AICAP_DEBUG": "1"})
    assert isinstance(r.exception, ValueError) and str(r.exception) == "debug me"


def test_keyboard_interrupt_is_exit_130_with_one_line(aicap, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog_cmds, "catalogue", interrupted)
    r = aicap("hardware", "list")
    assert r.code == 130 and r.stderr == "aicap: interrupted\n"


def test_main_reports_an_exception_outside_any_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken_app(**_: object) -> None:
        raise RuntimeError("while parsing options")

    monkeypatch.setattr(app_module, "app", broken_app)
    monkeypatch.delenv("AICAP_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        app_module.main()
    assert exit_info.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("aicap: internal error: RuntimeError: while parsing options") and err.count("\n") == 1


def test_root_help_documents_exit_code_4(aicap) -> None:
    r = aicap("--help")
    assert r.code == 0 and "4 internal error (a bug: please report it)" in " ".join(r.stdout.split())


def _commands(t: typer.Typer) -> list[Any]:
    found = [c.callback for c in t.registered_commands]
    for group in t.registered_groups:
        assert group.typer_instance is not None
        found += _commands(group.typer_instance)
    return found


def test_every_command_is_guarded() -> None:
    callbacks = _commands(app)
    assert len(callbacks) >= 14
    unguarded = [getattr(c, "__name__", c) for c in callbacks if not getattr(c, "__aicap_guarded__", False)]
    assert unguarded == []


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["instances", "list", "--max-price", "nan"], "--max-price nan"),
        (["instances", "list", "--max-price", "inf"], "--max-price inf"),
        (["estimate", "-m", "llama-3-8b", "--hardware", "h100-sxm", "--tpot-ms", "nan"], "--tpot-ms nan"),
        (["size", "--model", "llama-3-8b", "--rate", "inf"], "--rate inf"),
        (["check", "plan.json", "--budget-monthly", "nan"], "--budget-monthly nan"),
    ],
)
def test_non_finite_number_options_are_refused(aicap, args: list[str], flag: str) -> None:
    assert f"{flag}: must be a finite number" in one_error_line(aicap(*args))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["models", "list", "--kind", "decoders"], "--kind 'decoders': valid choices: decoder, encoder, generic"),
        (["models", "list", "--family", "lama"], "--family 'lama': valid choices:"),
        (["hardware", "list", "--vendor", "nvdia"], "--vendor 'nvdia': valid choices:"),
        (["instances", "list", "--region", "mars-1"], "--region 'mars-1': valid choices:"),
    ],
)
def test_filters_that_match_nothing_are_errors_not_empty_lists(aicap, args: list[str], needle: str) -> None:
    assert needle in one_error_line(aicap(*args))


# --- catalogue overlays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("memory_gib: 80", "memory_gib: .nan"), "x.yaml:7: malformed YAML: '.nan' is not a finite number"),
        (("bf16: 900", "bf16: .inf"), "x.yaml:9: malformed YAML: '.inf' is not a finite number"),
        (("memory_gib: 80", "memory_gib: true"), "devices[0].memory_gib: expected a number, not true/false"),
        (("domain_size: 8", "domain_size: false"), "devices[0].interconnect.domain_size: expected a number, not true/false"),
        (("memory_gib: 80", 'memory_gib: "80"'), "x.yaml:7: devices[0].memory_gib: expected a number, not text (write it without quotes)"),
        (("memory_bw_gbps: 3000", "memory_bw_gbps: !!float abc"), "x.yaml:8: malformed YAML: !!float value 'abc' is not valid"),
        (("memory_bw_gbps: 3000", "memory_bw_gbps: 1" + "0" * 400), "x.yaml:8: malformed YAML: integer"),
    ],
)
def test_bad_number_in_an_overlay_names_file_and_line(aicap, tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    (tmp_path / "x.yaml").write_text(DEVICE.replace(*edit))
    assert needle in one_error_line(aicap("--catalog", str(tmp_path), "hardware", "list", "-f", "json"))


def test_infinite_peak_and_bandwidth_are_refused_by_the_spec_itself() -> None:
    from aicap.sizing.core.specs import DeviceSpec

    doc = load_yaml(Path("x.yaml"), DEVICE)["devices"][0]
    for field, value in (("memory_bw_gbps", float("inf")), ("peak_tflops", {"bf16": float("inf")}), ("memory_gib", float("nan"))):
        with pytest.raises(ValueError, match="finite number"):
            DeviceSpec.model_validate({**doc, field: value})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("efficiency:\n  - {family: nvidia-hopper, compute: 1.5, memory: 0.5, source: m}\n", "efficiency[0].compute: Input should be less"),
        ("efficiency:\n  - {family: nvidia-hopper, compute: 0.5, memory: 0.5, source: m, memory_by_dtype: {int4: 2}}\n",
         "efficiency[0].memory_by_dtype.int4: Input should be less than or equal to 1"),
        ("efficiency:\n  - {family: nvidia-hopper, compute: 0.5, memory: 0.5, source: m, memory_by_dtype: {int5: 0.5}}\n",
         "unknown dtype 'int5'"),
        ("instances:\n  - {cloud: aws, name: x, family: p5, device: h100-sxm, devices: 8, region: r, source: s,\n"
         "     price_date: 2024-02-30, price_usd_per_hour: {on_demand: 1}}\n", "x.yaml:3: malformed YAML: !!timestamp value '2024-02-30'"),
        ("1: a\nb: c\n", "unknown section 1"),
        ("schema_version: 1\n# devices\nhardware:\n  - {id: x}\n", "x.yaml:3: unknown section 'hardware'; valid sections: models,"),
        ("devices: {a: 1}\n", "'devices' must be a list"),
    ],
)  # fmt: skip
def test_bad_overlay_entries_exit_2(aicap, tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "x.yaml").write_text(text)
    assert needle in one_error_line(aicap("--catalog", str(tmp_path), "instances", "list", "-f", "json"))


def test_bad_utf8_overlay_exit_2(aicap, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_bytes(b"devices: []\n# caf\xe9\n")
    assert "x.yaml:2: not UTF-8 text (byte 0xe9 at offset 17)" in one_error_line(aicap("--catalog", str(tmp_path), "hardware", "list"))


def test_unreadable_overlay_directory_exit_2(aicap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "overlays" / "locked"
    locked.mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # as an unprivileged user sees a chmod 000 directory (root would not)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    line = one_error_line(aicap("--catalog", str(tmp_path / "overlays"), "hardware", "list"))
    assert f"catalogue overlay {locked}: cannot read directory: Permission denied" in line


def test_overlay_of_a_huge_tree_is_refused_not_walked(aicap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aicap.hardware_db import loader

    monkeypatch.setattr(loader, "MAX_OVERLAY_ENTRIES", 5)
    for i in range(10):
        (tmp_path / f"notes{i}.txt").write_text("x")
    assert "more than 5 files and folders below it" in one_error_line(aicap("--catalog", str(tmp_path), "hardware", "list"))


def test_overlay_that_does_not_exist_exit_2(aicap, tmp_path: Path) -> None:
    assert "catalogue overlay" in one_error_line(aicap("--catalog", str(tmp_path / "nope"), "hardware", "list"))


# --- documents: size, depth, tags, aliases, JSON ----------------------------------------------


def test_17_mib_document_is_refused_before_parsing(aicap, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (17 * 2**20) + b"\n")
    line = one_error_line(aicap("size", str(big)))
    assert "big.yaml: file is 17 MiB, over the 16 MiB limit for an input document" in line
    with pytest.raises(InputError, match="16 MiB limit"):
        read_text(big)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_10000_deep_nesting_is_an_input_error(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"deep{suffix}"
    p.write_text("[" * 10_000 + "]" * 10_000 if suffix == ".yaml" else '{"a": ' * 10_000 + "1" + "}" * 10_000)
    with pytest.raises(InputError, match=f"nested too deeply \\(more than {MAX_DEPTH} levels"):
        load_document(p)


def test_deep_block_nesting_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("".join(" " * i + f"k{i}:\n" for i in range(300)))
    with pytest.raises(InputError, match=r"deep\.yaml:\d+: nested too deeply"):
        load_yaml(p)


def test_deep_fleet_exit_2(aicap, tmp_path: Path) -> None:
    p = tmp_path / "fleet.yaml"
    p.write_text("workloads: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert "nested too deeply" in one_error_line(aicap("size", str(p)))


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="aliases expand the document to more than"):
        load_yaml(p)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("!!float abc", "!!float value 'abc' is not valid"),
        ("!!int 12abc", "!!int value '12abc' is not valid"),
        ("!!timestamp x", "!!timestamp value 'x' is not valid"),
        ("!!bool maybe", "!!bool value 'maybe' is not valid"),
        ("!!binary '@@@'", "!!binary values are not used"),
        ("!!python/object:os.system x", "could not determine a constructor"),
        (".nan", "'.nan' is not a finite number"),
        ("-.inf", "'-.inf' is not a finite number"),
    ],
)
def test_bad_yaml_tags_and_values_give_file_and_line(tmp_path: Path, value: str, needle: str) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(f"a: 1\nb: {value}\n")
    with pytest.raises(InputError, match=r"t\.yaml:2: malformed YAML: ") as info:
        load_yaml(p)
    assert needle in str(info.value)


def test_bad_tag_in_a_fleet_exit_2(aicap, tmp_path: Path) -> None:
    p = tmp_path / "fleet.yaml"
    p.write_text((ROOT / "examples" / "chat-service.yaml").read_text().replace("requests_per_s: 25", "requests_per_s: !!float abc"))
    assert "fleet.yaml:6: malformed YAML: !!float value 'abc' is not valid" in one_error_line(aicap("size", str(p)))


def test_json_plan_number_2e3_is_a_number(tmp_path: Path) -> None:
    for name, text in (("plan.json", '{"totals": {"usd_per_month": 2e3}}'), ("plan.txt", '  {"totals": {"usd_per_month": 2e3}}')):
        p = tmp_path / name
        p.write_text(text)
        assert load_document(p) == {"totals": {"usd_per_month": 2000.0}}
    p = tmp_path / "plan.yaml"
    p.write_text("totals: {usd_per_month: 2e3}\n")
    assert load_document(p) == {"totals": {"usd_per_month": 2000}}  # exponent forms are numbers, as in YAML 1.2 (a whole one an int)


def test_yaml_flow_mapping_not_named_json_still_reads_as_yaml(tmp_path: Path) -> None:
    p = tmp_path / "fleet.yaml"
    p.write_text("{workloads: [{name: a}]}\n")
    assert load_document(p) == {"workloads": [{"name": "a"}]}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"a": 1,\n "b": NaN}', r"p\.json:2: 'NaN' is not a finite number"),
        ('{"a": -Infinity}', r"p\.json:1: '-Infinity' is not a finite number"),
        ('{"a": 1e999}', r"p\.json:1: '1e999' is not a finite number"),
        ('{"a": [1,\n 2,,]}', r"p\.json:2: malformed JSON"),
        ('{"a": 1,\n "b": "cut off', r"p\.json:2: malformed JSON: Unterminated string starting at column 7$"),  # once ended "at"
        ('{"a": ' + "9" * 5000 + "}", r"p\.json: malformed JSON: an integer literal is too long"),
    ],
)
def test_strict_json(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "p.json"
    p.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_json(p)


# --- no file leaks -----------------------------------------------------------------------------

SECRET = "root:x:0:0:root:/root:/bin/bash\n" + "".join(
    f"user{i}:x:{1000 + i}:{1000 + i}:SECRET-{i}:/home/u{i}:/bin/sh\n" for i in range(50)
)


@pytest.mark.parametrize("command", ["estimate", "size", "models"])
def test_a_non_model_file_as_model_is_not_echoed(aicap, tmp_path: Path, command: str) -> None:
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    args = {
        "estimate": ["estimate", "--model", str(secret), "--hardware", "h100-sxm"],
        "size": ["size", "--model", str(secret), "--rate", "1"],
        "models": ["models", "show", str(secret)],
    }[command]
    line = one_error_line(aicap(*args))
    assert "SECRET-" not in line and "user1:" not in line
    assert "not a model document" in line


def test_etc_passwd_as_model_is_not_echoed(aicap) -> None:
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd here")
    line = one_error_line(aicap("estimate", "--model", str(passwd), "--hardware", "h100-sxm"))
    assert len(line) < 300
    for row in passwd.read_text().splitlines()[1:]:
        assert row not in line


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("fleet.yaml", (ROOT / "examples" / "chat-service.yaml").read_text(), "not a model document (this looks like a fleet file)"),
        ("weights.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
        ("m.json", "[1, 2, 3]", "expected a JSON object"),
    ],
)
def test_other_files_as_model(aicap, tmp_path: Path, name: str, content: str | bytes, needle: str) -> None:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert needle in one_error_line(aicap("models", "show", str(p)))


def test_long_values_are_quoted_as_short_excerpts(aicap, tmp_path: Path) -> None:
    line = one_error_line(aicap("hardware", "show", "h" * 10_000))
    assert "'hhhh" in line and "…" in line and len(line) < 2000
    assert len(str(UnknownIdError("model", "m\n" * 5000, ["a"]))) < 200
    p = tmp_path / "m.yaml"
    p.write_text("kind: decoder\nid: t\nname: " + "N" * 50 + "\nfamily: f\nsource: s\nhidden_size: '" + "9x" * 5000 + "'\n")
    with pytest.raises(InputError) as info:
        load_model_file(p)
    assert "hidden_size" in str(info.value) and "…" in str(info.value) and len(str(info.value)) < 300


# --- config.json and safetensors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"hidden_size": 16}, "hidden_size (16) is smaller than num_attention_heads (32)"),
        ({"hidden_size": 4100}, "hidden_size (4100) is not divisible by num_attention_heads (32)"),
        ({"hidden_size": -4096}, "hidden_size: expected a positive integer, got -4096"),
        ({"hidden_size": 0}, "hidden_size: expected a positive integer, got 0"),
        ({"num_key_value_heads": 0}, "num_key_value_heads: expected a positive integer, got 0"),
        ({"num_key_value_heads": 64}, "num_key_value_heads (64) exceeds num_attention_heads (32)"),
        ({"num_key_value_heads": 5}, "num_attention_heads (32) is not a multiple of num_key_value_heads (5)"),
        ({"intermediate_size": 0}, "intermediate_size: expected a positive integer, got 0"),
        ({"vocab_size": 0}, "vocab_size: expected a positive integer, got 0"),
        ({"num_hidden_layers": True}, "num_hidden_layers: expected an integer, got True"),
        ({"num_hidden_layers": "32"}, "num_hidden_layers: expected an integer, got '32'"),
        ({"head_dim": 0}, "head_dim: expected a positive integer, got 0"),
        ({"tie_word_embeddings": "no"}, "tie_word_embeddings: expected true or false, got 'no'"),
        ({"model_type": ["llama"]}, "unsupported model_type ['llama']"),
    ],
)
def test_inconsistent_config_json_is_an_error_with_the_reason(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(InputError) as info:
        from_hf_config({**LLAMA, **change}, source="cfg/config.json")
    assert str(info.value).startswith("cfg/config.json: ") and needle in str(info.value)


def test_config_json_nan_exit_2(aicap, tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({**LLAMA, "rope_theta": float("nan")}))
    assert "'NaN' is not a finite number" in one_error_line(aicap("models", "show", str(p)))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"kind": "decoder", "hidden_size": 4, "num_heads": 8}, "hidden_size (4) is smaller than num_heads (8)"),
        ({"kind": "decoder", "hidden_size": 100, "num_heads": 3}, "hidden_size (100) is not divisible by num_heads (3)"),
        ({"kind": "decoder", "num_kv_heads": 16}, "num_kv_heads (16) must not exceed num_heads (8)"),
        ({"kind": "decoder", "num_layers": True}, "num_layers: expected a number, not true/false"),
        ({"kind": "decoder", "num_layers": "32"}, "num_layers: expected a number, not text"),
        ({"kind": "decoder", "num_layers": "nan"}, "num_layers: Input should be a valid integer"),  # unquoted nan: not "remove quotes"
        ({"kind": "decoder", "moe": {"num_experts": "8", "experts_per_token": 2, "expert_intermediate_size": 64}},
         "moe.num_experts: expected a number, not text"),
        ({"kind": "decoder", "moe": {"num_experts": 8, "experts_per_token": 2, "expert_intermediate_size": 64, "dense_layers": 9}},
         "moe.dense_layers (9) must not exceed num_layers (4)"),
        ({"kind": "encoder", "intermediate_size": 0}, "intermediate_size: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_model_spec_shapes_must_agree(tmp_path: Path, spec: dict[str, Any], needle: str) -> None:
    base = {"id": "t", "name": "T", "family": "f", "source": "s", "hidden_size": 256, "num_layers": 4, "num_heads": 8,
            "intermediate_size": 1024, "vocab_size": 1000, "max_context": 2048}  # fmt: skip
    p = tmp_path / "m.json.yaml"
    p.write_text(json.dumps({**base, **spec}))
    with pytest.raises(InputError, match=r"m\.json\.yaml:1: ") as info:
        load_model_file(p)
    assert needle in str(info.value)


def _safetensors(folder: Path, header: Any, length: int | None = None) -> None:
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw)


@pytest.mark.parametrize(
    ("header", "length", "needle"),
    [
        ({"w": {"dtype": "BF16", "shape": [4, "8"]}}, None, "tensor 'w': shape: expected a list of non-negative integers"),
        ({"w": {"dtype": "BF16", "shape": [4, -8]}}, None, "tensor 'w': shape: expected a list of non-negative integers"),
        ({"w": {"dtype": "BF16", "shape": [True]}}, None, "tensor 'w': shape: expected a list of non-negative integers"),
        ({"w": {"dtype": 7, "shape": [4]}}, None, "tensor 'w': dtype: unknown 7"),
        ({"w": [1, 2]}, None, "tensor 'w': expected an object with 'dtype' and 'shape'"),
        ([1, 2], None, "expected a JSON object of tensors"),
        ({"w": {"dtype": "BF16", "shape": [4]}}, 2**64 - 1, "safetensors header length 18446744073709551615 is over the 16 MiB limit"),
        ({"w": {"dtype": "BF16", "shape": [4]}}, 10_000, "truncated safetensors header"),
        ({"w": {"dtype": "BF16", "shape": [2**40, 2**40]}}, None, "more than 2**50 elements"),
    ],
)
def test_bad_safetensors_headers(tmp_path: Path, header: Any, length: int | None, needle: str) -> None:
    _safetensors(tmp_path, header, length)
    with pytest.raises(InputError) as info:
        checkpoint_bytes(tmp_path)
    assert needle in str(info.value)


@pytest.mark.parametrize("total", ['"lots"', "-5", "true", "1e300"])
def test_bad_index_total_size(tmp_path: Path, total: str) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(f'{{"metadata": {{"total_size": {total}}}}}')
    with pytest.raises(InputError, match=r"metadata\.total_size: expected a positive number of bytes"):
        checkpoint_bytes(tmp_path)


# --- case files (validate / calibrate) ---------------------------------------------------------

CASE = """- id: c1
  model: llama-3-8b
  hardware: h100-sxm
  kind: single_stream
  devices: 1
  weights_dtype: bf16
  metrics: {single_stream_tok_s: 100}
"""


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("devices: 1", "devices: true"), "cases.yaml:5: cases[0].devices: expected a number, not true/false"),
        (("devices: 1", "devices: -2"), "cases.yaml:5: cases[0].devices: Input should be greater than 0"),
        (("devices: 1", "devices: [1]"), "cases.yaml:5: cases[0].devices: Input should be a valid integer"),
        (("model: llama-3-8b", "model: 42"), "cases.yaml:2: cases[0].model: Input should be a valid string, got 42"),
        (("kind: single_stream", "kind: [x]"), "cases.yaml:4: cases[0].kind: Input should be 'offline_throughput'"),
        (("single_stream_tok_s: 100", "single_stream_tok_s: .nan"), "cases.yaml:7: malformed YAML: '.nan' is not a finite number"),
        (("single_stream_tok_s: 100", "single_stream_tok_s: abc"), "cases[0].metrics.single_stream_tok_s: Input should be a valid number"),
        (("single_stream_tok_s: 100", "tok_per_s: 1"), "cases[0].metrics.tok_per_s: not a valid key: Input should be 'output_tok_s_total'"),
        (("metrics: {single_stream_tok_s: 100}", "metrics: [1, 2]"), "cases.yaml:7: cases[0].metrics: Input should be a valid dictionary"),
        (("weights_dtype: bf16", "weights_dtype: bf17"), "cases[0].weights_dtype: Input should be 'fp32'"),
        (("id: c1", "id: !!binary aGk="), "!!binary values are not used"),
    ],
)
def test_bad_case_files_exit_2_with_file_line_and_field(aicap, tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    p = tmp_path / "cases.yaml"
    p.write_text(CASE.replace(*edit))
    assert needle in one_error_line(aicap("validate", str(p), "-f", "json"))


def test_good_case_file_scores(aicap, tmp_path: Path) -> None:
    p = tmp_path / "cases.yaml"
    p.write_text(CASE)
    r = aicap("validate", str(p), "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"][0]["metric"] == "single_stream_tok_s"


@pytest.mark.parametrize(
    ("csv", "needle"),
    [
        ("id,model,hardware,kind,devices,metric,value\nc1,llama-3-8b,h100-sxm,single_stream,two,single_stream_tok_s,100\n",
         "cases.csv:2: devices: Input should be a valid integer"),
        ("id,model,hardware,kind,metric,value\nc1,llama-3-8b,h100-sxm,single_stream,single_stream_tok_s,nan\n",
         "cases.csv:2: metrics.single_stream_tok_s: Input should be a finite number"),
        ("id,model,hardware,kind,metric,value\nc1,llama-3-8b,h100-sxm,single_stream,single_stream_tok_s\n", "fewer fields than the header"),
        ("model,hardware,kind,metric,value\nllama-3-8b,h100-sxm,single_stream,single_stream_tok_s,1\n", "the header lacks 'id'"),
        ("id,model,hardware,kind,metric,value\nc1,llama-3-8b,h100-sxm,single_stream,single_stream_tok_s,1,extra\n", "more fields than"),
    ],
)  # fmt: skip
def test_bad_csv_cases_exit_2(aicap, tmp_path: Path, csv: str, needle: str) -> None:
    p = tmp_path / "cases.csv"
    p.write_text(csv)
    assert needle in one_error_line(aicap("validate", str(p)))


# --- write_atomic -----------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_atomic_keeps_permission_bits(tmp_path: Path) -> None:
    p = tmp_path / "plan.json"
    p.write_text("old")
    p.chmod(0o640)
    write_atomic(p, "new")
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640


def test_write_atomic_new_file_is_0644_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.json", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_write_atomic_writes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "plan.json"
    target.write_text("old")
    link = tmp_path / "plan.json"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "real") == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_write_atomic_removes_its_temp_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    p = tmp_path / "plan.json"
    p.write_text("old")

    def failing_replace(src: Any, dst: Any) -> None:
        raise error

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt if error is KeyboardInterrupt else InputError):
        write_atomic(p, "new")
    assert p.read_text() == "old" and _leftovers(tmp_path) == []


def test_write_atomic_into_a_directory_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        write_atomic(tmp_path, "x")
    with pytest.raises(InputError, match="cannot write"):
        write_atomic(tmp_path / "missing" / "plan.json", "x")


def test_write_atomic_where_the_folder_takes_no_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that refuses the temporary file (a read-only folder, /proc): an existing file is written in place, as
    ``echo > file`` would; a new one is refused naming the folder (``-o /proc/version`` had said "No such file or directory")."""
    p = tmp_path / "plan.json"
    p.write_text("old")

    def refused(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    write_atomic(p, "new")
    assert p.read_text() == "new" and _leftovers(tmp_path) == []
    with pytest.raises(InputError, match=r"new\.json: cannot write: cannot create a file in .* \(Permission denied\)"):
        write_atomic(tmp_path / "new.json", "x")

    def full(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)  # a full disk: the old file is not truncated to try in place
    with pytest.raises(InputError, match=r"plan\.json: cannot write: cannot create a file in .* \(No space left on device\)"):
        write_atomic(p, "newer")
    assert p.read_text() == "new"


def test_write_atomic_to_a_device_writes_it_without_replacing_it() -> None:
    devnull = Path(os.devnull)
    if not devnull.exists():
        pytest.skip("no null device")
    before = devnull.stat()
    write_atomic(devnull, "discarded")
    after = devnull.stat()
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)


# --- bounded counts, too-small rates, advice that names what binds, one line on exit 2 -----------


@pytest.mark.parametrize("flag", ["--devices", "--tp", "--pp"])
def test_huge_device_counts_are_refused_before_the_layout_search(aicap, flag: str) -> None:
    import time

    from aicap.sizing.core.deployment import MAX_DEVICES

    t0 = time.perf_counter()
    line = one_error_line(aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", flag, "1000000000", "-f", "json"))
    assert time.perf_counter() - t0 < 10
    assert line == (f"aicap: error: {flag} 1000000000: at most {MAX_DEVICES:,} devices (the largest deployment aicap "
                    f"estimates); give a count between 1 and {MAX_DEVICES:,}")  # fmt: skip


def test_the_largest_device_count_is_estimated_quickly(aicap) -> None:
    import time

    from aicap.sizing.core.deployment import MAX_DEVICES

    t0 = time.perf_counter()
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", str(MAX_DEVICES), "-f", "json")
    assert r.code == 0, r.stderr
    assert time.perf_counter() - t0 < 20
    doc = r.json()
    assert doc["devices"] == doc["tp"] * doc["pp"] * doc["replicas"] <= MAX_DEVICES and doc["fits"]


def test_layout_candidates_grow_with_layers_not_devices(cat) -> None:
    from aicap.sizing.serve.estimate import EstimateRequest, candidate_layouts

    dev = cat.device("h100-sxm")
    req = EstimateRequest(model=cat.model("llama-3.1-8b"), device=dev, efficiency=cat.efficiency_for(dev), runtime=cat.runtime_spec)
    few, many = candidate_layouts(req, 256), candidate_layouts(req, 10**9)
    assert few == many and all(pp <= 32 for _, pp in many)


def test_rate_below_the_minimum_is_an_input_error_not_a_time_out(aicap) -> None:
    from aicap.sizing.core.fleet import MIN_REQUESTS_PER_S

    line = one_error_line(aicap("size", "--model", "llama-3.1-8b", "--rate", "1e-300", "-f", "json"))
    head, _, reason = line.partition(": below the minimum of ")
    assert head == "aicap: error: --rate 1e-300"
    assert reason.startswith(f"{MIN_REQUESTS_PER_S:g} requests/s (about 26 requests a month)") and "time limit" not in line


@pytest.mark.parametrize(
    ("traffic", "needle"),
    [
        ("requests_per_s: 1.0e-7", "fleet.yaml:5: workloads[0].requests_per_s: below the minimum of 1e-05 requests/s"),
        ("tokens_per_s: 0.001", "fleet.yaml:3: workloads[0]: tokens_per_s 0.001 at 256 output tokens per request is 3.91e-06 "
                                "requests/s, below the minimum of 1e-05 requests/s"),
    ],
)  # fmt: skip
def test_fleet_rate_below_the_minimum_names_file_line_and_field(aicap, tmp_path: Path, traffic: str, needle: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"schema_version: 1\nworkloads:\n  - name: chat\n    model: llama-3-8b\n    {traffic}\n    output_tokens: 256\n")
    line = one_error_line(aicap("size", str(fleet), "-f", "json"))
    assert needle in line and line.endswith("it would size an empty plan" + (", got 1e-07" if "requests_per_s" in traffic else ""))


@pytest.mark.parametrize(
    ("traffic", "needle"),
    [
        ("requests_per_s: 1.0e+308", "fleet.yaml:5: workloads[0].requests_per_s: above the maximum of 1,000,000,000 requests/s"),
        ("requests_per_s: [" + ", ".join(["1.0e+12"] * 24) + "]", "workloads[0].requests_per_s: the profile's peak: above the maximum"),
        ("tokens_per_s: 1.0e+308", "fleet.yaml:3: workloads[0]: tokens_per_s 1e+308 at 256 output tokens per request is 3.91e+305 "
                                   "requests/s, above the maximum of 1,000,000,000 requests/s"),
    ],
)  # fmt: skip
def test_a_rate_past_a_billion_requests_a_second_is_an_input_error_not_an_overflow(aicap, tmp_path: Path, traffic: str,
                                                                                    needle: str) -> None:  # fmt: skip
    # 1e308 requests/s overflowed the replica counts: numpy warnings, then "internal error: OverflowError", exit 4.
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"schema_version: 1\nworkloads:\n  - name: chat\n    model: llama-3-8b\n    {traffic}\n    output_tokens: 256\n")
    line = one_error_line(aicap("size", str(fleet), "-f", "json"))
    assert needle in line and "unit slip" in line
    flag = one_error_line(aicap("size", "--model", "llama-3.1-8b", "--rate", "1e308", "-f", "json"))
    assert flag.startswith("aicap: error: --rate 1e+308: above the maximum of 1,000,000,000 requests/s")


def test_the_minimum_rate_itself_sizes_a_real_plan(aicap) -> None:
    from aicap.sizing.core.fleet import MIN_REQUESTS_PER_S

    r = aicap("size", "--model", "llama-3-8b", "--rate", repr(MIN_REQUESTS_PER_S), "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["totals"]["instances"] >= 1


def _advice(aicap, *args: str) -> tuple[dict[str, Any], str]:
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", *args, "-f", "json")
    assert r.code == 3, r.stderr
    doc = r.json()
    assert not doc["fits"]
    assert r.stderr.strip().splitlines()[-1] == f"aicap: error: llama-3.1-8b on h100-sxm: {doc['advice']}"
    return doc, doc["advice"].removeprefix("does not fit: ")


def _gib_pairs(advice: str) -> list[tuple[float, float]]:
    """Every ``A GiB > B GiB`` comparison the advice states, as numbers."""

    num = r"([\d,]+\.\d+) GiB"
    return [(float(a.replace(",", "")), float(b.replace(",", ""))) for a, b in re.findall(num + r" > " + num, advice)]


def test_huge_batch_advice_names_the_activations_not_the_weights(aicap) -> None:
    doc, advice = _advice(aicap, "--batch", "100000000", "--input-tokens", "1", "--output-tokens", "1")
    mem = doc["memory_gib"]
    assert mem["weights"] + mem["overhead"] < mem["capacity"] < mem["activations"]
    assert advice.startswith("the activations (prefill workspace and logits) bind: at batch 100,000,000 × 2 tokens, activations 47,780.")
    assert "weights 15.0 GiB per device" not in advice
    assert f"lower the batch to at most {doc['max_batch_at_context']:,} (the most that fit at this context)" in advice
    ((need, free),) = _gib_pairs(advice)
    assert need > free == pytest.approx(mem["capacity"] - mem["weights"] - mem["overhead"], abs=0.1)


def test_long_context_advice_names_the_kv_cache(aicap) -> None:
    doc, advice = _advice(aicap, "--batch", "3000", "--input-tokens", "1000", "--output-tokens", "1000")
    assert doc["memory_gib"]["kv_cache"] > doc["memory_gib"]["activations"]
    assert advice.startswith("the KV cache binds: at batch 3,000 × 2,000 tokens, KV cache 732.")
    assert f"lower the batch to at most {doc['max_batch_at_context']:,}" in advice and "--kv-dtype fp8" in advice
    assert all(a > b for a, b in _gib_pairs(advice))


def test_batch_one_advice_never_says_lower_the_batch(aicap) -> None:
    r = aicap("estimate", "--model", "llama-3.1-8b", "--hardware", "l4", "--batch", "1", "--input-tokens", "100000", "--output-tokens",
              "1", "-f", "json")  # fmt: skip
    assert r.code == 3
    advice = r.json()["advice"]
    assert advice.startswith("does not fit: the KV cache binds:") and "lower the batch" not in advice
    assert f"shorten requests to at most {r.json()['max_context_at_batch']:,} tokens" in advice and "TP=2" in advice


def test_weights_advice_only_when_the_weights_alone_do_not_fit(aicap) -> None:
    r = aicap("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "1", "--batch", "1", "-f", "json")
    assert r.code == 3
    doc = r.json()
    assert doc["memory_gib"]["weights"] > doc["memory_gib"]["capacity"]
    assert doc["advice"].startswith("does not fit: weights 131.4 GiB per device + overhead 1.0 GiB = 132.4 GiB > 72.0 GiB usable")
    assert "try TP=2 or fp8" in doc["advice"] and "KV cache binds" not in doc["advice"]


def test_advice_numbers_never_contradict_the_verdict(cat) -> None:
    from aicap.sizing.core.deployment import Deployment
    from aicap.sizing.serve.estimate import advise

    dev = cat.device("h100-sxm")
    dep = Deployment(cat.model("llama-3.1-8b"), dev, cat.efficiency_for(dev), cat.runtime_spec)
    cases = [  # (weights, kv, activations): each just over the 72.0 GiB capacity
        (71.04, 0.0, 0.0), (50.0, 21.04, 0.0), (50.0, 0.02, 21.03), (10.0, 30.0, 31.04),
    ]  # fmt: skip
    for w, kv, act in cases:
        mem = {"weights": w, "kv_cache": kv, "activations": act, "overhead": 1.0, "capacity": 72.0}
        msg = advise(dep, mem, batch=8, context=2048, max_batch=4, max_context=1024)
        pairs = _gib_pairs(msg)
        assert pairs and all(a > b for a, b in pairs), msg
        assert msg.startswith("weights") == (w + 1.0 > 72.0), msg


def test_guarded_holds_notes_back_until_the_command_ends() -> None:
    from aicap.cli.state import guarded, info
    from aicap.sizing.core.errors import InfeasibleError

    demo = typer.Typer()

    @demo.command()
    @guarded
    def go(fail: str = "") -> None:
        info("aicap: a note")
        if fail == "input":
            raise InputError("--x 1: bad")
        if fail == "infeasible":
            raise InfeasibleError("nothing fits")
        typer.echo("result")

    runner = CliRunner()
    ok, bad, none = (runner.invoke(demo, ["--fail", f]) for f in ("", "input", "infeasible"))
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, "result\n", "aicap: a note\n")
    assert (bad.exit_code, bad.stdout, bad.stderr) == (2, "", "aicap: error: --x 1: bad\n")
    assert (none.exit_code, none.stderr) == (3, "aicap: a note\naicap: error: nothing fits\n")


def test_size_output_to_a_directory_is_one_line_and_no_note(aicap) -> None:
    assert one_error_line(aicap("size", "-o", "/", "-f", "json")) == "aicap: error: --output /: is a directory; give a file name"


def test_size_output_that_cannot_be_written_is_refused_before_sizing(aicap, tmp_path: Path) -> None:
    r = aicap("size", "--model", "llama-3-8b", "--rate", "1", "-o", str(tmp_path / "missing" / "plan.json"), "-f", "json")
    line = one_error_line(r)
    assert line.startswith(f"aicap: error: --output {tmp_path / 'missing' / 'plan.json'}: the folder ")
    assert line.endswith("missing does not exist")
    assert r.stdout == ""  # no plan was sized and printed before the refusal


def test_size_output_under_a_file_says_so(aicap, tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{}")
    line = one_error_line(aicap("size", "-o", str(tmp_path / "plan.json" / "x.json"), "-f", "json"))
    assert line.endswith("plan.json is a file, not a folder")


def test_size_output_suffix_picks_yaml_whatever_its_case(aicap, tmp_path: Path) -> None:
    out = tmp_path / "plan.YAML"
    r = aicap("size", "--model", "llama-3-8b", "--rate", "1", "-o", str(out), "-f", "json")
    assert r.code == 0, r.stderr
    text = out.read_text()
    assert not text.lstrip().startswith("{") and "schema_version:" in text


def test_size_notes_still_follow_a_success(aicap, tmp_path: Path) -> None:
    r = aicap("size", "-o", str(tmp_path / "plan.json"), "-f", "json")
    assert r.code == 0 and r.json()["totals"]["instances"] >= 1
    notes = r.stderr.strip().splitlines()
    assert notes[0].startswith("aicap: no fleet given; sizing the built-in example")
    assert notes[-1] == f"aicap: wrote plan to {tmp_path / 'plan.json'}"


INSTANCE = """instances:
  - cloud: aws
    name: big.metal
    family: big
    device: h100-sxm
    devices: {devices}
    region: us-east-1
    price_usd_per_hour: {{on_demand: 100.0}}
    price_date: 2025-01-01
    source: test
"""


def test_overlay_instance_with_a_billion_devices_is_refused(aicap, tmp_path: Path) -> None:
    from aicap.sizing.core.specs.instance import MAX_DEVICES_PER_INSTANCE

    (tmp_path / "x.yaml").write_text(INSTANCE.format(devices=1_000_000_000))
    line = one_error_line(aicap("--catalog", str(tmp_path), "instances", "list", "-f", "json"))
    assert line == (f"aicap: error: {tmp_path / 'x.yaml'}:6: instances[0].devices: at most {MAX_DEVICES_PER_INSTANCE} devices per "
                    "instance (accelerators, TPU chips or CPU sockets); a larger count is a pod or a fleet, not one instance, "
                    "got 1000000000")  # fmt: skip


def test_overlay_instance_at_the_device_cap_is_accepted(aicap, tmp_path: Path) -> None:
    from aicap.sizing.core.specs.instance import MAX_DEVICES_PER_INSTANCE

    (tmp_path / "x.yaml").write_text(INSTANCE.format(devices=MAX_DEVICES_PER_INSTANCE))
    r = aicap("--catalog", str(tmp_path), "instances", "list", "-f", "json")
    assert r.code == 0, r.stderr
    assert [i["devices"] for i in r.json() if i["name"] == "big.metal"] == [MAX_DEVICES_PER_INSTANCE]


def test_catalogue_instances_stay_under_the_device_cap(cat) -> None:
    from aicap.sizing.core.specs.instance import MAX_DEVICES_PER_INSTANCE

    assert max(i.devices for i in cat.instances.values()) <= MAX_DEVICES_PER_INSTANCE


# --- Found by the issue-9 audit of 2026-12-01 -------------------------------------------------------------


def test_latency_objective_with_no_candidate_to_re_evaluate_sizes(aicap) -> None:
    # A (model, format) group with no feasible row used to crash re-evaluating an empty set (exit 4).
    r = aicap("size", str(ROOT / "examples" / "chat-service.yaml"), "--budget", "200000", "--objective", "latency", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["objective"] == "latency"


@pytest.fixture(scope="module")
def plan_doc() -> dict[str, Any]:
    r = CliRunner().invoke(app, ["-q", "size", "-f", "json"])
    assert r.exit_code == 0
    return dict(json.loads(r.stdout))


@pytest.mark.parametrize(("path", "value", "field"), [
    (("totals", "usd_per_month"), True, "totals.usd_per_month"),
    (("instances", 0, "count"), True, "instances[0].count"),
    (("hours_per_month",), 1e300, "hours_per_month"),
    (("totals", "usd_per_month"), 1.7e308, "totals.usd_per_month"),
])  # fmt: skip
def test_plans_refuse_booleans_and_absurd_figures(aicap, tmp_path: Path, plan_doc: dict[str, Any], path: tuple[Any, ...], value: Any,
                                                  field: str) -> None:  # fmt: skip
    doc = json.loads(json.dumps(plan_doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(plan_doc))
    for args in (("check", str(bad), "--budget-monthly", "100"), ("diff", str(good), str(bad), "-f", "json")):
        r = aicap(*args)
        assert r.code == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and field in r.stderr and r.stdout == ""


def test_a_month_is_one_to_744_hours(aicap, tmp_path: Path) -> None:
    fleet = tmp_path / "f.yaml"
    fleet.write_text("workloads:\n  - {name: a, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 100, output_tokens: 10,\n"
                     "     slo: {ttft_ms: 2000, tpot_ms: 100}}\nconstraints: {hours_per_month: 1.0e-9}\n")  # fmt: skip
    r = aicap("size", str(fleet))
    assert r.code == 2 and "hours_per_month" in r.stderr


@pytest.mark.parametrize(("limits", "field"), [
    ("allowed_clouds: {value: [awz]}", "allowed_clouds"),
    ("max_usd_per_month: {value: -1}", "max_usd_per_month"),
    ("max_ttft_ms: {value: -5}", "max_ttft_ms"),
    ("max_devices: {value: {h100-sxm: -2}}", "max_devices"),
])  # fmt: skip
def test_policy_limits_that_can_never_pass_are_input_errors(aicap, tmp_path: Path, plan_doc: dict[str, Any], limits: str,
                                                            field: str) -> None:  # fmt: skip
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(plan_doc))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"limits:\n  {limits}\n")
    r = aicap("check", str(plan), "--policy", str(policy))
    assert r.code == 2 and field in r.stderr and r.stderr.count("\n") == 1


def test_calibrate_skips_a_family_whose_cases_cannot_be_predicted(aicap, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- id: typo\n  kind: offline_throughput\n  model: llama-2-7bb\n  hardware: a100-80gb-sxm\n  devices: 1\n  tp: 1\n  pp: 1\n"
        "  weights_dtype: fp16\n  kv_dtype: fp16\n  input_tokens: 128\n  output_tokens: 128\n  framework: TensorRT-LLM\n"
        "  source_url: https://example.org\n  metrics: {output_tok_s_total: 5272.39}\n"
    )
    r = aicap("calibrate", str(cases), "-f", "json", "-o", str(tmp_path / "out.yaml"))
    assert r.code == 2 and r.stdout == "" and not (tmp_path / "out.yaml").exists()
    # the misspelt id is named at its line (it was "no case can be predicted (unknown device or model ids, ...)")
    assert f"{cases}:3: unknown model 'llama-2-7bb': did you mean llama-2-7b" in r.stderr and r.stderr.count("\n") == 1


_HEADER = "id,model,hardware,devices,tp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"


@pytest.mark.parametrize(("row", "why"), [
    ("r1,llama-3.1-405b,l4,1,1,bf16,bf16,single_stream,128,128,1,single_stream_tok_s,150",
     "skipped: llama-3.1-405b on l4: does not fit: weights 756.0 GiB"),  # was predicted (0.267 tok/s) and fitted on
    ("r1,bert-base,t4,1,1,fp16,fp16,single_stream,128,128,1,single_stream_tok_s,150",
     "skipped: bert-base is an encoder model: it generates no tokens, so single_stream_tok_s does not apply to it"),
])  # fmt: skip
def test_cases_that_cannot_run_are_skipped_by_validate_and_never_fitted(aicap, tmp_path: Path, row: str, why: str) -> None:
    # A layout that does not fit predicted a number anyway, and calibrate moved the whole Ada family's memory factor to
    # 0.98 on it; an encoder was scored on tokens it never generates.
    cases = tmp_path / "mine.csv"
    cases.write_text(_HEADER + row + "\n")
    r = aicap("validate", str(cases), "-f", "json")
    # exit 2 prints its one line and nothing else (the table of skipped rows was printed first): the line says why
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert f"no case could be scored: its one case was skipped; case 'r1': {why.removeprefix('skipped: ')}" in r.stderr
    out = tmp_path / "out.yaml"
    cal = aicap("calibrate", str(cases), "-o", str(out))
    assert cal.code == 2 and "no case can be predicted" in cal.stderr and not out.exists()
    fine = tmp_path / "fine.csv"  # beside a case that runs: exit 0, the other one listed as skipped
    fine.write_text(_HEADER + row + "\n" + "r2,llama-3.1-8b,h100-sxm,1,1,bf16,bf16,single_stream,128,128,1,single_stream_tok_s,150\n")
    ok = aicap("validate", str(fine), "-f", "json")
    assert ok.code == 0
    skipped = next(x for x in ok.json()["rows"] if x["case"] == "r1")
    assert skipped["predicted"] is None and skipped["note"].startswith(why), skipped


def test_a_fleet_of_more_than_2000_workloads_is_refused_before_sizing(aicap, tmp_path: Path) -> None:
    from aicap.sizing.core.fleet import MAX_WORKLOADS

    one = "  - {name: w%d, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 100, output_tokens: 10, slo: {ttft_ms: 2000}}\n"
    fleet = tmp_path / "big.yaml"
    fleet.write_text("workloads:\n" + "".join(one % k for k in range(MAX_WORKLOADS + 1)))
    r = aicap("size", str(fleet))
    assert r.code == 2 and f"{MAX_WORKLOADS + 1:,} workloads" in r.stderr and "split it" in r.stderr


@pytest.mark.parametrize(("body", "line", "expect"), [
    ("  - {name: a, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 200000, output_tokens: 10, slo: {ttft_ms: 2000}}\n",
     2, "max context"),  # the workload's line (the message quotes its name)
    ("  - {name: a, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 200, output_tokens: 10, slo: {ttft_ms: 2000}}\n"
     "constraints: {hardware: [h100-sxmm]}\n", 3, "unknown hardware 'h100-sxmm'"),
])  # fmt: skip
def test_errors_the_sizer_finds_in_a_fleet_name_the_file(aicap, tmp_path: Path, body: str, line: int, expect: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("workloads:\n" + body)
    r = aicap("size", str(fleet))
    assert r.code == 2 and r.stderr.startswith(f"aicap: error: {fleet}:{line}: "), r.stderr  # the line of the bad value
    assert expect in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(("args", "expect"), [
    (["size", "--budget-x", "3"], "No such option: --budget-x"),
    # an option another command spells differently: the one here (a trial typed estimate's --weights-dtype to size)
    (["size", "--weights-dtype", "fp8"], "No such option: --weights-dtype; here it is --precision, which allows several formats"),
    (["estimate", "-m", "llama-3.1-8b", "--precision", "fp8"], "No such option: --precision; here it is --weights-dtype"),
    (["simulate", "-m", "llama-3.1-8b", "--precision", "fp8"], "No such option: --precision; here it is --weights-dtype"),
    # an option only other commands have: which ones
    (["estimate", "-m", "llama-3.1-8b", "--replicas", "3"], "; it is an option of aicap simulate"),
    (["size", "--rate", "abc"], "--rate 'abc': Input should be a valid number"),
    (["estimate"], "Missing option '--model'"),
])  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(args: list[str], expect: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", *args], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("aicap: error: ") and expect in r.stderr and "--help" in r.stderr


@pytest.mark.parametrize("flag", ["--quiet", "-q", "--verbose"])
def test_a_global_option_after_the_command_says_where_it_goes(flag: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "size", "-m", "llama-3.1-8b", "--rate", "5", flag], capture_output=True,
                       text=True, check=False)  # fmt: skip
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"aicap: error: {flag} is a global option: put it before the command (aicap {flag} size ...)\n"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["size", "--model", "llama-3.1-8b", "--rate", "abc"], "aicap: error: --rate 'abc': Input should be a valid number"),
        (["size", "--model", "llama-3.1-8b", "--rate=x1"], "aicap: error: --rate 'x1': "),
        (["size", "-f", "jsn"], "aicap: error: -f: 'jsn' is not one of 'table', 'json'"),  # the value is in the reason already
        (
            ["train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--zero", "5"],
            "aicap: error: --zero 5: Input should",
        ),
        (
            ["train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--precision", "int4"],
            "aicap: error: --precision 'int4': Input should be 'bf16', 'fp16' or 'fp8'",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_echoed_as_typed(args: list[str], expect: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", *args], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and r.stderr.startswith(expect), r.stderr


@pytest.mark.parametrize(("args", "valid"), [(["schema", "bogus"], "valid: plan, period-plan, fleet,"), (["bogus"], "valid: estimate,"),
                                            (["models", "bogus"], "valid: list, show.")])  # fmt: skip
def test_an_unknown_command_names_the_valid_ones(args: list[str], valid: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", *args], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("aicap: error: No such command 'bogus'; ") and valid in r.stderr, r.stderr


def test_formats_are_named_in_any_case() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", "engines", "list", "-f", "JSON"], capture_output=True, text=True,
                       check=False)  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout), r.stderr  # 'JSON' is not one of 'table', 'json', ...


def test_quiet_and_verbose_together_are_refused() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", "-v", "size"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1  # -q won in silence
    assert "--quiet and --verbose ask for less and more on stderr: give one of them" in r.stderr


def test_a_bare_command_group_still_shows_its_help() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "schema"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Commands:" in r.stderr and "plan" in r.stderr


def test_oom_advice_names_only_steps_that_fit(aicap) -> None:
    r = aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "a10g", "--tp", "1", "-f", "json")
    assert r.code == 3
    line = r.stderr.strip().splitlines()[-1]
    assert "try TP=8 or TP=4 with int8" in line  # not TP=2 or int8 alone: neither fits 70B on 24 GB devices
    assert aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "a10g", "--tp", "8", "-f", "json").code == 0
    assert aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "a10g", "--tp", "4", "--weights-dtype", "int8", "-f", "json").code == 0
    assert aicap("estimate", "-m", "llama-3.1-70b", "--hardware", "a10g", "--tp", "2", "-f", "json").code == 3


def test_a_plan_missing_a_required_field_says_which(aicap, tmp_path: Path, plan_doc: dict[str, Any]) -> None:
    doc = {k: v for k, v in plan_doc.items() if k != "totals"}
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(doc))
    r = aicap("check", str(bad), "--budget-monthly", "100")
    assert r.code == 2 and "totals: required field is missing" in r.stderr


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: 1}]\nconstraints: {budget: 10}\n",
         "f.yaml:2: constraints.budget: unknown field; did you mean 'budget_usd_per_month'?"),
        ("workloads: [{name: a, model: llama-3.1-8b, request_per_s: 1}]\n",
         "workloads[0].request_per_s: unknown field; did you mean 'requests_per_s'?"),
        ("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: 1, slo: {ttft: 100}}]\n",
         "workloads[0].slo.ttft: unknown field; did you mean 'ttft_ms'?"),
        # a required key misspelt: named at its line, not "model: required field is missing" at the workload's
        ("workloads:\n  - name: a\n    modle: llama-3.1-8b\n    requests_per_s: 1\n",
         "f.yaml:3: workloads[0].modle: unknown field; did you mean 'model'?"),  # and the missing model is the same problem
        ("workloads:\n  - name: a\n    colour: red\n    modle: llama-3.1-8b\n    requests_per_s: 1\n",  # the key like it
         "f.yaml:4: workloads[0].modle: unknown field; did you mean 'model'? (and 1 more error)"),
        ("workloads:\n  - name: a\n    colour: red\n    requests_per_s: 1\n",  # no key like it: the missing one
         "workloads[0].model: required field is missing (and 1 more error)"),
        ("workloads: [{name: a, model: bge-large-en, requests_per_s: 1}]\n",  # an encoder's context is under the default
         "over bge-large-en's max context of 512; input_tokens left at the default (1,024): give the lengths it serves"),
        # a model file that is not there: named as written, at its line (was "f.yaml: nomodel.yaml: no such file")
        ("workloads:\n  - name: a\n    requests_per_s: 1\n    model: ./nomodel.yaml\n",
         "f.yaml:4: model './nomodel.yaml' of workload 'a': nomodel.yaml: no such file"),
        ("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: 0}]\n",
         "workloads[0].requests_per_s: not a rate: give a positive number of requests per second"),
        ("workloads: [{name: a, model: llama-3.1-8b, requests_per_s: '5'}]\n", "workloads[0].requests_per_s: not a rate: give a number"),
    ],
)  # fmt: skip
def test_fleet_mistakes_say_what_was_meant(aicap, tmp_path: Path, body: str, needle: str) -> None:
    # An unknown key names the field it was likely meant to be; a rate that is not a positive number is one line, not
    # the message of whichever member of the rate's union (number, hourly list, diurnal or weekly shape) failed deepest.
    (tmp_path / "f.yaml").write_text(body)
    r = aicap("size", str(tmp_path / "f.yaml"))
    assert r.code == 2 and needle in one_error_line(r) and "Diurnal" not in r.stderr


def _aicap_argv() -> list[str]:
    import shutil
    import sys

    exe = Path(sys.executable).with_name("aicap")
    return [str(exe)] if exe.exists() else [shutil.which("aicap") or "aicap"]


def test_a_closed_pipe_after_a_table_is_141_not_the_breach_code() -> None:
    # Rich's own broken-pipe handler exited 1, which `set -o pipefail` read as a policy breach.
    import subprocess

    p = subprocess.Popen([*_aicap_argv(), "-q", "models", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # before it writes (it takes a while to start): its first write meets the closed pipe
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141 and err == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_an_input_error_not_a_bug() -> None:
    import subprocess

    with open("/dev/full", "w") as full:
        r = subprocess.run([*_aicap_argv(), "-q", "models", "list"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == "aicap: error: cannot write the result to standard output: No space left on device\n"


@pytest.mark.skipif(sys.platform == "win32", reason="closes a descriptor before exec")
@pytest.mark.parametrize("args", [("-q", "models", "list"), ("--help",), ("-q", "whatif", "--help")])
def test_a_closed_stdout_is_an_input_error_not_a_bug(args: tuple[str, ...]) -> None:
    # `aicap ... >&-` (cron, systemd): "internal error: AttributeError: 'NoneType' object has no attribute 'write'", exit 4
    import subprocess

    r = subprocess.run([*_aicap_argv(), *args], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60,
                       preexec_fn=lambda: os.close(1))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("aicap: error: cannot write") and "standard output is closed" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(("key", "value", "needle"), [("regions", "us-east-9", "unknown region 'us-east-9': did you mean us-east-1?"),
                                                      ("instance_families", "zz", "unknown instance family 'zz'")])  # fmt: skip
def test_an_unknown_region_or_family_is_an_input_error_on_its_line(aicap, tmp_path: Path, key: str, value: str, needle: str) -> None:
    # Both were "infeasible" (exit 3): "no instance type matches the constraints".
    f = tmp_path / "f.yaml"
    f.write_text(f"schema_version: 1\nworkloads:\n  - {{name: a, model: llama-3.1-8b, requests_per_s: 2}}\n"
                 f"constraints:\n  {key}: [{value}]\n")  # fmt: skip
    r = aicap("-q", "size", str(f))
    assert r.code == 2 and r.stderr.startswith(f"aicap: error: {f}:5: ") and needle in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [("validate", "--set", "training", "--write-factors"), ("validate", "--write-bands"),
                                  ("calibrate", "CASES", "--output")])  # fmt: skip
def test_an_unwritable_output_is_refused_before_any_result(aicap, tmp_path, args) -> None:  # type: ignore[no-untyped-def]
    # validate printed its whole table (after seconds of scoring), then failed to write
    cases = tmp_path / "c.csv"
    cases.write_text("id,model,hardware,devices,tp,pp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
                     "a,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,single_stream,5,200,1,single_stream_tok_s,90\n")  # fmt: skip
    argv = [str(cases) if a == "CASES" else a for a in args]
    r = aicap(*argv, str(tmp_path / "missing" / "out.yaml"))
    assert r.code == 2 and r.stdout == "" and "does not exist" in r.stderr


def test_validate_says_what_it_did_not_score_and_refuses_an_empty_file(aicap, tmp_path) -> None:  # type: ignore[no-untyped-def]
    head = "id,model,hardware,devices,tp,pp,weights_dtype,kv_dtype,kind,input_tokens,output_tokens,batch,metric,value\n"
    good = "a,llama-2-7b,a100-80gb-sxm,1,1,1,bf16,bf16,single_stream,5,200,1,single_stream_tok_s,90\n"
    typo = "b,llama-2-7b,a100-80gb-sxmm,1,1,1,bf16,bf16,single_stream,5,200,1,single_stream_tok_s,90\n"
    cases = tmp_path / "c.csv"
    cases.write_text(head + good + typo)
    r = aicap("validate", str(cases), "-f", "json")
    assert r.code == 0 and len(r.json()["rows"]) == 2  # held-out sets may name models aicap lacks: listed, not fatal
    assert "1 of 2 cases in" in r.stderr and "'b': unknown hardware 'a100-80gb-sxmm': did you mean a100-80gb-sxm" in r.stderr
    (tmp_path / "empty.yaml").write_text("[]\n")
    r = aicap("validate", str(tmp_path / "empty.yaml"))
    assert r.code == 2 and r.stdout == "" and "no cases in the file" in r.stderr
    (tmp_path / "t.yaml").write_text("- {id: a, model: llama-2-7b, hardware: a100-80gb-sxm, devices: 1, tpp: 1, kind: single_stream,\n"
                                     "   input_tokens: 5, output_tokens: 200, batch: 1, metrics: {single_stream_tok_s: 90}}\n")  # fmt: skip
    r = aicap("validate", str(tmp_path / "t.yaml"), "-f", "json")
    assert r.code == 0 and "field 'tpp' is not read; did you mean 'tp'?" in r.stderr


def test_a_long_list_of_choices_says_how_many_more_and_where_to_see_them(aicap) -> None:
    line = one_error_line(aicap("estimate", "-m", "llama-9b", "--hardware", "h100-sxm"))
    assert "did you mean" in line and line.endswith("more: aicap models list)")


def test_a_wide_csv_of_measurements_is_told_the_long_format(aicap, tmp_path: Path) -> None:
    # "each row needs a 'metric' name and a numeric 'value'" for a table with a column per metric, the format documented nowhere
    wide = tmp_path / "wide.csv"
    wide.write_text("id,model,hardware,kind,output_tok_s_total,ttft_ms_mean\nr1,llama-3.1-8b,h100-sxm,offline_throughput,900,50\n")
    line = one_error_line(aicap("validate", str(wide)))
    assert line.startswith(f"aicap: error: {wide}:1: the header lacks 'metric', 'value' (output_tok_s_total, ttft_ms_mean: a column "
                           "per metric): a CSV of measurements has one row per measured metric")  # fmt: skip
    assert "`aicap schema cases` lists every field" in line and one_error_line(aicap("calibrate", str(wide))) == line
    schema = json.loads(aicap("schema", "cases").stdout)
    assert {"id", "model", "hardware", "kind", "metrics"} <= set(schema["required"])


@pytest.mark.parametrize(("args", "start"), [
    (("size", "{fleet}", "--hardware", "l4,h100"), "aicap: error: --hardware: unknown hardware 'h100': did you mean h100-nvl, h100-sxm"),
    (("whatif", "{fleet}", "--hardware", "h100"), "aicap: error: --hardware: unknown hardware 'h100': did you mean h100-nvl, h100-sxm"),
    (("whatif", "{fleet}", "--student", "nope"), "aicap: error: --student: unknown model 'nope'"),
    (("whatif", "{fleet}", "--draft-model", "nope"), "aicap: error: --draft-model: unknown model 'nope'"),
])  # fmt: skip
def test_a_bad_id_in_a_flag_beside_a_fleet_file_names_the_flag(aicap, tmp_path: Path, args: tuple[str, ...], start: str) -> None:
    # "small.yaml: unknown hardware 'h100'" blamed the file for the flag's value; --student's unknown model named no flag
    fleet = tmp_path / "small.yaml"
    fleet.write_text("workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2, input_tokens: 500, output_tokens: 100}\n")
    line = one_error_line(aicap(*(a.format(fleet=fleet) for a in args)))
    assert line.startswith(start), line


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2}\nconstraint:\n  clouds: [aws]\n", 3,
     "constraint: unknown field; did you mean 'constraints'?"),  # the key's line, not its block's first line (was 4)
    ("workload:\n  - name: chat\n    model: llama-3.1-8b\n", 1, "workload: unknown field; did you mean 'workloads'?"),
    ("workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 2}\nconstraints:\n  clouds: [aws]\n"
     "  availability: {g6e.xlarge: -1}\n", 5, "constraints.availability.g6e.xlarge: Input should be greater than or equal to 0"),
])  # fmt: skip
def test_a_fleet_error_is_placed_at_the_line_the_user_fixes(aicap, tmp_path: Path, text: str, line: int, needle: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text)
    got = one_error_line(aicap("size", str(fleet)))
    assert got.startswith(f"aicap: error: {fleet}:{line}: {needle}"), got


@pytest.mark.parametrize(
    ("argv", "flag", "hint"),
    [
        (["size", "--hardware", "a100-80gb-sxm", "--hardware", "h100-sxm"], "--hardware", "--hardware a100-80gb-sxm,h100-sxm"),
        (["models", "list", "--format", "json", "-f", "csv"], "--format", "give it once"),
        (["estimate", "--model", "llama-3.1-8b", "--hardware=a100-80gb-sxm", "--hardware", "h100-sxm"], "--hardware", "give it once"),
    ],
)
def test_a_single_valued_option_given_twice_is_refused(argv: list[str], flag: str, hint: str) -> None:
    """Click keeps the last of two values silently: the plan would answer another question than the one asked."""
    import subprocess

    r = subprocess.run([sys.executable, "-m", "aicap.cli.app", "-q", *argv], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert (
        f"{flag} given twice" in r.stderr
        and hint in r.stderr
        and f" {' '.join(argv[: 2 if argv[0] == 'models' else 1])} --help'" in r.stderr
    )


def test_the_same_value_twice_a_repeatable_option_and_a_value_after_double_dash_are_not_refused() -> None:
    runner = CliRunner()
    helped = runner.invoke(app, ["estimate", "--hardware", "a", "--hardware", "b", "--help"])  # help wins, as Click has it
    assert helped.exit_code == 0 and "Usage:" in helped.stdout, helped.output
    attached = runner.invoke(app, ["-q", "size", "-ox.json", "-oy.json"])  # Click's -ofile: the value attached
    assert attached.exit_code == 2 and "-o given twice ('x.json', 'y.json')" in attached.stderr, attached.output
    same = runner.invoke(app, ["-q", "engines", "list", "-f", "json", "--format", "json"])
    assert same.exit_code == 0 and json.loads(same.stdout), same.output
    value = runner.invoke(
        app, ["-q", "models", "show", "--format", "json", "llama-3.1-8b"]
    )  # an option's value is not counted as an option
    assert value.exit_code == 0, value.output


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["size", "--output", ""], "--output '': an empty path"),
        (["--catalog", "", "models", "list"], "--catalog '': an empty path"),
        (["size", ""], "'': an empty word where a file name was expected"),
        (["simulate", "--", ""], "'': an empty word where a file name was expected"),
    ],
)
def test_an_empty_word_for_a_file_is_refused_not_read_as_the_current_folder(argv: list[str], said: str) -> None:
    """``Path('')`` is ``.``: ``--catalog ''`` loaded the current folder as a catalogue, ``-o ''`` said "--output .: is a directory"."""
    r = CliRunner().invoke(app, ["-q", *argv])
    assert r.exit_code == 2 and said in r.stderr and "'.'" not in r.stderr and " . " not in r.stderr, r.stderr
