"""Serving the emulator over real HTTP with uvicorn: in a background thread, or in the
foreground for ``python3 -m kyro emulator``.

Anything with an ASGI ``app`` can be served this way (the Message Batches emulator is too);
``path`` is what the printed base URL ends with (``/v1`` here, as ``OPENAI_BASE_URL`` wants).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp

from kyro_openai.testing._emulator import Emulator
from kyro_openai.testing._guard import DroppedConnection

__all__ = ["Servable", "base_url", "bind", "serve", "serve_forever"]


class Servable(Protocol):
    """What can be served: an object with an ASGI ``app``."""

    @property
    def app(self) -> ASGIApp:
        """The ASGI application to serve."""
        ...


class _HideDrops(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_FILTER = _HideDrops()


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Example::

        sock = bind()                     # 127.0.0.1, a free port
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket, path: str = "/v1") -> str:
    """The API base URL (``http://host:port/v1``) of a bound socket."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{path}"


def _server(emulator: Servable, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    config = uvicorn.Config(
        emulator.app, http="h11", lifespan="off", log_level=log_level, access_log=False
    )
    return uvicorn.Server(config)


def serve_forever(
    emulator: Servable,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_bound: Callable[[str], object] = print,
    log_level: str = "warning",
    path: str = "/v1",
) -> None:
    """Serve in this thread until SIGINT or SIGTERM; ``on_bound`` gets the base URL first.

    Example::

        serve_forever(Emulator(), port=8000)      # prints http://127.0.0.1:8000/v1
    """
    # uvicorn re-raises the signal it stopped on once it has shut down; with SIGTERM's default
    # action that would kill the process before the emulator's temporary files are removed.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with bind(host, port) as sock:
            on_bound(base_url(sock, path))
            _server(emulator, log_level).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    """SIGTERM arrived: leave ``serve_forever`` normally."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


@contextlib.contextmanager
def serve(
    emulator: Servable | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
    path: str = "/v1",
) -> Iterator[str]:
    """Serve an emulator on ``host:port`` in a background thread; yields the base URL.

    Example::

        with serve(Emulator()) as url:             # "http://127.0.0.1:54321/v1"
            httpx.get(url + "/batches", headers={"Authorization": "Bearer x"})
    """
    emulator = emulator or Emulator()
    sock = bind(host, port)
    server = _server(emulator, log_level)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="kyro-emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the kyro emulator did not start")
            time.sleep(0.005)  # waiting for another thread, never in async code
        yield base_url(sock, path)
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()
