"""The face for provider authors: the protocol a batch or live backend implements, the
provider-neutral data it receives and returns, the errors it raises, HTTP retries, and the
parsing of the batch times an API reports (``parse_timestamp``).

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

import typing as _typing

from kyro._public import lazy_face as _lazy_face

if _typing.TYPE_CHECKING:
    from kyro._exceptions import AuthenticationError, BatchValidationError, KyroError, ProviderError
    from kyro._provider import BatchProvider, CommandLineHooks, LiveProvider, line_parts
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
        parse_timestamp,
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
    "line_parts",
    "parse_timestamp",
    "retry_after_seconds",
    "send_with_retries",
]

# Where each name lives, imported on first use and then named after this face (see
# kyro/__init__.py): a provider's encoder needs the request types, not httpx and tenacity.
# The errors both faces export are taken from `kyro`, which names them.
_HOMES = {
    "AuthenticationError": "kyro",
    "BatchError": "kyro._types",
    "BatchLimits": "kyro._types",
    "BatchProvider": "kyro._provider",
    "BatchState": "kyro._types",
    "BatchStatus": "kyro._types",
    "BatchValidationError": "kyro",
    "CommandLineHooks": "kyro._provider",
    "JudgeRequest": "kyro._types",
    "KyroError": "kyro",
    "LiveProvider": "kyro._provider",
    "Message": "kyro._types",
    "ProviderError": "kyro",
    "RequestCounts": "kyro._types",
    "ResponseSchema": "kyro._types",
    "ResultError": "kyro._types",
    "ResultLine": "kyro._types",
    "RetryPolicy": "kyro._retry",
    "Usage": "kyro._types",
    "header_problem": "kyro._retry",
    "is_terminal": "kyro._types",
    "line_parts": "kyro._provider",
    "parse_timestamp": "kyro._types",
    "retry_after_seconds": "kyro._retry",
    "send_with_retries": "kyro._retry",
}
__getattr__, __dir__ = _lazy_face(globals(), _HOMES, __name__)
