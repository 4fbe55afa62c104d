"""A small scripted OpenAI Files + Batches server for MockTransport tests."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import httpx

from kyro.provider import RetryPolicy
from kyro_openai import OpenAIBatchProvider
from tests.openai.openai_spec import validate, validate_create_file

BASE = "https://api.test/v1"
KEY = "sk-test-SECRET-0123456789"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


async def no_sleep(seconds: float) -> None:
    """A sleep that returns at once."""


class SleepLog:
    """A fake sleep recording the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def batch_json(batch_id: str = "batch_1", **fields: Any) -> dict[str, Any]:
    """A spec-shaped Batch object with overridable fields."""
    batch: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": "completed",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1711471533,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": {},
    }
    batch.update(fields)
    return batch


def error_json(code: str | None, message: str = "nope", kind: str = "invalid_request_error") -> Any:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeApi:
    """Files + Batches in memory; every request recorded; scripted replies served first."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.files: dict[str, bytes | Callable[[httpx.Request], httpx.Response]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.scripted: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.uploads: list[tuple[dict[str, str], str, bytes]] = []
        self._ids = itertools.count(1)

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Serve these replies (in order) to the next calls of ``method path``."""
        self.scripted[(method, path)].extend(replies)

    def client(self) -> httpx.AsyncClient:
        """A client whose transport is this fake."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def provider(self, **options: Any) -> OpenAIBatchProvider:
        """An OpenAIBatchProvider talking to this fake with no real sleeping."""
        options.setdefault("api_key", KEY)
        options.setdefault("base_url", BASE)
        options.setdefault("sleep", no_sleep)
        options.setdefault("retry", RetryPolicy(max_retries=2))
        return OpenAIBatchProvider(client=self.client(), **options)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1").removeprefix("/openai/v1")
        queue = self.scripted.get((request.method, path))
        if queue:
            reply = queue.popleft()
            if isinstance(reply, Exception):
                raise reply
            return reply if isinstance(reply, httpx.Response) else reply(request)
        parts = path.strip("/").split("/")
        if request.method == "POST" and path == "/files":
            return self._upload(request)
        if request.method == "POST" and path == "/batches":
            return self._create(request)
        if request.method == "GET" and path == "/batches":
            return self._list(request)
        if parts[0] == "batches" and len(parts) >= 2:
            batch = self.batches.get(parts[1])
            if batch is None:
                return httpx.Response(404, json=error_json(None, "No batch found"))
            if request.method == "POST" and parts[-1] == "cancel":
                batch["status"] = "cancelling"
            return httpx.Response(200, json=batch)
        if parts[0] == "files" and parts[-1] == "content":
            content = self.files.get(parts[1])
            if content is None:
                return httpx.Response(404, json=error_json(None, "No such File object"))
            return (
                httpx.Response(200, content=content)
                if isinstance(content, bytes)
                else content(request)
            )
        return httpx.Response(404, json=error_json(None, f"no route {path}"))

    def _upload(self, request: httpx.Request) -> httpx.Response:
        fields, filename, data = validate_create_file(request)
        self.uploads.append((fields, filename, data))
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = data
        return httpx.Response(
            200,
            json={
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": 1711471533,
                "filename": filename,
                "purpose": "batch",
                "status": "processed",
            },
        )

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate("CreateBatchRequest", body)
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = batch_json(
            batch_id,
            status="validating",
            input_file_id=body["input_file_id"],
            metadata=body.get("metadata") or {},
            created_at=1711471533 + len(self.batches),
        )
        return httpx.Response(200, json=self.batches[batch_id])

    def _list(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", 20))
        after = request.url.params.get("after")
        ordered = sorted(self.batches.values(), key=lambda b: -b["created_at"])
        if after is not None:
            ids = [b["id"] for b in ordered]
            ordered = ordered[ids.index(after) + 1 :]
        page = ordered[:limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(ordered) > limit,
            },
        )
