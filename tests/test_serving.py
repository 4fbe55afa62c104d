"""kyro.testing.serving: the socket, the URL and the background server every kyro server uses."""

from __future__ import annotations

import asyncio
import socket

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kyro.testing.serving import bind, run_in_thread, socket_url


def _app() -> Starlette:
    """A one-route app answering ``GET /ping`` with ``pong``."""

    async def ping(request: object) -> PlainTextResponse:
        return PlainTextResponse("pong")

    return Starlette(routes=[Route("/ping", ping)])


def test_bind_listens_on_a_free_loopback_port_and_names_it() -> None:
    """Port 0 gets a free port; the URL carries it, the path appended as given."""
    with bind() as sock:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1"
        assert port > 0
        assert socket_url(sock, "/v1") == f"http://127.0.0.1:{port}/v1"
        assert sock.get_inheritable()
    with bind(inheritable=False) as sock:
        assert not sock.get_inheritable()


def test_run_in_thread_serves_for_the_block_then_stops() -> None:
    """Requests are answered inside the block; afterwards the server has exited."""
    server = uvicorn.Server(uvicorn.Config(_app(), http="h11", lifespan="off", log_level="error"))
    with bind() as sock:
        with run_in_thread(server, sock, name="test-server"):
            reply = httpx.get(socket_url(sock, "/ping"), timeout=5)
            assert (reply.status_code, reply.text) == (200, "pong")
        assert server.should_exit


def test_connections_accepted_on_a_bound_socket_send_without_delay() -> None:
    """Connections accepted from ``bind()``'s socket have TCP_NODELAY set, so a response
    written as headers then body is not held back waiting for the client's ACK."""
    seen: list[int] = []

    async def accept_one(listening: socket.socket) -> None:
        accepted = asyncio.Event()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
                accepted.set()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        async with server:
            host, port = listening.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            await asyncio.wait_for(accepted.wait(), 10)
            writer.close()

    with bind() as sock:
        assert sock.proto == socket.IPPROTO_TCP
        asyncio.run(accept_one(sock))
    assert len(seen) == 1
    assert seen[0] != 0
