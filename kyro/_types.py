"""Provider-neutral data: what the core hands a provider and what a provider hands back.

Everything here is a frozen ``msgspec.Struct``, so it is cheap to build on hot paths, encodes
to JSON for the state file, and cannot be mutated behind the core's back.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

__all__ = [
    "TERMINAL_STATES",
    "BatchError",
    "BatchLimits",
    "BatchState",
    "BatchStatus",
    "JudgeRequest",
    "Message",
    "RequestCounts",
    "ResponseSchema",
    "ResultError",
    "ResultLine",
    "Usage",
    "is_terminal",
    "parse_timestamp",
]


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One chat message of a request.

    Example::

        Message(role="system", content="You are a strict evaluator.")
    """

    role: str
    content: str


class ResponseSchema(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON schema the reply must follow, in neutral terms a provider encodes its own way.

    ``name`` identifies the schema (letters, digits, ``_`` and ``-``); ``strict`` asks the
    provider to enforce it exactly where it can (OpenAI's Structured Outputs), which needs
    every property required and no additional ones — as in :func:`kyro.verdict_schema`.

    Example::

        ResponseSchema(name="my_verdict", schema={"type": "object", ...})
    """

    name: str
    schema: dict[str, Any]
    strict: bool = True


class JudgeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One transcript × judge × run, ready for a provider to encode.

    ``params`` are the judge's provider parameters (temperature, max_tokens, …) passed through
    untouched; a ``response_format`` among them is the judge's own and wins over kyro's.
    ``json_output`` asks the provider for a JSON reply (``output_format: json``), and
    ``response_schema`` is the schema that reply follows (the verdict contract,
    :func:`kyro.verdict_schema`): a provider that can enforce a schema for
    ``model`` does, and one that cannot falls back to plain JSON output. For JSON judges the
    first message is kyro's own system message stating the verdict object.
    ``samples`` > 1 asks for that many replies to the one prompt (OpenAI's ``n``): the runs
    from ``custom_id``'s run index on, the prompt billed once.

    Example::

        JudgeRequest(custom_id="t0-j1-r0", model="gpt-4o-mini",
                     messages=(Message(role="user", content="Is it relevant?"),))
    """

    custom_id: str
    model: str
    messages: tuple[Message, ...]
    params: dict[str, Any] = {}
    json_output: bool = True
    response_schema: ResponseSchema | None = None
    samples: int = 1


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True):
    """How much one remote batch may hold: requests (lines) and bytes (newlines included).

    Example::

        BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)   # OpenAI
    """

    max_requests: int
    max_bytes: int


BatchState = Literal[
    "pending",
    "running",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
]
"""A provider-neutral batch state, a plain string as JSON and the state file carry it.

``completed``, ``failed``, ``expired`` and ``cancelled`` are terminal (:func:`is_terminal`):
the batch can no longer change.

Example::

    status = await provider.poll(batch_id)
    if status.state == "expired":
        ...
"""

TERMINAL_STATES: frozenset[BatchState] = frozenset({"completed", "failed", "expired", "cancelled"})
"""The batch states that can no longer change."""


def is_terminal(state: BatchState | None) -> bool:
    """True once a batch in ``state`` can no longer change (None: not polled yet).

    Example::

        is_terminal("expired"), is_terminal("running")   # (True, False)
    """
    return state in TERMINAL_STATES


class BatchError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job-level error reported by the provider (OpenAI's ``errors.data`` entries).

    ``retry_later`` marks errors that are not the input's fault and clear with time, such as
    OpenAI's ``token_limit_exceeded``: resubmit the same file later.
    """

    code: str
    message: str
    line: int | None = None
    param: str | None = None
    retry_later: bool = False


class RequestCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Requests in a batch: total, completed successfully, failed."""

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchStatus(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One poll's view of a remote batch.

    Example::

        status = await provider.poll(batch_id)
        if status.terminal:
            ...
    """

    batch_id: str
    state: BatchState
    request_counts: RequestCounts = RequestCounts()
    errors: tuple[BatchError, ...] = ()
    metadata: dict[str, str] = {}
    created_at: float | None = None
    provider_status: str | None = None

    @property
    def terminal(self) -> bool:
        """True once the batch can no longer change (completed, failed, expired, cancelled)."""
        return self.state in TERMINAL_STATES


_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: float | str | None) -> float | None:
    """Unix seconds (:attr:`BatchStatus.created_at`) from what a provider's API says: a unix
    number (or its text), or an RFC 3339 / ISO 8601 time with ``Z``, an offset or none (naive
    means UTC) and any number of fraction digits. Anything else is None.

    Example::

        parse_timestamp("2024-09-24T18:37:24.100435Z")   # 1727203044.100435
        parse_timestamp(1711471533)                      # 1711471533.0
    """
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class Usage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Token usage of one request, or summed over many.

    ``input_tokens`` counts every prompt token, ``cached_input_tokens`` those of them the
    provider served from its prompt cache (billed at the cached-input price).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
        )


class ResultError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why one request produced no reply.

    ``code`` is the provider's (``batch_expired``, ``rate_limit_exceeded``…) or one of
    kyro's own: ``missing`` (the request came back in no result file), ``http_<status>``,
    ``timeout``, ``connection_error``, ``callable_error``. ``retryable`` marks failures worth
    sending again unchanged (expired, cancelled, missing, 429, 5xx).
    """

    code: str
    message: str
    retryable: bool = False


class ResultLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One request's outcome as a provider streams it back.

    ``ok`` is true only for a 2xx reply with no error; ``content`` is then the assistant's
    text. Otherwise ``error`` says what happened. A request that asked for several samples
    (``JudgeRequest.samples``) lists every reply in ``choices``, in order (``content`` is the
    first); ``usage`` is then the whole request's.

    Example::

        async for line in provider.results(batch_id):
            print(line.custom_id, line.ok, line.content or line.error)
    """

    custom_id: str
    ok: bool
    content: str | None = None
    usage: Usage | None = None
    error: ResultError | None = None
    choices: tuple[str | None, ...] = ()
