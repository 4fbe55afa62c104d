"""The service's records and the store interface every database behind it implements.

An execution is created whole (its items ``pending``) and then only moves forward::

    execution  pending ─▶ processing ─▶ completed | failed
    item       pending ─▶ processing ─▶ completed | failed

Each move is one transaction, committed before anyone is told about it (the 202 of a POST,
a worker starting the next step). The API layer and the workers speak only to :class:`Store`,
so a server-grade database needs one new class, not a new API layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import msgspec

__all__ = [
    "EvaluatorResult",
    "Execution",
    "ExecutionFilter",
    "Item",
    "ItemChange",
    "ItemError",
    "ItemOutcome",
    "RawItem",
    "Store",
    "Version",
]

ExecutionStatus = Literal["pending", "processing", "completed", "failed"]
ItemStatus = Literal["pending", "processing", "completed", "failed"]


class Version(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable content of a judge: the config file and the prompt files it reads.

    ``version_id`` is derived from the content (a UUID-shaped prefix of its sha256), so the
    same content always gets the same id, on any server. ``files`` maps each file's name,
    relative to the config's folder, to its bytes; ``config_name`` is the config's own entry.
    """

    version_id: str
    judge_id: str
    sha256: str
    config_name: str
    evaluators: tuple[str, ...]
    created_at: float
    files: dict[str, bytes] = {}


class EvaluatorResult(msgspec.Struct, frozen=True, kw_only=True):
    """One evaluator's (one judge of the config's) result on one item."""

    evaluator_name: str
    score: float | None
    justification: str | None
    status: str


class ItemError(msgspec.Struct, frozen=True, kw_only=True):
    """Why an item has no complete result: a short code and a message saying what happened."""

    code: str
    message: str


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One input of an execution, its status and, once done, its results."""

    index: int
    status: ItemStatus
    input: dict[str, Any]
    evaluator_results: tuple[EvaluatorResult, ...] = ()
    error: ItemError | None = None


class RawItem(msgspec.Struct, frozen=True, kw_only=True):
    """An item as stored, its JSON left encoded: what a status poll sends on unchanged.

    ``input`` holds all five input fields; ``results`` the ``EvaluatorResult`` list (None
    before the item finishes); ``error`` an ``ItemError`` or None.
    """

    index: int
    status: ItemStatus
    input: msgspec.Raw
    results: msgspec.Raw | None = None
    error: msgspec.Raw | None = None


class ItemOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an executor reports for one finished item."""

    index: int
    status: Literal["completed", "failed"]
    evaluator_results: tuple[EvaluatorResult, ...] = ()
    error: ItemError | None = None


class ItemChange(msgspec.Struct, frozen=True, kw_only=True):
    """Item transitions of one execution: ``started`` move to processing, then ``finished``
    are recorded (in that order, so an item may start and finish in one change)."""

    execution_id: str
    started: tuple[int, ...] = ()
    finished: tuple[ItemOutcome, ...] = ()


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """A batch execution; ``items`` is empty in listings (they carry the counts only)."""

    execution_id: str
    judge_id: str
    version_id: str
    status: ExecutionStatus
    tags: tuple[str, ...]
    total_count: int
    completed_count: int = 0
    failed_count: int = 0
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: ItemError | None = None
    items: tuple[Item, ...] = ()


class ExecutionFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which executions a listing returns; ``after`` is the last one of the previous page."""

    tag: str | None = None
    judge_id: str | None = None
    status: str | None = None
    limit: int = 20
    after: tuple[float, str] | None = None


class Store(Protocol):
    """Where the service keeps judge versions, executions and items (see the module doc).

    Every method commits before it returns. Methods are synchronous; the service calls them
    from worker threads. A store whose reads are local and never wait for a writer may say
    so with a class attribute ``inline_reads = True``: the service then calls
    :meth:`execution_raw` for a status poll on its event loop, since the trip to a worker
    thread and back costs the loop more than such a read (a store over the network leaves
    it out).
    """

    def add_version(self, version: Version) -> bool:
        """Record ``version`` unless its id is known; True when it was new."""
        ...

    def versions(self, judge_id: str) -> list[Version]:
        """Every version of the judge, newest first (``files`` left empty)."""
        ...

    def version(self, version_id: str) -> Version | None:
        """One version with its files, or None."""
        ...

    def create_execution(self, execution: Execution, inputs: Sequence[dict[str, Any]]) -> None:
        """Record a new execution with one pending item per input."""
        ...

    def execution(self, execution_id: str, *, items: bool = True) -> Execution | None:
        """One execution (with its items unless ``items=False``), or None."""
        ...

    def execution_raw(self, execution_id: str) -> tuple[Execution, list[RawItem]] | None:
        """One execution and its items as stored (one consistent read), or None."""
        ...

    def list_executions(self, where: ExecutionFilter) -> list[Execution]:
        """Executions matching ``where``, newest first, at most ``where.limit`` (no items)."""
        ...

    def unfinished(self) -> list[str]:
        """Ids of every execution still pending or processing, oldest first."""
        ...

    def start_execution(self, execution_id: str, at: float) -> None:
        """Move a pending execution to processing (no-op when it already is)."""
        ...

    def record_items(self, changes: Sequence[ItemChange]) -> None:
        """Apply every change, in order, in one transaction (the workers' group commit).

        A started item moves from pending to processing; a finished one from pending or
        processing to its outcome's status, counted once (an item already finished is left
        as it is: a resumed job reporting it again changes nothing).
        """
        ...

    def finish_execution(
        self, execution_id: str, status: ExecutionStatus, at: float, error: ItemError | None
    ) -> None:
        """End the execution as ``completed`` or ``failed``."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...
