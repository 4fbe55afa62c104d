"""The ASGI app: Message Batches routes, the guard in front of them, and control routes.

API routes (under the base URL, as the real service lays them out):

====================================================  ===================================
``POST /v1/messages/batches``                         create (body ``{"requests": […]}``)
``GET /v1/messages/batches``                          list: ``limit`` 1..1000 (20),
                                                      ``after_id`` / ``before_id``
``GET /v1/messages/batches/{id}``                     retrieve
``POST /v1/messages/batches/{id}/cancel``             cancel
``DELETE /v1/messages/batches/{id}``                  delete (ended batches only)
``GET /v1/messages/batches/{id}/results``             the results JSONL, streamed
====================================================  ===================================

Every API call needs ``x-api-key`` (any non-empty key; else 401 ``authentication_error``) and
``anthropic-version: 2023-06-01`` (else 400); every answer carries a ``request-id`` header and
errors use the envelope ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Control routes (no key, no faults): ``GET /_emulator/stats``, ``GET|POST|DELETE
/_emulator/faults``, ``POST /_emulator/clock/advance`` ``{"seconds": N}``, ``POST
/_emulator/batches/{id}/expire`` ``{"completed_lines": N}``, ``GET /_emulator/batches?contains=
TEXT`` (batches whose requests contain TEXT, with their request count and digest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyro.testing.serving import ApiGuard, DroppedConnection, drop_connection
from kyro_anthropic.testing._faults import (
    DropConnectionFault,
    Fault,
    HttpErrorFault,
)
from kyro_anthropic.testing._validate import ApiError

if TYPE_CHECKING:
    from kyro_anthropic.testing._emulator import Emulator

__all__ = ["API_VERSIONS", "create_app"]

API_VERSIONS = frozenset({"2023-06-01"})
_CHUNK = 1024 * 1024
_encoder = msgspec.json.Encoder()
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(data), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error answer in Anthropic's envelope."""
    body = {"type": "error", "error": {"type": type_, "message": message}}
    return _json(body, status, headers)


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _absolute(request: Request, view: dict[str, Any]) -> dict[str, Any]:
    url = view.get("results_url")
    if url:
        view = dict(view, results_url=str(request.base_url).rstrip("/") + url)
    return view


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "invalid_request_error", "limit: Input should be between 1 and 1000")
    return int(raw)


async def create_batch(request: Request) -> Response:
    """``POST /v1/messages/batches``: the body read whole up to the size limit (413 beyond)."""
    emulator = _emulator(request)
    limit = emulator.config.max_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(
                413,
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({limit}).",
            )
    try:
        data = msgspec.json.decode(bytes(body))
    except msgspec.DecodeError as exc:
        raise ApiError(
            400, "invalid_request_error", f"The request body is not valid JSON: {exc}"
        ) from exc
    view = await anyio.to_thread.run_sync(emulator.create, data)
    return _json(_absolute(request, view))


async def list_batches(request: Request) -> Response:
    """``GET /v1/messages/batches``: newest first."""
    page = _emulator(request).listing(
        limit=_limit(request),
        after_id=request.query_params.get("after_id"),
        before_id=request.query_params.get("before_id"),
    )
    page["data"] = [_absolute(request, view) for view in page["data"]]
    return _json(page)


async def retrieve_batch(request: Request) -> Response:
    """``GET /v1/messages/batches/{id}``."""
    view = _emulator(request).get(request.path_params["batch_id"])
    return _json(_absolute(request, view))


async def cancel_batch(request: Request) -> Response:
    """``POST /v1/messages/batches/{id}/cancel``."""
    view = _emulator(request).cancel(request.path_params["batch_id"])
    return _json(_absolute(request, view))


async def delete_batch(request: Request) -> Response:
    """``DELETE /v1/messages/batches/{id}``."""
    return _json(_emulator(request).delete(request.path_params["batch_id"]))


async def batch_results(request: Request) -> Response:
    """``GET /v1/messages/batches/{id}/results``: the JSONL, once the batch has ended."""
    path = _emulator(request).results_path(request.path_params["batch_id"])
    return FileResponse(path, media_type="application/binary")


# -- control ---------------------------------------------------------------------------------


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw) if raw.strip() else {}
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_request_error", f"The body is not valid JSON: {exc}") from exc


def _convert(data: Any, type_: Any, what: str) -> Any:
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request_error", f"Invalid {what}: {exc}.") from exc


class _Advance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seconds: float


class _Expire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    completed_lines: int | None = None


async def stats(request: Request) -> Response:
    """The emulator's counters."""
    return _json(_emulator(request).stats())


async def list_faults(request: Request) -> Response:
    """The faults still armed."""
    return _json({"data": _emulator(request).faults.active()})


async def add_faults(request: Request) -> Response:
    """Arm one fault or a list of them."""
    data = await _read_json(request)
    faults = _convert(data if isinstance(data, list) else [data], list[Fault], "fault")
    emulator = _emulator(request)
    emulator.faults.add(*faults)
    return _json({"data": emulator.faults.active()})


async def clear_faults(request: Request) -> Response:
    """Disarm every fault."""
    _emulator(request).faults.clear()
    return _json({"data": []})


