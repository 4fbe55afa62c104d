"""The engine of an emulator's fault injection: a thread-safe book of armed faults.

Every kyro emulator arms faults the same way; only the kinds differ (each emulator's ``Faults``
subclasses :class:`FaultBook` and adds helpers named after its API's failures). A fault is a
struct with, as it applies, ``times`` (uses left; None: every time), ``probability`` (drawn
from the book's seeded generator) and ``scope`` (which calls it hits):

* HTTP faults (:meth:`FaultBook.draw_http`) fire on matching calls: latencies add up, the
  first error or drop that fires is the call's answer.
* Creation faults (:meth:`FaultBook.use_one`) are used up one per batch created.
* Standing faults (:meth:`FaultBook.standing`, line faults) stay armed until cleared and are
  captured by every batch created; :func:`picked` chooses the requests they hit.

Example::

    class Faults(FaultBook[Fault]):
        standing_kinds = (LineFault,)
        latency_kinds = (LatencyFault,)
        action_kinds = (HttpErrorFault, DropConnectionFault)

    faults = Faults(seed=7)
    faults.add(HttpErrorFault(status=429, times=2))
    delay, action = faults.take_http(frozenset({"api"}))
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import ClassVar, Generic, TypeVar

__all__ = ["FaultBook", "picked"]

F = TypeVar("F")
K = TypeVar("K")


def picked(
    custom_id: str, *, custom_ids: frozenset[str], fraction: float, seed: int, salt: str
) -> bool:
    """Whether a line fault hits the request ``custom_id``: named outright, or drawn.

    The draw hashes ``seed``, ``salt`` (the fault's mode) and the custom_id, so the same
    requests are hit on every run and ``fraction`` of them on average.

    Example::

        picked("t0-j0-r0", custom_ids=frozenset(), fraction=0.5, seed=0, salt="error")
    """
    if custom_id in custom_ids:
        return True
    if fraction <= 0.0:
        return False
    digest = hashlib.sha256(f"{seed}:{salt}:{custom_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


class _Armed(Generic[F]):
    __slots__ = ("fault", "left")

    def __init__(self, fault: F, left: int | None) -> None:
        self.fault = fault
        self.left = left


class FaultBook(Generic[F]):
    """The faults armed on one emulator; thread-safe, so tests may arm them while it serves.

    ``standing_kinds``: the fault types that stay armed until :meth:`clear` (line faults);
    ``latency_kinds`` and ``action_kinds``: the HTTP faults that delay a call and those that
    answer it (:meth:`take_http`). ``fired`` counts every use of a fault.
    """

    standing_kinds: ClassVar[tuple[type, ...]] = ()
    latency_kinds: ClassVar[tuple[type, ...]] = ()
    action_kinds: ClassVar[tuple[type, ...]] = ()

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._armed: list[_Armed[F]] = []
        self.fired = 0

    def add(self, *faults: F) -> None:
        """Arm ``faults``; each fires per its own ``times`` and ``probability``."""
        with self._lock:
            for fault in faults:
                standing = isinstance(fault, self.standing_kinds)
                self._armed.append(_Armed(fault, None if standing else _times(fault)))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def active(self) -> list[F]:
        """The faults still armed, in the order they were added."""
        with self._lock:
            return [entry.fault for entry in self._armed]

    def take_http(self, scopes: frozenset[str]) -> tuple[float, F | None]:
        """Use the faults for one call in ``scopes``: the total latency of the latency faults
        that fire, and the first error or drop fault that fires (or None)."""
        latencies, actions = self.latency_kinds, self.action_kinds
        delay = 0.0
        action: F | None = None
        with self._lock:
            for entry in self._armed:
                fault = entry.fault
                if getattr(fault, "scope", None) not in scopes:
                    continue
                if isinstance(fault, latencies):
                    if self._fire(entry):
                        delay += float(getattr(fault, "seconds", 0.0))
                elif isinstance(fault, actions) and action is None and self._fire(entry):
                    action = fault
            self._prune()
        return delay, action

    def use_one(self, kind: type[K]) -> K | None:
        """Use up one use of the first armed fault of ``kind`` (a creation fault), if any."""
        with self._lock:
            for entry in self._armed:
                if isinstance(entry.fault, kind) and self._fire(entry, draw=False):
                    self._prune()
                    return entry.fault
        return None

    def standing(self, kind: type[K]) -> tuple[K, ...]:
        """The armed faults of ``kind`` (standing ones: nothing is used up)."""
        with self._lock:
            return tuple(entry.fault for entry in self._armed if isinstance(entry.fault, kind))

    def _fire(self, entry: _Armed[F], *, draw: bool = True) -> bool:
        probability = getattr(entry.fault, "probability", None) if draw else None
        if probability is not None and self._random.random() >= probability:
            return False
        if entry.left is not None:
            entry.left -= 1
        self.fired += 1
        return True

    def _prune(self) -> None:
        self._armed[:] = [entry for entry in self._armed if entry.left != 0]


def _times(fault: object) -> int | None:
    times = getattr(fault, "times", None)
    return times if isinstance(times, int) else None
