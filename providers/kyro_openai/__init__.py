"""kyro_openai."""

from __future__ import annotations

from kyro_openai._encode import OPENAI_LIMITS, encode_request
from kyro_openai._provider import OpenAIBatchProvider

__all__ = ["OPENAI_LIMITS", "OpenAIBatchProvider", "encode_request"]
