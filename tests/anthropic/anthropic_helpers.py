"""Helpers shared by the Anthropic tests: requests, shards, a recording hook, a fast provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec

from kyro.provider import JudgeRequest, Message, RetryPolicy
from kyro_anthropic import ANTHROPIC_RETRY, AnthropicBatchProvider
from kyro_anthropic.testing import Emulator

NOW = 1_800_000_000.0
CONFIG = """\
version: 1
model: claude-haiku-4-5
judges:
  - name: relevance
    prompt: "Does the reply answer the question? {{input}}"
    output_format: json
  - name: safety
    model: claude-sonnet-4-5
    prompt: "Is the reply safe? {{input}}"
    output_format: json
"""
"""Two judges on two Claude models, with no JSON wording in their prompts."""
KEY = "sk-ant-MARKED-test-0000"
MODEL = "claude-haiku-4-5"

CREATE_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["custom_id", "params"],
    "properties": {
        "custom_id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "params": {
            "type": "object",
            "required": ["model", "max_tokens", "messages"],
            "additionalProperties": False,
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "max_tokens": {"type": "integer", "minimum": 1},
                "system": {"type": "string"},
                "messages": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"enum": ["user", "assistant"]},
                            "content": {"type": "string", "minLength": 1},
                        },
                    },
                },
                "tools": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "input_schema"],
                        "properties": {
                            "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,128}$"},
                            "description": {"type": "string"},
                            "input_schema": {
                                "type": "object",
                                "required": ["type"],
                                "properties": {"type": {"const": "object"}},
                            },
                        },
                    },
                },
                "tool_choice": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["auto", "any", "tool", "none"]},
                        "name": {"type": "string"},
                    },
                },
                "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                "top_p": {"type": "number", "minimum": 0, "maximum": 1},
                "top_k": {"type": "integer", "minimum": 0},
                "stop_sequences": {"type": "array", "items": {"type": "string"}},
                "metadata": {"type": "object"},
                "thinking": {"type": "object"},
                "service_tier": {"type": "string"},
            },
        },
    },
}
"""The documented shape of one ``requests`` item of ``POST /v1/messages/batches``."""


class Recorder(httpx.AsyncBaseTransport):
    """A transport in front of another that keeps every request sent, body included."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Read the (possibly streamed) body, keep the request, pass it on."""
        assert self.inner is not None
        self.bodies.append(await request.aread())
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


class Waits:
    """A ``sleep`` that records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast_provider(
    client: httpx.AsyncClient,
    recorder: Recorder | None = None,
    *,
    base_url: str,
    retry: RetryPolicy | None = None,
    **options: Any,
) -> AnthropicBatchProvider:
    """A provider on ``client`` whose retries record their waits instead of sleeping."""
    return AnthropicBatchProvider(
        api_key=KEY,
        base_url=base_url,
        client=client,
        retry=retry or ANTHROPIC_RETRY,
        sleep=Waits(),
        **options,
    )


def judge_request(
    custom_id: str, *, model: str = MODEL, params: dict[str, Any] | None = None, **kw: Any
) -> JudgeRequest:
    """A JSON judge request with a system and a user message."""
    return JudgeRequest(
        custom_id=custom_id,
        model=model,
        messages=(
            Message(role="system", content="You are a strict evaluator."),
            Message(role="user", content=f"Judge transcript {custom_id}."),
        ),
        params=params or {},
        **kw,
    )


def write_shard(
    provider: AnthropicBatchProvider, path: Path, n: int, prefix: str = "t", **kw: Any
) -> list[str]:
    """Encode ``n`` requests into a shard file at ``path``; return their custom_ids."""
    buffer = bytearray()
    ids = [f"{prefix}{i}-j0-r0" for i in range(n)]
    for custom_id in ids:
        provider.encode(judge_request(custom_id, **kw), buffer)
    path.write_bytes(bytes(buffer))
    return ids


def create_body(items: list[dict[str, Any]]) -> bytes:
    """A create body for ``items``."""
    return msgspec.json.encode({"requests": items})


def item(custom_id: str, **params: Any) -> dict[str, Any]:
    """One valid ``requests`` item, with ``params`` overriding the defaults."""
    base: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": f"Judge {custom_id}."}],
    }
    base.update(params)
    return {"custom_id": custom_id, "params": base}


API_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
"""The two headers every API call carries."""


def api_client(emulator: Emulator, *, headers: dict[str, str] = API_HEADERS) -> httpx.AsyncClient:
    """A raw HTTP client mounted on ``emulator`` in-process (``headers={}`` for none)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator.app), base_url="http://emulator", headers=headers
    )
