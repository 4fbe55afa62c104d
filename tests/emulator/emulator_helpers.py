"""Helpers shared by the emulator tests: input lines, uploads, batch round trips."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kyro_openai.testing import Emulator
from tests.spec_schemas import validate_component, validate_response

NOW = 1_700_000_000.0
AUTH = {"Authorization": "Bearer test-key"}


def api_client(emulator: Emulator, *, headers: dict[str, str] = AUTH) -> httpx.AsyncClient:
    """An HTTP client on ``emulator``'s ``/v1`` routes in-process (``headers={}`` for none)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator.app),
        base_url="http://emulator/v1",
        headers=headers,
    )


def request_line(
    custom_id: str,
    *,
    model: str = "gpt-4o-mini",
    url: str = "/v1/chat/completions",
    prompt: str | None = None,
) -> dict[str, Any]:
    """One batch input line for a chat request."""
    content = prompt if prompt is not None else f"Judge transcript {custom_id}."
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: list[Any]) -> bytes:
    """Lines as JSONL bytes (strings are written as they are)."""
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


def requests(n: int, prefix: str = "r") -> bytes:
    """``n`` valid chat request lines with custom ids ``r0`` … ``r{n-1}``."""
    return jsonl([request_line(f"{prefix}{i}") for i in range(n)])


async def upload(
    client: httpx.AsyncClient, data: bytes, filename: str = "input.jsonl", purpose: str = "batch"
) -> dict[str, Any]:
    """Upload a file, check the response against the spec, return the File object."""
    response = await client.post(
        "/files", files={"file": (filename, data)}, data={"purpose": purpose}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    validate_response("/files", "post", body)
    return body


async def create_batch(client: httpx.AsyncClient, data: bytes, **extra: Any) -> dict[str, Any]:
    """Upload ``data`` and create a chat-completions batch on it; return the Batch."""
    file = await upload(client, data)
    payload = {
        "input_file_id": file["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **extra,
    }
    response = await client.post("/batches", json=payload)
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    validate_response("/batches", "post", batch)
    return batch


async def get_batch(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    """Retrieve a batch and check it against the spec."""
    response = await client.get(f"/batches/{batch_id}")
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    validate_response("/batches/{batch_id}", "get", batch)
    return batch


async def created_and_read(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    """Create a batch on ``data`` and read it back once (the first read moves it along)."""
    return await get_batch(client, (await create_batch(client, data))["id"])


async def read_lines(client: httpx.AsyncClient, file_id: str | None) -> list[dict[str, Any]]:
    """A result file's lines, each checked against ``BatchRequestOutput`` ([] for no file)."""
    if file_id is None:
        return []
    response = await client.get(f"/files/{file_id}/content")
    assert response.status_code == 200
    lines = [json.loads(raw) for raw in response.content.splitlines()]
    for line in lines:
        validate_component("BatchRequestOutput", line)
        assert isinstance(line["custom_id"], str)
        assert line["id"].startswith("batch_req_")
    return lines
