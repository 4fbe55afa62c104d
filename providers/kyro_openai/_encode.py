"""OpenAI batch input lines: one ``JudgeRequest`` → one JSONL line, appended to a buffer.

The line (``BatchRequestInput``)::

    {"custom_id": "t0-j1-r0", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "…"}, …],
              "response_format": {"type": "json_schema", "json_schema": {…}}, "temperature": 0}}

``response_format``, first found: the judge's own ``params.response_format`` (passed as is);
Structured Outputs — ``{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}``
from the request's ``response_schema`` — when the model supports them
(:func:`supports_structured_outputs`, or the caller's ``structured_outputs=True/False``);
JSON mode (``{"type": "json_object"}``) for any other JSON request.

UTF-8 without a BOM, one line per request, ``\\n`` after each. The fixed part of the line is a
msgspec Struct encoded by one module-level encoder straight into the caller's buffer; the judge's
``params`` (any keys) are spliced into ``body`` after it, so there is no per-request dict.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kyro.provider import BatchLimits, BatchValidationError, JudgeRequest, Message, ResponseSchema

__all__ = [
    "CHAT_COMPLETIONS_URL",
    "DEFAULT_MODEL",
    "OPENAI_LIMITS",
    "RESERVED_BODY_KEYS",
    "encode_request",
    "response_format_for",
    "supports_structured_outputs",
]

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

DEFAULT_MODEL = "gpt-4o-mini"
"""The model of judges that name none (judge, config, ``model=``/``--model``, ``KYRO_MODEL``)."""

OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
"""OpenAI's documented limits per batch: 50,000 requests and 200 MB per input file."""

RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream"})
"""Body keys a judge's ``params`` may not set: kyro sets the first two, and a batch line
must never stream. (A ``response_format`` in params is the judge's own and wins.) ``n`` is
kyro's too (runs sent as samples): a user's ``n: 1`` is dropped, any other ``n`` refused, as
it would multiply the bill behind kyro's back."""

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
