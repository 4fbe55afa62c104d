"""Fixtures for the emulator tests: an emulator on a frozen clock, and a client mounted on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from kyro_openai.testing import Emulator, EmulatorConfig
from tests.emulator.emulator_helpers import NOW, api_client


@pytest.fixture
def config() -> EmulatorConfig:
    """Default timings: every phase takes no time, so a batch completes on its first read."""
    return EmulatorConfig()


@pytest.fixture
def emulator(config: EmulatorConfig) -> Iterator[Emulator]:
    """An emulator whose clock stands still unless a test calls ``advance``."""
    with Emulator(config, clock=lambda: NOW) as emulator:
        yield emulator


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the emulator in-process through ``httpx.ASGITransport``."""
    async with api_client(emulator) as client:
        yield client
