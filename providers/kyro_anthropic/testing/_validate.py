"""Validation as the real service does it: the batch's shape at create, each request's
``params`` only once the batch runs.

At create, a 400 ``invalid_request_error`` refuses the whole batch for a body that is not a
``{"requests": [...]}`` object of 1 to ``max_requests`` items, an item that is not
``{"custom_id", "params"}``, a custom_id outside ``^[a-zA-Z0-9_-]{1,64}$`` or used twice,
``params`` that are not an object, ``stream: true`` or ``max_tokens: 0`` (neither is supported
in a batch). Everything else about ``params`` is checked per request when the batch runs: a bad
request comes back ``errored`` with ``invalid_request_error`` (an unknown model:
``not_found_error``), and the batch itself succeeds.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ApiError", "check_item", "check_params"]

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_KNOWN = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    }
)


class ApiError(Exception):
    """An error answer: HTTP ``status`` with Anthropic's envelope of ``type`` and ``message``."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def check_item(item: Any, index: int) -> tuple[str, dict[str, Any]]:
    """(custom_id, params) of one ``requests`` item; ApiError 400 as at create."""
    where = f"requests.{index}"
    if not isinstance(item, dict):
        raise _bad(f"{where}: Input should be a valid dictionary")
    extra = sorted(set(item) - {"custom_id", "params"})
    if extra:
        raise _bad(f"{where}.{extra[0]}: Extra inputs are not permitted")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str):
        raise _bad(f"{where}.custom_id: Field required")
    if not _CUSTOM_ID.fullmatch(custom_id):
        raise _bad(f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
    params = item.get("params")
    if not isinstance(params, dict):
        raise _bad(f"{where}.params: Input should be a valid dictionary")
    if params.get("stream") is True:
        raise _bad(f"{where}.params.stream: streaming is not supported in a message batch")
    if params.get("max_tokens") == 0:
        raise _bad(f"{where}.params.max_tokens: max_tokens: 0 is not supported in a message batch")
    return custom_id, params


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{number}: Input should be a valid dictionary"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{number}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if not isinstance(content, (str, list)) or not content:
            return f"messages.{number}.content: text content blocks must be non-empty"
    if messages[0].get("role") != "user":
        return "messages: the first message must use the 'user' role"
    return None


def _check_tools(params: dict[str, Any]) -> str | None:
    tools = params.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for number, tool in enumerate(tools):
            name = tool.get("name") if isinstance(tool, dict) else None
            if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
                return (
                    f"tools.{number}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                return f"tools.{number}.input_schema: the input schema must be of type 'object'"
            names.add(name)
    choice = params.get("tool_choice")
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    if kind == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: no tool named {choice.get('name')!r} is defined in tools"
    thinking = params.get("thinking")
    if kind in ("any", "tool") and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def check_params(params: dict[str, Any]) -> tuple[str, str] | None:
    """(error type, message) for params the Messages API would refuse, or None when fine."""
    for key in params:
        if key not in _KNOWN and key != "stream":
            return "invalid_request_error", f"{key}: Extra inputs are not permitted"
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return "invalid_request_error", "model: Field required"
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "invalid_request_error", "max_tokens: Field required (an integer of at least 1)"
    problem = _check_messages(params.get("messages"))
    if problem is None:
        system = params.get("system")
        if system is not None and not isinstance(system, (str, list)):
            problem = "system: Input should be a valid string or list of text blocks"
    for key in ("temperature", "top_p"):
        value = params.get(key)
        if problem is None and value is not None and not (_is_number(value) and 0 <= value <= 1):
            problem = f"{key}: Input should be less than or equal to 1"
    if problem is None:
        problem = _check_tools(params)
    if problem is not None:
        return "invalid_request_error", problem
    if not model.startswith("claude-"):
        return "not_found_error", f"model: {model}"
    return None
