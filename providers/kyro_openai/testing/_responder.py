"""Where the emulator's replies come from: a pluggable responder and the chat.completion shape.

A responder is any callable taking a request body (the ``/v1/chat/completions`` JSON) and
returning the assistant's text, or an awaitable of it. Sync responders run in a worker
thread while a batch's results are written, so they must be thread-safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from kyro_openai.testing._wire import new_id

__all__ = [
    "Responder",
    "ScriptedResponder",
    "chat_completion",
    "choice_count",
    "conform",
    "default_responder",
    "estimate_tokens",
    "malform",
    "prompt_text",
]

Responder = Callable[[dict[str, Any]], str | Awaitable[str]]
"""``(body) -> content``: the assistant text for one chat request (sync or async)."""


def prompt_text(body: Mapping[str, Any]) -> str:
    """Every message's text content of a chat request body, joined by newlines.

    Example::

        prompt_text({"messages": [{"role": "user", "content": "hi"}]})   # "hi"
    """
    parts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
    return "\n".join(parts)


def estimate_tokens(text: str) -> int:
    """A rough token count: one token per four characters, at least one for any text."""
    return max(1, len(text) // 4) if text else 0


def default_responder(body: dict[str, Any]) -> str:
    """Deterministic judge JSON derived from a hash of the prompt; it says it is emulated.

    About 70 % of prompts get ``SUCCESS``, 20 % ``ERROR`` and 10 % ``NA``; the same prompt
    always gets the same verdict. A ``json_schema`` response format is honoured
    (:func:`conform`): the reply has exactly the schema's properties.

    Example::

        json.loads(default_responder({"messages": [{"role": "user", "content": "x"}]}))
        # {"status": "SUCCESS", "root_cause": "Emulated verdict: ...", "thinking": "..."}
    """
    digest = hashlib.sha256(prompt_text(body).encode()).hexdigest()
    bucket = int(digest[:8], 16) % 100
    status = "SUCCESS" if bucket < 70 else "ERROR" if bucket < 90 else "NA"
    reply = {
        "status": status,
        "root_cause": (
            f"Emulated verdict: {status} (kyro emulator, prompt hash {digest[:12]}); "
            "no model read this transcript."
        ),
        "thinking": "The kyro emulator picks verdicts from a hash of the prompt.",
    }
    return conform(body, json.dumps(reply))


class ScriptedResponder:
    """Replies scripted by custom_id or by a substring of the prompt, else a fallback.

    Custom ids are checked first (batch requests only), then substrings in the order given.

    Example::

        responder = ScriptedResponder(
            by_custom_id={"t0-j0-r0": '{"status": "ERROR", "root_cause": "rude"}'},
            by_substring={"refund": '{"status": "SUCCESS", "root_cause": "polite"}'},
        )
        Emulator(responder=responder)
    """

    def __init__(
        self,
        *,
        by_custom_id: Mapping[str, str] | None = None,
        by_substring: Mapping[str, str] | None = None,
        fallback: Callable[[dict[str, Any]], str] = default_responder,
    ) -> None:
        self.by_custom_id = dict(by_custom_id or {})
        self.by_substring = dict(by_substring or {})
        self.fallback = fallback

    def reply(self, body: dict[str, Any], *, custom_id: str | None = None) -> str:
        """The scripted reply for one request."""
        if custom_id is not None and custom_id in self.by_custom_id:
            return self.by_custom_id[custom_id]
        text = prompt_text(body)
        for needle, content in self.by_substring.items():
            if needle in text:
                return content
        return self.fallback(body)

    def __call__(self, body: dict[str, Any]) -> str:
        """Reply to a request that has no custom_id (``/v1/chat/completions``)."""
        return self.reply(body)


def malform(content: str, key: str) -> tuple[str, str]:
    """A broken version of ``content`` and its finish reason: truncated, or plain prose.

    Which one is chosen from a hash of ``key``, so it is stable per request.
    """
    if hashlib.sha256(key.encode()).digest()[0] % 2:
        return content[: max(1, len(content) // 2)], "length"
    return "I looked at the transcript and I think it is mostly fine.", "stop"


MAX_CHOICES = 128
"""The largest ``n`` the chat completions endpoint accepts."""


def choice_count(body: Mapping[str, Any]) -> int | str:
    """How many choices a request asks for (``n``, default 1), or the 400 message if invalid.

    Example::

        choice_count({"n": 3})      # 3
        choice_count({"n": 0})      # "Invalid 'n': ..."
    """
    n = body.get("n", 1)
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
        return f"Invalid 'n': expected an integer between 1 and {MAX_CHOICES}, got {n!r}."
    return n


def chat_completion(
    body: Mapping[str, Any],
    content: str | Sequence[str],
    *,
    created: int,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A ``chat.completion`` object for ``content`` (one choice each, when a list), with
    estimated usage: the prompt counted once, however many choices (as the service bills ``n``).

    Example::

        chat_completion({"model": "gpt-4o-mini", "messages": []}, "{}", created=0)["usage"]
    """
    contents = [content] if isinstance(content, str) else list(content)
    prompt_tokens = estimate_tokens(prompt_text(body))
    completion_tokens = sum(estimate_tokens(text) for text in contents)
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": created,
        "model": body.get("model"),
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            for index, text in enumerate(contents)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": None,
    }


def conform(body: Mapping[str, Any], content: str) -> str:
    """``content`` (a JSON object's text) reshaped to the request's ``json_schema``, if any.

    Example::

        conform({"response_format": {"type": "json_schema", "json_schema": {"name": "v",
                 "schema": {"properties": {"status": {"type": "string"},
                                           "score": {"type": ["number", "null"]}}}}}},
                '{"status": "SUCCESS", "extra": 1}')
        # '{"status": "SUCCESS", "score": null}'
    """
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return content
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return content
    try:
        reply = json.loads(content)
    except ValueError:
        return content
    if not isinstance(reply, dict):
        return content
    shaped = {key: reply.get(key, _neutral(child)) for key, child in properties.items()}
    return json.dumps(shaped)


def _neutral(schema: Any) -> Any:
    """A value of the schema's type that claims nothing: null where allowed, else empty."""
    kinds = schema.get("type") if isinstance(schema, dict) else None
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "null" in kinds:
        return None
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    defaults: dict[str, Any] = {
        "string": "",
        "number": 0,
        "integer": 0,
        "boolean": False,
        "array": [],
        "object": {},
    }
    for kind in kinds:
        if kind in defaults:
            return defaults[kind]
    return None
