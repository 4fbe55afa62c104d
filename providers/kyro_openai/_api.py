"""The OpenAI Files and Batches API objects, as msgspec structs (lines: :mod:`kyro_openai.wire`).

Responses are read leniently: unknown fields are ignored and every field the spec does not
strictly need may be missing or ``null`` (Azure and OpenAI-compatible servers send both), so
every attribute except an object's ``id`` has a default. Requests are plain dicts built by the
provider, so nothing here forbids anything.
"""

from __future__ import annotations

import msgspec

from kyro_openai.wire import EndpointError

__all__ = [
    "BatchList",
    "ErrorEnvelope",
    "FileObject",
    "WireBatch",
    "WireBatchError",
    "WireCounts",
    "WireErrors",
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


class ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """``{"error": {...}}``, the body of every OpenAI error response."""

    error: EndpointError | None = None
