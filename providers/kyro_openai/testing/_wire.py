"""The emulator's API objects, shaped like the OpenAI spec, and its error envelope (result
lines are :mod:`kyro_openai.wire`'s).

Every optional field is present and ``null`` when unset, as the real service sends them.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from starlette.responses import Response

__all__ = [
    "ApiError",
    "BatchErrorItem",
    "BatchErrors",
    "BatchObject",
    "BatchUsage",
    "Counts",
    "FileObject",
    "error_body",
    "error_response",
    "json_response",
    "new_id",
]

_ENCODER = msgspec.json.Encoder()


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh random id with the real service's prefix (``file-``, ``batch_``, ``req_``…)."""
    return prefix + secrets.token_hex(length // 2)


class FileObject(msgspec.Struct, frozen=True, kw_only=True):
    """The ``File`` object (spec ``OpenAIFile``)."""

    id: str
    object: str = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: str
    status: str = "processed"
    status_details: str | None = None


class BatchErrorItem(msgspec.Struct, frozen=True, kw_only=True):
    """One job-level error (spec ``BatchError``); ``line`` is 1-based."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(msgspec.Struct, frozen=True, kw_only=True):
    """The ``errors`` list of a failed batch."""

    object: str = "list"
    data: tuple[BatchErrorItem, ...] = ()


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    """``request_counts``: total, completed (successes only), failed."""

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchUsage(msgspec.Struct, frozen=True, kw_only=True):
    """A batch's summed token usage (spec ``Batch.usage``)."""

    input_tokens: int = 0
    input_tokens_details: dict[str, int] = msgspec.field(
        default_factory=lambda: {"cached_tokens": 0}
    )
    output_tokens: int = 0
    output_tokens_details: dict[str, int] = msgspec.field(
        default_factory=lambda: {"reasoning_tokens": 0}
    )
    total_tokens: int = 0


class BatchObject(msgspec.Struct, frozen=True, kw_only=True):
    """The ``Batch`` object as the emulator serves it."""

    id: str
    object: str = "batch"
    endpoint: str
    model: str | None = None
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str = "24h"
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: Counts = Counts()
    usage: BatchUsage = msgspec.field(default_factory=BatchUsage)
    metadata: dict[str, str] | None = None


class ApiError(Exception):
    """An API error the routes turn into an error envelope with ``status_code``.

    Example::

        raise ApiError(404, "No such File object: file-x", param="file_id")
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def response(self) -> Response:
        """This error as an envelope response."""
        return error_response(
            self.status_code, self.message, type=self.type, param=self.param, code=self.code
        )


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The ``{"error": {message, type, param, code}}`` envelope as a dict."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response encoded with msgspec (structs, dicts and lists alike)."""
    return Response(
        _ENCODER.encode(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def error_response(
    status_code: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error envelope response with the given status.

    Example::

        error_response(404, "No such File object: file-x", param="file_id")
    """
    body = error_body(message, type=type, param=param, code=code)
    return json_response(body, status_code, headers)
