"""Serving the emulator over real HTTP with uvicorn: in a background thread, or in the
foreground for ``python3 -m kyro emulator --provider anthropic``.

The base URL is the server's root (``http://127.0.0.1:PORT``), as ``ANTHROPIC_BASE_URL`` takes it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

from kyro_anthropic.testing._emulator import Emulator
from kyro_openai.testing import DroppedConnection

__all__ = ["serve", "serve_forever"]


class _HideDrops(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_FILTER = _HideDrops()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _server(emulator: Emulator, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    config = uvicorn.Config(
        emulator.app, http="h11", lifespan="off", log_level=log_level, access_log=False
    )
    return uvicorn.Server(config)


class _Stopped(Exception):
    """SIGTERM arrived: leave ``serve_forever`` normally."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def serve_forever(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_bound: Callable[[str], object] = print,
    log_level: str = "warning",
) -> None:
    """Serve in this thread until SIGINT or SIGTERM; ``on_bound`` gets the base URL first.

    Example::

        serve_forever(Emulator(), port=8001)      # prints http://127.0.0.1:8001
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with _bind(host, port) as sock:
            on_bound(_base_url(sock))
            _server(emulator, log_level).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def serve(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve an emulator in a background thread; yields the base URL.

    Example::

        with serve(Emulator()) as url:             # "http://127.0.0.1:54321"
            AnthropicBatchProvider(api_key="test", base_url=url)
    """
    emulator = emulator or Emulator()
    sock = _bind(host, port)
    server = _server(emulator, log_level)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="kyro-anthropic-emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the kyro Anthropic emulator did not start")
            time.sleep(0.005)  # waiting for another thread, never in async code
        yield _base_url(sock)
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()
