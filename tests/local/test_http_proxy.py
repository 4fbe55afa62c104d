"""How LocalProvider's requests leave the process: the same headers whichever way they are
sent, and through the proxy the environment names when it names one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyro.provider import JudgeRequest, Message
from kyro_local import LocalProvider

_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
_ANSWER = (
    b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"from the proxy"},"finish_reason":"stop"}]}'
)


def _request(content: str) -> JudgeRequest:
    return JudgeRequest(
        custom_id="t0-j0-r0", model="m", messages=(Message(role="user", content=content),)
    )


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment naming no proxy, whatever the machine's own says."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class _Proxy:
    """A forward proxy stand-in on 127.0.0.1: records each request line, answers itself."""

    def __init__(self) -> None:
        self.request_lines: list[bytes] = []
        self.url = ""

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.request_lines.append(head.split(b"\r\n", 1)[0])
            length = 0
            for field in head.split(b"\r\n")[1:]:
                name, _, value = field.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_ANSWER), _ANSWER)
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[_Proxy]:
    stand_in = _Proxy()
    server = await asyncio.start_server(stand_in._answer, "127.0.0.1", 0)
    stand_in.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield stand_in


async def test_headers_are_those_an_httpx_client_sends(
    server: Any, no_proxy_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A request sent straight to a transport carries the same headers as one sent through an
    ``httpx.AsyncClient`` handed to the provider: httpx's defaults, JSON, the bearer key."""
    direct = LocalProvider(server.base_url, api_key="sk-1", state_dir=tmp_path / "a")
    async with httpx.AsyncClient() as client:
        through = LocalProvider(
            server.base_url, api_key="sk-1", client=client, state_dir=tmp_path / "b"
        )
        try:
            assert (await direct.complete(_request("a"))).content == "reply:a"
            assert (await through.complete(_request("b"))).content == "reply:b"
        finally:
            await direct.aclose()
            await through.aclose()
    sent_direct, sent_through = server.state.headers
    assert sent_direct["user-agent"] == f"python-httpx/{httpx.__version__}"
    assert sent_direct["content-type"] == "application/json"
    assert sent_direct["authorization"] == "Bearer sk-1"
    assert sent_direct["accept"] == "*/*"
    assert sent_direct["connection"] == "keep-alive"
    assert {k: v for k, v in sent_direct.items() if k != "accept-encoding"} == {
        k: v for k, v in sent_through.items() if k != "accept-encoding"
    }
    assert "gzip" in sent_direct["accept-encoding"]


async def test_a_proxy_in_the_environment_carries_the_requests(
    proxy: _Proxy, refused_url: str, no_proxy_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With ``HTTP_PROXY`` set, each request goes to that proxy in absolute form, and the
    proxy's answer is the reply, although nothing listens at the endpoint itself."""
    no_proxy_settings.setenv("HTTP_PROXY", proxy.url)
    provider = LocalProvider(refused_url, state_dir=tmp_path / "s")
    try:
        reply = await provider.complete(_request("a"))
    finally:
        await provider.aclose()
    assert (reply.ok, reply.content) == (True, "from the proxy")
    endpoint = refused_url.rstrip("/") + "/chat/completions"
    assert proxy.request_lines == [f"POST {endpoint} HTTP/1.1".encode()]


async def test_without_a_proxy_the_endpoint_is_reached_directly(
    proxy: _Proxy, server: Any, no_proxy_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no proxy variable set, the endpoint answers and the stand-in proxy sees nothing."""
    provider = LocalProvider(server.base_url, state_dir=tmp_path / "s")
    try:
        reply = await provider.complete(_request("a"))
    finally:
        await provider.aclose()
    assert (reply.ok, reply.content) == (True, "reply:a")
    assert proxy.request_lines == []
