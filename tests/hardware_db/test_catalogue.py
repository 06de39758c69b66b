"""The shipped catalogues load, hold the promised ids, and every figure carries its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicap.hardware_db import Catalogue, load_catalogue
from aicap.sizing.core.errors import InputError

DEVICE_IDS = [
    "a100-40gb-sxm",
    "a100-80gb-sxm",
    "a100-80gb-pcie",
    "h100-sxm",
    "h100-pcie",
    "h100-nvl",
    "h200-sxm",
    "gh200",
    "b200",
    "l4",
    "l40s",
    "a10g",
    "t4",
    "v100-sxm",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "mi250x",
    "mi300x",
    "mi325x",
    "gaudi2",
    "gaudi3",
    "xeon-8480",
    "xeon-8592",
    "xeon-6980p",
    "xeon-max-9460",
    "epyc-9654",
    "epyc-9965",
    "graviton4",
]
MODEL_IDS = [
    "llama-7b",
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "mistral-7b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen2.5-7b",
    "qwen2.5-72b",
    "deepseek-v3",
    "gemma-2-9b",
    "gemma-2-27b",
    "phi-3-mini",
    "gpt-j-6b",
    "gpt-neox-20b",
    "falcon-40b",
    "falcon-180b",
    "gpt-3-175b",
    "bert-base",
    "bert-large",
    "bge-large-en",
    "resnet-50",
    "vit-large",
]


def test_required_devices_present(cat: Catalogue) -> None:
    assert set(DEVICE_IDS) <= set(cat.devices)


def test_required_models_present(cat: Catalogue) -> None:
    assert set(MODEL_IDS) <= set(cat.models)


def test_every_device_has_sources_and_an_efficiency_family(cat: Catalogue) -> None:
    for d in cat.devices.values():
        assert d.sources and all(s.strip() for s in d.sources), d.id
        assert d.family in cat.efficiency, f"{d.id}: no efficiency factors for {d.family}"


def test_every_efficiency_entry_says_how_it_was_obtained(cat: Catalogue) -> None:
    for e in cat.efficiency.values():
        assert e.source.startswith(("prior", "fitted", "derived from the fitted")), e.family


def test_instances_have_price_dates_sources_and_known_devices(cat: Catalogue) -> None:
    clouds = {i.cloud for i in cat.instances.values()}
    assert {"aws", "gcp", "azure"} <= clouds
    for i in cat.instances.values():
        assert i.device in cat.devices
        assert i.source.strip() and i.price_date.year >= 2024
        if i.cloud == "on-prem":  # owned machines: priced only as owned
            assert i.price_usd_per_hour.on_demand is None and (i.price_usd_per_hour.owned or 0) > 0
        else:
            assert (i.price_usd_per_hour.on_demand or 0) > 0


def test_every_model_cites_its_config(cat: Catalogue) -> None:
    for m in cat.models.values():
        assert m.source.strip(), m.id
        assert m.published_params, m.id


def test_h100_datasheet_figures(cat: Catalogue) -> None:
    h100 = cat.device("h100-sxm")
    assert h100.memory_gib == 80
    assert h100.memory_bw_gbps == 3350
    assert h100.peak_tflops["bf16"] == pytest.approx(989.5, rel=0.01)  # dense, not the 1979 sparse figure


def test_overlay_overrides_and_reports(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "devices:\n  - id: h100-sxm\n    name: My H100\n    vendor: nvidia\n    kind: gpu\n    family: nvidia-hopper\n"
        "    memory_gib: 80\n    memory_bw_gbps: 3000\n    peak_tflops: {bf16: 900}\n"
        "    interconnect: {kind: nvlink4, bw_gbps: 450, domain_size: 8}\n    sources: [my benchmark]\n"
    )
    cat = load_catalogue((tmp_path,))
    assert cat.device("h100-sxm").memory_bw_gbps == 3000
    assert any("h100-sxm" in line and "mine.yaml" in line for line in cat.overrides)


def test_bad_overlay_names_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "devices:\n  - id: x1\n    name: X\n    vendor: nvidia\n    kind: gpu\n    family: f\n"
        "    memory_gib: -4\n    memory_bw_gbps: 1\n    peak_tflops: {bf16: 1}\n"
        "    interconnect: {kind: pcie4, bw_gbps: 1, domain_size: 1}\n    sources: [s]\n"
    )
    with pytest.raises(InputError, match=r"bad\.yaml:7: devices\[0\]\.memory_gib: Input should be greater than 0, got -4"):
        load_catalogue((tmp_path,))


def test_an_overlay_instance_on_an_unknown_device_is_named_at_its_line(tmp_path: Path) -> None:
    """It named the file alone, without the line or the ids it may have meant."""
    (tmp_path / "p.yaml").write_text(
        "instances:\n  - cloud: aws\n    name: mine.xlarge\n    family: mine\n    region: us-east-1\n    device: l40x\n    devices: 1\n"
        "    price_usd_per_hour: {on_demand: 1.0}\n    price_date: 2026-12-01\n    source: quote\n"
    )
    with pytest.raises(InputError, match=r"p\.yaml:6: instances\.mine\.xlarge\.device: unknown device 'l40x'; did you mean l40"):
        load_catalogue((tmp_path,))
