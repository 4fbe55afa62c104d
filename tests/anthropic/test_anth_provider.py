"""AnthropicBatchProvider against the emulator: wire shape, retries, secrets, submit, find."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import jsonschema
import pytest

from kyro import BatchJudge, KyroError, ProviderError
from kyro.provider import BatchLimits, RetryPolicy
from kyro_anthropic import AmbiguousBatchError, AnthropicBatchProvider
from kyro_anthropic._wire import MessageBatch
from kyro_anthropic.testing import DropConnectionFault, Emulator, EmulatorConfig, HttpErrorFault
from kyro_anthropic.testing._emulator import rfc3339
from tests.anthropic.anthropic_helpers import (
    CREATE_ITEM_SCHEMA,
    KEY,
    NOW,
    Recorder,
    Waits,
    fast_provider,
    write_shard,
)
from tests.anthropic.anthropic_helpers import item as make_item


def _waits(provider: AnthropicBatchProvider) -> list[float]:
    sleep = provider._http.sleep
    assert isinstance(sleep, Waits)
    return sleep.waits


async def test_every_call_sends_the_key_and_version_headers(
    provider: AnthropicBatchProvider, recorder: Recorder, tmp_path: Path
) -> None:
    """Create, retrieve, list, results and cancel all carry x-api-key and anthropic-version."""
    write_shard(provider, tmp_path / "s.jsonl", 3)
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    await provider.poll(batch_id)
    _ = [line async for line in provider.results(batch_id)]
    await provider.find({})
    await provider.cancel(batch_id)
    paths = {(r.method, r.url.path) for r in recorder.requests}
    assert paths == {
        ("POST", "/v1/messages/batches"),
        ("GET", f"/v1/messages/batches/{batch_id}"),
        ("GET", f"/v1/messages/batches/{batch_id}/results"),
        ("GET", "/v1/messages/batches"),
        ("POST", f"/v1/messages/batches/{batch_id}/cancel"),
    }
    for request in recorder.requests:
        assert request.headers["x-api-key"] == KEY
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in request.headers
        if request.url.path.endswith("/results"):
            assert request.headers["accept"] == "application/binary"
        if request.method == "GET" and request.url.path == "/v1/messages/batches":
            assert 1 <= int(request.url.params["limit"]) <= 1000
        if request.method != "POST" or request.url.path.endswith("/cancel"):
            assert recorder.bodies[recorder.requests.index(request)] == b""


async def test_the_create_body_is_the_shard_s_lines_in_a_requests_array(
    provider: AnthropicBatchProvider, recorder: Recorder, tmp_path: Path
) -> None:
    """The body streamed from the shard is ``{"requests": [...]}`` of documented items."""
    shard = tmp_path / "s.jsonl"
    ids = write_shard(provider, shard, 4)
    await provider.submit(shard, metadata={})
    create, body = recorder.requests[0], recorder.bodies[0]
    assert int(create.headers["content-length"]) == len(body)
    assert create.headers["content-type"] == "application/json"
    decoded = json.loads(body)
    assert list(decoded) == ["requests"]
    assert [entry["custom_id"] for entry in decoded["requests"]] == ids
    assert decoded["requests"] == [json.loads(raw) for raw in shard.read_bytes().splitlines()]
    for entry in decoded["requests"]:
        jsonschema.validate(entry, CREATE_ITEM_SCHEMA)


async def test_a_missing_key_fails_before_the_network_and_is_never_shown(
    emulator: Emulator, recorder: Recorder, tmp_path: Path
) -> None:
    """No key: a KyroError naming ANTHROPIC_API_KEY and no request; a key never in the repr."""
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport) as client:
        keyless = AnthropicBatchProvider(api_key="", base_url="http://emulator", client=client)
        write_shard(keyless, tmp_path / "s.jsonl", 1)
        with pytest.raises(KyroError, match="ANTHROPIC_API_KEY"):
            await keyless.submit(tmp_path / "s.jsonl", metadata={})
    assert emulator.stats().requests == 0
    keyed = AnthropicBatchProvider(api_key=KEY, base_url="http://emulator")
    assert KEY not in repr(keyed)
    assert repr(keyed) == "AnthropicBatchProvider(base_url='http://emulator', api_key=<set>)"
    await keyed.aclose()


async def test_settings_come_from_the_environment_like_the_vendor_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` are read; arguments win over them."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    from_env = AnthropicBatchProvider()
    assert from_env.base_url == "http://127.0.0.1:9"
    assert from_env._headers()["x-api-key"] == KEY
    given = AnthropicBatchProvider(api_key="other", base_url="http://127.0.0.1:8")
    assert (given.base_url, given._headers()["x-api-key"]) == ("http://127.0.0.1:8", "other")
    await from_env.aclose()
    await given.aclose()


async def test_overloaded_answers_are_retried_with_jittered_backoff(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """Two 529s, then success: two waits of 0.5 s and 1 s, each less up to 25 % jitter."""
    write_shard(provider, tmp_path / "s.jsonl", 1)
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    emulator.faults.add(HttpErrorFault(status=529, times=2, scope="retrieve"))
    status = await provider.poll(batch_id)
    assert status.terminal
    first, second = _waits(provider)
    assert 0.375 <= first <= 0.5
    assert 0.75 <= second <= 1.0


@pytest.mark.parametrize(("asked", "obeyed"), [(3.0, True), (60.0, True), (61.0, False)])
async def test_retry_after_is_obeyed_only_up_to_sixty_seconds(
    provider: AnthropicBatchProvider, emulator: Emulator, asked: float, obeyed: bool
) -> None:
    """A 429's retry-after within (0, 60] s is the wait; a longer ask falls back to backoff."""
    emulator.faults.add(HttpErrorFault(status=429, retry_after=asked, scope="list"))
    await provider.find({})
    (wait,) = _waits(provider)
    if obeyed:
        assert wait == asked
    else:
        assert 0.375 <= wait <= 0.5


