"""kyro_openai: kyro's provider for the OpenAI Batch API (and Azure, and look-alikes).

Besides the provider, its public face holds what other providers may reuse: the batch line
format (``encode_request``, ``decode_output_line``, ``classify_output_line``), the resumable
line-by-line download (``iter_download_lines``), and the retried, logged, secret-keeping HTTP
plumbing (``HttpClient``, ``Secret``).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
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

# Where each name lives, imported on first use (PEP 562): `kyro plan` needs the line format
# alone, and should not pay for httpx and tenacity, which only the provider's client uses.
_HOMES: dict[str, tuple[str, str]] = {
    "DEFAULT_MODEL": ("kyro_openai._encode", "DEFAULT_MODEL"),
    "HttpClient": ("kyro_openai._http", "Http"),
    "OPENAI_LIMITS": ("kyro_openai._encode", "OPENAI_LIMITS"),
    "OpenAIBatchProvider": ("kyro_openai._provider", "OpenAIBatchProvider"),
    "Secret": ("kyro_openai._http", "Secret"),
    "classify_output_line": ("kyro_openai._results", "classify"),
    "decode_output_line": ("kyro_openai._results", "decode_line"),
    "encode_request": ("kyro_openai._encode", "encode_request"),
    "iter_download_lines": ("kyro_openai._results", "iter_lines"),
    "supports_structured_outputs": ("kyro_openai._encode", "supports_structured_outputs"),
}


def __getattr__(name: str) -> _typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kyro_openai' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home[0]), home[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
