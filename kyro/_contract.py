"""The verdict contract: what every JSON judge is asked to return, in provider-neutral terms.

``output_format: json`` is kyro's promise, not the prompt's. Every request of such a judge
starts with kyro's own system message (:data:`VERDICT_INSTRUCTIONS`), which states the verdict
object, and carries :data:`VERDICT_SCHEMA` — a strict JSON schema of that object — as its
``response_schema``. A provider encodes the schema the way its API takes one: OpenAI's
Structured Outputs (``response_format: {"type": "json_schema", ...}``) where the model
supports it and JSON mode otherwise; another provider (a tool's input schema, a grammar)
in its own terms. A judge's own ``params.response_format`` wins over both.

The schema is strict-mode ready: every property is listed in ``required`` (the optional ones
accept ``null``) and no other property is allowed. ``thinking`` comes first, so a model
reasons before it states its verdict.

Both are public as :func:`kyro.verdict_message` and :func:`kyro.verdict_schema`, for a
provider that encodes the contract its own way (a second system block, a tool schema).

Example::

    from kyro import verdict_message, verdict_schema
    request.response_schema is verdict_schema()   # for every output_format: json judge
    verdict_message().content.startswith("Reply with one JSON object")   # True
"""

from __future__ import annotations

from typing import Any

from kyro._types import Message, ResponseSchema

__all__ = [
    "VERDICT_INSTRUCTIONS",
    "VERDICT_RESPONSE_SCHEMA",
    "VERDICT_SCHEMA",
    "verdict_message",
    "verdict_schema",
]

VERDICT_INSTRUCTIONS = (
    "Reply with one JSON object and nothing else: the verdict of your evaluation. Keys:\n"
    '- "thinking": your reasoning, briefly (a string, or null);\n'
    '- "status": "SUCCESS" when the evaluated item passes the criteria below, "ERROR" when '
    'it fails them, "NA" when they do not apply to it;\n'
    '- "root_cause": one or two sentences explaining the status (a string);\n'
    '- "score": how well the item meets the criteria, from 0 (not at all) to 1 (fully), '
    "or null when the criteria ask for no score.\n"
    "Follow the evaluation instructions that come next; whatever format they describe, "
    "answer in this JSON object."
)
"""kyro's system message for every ``output_format: json`` judge (it names JSON, so JSON
mode's rule that the messages mention JSON always holds)."""

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thinking": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": ["SUCCESS", "ERROR", "NA"]},
        "root_cause": {"type": "string"},
        "score": {"type": ["number", "null"]},
    },
    "required": ["thinking", "status", "root_cause", "score"],
    "additionalProperties": False,
}
"""The verdict object as a strict JSON schema (do not modify: it is shared by every request).
The meaning of each field is in :data:`VERDICT_INSTRUCTIONS`, so the schema, sent with every
request, stays short."""

VERDICT_RESPONSE_SCHEMA = ResponseSchema(name="kyro_verdict", schema=VERDICT_SCHEMA, strict=True)
"""The ``response_schema`` every ``output_format: json`` request carries."""

_MESSAGE = Message(role="system", content=VERDICT_INSTRUCTIONS)


def verdict_message() -> Message:
    """kyro's system message stating the verdict object (one shared instance).

    Example::

        verdict_message().role   # 'system'
    """
    return _MESSAGE


def verdict_schema() -> ResponseSchema:
    """The verdict contract's schema, as every ``output_format: json`` request carries it.

    Example::

        verdict_schema().schema["required"]   # ['thinking', 'status', 'root_cause', 'score']
    """
    return VERDICT_RESPONSE_SCHEMA
