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

Lines are read back and classified by the OpenAI provider's own rule
(``kyro_openai.classify_output_line``), so both providers judge an outcome the same way.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "CHAT_URL",
    "NULL",
    "InputId",
    "InputLine",
    "OutputError",
    "OutputLine",
    "OutputResponse",
    "line_number",
]

CHAT_URL = "/v1/chat/completions"


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


def line_number(output_id: str) -> int | None:
    """The input line number an output line's ``id`` names, or None for a foreign id.

    Example::

        line_number("batch_local_ab12_req_7")   # 7
    """
    _, sep, tail = output_id.rpartition("_req_")
    return int(tail) if sep and tail.isdigit() else None
