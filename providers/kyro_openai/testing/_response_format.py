"""``response_format`` in a chat request, checked and honoured the way the real service does.

Checked (a 400 ``invalid_request_error`` naming the parameter, per request — in a batch, that
request's line fails and the others run):

* it is an object with ``type`` one of ``text``, ``json_object``, ``json_schema``;
* ``json_object`` needs the word "json" somewhere in the messages;
* ``json_schema`` needs ``json_schema.name`` (letters, digits, ``_``, ``-``; at most 64) and an
  object ``schema``; a model without Structured Outputs refuses it
  (:func:`kyro_openai.supports_structured_outputs`);
* with ``strict: true``, every object in the schema lists all its properties in ``required``
  and sets ``additionalProperties: false``.

Honoured by the default responder (``kyro_openai.testing.conform``): its verdict is reshaped
to the schema's properties, so a strict schema always gets a reply that follows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from kyro_openai.testing._responder import prompt_text
from kyro_openai.wire import supports_structured_outputs

__all__ = ["response_format_error"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TYPES = ("json_object", "json_schema", "text")


def response_format_error(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(message, param)`` of the 400 the real service answers ``body`` with, or None.

    Example::

        response_format_error({"model": "gpt-4o-mini", "messages": [],
                               "response_format": {"type": "json_object"}})
        # ("'messages' must contain the word 'json' in some form, ...", "messages")
    """
    if "response_format" not in body:
        return None
    fmt = body["response_format"]
    if not isinstance(fmt, dict):
        got = "an array" if isinstance(fmt, list) else type(fmt).__name__
        return (
            f"Invalid type for 'response_format': expected an object, but got {got} instead.",
            "response_format",
        )
    kind = fmt.get("type")
    if kind is None:
        return "Missing required parameter: 'response_format.type'.", "response_format.type"
    if kind not in _TYPES:
        return (
            f"Invalid value: {json.dumps(kind)}. Supported values are: 'json_object', "
            "'json_schema', and 'text'.",
            "response_format.type",
        )
    if kind == "json_object" and "json" not in prompt_text(body).lower():
        return (
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'.",
            "messages",
        )
    if kind == "json_schema":
        return _schema_error(fmt.get("json_schema"), str(body.get("model", "")))
    return None


def _schema_error(spec: Any, model: str) -> tuple[str, str] | None:
    param = "response_format.json_schema"
    if not isinstance(spec, dict):
        return f"Missing required parameter: '{param}'.", param
    name = spec.get("name")
    if not isinstance(name, str):
        return f"Missing required parameter: '{param}.name'.", f"{param}.name"
    if not _NAME.match(name):
        return (
            f"Invalid '{param}.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
            f"{param}.name",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        return f"Invalid type for '{param}.schema': expected an object.", f"{param}.schema"
    if not supports_structured_outputs(model):
        return (
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
            "with this model.",
            "response_format",
        )
    if spec.get("strict") is True:
        problem = _strict_problem(schema, ())
        if problem is not None:
            return f"Invalid schema for response_format '{name}': {problem}", param
    return None


def _strict_problem(node: Any, where: tuple[str, ...]) -> str | None:
    """The first rule of strict mode that ``node`` (a schema) breaks, or None."""
    if not isinstance(node, dict):
        return None
    context = f"In context=({', '.join(repr(p) for p in where)})"
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties", {})
        if node.get("additionalProperties") is not False:
            return f"{context}, 'additionalProperties' is required to be supplied and to be false."
        required = node.get("required", [])
        missing = [key for key in properties if key not in required]
        if missing:
            return (
                f"{context}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        for key, child in properties.items():
            problem = _strict_problem(child, (*where, "properties", key))
            if problem is not None:
                return problem
    if isinstance(node.get("items"), dict):
        return _strict_problem(node["items"], (*where, "items"))
    return None
