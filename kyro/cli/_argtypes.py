"""Argument types of the CLI's numeric options: out-of-range values are refused by argparse
(exit 2, naming the option) before anything runs or costs money."""

from __future__ import annotations

import argparse
import math

from kyro._exceptions import BatchValidationError
from kyro._limits import MAX_RUNS, check_runs
from kyro._redact import redact

__all__ = ["check_base_url", "interval_seconds", "run_count", "vote_count"]


def interval_seconds(text: str) -> float:
    """An ``--interval``: a number of seconds from 0 to 86400 (a day); never negative or NaN."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 <= value <= 86_400):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from 0 to 86400 (a day)"
        )
    return value


def run_count(text: str) -> int:
    """A ``--runs``: a whole number from 1 to :data:`kyro._limits.MAX_RUNS`."""
    try:
        return check_runs(int(text))
    except (ValueError, BatchValidationError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {MAX_RUNS}"
        ) from None


def vote_count(text: str) -> int:
    """A ``--min-valid-votes``: a whole number from 1 to :data:`kyro._limits.MAX_RUNS`."""
    return run_count(text)


def check_base_url(url: str, option: str) -> str:
    """``url`` if it is an http(s) URL with a host and a valid port; else a clear error.

    A malformed URL is bad input (exit 2), not a network failure to retry.
    """
    # httpx is imported here, not at the top: every command's options use this module, and
    # loading httpx costs more than `plan` or `validate` spend on a small job.
    import httpx

    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError, TypeError):
        parsed, port = None, None
    valid = (
        parsed is not None
        and parsed.scheme in ("http", "https")
        and bool(parsed.host)
        and (port is None or 0 < port < 65_536)
    )
    if not valid:
        raise BatchValidationError(
            f"{option} {redact(url)!r} is not an http(s) URL with a host and a port from 1 to "
            "65535; write it like http://127.0.0.1:8000/v1"
        )
    return url
