"""The two ways LocalProvider runs one request: an OpenAI-compatible endpoint, or a callable.

A backend takes one request body (raw JSON, as it sits in the shard) and returns the outcome
as the two halves of an output line: the response (status, request id, JSON body) and the
error (code and message). A backend never raises for a failed request — a timeout, a refused
connection, a non-2xx reply or a handler that raises all become an outcome — so one bad
request never stops the others.
"""

from __future__ import annotations

import inspect
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import httpx
import msgspec
import tenacity

from kyro import redact
from kyro.provider import RetryPolicy, send_with_retries
from kyro_openai.wire import LineError, LineResponse, should_retry

__all__ = ["CallableBackend", "Handler", "HttpBackend", "Outcome", "Reply"]

Reply = str | Mapping[str, Any]
"""What a handler returns: the reply text, or a chat.completion-shaped dict."""

Handler = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]
"""A callable backend: takes the request body dict, returns (or awaits to) a :data:`Reply`."""

Outcome = tuple[LineResponse[msgspec.Raw] | None, LineError | None]
_Sender = httpx.AsyncClient | httpx.AsyncHTTPTransport

_ONE = httpx.Limits(max_connections=1, max_keepalive_connections=1)
# What an httpx client sends unless told otherwise; a bare transport sends the same.
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}
_TIMEOUTS = (TimeoutError, httpx.TimeoutException)
_CONNECTION = (ConnectionError, httpx.TransportError)


def _json_body(content: bytes) -> msgspec.Raw | None:
    """``content`` as raw JSON safe to embed in one JSONL line, or None if it is not JSON."""
    try:
        raw = msgspec.json.decode(content, type=msgspec.Raw)
    except (msgspec.DecodeError, RecursionError):  # too deep is as unusable as not JSON
        return None
    if b"\n" in content or b"\r" in content:  # pretty-printed: compact it to one line
        return msgspec.Raw(msgspec.json.encode(msgspec.json.decode(content)))
    return raw


