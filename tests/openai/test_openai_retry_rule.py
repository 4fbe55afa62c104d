"""The OpenAI-compatible retry rule (``kyro_openai.wire``): calls and result lines, one rule set."""

from __future__ import annotations

import httpx
import pytest

from kyro import ProviderError
from kyro.provider import RetryPolicy
from kyro_openai import OpenAIBatchProvider
from kyro_openai.wire import (
    NEVER_RETRY_CODES,
    TRANSIENT_STATUSES,
    line_retryable,
    should_retry,
)
from tests.openai.openai_fakes import KEY, error_json, no_sleep


def test_the_rule_set_is_pinned() -> None:
    """The transient statuses below 500 and the never-retry codes are exactly these."""
    assert {408, 409, 429} == TRANSIENT_STATUSES
    assert {"insufficient_quota"} == NEVER_RETRY_CODES


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(408, True), (409, True), (429, True), (500, True), (503, True), (529, True)],
        *[(400, False), (401, False), (403, False), (404, False), (422, False)],
    ],
)
def test_calls_are_retried_on_transient_statuses_only(status: int, expected: bool) -> None:
    """408, 409, 429 and 5xx are worth another call; other 4xx are not."""
    assert should_retry(httpx.Response(status)) is expected


def test_insufficient_quota_is_never_retried() -> None:
    """A 429 coded insufficient_quota is billing, not load; a plain 429 is load."""
    assert should_retry(httpx.Response(429, json=error_json("insufficient_quota"))) is False
    assert should_retry(httpx.Response(429, json=error_json("rate_limit_exceeded"))) is True
    assert should_retry(httpx.Response(429, content=b"not json")) is True


def test_x_should_retry_overrides_the_status() -> None:
    """The server's x-should-retry header wins over the status, both ways."""
    assert should_retry(httpx.Response(400, headers={"x-should-retry": "true"})) is True
    assert should_retry(httpx.Response(503, headers={"x-should-retry": "false"})) is False


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("batch_expired", None, True),
        ("timeout", None, True),
        ("http_409", 409, True),
        ("http_429", 429, True),
        ("server_error", 500, True),
        ("http_502", 502, True),
        ("insufficient_quota", 429, False),
        ("invalid_request_error", 400, False),
        ("http_404", 404, False),
        ("content_filter", None, False),
    ],
)
def test_result_lines_follow_the_same_rule(code: str, status: int | None, expected: bool) -> None:
    """A failed line is resendable by its code, or by the very statuses a call is retried on."""
    assert line_retryable(code, status) is expected


async def test_the_provider_retries_a_conflict_and_stops_at_quota() -> None:
    """OpenAIBatchProvider sends its calls with this rule: a 409 is retried, a quota 429 is not."""
    calls: list[str] = []
    replies = iter(
        [
            httpx.Response(409, json=error_json(None, "locked")),
            httpx.Response(429, json=error_json("insufficient_quota", "pay up")),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return next(replies)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = OpenAIBatchProvider(
        api_key=KEY,
        base_url="https://api.test/v1",
        client=client,
        sleep=no_sleep,
        retry=RetryPolicy(max_retries=5),
    )
    with pytest.raises(ProviderError) as info:
        await provider.poll("batch_1")
    assert calls == ["/v1/batches/batch_1", "/v1/batches/batch_1"]
    assert info.value.status_code == 429
    assert info.value.code == "insufficient_quota"
    await client.aclose()
