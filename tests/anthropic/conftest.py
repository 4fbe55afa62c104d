"""Fixtures for the Anthropic tests: an emulator on a frozen clock, a provider mounted on it
in-process (recording every request it sends), and an emulator served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from kyro_anthropic import AnthropicBatchProvider
from kyro_anthropic.testing import Emulator, EmulatorConfig, serve
from tests.anthropic.anthropic_helpers import NOW, Recorder, api_client, fast_provider


@pytest.fixture
def config() -> EmulatorConfig:
    """Default timings: a batch has ended by the first read after its creation."""
    return EmulatorConfig()


@pytest.fixture
def emulator(config: EmulatorConfig) -> Iterator[Emulator]:
    """An emulator whose clock stands still unless a test calls ``advance``."""
    with Emulator(config, clock=lambda: NOW) as emulator:
        yield emulator


@pytest.fixture
def recorder() -> Recorder:
    """Every request the provider sends, with its headers and body."""
    return Recorder()


@pytest.fixture
async def provider(emulator: Emulator, recorder: Recorder) -> AsyncIterator[AnthropicBatchProvider]:
    """A provider talking to the emulator in-process, retrying without real waits."""
    recorder.inner = httpx.ASGITransport(app=emulator.app)
    client = httpx.AsyncClient(transport=recorder)
    async with client:
        yield fast_provider(client, recorder, base_url="http://emulator")


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client on the emulator, with the two headers the API requires."""
    async with api_client(emulator) as client:
        yield client


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    """An emulator on the real clock, served on 127.0.0.1: (emulator, base URL)."""
    with Emulator() as emulator, serve(emulator) as url:
        yield emulator, url
