"""Headers, the retried calls and error mapping for the Anthropic provider.

Every call goes through :func:`kyro.provider.send_with_retries` with Anthropic's rule set
(:mod:`kyro_anthropic._retry`: what is worth retrying, and how patiently).

The HTTP plumbing (one client, fresh request per attempt, debug logs of status lines and request
ids, never headers) is kyro_openai's :class:`~kyro_openai.HttpClient`, with Anthropic's error
words and retry rule. The key lives in a :class:`~kyro_openai.Secret` whose repr and str are
masked, goes on the wire only in the ``x-api-key`` header, and is scrubbed from any server text
copied into a :class:`kyro.ProviderError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import msgspec

from kyro_anthropic._retry import should_retry
from kyro_anthropic._wire import ErrorEnvelope
from kyro_openai import HttpClient, Secret

__all__ = [
    "API_VERSION",
    "Http",
    "Secret",
    "Sleep",
    "error_code",
]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header sent with every call."""

Sleep = Callable[[float], Awaitable[None]]


def _server_message(response: httpx.Response) -> tuple[str | None, str]:
    try:
        envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, response.content[:300].decode("utf-8", "replace").strip()
    if envelope.error is None:
        return None, envelope.message or ""
    return envelope.error.type, envelope.error.message or ""


def error_code(response: httpx.Response) -> str | None:
    """The error envelope's ``error.type`` (``rate_limit_error``…), or None."""
    return _server_message(response)[0]


_HINTS = {
    401: "the API key was rejected: check ANTHROPIC_API_KEY (or api_key=)",
    403: "the key may not use this workspace or model: check the key's workspace permissions",
    413: "the batch body is larger than Anthropic takes (256 MB): use smaller shards",
    429: "still rate limited after retrying: wait and try again later",
}


class Http(HttpClient):
    """kyro_openai's HTTP plumbing with Anthropic's request id header and error words."""

    request_id_header = "request-id"
    provider = "anthropic"
    base_url_setting = "ANTHROPIC_BASE_URL"

    def transient(self, response: httpx.Response) -> bool:
        """Whether a failed response is worth sending again (Anthropic's rule)."""
        return should_retry(response)

    def server_message(self, response: httpx.Response) -> tuple[str | None, str]:
        """(``error.type``, message) of Anthropic's error envelope."""
        return _server_message(response)

    def hint(self, status: int, code: str | None, hint_404: str) -> str:
        """What to do about an error response left after retries."""
        if status == 404:
            return hint_404
        if status in _HINTS:
            return _HINTS[status]
        if code == "billing_error":
            return (
                "the account cannot be billed: check its plan and credits (retrying will not help)"
            )
        if status >= 500:
            return "the service kept failing after retries: try again later"
        return "the request was rejected"
