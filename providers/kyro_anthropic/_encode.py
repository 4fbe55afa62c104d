"""Message Batches request lines: one ``JudgeRequest`` → one ``{"custom_id", "params"}`` line.

The line is one element of the create body's ``requests`` array, written as JSONL so a shard
file is streamed into the body without being parsed again::

    {"custom_id": "t0-j1-r0",
     "params": {"model": "claude-…", "max_tokens": 2048, "system": "…",
                "messages": [{"role": "user", "content": "…"}],
                "tools": [{"name": "record_verdict", "input_schema": {…}}],
                "tool_choice": {"type": "tool", "name": "record_verdict"}, "temperature": 0}}

Decisions:

* **System messages** (the judge's ``role`` section and kyro's verdict contract) go into
  ``params.system``, joined by a blank line; the Messages API takes no ``system`` role.
* **The verdict contract is a forced tool call.** ``output_format: json`` becomes one tool whose
  ``input_schema`` is the verdict schema, and ``tool_choice`` names it, so the reply is the
  tool's input — a JSON object of the verdict's shape, whatever the prompt says. The schema and
  the contract's system text are taken from the request when it carries them; otherwise the
  provider's own :data:`VERDICT_SCHEMA` and :data:`VERDICT_SYSTEM` are used. With extended
  ``thinking`` in ``params`` the API refuses a forced tool, so the tool is offered with
  ``tool_choice: auto`` and a text reply is parsed as JSON instead.
* **``max_tokens`` is always set** (the API requires it): :data:`DEFAULT_MAX_TOKENS` unless the
  judge's ``params`` give one.
* **``params`` are checked here**, at plan time, not by a batch that errors every line a day
  later: only the Messages parameters in :data:`ALLOWED_PARAMS` pass, with the right types;
  an OpenAI-only name is refused with the Anthropic name to use instead.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from kyro.provider import BatchLimits, BatchValidationError, JudgeRequest

__all__ = [
    "ALLOWED_PARAMS",
    "ANTHROPIC_LIMITS",
    "CLAUDE_PREFIX",
    "DEFAULT_MAX_TOKENS",
    "VERDICT_SCHEMA",
    "VERDICT_SYSTEM",
    "VERDICT_TOOL",
    "check_params",
    "encode_request",
    "mixed_models_message",
]

ANTHROPIC_LIMITS = BatchLimits(max_requests=100_000, max_bytes=256_000_000 - 64 * 1024)
"""Per batch: 100,000 requests and a 256 MB create body. The byte cap leaves 64 KiB for the
body's ``{"requests":[…]}`` wrapper and commas, counted in decimal megabytes to stay below the
limit however the service counts them."""

DEFAULT_MAX_TOKENS = 2048
"""``max_tokens`` of a request whose judge sets none: room for a verdict and its reasoning."""

VERDICT_TOOL = "record_verdict"
"""The name of the tool a JSON judge is made to call."""

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["SUCCESS", "ERROR", "NA"]},
        "root_cause": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "thinking": {"type": "string"},
    },
    "required": ["status", "root_cause"],
}
"""The verdict object as a JSON schema, used when the request carries none of its own."""

VERDICT_SYSTEM = (
    "Give your verdict by calling the record_verdict tool. Its fields: status is SUCCESS when "
    "the criterion is met, ERROR when it is not, NA when it does not apply; root_cause says why "
    "in one or two sentences; score (optional) rates the result from 0 to 1; thinking "
    "(optional) holds your reasoning."
)
"""The verdict contract's system text, used when the request carries no schema of its own."""

ALLOWED_PARAMS: dict[str, str] = {
    "max_tokens": "an integer of at least 1",
    "temperature": "a number from 0 to 1",
    "top_p": "a number from 0 to 1",
    "top_k": "an integer of at least 0",
    "stop_sequences": "a list of strings",
    "metadata": "a mapping such as {user_id: ...}",
    "thinking": "a mapping such as {type: enabled, budget_tokens: 1024}",
    "service_tier": "a string (auto or standard_only)",
}
"""The Messages parameters a judge's ``params`` may set, and what each must be."""

_RESERVED = frozenset({"model", "messages", "system", "tools", "tool_choice", "stream"})
_OPENAI_NAMES = {
    "max_completion_tokens": "max_tokens",
    "stop": "stop_sequences",
    "response_format": "nothing: kyro asks for the verdict through a forced tool call",
    "user": "metadata: {user_id: ...}",
}
CLAUDE_PREFIX = "claude-"
"""Every Anthropic model name starts with it."""

_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROLES = frozenset({"user", "assistant"})
_SCHEMA_FIELDS = ("response_schema", "verdict_schema", "json_schema")


class _Text(msgspec.Struct, frozen=True):
    role: str
    content: str


class _Tool(msgspec.Struct, frozen=True):
    name: str
    description: str
    input_schema: Any


