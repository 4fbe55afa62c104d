"""Group commit: the item transitions of every running execution, written together.

Items finish one by one, many at once across executions. A transaction each would cost an
fsync each; instead, transitions queue here and one task writes everything queued in one
transaction, while the next batch gathers. A caller told an outcome is recorded
(:meth:`Journal.finish` returned) knows it is on disk; nothing is acknowledged earlier.
Starts (pending → processing) are queued without waiting — they are progress shown to
clients, not something a restart relies on — and are always written before, or in the same
transaction as, the item's outcome.

Example::

    journal = Journal(store)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(journal.run)
        journal.start("e1", [0, 1])
        await journal.finish("e1", [outcome])   # committed when this returns
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio
import anyio.to_thread

from kyro.serve._records import ItemChange, ItemOutcome, Store

__all__ = ["Journal"]

_log = logging.getLogger("kyro.serve")


class _Batch:
    """Changes gathered for one transaction, and the event set once it is committed."""

    def __init__(self) -> None:
        self.changes: list[ItemChange] = []
        self.committed = anyio.Event()
        self.error: Exception | None = None


class Journal:
    """Queues item transitions and commits them in groups (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._batch = _Batch()
        self._queued = anyio.Event()
        self._flushing = anyio.Lock()  # one commit at a time, in queue order

    def start(self, execution_id: str, indices: Sequence[int]) -> None:
        """Queue these items' move to processing; written with the next commit."""
        self._add(ItemChange(execution_id=execution_id, started=tuple(indices)))

    async def finish(self, execution_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Record the outcomes; return once they are committed (raise if the commit failed)."""
        batch = self._add(ItemChange(execution_id=execution_id, finished=tuple(outcomes)))
        await batch.committed.wait()
        if batch.error is not None:
            raise batch.error

    def _add(self, change: ItemChange) -> _Batch:
        self._batch.changes.append(change)
        self._queued.set()
        return self._batch

    async def run(self) -> None:
        """Commit whatever is queued, batch after batch, until cancelled."""
        while True:
            await self._queued.wait()
            await self.flush()

    async def flush(self) -> None:
        """Commit what is queued now (shielded: a transaction started is seen through)."""
        with anyio.CancelScope(shield=True):
            async with self._flushing:
                batch, self._batch = self._batch, _Batch()
                self._queued = anyio.Event()
                if batch.changes:
                    await self._commit(batch)
                batch.committed.set()

    async def _commit(self, batch: _Batch) -> None:
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(self.store.record_items, batch.changes)
        except Exception as exc:  # every waiter of this batch sees it
            batch.error = exc
            _log.error("cannot record item changes: %s", type(exc).__name__)
        _log.debug(
            "committed %d item changes in %.1f ms",
            len(batch.changes),
            (time.perf_counter() - started) * 1000,
        )
