"""Retries for HTTP providers: the neutral policy, composed from tenacity.

What is retried is the provider's call, not the core's: timeouts and transport errors always,
and a response when the ``transient`` rule the provider passes says so (the OpenAI-compatible
rule is :func:`kyro_openai.wire.should_retry`; each provider package keeps its own). Without
one, only HTTP's own "try again" statuses are retried: 408, 429 and ≥ 500. How long to wait:
the server's ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) when it is in
(0, 120] s; a longer ask is not retried (the error is raised at once) — or, with
``RetryPolicy(long_retry_after="backoff")`` (the anthropic SDK's rule), ignored; with no usable
header, exponential backoff from 0.5 s doubling to at most 8 s, reduced by up to 25 % of jitter.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
import httpx
import msgspec
import tenacity

__all__ = [
    "RetryPolicy",
    "Transient",
    "header_problem",
    "http_transient",
    "retry_after_seconds",
    "send_with_retries",
]

Transient = Callable[[httpx.Response], bool]
"""A provider's rule: is this failed response (its body already read) worth sending again?"""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How many times and how patiently to retry one call.

    Example::

        RetryPolicy(max_retries=5)      # 6 attempts in all
        RetryPolicy(max_retries=0)      # never retry
        RetryPolicy(max_retry_after=60, long_retry_after="backoff")   # anthropic SDK's rule

    ``long_retry_after`` says what a ``retry-after`` beyond ``max_retry_after`` does:
    ``"give_up"`` returns the response at once, ``"backoff"`` ignores the ask and retries
    after the usual backoff.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 120.0
    max_elapsed: float | None = None
    long_retry_after: Literal["give_up", "backoff"] = "give_up"


class _RetryableResponse(Exception):
    def __init__(self, response: httpx.Response, delay: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.delay = delay


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The delay a response asks for (``retry-after-ms``, then ``retry-after``), or None.

    Example::

        retry_after_seconds(httpx.Headers({"retry-after": "3"}))   # 3.0
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed)) - time.time()


def http_transient(response: httpx.Response) -> bool:
    """HTTP's own "try again later": 408, 429 and every 5xx (the rule when a provider names none).

    Example::

        http_transient(httpx.Response(503)), http_transient(httpx.Response(409))   # True, False
    """
    status = response.status_code
    return status >= 500 or status in (408, 429)


def _backoff(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _RetryableResponse) and exc.delay is not None:
            return exc.delay
        retries_taken = state.attempt_number - 1
        delay = min(policy.initial_backoff * 2.0**retries_taken, policy.max_backoff)
        return delay * (1.0 - 0.25 * random.random())

    return wait


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    transient: Transient = http_transient,
) -> httpx.Response:
    """Call ``send`` until it yields a response that needs no retry, and return that response.

    Transport errors and timeouts are retried and re-raised (as httpx exceptions) once the
    policy is spent; a failed response that ``transient`` (the provider's rule) calls worth
    another try is retried and, once the policy is spent or the server
    asks for more than ``max_retry_after`` seconds, returned for the caller to turn into its
    own error. A retried response is closed before the next attempt, so ``send`` may open
    streaming responses.

    Example::

        response = await send_with_retries(lambda: client.get("/v1/batches/batch_1"),
                                           transient=kyro_openai.wire.should_retry)
    """
    started = time.monotonic()

    async def attempt() -> httpx.Response:
        response = await send()
        if response.status_code < 400:
            return response
        await response.aread()  # error bodies are small; a provider's rule may read them
        if not transient(response):
            return response
        delay = retry_after_seconds(response.headers)
        if delay is not None and delay > policy.max_retry_after:
            if policy.long_retry_after == "give_up":
                return response  # the server asks for longer than we wait: surface it now
            delay = None  # an unreasonable ask: back off as if none were given
        # Its body is read, so it is closed here: a response that ends up returned (the
        # policy spent) still has its body, and no async callback of the retry library is
        # needed, which not every release supports.
        await response.aclose()
        raise _RetryableResponse(response, delay if delay is not None and delay > 0 else None)

    # Why the first try runs bare: nearly every call needs no retry, and building tenacity's
    # retrying object (stop, wait and retry objects, a call state) per call is a real share of
    # a fast (local) request's cost. Behaviour is the same either way: a first try that raises
    # starts the machinery, which replays that error as attempt 1, timed from its start, so
    # the policy's attempt count and elapsed-time limit see exactly what they would have.
    try:
        return await attempt()
    except Exception as exc:
        first: list[Exception] = [exc]

    async def replay_then_attempt() -> httpx.Response:
        if first:
            raise first.pop()
        return await attempt()

    def since_first_try(state: tenacity.RetryCallState) -> None:
        state.start_time = started

    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_retries + 1)
    if policy.max_elapsed is not None:
        stop = stop | tenacity.stop_after_delay(policy.max_elapsed)
    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=_backoff(policy),
        retry=tenacity.retry_if_exception_type(
            (_RetryableResponse, httpx.TimeoutException, httpx.TransportError)
        ),
        sleep=sleep,
        before=since_first_try,
        reraise=True,
    )
    try:
        return await retrying(replay_then_attempt)
    except _RetryableResponse as exc:
        return exc.response


def header_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as an HTTP header value (as an API key is), or None.

    For providers to check a key before anything is sent, and say why it cannot work.

    Keys are printable ASCII; whitespace at either end (a trailing newline or carriage return
    copied with the key) or any other control or non-ASCII character is refused.

    Example::

        kyro.provider.header_problem("sk-abc\\r")   # 'it ends in whitespace (a carriage return)'
    """
    if value != value.strip():
        end = value[-1] if value[-1].isspace() else value[0]
        names = {"\r": "a carriage return", "\n": "a line break", "\t": "a tab", " ": "a space"}
        where = "ends" if value[-1].isspace() else "starts"
        return f"it {where} in whitespace ({names.get(end, 'a blank character')})"
    for position, char in enumerate(value, start=1):
        if not 0x21 <= ord(char) <= 0x7E:
            return f"character {position} is not printable ASCII, which an HTTP header cannot carry"
    return None