class _ErrorFields(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorFields | None = None


class HttpBackend:
    """POST each body to ``{base_url}/chat/completions`` with retries and a per-try deadline.

    Retries follow :func:`kyro.provider.send_with_retries` with the OpenAI-compatible rule
    (:func:`kyro_openai.wire.should_retry`: timeouts, transport errors, 408/409/429/5xx,
    honouring ``retry-after``); ``timeout`` bounds each attempt as a whole, connect to last byte.

    Example::

        backend = HttpBackend("http://127.0.0.1:8000/v1", api_key=None, timeout=60.0)
        response, error = await backend(msgspec.Raw(b'{"model": "m", "messages": []}'))
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        timeout: float | None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.endpoint = base_url.rstrip("/") + "/chat/completions"
        self._url = httpx.URL(self.endpoint)
        # What messages and result files show: never the userinfo of the URL.
        self.endpoint = redact(self.endpoint)
        headers = {**_DEFAULT_HEADERS, "content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        # Parsed once (above): httpx re-parses a str URL and a dict of headers on each request.
        self._headers = httpx.Headers(headers)
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._shared = client
        self._idle: list[_Sender] = []  # own clients not carrying a request now
        self._own: list[_Sender] = []
        self._closed = False
        if client is None:
            self._tls = httpx.create_ssl_context()  # shared: building one costs milliseconds
            self._client_timeout = httpx.Timeout(timeout)
            self._extensions = {"timeout": self._client_timeout.as_dict()}
            # With no proxy in the environment an httpx client would hand each request to a
            # plain transport, as built below; going there directly skips the client's own
            # work per request (auth and redirect flows, cookies, event hooks, mounts), a
            # third of the CPU a request costs. A proxy setting keeps the client, which
            # honours it.
            self._direct = not urllib.request.getproxies()

    def _new_client(self) -> _Sender:
        # One connection per request in flight, each in a pool of its own: httpx's pool does
        # work per request that grows with its connection count (it checks every idle
        # connection, polling its socket, each time a request starts or ends), so one pool of
        # N costs several times the CPU per request; pools of one make that check a single
        # one. Callers bound how many requests run at once, and so how many clients exist.
        if self._closed:
            raise RuntimeError("this backend is closed: its HTTP clients cannot send any more")
        client: _Sender
        if self._direct:
            client = httpx.AsyncHTTPTransport(limits=_ONE, verify=self._tls)
        else:
            client = httpx.AsyncClient(timeout=self._client_timeout, limits=_ONE, verify=self._tls)
        self._own.append(client)
        return client

    async def __call__(self, body: msgspec.Raw) -> Outcome:
        """Run one request; never raises for a failed request."""
        if self._shared is not None:
            return await self._run(self._shared, bytes(body))
        client = self._idle.pop() if self._idle else self._new_client()
        try:
            return await self._run(client, bytes(body))
        finally:
            self._idle.append(client)  # last in, first out: its connection is the warmest

    async def _post(self, client: _Sender, content: bytes) -> httpx.Response:
        if isinstance(client, httpx.AsyncClient):
            return await client.post(self._url, content=content, headers=self._headers)
        request = httpx.Request(
            "POST", self._url, content=content, headers=self._headers, extensions=self._extensions
        )
        response = await client.handle_async_request(request)
        response.request = request
        try:
            await response.aread()  # closes the response once read
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _run(self, client: _Sender, content: bytes) -> Outcome:
        async def send() -> httpx.Response:
            # A bare cancel scope (reaching its end means the deadline passed): fail_after's
            # generator wrapper costs about twice as much per call.
            try:
                with anyio.move_on_after(self._timeout):
                    return await self._post(client, content)
            except TimeoutError as exc:  # a transport's own
                raise httpx.TimeoutException("per-request deadline passed") from exc
            raise httpx.TimeoutException("per-request deadline passed")

        try:
            response = await send_with_retries(
                send, policy=self._retry, sleep=self._sleep, transient=should_retry
            )
        except httpx.TimeoutException:
            message = f"no reply from {self.endpoint} within {self._timeout:g} s"
            return None, LineError(code="timeout", message=message)
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            message = f"could not reach {self.endpoint}: {detail}"
            return None, LineError(code="connection_error", message=message)
        return self._outcome(response)

    def _outcome(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        request_id = response.headers.get("x-request-id")
        body = _json_body(response.content)
        if 200 <= status < 300:
            if body is None:
                message = f"HTTP {status} from {self.endpoint} with a body that is not JSON"
                reply: LineResponse[msgspec.Raw] = LineResponse(
                    status_code=status, request_id=request_id
                )
                return reply, LineError(code="invalid_response", message=message)
            return LineResponse(status_code=status, request_id=request_id, body=body), None
        code, detail = f"http_{status}", response.text[:300].strip()
        if body is None:
            envelope = {"error": {"message": detail, "type": "non_json_response"}}
            body = msgspec.Raw(msgspec.json.encode(envelope))
        else:
            try:
                fields = msgspec.json.decode(body, type=_ErrorEnvelope).error
            except msgspec.DecodeError:  # JSON, but not an error envelope
                fields = None
            if fields is not None:
                code = fields.code or code
                detail = fields.message or detail
        message = f"HTTP {status} from {self.endpoint}: {detail}".rstrip(": ")
        reply = LineResponse(status_code=status, request_id=request_id, body=body)
        return reply, LineError(code=code, message=message)

    async def aclose(self) -> None:
        """Close the HTTP clients this backend created (a client given to it is the caller's)."""
        self._closed = True
        own, self._own, self._idle = self._own, [], []
        for client in own:
            await client.aclose()


def _is_async(handler: Handler) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 -- an async __call__ on an object
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class CallableBackend:
    """Run each body through a Python callable: awaited if async, else in a worker thread.

    Retried (tenacity, shaped by ``retry``): timeouts and connection errors, including the
    handler's own ``TimeoutError``/``ConnectionError`` and httpx's. Any other exception is a
    ``callable_error`` line at once. A sync handler past its deadline is abandoned, not killed:
    Python cannot stop a thread, so it runs on to its end and its reply is dropped.

    Example::

        backend = CallableBackend(lambda body: '{"status": "SUCCESS"}', timeout=10.0)
    """

    def __init__(
        self,
        handler: Handler,
        *,
        timeout: float | None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        concurrency: int = 16,
    ) -> None:
        self._handler = handler
        self._is_async = _is_async(handler)
        self._timeout = timeout
        self._sleep = sleep
        self._limiter = anyio.CapacityLimiter(concurrency)
        name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
        self.endpoint = f"callable:{name}"
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(retry.max_retries + 1)
        if retry.max_elapsed is not None:
            stop = stop | tenacity.stop_after_delay(retry.max_elapsed)
        self._stop = stop
        self._wait = tenacity.wait_exponential(
            multiplier=retry.initial_backoff, max=retry.max_backoff
        ) + tenacity.wait_random(0, retry.initial_backoff / 4)

    async def _call_once(self, body: msgspec.Raw) -> Any:
        payload = msgspec.json.decode(body)  # a fresh dict per attempt: handlers may mutate it
        with anyio.fail_after(self._timeout):
            if self._is_async:
                return await self._handler(payload)  # type: ignore[misc]
            reply = await anyio.to_thread.run_sync(
                self._handler, payload, limiter=self._limiter, abandon_on_cancel=True
            )
            if inspect.isawaitable(reply):  # a sync wrapper that hands back a coroutine
                return await reply
            return reply

    async def _retried(self, body: msgspec.Raw, first: Exception, started: float) -> Any:
        """Retry after ``first``, the first try's failure: tenacity replays it as attempt 1,
        timed from the first try's start, so the policy counts exactly what it would have."""
        failed = [first]

        async def attempt() -> Any:
            if failed:
                raise failed.pop()
            return await self._call_once(body)

        def since_first_try(state: tenacity.RetryCallState) -> None:
            state.start_time = started

        retrying = tenacity.AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((*_TIMEOUTS, *_CONNECTION)),
            sleep=self._sleep,
            before=since_first_try,
            reraise=True,
        )
        return await retrying(attempt)

    async def __call__(self, body: msgspec.Raw) -> Outcome:
        """Run one request; never raises for a failed request."""
        # The first try runs bare: nearly every call needs no retry, and building tenacity's
        # retrying object per call cost about as much as a fast handler's whole request.
        started = time.monotonic()
        try:
            try:
                reply: Any = await self._call_once(body)
            except (*_TIMEOUTS, *_CONNECTION) as first:
                reply = await self._retried(body, first, started)
        except _TIMEOUTS:
            message = f"{self.endpoint} gave no reply within {self._timeout:g} s"
            return None, LineError(code="timeout", message=message)
        except _CONNECTION as exc:
            message = f"{self.endpoint} raised {type(exc).__name__}: {exc}"
            return None, LineError(code="connection_error", message=message)
        except Exception as exc:
            message = f"{self.endpoint} raised {type(exc).__name__}: {exc}"
            return None, LineError(code="callable_error", message=message)
        return self._outcome(reply, body)

    def _outcome(self, reply: Any, body: msgspec.Raw) -> Outcome:
        if isinstance(reply, str):
            model = msgspec.json.decode(body, type=_Model).model
            completion: Mapping[str, Any] = {
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
            }
        elif isinstance(reply, Mapping) and "choices" in reply:
            completion = reply
        else:
            kind = (
                "a dict without 'choices'" if isinstance(reply, Mapping) else type(reply).__name__
            )
            message = (
                f"{self.endpoint} returned {kind}: return the reply text "
                "or a chat.completion dict (choices[0].message.content)"
            )
            return None, LineError(code="callable_error", message=message)
        try:
            raw = msgspec.Raw(msgspec.json.encode(completion))
        except (TypeError, msgspec.EncodeError) as exc:
            message = f"{self.endpoint} returned a reply that is not JSON: {exc}"
            return None, LineError(code="callable_error", message=message)
        return LineResponse(status_code=200, body=raw), None

    async def aclose(self) -> None:
        """Nothing to release: the handler belongs to the caller."""


class _Model(msgspec.Struct):
    model: str | None = None
