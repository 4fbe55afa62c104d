"""Streaming a batch's result files and classifying every line.

A file's content is read in chunks and split on ``b"\\n"`` as it arrives, so memory stays flat
in the file size. A failed or dropped download is retried; when the connection drops after
lines were already yielded, the file is downloaded again and the lines already seen are
skipped (result files never change once written), up to the retry policy's ``max_retries``
resumptions — after that a :class:`kyro.ProviderError` is raised.

A line is a success only when its ``error`` is null, its ``response`` is not, and the
response's status code is 2xx (the reference's robust rule); anything else is a failure coded
``error.code``, else ``response.body.error.code``, else ``http_<status>``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import msgspec

from kyro.provider import ResultError, ResultLine, Usage
from kyro_openai._http import Sleep
from kyro_openai._wire import OutputLine, WireUsage

__all__ = ["RETRYABLE_CODES", "classify", "decode_line", "iter_lines", "missing_line"]

#: Per-line error codes worth sending again unchanged (``timeout`` and ``connection_error``
#: are written by providers that run requests themselves, such as kyro_local).
RETRYABLE_CODES = frozenset(
    {
        "batch_cancelled",
        "batch_expired",
        "connection_error",
        "missing",
        "rate_limit_exceeded",
        "server_error",
        "timeout",
    }
)
_RETRYABLE_STATUSES = frozenset({408, 429})
#: Billing, not load: a 429 with this code fails the same way when sent again.
_NEVER_RETRY = frozenset({"insufficient_quota"})
_LINE_DECODER = msgspec.json.Decoder(OutputLine)


def _usage(wire: WireUsage | None) -> Usage | None:
    if wire is None:
        return None
    details = wire.prompt_tokens_details
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        total_tokens=wire.total_tokens or 0,
        cached_input_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def classify(line: OutputLine) -> ResultLine:
    """The neutral outcome of one output or error line.

    Example::

        classify(_LINE_DECODER.decode(raw)).ok
    """
    response = line.response
    body = response.body if response is not None else None
    status = response.status_code if response is not None else None
    usage = _usage(body.usage if body is not None else None)
    if line.error is None and status is not None and 200 <= status < 300:
        choices = body.choices if body is not None else None
        message = choices[0].message if choices else None
        samples: tuple[str | None, ...] = ()
        if choices is not None and len(choices) > 1:
            ordered = sorted(choices, key=lambda c: c.index if c.index is not None else 0)
            samples = tuple(c.message.content if c.message else None for c in ordered)
            message = ordered[0].message
        return ResultLine(
            custom_id=line.custom_id,
            ok=True,
            content=message.content if message is not None else None,
            usage=usage,
            choices=samples,
        )
    endpoint_error = body.error if body is not None else None
    if line.error is not None:
        code = line.error.code or "unknown"
        message_text = line.error.message or ""
    elif endpoint_error is not None and endpoint_error.code is not None:
        code = str(endpoint_error.code)
        message_text = endpoint_error.message or ""
    elif status is not None:
        code = f"http_{status}"
        message_text = (endpoint_error.message or "") if endpoint_error else ""
    else:
        code = "no_response"
        message_text = "the result line carries neither a response nor an error"
    retryable = code in RETRYABLE_CODES or (
        code not in _NEVER_RETRY
        and status is not None
        and (status >= 500 or status in _RETRYABLE_STATUSES)
    )
    return ResultLine(
        custom_id=line.custom_id,
        ok=False,
        usage=usage,
        error=ResultError(code=code, message=message_text or f"HTTP {status}", retryable=retryable),
    )


def decode_line(raw: bytes) -> OutputLine | None:
    """Decode one result line; a line without a readable ``custom_id`` gives None.

    UTF-8 is checked here rather than left to the JSON decoder, whose error for bad bytes
    is not the same in every release.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return _LINE_DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    try:
        loose = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):  # nested too deeply to be a result line
        return None
    custom_id = loose.get("custom_id") if isinstance(loose, dict) else None
    if not isinstance(custom_id, str):
        return None
    return OutputLine(custom_id=custom_id)  # unreadable shape: reported as no_response


def missing_line(custom_id: str) -> ResultLine:
    """The outcome of a request that came back in no result file."""
    return ResultLine(
        custom_id=custom_id,
        ok=False,
        error=ResultError(
            code="missing",
            message="the request appears in neither the output nor the error file",
            retryable=True,
        ),
    )


async def iter_lines(
    open_response: Callable[[], Awaitable[httpx.Response]],
    *,
    max_resumes: int,
    sleep: Sleep,
    give_up: Callable[[httpx.TransportError], Exception],
) -> AsyncIterator[bytes]:
    """Yield a download's non-empty lines (without ``b"\\n"``), resuming after a drop.

    ``open_response`` sends the (already retried) GET and returns a streaming 2xx response.
    The content must not change between downloads (result files never do): lines already
    yielded are skipped when the download starts again. After ``max_resumes`` drops,
    ``give_up(error)`` is raised, chained to the transport error.

    Example::

        async for line in iter_lines(open_response, max_resumes=2, sleep=anyio.sleep,
                                     give_up=lambda exc: KyroError(f"download failed: {exc}")):
            ...
    """
    done = 0  # complete lines consumed so far, blank ones included
    resumes = 0
    while True:
        response = await open_response()
        skip = done
        buffer = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) != -1:
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if skip:
                        skip -= 1
                        continue
                    done += 1
                    if line.strip():
                        yield line
                del buffer[:start]
        except httpx.TransportError as exc:
            if resumes >= max_resumes:
                raise give_up(exc) from exc
            resumes += 1
            await sleep(min(0.5 * 2 ** (resumes - 1), 8.0))
            continue
        finally:
            await response.aclose()
        if buffer.strip() and not skip:
            yield bytes(buffer)
        return
