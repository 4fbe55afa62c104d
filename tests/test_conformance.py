"""The conformance kit and the fake provider it is first proven against."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kyro.provider import BatchError, BatchLimits, BatchProvider, BatchState, JudgeRequest, Message
from kyro.testing import (
    ConformanceError,
    FakeProvider,
    ProviderConformance,
    check_provider,
    default_responder,
)


async def no_sleep(seconds: float) -> None:
    """A sleep that returns at once."""


def request(custom_id: str, **params: object) -> JudgeRequest:
    """A one-message request."""
    return JudgeRequest(
        custom_id=custom_id,
        model="m",
        messages=(Message(role="user", content="hello"),),
        params=dict(params),
    )


async def submit(provider: FakeProvider, tmp_path: Path, ids: list[str], **meta: str) -> str:
    """Write a shard with ``ids`` and submit it."""
    buffer = bytearray()
    for custom_id in ids:
        provider.encode(request(custom_id), buffer)
    shard = tmp_path / f"shard-{len(provider.batches)}.jsonl"
    shard.write_bytes(bytes(buffer))
    return await provider.submit(shard, metadata=meta)


async def run_out(provider: FakeProvider, batch_id: str) -> BatchState:
    """Poll until terminal and return the final state."""
    while not (status := await provider.poll(batch_id)).terminal:
        pass
    return status.state


def test_fake_provider_satisfies_the_protocol() -> None:
    """FakeProvider is structurally a BatchProvider."""
    assert isinstance(FakeProvider(), BatchProvider)


@pytest.mark.parametrize("state", ["completed", "failed", "expired", "cancelled"])
async def test_fake_provider_passes_the_kit_for_every_final_state(state: BatchState) -> None:
    """The whole kit passes against the fake whatever terminal state its batches end in."""
    provider = FakeProvider(final_state=state, polls_until_done=3)
    await check_provider(provider, sleep=no_sleep)
    assert len(provider.batches) == 4  # lifecycle, cancel, find-a, find-b


async def test_fake_encode_writes_openai_shaped_lines() -> None:
    """encode writes one OpenAI-style line carrying model, messages and params."""
    buffer = bytearray()
    FakeProvider().encode(request("t0-j0-r0", temperature=0), buffer)
    line = msgspec.json.decode(bytes(buffer))
    assert buffer.endswith(b"\n")
    assert line["custom_id"] == "t0-j0-r0"
    assert line["method"] == "POST"
    assert line["body"]["model"] == "m"
    assert line["body"]["temperature"] == 0
    assert line["body"]["response_format"] == {"type": "json_object"}


async def test_fake_walks_states_after_configured_polls(tmp_path: Path) -> None:
    """A batch is running until the configured poll, then completed."""
    provider = FakeProvider(polls_until_done=3)
    batch_id = await submit(provider, tmp_path, ["a", "b"])
    states = [(await provider.poll(batch_id)).state for _ in range(4)]
    assert states == [
        "running",
        "running",
        "completed",
        "completed",
    ]
    assert provider.batches[0].polls == 3


async def test_fake_results_cover_replies_errors_and_missing(tmp_path: Path) -> None:
    """Replies come from the responder; configured line errors and missing ids fail."""
    provider = FakeProvider(
        responder=lambda custom_id, body: f"reply to {custom_id} from {body['model']}",
        line_errors={"b": "server_error"},
        missing={"c"},
    )
    batch_id = await submit(provider, tmp_path, ["a", "b", "c"], kyro_job="j1")
    await run_out(provider, batch_id)
    lines = {line.custom_id: line async for line in provider.results(batch_id)}
    assert lines["a"].ok
    assert lines["a"].content == "reply to a from m"
    assert lines["a"].usage is not None
    assert lines["b"].error is not None
    assert (lines["b"].error.code, lines["b"].error.retryable) == ("server_error", True)
    assert lines["c"].error is not None
    assert lines["c"].error.code == "missing"


async def test_fake_expired_batches_finish_half(tmp_path: Path) -> None:
    """An expired batch answers the first half and reports the rest batch_expired."""
    provider = FakeProvider(final_state="expired")
    batch_id = await submit(provider, tmp_path, ["a", "b", "c", "d"])
    assert await run_out(provider, batch_id) == "expired"
    codes = [line.error.code if line.error else "ok" async for line in provider.results(batch_id)]
    assert codes == ["ok", "ok", "batch_expired", "batch_expired"]


async def test_fake_failed_batch_carries_job_errors(tmp_path: Path) -> None:
    """A failed batch reports the configured job-level errors."""
    error = BatchError(code="token_limit_exceeded", message="later", retry_later=True)
    provider = FakeProvider(final_state="failed", failure_errors=[error])
    batch_id = await submit(provider, tmp_path, ["a"])
    await run_out(provider, batch_id)
    status = await provider.poll(batch_id)
    assert status.errors == (error,)


async def test_fake_rejects_shards_over_its_limits(tmp_path: Path) -> None:
    """A shard over the fake's request limit ends failed with too_many_tasks."""
    provider = FakeProvider(limits=BatchLimits(max_requests=1, max_bytes=10_000))
    batch_id = await submit(provider, tmp_path, ["a", "b"])
    status = await provider.poll(batch_id)
    assert status.state == "failed"
    assert [error.code for error in status.errors] == ["too_many_tasks"]


