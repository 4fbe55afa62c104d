"""send_with_retries: which answers are retried, how long it waits, and what it gives back."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from kyro.provider import RetryPolicy, retry_after_seconds, send_with_retries

Reply = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A fake sleep that records the delays it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def scripted(*replies: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[int]]:
    """A client answering each call with the next scripted reply; returns it and a call log."""
    calls: list[int] = []
    queue: Iterator[httpx.Response | Exception] = iter(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        reply = next(queue)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), calls


async def run(client: httpx.AsyncClient, sleep: Recorder, **policy: float) -> httpx.Response:
    """GET once through send_with_retries with the given policy and the default rule."""
    return await send_with_retries(
        lambda: client.get("http://test/v1/batches"),
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=sleep,
    )


def quota_429() -> httpx.Response:
    """A 429 whose code says the quota is exhausted."""
    return httpx.Response(429, json={"error": {"code": "insufficient_quota", "message": "pay"}})


async def test_retry_after_seconds_is_honoured() -> None:
    """A 429 with retry-after: 3 waits exactly 3 s before the next attempt."""
    client, calls = scripted(httpx.Response(429, headers={"retry-after": "3"}), httpx.Response(200))
    sleep = Recorder()
    response = await run(client, sleep)
    assert response.status_code == 200
    assert sleep.delays == [3.0]
    assert len(calls) == 2


async def test_retry_after_ms_is_preferred() -> None:
    """retry-after-ms wins over retry-after when both are present."""
    headers = {"retry-after-ms": "250", "retry-after": "9"}
    client, _ = scripted(httpx.Response(503, headers=headers), httpx.Response(200))
    sleep = Recorder()
    await run(client, sleep)
    assert sleep.delays == [0.25]


async def test_retry_after_http_date_is_understood() -> None:
    """retry-after as an HTTP date becomes the seconds until then."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds(httpx.Headers({"retry-after": when})) or 0) <= 30


async def test_retry_after_over_the_cap_raises_at_once() -> None:
    """A server asking for more than 120 s is not waited for: its response comes back now."""
    client, calls = scripted(httpx.Response(429, headers={"retry-after": "121"}))
    sleep = Recorder()
    response = await run(client, sleep)
    assert response.status_code == 429
    assert sleep.delays == []
    assert len(calls) == 1


async def test_retry_after_over_the_cap_backs_off_when_the_policy_says_so() -> None:
    """``long_retry_after="backoff"``: a 61 s ask beyond a 60 s cap is ignored, not obeyed."""
    client, calls = scripted(
        httpx.Response(529, headers={"retry-after": "61"}),
        httpx.Response(429, headers={"retry-after": "60"}),
        httpx.Response(200),
    )
    sleep = Recorder()
    response = await send_with_retries(
        lambda: client.get("http://test/v1/messages/batches"),
        policy=RetryPolicy(max_retry_after=60, long_retry_after="backoff"),
        sleep=sleep,
    )
    assert response.status_code == 200
    assert len(calls) == 3
    first, second = sleep.delays
    assert 0.375 <= first <= 0.5
    assert second == 60.0


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_default_rule_retries_http_try_again_statuses(status: int) -> None:
    """Without a provider's rule, 408, 429 and 5xx (HTTP's own "try again") are retried."""
    client, calls = scripted(httpx.Response(status), httpx.Response(200))
    response = await run(client, Recorder())
    assert response.status_code == 200
    assert len(calls) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_default_rule_returns_other_client_errors_at_once(status: int) -> None:
    """Other 4xx answers (409 included: retrying a conflict is a vendor's call) come back after
    one attempt."""
    client, calls = scripted(httpx.Response(status))
    sleep = Recorder()
    response = await run(client, sleep)
    assert response.status_code == status
    assert (len(calls), sleep.delays) == (1, [])


