"""The line formats LocalProvider reads and writes: OpenAI batch input and output lines.

Input (one request, as every kyro shard holds it)::

    {"custom_id": "t0-j0-r0", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

Output (OpenAI's ``BatchRequestOutput``; successes and failures share one file)::

    {"id": "…_req_1", "custom_id": "t0-j0-r0",
     "response": {"status_code": 200, "request_id": "…", "body": {chat.completion}}, "error": null}
    {"id": "…_req_2", "custom_id": "t0-j1-r0", "response": null,
     "error": {"code": "timeout", "message": "no reply within 30 s"}}

A line's ``id`` ends in ``_req_<n>``, ``n`` being the 1-based line number of the request in
the input shard, so a reader can tell which input lines have an outcome without keeping every
custom_id in memory.

Classification follows the OpenAI provider's rule: a line is ok only when ``error`` is null
and the response status is 2xx; otherwise the code is ``error.code``, else the body's
``error.code``, else ``http_<status>``. Retryable: 408, 429 (unless ``insufficient_quota``) and
5xx replies, and the codes in :data:`RETRYABLE_CODES`.
"""

from __future__ import annotations

import msgspec

from kyro import ResultError, ResultLine, Usage

__all__ = [
    "CHAT_URL",
    "NULL",
    "RETRYABLE_CODES",
    "ChatBody",
    "InputId",
    "InputLine",
    "OutputError",
    "OutputLine",
    "OutputResponse",
    "classify",
    "line_number",
]

CHAT_URL = "/v1/chat/completions"

#: Codes worth sending again unchanged: the OpenAI provider's, plus the local transport ones.
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


class InputLine(msgspec.Struct, kw_only=True):
    """One input line as read back: the body stays raw JSON until a backend needs it."""

    custom_id: str
    body: msgspec.Raw
    method: str = "POST"
    url: str = CHAT_URL


class InputId(msgspec.Struct):
    """Just the custom_id of an input line (for reporting requests that have no outcome)."""

    custom_id: str


NULL = msgspec.Raw(b"null")


class OutputResponse(msgspec.Struct, kw_only=True):
    """The HTTP reply of one request: status, the server's request id, the JSON body.

    ``body`` stays raw JSON (``null`` when there is none): it is copied, never re-parsed,
    on its way from the server to the output file.
    """

    status_code: int
    request_id: str | None = None
    body: msgspec.Raw = NULL


class OutputError(msgspec.Struct, kw_only=True):
    """Why a request has no usable reply: ``timeout``, ``connection_error``, ``http_429``…"""

    code: str
    message: str


class OutputLine(msgspec.Struct, kw_only=True):
    """One line of ``output.jsonl``."""

    id: str
    custom_id: str
    response: OutputResponse | None = None
    error: OutputError | None = None


class _Msg(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Msg | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class ChatBody(msgspec.Struct):
    """The parts of a chat.completion (or error envelope) that kyro reads."""

    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: _ErrorBody | None = None


_body_decoder = msgspec.json.Decoder(ChatBody)


def line_number(output_id: str) -> int | None:
    """The input line number an output line's ``id`` names, or None for a foreign id.

    Example::

        line_number("batch_local_ab12_req_7")   # 7
    """
    _, sep, tail = output_id.rpartition("_req_")
    return int(tail) if sep and tail.isdigit() else None


def _retryable_status(status: int, code: str | None) -> bool:
    if code == "insufficient_quota":  # billing: no retry fixes it
        return False
    return status in (408, 429) or status >= 500 or code in RETRYABLE_CODES


def classify(line: OutputLine) -> ResultLine:
    """Turn one output line into a :class:`kyro.ResultLine`.

    Example::

        classify(msgspec.json.decode(raw, type=OutputLine)).ok
    """
    response, error = line.response, line.error
    body: ChatBody | None = None
    if response is not None and bytes(response.body) != b"null":
        try:
            body = _body_decoder.decode(response.body)
        except msgspec.DecodeError:
            body = None
    usage = _usage(body)
    if error is None and response is not None and 200 <= response.status_code < 300:
        content = None
        if body is not None and body.choices and body.choices[0].message is not None:
            content = body.choices[0].message.content
        return ResultLine(custom_id=line.custom_id, ok=True, content=content, usage=usage)
    return ResultLine(custom_id=line.custom_id, ok=False, usage=usage, error=_error(line, body))


def _usage(body: ChatBody | None) -> Usage | None:
    if body is None or body.usage is None:
        return None
    u = body.usage
    return Usage(
        input_tokens=u.prompt_tokens,
        output_tokens=u.completion_tokens,
        total_tokens=u.total_tokens or u.prompt_tokens + u.completion_tokens,
    )


def _error(line: OutputLine, body: ChatBody | None) -> ResultError:
    response, error = line.response, line.error
    status = response.status_code if response is not None else None
    body_error = body.error if body is not None else None
    if error is not None:
        code, message = error.code, error.message
    elif body_error is not None and body_error.code:
        code, message = body_error.code, body_error.message or f"HTTP {status}"
    else:
        code = f"http_{status}" if status is not None else "unknown_error"
        message = (body_error.message if body_error else None) or f"HTTP {status}"
    if status is not None and not 200 <= status < 300:
        retryable = _retryable_status(status, code)
    else:
        retryable = code in RETRYABLE_CODES
    return ResultError(code=code, message=message, retryable=retryable)