class _ToolChoice(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    name: str | None = None


class _Params(msgspec.Struct, frozen=True, omit_defaults=True):
    model: str
    max_tokens: int
    messages: tuple[_Text, ...]
    system: str | None = None
    tools: tuple[_Tool, ...] | None = None
    tool_choice: _ToolChoice | None = None


class _Line(msgspec.Struct, frozen=True):
    # ``params`` must stay the last field: extra params are spliced in before the final "}}".
    custom_id: str
    params: _Params


_encoder = msgspec.json.Encoder()
_FORCED = _ToolChoice(type="tool", name=VERDICT_TOOL)
_AUTO = _ToolChoice(type="auto")
_checked: dict[int, tuple[dict[str, Any], dict[str, Any], bytes]] = {}


def mixed_models_message(model: str, custom_id: str) -> str:
    """Why a non-Claude model cannot go to the anthropic provider, and what to do instead."""
    return (
        f"model {model!r} (request {custom_id}) is not a Claude model: the anthropic provider "
        "runs Claude models only, and one job runs on one provider. Give every judge a "
        "claude-… model, or split the judges into one config per provider and run the others "
        "with --provider openai"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_ok(key: str, value: Any) -> bool:
    if key == "max_tokens":
        return _is_int(value) and value >= 1
    if key in ("temperature", "top_p"):
        return _is_number(value) and 0 <= value <= 1
    if key == "top_k":
        return _is_int(value) and value >= 0
    if key == "stop_sequences":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if key in ("metadata", "thinking"):
        return isinstance(value, dict)
    return isinstance(value, str)


def check_params(params: dict[str, Any], custom_id: str) -> None:
    """Refuse ``params`` the Messages API would refuse; BatchValidationError saying the fix.

    Example::

        check_params({"temperature": 0, "max_tokens": 512}, "t0-j0-r0")      # fine
        check_params({"max_completion_tokens": 512}, "t0-j0-r0")            # raises
    """
    for key, value in params.items():
        if key in _RESERVED:
            raise BatchValidationError(
                f"request {custom_id}: params may not set {key!r}; kyro sets model, messages, "
                "system, tools and tool_choice itself, and batch requests never stream"
            )
        if key in _OPENAI_NAMES:
            raise BatchValidationError(
                f"request {custom_id}: {key!r} is an OpenAI parameter; for Anthropic use "
                f"{_OPENAI_NAMES[key]}"
            )
        if key not in ALLOWED_PARAMS:
            allowed = ", ".join(sorted(ALLOWED_PARAMS))
            raise BatchValidationError(
                f"request {custom_id}: {key!r} is not a Messages API parameter kyro can send "
                f"in a batch; the judge's params may set {allowed}"
            )
        if not _value_ok(key, value):
            raise BatchValidationError(
                f"request {custom_id}: params {key!r} is {value!r}; it must be "
                f"{ALLOWED_PARAMS[key]}"
            )


def _extra_params(params: dict[str, Any], custom_id: str) -> bytes:
    """``,"k":v,…`` for every param but ``max_tokens``, checked and cached per params dict."""
    cached = _checked.get(id(params))
    if cached is not None and cached[0] is params and cached[1] == params:
        return cached[2]
    check_params(params, custom_id)
    rest = {key: value for key, value in params.items() if key != "max_tokens"}
    encoded = b"," + _encoder.encode(rest)[1:-1] if rest else b""
    if len(_checked) >= 256:
        _checked.clear()
    _checked[id(params)] = (params, dict(params), encoded)
    return encoded


def _thinking_on(params: dict[str, Any]) -> bool:
    thinking = params.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") != "disabled"


def request_schema(request: JudgeRequest) -> Any:
    """The verdict schema the request carries, or None (then the provider's own is used).

    kyro's ``response_schema`` is a :class:`kyro.provider.ResponseSchema`; its JSON schema is the
    tool's input schema.
    """
    for name in _SCHEMA_FIELDS:
        schema = getattr(request, name, None)
        if schema is not None:
            return getattr(schema, "schema", schema)
    return None


def encode_request(
    request: JudgeRequest,
    buffer: bytearray,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    claude_only: bool = True,
) -> None:
    """Append ``request`` as one Message Batches request line (newline included) to ``buffer``.

    Raises :class:`kyro.BatchValidationError` for a model that is not a Claude model (unless
    ``claude_only`` is False, for a server that names its models otherwise), a custom_id the
    API refuses (1–64 characters
    of ``A-Z a-z 0-9 _ -``), a message role other than system, user or assistant, a request
    with no user or assistant message, or ``params`` the API would refuse.

    Example::

        buffer = bytearray()
        encode_request(JudgeRequest(custom_id="t0-j0-r0", model="claude-haiku-4-5",
                                    messages=(Message(role="user", content="Judge this"),)),
                       buffer)
        buffer.endswith(b"}}\\n")   # True
    """
    custom_id = request.custom_id
    if claude_only and not request.model.startswith(CLAUDE_PREFIX):
        raise BatchValidationError(mixed_models_message(request.model, custom_id))
    if not _CUSTOM_ID.fullmatch(custom_id):
        raise BatchValidationError(
            f"custom_id {custom_id!r} is not valid for Anthropic: use 1 to 64 letters, digits, "
            "'_' or '-'"
        )
    params = request.params
    extra = _extra_params(params, custom_id) if params else b""
    system: list[str] = []
    turns: list[_Text] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.content)
        elif message.role in _ROLES:
            turns.append(_Text(role=message.role, content=message.content))
        else:
            raise BatchValidationError(
                f"request {custom_id}: message role {message.role!r} is not one Anthropic "
                "takes; use system, user or assistant"
            )
    if not turns:
        raise BatchValidationError(
            f"request {custom_id}: it has no user message; the Messages API needs at least one"
        )
    tools: tuple[_Tool, ...] | None = None
    choice: _ToolChoice | None = None
    if request.json_output:
        schema = request_schema(request)
        if schema is None:
            schema = VERDICT_SCHEMA
            system.append(VERDICT_SYSTEM)
        tools = (_Tool(name=VERDICT_TOOL, description="Record the verdict.", input_schema=schema),)
        choice = _AUTO if _thinking_on(params) else _FORCED
    body = _Params(
        model=request.model,
        max_tokens=params.get("max_tokens", max_tokens),
        messages=tuple(turns),
        system="\n\n".join(system) if system else None,
        tools=tools,
        tool_choice=choice,
    )
    _encoder.encode_into(_Line(custom_id=custom_id, params=body), buffer, -1)
    if extra:
        del buffer[-2:]
        buffer += extra
        buffer += b"}}"
    buffer += b"\n"
