"""Fixtures for the BatchJudge tests: an emulator served on 127.0.0.1 on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.judge.judge_helpers import NOW


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Zero timings: a batch completes on its first read unless a test says otherwise."""
    return EmulatorConfig()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    """An emulator whose clock stands still unless a test calls ``advance``."""
    with Emulator(emulator_config, clock=lambda: NOW) as emulator:
        yield emulator


@pytest.fixture
def served(emulator: Emulator) -> Iterator[str]:
    """The emulator served over HTTP on 127.0.0.1 in a background thread; its base URL."""
    with serve(emulator) as url:
        yield url
