"""Serving the Message Batches emulator over real HTTP, with the OpenAI emulator's server.

The base URL is the server's root (``http://127.0.0.1:PORT``), as ``ANTHROPIC_BASE_URL`` takes
it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from kyro_anthropic.testing._emulator import Emulator
from kyro_openai import testing as openai_testing

__all__ = ["serve", "serve_forever"]


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
    openai_testing.serve_forever(
        emulator, host=host, port=port, on_bound=on_bound, log_level=log_level, path=""
    )


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
    with openai_testing.serve(
        emulator or Emulator(),
        host=host,
        port=port,
        log_level=log_level,
        startup_timeout=startup_timeout,
        path="",
    ) as url:
        yield url
