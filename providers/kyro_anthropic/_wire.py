"""The Message Batches API's JSON shapes, as lenient msgspec Structs (unknown fields ignored).

Only what kyro reads is declared. Every field a server might leave out or null is optional, so
a poll never fails because the service grew or dropped a field.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ApiErrorBody",
    "BatchList",
    "ContentBlock",
    "ErrorEnvelope",
    "MessageBatch",
    "RequestCounts",
    "ResultLine",
    "WireMessage",
    "WireResult",
    "WireUsage",
]


class RequestCounts(msgspec.Struct, frozen=True, kw_only=True):
    """``request_counts``: all but ``processing`` stay 0 until the batch has ended."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        """Every request of the batch, whatever its state."""
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


class MessageBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A ``message_batch`` object; times are RFC 3339 strings."""

    id: str
    type: str | None = None
    processing_status: str | None = None
    request_counts: RequestCounts | None = None
    created_at: str | None = None
    expires_at: str | None = None
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    archived_at: str | None = None
    results_url: str | None = None


class BatchList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``GET /v1/messages/batches`` (newest first)."""

    data: list[MessageBatch] = []
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class ApiErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The inner ``error`` of an error envelope: its ``type`` is the error's code."""

    type: str | None = None
    message: str | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """``{"type": "error", "error": {"type": …, "message": …}, "request_id": …}``."""

    type: str | None = None
    error: ApiErrorBody | None = None
    message: str | None = None
    request_id: str | None = None


class ContentBlock(msgspec.Struct, frozen=True, kw_only=True):
    """One block of a Message's ``content``: ``text`` or ``tool_use`` (others are skipped)."""

    type: str
    text: str | None = None
    name: str | None = None
    input: Any = None


class WireUsage(msgspec.Struct, frozen=True, kw_only=True):
    """A Message's token usage."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class WireMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A succeeded request's Message."""

    content: list[ContentBlock] = []
    stop_reason: str | None = None
    usage: WireUsage | None = None
    model: str | None = None


class WireResult(msgspec.Struct, frozen=True, kw_only=True):
    """``result``: ``succeeded`` (with ``message``), ``errored`` (with ``error``), ``canceled``
    or ``expired``."""

    type: str
    message: WireMessage | None = None
    error: ErrorEnvelope | None = None


class ResultLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a batch's results JSONL."""

    custom_id: str
    result: WireResult | None = None
