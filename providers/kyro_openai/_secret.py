"""A secret that never shows itself, and the checks a provider makes of its settings before
any call: kept apart from the HTTP plumbing so building a provider (all ``kyro plan`` does)
never imports httpx."""

from __future__ import annotations

from kyro.provider import KyroError

__all__ = ["Secret", "check_expiry"]

_MIN_EXPIRY = 3600
_MAX_EXPIRY = 2_592_000


class Secret:
    """A string that never shows itself in a repr, str or f-string.

    Example::

        key = Secret("sk-...")
        repr(key)        # '<secret>'
        key.reveal()     # 'sk-...'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def check_expiry(name: str, seconds: int | None) -> int | None:
    """``seconds`` if None or from 1 hour to 30 days (what the Files and Batches APIs take)."""
    if seconds is not None and not _MIN_EXPIRY <= seconds <= _MAX_EXPIRY:
        raise KyroError(f"{name} must be between 3600 (1 h) and 2592000 (30 days) seconds")
    return seconds
