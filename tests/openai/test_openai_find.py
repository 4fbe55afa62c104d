"""find() always ends: a list endpoint that repeats its cursor or holds years of batches."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kyro_openai import OpenAIBatchProvider

NOW = 1_800_000_000


def _batch(batch_id: str, created_at: int, **metadata: str) -> dict[str, Any]:
    return {
        "id": batch_id,
        "object": "batch",
        "status": "completed",
        "created_at": created_at,
        "metadata": metadata,
    }


def _provider(handler: Any) -> OpenAIBatchProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIBatchProvider(api_key="sk-test", base_url="http://api.test/v1", client=client)


async def test_server_repeating_its_cursor_does_not_hang_find() -> None:
    """A list that answers has_more with the same last_id forever is read once, then stops."""
    pages: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        pages.append(request.url.params.get("after"))
        body = {
            "object": "list",
            "data": [_batch("batch_a", NOW, kyro_job="j1"), _batch("batch_b", NOW)],
            "has_more": True,
            "first_id": "batch_a",
            "last_id": "batch_b",
        }
        return httpx.Response(200, content=json.dumps(body))

    async with _provider(handler) as provider:
        found = await provider.find({"kyro_job": "j1"})
    assert [status.batch_id for status in found] == ["batch_a"]  # once, though listed twice
    assert pages == [None, "batch_b"]  # the second page repeats the cursor: stop


async def test_long_history_stops_at_batches_older_than_the_job() -> None:
    """Endless pages of ever older batches: listing stops at the first page older than the job."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        age = calls * 86_400  # each page a day older, forever
        data = [_batch(f"batch_{calls}_{i}", NOW - age - i) for i in range(3)]
        if calls == 1:
            data.insert(0, _batch("batch_mine", NOW, kyro_job="j1"))
        body = {"object": "list", "data": data, "has_more": True, "last_id": data[-1]["id"]}
        return httpx.Response(200, content=json.dumps(body))

    async with _provider(handler) as provider:
        found = await provider.find({"kyro_job": "j1"}, created_after=NOW - 3 * 86_400 - 10)
    assert [status.batch_id for status in found] == ["batch_mine"]
    assert calls == 4  # pages 1-3 may hold the job's batches; page 4 is wholly older


async def test_empty_page_ends_the_listing() -> None:
    """A page with no batches ends the listing even if it claims more."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        body = {"object": "list", "data": [], "has_more": True, "last_id": "batch_x"}
        return httpx.Response(200, content=json.dumps(body))

    async with _provider(handler) as provider:
        assert await provider.find({"kyro_job": "j1"}) == []
    assert calls == 1