async def test_default_rule_knows_no_vendor_header_or_code() -> None:
    """The neutral default ignores ``x-should-retry`` and error codes (providers' rules)."""
    forced = httpx.Response(400, headers={"x-should-retry": "true"})
    client, calls = scripted(forced)
    assert (await run(client, Recorder())).status_code == 400
    client, calls_quota = scripted(quota_429(), httpx.Response(200))
    assert (await run(client, Recorder())).status_code == 200
    assert (len(calls), len(calls_quota)) == (1, 2)


async def test_the_providers_rule_decides_what_is_retried() -> None:
    """A ``transient`` rule replaces the default, and sees the failed response with its body."""
    seen: list[tuple[int, bytes]] = []

    def teapots_only(response: httpx.Response) -> bool:
        seen.append((response.status_code, response.content))
        return response.status_code == 418

    client, calls = scripted(
        httpx.Response(418, content=b"brewing"), httpx.Response(503), httpx.Response(200)
    )
    response = await send_with_retries(
        lambda: client.get("http://test/v1/batches"), sleep=Recorder(), transient=teapots_only
    )
    assert response.status_code == 503
    assert len(calls) == 2
    assert seen == [(418, b"brewing"), (503, b"")]


async def test_exhausted_retries_return_the_last_response() -> None:
    """After max_retries the last retryable response is handed back, not raised."""
    client, calls = scripted(*(httpx.Response(500) for _ in range(3)))
    sleep = Recorder()
    response = await run(client, sleep, max_retries=2)
    assert response.status_code == 500
    assert len(calls) == 3
    assert len(sleep.delays) == 2


async def test_backoff_doubles_within_jitter_bounds() -> None:
    """Without headers the delay is min(0.5·2ⁿ, 8) reduced by at most 25 %."""
    client, _ = scripted(*(httpx.Response(502) for _ in range(7)), httpx.Response(200))
    sleep = Recorder()
    await run(client, sleep, max_retries=7)
    assert len(sleep.delays) == 7
    for retries_taken, delay in enumerate(sleep.delays):
        ceiling = min(0.5 * 2**retries_taken, 8.0)
        assert 0.75 * ceiling <= delay <= ceiling


async def test_zero_retry_after_falls_back_to_backoff() -> None:
    """retry-after: 0 is not a usable delay, so the backoff applies."""
    client, _ = scripted(httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(200))
    sleep = Recorder()
    await run(client, sleep)
    assert 0.375 <= sleep.delays[0] <= 0.5


async def test_transport_errors_are_retried_then_reraised() -> None:
    """Connection errors are retried; once the policy is spent the httpx error propagates."""
    client, calls = scripted(*(httpx.ConnectError("refused") for _ in range(3)))
    sleep = Recorder()
    with pytest.raises(httpx.ConnectError):
        await run(client, sleep, max_retries=2)
    assert len(calls) == 3
    assert len(sleep.delays) == 2


async def test_timeouts_are_retried() -> None:
    """A read timeout is retried and a later success returned."""
    client, calls = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, text="ok"))
    response = await run(client, Recorder())
    assert response.text == "ok"
    assert len(calls) == 2


async def test_max_retries_zero_never_retries() -> None:
    """max_retries=0 makes exactly one attempt."""
    client, calls = scripted(httpx.Response(503))
    sleep = Recorder()
    assert (await run(client, sleep, max_retries=0)).status_code == 503
    assert (len(calls), sleep.delays) == (1, [])


async def test_retried_streaming_responses_are_closed() -> None:
    """A streamed response that is retried is closed before the next attempt."""
    client, _ = scripted(httpx.Response(500), httpx.Response(200))
    opened: list[httpx.Response] = []

    async def send() -> httpx.Response:
        response = await client.send(client.build_request("GET", "http://test/x"), stream=True)
        opened.append(response)
        return response

    final = await send_with_retries(send, sleep=Recorder())
    assert final.status_code == 200
    assert opened[0].is_closed
