"""The faults armed on one emulator: a thread-safe book that routes and batches draw from."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable

import msgspec

from kyro_openai.testing._faults import (
    DropConnectionFault,
    DropDownloadFault,
    ExpireFault,
    Fault,
    HttpAction,
    HttpErrorFault,
    LatencyFault,
    LineFault,
    Scope,
    TokenLimitFault,
)

__all__ = ["CreationPlan", "Faults"]

_HTTP_KINDS = (LatencyFault, HttpErrorFault, DropConnectionFault, DropDownloadFault)


class CreationPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The faults one batch captured when it was created."""

    token_limit: bool = False
    expire_after_lines: int | None = None
    line_faults: tuple[LineFault, ...] = ()


class _Armed(msgspec.Struct):
    fault: Fault
    remaining: int | None


class Faults:
    """The faults armed on one emulator; thread-safe, so tests may arm them while it serves.

    Example::

        emulator.faults.rate_limit(times=2, retry_after=1)
        emulator.faults.line_errors(custom_ids={"t0-j0-r0"})
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._armed: list[_Armed] = []
        self._lines: list[LineFault] = []
        self.fired = 0

    def add(self, *faults: Fault) -> None:
        """Arm faults (any kind)."""
        with self._lock:
            for fault in faults:
                if isinstance(fault, LineFault):
                    self._lines.append(fault)
                else:
                    self._armed.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()
            self._lines.clear()

    def active(self) -> list[Fault]:
        """The faults still armed, in the order they were added."""
        with self._lock:
            return [entry.fault for entry in self._armed] + list(self._lines)

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

    def take_http(self, scopes: frozenset[str]) -> tuple[float, HttpAction | None]:
        """Consume the faults for one call: total latency, and the action to take if any."""
        delay = 0.0
        action: HttpAction | None = None
        with self._lock:
            for entry in self._armed:
                fault = entry.fault
                if not isinstance(fault, _HTTP_KINDS) or fault.scope not in scopes:
                    continue
                if isinstance(fault, LatencyFault):
                    if self._fire(entry, fault.probability):
                        delay += fault.seconds
                elif action is None and self._fire(entry, fault.probability):
                    action = fault
            self._prune()
        return delay, action

    def take_creation(self) -> CreationPlan:
        """Consume the creation faults for one new batch and capture the line faults."""
        token_limit = False
        expire_after: int | None = None
        with self._lock:
            for entry in self._armed:
                fault = entry.fault
                if isinstance(fault, TokenLimitFault) and not token_limit:
                    token_limit = self._fire(entry, None)
                elif isinstance(fault, ExpireFault) and expire_after is None:
                    self._fire(entry, None)
                    expire_after = fault.after_lines
            self._prune()
            return CreationPlan(
                token_limit=token_limit,
                expire_after_lines=expire_after,
                line_faults=tuple(self._lines),
            )

    def _fire(self, entry: _Armed, probability: float | None) -> bool:
        if probability is not None and self._rng.random() >= probability:
            return False
        if entry.remaining is not None:
            entry.remaining -= 1
        self.fired += 1
        return True

    def _prune(self) -> None:
        self._armed[:] = [entry for entry in self._armed if entry.remaining != 0]
