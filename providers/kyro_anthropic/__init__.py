"""kyro_anthropic: kyro's provider for Anthropic's Message Batches API.

Example::

    from kyro import BatchJudge
    from kyro_anthropic import AnthropicBatchProvider

    judge = BatchJudge(AnthropicBatchProvider(), "judges.yml")

The emulator of the API lives in :mod:`kyro_anthropic.testing` (the ``emulator`` extra).
How a crashed submit is recovered without batch metadata: :mod:`kyro_anthropic._adopt`,
summed up in :class:`AnthropicBatchProvider`'s ``find``.
"""

from __future__ import annotations

from kyro_anthropic._adopt import INTENT_AT, REQUESTS, AmbiguousBatchError
from kyro_anthropic._encode import (
    ALLOWED_PARAMS,
    ANTHROPIC_LIMITS,
    DEFAULT_MAX_TOKENS,
    VERDICT_SCHEMA,
    VERDICT_SYSTEM,
    VERDICT_TOOL,
    encode_request,
)
from kyro_anthropic._provider import AnthropicBatchProvider, batch_status
from kyro_anthropic._results import classify as classify_result
from kyro_anthropic._results import reply_text
from kyro_anthropic._retry import ANTHROPIC_RETRY

__all__ = [  # noqa: RUF022  # plain sorted(), as tests/test_exported_members.py checks
    "ALLOWED_PARAMS",
    "ANTHROPIC_LIMITS",
    "ANTHROPIC_RETRY",
    "AmbiguousBatchError",
    "AnthropicBatchProvider",
    "DEFAULT_MAX_TOKENS",
    "INTENT_AT",
    "REQUESTS",
    "VERDICT_SCHEMA",
    "VERDICT_SYSTEM",
    "VERDICT_TOOL",
    "batch_status",
    "classify_result",
    "encode_request",
    "reply_text",
]
