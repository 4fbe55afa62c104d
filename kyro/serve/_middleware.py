"""What every request passes through: the access log, the API key, the body cap, the last net.

* Access log: one structured line per request (method, path without the query, status,
  duration, client address), never a header or a body.
* Auth: every path but ``/healthz`` needs a key (see ``kyro.serve._auth``): 401 without one,
  403 with a wrong one.
* Body cap: a body over ``max_body_bytes`` is refused with 413 before it is read whole.
* Last net: an unexpected error answers 500 ``{"detail": "internal error"}`` and logs its
  type only — no trace, since a trace may quote the transcript being handled.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyro.serve._auth import KeyRing
from kyro.serve._views import error_response

__all__ = ["GuardMiddleware"]

_access = logging.getLogger("kyro.serve.access")
_log = logging.getLogger("kyro.serve")
_OPEN = ("/healthz",)


class _TooLarge(Exception):
    pass


class GuardMiddleware:
    """The pure-ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing, max_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
            await send(message)

        try:
            await self._handle(scope, receive, sending)
        except Exception as exc:
            _log.error(
                "%s %s: internal error (%s)", scope["method"], scope["path"], type(exc).__name__
            )
            if not status["sent"]:
                await error_response(500, "internal error")(scope, receive, sending)
        finally:
            client = scope.get("client")
            _access.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] not in _OPEN:
            verdict = self.keys.check(_header(scope, b"authorization"))
            if verdict != "ok":
                await _refuse(verdict, scope, receive, send)
                return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            try:
                body = await self._read(scope, receive)
            except _TooLarge:
                response = error_response(
                    413, f"the body is larger than {self.max_body_bytes} bytes; send fewer inputs"
                )
                await response(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _refuse(verdict: str, scope: Scope, receive: Receive, send: Send) -> None:
    if verdict == "missing":
        response = error_response(
            401,
            "authentication required: send `Authorization: Api-Key <key>`",
            headers={"WWW-Authenticate": 'Api-Key realm="kyro"'},
        )
    else:
        response = error_response(403, "this API key is not valid for this server")
    await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _replay(body: bytes, then: Receive) -> Receive:
    """A receive that gives the body read already, then passes on to the client's."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return receive
