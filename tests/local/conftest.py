"""A tiny chat-completions server on 127.0.0.1 for LocalProvider's tests, plus shard helpers.

The reply depends on the first message's content:

* ``ok`` (or anything else) — 200 with ``reply:<content>`` and a fixed usage;
* ``sleep:<seconds>`` — the same, after a pause;
* ``hang`` — never answers (until the test ends);
* ``fail:<status>:<n>:<key>`` — ``status`` for the first ``n`` calls with that key, then 200
  (429 carries ``Retry-After: 7``; 502 a plain-text body; 400 an OpenAI error envelope).

The server counts calls and requests in flight, and keeps the headers it saw.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kyro.provider import JudgeRequest, Message
from kyro_openai import encode_request

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


class ServerState:
    """What the test server observed; reset before each test."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorization: list[str | None] = []
        self.headers: list[dict[str, str]] = []  # every request's headers, names lower-case
        self.released = False


def _reply(content: str, model: str) -> JSONResponse:
    return JSONResponse(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"reply:{content}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
        headers={"x-request-id": "req_test"},
    )


def _failure(status: int) -> Response:
    if status == 429:
        body = {"error": {"message": "slow down", "type": "requests", "code": None}}
        return JSONResponse(body, status_code=429, headers={"retry-after": "7"})
    if status == 502:
        return PlainTextResponse("Bad gateway", status_code=502)
    if status == 400:
        body = {"error": {"message": "bad params", "code": "invalid_request_error"}}
        return JSONResponse(body, status_code=400)
    return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=status)


def make_app(state: ServerState) -> Starlette:
    """The chat-completions app, recording into ``state``."""

    async def chat(request: Request) -> Response:
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        state.authorization.append(request.headers.get("authorization"))
        state.headers.append(dict(request.headers))
        try:
            body = await request.json()
            content: str = body["messages"][0]["content"]
            state.calls[content] += 1
            if content.startswith("sleep:"):
                await asyncio.sleep(float(content.split(":")[1]))
            elif content == "hang":
                # the flag is set from the test's thread, which cannot set an asyncio.Event
                while not state.released:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                return PlainTextResponse("released", status_code=503)
            elif content.startswith("fail:"):
                _, status, times, _key = content.split(":")
                if state.calls[content] <= int(times):
                    return _failure(int(status))
            return _reply(content, body["model"])
        finally:
            state.in_flight -= 1

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


class TestServer:
    """A running server: its ``base_url`` and observed ``state``."""

    def __init__(self, base_url: str, state: ServerState) -> None:
        self.base_url = base_url
        self.state = state


@pytest.fixture(scope="session")
def _server() -> Iterator[TestServer]:
    state = ServerState()
    config = uvicorn.Config(make_app(state), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield TestServer(f"http://127.0.0.1:{port}/v1", state)
    state.released = True
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(_server: TestServer) -> Iterator[TestServer]:
    """The shared test server, with fresh counters; hung requests are released afterwards."""
    _server.state.reset()
    yield _server
    _server.state.released = True


@pytest.fixture
def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write_shard(path: Path, contents: list[str], *, model: str = "m") -> Path:
    """A shard with one request per content, custom ids ``t<i>-j0-r0``."""
    buf = bytearray()
    for i, content in enumerate(contents):
        messages = (Message(role="user", content=content),)
        encode_request(JudgeRequest(custom_id=f"t{i}-j0-r0", model=model, messages=messages), buf)
    path.write_bytes(bytes(buf))
    return path


ShardMaker = Callable[[list[str]], Path]


@pytest.fixture
def make_shard(tmp_path: Path) -> ShardMaker:
    """Writes a shard of the given message contents under tmp_path and returns its path."""
    counter = iter(range(1_000_000))
    return lambda contents: write_shard(tmp_path / f"shard-{next(counter)}.jsonl", contents)


class FakeSleep:
    """An injected sleep that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    """A sleep for retry policies that never really sleeps."""
    return FakeSleep()
