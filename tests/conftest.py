"""Shared fixtures: the loaded catalogue and a CLI runner that keeps stdout and stderr apart."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from aicap.cli.app import app
from aicap.hardware_db import Catalogue, load_catalogue

REL_1PCT = 0.01


@pytest.fixture(scope="session", autouse=True)
def _catalogue_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests read and write a catalogue cache of their own, never the user's (aicap.hardware_db.cache)."""
    os.environ["AICAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("aicap-cache"))


@pytest.fixture(scope="session")
def cat() -> Catalogue:
    return load_catalogue()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def aicap(monkeypatch: pytest.MonkeyPatch):
    """Invoke the CLI in-process: ``aicap("models", "list")`` -> Run(code, stdout, stderr)."""
    monkeypatch.delenv("AICAP_CATALOG", raising=False)
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        r = runner.invoke(app, list(args), env=env)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Run(r.exit_code, r.stdout, r.stderr)

    return run
