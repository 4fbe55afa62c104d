"""Crash recovery without batch metadata: BatchJudge on the Anthropic provider.

A crash between the create and the saved batch id leaves an intent with no id. Recovery lists
the batches created since the intent with its request count, leaves out batches the job
already knows, adopts the single one left, and refuses to guess between several.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from kyro import BatchJudge, KyroError
from kyro_anthropic import ANTHROPIC_RETRY, AnthropicBatchProvider
from kyro_anthropic.testing import Emulator
from tests.anthropic.anthropic_helpers import CONFIG, KEY, Waits, item
from tests.support.providers import CrashingProvider, ProviderCrash

TRANSCRIPTS = ["user: hi? assistant: hello", "user: 2+2? assistant: 4", "user: x assistant: y"]


def _crashing(options: dict[str, object], *, crash_on: int, when: str) -> CrashingProvider:
    """Dies on the ``crash_on``-th submit, before (``when="before"``) or after the create."""
    provider = AnthropicBatchProvider(**options)  # type: ignore[arg-type]
    return CrashingProvider(provider, at=crash_on, reached=0 if when == "before" else 1)


@pytest.fixture
def live() -> Iterator[Emulator]:
    """An emulator on the real clock (intents are stamped with the real time)."""
    with Emulator() as emulator:
        yield emulator


def _options(emulator: Emulator, client: httpx.AsyncClient) -> dict[str, object]:
    return {
        "api_key": KEY,
        "base_url": "http://emulator",
        "client": client,
        "retry": ANTHROPIC_RETRY,
        "sleep": Waits(),
    }


@pytest.fixture
async def client(live: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the live emulator, in-process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=live.app)) as client:
        yield client


async def _crash_then_check(
    emulator: Emulator,
    client: httpx.AsyncClient,
    tmp_path: Path,
    *,
    crash_on: int,
    when: str,
    between: object = None,
) -> tuple[BatchJudge, object]:
    config = tmp_path / "judges.yml"
    config.write_text(CONFIG)
    crashing = _crashing(_options(emulator, client), crash_on=crash_on, when=when)
    with pytest.raises(ProviderCrash):
        await BatchJudge(crashing, config, state_dir=tmp_path / "state").submit(TRANSCRIPTS)
    if callable(between):
        between()
    judge = BatchJudge(
        AnthropicBatchProvider(**_options(emulator, client)),  # type: ignore[arg-type]
        config,
        state_dir=tmp_path / "state",
    )
    try:
        result: object = await judge.check()
    except KyroError as exc:
        result = exc
    return judge, result


def _per_model(emulator: Emulator) -> dict[str, int]:
    return {
        "relevance": len(emulator.batches_containing("Does the reply")),
        "safety": len(emulator.batches_containing("Is the reply safe")),
    }


@pytest.mark.parametrize("crash_on", [1, 2])
async def test_a_batch_created_before_the_crash_is_adopted_once(
    live: Emulator, client: httpx.AsyncClient, tmp_path: Path, crash_on: int
) -> None:
    """Killed after the create of shard ``crash_on``: check adopts it; one batch per shard.

    Both shards hold 3 requests, so for shard 2 the known batch of shard 1 is a look-alike
    that must be left out, not taken twice.
    """
    _, result = await _crash_then_check(live, client, tmp_path, crash_on=crash_on, when="after")
    assert _per_model(live) == {"relevance": 1, "safety": 1}
    assert live.stats().batches_created == 2
    counts = result.counts  # type: ignore[attr-defined]
    assert (counts.transcripts, counts.errored_runs) == (3, 0)


async def test_an_intent_with_no_batch_is_submitted_on_recovery(
    live: Emulator, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Killed before the create: nothing matches, so the shard is submitted then."""
    _, result = await _crash_then_check(live, client, tmp_path, crash_on=2, when="before")
    assert _per_model(live) == {"relevance": 1, "safety": 1}
    assert result.counts.transcripts == 3  # type: ignore[attr-defined]


async def test_look_alike_batches_are_an_error_never_a_guess(
    live: Emulator, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Another same-size batch made after the intent: check names both and submits nothing.

    Deleting the (ended) stranger, as the message says, lets the next check adopt ours.
    """
    made: list[str] = []

    def stranger() -> None:
        made.append(live.create({"requests": [item(f"s{i}") for i in range(3)]})["id"])

    judge, result = await _crash_then_check(
        live, client, tmp_path, crash_on=1, when="after", between=stranger
    )
    assert isinstance(result, KyroError)
    message = str(result)
    assert "will not guess" in message
    assert made[0] in message
    (ours,) = (b["id"] for b in live.batches_containing("Does the reply"))
    assert ours in message
    assert live.stats().batches_created == 2  # ours and the stranger: no third
    progress = await judge.status()
    assert progress is not None
    assert "delete them once they have ended" in message
    live.delete(made[0])
    result = await judge.check()
    assert result is not None
    assert _per_model(live) == {"relevance": 1, "safety": 1}
    assert result.counts.transcripts == 3


class RecordingProvider(AnthropicBatchProvider):
    """Keeps the metadata of every submit."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.submitted: list[dict[str, str]] = []

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        self.submitted.append(dict(metadata))
        return await super().submit(path, metadata=metadata)


async def test_a_recovery_submit_writes_a_fresh_intent_first(
    live: Emulator, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The re-submit after a crash carries a new intent time, so its own window is right."""
    config = tmp_path / "judges.yml"
    config.write_text(CONFIG)
    crashing = _crashing(_options(live, client), crash_on=1, when="before")
    with pytest.raises(ProviderCrash):
        await BatchJudge(crashing, config, state_dir=tmp_path / "state").submit(TRANSCRIPTS)
    recording = RecordingProvider(**_options(live, client))
    judge = BatchJudge(recording, config, state_dir=tmp_path / "state")
    crashed_intent = judge._runner.store.load().shards[0].attempts[0].intent_at  # type: ignore[union-attr]
    await judge.submit(TRANSCRIPTS)
    first = recording.submitted[0]
    assert first["kyro_shard"] == "0"
    assert first["kyro_requests"] == "3"
    assert first["kyro_intent_at"] > crashed_intent.isoformat()
    assert _per_model(live) == {"relevance": 1, "safety": 1}
