"""Shared pieces of the eval tests."""

from __future__ import annotations


class Clock:
    """A clock the test moves by hand (the emulator's ``clock=``)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
