"""Fixtures for the CLI tests: a small judges config, transcripts, and an emulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.cli.cli_helpers import make_emulator, write_job


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CLI test starts with a fake key and no inherited base URL."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Batches finish on their first read unless a test overrides this fixture."""
    return EmulatorConfig()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    """An emulator with scripted verdicts on a clock that moves only when a test advances it."""
    with make_emulator(emulator_config) as emulator:
        yield emulator


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    """The emulator served over HTTP on 127.0.0.1 (a background thread)."""
    with serve(emulator) as url:
        yield url


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A judges config and three transcripts (SUCCESS, PARTIAL, ERROR); returns the config."""
    return write_job(tmp_path, ["alpha", "mixed", "bad"])
