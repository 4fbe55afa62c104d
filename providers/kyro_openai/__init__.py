"""kyro_openai."""

from __future__ import annotations

from kyro_openai._encode import OPENAI_LIMITS, encode_request
from kyro_openai._provider import OpenAIBatchProvider
from kyro_openai._results import classify as classify_output_line
from kyro_openai._results import decode_line as decode_output_line

__all__ = [
    "OPENAI_LIMITS",
    "OpenAIBatchProvider",
    "classify_output_line",
    "decode_output_line",
    "encode_request",
]
