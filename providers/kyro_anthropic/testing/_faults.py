"""Fault injection for the Message Batches emulator: what can go wrong, on request.

Faults are plain structs tagged by ``kind``, so the same JSON works through the control route
(``POST /_emulator/faults``) and :meth:`Faults.add`. HTTP faults fire on the next ``times``
matching calls (``None``: every one), optionally with ``probability`` drawn from the seeded
generator. Line and expiry faults are captured by the next batch created and apply to it only.

Scopes: ``api`` (every call), ``create``, ``list``, ``retrieve``, ``cancel``, ``delete``,
``results``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from kyro.testing.faults import FaultBook, picked

__all__ = [
    "CreationPlan",
    "DropConnectionFault",
    "ExpireFault",
    "Fault",
    "Faults",
    "HttpErrorFault",
    "LatencyFault",
    "LineFault",
    "Scope",
]

Scope = Literal["api", "create", "list", "retrieve", "cancel", "delete", "results"]


class _Base(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    pass


class HttpErrorFault(_Base, frozen=True, kw_only=True, tag="http_error"):
    """Answer matching calls with an error envelope: 429, 529 ``overloaded_error``, 500…

    ``retry_after`` sets the ``retry-after`` header; ``should_retry`` sets ``x-should-retry``.

    Example::

        HttpErrorFault(status=529, times=2)
    """

    status: int = 500
    type: str | None = None
    message: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    times: int | None = 1
    probability: float | None = None
    scope: Scope = "api"


class DropConnectionFault(_Base, frozen=True, kw_only=True, tag="drop_connection"):
    """Close the connection with no response; ``when="after"`` does so once the call was
    carried out (a create that made its batch but never said so)."""

    when: Literal["before", "after"] = "before"
    after_bytes: int | None = None
    times: int | None = 1
    probability: float | None = None
    scope: Scope = "api"


class LatencyFault(_Base, frozen=True, kw_only=True, tag="latency"):
    """Wait ``seconds`` before answering matching calls."""

    seconds: float
    times: int | None = None
    probability: float | None = None
    scope: Scope = "api"


class LineFault(_Base, frozen=True, kw_only=True, tag="line"):
    """Make some requests of the next batch misbehave, chosen by custom_id or by fraction.

    ``mode``: ``errored`` (an ``errored`` result whose error type is ``error_type``),
    ``malformed`` (a ``succeeded`` reply that is prose, not a verdict) or ``missing`` (no
    result line at all).

    Example::

        LineFault(mode="errored", error_type="overloaded_error", fraction=0.2)
    """

    mode: Literal["errored", "malformed", "missing"] = "errored"
    error_type: str = "api_error"
    message: str | None = None
    custom_ids: frozenset[str] = frozenset()
    fraction: float = 0.0

    def matches(self, custom_id: str, seed: int) -> bool:
        """Whether this fault applies to the request with ``custom_id``."""
        return picked(
            custom_id, custom_ids=self.custom_ids, fraction=self.fraction, seed=seed, salt=self.mode
        )


class ExpireFault(_Base, frozen=True, kw_only=True, tag="expire"):
    """The next ``times`` batches expire once ``after_lines`` requests have finished."""

    after_lines: int = 0
    times: int = 1


Fault = HttpErrorFault | DropConnectionFault | LatencyFault | LineFault | ExpireFault
"""Any fault; decode JSON with ``msgspec.json.decode(data, type=Fault)``."""

HttpAction = HttpErrorFault | DropConnectionFault
_ACTIONS = (HttpErrorFault, DropConnectionFault)


class CreationPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a new batch captured: its line faults, and when it expires (if it must)."""

    lines: tuple[LineFault, ...] = ()
    expire_after_lines: int | None = None


class Faults(FaultBook[Fault]):
    """The armed faults of one emulator (thread-safe).

    Example::

        emulator.faults.overloaded(times=2)
        emulator.faults.add(LineFault(mode="errored", custom_ids=frozenset({"t0-j0-r0"})))
    """

    standing_kinds = (LineFault,)
    latency_kinds = (LatencyFault,)
    action_kinds = _ACTIONS

    def rate_limit(self, times: int | None = 1, *, retry_after: float | None = None) -> None:
        """429 ``rate_limit_error`` on the next ``times`` calls."""
        self.add(HttpErrorFault(status=429, retry_after=retry_after, times=times))

    def overloaded(self, times: int | None = 1, *, scope: Scope = "api") -> None:
        """529 ``overloaded_error`` on the next ``times`` calls."""
        self.add(HttpErrorFault(status=529, times=times, scope=scope))

    def drop_connection(
        self, times: int | None = 1, *, scope: Scope = "api", when: str = "before"
    ) -> None:
        """Drop the connection of the next ``times`` calls (after carrying them out: ``after``)."""
        self.add(
            DropConnectionFault(
                times=times, scope=scope, when="after" if when == "after" else "before"
            )
        )

    def line_errors(
        self,
        *,
        error_type: str = "api_error",
        custom_ids: Iterable[str] = (),
        fraction: float = 0.0,
    ) -> None:
        """Requests of the next batch come back ``errored`` with ``error_type``."""
        self.add(
            LineFault(
                mode="errored",
                error_type=error_type,
                custom_ids=frozenset(custom_ids),
                fraction=fraction,
            )
        )

    def expire_next(self, *, after_lines: int = 0, times: int = 1) -> None:
        """The next ``times`` batches expire once ``after_lines`` requests have finished."""
        self.add(ExpireFault(after_lines=after_lines, times=times))

    def take_creation(self) -> CreationPlan:
        """The line faults and expiry a batch created now captures (expiry faults are used up)."""
        expire = self.use_one(ExpireFault)
        return CreationPlan(
            lines=self.standing(LineFault),
            expire_after_lines=expire.after_lines if expire is not None else None,
        )
