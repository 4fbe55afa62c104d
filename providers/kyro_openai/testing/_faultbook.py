"""The faults armed on one emulator: a thread-safe book that routes and batches draw from."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from kyro.testing.faults import FaultBook
from kyro_openai.testing._faults import (
    DropConnectionFault,
    DropDownloadFault,
    ExpireFault,
    Fault,
    HttpErrorFault,
    LatencyFault,
    LineFault,
    Scope,
    TokenLimitFault,
)

__all__ = ["CreationPlan", "Faults"]

_ACTIONS = (HttpErrorFault, DropConnectionFault, DropDownloadFault)


class CreationPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The faults one batch captured when it was created."""

    token_limit: bool = False
    expire_after_lines: int | None = None
    line_faults: tuple[LineFault, ...] = ()


class Faults(FaultBook[Fault]):
    """The faults armed on one emulator; thread-safe, so tests may arm them while it serves.

    Example::

        emulator.faults.rate_limit(times=2, retry_after=1)
        emulator.faults.line_errors(custom_ids={"t0-j0-r0"})
    """

    standing_kinds = (LineFault,)
    latency_kinds = (LatencyFault,)
    action_kinds = _ACTIONS

    def rate_limit(
        self, times: int | None = 1, *, retry_after: float | None = 1.0, scope: Scope = "api"
    ) -> None:
        """The next ``times`` calls get 429 ``rate_limit_exceeded`` with Retry-After."""
        self.add(HttpErrorFault(status=429, retry_after=retry_after, times=times, scope=scope))

    def insufficient_quota(self, times: int | None = 1, *, scope: Scope = "api") -> None:
        """The next ``times`` calls get 429 ``insufficient_quota`` (not worth retrying)."""
        self.add(HttpErrorFault(status=429, code="insufficient_quota", times=times, scope=scope))

    def server_error(
        self, times: int | None = 1, *, status: int = 500, scope: Scope = "api"
    ) -> None:
        """The next ``times`` calls get a 5xx error envelope."""
        self.add(HttpErrorFault(status=status, times=times, scope=scope))

    def drop_connection(self, times: int | None = 1, *, scope: Scope = "api") -> None:
        """The next ``times`` calls are answered by closing the connection."""
        self.add(DropConnectionFault(times=times, scope=scope))

    def drop_download(self, times: int | None = 1, *, after_bytes: int = 1024) -> None:
        """The next ``times`` file downloads stop after ``after_bytes`` bytes."""
        self.add(DropDownloadFault(times=times, after_bytes=after_bytes))

    def latency(self, seconds: float, *, times: int | None = None, scope: Scope = "api") -> None:
        """Delay matching calls by ``seconds`` before answering them."""
        self.add(LatencyFault(seconds=seconds, times=times, scope=scope))

    def line_errors(
        self, *, custom_ids: Iterable[str] = (), fraction: float = 0.0, code: str = "server_error"
    ) -> None:
        """Requests of later batches fail with an error-file line carrying ``code``."""
        self.add(
            LineFault(mode="error", custom_ids=frozenset(custom_ids), fraction=fraction, code=code)
        )

    def line_http_errors(
        self, *, custom_ids: Iterable[str] = (), fraction: float = 0.0, status_code: int = 400
    ) -> None:
        """Requests of later batches come back with an HTTP error response (``error`` null)."""
        self.add(
            LineFault(
                mode="http_error",
                custom_ids=frozenset(custom_ids),
                fraction=fraction,
                status_code=status_code,
            )
        )

    def malformed_replies(self, *, custom_ids: Iterable[str] = (), fraction: float = 0.0) -> None:
        """Requests of later batches succeed with content that is not valid judge JSON."""
        self.add(LineFault(mode="malformed", custom_ids=frozenset(custom_ids), fraction=fraction))

    def missing_lines(self, *, custom_ids: Iterable[str] = (), fraction: float = 0.0) -> None:
        """Requests of later batches appear in neither result file."""
        self.add(LineFault(mode="missing", custom_ids=frozenset(custom_ids), fraction=fraction))

    def token_limit_exceeded(self, times: int = 1) -> None:
        """The next ``times`` batches fail with ``token_limit_exceeded``."""
        self.add(TokenLimitFault(times=times))

    def expire_next(self, *, after_lines: int = 0, times: int = 1) -> None:
        """The next ``times`` batches expire after ``after_lines`` finished requests."""
        self.add(ExpireFault(after_lines=after_lines, times=times))

    def take_creation(self) -> CreationPlan:
        """Consume the creation faults for one new batch and capture the line faults."""
        expire = self.use_one(ExpireFault)
        return CreationPlan(
            token_limit=self.use_one(TokenLimitFault) is not None,
            expire_after_lines=expire.after_lines if expire is not None else None,
            line_faults=self.standing(LineFault),
        )