async def test_x_should_retry_false_and_client_errors_are_not_retried(
    provider: AnthropicBatchProvider, emulator: Emulator
) -> None:
    """``x-should-retry: false`` on a 500, and a 400, fail at once with the server's words."""
    emulator.faults.add(HttpErrorFault(status=500, should_retry=False, scope="list"))
    with pytest.raises(ProviderError) as info:
        await provider.find({})
    assert (info.value.status_code, info.value.code) == (500, "api_error")
    emulator.faults.add(HttpErrorFault(status=400, message="bad thing", scope="list"))
    with pytest.raises(ProviderError, match="bad thing") as info:
        await provider.find({})
    assert info.value.code == "invalid_request_error"
    assert _waits(provider) == []
    assert emulator.stats().requests == 2


async def test_spent_retries_raise_a_provider_error_with_the_request_id(
    provider: AnthropicBatchProvider, emulator: Emulator
) -> None:
    """Three 529s exhaust two retries: ProviderError with status, type and request id."""
    emulator.faults.overloaded(times=3, scope="list")
    with pytest.raises(ProviderError, match="kept failing after retries") as info:
        await provider.find({})
    assert (info.value.status_code, info.value.code) == (529, "overloaded_error")
    assert (info.value.request_id or "").startswith("req_")
    assert len(_waits(provider)) == 2


