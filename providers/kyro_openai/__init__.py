"""kyro_openai: kyro's provider for the OpenAI Batch API (and Azure, and look-alikes).

Besides the provider, its public face holds what other providers may reuse: the batch line
format (``encode_request``, ``decode_output_line``, ``classify_output_line``), the resumable
line-by-line download (``iter_download_lines``), and the retried, logged, secret-keeping HTTP
plumbing (``HttpClient``, ``Secret``).
"""

from __future__ import annotations

from kyro_openai._encode import (
    DEFAULT_MODEL,
    OPENAI_LIMITS,
    encode_request,
    supports_structured_outputs,
)
from kyro_openai._http import Http as HttpClient
from kyro_openai._http import Secret
from kyro_openai._provider import OpenAIBatchProvider
from kyro_openai._results import classify as classify_output_line
from kyro_openai._results import decode_line as decode_output_line
from kyro_openai._results import iter_lines as iter_download_lines

__all__ = [  # noqa: RUF022  # plain sorted(), as tests/test_exported_members.py checks
    "DEFAULT_MODEL",
    "HttpClient",
    "OPENAI_LIMITS",
    "OpenAIBatchProvider",
    "Secret",
    "classify_output_line",
    "decode_output_line",
    "encode_request",
    "iter_download_lines",
    "supports_structured_outputs",
]
