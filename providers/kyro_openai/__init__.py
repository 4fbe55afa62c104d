"""kyro_openai: kyro's provider for the OpenAI Batch API (and Azure, and look-alikes).

Besides the provider, its public face holds what other providers may reuse: the batch line
format, owned by the public module :mod:`kyro_openai.wire` (``encode_request``,
``decode_output_line`` and ``classify_output_line`` are also named here), the resumable
line-by-line download (``iter_download_lines``), and the retried, logged, secret-keeping HTTP
plumbing (``HttpClient``, ``Secret``).
"""

from __future__ import annotations

from kyro_openai._http import Http as HttpClient
from kyro_openai._http import Secret
from kyro_openai._provider import DEFAULT_MODEL, OPENAI_LIMITS, OpenAIBatchProvider
from kyro_openai._results import iter_lines as iter_download_lines
from kyro_openai.wire import (
    classify_output_line,
    decode_output_line,
    encode_request,
    supports_structured_outputs,
)

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
