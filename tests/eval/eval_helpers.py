"""Shared pieces of the eval tests."""

from __future__ import annotations


class Clock:
    """A clock the test moves by hand (the emulator's ``clock=``); ``step`` moves it per read."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now
