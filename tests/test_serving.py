"""kyro.testing.serving: the socket, the URL and the background server every kyro server uses."""

from __future__ import annotations

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
