"""A stateful, faithful emulator of Anthropic's Message Batches API.

It refuses what the real service refuses at create (a body that is not ``{"requests": […]}``,
1 to 100,000 items, custom_ids outside ``^[a-zA-Z0-9_-]{1,64}$`` or repeated, ``stream``,
``max_tokens: 0``, a body over 256 MB → 413) and checks each request's ``params`` only when the
batch runs, as the real service does (a bad request comes back ``errored``). Batches walk
``in_progress → ended`` (or ``canceling → ended``) on a clock you control, expire after 24 h
with the finished part kept, and stream their results JSONL; faults are injected on request
(429 with ``retry-after``, 529 overloaded, 5xx, dropped connections — also after the call was
carried out — per-request errors, prose replies, missing lines, expiry, latency). Replies come
from a pluggable responder (the OpenAI emulator's deterministic one by default), turned into a
``tool_use`` block when the request forces a tool.

Needs the ``emulator`` extra; ``import kyro_anthropic`` does not import it.

In-process::

    emulator = Emulator(EmulatorConfig(in_progress_seconds=60))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app),
                               base_url="http://emulator")
    emulator.faults.overloaded(times=2)
    emulator.advance(60)

Over real HTTP on 127.0.0.1: ``with serve(emulator) as url: ...`` or
``python3 -m kyro emulator --provider anthropic --port 8001``.
"""

from __future__ import annotations

from kyro_anthropic.testing._app import API_VERSIONS, create_app
from kyro_anthropic.testing._config import EmulatorConfig
from kyro_anthropic.testing._emulator import Emulator, EmulatorStats
from kyro_anthropic.testing._faults import (
    DropConnectionFault,
    ExpireFault,
    Fault,
    Faults,
    HttpErrorFault,
    LatencyFault,
    LineFault,
)
from kyro_anthropic.testing._server import serve, serve_forever

__all__ = [
    "API_VERSIONS",
    "DropConnectionFault",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "ExpireFault",
    "Fault",
    "Faults",
    "HttpErrorFault",
    "LatencyFault",
    "LineFault",
    "create_app",
    "serve",
    "serve_forever",
]
