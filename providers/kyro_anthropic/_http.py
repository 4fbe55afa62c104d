"""Headers, retries shaped like the vendor SDK's, and error mapping for the Anthropic provider.

Retries (:func:`send_with_retries`, built on tenacity) follow the anthropic SDK's rule: by
default 2 retries of timeouts, transport errors and responses with status 408, 409, 429 or
≥ 500 (529 ``overloaded_error`` included), unless the server says ``x-should-retry:
true|false``. The wait is the server's ``retry-after-ms`` / ``retry-after`` only when it asks
for more than 0 and at most 60 seconds; any other ask is ignored (not obeyed, not fatal) and
the wait is exponential backoff from 0.5 s doubling to at most 8 s, less up to 25 % of jitter.

The key lives in a :class:`Secret` whose repr and str are masked, goes on the wire only in the
``x-api-key`` header (httpx logs URLs and status lines, never header values), and is scrubbed
from any server text copied into a :class:`kyro.ProviderError`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import tenacity

from kyro import KyroError, ProviderError, RetryPolicy, retry_after_seconds
from kyro_anthropic._wire import ErrorEnvelope

__all__ = [
    "API_VERSION",
    "MAX_RETRY_AFTER",
    "Http",
    "Secret",
    "Sleep",
    "decode_json",
    "error_code",
    "retry_wait",
    "send_with_retries",
    "should_retry",
    "transport_error",
]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header sent with every call."""

MAX_RETRY_AFTER = 60.0
"""The longest ``retry-after`` obeyed, in seconds (the SDK's rule)."""

logger = logging.getLogger("kyro_anthropic")

Sleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES = frozenset({408, 409, 429})


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


def should_retry(response: httpx.Response) -> bool:
    """Whether the SDK would retry this error response.

    Example::

        should_retry(httpx.Response(529))   # True
    """
    override = response.headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    status = response.status_code
    return status in _RETRY_STATUSES or status >= 500


def retry_wait(response: httpx.Response | None, retries_taken: int, policy: RetryPolicy) -> float:
    """Seconds to wait before the next attempt: a reasonable server ask, else jittered backoff.

    Example::

        retry_wait(httpx.Response(429, headers={"retry-after": "3"}), 0, RetryPolicy())  # 3.0
    """
    if response is not None:
        asked = retry_after_seconds(response.headers)
        if asked is not None and 0 < asked <= min(MAX_RETRY_AFTER, policy.max_retry_after):
            return asked
    delay = min(policy.initial_backoff * 2.0**retries_taken, policy.max_backoff)
    return delay * (1.0 - 0.25 * random.random())


class _Retry(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    policy: RetryPolicy,
    sleep: Sleep,
) -> httpx.Response:
    """Call ``send`` until a response needs no retry or the policy is spent; return it.

    Transport errors and timeouts are retried, then re-raised as httpx exceptions; a retryable
    error response left at the end is returned for the caller to turn into its own error. Each
    retried response is closed before the next attempt.

    Example::

        response = await send_with_retries(lambda: client.get(url), policy=RetryPolicy(),
                                           sleep=anyio.sleep)
    """
    started = time.monotonic()

    async def attempt() -> httpx.Response:
        response = await send()
        if response.status_code < 400:
            return response
        await response.aread()
        if should_retry(response):
            raise _Retry(response)
        return response

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        response = exc.response if isinstance(exc, _Retry) else None
        return retry_wait(response, state.attempt_number - 1, policy)

    async def close_retried(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retry):
            await exc.response.aclose()

    def since_start(state: tenacity.RetryCallState) -> None:
        state.start_time = started

    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_retries + 1)
    if policy.max_elapsed is not None:
        stop = stop | tenacity.stop_after_delay(policy.max_elapsed)
    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception_type((_Retry, httpx.TransportError)),
        sleep=sleep,
        before=since_start,
        before_sleep=close_retried,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except _Retry as exc:
        return exc.response


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
