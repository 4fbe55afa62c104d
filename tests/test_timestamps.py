"""``kyro.provider.parse_timestamp``: a batch time as a provider API gives it, in unix seconds."""

from __future__ import annotations

import pytest

from kyro.provider import parse_timestamp


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1711471533, 1711471533.0),
        (1711471533.5, 1711471533.5),
        ("1711471533", 1711471533.0),
        ("2024-03-26T16:45:33Z", 1711471533.0),
        ("2024-03-26T16:45:33z", 1711471533.0),
        ("2024-03-26T16:45:33", 1711471533.0),
        ("2024-03-26T18:45:33+02:00", 1711471533.0),
        (" 2024-03-26T16:45:33.25Z ", 1711471533.25),
        ("2024-09-24T18:37:24.100435Z", 1727203044.100435),
        ("2024-09-24T18:37:24.1004351234Z", 1727203044.100435),
    ],
)
def test_numbers_and_rfc3339_times_become_unix_seconds(value: float | str, seconds: float) -> None:
    """Unix numbers, their text, and RFC 3339 times (Z, offset, naive as UTC, long fractions)."""
    assert parse_timestamp(value) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "   ", "yesterday", "2024-13-40T00:00:00Z"])
def test_what_is_not_a_time_is_none(value: str | None) -> None:
    """Nothing, blank text, words and impossible dates are None, never an exception."""
    assert parse_timestamp(value) is None
