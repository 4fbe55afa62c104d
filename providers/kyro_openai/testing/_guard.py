"""The ASGI layer in front of the routes: request ids, auth, call counting and HTTP faults.

A dropped connection is emulated by starting a response whose header name is illegal, so
the HTTP server (uvicorn's h11) refuses to write anything and closes the socket, then
raising :class:`DroppedConnection`. Over real HTTP the client sees
``httpx.RemoteProtocolError`` ("Server disconnected without sending a response"); mounted
in-process through ``httpx.ASGITransport`` the exception itself — a subclass of
``httpx.RemoteProtocolError`` — reaches the client. A download cut short sends the headers
and part of the body first; the client then sees ``httpx.RemoteProtocolError`` while
reading (in-process: when the request is sent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import Message, Receive, Scope, Send

from kyro.testing.serving import ApiGuard, DroppedConnection, drop_connection
from kyro_openai.testing._faults import DropConnectionFault, DropDownloadFault, HttpErrorFault
from kyro_openai.testing._wire import error_response, new_id

if TYPE_CHECKING:
    from kyro_openai.testing._emulator import Emulator

__all__ = ["DroppedConnection", "Guard"]


def _route_scopes(path: str) -> frozenset[str]:
    """The fault scopes an API path belongs to (``api`` plus its family)."""
    tail = path.split("/v1/", 1)[-1]
    if tail.startswith("files"):
        return frozenset(
            {"api", "files", "content"} if tail.endswith("/content") else {"api", "files"}
        )
    if tail.startswith("batches"):
        return frozenset({"api", "batches"})
    if tail.startswith("chat"):
        return frozenset({"api", "chat"})
    return frozenset({"api"})


def _authorized(headers: dict[bytes, bytes]) -> bool:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return True
    return bool(headers.get(b"api-key", b"").strip())


def _fault_response(fault: HttpErrorFault) -> Any:
    status = fault.status
    if status == 429 and fault.code == "insufficient_quota":
        message, type_ = (
            "Quota exhausted (emulated): check the plan and billing details.",
            "insufficient_quota",
        )
    elif status == 429:
        message, type_ = "Rate limit reached for requests (emulated).", "requests"
    elif status >= 500:
        message, type_ = (
            "The server had an error while processing the request (emulated).",
            "server_error",
        )
    else:
        message, type_ = f"Injected HTTP {status} (emulated).", "invalid_request_error"
    code = fault.code or ("rate_limit_exceeded" if status == 429 else None)
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
        headers["retry-after-ms"] = f"{fault.retry_after * 1000:g}"
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return error_response(
        status, fault.message or message, type=fault.type or type_, code=code, headers=headers
    )


class Guard(ApiGuard):
    """Wraps the routes: adds ``x-request-id``, checks the key, counts calls, injects faults.

    Control routes (``/_emulator/...``) need no key and never see faults.
    """

    emulator: Emulator

    def request_id(self) -> str:
        return new_id("req_", 32)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if not _authorized(dict(scope["headers"])):
            message = "Missing API key: send 'Authorization: Bearer <key>' or an 'api-key' header."
            await error_response(401, message, code="invalid_api_key")(scope, receive, send)
            return
        counters = self.emulator.counters
        counters.bump("requests")
        scopes = _route_scopes(path)
        chat = "chat" in scopes
        if chat:
            counters.bump("chat_in_flight")
        try:
            delay, action = self.emulator.faults.take_http(scopes)
            if delay > 0:
                await anyio.sleep(delay)
            if isinstance(action, HttpErrorFault):
                await _fault_response(action)(scope, receive, send)
            elif isinstance(action, DropConnectionFault):
                await drop_connection(send)
            elif isinstance(action, DropDownloadFault):
                await self.app(scope, receive, _cut_after(send, action.after_bytes))
            else:
                await self.app(scope, receive, send)
        finally:
            if chat:
                counters.bump("chat_in_flight", -1)


def _cut_after(send: Send, limit: int) -> Send:
    """A ``send`` that passes ``limit`` body bytes, then drops the connection."""
    sent = 0

    async def cut(message: Message) -> None:
        nonlocal sent
        if message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if sent + len(body) > limit or (more and sent + len(body) == limit):
                await send(
                    {"type": "http.response.body", "body": body[: limit - sent], "more_body": True}
                )
                raise DroppedConnection(
                    "the kyro emulator dropped the connection mid-download (injected fault)"
                )
            sent += len(body)
        await send(message)

    return cut
