"""The OpenAI batch line format, in both directions: its one owner.

Every OpenAI-compatible batch speaks it — the OpenAI provider writes request lines and reads
result lines, its emulator and ``kyro_local`` read request lines and write result lines — so
the line shapes, the request encoder, the result decoder and the rule saying which failures
are worth sending again live here, once, for all of them.

A request line (``BatchRequestInput``), UTF-8 without a BOM, ``\\n`` after each::

    {"custom_id": "t0-j1-r0", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [...], "response_format": {...}}}

A result line (``BatchRequestOutput``; output and error files share the shape)::

    {"id": "batch_req_1", "custom_id": "t0-j1-r0",
     "response": {"status_code": 200, "request_id": "req_1", "body": {chat.completion}},
     "error": null}

``response_format``, first found: the judge's own ``params.response_format`` (passed as is);
Structured Outputs — ``{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}``
from the request's ``response_schema`` — when the model supports them
(:func:`supports_structured_outputs`, or the caller's ``structured_outputs=True/False``);
JSON mode (``{"type": "json_object"}``) for any other JSON request. The fixed part of a
request line is a msgspec Struct encoded by one module-level encoder straight into the
caller's buffer; the judge's ``params`` (any keys) are spliced into ``body`` after it, so
there is no per-request dict.

The line Structs are generic in the body, so one shape serves every side: a reader decodes
``OutputLine[ChatBody]`` (a typed chat completion, read leniently: every field may be missing
or null, as Azure and look-alike servers send them), a writer fills ``OutputLine[msgspec.Raw]``
or ``OutputLine[dict]``. Fields are declared in the order the real service writes them.

A result line is a success only when its ``error`` is null, its ``response`` is not, and the
response's status code is 2xx; anything else is a failure coded ``error.code``, else
``response.body.error.code``, else ``http_<status>``, retryable by :func:`line_retryable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from kyro.provider import (
    BatchValidationError,
    JudgeRequest,
    Message,
    ResponseSchema,
    ResultError,
    ResultLine,
    Usage,
)

if TYPE_CHECKING:  # the encoder, all `kyro plan` uses, needs no httpx
    import httpx

__all__ = [
    "CHAT_COMPLETIONS_URL",
    "NEVER_RETRY_CODES",
    "RESERVED_BODY_KEYS",
    "RETRYABLE_LINE_CODES",
    "TRANSIENT_STATUSES",
    "ChatBody",
    "ChatChoice",
    "ChatMessage",
    "ChatUsage",
    "EndpointError",
    "InputId",
    "LineError",
    "LineResponse",
    "OutputLine",
    "PromptTokensDetails",
    "RequestLine",
    "classify_output_line",
    "decode_output_line",
    "encode_request",
    "line_retryable",
    "response_format_for",
    "should_retry",
    "supports_structured_outputs",
]

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

Body = TypeVar("Body")

# ── Which failures are worth sending again (the OpenAI-compatible rule, calls and lines) ──

TRANSIENT_STATUSES = frozenset({408, 409, 429})
"""Statuses below 500 that say "try again": timeout, conflict (a lock), rate limit. Every
status of 500 and above is transient too."""

NEVER_RETRY_CODES = frozenset({"insufficient_quota"})
"""Error codes that fail the same way when sent again, whatever the status (billing, not load)."""

RETRYABLE_LINE_CODES = frozenset(
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
"""Per-line error codes worth sending again unchanged (``timeout`` and ``connection_error``
are written by providers that run requests themselves, such as kyro_local)."""


def _transient(status: int | None, code: str | None) -> bool:
    if code in NEVER_RETRY_CODES or status is None:
        return False
    return status >= 500 or status in TRANSIENT_STATUSES


def should_retry(response: httpx.Response) -> bool:
    """Whether a failed call to an OpenAI-compatible API is worth sending again.

    The server's ``x-should-retry: true|false`` decides when present; else a transient
    status (:data:`TRANSIENT_STATUSES`, or 5xx) unless the body's ``error.code`` is one no
    retry fixes (``insufficient_quota``). The body must already be read. It is the ``transient``
    rule the OpenAI provider and kyro_local pass to :func:`kyro.provider.send_with_retries`.

    Example::

        should_retry(httpx.Response(429, json={"error": {"code": "insufficient_quota"}}))  # False
    """
    override = response.headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    code = _envelope_code(response) if response.status_code == 429 else None
    return _transient(response.status_code, code)


def line_retryable(code: str, status: int | None) -> bool:
    """Whether a failed result line coded ``code`` (with its HTTP ``status``) may be resent.

    Example::

        line_retryable("http_503", 503), line_retryable("insufficient_quota", 429)  # True, False
    """
    return code in RETRYABLE_LINE_CODES or _transient(status, code)


def _envelope_code(response: httpx.Response) -> str | None:
    try:
        envelope = msgspec.json.decode(response.content, type=_ErrorEnvelope)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    error = envelope.error
    return error.code if error is not None and isinstance(error.code, str) else None


# ── Request lines ──

RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream"})
"""Body keys a judge's ``params`` may not set: kyro sets the first two, and a batch line
must never stream. (A ``response_format`` in params is the judge's own and wins.) ``n`` is
kyro's too (runs sent as samples): a user's ``n: 1`` is dropped, any other ``n`` refused, as
it would multiply the bill behind kyro's back."""


class RequestLine(msgspec.Struct, Generic[Body], frozen=True, kw_only=True):
    """A request line as read back: ``RequestLine[msgspec.Raw]`` keeps the body raw JSON
    (copied, never re-parsed, on its way to an endpoint), ``RequestLine[dict[str, Any]]``
    parses it."""

    custom_id: str
    method: str = "POST"
    url: str = CHAT_COMPLETIONS_URL
    body: Body


class InputId(msgspec.Struct, frozen=True):
    """Just the ``custom_id`` of a line: all a reader of an input file needs to report a
    request that has no outcome."""

    custom_id: str


# Model families with Structured Outputs (json_schema response formats), by name prefix; the
# exceptions are earlier snapshots and variants of those families that lack them.
_STRUCTURED_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_STRUCTURED_EXCEPTIONS = ("gpt-4o-2024-05-13", "o1-mini", "o1-preview", "gpt-4o-audio")


def supports_structured_outputs(model: str) -> bool:
    """Whether OpenAI serves Structured Outputs (``json_schema``) for ``model``, by its name.

    Names outside OpenAI's families (an Azure deployment name, a local model) give False:
    JSON mode works everywhere; pass ``structured_outputs=True`` to the provider to force it.

    Example::

        supports_structured_outputs("gpt-4o-mini")     # True
        supports_structured_outputs("gpt-3.5-turbo")   # False
    """
    name = model.strip().lower()
    if name.startswith(_STRUCTURED_EXCEPTIONS):
        return False
    return name.startswith(_STRUCTURED_PREFIXES)


class _JsonSchema(msgspec.Struct, frozen=True):
    name: str
    strict: bool
    schema: dict[str, Any]


class _SchemaFormat(msgspec.Struct, frozen=True):
    type: str
    json_schema: _JsonSchema


class _Body(msgspec.Struct, frozen=True, omit_defaults=True):
    model: str
    messages: tuple[Message, ...]
    response_format: msgspec.Raw | None = None
    n: int | None = None


class _Line(msgspec.Struct, frozen=True):
    # ``body`` must stay the last field: params are spliced in before the final "}}".
    custom_id: str
    method: str
    url: str
    body: _Body


# Why module-level state: the encoder is the plain function ``encode(request, buffer)`` that
# the builder calls once per request, so whatever outlives one call lives here. One Encoder
# (building one costs more than encoding a line). The caches below are keyed by the id() of
# an object every request of a judge shares (its schema, its params dict) and keep that object
# alive inside the entry, so an id can never be reused by another object while its entry
# stands; each is cleared at 256 entries, so memory stays bounded in a long-lived process.
_encoder = msgspec.json.Encoder()
_JSON_OBJECT = msgspec.Raw(b'{"type":"json_object"}')
# Encoded json_schema formats, by the ResponseSchema object (kept, so its id stays unique).
_schema_formats: dict[int, tuple[ResponseSchema, msgspec.Raw]] = {}
_PARAMS_CACHE_SIZE = 256
_params_cache: dict[int, tuple[dict[str, Any], dict[str, Any], bytes]] = {}
# supports_structured_outputs by model name: a plan asks it once per request, of a few models.
_structured_by_model: dict[str, bool] = {}
_HEAD = b'{"custom_id":'
# The previous request's messages, model, response schema, url, params (the dict and a shallow
# copy, so a dict changed in place is noticed), its line after the custom_id, samples, and
# (json_output, structured_outputs): everything its line after the custom_id follows from.
# Why: the runs of one transcript × judge arrive one after another with the very same
# messages object, so every run after the first costs one custom_id encode instead of a whole
# line. It is one immutable tuple, read once and replaced whole: two threads encoding at once
# can only reuse a tail whose every input matched, which is the same bytes.
_Last = tuple[
    tuple[Message, ...],
    str,
    "ResponseSchema | None",
    str,
    dict[str, Any],
    dict[str, Any],
    bytes,
    int,
    tuple[bool, "bool | None"],
]
_last: _Last | None = None


def response_format_for(
    request: JudgeRequest, *, structured_outputs: bool | None = None
) -> msgspec.Raw | None:
    """kyro's encoded ``response_format`` for ``request``, or None (none, or the judge's own).

    ``structured_outputs``: None decides by the model's name, True/False force it.

    Example::

        response_format_for(request)   # Raw(b'{"type":"json_schema","json_schema":{...}}')
    """
    if "response_format" in request.params:
        return None
    schema = request.response_schema
    wanted = structured_outputs
    if wanted is None:
        wanted = _structured_by_model.get(request.model)
        if wanted is None:
            if len(_structured_by_model) >= _PARAMS_CACHE_SIZE:
                _structured_by_model.clear()
            wanted = _structured_by_model[request.model] = supports_structured_outputs(
                request.model
            )
    if schema is not None and wanted:
        cached = _schema_formats.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        body = _SchemaFormat(
            type="json_schema",
            json_schema=_JsonSchema(name=schema.name, strict=schema.strict, schema=schema.schema),
        )
        raw = msgspec.Raw(_encoder.encode(body))
        if len(_schema_formats) >= _PARAMS_CACHE_SIZE:
            _schema_formats.clear()
        _schema_formats[id(schema)] = (schema, raw)
        return raw
    if request.json_output or schema is not None:
        return _JSON_OBJECT
    return None


def encode_request(
    request: JudgeRequest,
    buffer: bytearray,
    *,
    url: str = CHAT_COMPLETIONS_URL,
    structured_outputs: bool | None = None,
) -> None:
    """Append ``request`` as one OpenAI batch input line (newline included) to ``buffer``.

    Raises :class:`kyro.BatchValidationError` if the judge's ``params`` try to set
    ``model``, ``messages`` or ``stream``. ``response_format`` follows the module's rule;
    ``structured_outputs`` (None: by model name) says whether the model takes a json_schema.

    The runs of one transcript × judge share their messages object, so their lines differ
    only in ``custom_id`` (the first key): when a request has the very same messages object,
    model, response format, params and url as the previous one, the rest of the previous
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
    # Compared before the response format is worked out: it follows from these inputs alone.
    if (
        last is not None
        and last[0] is request.messages
        and last[1] == request.model
        and last[2] is request.response_schema
        and last[3] == url
        and last[7] == request.samples
        and (last[4] is params or not (params or last[4]))
        and last[5] == params
        and last[8] == (request.json_output, structured_outputs)
    ):
        buffer += _HEAD
        _encoder.encode_into(request.custom_id, buffer, -1)
        buffer += last[6]
        return
    response_format = response_format_for(request, structured_outputs=structured_outputs)
    extra = _encoded_params(params, request.custom_id) if params else None
    body = _Body(
        model=request.model,
        messages=request.messages,
        response_format=response_format,
        n=request.samples if request.samples > 1 else None,
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
    _last = (
        request.messages,
        request.model,
        request.response_schema,
        url,
        params,
        dict(params),
        tail,
        request.samples,
        (request.json_output, structured_outputs),
    )


def _encoded_params(params: dict[str, Any], custom_id: str) -> bytes:
    """``,"k":v,…}}`` for ``params``, cached per params dict (every request of a judge shares one).

    An entry keeps the dict itself (so its id cannot be reused) and a shallow copy, so a dict
    whose keys or values were replaced since is encoded afresh.
    """
    cached = _params_cache.get(id(params))
    if cached is not None and cached[0] is params and cached[1] == params:
        return cached[2]
    clash = RESERVED_BODY_KEYS.intersection(params)
    sent = params
    if "n" in params:
        if params["n"] != 1:
            clash = clash | {"n"}
        else:  # n: 1 says nothing kyro does not say itself
            sent = {key: value for key, value in params.items() if key != "n"}
    if clash:
        raise BatchValidationError(
            f"request {custom_id}: params may not set {', '.join(sorted(clash))}; kyro sets "
            "model and messages itself, sends runs as `n` samples where it can (use `runs` for "
            "more samples), and batch requests never stream"
        )
    encoded = b"," + _encoder.encode(sent)[1:] + b"}" if sent else b"}}"
    if len(_params_cache) >= _PARAMS_CACHE_SIZE:
        _params_cache.clear()
    _params_cache[id(params)] = (params, dict(params), encoded)
    return encoded


# ── Result lines ──


class EndpointError(msgspec.Struct, frozen=True, kw_only=True):
    """The ``error`` member of OpenAI's error envelope."""

    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    error: EndpointError | None = None


