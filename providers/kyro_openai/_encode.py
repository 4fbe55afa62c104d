"""OpenAI batch input lines: one ``JudgeRequest`` → one JSONL line, appended to a buffer.

The line (``BatchRequestInput``)::

    {"custom_id": "t0-j1-r0", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "…"}],
              "response_format": {"type": "json_object"}, "temperature": 0}}

UTF-8 without a BOM, one line per request, ``\\n`` after each. The fixed part of the line is a
msgspec Struct encoded by one module-level encoder straight into the caller's buffer; the judge's
``params`` (any keys) are spliced into ``body`` after it, so there is no per-request dict.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kyro import BatchLimits, BatchValidationError, JudgeRequest, Message

__all__ = ["CHAT_COMPLETIONS_URL", "OPENAI_LIMITS", "RESERVED_BODY_KEYS", "encode_request"]

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
"""OpenAI's documented limits per batch: 50,000 requests and 200 MB per input file."""

RESERVED_BODY_KEYS = frozenset({"model", "messages", "response_format", "stream"})
"""Body keys a judge's ``params`` may not set: kyro sets the first three, and a batch line
must never stream."""


class _ResponseFormat(msgspec.Struct, frozen=True):
    type: str


class _Body(msgspec.Struct, frozen=True, omit_defaults=True):
    model: str
    messages: tuple[Message, ...]
    response_format: _ResponseFormat | None = None


class _Line(msgspec.Struct, frozen=True):
    # ``body`` must stay the last field: params are spliced in before the final "}}".
    custom_id: str
    method: str
    url: str
    body: _Body


_JSON_OBJECT = _ResponseFormat(type="json_object")
_encoder = msgspec.json.Encoder()
_PARAMS_CACHE_SIZE = 256
_params_cache: dict[int, tuple[dict[str, Any], dict[str, Any], bytes]] = {}
_HEAD = b'{"custom_id":'
# The previous request's messages, model, json_output, url, params (the dict and a shallow
# copy, so a dict changed in place is noticed) and its line after the custom_id.
_last: tuple[tuple[Message, ...], str, bool, str, dict[str, Any], dict[str, Any], bytes] | None = (
    None
)


def encode_request(
    request: JudgeRequest, buffer: bytearray, *, url: str = CHAT_COMPLETIONS_URL
) -> None:
    """Append ``request`` as one OpenAI batch input line (newline included) to ``buffer``.

    Raises :class:`kyro.BatchValidationError` if the judge's ``params`` try to set
    ``model``, ``messages``, ``response_format`` or ``stream``.

    The runs of one transcript × judge share their messages object, so their lines differ
    only in ``custom_id`` (the first key): when a request has the very same messages object,
    model, JSON flag, params and url as the previous one, the rest of the previous
    line is reused rather than encoded again.

    Example::

        buffer = bytearray()
        encode_request(JudgeRequest(custom_id="t0-j0-r0", model="gpt-4o-mini",
                                    messages=(Message(role="user", content="Reply in JSON"),)),
                       buffer)
        buffer.endswith(b"}}\\n")   # True
    """
    global _last
    last = _last
    params = request.params
    if (
        last is not None
        and last[0] is request.messages
        and last[1] == request.model
        and last[2] == request.json_output
        and last[3] == url
        and (last[4] is params or not (params or last[4]))
        and last[5] == params
    ):
        buffer += _HEAD
        _encoder.encode_into(request.custom_id, buffer, -1)
        buffer += last[6]
        return
    extra = _encoded_params(params, request.custom_id) if params else None
    body = _Body(
        model=request.model,
        messages=request.messages,
        response_format=_JSON_OBJECT if request.json_output else None,
    )
    start = len(buffer)
    _encoder.encode_into(
        _Line(custom_id=request.custom_id, method="POST", url=url, body=body), buffer, -1
    )
    if extra is not None:
        # Replace the closing "}}" by ",<params without braces>}}".
        del buffer[-2:]
        buffer += extra
    buffer += b"\n"
    tail_start = start + len(_HEAD) + len(_encoder.encode(request.custom_id))
    with memoryview(buffer) as view:
        tail = bytes(view[tail_start:])
    _last = (request.messages, request.model, request.json_output, url, params, dict(params), tail)


def _encoded_params(params: dict[str, Any], custom_id: str) -> bytes:
    """``,"k":v,…}}`` for ``params``, cached per params dict (every request of a judge shares one).

    An entry keeps the dict itself (so its id cannot be reused) and a shallow copy, so a dict
    whose keys or values were replaced since is encoded afresh.
    """
    cached = _params_cache.get(id(params))
    if cached is not None and cached[0] is params and cached[1] == params:
        return cached[2]
    clash = RESERVED_BODY_KEYS.intersection(params)
    if clash:
        raise BatchValidationError(
            f"request {custom_id}: params may not set {', '.join(sorted(clash))}; kyro sets "
            "model, messages and response_format itself, and batch requests never stream"
        )
    encoded = b"," + _encoder.encode(params)[1:] + b"}"
    if len(_params_cache) >= _PARAMS_CACHE_SIZE:
        _params_cache.clear()
    _params_cache[id(params)] = (params, dict(params), encoded)
    return encoded
