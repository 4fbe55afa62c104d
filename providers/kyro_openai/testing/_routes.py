"""The API routes: Files, Batches and ``/v1/chat/completions``, shaped like the spec."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kyro_openai.testing._responder import chat_completion, choice_count
from kyro_openai.testing._response_format import response_format_error
from kyro_openai.testing._wire import ApiError, json_response

if TYPE_CHECKING:
    from kyro_openai.testing._emulator import Emulator

__all__ = ["api_routes", "batch_filename_ok", "read_json"]

_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
_THIRTY_DAYS = 30 * 24 * 3600
_CHUNK = 1024 * 1024


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


async def read_json(request: Request) -> Any:
    """The request body as JSON; 400 envelope when it is not."""
    try:
        return msgspec.json.decode((await request.body()).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, "The request body is not valid UTF-8.") from exc
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from exc


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400, f"'{name}' must be an integer in {low}..{high}.", param=name, code="invalid_value"
        )
    return value


def _list_body(data: list[Any], has_more: bool) -> dict[str, Any]:
    first = data[0].id if data else None
    last = data[-1].id if data else None
    return {
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    }


def batch_filename_ok(filename: str) -> bool:
    """Whether the real service takes ``filename`` for a ``purpose=batch`` upload.

    Only a name with another extension than ``.jsonl`` is refused: the official SDKs name a
    part uploaded from bytes ``upload`` (no extension), and the service accepts it.

    Example::

        batch_filename_ok("upload"), batch_filename_ok("in.JSONL")   # (True, True)
        batch_filename_ok("in.json")                                 # False
    """
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    return suffix == "" or suffix.lower() == ".jsonl"


def _expiry_field(form: Any, name: str) -> str | None:
    value = form.get(f"expires_after[{name}]", form.get(f"expires_after.{name}"))
    return value if isinstance(value, str) else None


async def create_file(request: Request) -> Response:
    """``POST /files``: a multipart upload, spooled to disk and copied into the store."""
    emulator = _emulator(request)
    async with request.form() as form:
        upload = form.get("file")
        purpose = form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if not isinstance(purpose, str) or purpose not in _PURPOSES:
            supported = ", ".join(sorted(_PURPOSES))
            message = f"Invalid value for 'purpose': {purpose!r}. Supported: {supported}."
            raise ApiError(400, message, param="purpose", code="invalid_value")
        filename = upload.filename or "upload"
        if purpose == "batch" and not batch_filename_ok(filename):
            raise ApiError(400, "Invalid file format for Batch API. Must be .jsonl", param="file")
        anchor, seconds = _expiry_field(form, "anchor"), _expiry_field(form, "seconds")
        now = int(emulator.now())
        expires_at: int | None = now + _THIRTY_DAYS if purpose == "batch" else None
        if anchor is not None or seconds is not None:
            if (
                anchor != "created_at"
                or seconds is None
                or not seconds.isdigit()
                or not 3600 <= int(seconds) <= 2_592_000
            ):
                message = "'expires_after' needs anchor 'created_at' and seconds in 3600..2592000."
                raise ApiError(400, message, param="expires_after", code="invalid_value")
            expires_at = now + int(seconds)
        obj = await emulator.store.save_stream(
            upload.file, filename=filename, purpose=purpose, created_at=now, expires_at=expires_at
        )
    emulator.counters.bump("files_uploaded")
    return json_response(obj)


async def list_files(request: Request) -> Response:
    """``GET /files``: filtered by purpose, ordered by creation, paged by ``after``."""
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "'order' must be 'asc' or 'desc'.", param="order", code="invalid_value")
    limit = _int_param(request, "limit", 10_000, 1, 10_000)
    data, has_more = _emulator(request).store.listing(
        purpose=request.query_params.get("purpose"),
        order=order,
        after=request.query_params.get("after"),
        limit=limit,
    )
    return json_response(_list_body(data, has_more))


def _stored(request: Request) -> Any:
    file_id = request.path_params["file_id"]
    stored = _emulator(request).store.get(file_id)
    if stored is None:
        raise ApiError(404, f"No such File object: {file_id}", param="file_id", code="not_found")
    return stored


async def retrieve_file(request: Request) -> Response:
    """``GET /files/{file_id}``."""
    return json_response(_stored(request).obj)


async def file_content(request: Request) -> Response:
    """``GET /files/{file_id}/content``: the raw bytes, streamed from disk."""
    stored = _stored(request)
    _emulator(request).counters.bump("downloads")
    return _FileContent(stored.path)


class _FileContent(Response):
    """Streams a file from disk in chunks; the file is closed even if the client goes away."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        headers = {"content-length": str(size)}
        super().__init__(media_type="application/octet-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        with self.path.open("rb") as stream:
            while chunk := await anyio.to_thread.run_sync(stream.read, _CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def delete_file(request: Request) -> Response:
    """``DELETE /files/{file_id}``: the bytes stay while a running batch still reads them."""
    emulator = _emulator(request)
    stored = _stored(request)
    emulator.store.delete(stored.obj.id, keep_bytes=emulator.book.in_use(stored.path))
    emulator.counters.bump("files_deleted")
    return json_response({"id": stored.obj.id, "object": "file", "deleted": True})


async def create_batch(request: Request) -> Response:
    """``POST /batches``."""
    emulator = _emulator(request)
    return json_response(emulator.book.create(await read_json(request)))


async def list_batches(request: Request) -> Response:
    """``GET /batches``: newest first, ``limit`` 1..100 (default 20), paged by ``after``."""
    limit = _int_param(request, "limit", 20, 1, 100)
    book = _emulator(request).book
    data, has_more = await book.listing(after=request.query_params.get("after"), limit=limit)
    return json_response(_list_body(data, has_more))


async def retrieve_batch(request: Request) -> Response:
    """``GET /batches/{batch_id}``: the batch, advanced to the emulator's now."""
    return json_response(await _emulator(request).book.get(request.path_params["batch_id"]))


async def cancel_batch(request: Request) -> Response:
    """``POST /batches/{batch_id}/cancel``."""
    return json_response(await _emulator(request).book.cancel(request.path_params["batch_id"]))


async def chat_completions(request: Request) -> Response:
    """``POST /chat/completions``: one request answered at once by the responder."""
    emulator = _emulator(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    if not isinstance(body.get("messages"), list):
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    refused = response_format_error(body)
    if refused is not None:
        raise ApiError(400, refused[0], param=refused[1])
    n = choice_count(body)
    if isinstance(n, str):
        raise ApiError(400, n, param="n", code="invalid_value")
    contents = [await emulator.reply(body) for _ in range(n)]
    emulator.counters.bump("chat_completions")
    return json_response(chat_completion(body, contents, created=int(emulator.now())))


def api_routes() -> list[Route]:
    """The API routes, relative to the ``/v1`` base."""
    return [
        Route("/files", create_file, methods=["POST"]),
        Route("/files", list_files, methods=["GET"]),
        Route("/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/batches", create_batch, methods=["POST"]),
        Route("/batches", list_batches, methods=["GET"]),
        Route("/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
    ]