class PromptTokensDetails(msgspec.Struct, frozen=True, kw_only=True):
    """``usage.prompt_tokens_details``: how many prompt tokens the prompt cache served."""

    cached_tokens: int | None = None


class ChatUsage(msgspec.Struct, frozen=True, kw_only=True):
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
    """A result line's ``response.body`` as read: a chat completion, or an error envelope."""

    choices: list[ChatChoice] | None = None
    usage: ChatUsage | None = None
    error: EndpointError | None = None


class LineResponse(msgspec.Struct, Generic[Body], frozen=True, kw_only=True):
    """A result line's ``response``: the endpoint's status, its request id and the body."""

    status_code: int | None = None
    request_id: str | None = None
    body: Body | None = None


class LineError(msgspec.Struct, frozen=True, kw_only=True):
    """A result line's ``error``: a failure that was not an HTTP reply (``batch_expired``,
    ``timeout``…)."""

    code: str | None = None
    message: str | None = None


class OutputLine(msgspec.Struct, Generic[Body], frozen=True, kw_only=True):
    """One line of an output or error file; a writer always sets ``id``."""

    id: str | None = None
    custom_id: str
    response: LineResponse[Body] | None = None
    error: LineError | None = None


_LINE_DECODER = msgspec.json.Decoder(OutputLine[ChatBody])


def _usage(wire: ChatUsage | None) -> Usage | None:
    if wire is None:
        return None
    details = wire.prompt_tokens_details
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        total_tokens=wire.total_tokens or 0,
        cached_input_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def classify_output_line(line: OutputLine[ChatBody]) -> ResultLine:
    """The neutral outcome of one output or error line.

    Example::

        classify_output_line(decode_output_line(raw)).ok
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
    retryable = line_retryable(code, status)
    return ResultLine(
        custom_id=line.custom_id,
        ok=False,
        usage=usage,
        error=ResultError(code=code, message=message_text or f"HTTP {status}", retryable=retryable),
    )


def decode_output_line(raw: bytes) -> OutputLine[ChatBody] | None:
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
    return OutputLine[ChatBody](custom_id=custom_id)  # unreadable shape: reported as no_response
