"""The Batches routes: create-time checks, the lifecycle on the emulator's clock, listing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kyro_openai.testing import Emulator, EmulatorConfig
from tests.emulator.emulator_helpers import (
    NOW,
    create_batch,
    created_and_read,
    get_batch,
    read_lines,
    requests,
    upload,
)
from tests.spec_schemas import validate_response

TIMED = EmulatorConfig(
    validating_seconds=10, in_progress_seconds=100, finalizing_seconds=5, cancelling_seconds=3
)


async def _create(client: httpx.AsyncClient, **payload: Any) -> httpx.Response:
    file = await upload(client, requests(2))
    body = {
        "input_file_id": file["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return await client.post("/batches", json={**body, **payload})


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"endpoint": "/v1/chat"}, "endpoint"),
        ({"completion_window": "48h"}, "completion_window"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"output_expires_after": {"anchor": "created_at", "seconds": 10}}, "output_expires_after"),
        ({"input_file_id": None}, "input_file_id"),
    ],
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, payload: dict[str, Any], param: str
) -> None:
    """Create-time problems are synchronous 400 envelopes naming the parameter."""
    response = await _create(client, **payload)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_metadata_at_the_caps_is_accepted(client: httpx.AsyncClient) -> None:
    """16 pairs with 64-character keys and 512-character values are within the caps."""
    metadata = {f"{i:02d}".ljust(64, "k"): "v" * 512 for i in range(16)}
    response = await _create(client, metadata=metadata)
    assert response.status_code == 200
    assert response.json()["metadata"] == metadata


async def test_create_needs_an_existing_batch_file(client: httpx.AsyncClient) -> None:
    """An unknown input file is 404; a file with another purpose is 400."""
    missing = await _create(client, input_file_id="file-nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "input_file_id"
    notes = await upload(client, b"hello", "notes.txt", purpose="user_data")
    wrong = await _create(client, input_file_id=notes["id"])
    assert wrong.status_code == 400
    assert "purpose" in wrong.json()["error"]["message"]


async def test_create_answers_validating(client: httpx.AsyncClient) -> None:
    """A new batch is ``validating`` with zero counts, a 24 h deadline and its metadata echoed."""
    batch = await create_batch(client, requests(2), metadata={"job": "j1"})
    assert batch["id"].startswith("batch_")
    assert batch["status"] == "validating"
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["created_at"] == int(NOW)
    assert batch["expires_at"] == int(NOW) + 24 * 3600
    assert batch["metadata"] == {"job": "j1"}
    assert batch["output_file_id"] is None


@pytest.mark.parametrize("config", [TIMED])
async def test_lifecycle_walks_every_status(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """validating → in_progress (counts growing) → finalizing → completed, timestamps set."""
    batch = await create_batch(client, requests(10))
    bid = batch["id"]
    emulator.advance(9)
    assert (await get_batch(client, bid))["status"] == "validating"
    emulator.advance(1)
    running = await get_batch(client, bid)
    assert running["status"] == "in_progress"
    assert running["in_progress_at"] == int(NOW) + 10
    assert running["model"] == "gpt-4o-mini"
    assert running["request_counts"] == {"total": 10, "completed": 0, "failed": 0}
    emulator.advance(40)
    assert (await get_batch(client, bid))["request_counts"]["completed"] == 4
    emulator.advance(60)
    finalizing = await get_batch(client, bid)
    assert finalizing["status"] == "finalizing"
    assert finalizing["finalizing_at"] == int(NOW) + 110
    assert finalizing["request_counts"]["completed"] == 10
    emulator.advance(5)
    done = await get_batch(client, bid)
    assert done["status"] == "completed"
    assert done["completed_at"] == int(NOW) + 115
    assert done["request_counts"] == {"total": 10, "completed": 10, "failed": 0}
    assert done["error_file_id"] is None
    assert done["errors"] is None


async def test_completed_output_is_complete_unordered_and_summed(
    client: httpx.AsyncClient,
) -> None:
    """Every request answers once, lines are not in input order, and usage sums the lines."""
    batch = await created_and_read(client, requests(20))
    lines = await read_lines(client, batch["output_file_id"])
    ids = [line["custom_id"] for line in lines]
    assert sorted(ids) == sorted(f"r{i}" for i in range(20))
    assert ids != [f"r{i}" for i in range(20)]
    for line in lines:
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["object"] == "chat.completion"
    prompt = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in lines)
    completion = sum(line["response"]["body"]["usage"]["completion_tokens"] for line in lines)
    usage = batch["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (prompt, completion)
    assert usage["total_tokens"] == prompt + completion
    output = (await client.get(f"/files/{batch['output_file_id']}")).json()
    assert output["purpose"] == "batch_output"
    assert output["filename"] == f"{batch['id']}_output.jsonl"


async def test_list_batches_newest_first_with_paging(client: httpx.AsyncClient) -> None:
    """Batches list newest first, 20 by default, paged with ``after`` and ``has_more``."""
    ids = [(await create_batch(client, requests(1)))["id"] for _ in range(3)]
    body = (await client.get("/batches")).json()
    validate_response("/batches", "get", body)
    assert [b["id"] for b in body["data"]] == ids[::-1]
    assert all(b["status"] == "completed" for b in body["data"])
    page = (await client.get("/batches", params={"limit": 2})).json()
    assert ([b["id"] for b in page["data"]], page["has_more"]) == (ids[:0:-1], True)
    rest = (await client.get("/batches", params={"after": page["last_id"]})).json()
    assert ([b["id"] for b in rest["data"]], rest["has_more"]) == ([ids[0]], False)


@pytest.mark.parametrize("limit", [0, 101, "many"])
async def test_list_batches_limit_range(client: httpx.AsyncClient, limit: int | str) -> None:
    """``limit`` outside 1..100 is a 400 envelope."""
    response = await client.get("/batches", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


async def test_unknown_batch_is_404(client: httpx.AsyncClient) -> None:
    """Retrieving or cancelling an unknown batch is a 404 envelope."""
    assert (await client.get("/batches/batch_nope")).status_code == 404
    assert (await client.post("/batches/batch_nope/cancel")).status_code == 404


async def test_token_limit_fault_fails_the_next_batch(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """``token_limit_exceeded`` fails the next batch with the real message; the one after runs."""
    emulator.faults.token_limit_exceeded(times=1)
    failed = await created_and_read(client, requests(2))
    assert failed["status"] == "failed"
    assert failed["failed_at"] == int(NOW)
    [error] = failed["errors"]["data"]
    assert (error["code"], error["line"], error["param"]) == ("token_limit_exceeded", None, None)
    assert error["message"].startswith(
        "Enqueued token limit reached for gpt-4o-mini in organization org-emulator. Limit: "
    )
    assert error["message"].endswith("once some in_progress batches have been completed.")
    assert failed["output_file_id"] is None
    ok = await created_and_read(client, requests(2))
    assert ok["status"] == "completed"
    assert emulator.stats().batches_created == 2
