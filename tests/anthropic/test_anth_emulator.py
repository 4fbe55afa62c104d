"""The Message Batches emulator: refusals like the real service, lifecycle, results, faults."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kyro_anthropic.testing import Emulator, EmulatorConfig, LineFault
from tests.anthropic.anthropic_helpers import KEY, NOW, api_client, create_body, item

BATCHES = "/v1/messages/batches"


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["request-id"].startswith("req_")
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    error: dict[str, Any] = body["error"]
    return error


async def _create(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post(BATCHES, content=create_body(items))
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    return batch


async def _results(client: httpx.AsyncClient, batch_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"{BATCHES}/{batch_id}/results")
    assert response.status_code == 200, response.text
    lines = [json.loads(raw) for raw in response.content.splitlines()]
    return {line["custom_id"]: line["result"] for line in lines}


async def test_auth_and_version_headers_are_required(emulator: Emulator) -> None:
    """No x-api-key: 401 authentication_error; no or a wrong anthropic-version: 400."""
    async with api_client(emulator, headers={}) as raw:
        no_key = await raw.get(BATCHES, headers={"anthropic-version": "2023-06-01"})
        assert _error(no_key, 401)["type"] == "authentication_error"
        no_version = await raw.get(BATCHES, headers={"x-api-key": KEY})
        assert _error(no_version, 400)["message"] == "anthropic-version: header is required"
        wrong = await raw.get(BATCHES, headers={"x-api-key": KEY, "anthropic-version": "2020"})
        assert "'2020' is not a valid version" in _error(wrong, 400)["message"]
    assert emulator.stats().requests == 0


async def test_a_created_batch_is_a_spec_shaped_message_batch(client: httpx.AsyncClient) -> None:
    """Create answers a message_batch: id, RFC 3339 times, counts, no results yet."""
    config = EmulatorConfig(in_progress_seconds=60)
    with Emulator(config, clock=lambda: NOW) as emulator:
        async with api_client(emulator) as running:
            batch = await _create(running, [item("a"), item("b")])
    assert batch["id"].startswith("msgbatch_")
    assert batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {
        "processing": 2,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch["created_at"] == "2027-01-15T08:00:00.000000Z"
    assert batch["expires_at"] == "2027-01-16T08:00:00.000000Z"
    assert (batch["ended_at"], batch["cancel_initiated_at"], batch["results_url"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "requests: Field required"),
        ({"requests": []}, "requests: List should have at least 1 item"),
        ({"requests": [item("a")], "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"requests": [{"custom_id": "a"}]}, "requests.0.params: Input should be a valid dict"),
        ({"requests": [item("a.b")]}, "requests.0.custom_id: String should match pattern"),
        ({"requests": [item("a"), item("a")]}, "requests.1.custom_id: custom_id 'a' is not uniq"),
        ({"requests": [item("a", stream=True)]}, "streaming is not supported"),
        ({"requests": [item("a", max_tokens=0)]}, "max_tokens: 0 is not supported"),
    ],
)
async def test_create_refuses_what_the_real_service_refuses(
    client: httpx.AsyncClient, emulator: Emulator, body: dict[str, Any], words: str
) -> None:
    """Each malformed create is a 400 invalid_request_error saying what is wrong."""
    response = await client.post(BATCHES, json=body)
    error = _error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert emulator.stats().batches_created == 0


async def test_create_refuses_too_many_requests_and_too_many_bytes() -> None:
    """Beyond max_requests: 400; a body beyond max_bytes: 413 request_too_large."""
    config = EmulatorConfig(max_requests=2, max_bytes=2000)
    with Emulator(config, clock=lambda: NOW) as emulator:
        async with api_client(emulator) as client:
            many = await client.post(
                BATCHES, content=create_body([item(f"r{i}") for i in range(3)])
            )
            assert "at most 2 items" in _error(many, 400)["message"]
            big = [item("a", system="x" * 3000)]
            too_big = await client.post(BATCHES, content=create_body(big))
            assert _error(too_big, 413)["type"] == "request_too_large"


async def test_params_are_checked_per_request_when_the_batch_runs(
    client: httpx.AsyncClient,
) -> None:
    """Bad params make that request errored (the batch succeeds); others succeed."""
    batch = await _create(
        client,
        [
            item("good"),
            item("model", model="gpt-4o"),
            item("unknown", seed=3),
            item("hot", temperature=1.5),
            item("role", messages=[{"role": "assistant", "content": "hi"}]),
            item("tool", tool_choice={"type": "tool", "name": "nope"}),
        ],
    )
    done = (await client.get(f"{BATCHES}/{batch['id']}")).json()
    assert done["processing_status"] == "ended"
    assert done["request_counts"]["succeeded"] == 1
    assert done["request_counts"]["errored"] == 5
    results = await _results(client, batch["id"])
    assert results["good"]["type"] == "succeeded"
    kinds = {cid: r["error"]["error"]["type"] for cid, r in results.items() if cid != "good"}
    assert kinds == {
        "model": "not_found_error",
        "unknown": "invalid_request_error",
        "hot": "invalid_request_error",
        "role": "invalid_request_error",
        "tool": "invalid_request_error",
    }
    assert results["unknown"]["error"]["error"]["message"] == "seed: Extra inputs are not permitted"


async def test_a_forced_tool_is_answered_with_a_tool_use_block(client: httpx.AsyncClient) -> None:
    """With the verdict tool forced, the reply is a tool_use block holding the verdict."""
    tool = {"name": "record_verdict", "input_schema": {"type": "object"}}
    batch = await _create(
        client, [item("t", tools=[tool], tool_choice={"type": "tool", "name": "record_verdict"})]
    )
    message = (await _results(client, batch["id"]))["t"]["message"]
    (block,) = message["content"]
    assert (block["type"], block["name"], message["stop_reason"]) == (
        "tool_use",
        "record_verdict",
        "tool_use",
    )
    assert block["input"]["status"] in ("SUCCESS", "ERROR", "NA")
    assert "Emulated verdict" in block["input"]["root_cause"]
    assert message["usage"]["input_tokens"] > 0


async def test_the_lifecycle_follows_the_clock_and_cancel_keeps_finished_work() -> None:
    """in_progress until the clock passes; canceling then ended with some requests canceled."""
    config = EmulatorConfig(in_progress_seconds=60, canceling_seconds=10, partial_fraction=0.5)
    with Emulator(config, clock=lambda: NOW) as emulator:
        async with api_client(emulator) as client:
            running = await _create(client, [item(f"r{i}") for i in range(4)])
            doomed = await _create(client, [item(f"d{i}") for i in range(4)])
            cancel = (await client.post(f"{BATCHES}/{doomed['id']}/cancel")).json()
            assert cancel["processing_status"] == "canceling"
            assert cancel["cancel_initiated_at"] == "2027-01-15T08:00:00.000000Z"
            early = await client.get(f"{BATCHES}/{running['id']}/results")
            assert "has not ended" in _error(early, 400)["message"]
            emulator.advance(60)
            ended = (await client.get(f"{BATCHES}/{running['id']}")).json()
            assert ended["processing_status"] == "ended"
            assert ended["results_url"] == f"http://emulator{BATCHES}/{running['id']}/results"
            assert ended["request_counts"]["succeeded"] == 4
            cancelled = (await client.get(f"{BATCHES}/{doomed['id']}")).json()
            assert cancelled["request_counts"] == {
                "processing": 0,
                "succeeded": 2,
                "errored": 0,
                "canceled": 2,
                "expired": 0,
            }
            results = await _results(client, doomed["id"])
            assert sorted(r["type"] for r in results.values()) == [
                "canceled",
                "canceled",
                "succeeded",
                "succeeded",
            ]
            again = await client.post(f"{BATCHES}/{doomed['id']}/cancel")
            assert "has ended" in _error(again, 400)["message"]


async def test_a_batch_expires_after_24_hours_with_finished_work_kept() -> None:
    """Still running at 24 h: ended, half the requests expired, half succeeded."""
    config = EmulatorConfig(in_progress_seconds=90_000)
    with Emulator(config, clock=lambda: NOW) as emulator:
        async with api_client(emulator) as client:
            batch = await _create(client, [item(f"r{i}") for i in range(4)])
            emulator.advance(24 * 3600)
            done = (await client.get(f"{BATCHES}/{batch['id']}")).json()
            assert done["processing_status"] == "ended"
            assert (done["request_counts"]["expired"], done["request_counts"]["succeeded"]) == (
                2,
                2,
            )
            emulator.advance(29 * 24 * 3600)
            gone = await client.get(f"{BATCHES}/{batch['id']}/results")
            assert _error(gone, 404)["type"] == "not_found_error"


async def test_list_pages_newest_first_with_after_and_before_ids(
    client: httpx.AsyncClient,
) -> None:
    """``limit`` pages newest first; ``after_id`` goes older, ``before_id`` newer."""
    made = [(await _create(client, [item("a")]))["id"] for _ in range(5)]
    newest_first = list(reversed(made))
    first = (await client.get(BATCHES, params={"limit": 2})).json()
    assert [b["id"] for b in first["data"]] == newest_first[:2]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (
        True,
        newest_first[0],
        newest_first[1],
    )
    second = (await client.get(BATCHES, params={"limit": 2, "after_id": first["last_id"]})).json()
    assert [b["id"] for b in second["data"]] == newest_first[2:4]
    last = (await client.get(BATCHES, params={"limit": 2, "after_id": second["last_id"]})).json()
    assert ([b["id"] for b in last["data"]], last["has_more"]) == ([newest_first[4]], False)
    back = (await client.get(BATCHES, params={"limit": 2, "before_id": newest_first[2]})).json()
    assert [b["id"] for b in back["data"]] == newest_first[:2]
    default = (await client.get(BATCHES)).json()
    assert len(default["data"]) == 5
    for bad in ("0", "1001", "x"):
        response = await client.get(BATCHES, params={"limit": bad})
        assert "limit" in _error(response, 400)["message"]


async def test_delete_needs_an_ended_batch(client: httpx.AsyncClient) -> None:
    """Deleting an ended batch answers message_batch_deleted; it is then 404."""
    batch = await _create(client, [item("a")])
    deleted = (await client.delete(f"{BATCHES}/{batch['id']}")).json()
    assert deleted == {"id": batch["id"], "type": "message_batch_deleted"}
    missing = await client.get(f"{BATCHES}/{batch['id']}")
    assert _error(missing, 404)["type"] == "not_found_error"


async def test_line_faults_shape_the_results(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """Errored, prose and missing lines are injected per custom_id into the next batch."""
    emulator.faults.add(
        LineFault(mode="errored", error_type="overloaded_error", custom_ids=frozenset({"e"})),
        LineFault(mode="malformed", custom_ids=frozenset({"m"})),
        LineFault(mode="missing", custom_ids=frozenset({"x"})),
    )
    batch = await _create(client, [item("ok"), item("e"), item("m"), item("x")])
    results = await _results(client, batch["id"])
    assert set(results) == {"ok", "e", "m"}
    assert results["e"]["error"]["error"]["type"] == "overloaded_error"
    assert results["m"]["message"]["content"] == [{"type": "text", "text": "I think it is fine."}]


async def test_control_routes_drive_a_separate_process(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """Faults, clock, expiry and the batch search work through ``/_emulator`` without a key."""
    async with api_client(emulator, headers={}) as control:
        armed = await control.post("/_emulator/faults", json={"kind": "http_error", "status": 529})
        assert armed.json()["data"][0]["status"] == 529
        overloaded = await client.get(BATCHES)
        assert _error(overloaded, 529)["type"] == "overloaded_error"
        batch = await _create(client, [item("needle-1"), item("b")])
        found = (await control.get("/_emulator/batches", params={"contains": "needle-1"})).json()
        assert [(b["id"], b["requests"]) for b in found["data"]] == [(batch["id"], 2)]
        moved = (await control.post("/_emulator/clock/advance", json={"seconds": 5})).json()
        assert moved["now"] == NOW + 5
        stats = (await control.get("/_emulator/stats")).json()
        assert (stats["batches_created"], stats["faults_fired"]) == (1, 1)
        bad = await control.post("/_emulator/faults", json={"kind": "nope"})
        assert bad.status_code == 400
