"""The face for provider authors: the protocol a batch or live backend implements, the
provider-neutral data it receives and returns, the errors it raises, and HTTP retries.

A provider package imports from here (and from ``kyro``), never from ``kyro._*``.

Example::

    from kyro.provider import BatchLimits, BatchStatus, JudgeRequest, ResultLine

    class MyProvider:                      # satisfies BatchProvider; no base class needed
        name = "mine"
        limits = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)

        def encode(self, request: JudgeRequest, buffer: bytearray) -> None: ...
        async def submit(self, path, *, metadata) -> str: ...
        async def poll(self, batch_id: str) -> BatchStatus: ...
        def results(self, batch_id: str) -> AsyncIterator[ResultLine]: ...
"""

from __future__ import annotations

from kyro._exceptions import AuthenticationError, BatchValidationError, KyroError, ProviderError
from kyro._provider import BatchProvider, CommandLineHooks, LiveProvider
from kyro._public import present as _present
from kyro._retry import RetryPolicy, header_problem, retry_after_seconds, send_with_retries
from kyro._types import (
    BatchError,
    BatchLimits,
    BatchState,
    BatchStatus,
    JudgeRequest,
    Message,
    RequestCounts,
    ResponseSchema,
    ResultError,
    ResultLine,
    Usage,
    is_terminal,
)

__all__ = [
    "AuthenticationError",
    "BatchError",
    "BatchLimits",
    "BatchProvider",
    "BatchState",
    "BatchStatus",
    "BatchValidationError",
    "CommandLineHooks",
    "JudgeRequest",
    "KyroError",
    "LiveProvider",
    "Message",
    "ProviderError",
    "RequestCounts",
    "ResponseSchema",
    "ResultError",
    "ResultLine",
    "RetryPolicy",
    "Usage",
    "header_problem",
    "is_terminal",
    "retry_after_seconds",
    "send_with_retries",
]

# Reprs, pickles and docs name this face, not the private module defining each name.
_present(globals(), __all__, __name__)