async def test_the_key_never_reaches_an_error_or_a_log(
    provider: AnthropicBatchProvider, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A server message echoing the key is scrubbed; debug logs carry no header values."""
    caplog.set_level(logging.DEBUG)
    emulator.faults.add(HttpErrorFault(status=401, message=f"invalid x-api-key {KEY}"))
    with pytest.raises(ProviderError) as info:
        await provider.find({})
    assert KEY not in str(info.value)
    assert "invalid x-api-key <secret>" in str(info.value)
    assert "ANTHROPIC_API_KEY" in str(info.value)
    assert KEY not in caplog.text
    assert "GET /v1/messages/batches -> 401" in caplog.text


async def test_shards_beyond_the_limits_or_empty_are_refused_before_sending(
    emulator: Emulator, recorder: Recorder, tmp_path: Path
) -> None:
    """More requests or bytes than a batch takes, or none, is a KyroError and no call."""
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport) as client:
        small = fast_provider(
            client, base_url="http://emulator", limits=BatchLimits(max_requests=2, max_bytes=10**6)
        )
        write_shard(small, tmp_path / "three.jsonl", 3)
        with pytest.raises(KyroError, match="holds 3 requests; an Anthropic batch takes at most 2"):
            await small.submit(tmp_path / "three.jsonl", metadata={})
        (tmp_path / "empty.jsonl").write_bytes(b"\n\n")
        with pytest.raises(KyroError, match="holds no request"):
            await small.submit(tmp_path / "empty.jsonl", metadata={})
        with pytest.raises(KyroError, match="is gone"):
            await small.submit(tmp_path / "missing.jsonl", metadata={})
    assert emulator.stats().requests == 0
    with pytest.raises(KyroError, match="exceed what one Anthropic batch takes"):
        AnthropicBatchProvider(api_key=KEY, limits=BatchLimits(max_requests=200_000, max_bytes=1))


async def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """The connection drops after the batch was made: the one batch is found and returned."""
    write_shard(provider, tmp_path / "s.jsonl", 3)
    emulator.faults.add(DropConnectionFault(when="after", scope="create"))
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    assert [b["id"] for b in emulator.batches()] == [batch_id]
    assert emulator.stats().batches_created == 1


async def test_a_create_refused_with_a_5xx_is_sent_again_once_nothing_was_made(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """A 500 before anything was made: the list shows no candidate, so the create is resent."""
    write_shard(provider, tmp_path / "s.jsonl", 3)
    emulator.faults.add(HttpErrorFault(status=500, scope="create"))
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    assert [b["id"] for b in emulator.batches()] == [batch_id]


async def test_an_ambiguous_create_among_look_alikes_refuses_to_guess(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """Another same-size batch made meanwhile: AmbiguousBatchError naming both, no third batch."""
    foreign = emulator.create({"requests": [make_item(f"x{i}") for i in range(3)]})["id"]
    write_shard(provider, tmp_path / "s.jsonl", 3)
    emulator.faults.add(DropConnectionFault(when="after", scope="create"))
    with pytest.raises(AmbiguousBatchError, match="will not guess") as info:
        await provider.submit(tmp_path / "s.jsonl", metadata={})
    ids = [b["id"] for b in emulator.batches()]
    assert len(ids) == 2
    assert all(batch_id in str(info.value) for batch_id in ids)
    assert foreign in ids


async def test_find_walks_every_page_with_after_id(
    provider: AnthropicBatchProvider, emulator: Emulator, recorder: Recorder
) -> None:
    """230 batches come back from three pages of 100, paged by ``after_id``."""
    made = [emulator.create({"requests": [make_item("a")]})["id"] for _ in range(230)]
    found = await provider.find({})
    assert sorted(s.batch_id for s in found) == sorted(made)
    pages = [r.url.params for r in recorder.requests if r.url.path == "/v1/messages/batches"]
    assert [p.get("limit") for p in pages] == ["100", "100", "100"]
    assert pages[0].get("after_id") is None
    assert pages[1].get("after_id") == found[99].batch_id
    assert pages[2].get("after_id") == found[199].batch_id


async def test_find_matches_intent_time_size_and_skips_cancelled_batches() -> None:
    """Only batches made in the intent's window (skew before, a submit's length after), of its
    size and not cancelled, are candidates."""
    clock = [NOW]
    with Emulator(EmulatorConfig(in_progress_seconds=600), clock=lambda: clock[0]) as emu:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app)) as client:
            provider = fast_provider(client, base_url="http://emulator", clock_skew=60)
            old = emu.create({"requests": [make_item(f"o{i}") for i in range(2)]})["id"]
            clock[0] = NOW + 3600  # an hour later: the intent, then its batch
            intent = rfc3339(clock[0] - 30) or ""
            ours = emu.create({"requests": [make_item(f"u{i}") for i in range(2)]})["id"]
            bigger = emu.create({"requests": [make_item(f"b{i}") for i in range(3)]})["id"]
            cancelled = emu.create({"requests": [make_item(f"c{i}") for i in range(2)]})["id"]
            emu.cancel(cancelled)
            found = await provider.find({"kyro_intent_at": intent, "kyro_requests": "2"})
            assert [s.batch_id for s in found] == [ours]
            assert found[0].metadata == {}
            clock[0] += provider.submit_window + 120  # later than any submit could take
            late = emu.create({"requests": [make_item(f"l{i}") for i in range(2)]})["id"]
            again = await provider.find({"kyro_intent_at": intent, "kyro_requests": "2"})
            assert [s.batch_id for s in again] == [ours]
            wide = await provider.find({"kyro_requests": "2"})
            assert {s.batch_id for s in wide} == {ours, old, late}
            assert bigger not in {s.batch_id for s in wide}
            with pytest.raises(KyroError, match="not an ISO 8601 time"):
                await provider.find({"kyro_intent_at": "yesterday"})


async def test_results_come_from_the_configured_host_only(provider: AnthropicBatchProvider) -> None:
    """A results_url on another origin is not followed: the key stays on base_url's host."""
    same = MessageBatch(
        id="msgbatch_1", results_url="http://emulator/v1/messages/batches/x/results"
    )
    other = MessageBatch(id="msgbatch_1", results_url="https://elsewhere.invalid/results")
    assert provider._results_url(same) == "http://emulator/v1/messages/batches/x/results"
    assert provider._results_url(other) == "/v1/messages/batches/msgbatch_1/results"


