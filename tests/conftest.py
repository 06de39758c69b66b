"""Shared fixtures: the loaded catalogue and a CLI runner that keeps stdout and stderr apart."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from aicap.cli.app import app
from aicap.hardware_db import Catalogue, load_catalogue

REL_1PCT = 0.01

# Tests read and write a catalogue cache of their own, never the user's (aicap.hardware_db.cache). Set here,
# at import, because test modules load the catalogue while they are collected, before any fixture runs.
_CACHE = tempfile.mkdtemp(prefix="aicap-test-cache-")
os.environ["AICAP_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


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

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Run:
        r = runner.invoke(app, list(args), env=env, input=stdin)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Run(r.exit_code, r.stdout, r.stderr)

    return run
