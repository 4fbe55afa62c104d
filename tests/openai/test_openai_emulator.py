"""OpenAIBatchProvider against the emulator: in-process over ASGI, and over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyro import ProviderError
from kyro.provider import JudgeRequest, Message, ResultLine, RetryPolicy
from kyro.testing import check_provider
from kyro_openai import OpenAIBatchProvider
from tests.openai.openai_fakes import SleepLog, no_sleep

testing = pytest.importorskip("kyro_openai.testing")

IDS = [f"t{i}-j0-r0" for i in range(6)]


def in_process(emulator: Any, **options: Any) -> OpenAIBatchProvider:
    """A provider whose client talks to the emulator's ASGI app directly."""
    transport = httpx.ASGITransport(app=emulator.app)
    options.setdefault("sleep", no_sleep)
    return OpenAIBatchProvider(
        api_key="sk-emulated",
        base_url="http://emulator/v1",
        client=httpx.AsyncClient(transport=transport),
        **options,
    )


async def submit(provider: OpenAIBatchProvider, tmp_path: Path, **meta: str) -> str:
    """Encode IDS into a shard and submit it."""
    buffer = bytearray()
    for custom_id in IDS:
        provider.encode(
            JudgeRequest(
                custom_id=custom_id,
                model="gpt-4o-mini",
                messages=(Message(role="user", content=f"judge {custom_id} in JSON"),),
            ),
            buffer,
        )
    shard = tmp_path / f"shard-{len(meta)}-{abs(hash(tuple(meta.items())))}.jsonl"
    shard.write_bytes(bytes(buffer))
    return await provider.submit(shard, metadata=meta)


async def results(provider: OpenAIBatchProvider, batch_id: str) -> dict[str, ResultLine]:
    """Results keyed by custom_id (asserting each id appears once)."""
    lines = [line async for line in provider.results(batch_id)]
    assert len({line.custom_id for line in lines}) == len(lines)
    return {line.custom_id: line for line in lines}


async def test_conformance_kit_passes_in_process() -> None:
    """The whole conformance kit passes against the emulator over ASGI."""
    emulator = testing.Emulator()
    await check_provider(in_process(emulator), model="gpt-4o-mini", sleep=no_sleep)
    assert len(emulator.batches) == 4


async def test_lifecycle_walks_states_on_the_emulator_clock(tmp_path: Path) -> None:
    """validating → in_progress → completed on the emulator's clock, then every reply."""
    config = testing.EmulatorConfig(
        validating_seconds=5, in_progress_seconds=60, finalizing_seconds=5
    )
    emulator = testing.Emulator(config, clock=lambda: 1_700_000_000.0)
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path, kyro_job="j1")
    assert (await provider.poll(batch_id)).state == "pending"
    emulator.advance(10)
    running = await provider.poll(batch_id)
    assert running.state == "running"
    assert running.request_counts.total == len(IDS)
    emulator.advance(120)
    done = await provider.poll(batch_id)
    assert done.state == "completed"
    assert done.metadata == {"kyro_job": "j1"}
    lines = await results(provider, batch_id)
    assert sorted(lines) == sorted(IDS)
    assert all(line.ok and line.content for line in lines.values())


async def test_rate_limit_storm_is_waited_out(tmp_path: Path) -> None:
    """429s with Retry-After from the emulator are retried with the delays it asked for."""
    emulator = testing.Emulator()
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path)
    sleep = SleepLog()
    emulator.faults.rate_limit(times=3, retry_after=2)
    slow = in_process(emulator, sleep=sleep, retry=RetryPolicy(max_retries=4))
    status = await slow.poll(batch_id)
    assert status.terminal
    assert sleep.delays == [2.0, 2.0, 2.0]


async def test_dropped_download_is_resumed(tmp_path: Path) -> None:
    """A download the emulator cuts off is resumed and every id still comes back once."""
    emulator = testing.Emulator()
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path)
    await provider.poll(batch_id)
    emulator.faults.drop_download(times=1, after_bytes=300)
    lines = await results(provider, batch_id)
    assert sorted(lines) == sorted(IDS)


