"""Argument types of the CLI's numeric options: out-of-range values are refused by argparse
(exit 2, naming the option) before anything runs or costs money."""

from __future__ import annotations

import argparse
import math

from kyro._exceptions import BatchValidationError
from kyro._limits import MAX_RUNS, check_runs

__all__ = ["interval_seconds", "run_count", "vote_count"]


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
