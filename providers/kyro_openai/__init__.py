"""kyro_openai: kyro's provider for the OpenAI Batch API (and Azure, and look-alikes).

Besides the provider, its public face holds what other providers may reuse: the batch line
format, owned by the public module :mod:`kyro_openai.wire` (``encode_request``,
``decode_output_line`` and ``classify_output_line`` are also named here), the resumable
line-by-line download (``iter_download_lines``), and the retried, logged, secret-keeping HTTP
plumbing (``HttpClient``, ``Secret``).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from kyro_openai._http import Http as HttpClient
    from kyro_openai._provider import DEFAULT_MODEL, OPENAI_LIMITS, OpenAIBatchProvider
    from kyro_openai._results import iter_lines as iter_download_lines
    from kyro_openai._secret import Secret
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

# Where each name lives, imported on first use (PEP 562): a reader of the line format alone
# (kyro_openai.wire) should not pay for httpx and tenacity, which only the provider's client uses.
_HOMES: dict[str, tuple[str, str]] = {
    "DEFAULT_MODEL": ("kyro_openai._provider", "DEFAULT_MODEL"),
    "HttpClient": ("kyro_openai._http", "Http"),
    "OPENAI_LIMITS": ("kyro_openai._provider", "OPENAI_LIMITS"),
    "OpenAIBatchProvider": ("kyro_openai._provider", "OpenAIBatchProvider"),
    "Secret": ("kyro_openai._secret", "Secret"),
    "classify_output_line": ("kyro_openai.wire", "classify_output_line"),
    "decode_output_line": ("kyro_openai.wire", "decode_output_line"),
    "encode_request": ("kyro_openai.wire", "encode_request"),
    "iter_download_lines": ("kyro_openai._results", "iter_lines"),
    "supports_structured_outputs": ("kyro_openai.wire", "supports_structured_outputs"),
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