async def test_expiry_reports_unfinished_requests_as_batch_expired(tmp_path: Path) -> None:
    """An expired batch yields finished replies plus retryable batch_expired lines."""
    emulator = testing.Emulator()
    emulator.faults.expire_next(after_lines=2)
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path)
    assert (await provider.poll(batch_id)).state == "expired"
    lines = await results(provider, batch_id)
    assert sorted(lines) == sorted(IDS)
    expired = [line for line in lines.values() if line.error and line.error.code == "batch_expired"]
    assert len(expired) == len(IDS) - 2
    assert all(line.error and line.error.retryable for line in expired)


async def test_line_faults_and_missing_lines(tmp_path: Path) -> None:
    """Per-line errors, HTTP errors and missing lines are each classified correctly."""
    emulator = testing.Emulator()
    emulator.faults.line_errors(custom_ids=[IDS[0]], code="server_error")
    emulator.faults.line_http_errors(custom_ids=[IDS[1]], status_code=400)
    emulator.faults.missing_lines(custom_ids=[IDS[2]])
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path)
    await provider.poll(batch_id)
    lines = await results(provider, batch_id)
    assert sorted(lines) == sorted(IDS)
    errors = {cid: line.error for cid, line in lines.items() if line.error}
    assert set(errors) == set(IDS[:3])
    assert errors[IDS[0]].code == "server_error"
    assert errors[IDS[0]].retryable
    assert not errors[IDS[1]].retryable
    assert errors[IDS[2]].code == "missing"


async def test_token_limit_failure_is_marked_retry_later(tmp_path: Path) -> None:
    """A batch failed with token_limit_exceeded carries a retry-later job error."""
    emulator = testing.Emulator()
    emulator.faults.token_limit_exceeded()
    provider = in_process(emulator)
    batch_id = await submit(provider, tmp_path)
    status = await provider.poll(batch_id)
    assert status.state == "failed"
    assert [(e.code, e.retry_later) for e in status.errors] == [("token_limit_exceeded", True)]


async def test_whole_lifecycle_over_real_http(tmp_path: Path) -> None:
    """upload → create → poll → results → cancel against the emulator served on 127.0.0.1."""
    emulator = testing.Emulator(testing.EmulatorConfig(in_progress_seconds=3600))
    with testing.serve(emulator) as url:
        assert url.startswith("http://127.0.0.1:")
        async with OpenAIBatchProvider(api_key="sk-emulated", base_url=url) as provider:
            first = await submit(provider, tmp_path, kyro_job="real-1")
            assert (await provider.poll(first)).state in ("pending", "running")
            emulator.advance(7200)
            assert (await provider.poll(first)).state == "completed"
            lines = await results(provider, first)
            assert sorted(lines) == sorted(IDS)
            assert all(line.ok for line in lines.values())

            second = await submit(provider, tmp_path, kyro_job="real-2")
            cancelled = await provider.cancel(second)
            assert cancelled.state in ("cancelling", "cancelled")
            emulator.advance(7200)
            final = await provider.poll(second)
            assert final.state == "cancelled"
            partial = await results(provider, second)
            assert sorted(partial) == sorted(IDS)
            assert [s.batch_id for s in await provider.find({"kyro_job": "real-2"})] == [second]


async def test_key_stays_out_of_httpx_and_httpcore_debug_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a real socket at DEBUG, a failing call logs no header value and raises no key."""
    key = "sk-emulated-VERY-SECRET-42"
    with testing.serve(testing.Emulator()) as url:
        async with OpenAIBatchProvider(api_key=key, base_url=url) as provider:
            with (
                caplog.at_level(logging.DEBUG),
                caplog.at_level(logging.DEBUG, logger="httpx"),
                caplog.at_level(logging.DEBUG, logger="httpcore"),
                pytest.raises(ProviderError) as info,
            ):
                await provider.poll("batch_does_not_exist")
    assert info.value.status_code == 404
    assert key not in str(info.value)
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"httpx", "httpcore"} <= names
    assert all(key not in record.getMessage() for record in caplog.records)
