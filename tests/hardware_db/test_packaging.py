"""The package layout: every sub-package on disk is installed under aicap.*, nothing else."""

from __future__ import annotations

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    on_disk = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([pkg, *rel.parts]))
    assert on_disk == listed, f"missing from packages: {on_disk - listed}; listed but absent: {listed - on_disk}"


def test_no_bare_top_level_cli_package() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p.startswith("aicap.") for p in cfg["packages"])
    assert set(cfg["package-dir"]) == {"aicap.cli", "aicap.sizing", "aicap.hardware_db"}


def test_package_data_reaches_every_catalogue_file() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = cfg["package-data"]["aicap.hardware_db"]
    data = ROOT / "hardware_db"
    files = [p for p in data.rglob("*") if p.suffix in {".yaml", ".md"} and "__pycache__" not in p.parts]
    for f in files:
        rel = f.relative_to(data)
        assert any(rel.match(g) for g in globs), f"{rel} is not shipped as package data"
