"""Anthropic's retry rule set (``kyro_anthropic._retry``): calls and errored result lines."""

from __future__ import annotations

import httpx
import pytest

from kyro_anthropic._retry import RETRYABLE_ERROR_TYPES, TRANSIENT_STATUSES, should_retry


def test_the_rule_set_is_pinned() -> None:
    """The transient statuses below 500 and the retryable result error types are exactly these."""
    assert {408, 409, 429} == TRANSIENT_STATUSES
    assert {
        "api_error",
        "overloaded_error",
        "rate_limit_error",
        "timeout_error",
    } == RETRYABLE_ERROR_TYPES


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(408, True), (409, True), (429, True), (500, True), (529, True)],
        *[(400, False), (401, False), (403, False), (404, False), (413, False)],
    ],
)
def test_calls_are_retried_on_transient_statuses_only(status: int, expected: bool) -> None:
    """408, 409, 429 and 5xx (529 overloaded included) are worth another call."""
    assert should_retry(httpx.Response(status)) is expected


def test_no_error_code_stops_a_transient_status() -> None:
    """Unlike OpenAI's rule, no body code vetoes a retry: a 429 is always load."""
    body = {"type": "error", "error": {"type": "insufficient_quota", "message": "x"}}
    assert should_retry(httpx.Response(429, json=body)) is True


def test_x_should_retry_overrides_the_status() -> None:
    """The server's x-should-retry header wins over the status, both ways."""
    assert should_retry(httpx.Response(400, headers={"x-should-retry": "true"})) is True
    assert should_retry(httpx.Response(529, headers={"x-should-retry": "false"})) is False
