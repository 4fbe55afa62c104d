"""The OpenAI Files and Batches wire format, as msgspec structs.

Responses are read leniently: unknown fields are ignored and every field the spec does not
strictly need may be missing or ``null`` (Azure and OpenAI-compatible servers send both), so
every attribute except an object's ``id`` has a default. Requests are plain dicts built by the
provider, so nothing here forbids anything.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BatchList",
    "ChatBody",
    "ChatChoice",
    "ChatMessage",
    "EndpointError",
    "ErrorEnvelope",
    "FileObject",
    "InputLine",
    "LineError",
    "LineResponse",
    "OutputLine",
    "WireBatch",
    "WireBatchError",
    "WireCounts",
    "WireErrors",
    "WireUsage",
]


class FileObject(msgspec.Struct, frozen=True, kw_only=True):
    """A file as ``POST /files`` and ``GET /files/{id}`` return it."""

    id: str
    bytes: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None


class WireCounts(msgspec.Struct, frozen=True, kw_only=True):
    """``request_counts``; Azure's older API versions send null members."""

    total: int | None = None
    completed: int | None = None
    failed: int | None = None


class WireBatchError(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a batch's ``errors.data``."""

    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class WireErrors(msgspec.Struct, frozen=True, kw_only=True):
    """A batch's ``errors`` list object."""

    data: list[WireBatchError] | None = None


class WireBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The Batch object (timestamps are unix seconds, or ISO-8601 strings on Azure)."""

    id: str
    status: str | None = None
    endpoint: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: float | str | None = None
    request_counts: WireCounts | None = None
    errors: WireErrors | None = None
    metadata: dict[str, str] | None = None


class BatchList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``GET /batches``."""

    data: list[WireBatch] | None = None
    has_more: bool | None = None
    last_id: str | None = None


class EndpointError(msgspec.Struct, frozen=True, kw_only=True):
    """The ``error`` member of OpenAI's error envelope."""

    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """``{"error": {...}}``, the body of every OpenAI error response."""

    error: EndpointError | None = None


class PromptTokensDetails(msgspec.Struct, frozen=True, kw_only=True):
    """``usage.prompt_tokens_details``: how many prompt tokens the prompt cache served."""

    cached_tokens: int | None = None


class WireUsage(msgspec.Struct, frozen=True, kw_only=True):
    """A chat completion's ``usage``."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The assistant message of one choice."""

    content: str | None = None


class ChatChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One choice of a chat completion (several when the request set ``n``)."""

    message: ChatMessage | None = None
    index: int | None = None


class ChatBody(msgspec.Struct, frozen=True, kw_only=True):
    """A result line's ``response.body``: a chat completion, or an error envelope."""

    choices: list[ChatChoice] | None = None
    usage: WireUsage | None = None
    error: EndpointError | None = None


class LineResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A result line's ``response``: the endpoint's status and body."""

    status_code: int | None = None
    request_id: str | None = None
    body: ChatBody | None = None


class LineError(msgspec.Struct, frozen=True, kw_only=True):
    """A result line's ``error``: a failure that was not an HTTP reply (``batch_expired``)."""

    code: str | None = None
    message: str | None = None


class OutputLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an output or error file (the spec's ``BatchRequestOutput``)."""

    custom_id: str
    id: str | None = None
    response: LineResponse | None = None
    error: LineError | None = None


class InputLine(msgspec.Struct, frozen=True, kw_only=True):
    """The one field of an input line that results() needs: its ``custom_id``."""

    custom_id: str
