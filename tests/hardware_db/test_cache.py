"""The per-user catalogue cache (aicap.hardware_db.cache): a hit equals a fresh parse; anything odd falls back to parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicap.hardware_db import cache, loader

PARSE = loader._load.__wrapped__  # the loader without its in-process lru_cache


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AICAP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AICAP_NO_CACHE", raising=False)
    return tmp_path


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("catalogue-*.pickle"))


def _same(a: loader.Catalogue, b: loader.Catalogue) -> None:
    for name in ("models", "devices", "instances", "efficiency", "engines", "speculative", "runtime", "overrides", "origin", "version"):
        assert getattr(a, name) == getattr(b, name), name


def test_a_hit_equals_a_fresh_parse(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = PARSE(())
    assert len(_entries(folder)) == 1
    calls: list[int] = []
    real = loader._parse
    monkeypatch.setattr(loader, "_parse", lambda *a: calls.append(1) or real(*a))
    second = PARSE(())
    assert calls == [], "the second load parsed YAML instead of reading the cache"
    _same(first, second)
    monkeypatch.setenv("AICAP_NO_CACHE", "1")
    _same(PARSE(()), second)
    assert calls == [1]


def test_a_corrupt_entry_is_ignored_and_replaced(folder: Path) -> None:
    fresh = PARSE(())
    (entry,) = _entries(folder)
    entry.write_bytes(b"not a pickle")
    _same(PARSE(()), fresh)
    assert entry.read_bytes() != b"not a pickle"


def test_no_cache_writes_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICAP_NO_CACHE", "1")
    PARSE(())
    assert _entries(folder) == []


def test_an_overlay_gets_its_own_entry_and_old_entries_are_pruned(folder: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    base = PARSE(())
    overlay = tmp_path_factory.mktemp("overlay") / "cheap.yaml"
    name = next(iter(base.instances))
    overlay.write_text(f"instances:\n  - {base.instances[name].model_dump_json()}\n", encoding="utf-8")
    with_overlay = PARSE((overlay,))
    assert len(_entries(folder)) == 2 and with_overlay.version != base.version
    assert with_overlay.overrides and not base.overrides
    monkeypatch.setattr(cache, "KEEP", 1)
    overlay.write_text(overlay.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    edited = PARSE((overlay,))
    assert edited.version != with_overlay.version
    assert len(_entries(folder)) == 1


def test_an_unwritable_cache_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("AICAP_CACHE_DIR", str(blocker / "below-a-file"))
    monkeypatch.delenv("AICAP_NO_CACHE", raising=False)
    assert PARSE(()).version  # loads, without a cache
