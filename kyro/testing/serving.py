"""Serving an ASGI app over real HTTP with uvicorn: the one way kyro's servers run.

The emulators (``kyro_openai.testing``, ``kyro_anthropic.testing``) and ``kyro serve`` all bind
their socket, run uvicorn and stop here, so they start and stop alike:

* :func:`bind` listens on ``host:port`` (port 0: any free port) before the server starts, so
  the URL is known — and printed — before the first request can arrive.
* :func:`run_until_stopped` serves in this thread until SIGINT or SIGTERM and then *returns*:
  uvicorn shuts down gracefully on SIGTERM and raises the signal again, which with SIGTERM's
  default action would kill the process before its ``finally`` blocks (temporary files, a
  store's last commit) ran; a handler installed for the run turns that into a normal return.
* :func:`run_in_thread` serves in a daemon thread for as long as a ``with`` block lasts.
* :class:`ApiGuard`, :func:`with_header`, :func:`drop_connection` and
  :class:`DroppedConnection`: the ASGI pieces an emulator uses to stamp a request id on every
  answer, let its control routes through, check the rest, and drop a connection on purpose
  (an injected fault; :class:`HideDrops` keeps those out of uvicorn's error log).

It needs uvicorn (the ``emulator`` or ``serve`` extra), imported with this module only.

Example::

    server = uvicorn.Server(uvicorn.Config(app, http="h11", lifespan="off"))
    with bind() as sock, run_in_thread(server, sock):
        httpx.get(socket_url(sock, "/v1") + "/models")
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ApiGuard",
    "DroppedConnection",
    "HideDrops",
    "bind",
    "drop_connection",
    "run_in_thread",
    "run_until_stopped",
    "socket_url",
    "with_header",
]

_DROP_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [(b"x-kyro dropped connection", b"1")],  # illegal name: nothing is written
}


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by an emulator to drop a connection on purpose (an injected fault).

    Over real HTTP the client sees ``httpx.RemoteProtocolError``; mounted in-process through
    ``httpx.ASGITransport`` this exception itself (a subclass of it) reaches the client.
    """


class HideDrops(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


async def drop_connection(send: Send, what: str = "the connection") -> None:
    """Close the connection with no response (uvicorn's h11 refuses the illegal header that
    starts it, so nothing goes out), raising :class:`DroppedConnection`."""
    with contextlib.suppress(Exception):
        await send(_DROP_START)
    raise DroppedConnection(f"the kyro emulator dropped {what} (injected fault)")


def with_header(send: Send, name: bytes, value: bytes) -> Send:
    """A ``send`` that adds the header ``name: value`` to the response it starts.

    Example::

        send = with_header(send, b"x-request-id", b"req_1")
    """

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), (name, value)])
        await send(message)

    return stamped


class ApiGuard:
    """ASGI middleware in front of an emulator's routes. Every HTTP answer carries a request
    id (header ``id_header``, value :meth:`request_id`); control routes (``/_emulator/...``)
    go straight through; every other call goes to :meth:`guard`, which checks it, counts it,
    injects faults and passes it on to ``app``. Other scopes pass through untouched. A
    subclass names its emulator's type (``emulator: Emulator``).

    Example::

        class Guard(ApiGuard):
            emulator: Emulator
            id_header = b"x-request-id"

            def request_id(self) -> str:
                return "req_1"

            async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
                await self.app(scope, receive, send)
    """

    id_header = b"x-request-id"

    def __init__(self, app: ASGIApp, emulator: Any) -> None:
        self.app = app
        self.emulator = emulator

    def request_id(self) -> str:
        """A new id for one answer."""
        raise NotImplementedError

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, count and answer one API call (``send`` already stamps the request id)."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_header(send, self.id_header, self.request_id().encode())
        if scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        await self.guard(scope, receive, send)


def bind(
    host: str = "127.0.0.1", port: int = 0, *, backlog: int = 128, inheritable: bool = True
) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); ``inheritable`` lets a
    child process serve the same socket.

    Example::

        sock = bind()                     # 127.0.0.1, a free port
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on connections accepted
    # from a socket that says it is TCP, and without it every response written in two parts
    # (headers, then body) waits out the client's delayed ACK (about 40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(inheritable)
    return sock


def socket_url(sock: socket.socket, path: str = "") -> str:
    """``http://host:port`` of a bound socket, followed by ``path`` (``/v1``…).

    Example::

        socket_url(bind(port=8000), "/v1")   # 'http://127.0.0.1:8000/v1'
    """
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{path}"


class _Stopped(Exception):
    """SIGTERM arrived: leave :func:`run_until_stopped` normally."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def run_until_stopped(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on ``sock`` in this thread until SIGINT or SIGTERM, then return normally.

    The SIGTERM handler is installed only in the main thread (elsewhere the signal is not
    ours to take) and restored afterwards.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def run_in_thread(
    server: uvicorn.Server,
    sock: socket.socket,
    *,
    name: str = "kyro-server",
    startup_timeout: float = 10.0,
) -> Iterator[None]:
    """Serve on ``sock`` in a daemon thread while the block runs; stop and join it after.

    Raises RuntimeError when the server has not started within ``startup_timeout`` seconds.
    """
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server {name} did not start")
            time.sleep(0.005)  # waiting for another thread, never in async code
        yield
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