async def test_results_of_a_running_batch_are_refused(tmp_path: Path) -> None:
    """Reading the results of a batch still in progress is a KyroError saying to poll first."""
    with Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW) as emu:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app)) as client:
            provider = fast_provider(client, base_url="http://emulator")
            write_shard(provider, tmp_path / "s.jsonl", 2)
            batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
            status = await provider.poll(batch_id)
            assert (status.state, status.request_counts.total) == ("running", 2)
            with pytest.raises(KyroError, match="still in_progress"):
                _ = [line async for line in provider.results(batch_id)]


async def test_a_dropped_results_download_resumes_without_repeats(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """A download cut after 300 bytes is fetched again; each request still comes back once."""
    ids = write_shard(provider, tmp_path / "s.jsonl", 5)
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    await provider.poll(batch_id)
    emulator.faults.add(DropConnectionFault(after_bytes=300, scope="results"))
    lines = [line async for line in provider.results(batch_id)]
    assert sorted(line.custom_id for line in lines) == sorted(ids)
    assert all(line.ok for line in lines)
    assert emulator.stats().results_downloads == 2


async def test_retry_policy_zero_never_retries(emulator: Emulator) -> None:
    """``RetryPolicy(max_retries=0)``: one 529 is the error, with no wait."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app)) as client:
        provider = fast_provider(
            client, base_url="http://emulator", retry=RetryPolicy(max_retries=0)
        )
        emulator.faults.overloaded()
        with pytest.raises(ProviderError):
            await provider.find({})
        assert _waits(provider) == []


async def test_a_key_a_header_cannot_carry_stops_submit_before_any_state(tmp_path: Path) -> None:
    """A key with a trailing carriage return: BatchJudge.submit refuses before writing state."""
    config = tmp_path / "judges.yml"
    config.write_text("judges:\n  - {name: a, prompt: 'x {{input}}'}\n", encoding="utf-8")
    provider = AnthropicBatchProvider(api_key=KEY + "\r", base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(KyroError) as info:
            await BatchJudge(provider, config).submit(["hello"])
    finally:
        await provider.aclose()
    assert "ends in whitespace (a carriage return)" in str(info.value)
    assert KEY not in str(info.value)
    assert not (tmp_path / ".kyro").exists()
