"""Settings, headers, retried calls and error mapping for the OpenAI provider.

The API key lives in a :class:`Secret` whose repr and str are masked, goes on the wire only as
a request header (httpx logs URLs and status lines, never header values), and is scrubbed from
any server message copied into a :class:`kyro.ProviderError`. Every call goes through
:func:`kyro.provider.send_with_retries` with the OpenAI-compatible rule of what is worth retrying
(:func:`kyro_openai.wire.should_retry`); what is left after the retries becomes a ``ProviderError``
whose message says what to do next, with the status, the error code and the ``x-request-id``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import msgspec

from kyro.provider import (
    AuthenticationError,
    BatchStatus,
    KyroError,
    ProviderError,
    RetryPolicy,
    send_with_retries,
)
from kyro_openai._api import ErrorEnvelope
from kyro_openai._results import iter_lines
from kyro_openai._secret import Secret
from kyro_openai.wire import should_retry

__all__ = [
    "Http",
    "Secret",
    "decode_json",
    "missing_key_error",
    "transport_error",
]

logger = logging.getLogger("kyro_openai")

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def _server_message(response: httpx.Response) -> tuple[str | None, str]:
    try:
        envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        text = response.content[:300].decode("utf-8", "replace").strip()
        return None, text
    error = envelope.error
    if error is None:
        return None, ""
    code = str(error.code) if error.code is not None else None
    return code, error.message or ""


def _hint(status: int, code: str | None, hint_404: str, *, azure: bool) -> str:
    if status == 401:
        return (
            "the api-key was rejected: check the key of this Azure resource"
            if azure
            else "the API key was rejected: check OPENAI_API_KEY (or api_key=)"
        )
    if status == 403:
        return (
            "the key may not use this organization or project: "
            "check OPENAI_ORG_ID and OPENAI_PROJECT_ID"
        )
    if status == 404:
        return hint_404
    if status == 429 and code == "insufficient_quota":
        return "the account is out of quota: check billing and plan limits; retrying will not help"
    if status == 429:
        return "still rate limited after retrying: wait and try again later"
    if status >= 500:
        return "the service kept failing after retries: try again later"
    return "the request was rejected"


def transport_error(
    exc: Exception,
    *,
    action: str,
    base_url: str,
    provider: str = "openai",
    setting: str = "OPENAI_BASE_URL",
) -> ProviderError:
    """A ProviderError (status None) for a timeout or connection failure; chain it with ``from``.

    ``setting`` names the environment variable of the base URL the user should check.

    Example::

        raise transport_error(exc, action="listing batches", base_url=url) from exc
    """
    return ProviderError(
        f"{action} failed: no answer from {base_url} ({type(exc).__name__}); check the network "
        f"and {setting} (or base_url=), then try again",
        provider=provider,
    )


class Http:
    """One client, its headers and its retry policy: the provider's only way to the network.

    Another HTTP provider may reuse it (``kyro_openai.HttpClient``): override
    :meth:`server_message` and :meth:`hint` for its own error envelope and words,
    :meth:`transient` for its own rule of what is worth retrying, and
    :attr:`request_id_header`, :attr:`provider` and :attr:`base_url_setting`. It owns
    the steps every batch provider takes alike: a cancel that tolerates an ended batch
    (:meth:`cancel`), a resumable line-by-line download (:meth:`download_lines`), decoding
    (:meth:`decode`) and closing the client it was given to own (:meth:`aclose`).
    """

    request_id_header = "x-request-id"
    """The response header that carries the server's request id (logged, and kept on errors)."""
    provider = "openai"
    """The provider named on errors."""
    base_url_setting = "OPENAI_BASE_URL"
    """The environment variable of the base URL, named when the server does not answer."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
        base_url: str,
        headers: Callable[[], dict[str, str]],
        retry: RetryPolicy,
        sleep: Sleep,
        secret: Secret | None,
        azure: bool = False,
        owns_client: bool = False,
    ) -> None:
        self._client = None if callable(client) else client
        self._make_client = client if callable(client) else None
        self.owns_client = owns_client
        self.base_url = base_url
        self._headers = headers
        self.retry = retry
        self.sleep = sleep
        self._secret = secret
        self._azure = azure

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client. Given as a factory, it is made at the first use: making one
        loads the TLS certificates, which a plan that never calls the network does not need.
        """
        if self._client is None:
            assert self._make_client is not None
            self._client = self._make_client()
        return self._client

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/batches`` (an absolute URL stays as is)."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def build(self, method: str, path: str, **kwargs: Any) -> httpx.Request:
        """A request to ``path`` carrying the auth and routing headers."""
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return self.client.build_request(method, self.url(path), headers=headers, **kwargs)

    async def send_once(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send one attempt and log its status line and request id (never headers)."""
        response = await self.client.send(request, stream=stream)
        logger.debug(
            "%s %s -> %s (%s %s)",
            request.method,
            request.url.path,
            response.status_code,
            self.request_id_header,
            response.headers.get(self.request_id_header),
        )
        return response

    def transient(self, response: httpx.Response) -> bool:
        """Whether a failed response is worth sending again (the OpenAI-compatible rule)."""
        return should_retry(response)

    def server_message(self, response: httpx.Response) -> tuple[str | None, str]:
        """(error code, message) of an error body; the raw start of a body that is no envelope."""
        return _server_message(response)

    def hint(self, status: int, code: str | None, hint_404: str) -> str:
        """What to do about an error response left after retries (the words of the message)."""
        return _hint(status, code, hint_404, azure=self._azure)

    def fail(self, response: httpx.Response, *, action: str, hint_404: str) -> ProviderError:
        """The ProviderError for an error response left after retries (an
        :class:`kyro.AuthenticationError` for 401 and 403): what failed, what to do
        (:meth:`hint`), the server's own words (the key scrubbed), code and request id."""
        status = response.status_code
        code, text = self.server_message(response)
        if self._secret is not None and self._secret.reveal():
            text = text.replace(self._secret.reveal(), "<secret>")
        detail = f": {text}" if text else ""
        error = AuthenticationError if status in (401, 403) else ProviderError
        return error(
            f"{action} failed, {self.hint(status, code, hint_404)}{detail}",
            status_code=status,
            code=code,
            request_id=response.headers.get(self.request_id_header),
            provider=self.provider,
        )

    def unreachable(self, exc: Exception, *, action: str) -> ProviderError:
        """The ProviderError for a timeout or connection failure left after retries."""
        return transport_error(
            exc,
            action=action,
            base_url=self.base_url,
            provider=self.provider,
            setting=self.base_url_setting,
        )

    def decode(self, response: httpx.Response, kind: type[T], action: str) -> T:
        """A success body decoded as ``kind``; KyroError naming the call if it does not fit."""
        decoded: T = decode_json(response, kind, action)
        return decoded

    async def cancel(
        self,
        path: str,
        *,
        action: str,
        hint_404: str,
        status_of: Callable[[httpx.Response], BatchStatus],
        poll: Callable[[], Awaitable[BatchStatus]],
    ) -> BatchStatus:
        """POST a cancel to ``path`` and return the batch's status (``status_of`` reads it).

        Both APIs refuse (400 or 409) to cancel a batch that already ended: that is no error
        here — when ``poll()`` then finds the batch ended, its terminal status is returned.
        """
        try:
            response = await self.call(
                lambda: self.build("POST", path), action=action, hint_404=hint_404
            )
        except ProviderError as exc:
            if exc.status_code not in (400, 409):
                raise
            status = await poll()
            if not status.terminal:
                raise
            return status
        return status_of(response)

    def download_lines(self, path: str, *, action: str, hint_404: str) -> AsyncIterator[bytes]:
        """The non-empty lines of the file at ``path`` (a URL or API path), streamed and
        resumed after a dropped connection (see :func:`kyro_openai.iter_download_lines`)."""

        async def open_response() -> httpx.Response:
            return await self.call(
                lambda: self.build("GET", path, headers={"Accept": "application/binary"}),
                action=action,
                hint_404=hint_404,
                stream=True,
            )

        return iter_lines(
            open_response,
            max_resumes=self.retry.max_retries,
            sleep=self.sleep,
            give_up=lambda exc: self.unreachable(exc, action=action),
        )

    async def aclose(self) -> None:
        """Close the client if it was given to own (an injected one is left open, and one
        never made is never made)."""
        if self.owns_client and self._client is not None:
            await self._client.aclose()

    async def call(
        self,
        make: Callable[[], httpx.Request],
        *,
        action: str,
        hint_404: str = "not found: check the id and base_url",
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise ProviderError.

        ``make`` builds a fresh request per attempt (an upload's body stream is single-use).
        With ``stream=True`` the caller must close the returned response.
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
            response = await send_with_retries(
                send, policy=self.retry, sleep=self.sleep, transient=self.transient
            )
        except httpx.TransportError as exc:
            raise self.unreachable(exc, action=action) from exc
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
    except RecursionError as exc:
        raise KyroError(
            f"{action}: the server's answer is nested too deeply to be a {kind.__name__}"
        ) from exc


def bad_key_error(variable: str, problem: str) -> KyroError:
    """The error for a key that an HTTP header cannot carry; the key itself is never shown."""
    return KyroError(
        f"the API key cannot be used: {problem}. Set {variable} again to the key alone "
        "(no quotes, spaces or line breaks), or pass api_key="
    )


def missing_key_error(azure: bool) -> KyroError:
    """The error for a call made without an API key."""
    where = "the Azure resource's key" if azure else "your OpenAI API key"
    return KyroError(
        f"no API key for the openai provider: set OPENAI_API_KEY to {where}, "
        "or pass api_key= to OpenAIBatchProvider"
    )
