"""Fault injection, observable from the client: HTTP faults, dropped connections, line faults."""

from __future__ import annotations

import json

import httpx
import pytest

from kyro_openai.testing import DroppedConnection, Emulator, EmulatorConfig, HttpErrorFault
from tests.emulator.emulator_helpers import (
    create_batch,
    created_and_read,
    read_lines,
    requests,
)

CONTROL = "http://emulator/_emulator"


async def test_rate_limit_has_retry_after_then_clears(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """A 429 fault answers the next N calls with Retry-After and retry-after-ms, then stops."""
    emulator.faults.rate_limit(times=2, retry_after=1.5)
    for _ in range(2):
        response = await client.get("/batches")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1.5"
        assert response.headers["retry-after-ms"] == "1500"
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert (await client.get("/batches")).status_code == 200
    assert emulator.stats().faults_fired == 2


async def test_insufficient_quota(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """``insufficient_quota`` is a 429 whose code and type say retrying will not help."""
    emulator.faults.insufficient_quota()
    error = (await client.get("/files")).json()["error"]
    assert (error["code"], error["type"]) == ("insufficient_quota", "insufficient_quota")


async def test_server_error_scoped_to_batches(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """A 5xx fault scoped to batches leaves file calls alone and hits the next batch call."""
    emulator.faults.server_error(status=503, scope="batches")
    assert (await client.get("/files")).status_code == 200
    response = await client.get("/batches")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


async def test_should_retry_header(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """An error fault can carry ``x-should-retry`` to steer the client's retry decision."""
    emulator.faults.add(HttpErrorFault(status=500, should_retry=False))
    assert (await client.get("/files")).headers["x-should-retry"] == "false"


def test_probabilistic_faults_replay_with_the_seed() -> None:
    """Probability faults draw from the seeded generator, so a seed replays the same pattern."""

    def pattern(seed: int) -> list[bool]:
        emulator = Emulator(EmulatorConfig(seed=seed))
        emulator.faults.add(HttpErrorFault(status=429, times=None, probability=0.5))
        fired = [emulator.faults.take_http(frozenset({"api"}))[1] is not None for _ in range(40)]
        emulator.close()
        return fired

    assert pattern(7) == pattern(7)
    assert 5 < sum(pattern(7)) < 35


async def test_dropped_connection_in_process(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """In-process, a dropped connection reaches the client as ``httpx.RemoteProtocolError``."""
    emulator.faults.drop_connection()
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await client.get("/batches")
    assert isinstance(caught.value, DroppedConnection)
    assert (await client.get("/batches")).status_code == 200


async def test_dropped_download_in_process(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """A download cut short raises ``httpx.RemoteProtocolError``; the retry gets every byte."""
    batch = await created_and_read(client, requests(20))
    emulator.faults.drop_download(after_bytes=100)
    url = f"/files/{batch['output_file_id']}/content"
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(url)
    assert len(await read_lines(client, batch["output_file_id"])) == 20


async def test_latency_fault_is_consumed(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """A latency fault delays the next call (an async sleep) and is used up after ``times``."""
    emulator.faults.latency(0.001, times=1)
    assert len(emulator.faults.active()) == 1
    assert (await client.get("/files")).status_code == 200
    assert emulator.faults.active() == []


async def test_line_faults(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """Error lines, HTTP-error lines, malformed replies and missing lines, each as specified."""
    emulator.faults.line_errors(custom_ids={"r0"}, code="server_error")
    emulator.faults.line_http_errors(custom_ids={"r1"}, status_code=400)
    emulator.faults.malformed_replies(custom_ids={"r2", "r3"})
    emulator.faults.missing_lines(custom_ids={"r4"})
    batch = await created_and_read(client, requests(8))
    assert batch["request_counts"] == {"total": 8, "completed": 5, "failed": 2}
    output = {line["custom_id"]: line for line in await read_lines(client, batch["output_file_id"])}
    errors = {line["custom_id"]: line for line in await read_lines(client, batch["error_file_id"])}
    assert sorted(output) == ["r2", "r3", "r5", "r6", "r7"]
    assert sorted(errors) == ["r0", "r1"]
    assert errors["r0"]["response"] is None
    assert errors["r0"]["error"]["code"] == "server_error"
    assert errors["r1"]["error"] is None
    assert errors["r1"]["response"]["status_code"] == 400
    assert set(errors["r1"]["response"]["body"]["error"]) == {"message", "type", "param", "code"}
    for custom_id in ("r2", "r3"):
        content = output[custom_id]["response"]["body"]["choices"][0]["message"]["content"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    assert json.loads(output["r5"]["response"]["body"]["choices"][0]["message"]["content"])


async def test_line_faults_by_fraction_are_deterministic(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """A fraction picks the same custom ids every time (a seeded hash), about that share."""
    emulator.faults.line_errors(fraction=0.3)
    first = await created_and_read(client, requests(100))
    second = await created_and_read(client, requests(100))
    failed = {line["custom_id"] for line in await read_lines(client, first["error_file_id"])}
    again = {line["custom_id"] for line in await read_lines(client, second["error_file_id"])}
    assert failed == again
    assert 15 < len(failed) < 45
    assert first["request_counts"]["failed"] == len(failed)


async def test_faults_through_control_routes(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """Faults can be armed, listed and cleared over HTTP with the same JSON structs."""
    armed = await client.post(
        f"{CONTROL}/faults",
        json=[
            {"kind": "http_error", "status": 429, "retry_after": 2},
            {"kind": "latency", "seconds": 0},
        ],
    )
    assert armed.status_code == 200
    assert [f["kind"] for f in armed.json()["data"]] == ["http_error", "latency"]
    assert (await client.get("/batches")).status_code == 429
    assert [f["kind"] for f in (await client.get(f"{CONTROL}/faults")).json()["data"]] == [
        "latency"
    ]
    assert (await client.delete(f"{CONTROL}/faults")).json()["data"] == []
    bad = await client.post(f"{CONTROL}/faults", json={"kind": "meteor"})
    assert bad.status_code == 400


async def test_stats_and_clock_routes(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """``/_emulator/stats`` counts calls and objects; ``clock/advance`` moves the clock."""
    await create_batch(client, requests(1))
    stats = (await client.get(f"{CONTROL}/stats")).json()
    assert (stats["batches_created"], stats["files_uploaded"], stats["requests"]) == (1, 1, 2)
    before = emulator.now()
    moved = await client.post(f"{CONTROL}/clock/advance", json={"seconds": 30})
    assert moved.json()["now"] == before + 30
    assert emulator.now() == before + 30