async def test_fake_refuses_results_before_terminal(tmp_path: Path) -> None:
    """results() on a batch that is still running raises."""
    provider = FakeProvider(polls_until_done=5)
    batch_id = await submit(provider, tmp_path, ["a"])
    with pytest.raises(Exception, match="poll it to the end"):
        _ = [line async for line in provider.results(batch_id)]


def test_default_responder_returns_a_judge_verdict() -> None:
    """The default reply is a SUCCESS verdict in JSON."""
    verdict = msgspec.json.decode(default_responder("t0-j0-r0", {}))
    assert verdict["status"] == "SUCCESS"


class DuplicatingFake(FakeProvider):
    """A broken provider that yields every result twice."""

    async def results(self, batch_id: str):  # type: ignore[no-untyped-def]
        """Every line, twice."""
        async for line in super().results(batch_id):
            yield line
            yield line


class NoNewlineFake(FakeProvider):
    """A broken provider whose encode forgets the newline."""

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Encode without the trailing newline."""
        super().encode(request, buffer)
        del buffer[-1]


class BlindFindFake(FakeProvider):
    """A broken provider whose find returns every batch."""

    async def find(self, metadata):  # type: ignore[no-untyped-def]
        """Ignore the metadata."""
        return await super().find({})


class StuckFake(FakeProvider):
    """A broken provider whose batches never finish."""

    async def poll(self, batch_id: str):  # type: ignore[no-untyped-def]
        """Always running."""
        return msgspec.structs.replace(await super().poll(batch_id), state="running")


async def test_kit_catches_duplicate_results() -> None:
    """A provider yielding an id twice fails the lifecycle check, naming the id."""
    kit = ProviderConformance(DuplicatingFake(), sleep=no_sleep)
    with pytest.raises(ConformanceError, match="came back 2 times"):
        await kit.check_lifecycle()


async def test_kit_catches_encode_without_newline() -> None:
    """An encode that forgets the newline fails the encode check."""
    with pytest.raises(ConformanceError, match="must end its line"):
        await ProviderConformance(NoNewlineFake()).check_encode()


async def test_kit_catches_find_ignoring_metadata() -> None:
    """A find that ignores metadata fails the find check."""
    with pytest.raises(ConformanceError, match="also returned batch"):
        await ProviderConformance(BlindFindFake()).check_find()


async def test_kit_gives_up_on_batches_that_never_finish() -> None:
    """Polling stops after max_polls with a clear error."""
    kit = ProviderConformance(StuckFake(), sleep=no_sleep, max_polls=5)
    with pytest.raises(ConformanceError, match="not terminal after 5 polls"):
        await kit.check_lifecycle()
