"""Serving the emulator over real HTTP with uvicorn: in a background thread, or in the
foreground for ``python3 -m kyro emulator`` (both through :mod:`kyro.testing.serving`).

Anything with an ASGI ``app`` can be served this way (the Message Batches emulator is too);
``path`` is what the printed base URL ends with (``/v1`` here, as ``OPENAI_BASE_URL`` wants).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp

from kyro.testing.serving import HideDrops, bind, run_in_thread, run_until_stopped, socket_url
from kyro_openai.testing._emulator import Emulator

__all__ = ["Servable", "serve", "serve_forever"]


class Servable(Protocol):
    """What can be served: an object with an ASGI ``app``."""

    @property
    def app(self) -> ASGIApp:
        """The ASGI application to serve."""
        ...


_FILTER = HideDrops()


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
    with bind(host, port) as sock:
        on_bound(socket_url(sock, path))
        run_until_stopped(_server(emulator, log_level), sock)


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
    server = _server(emulator, log_level)
    with (
        bind(host, port) as sock,
        run_in_thread(server, sock, name="kyro-emulator", startup_timeout=startup_timeout),
    ):
        yield socket_url(sock, path)
