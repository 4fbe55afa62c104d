"""A stateful, faithful emulator of OpenAI's Files + Batches API and ``/v1/chat/completions``.

It validates batch input files like the real service, walks batches through ``validating →
in_progress → finalizing → completed`` on a clock you control, supports cancel and expiry
with partial results, and injects faults on request (429 with Retry-After, 5xx, dropped
connections, per-line errors, malformed replies, missing lines, latency). Replies come from
a pluggable responder; the default one is deterministic and says its verdicts are emulated.

Needs the ``emulator`` extra (starlette, uvicorn, python-multipart); ``import kyro_openai``
does not import it.

In-process, for unit tests::

    from kyro_openai.testing import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(in_progress_seconds=60))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app),
                               base_url="http://emulator/v1",
                               headers={"Authorization": "Bearer test"})
    emulator.faults.rate_limit(times=2, retry_after=1)
    emulator.advance(60)

Over real HTTP on 127.0.0.1::

    with serve(emulator) as url:          # http://127.0.0.1:PORT/v1
        ...

or ``python3 -m kyro emulator --port 8000``; drive a separate process through the control
routes under ``/_emulator`` (stats, faults, clock, expiry).
"""

from __future__ import annotations

from kyro_openai.testing._app import create_app
from kyro_openai.testing._config import EmulatorConfig
from kyro_openai.testing._emulator import Emulator, EmulatorStats
from kyro_openai.testing._faultbook import Faults
from kyro_openai.testing._faults import (
    DropConnectionFault,
    DropDownloadFault,
    ExpireFault,
    Fault,
    HttpErrorFault,
    LatencyFault,
    LineFault,
    TokenLimitFault,
)
from kyro_openai.testing._guard import DroppedConnection
from kyro_openai.testing._responder import (
    Responder,
    ScriptedResponder,
    conform,
    default_responder,
)
from kyro_openai.testing._response_format import response_format_error
from kyro_openai.testing._server import Servable, serve, serve_forever

__all__ = [
    "DropConnectionFault",
    "DropDownloadFault",
    "DroppedConnection",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "ExpireFault",
    "Fault",
    "Faults",
    "HttpErrorFault",
    "LatencyFault",
    "LineFault",
    "Responder",
    "ScriptedResponder",
    "Servable",
    "TokenLimitFault",
    "conform",
    "create_app",
    "default_responder",
    "response_format_error",
    "serve",
    "serve_forever",
]
