"""Headers, retries shaped like the vendor SDK's, and error mapping for the Anthropic provider.

Retries (:func:`kyro.send_with_retries` with :data:`ANTHROPIC_RETRY`, built on tenacity)
follow the anthropic SDK's rule: by default 2 retries of timeouts, transport errors and
responses with status 408, 409, 429 or ≥ 500 (529 ``overloaded_error`` included), unless the
server says ``x-should-retry: true|false``. The wait is the server's ``retry-after-ms`` /
``retry-after`` only when it asks for more than 0 and at most 60 seconds; any other ask is
ignored (not obeyed, not fatal) and the wait is exponential backoff from 0.5 s doubling to at
most 8 s, less up to 25 % of jitter.

The key lives in a :class:`Secret` whose repr and str are masked, goes on the wire only in the
``x-api-key`` header (httpx logs URLs and status lines, never header values), and is scrubbed
from any server text copied into a :class:`kyro.ProviderError`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from kyro import KyroError, ProviderError, RetryPolicy, retry_after_seconds, send_with_retries
from kyro_anthropic._wire import ErrorEnvelope

__all__ = [
    "ANTHROPIC_RETRY",
    "API_VERSION",
    "MAX_RETRY_AFTER",
    "Http",
    "Secret",
    "Sleep",
    "decode_json",
    "error_code",
    "retry_wait",
    "transport_error",
]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header sent with every call."""

MAX_RETRY_AFTER = 60.0
"""The longest ``retry-after`` obeyed, in seconds (the SDK's rule)."""

logger = logging.getLogger("kyro_anthropic")

Sleep = Callable[[float], Awaitable[None]]


class Secret:
    """A string that never shows itself in a repr, str or f-string.

    Example::

        key = Secret("sk-ant-...")
        repr(key)        # '<secret>'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


ANTHROPIC_RETRY = RetryPolicy(max_retry_after=MAX_RETRY_AFTER, long_retry_after="backoff")
"""The vendor SDK's retry rule: 2 retries, ``retry-after`` obeyed up to 60 s, else backoff."""


def retry_wait(response: httpx.Response | None, retries_taken: int, policy: RetryPolicy) -> float:
    """Seconds to wait before resending a create: a reasonable server ask, else backoff.

    Example::

        retry_wait(httpx.Response(503, headers={"retry-after": "3"}), 0, ANTHROPIC_RETRY)  # 3.0
    """
    if response is not None:
        asked = retry_after_seconds(response.headers)
        if asked is not None and 0 < asked <= policy.max_retry_after:
            return asked
    delay = min(policy.initial_backoff * 2.0**retries_taken, policy.max_backoff)
    return delay * (1.0 - 0.25 * random.random())


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


def transport_error(exc: Exception, *, action: str, base_url: str) -> ProviderError:
    """A ProviderError (status None) for a timeout or connection failure; chain it with ``from``.

    Example::

        raise transport_error(exc, action="listing batches", base_url=url) from exc
    """
    return ProviderError(
        f"{action} failed: no answer from {base_url} ({type(exc).__name__}); check the network "
        "and ANTHROPIC_BASE_URL (or base_url=), then try again",
        provider="anthropic",
    )


class Http:
    """One client, its headers and its retry policy: the provider's only way to the network."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        headers: Callable[[], dict[str, str]],
        retry: RetryPolicy,
        sleep: Sleep,
        secret: Secret | None,
    ) -> None:
        self.client = client
        self.base_url = base_url
        self._headers = headers
        self.retry = retry
        self.sleep = sleep
        self._secret = secret

    def build(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        """A request to ``url`` (a path under the base URL, or absolute) with the auth headers."""
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        if url.startswith("/"):
            url = self.base_url + url
        return self.client.build_request(method, url, headers=headers, **kwargs)

    async def send_once(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send one attempt and log its status line and request id (never headers)."""
        response = await self.client.send(request, stream=stream)
        logger.debug(
            "%s %s -> %s (request-id %s)",
            request.method,
            request.url.path,
            response.status_code,
            response.headers.get("request-id"),
        )
        return response

    def fail(self, response: httpx.Response, *, action: str, hint_404: str) -> ProviderError:
        """The ProviderError for an error response left after retries, saying what to do."""
        status = response.status_code
        code, text = _server_message(response)
        if self._secret is not None and self._secret.reveal():
            text = text.replace(self._secret.reveal(), "<secret>")
        if status == 404:
            hint = hint_404
        elif status in _HINTS:
            hint = _HINTS[status]
        elif code == "billing_error":
            hint = (
                "the account cannot be billed: check its plan and credits; retrying will not help"
            )
        elif status >= 500:
            hint = "the service kept failing after retries: try again later"
        else:
            hint = "the request was rejected"
        detail = f": {text}" if text else ""
        return ProviderError(
            f"{action} failed, {hint}{detail}",
            status_code=status,
            code=code,
            request_id=response.headers.get("request-id"),
            provider="anthropic",
        )

    async def call(
        self,
        make: Callable[[], httpx.Request],
        *,
        action: str,
        hint_404: str = "not found: check the id and base_url",
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise ProviderError.

        ``make`` builds a fresh request per attempt. With ``stream=True`` the caller must close
        the returned response.
        """

        async def send() -> httpx.Response:
            return await self.send_once(make(), stream=stream)

        return await self.call_send(send, action=action, hint_404=hint_404)

    async def call_send(
        self,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        action: str,
        hint_404: str = "not found: check the id and base_url",
    ) -> httpx.Response:
        """Like :meth:`call`, for a caller that sends each attempt itself."""
        try:
            response = await send_with_retries(send, policy=self.retry, sleep=self.sleep)
        except httpx.TransportError as exc:
            raise transport_error(exc, action=action, base_url=self.base_url) from exc
        if response.is_success:
            return response
        await response.aread()
        await response.aclose()
        raise self.fail(response, action=action, hint_404=hint_404)


def decode_json(response: httpx.Response, kind: type[Any], action: str) -> Any:
    """Decode a success body as ``kind``; KyroError naming the call if it does not fit."""
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise KyroError(
            f"{action}: the server's answer is not a valid {kind.__name__}: {exc}"
        ) from exc
