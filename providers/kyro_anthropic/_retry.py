"""Anthropic's one rule set for retrying: which failures clear with time, and how long to wait.

It follows the anthropic SDK. A call is sent again after a timeout or transport error, or a
response with status 408, 409, 429 or ≥ 500 (529 ``overloaded_error`` included), unless the
server says ``x-should-retry: true|false`` (:func:`should_retry`, the ``transient`` rule passed
to :func:`kyro.provider.send_with_retries`). By default 2 retries; the wait is the server's
``retry-after-ms`` / ``retry-after`` only when it asks for more than 0 and at most 60 seconds;
any other ask is ignored (not obeyed, not fatal) and the wait is exponential backoff from 0.5 s
doubling to at most 8 s, less up to 25 % of jitter (:data:`ANTHROPIC_RETRY`, :func:`retry_wait`).
An errored result line is worth sending again when its error type is one that clears with
time (:data:`RETRYABLE_ERROR_TYPES`).
"""

from __future__ import annotations

import random

import httpx

from kyro.provider import RetryPolicy, retry_after_seconds

__all__ = [
    "ANTHROPIC_RETRY",
    "MAX_RETRY_AFTER",
    "RETRYABLE_ERROR_TYPES",
    "TRANSIENT_STATUSES",
    "retry_wait",
    "should_retry",
]

MAX_RETRY_AFTER = 60.0
"""The longest ``retry-after`` obeyed, in seconds (the SDK's rule)."""

ANTHROPIC_RETRY = RetryPolicy(max_retry_after=MAX_RETRY_AFTER, long_retry_after="backoff")
"""The vendor SDK's retry rule: 2 retries, ``retry-after`` obeyed up to 60 s, else backoff."""

TRANSIENT_STATUSES = frozenset({408, 409, 429})
"""Statuses below 500 worth another try; every status of 500 and above (529) is too."""

RETRYABLE_ERROR_TYPES = frozenset(
    {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}
)
"""Errored results worth sending again unchanged."""


def should_retry(response: httpx.Response) -> bool:
    """Whether a failed call is worth sending again: ``x-should-retry`` decides when the
    server sends it, else a transient status.

    Example::

        should_retry(httpx.Response(529)), should_retry(httpx.Response(400))   # True, False
    """
    override = response.headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    status = response.status_code
    return status >= 500 or status in TRANSIENT_STATUSES


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