async def advance_clock(request: Request) -> Response:
    """Move the clock forward by ``seconds``."""
    body: _Advance = _convert(await _read_json(request), _Advance, "clock advance")
    emulator = _emulator(request)
    emulator.advance(body.seconds)
    return _json({"now": emulator.now()})


async def expire_batch(request: Request) -> Response:
    """End a running batch as expired now."""
    body: _Expire = _convert(await _read_json(request), _Expire, "expiry")
    emulator = _emulator(request)
    batch_id = request.path_params["batch_id"]
    try:
        emulator.expire(batch_id, completed_lines=body.completed_lines)
    except KeyError:
        raise ApiError(404, "not_found_error", f"No batch found with id '{batch_id}'.") from None
    return _json(_absolute(request, emulator.get(batch_id)))


async def batches_containing(request: Request) -> Response:
    """Batches whose requests contain ``?contains=TEXT``."""
    text = request.query_params.get("contains", "")
    return _json({"data": _emulator(request).batches_containing(text)})


# -- the guard -------------------------------------------------------------------------------


def _scopes(method: str, path: str) -> frozenset[str]:
    tail = path.removeprefix("/v1/messages/batches").strip("/")
    if not tail:
        return frozenset({"api", "create" if method == "POST" else "list"})
    if tail.endswith("/results"):
        return frozenset({"api", "results"})
    if tail.endswith("/cancel"):
        return frozenset({"api", "cancel"})
    return frozenset({"api", "delete" if method == "DELETE" else "retrieve"})


def _fault_response(fault: HttpErrorFault) -> Response:
    status = fault.status
    type_ = (
        fault.type
        or _STATUS_TYPES.get(status)
        or ("api_error" if status >= 500 else "invalid_request_error")
    )
    message = fault.message or f"Injected {type_} (emulated)."
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return error_response(status, type_, message, headers)


def _swallow_then_drop(send: Send, after_bytes: int | None) -> Send:
    """A ``send`` that drops the connection: at once (the call still runs), or mid-body."""
    sent = 0

    async def cut(message: Message) -> None:
        nonlocal sent
        if after_bytes is None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await drop_connection(send)
            return
        if message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            if sent + len(body) > after_bytes:
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[: after_bytes - sent],
                        "more_body": True,
                    }
                )
                raise DroppedConnection("the kyro emulator dropped the download (injected fault)")
            sent += len(body)
        await send(message)

    return cut


class Guard(ApiGuard):
    """In front of the API routes: ``request-id``, key and version checks, counting, faults."""

    emulator: Emulator

    id_header = b"request-id"

    def request_id(self) -> str:
        from kyro_anthropic.testing._emulator import new_id

        return new_id("req_")

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers = dict(scope["headers"])
        if not headers.get(b"x-api-key", b"").strip():
            answer = error_response(401, "authentication_error", "x-api-key header is required")
            await answer(scope, receive, send)
            return
        version = headers.get(b"anthropic-version", b"").decode("latin-1")
        if version not in API_VERSIONS:
            message = (
                "anthropic-version: header is required"
                if not version
                else f"anthropic-version: {version!r} is not a valid version"
            )
            await error_response(400, "invalid_request_error", message)(scope, receive, send)
            return
        self.emulator.bump("requests")
        delay, action = self.emulator.faults.take_http(_scopes(scope["method"], path))
        if delay > 0:
            await anyio.sleep(delay)
        if isinstance(action, HttpErrorFault):
            await _fault_response(action)(scope, receive, send)
        elif isinstance(action, DropConnectionFault):
            if action.when == "before" and action.after_bytes is None:
                await drop_connection(send)
            await self.app(scope, receive, _swallow_then_drop(send, action.after_bytes))
        else:
            await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.type, exc.message)


def create_app(emulator: Emulator) -> ASGIApp:
    """The emulator's ASGI app (routes, control routes and the guard).

    Example::

        app = create_app(emulator)   # usually reached as ``emulator.app``
    """
    batches = "/v1/messages/batches"
    api = Starlette(
        routes=[
            Route(batches, create_batch, methods=["POST"]),
            Route(batches, list_batches, methods=["GET"]),
            Route(batches + "/{batch_id}", retrieve_batch, methods=["GET"]),
            Route(batches + "/{batch_id}", delete_batch, methods=["DELETE"]),
            Route(batches + "/{batch_id}/cancel", cancel_batch, methods=["POST"]),
            Route(batches + "/{batch_id}/results", batch_results, methods=["GET"]),
            Mount(
                "/_emulator",
                routes=[
                    Route("/stats", stats, methods=["GET"]),
                    Route("/faults", list_faults, methods=["GET"]),
                    Route("/faults", add_faults, methods=["POST"]),
                    Route("/faults", clear_faults, methods=["DELETE"]),
                    Route("/clock/advance", advance_clock, methods=["POST"]),
                    Route("/batches", batches_containing, methods=["GET"]),
                    Route("/batches/{batch_id}/expire", expire_batch, methods=["POST"]),
                ],
            ),
        ],
        exception_handlers={ApiError: _api_error},
    )
    api.state.emulator = emulator
    return Guard(api, emulator)
