"""Workers inside the server process: run accepted executions, resume them after a restart.

The pool runs in the application's lifespan. ``start`` is called after an execution is
committed; at startup every execution still pending or processing is started again, and the
executor skips the items already recorded. Item transitions go through a :class:`Journal`
(group commit): an outcome is on disk before the executor is told it is recorded, and the
execution ends only after all of them. At shutdown the pool waits up to ``grace`` seconds
for running executions, then cancels them and commits what was queued: unfinished items stay
``pending`` or ``processing`` in the store (and a batch job's state stays on disk), so the
next start resumes them (parked, never lost).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from kyro.serve._executor import Executor, Work
from kyro.serve._journal import Journal
from kyro.serve._judges import JudgeRegistry
from kyro.serve._records import Execution, ItemError, ItemOutcome, Store

__all__ = ["WorkerPool"]

_log = logging.getLogger("kyro.serve")


class _Report:
    """The executor's reporter for one execution, through the pool's journal."""

    def __init__(self, journal: Journal, execution_id: str) -> None:
        self.journal = journal
        self.execution_id = execution_id

    async def started(self, indices: Sequence[int]) -> None:
        self.journal.start(self.execution_id, indices)

    async def finished(self, outcomes: Sequence[Any]) -> None:
        await self.journal.finish(self.execution_id, outcomes)


class WorkerPool:
    """Runs executions through an executor, at most ``active`` at once.

    Example::

        pool = WorkerPool(store, registry, executor)
        async with pool.running(grace=10):   # resumes what a previous run left unfinished
            pool.start(execution_id)
    """

    def __init__(
        self,
        store: Store,
        registry: JudgeRegistry,
        executor: Executor,
        *,
        active: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.executor = executor
        self.clock = clock
        self.journal = Journal(store)
        self._limiter = anyio.CapacityLimiter(active)
        self._tasks: TaskGroup | None = None
        self._running = 0
        self._idle = anyio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def running(self, *, grace: float) -> AsyncIterator[WorkerPool]:
        """Serve inside the block; on leaving, wait up to ``grace`` seconds, then park."""
        async with anyio.create_task_group() as committing:
            committing.start_soon(self.journal.run)
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                try:
                    await self._resume()
                    yield self
                finally:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(grace):
                        await self._idle.wait()
                    if self._running:
                        _log.info(
                            "parking %d running executions; a restart resumes them",
                            self._running,
                        )
                    tasks.cancel_scope.cancel()
                    self._tasks = None
            await self.journal.flush()  # what the cancelled items had queued
            committing.cancel_scope.cancel()

    async def _resume(self) -> int:
        unfinished = await anyio.to_thread.run_sync(self.store.unfinished)
        for execution_id in unfinished:
            self.start(execution_id)
        if unfinished:
            _log.info("resuming %d unfinished executions", len(unfinished))
        return len(unfinished)

    def start(self, execution_id: str) -> None:
        """Run the (committed) execution in the background."""
        if self._tasks is None:  # shutting down: it is committed, the next start runs it
            return
        self._running += 1
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._tasks.start_soon(self._guarded, execution_id)

    async def _guarded(self, execution_id: str) -> None:
        try:
            async with self._limiter:
                await self._run(execution_id)
        except Exception as exc:  # never let one execution take the server down
            _log.error("execution %s: internal error (%s)", execution_id, type(exc).__name__)
            with contextlib.suppress(Exception):
                await self._fail_rest(execution_id, "internal_error", "the server failed")
                await self._end(execution_id, "failed", "internal_error", "the server failed")
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def _run(self, execution_id: str) -> None:
        # Two trips to a worker thread in the usual case (each costs the event loop more
        # than the store calls inside it): one to read and start, one to end.
        work = await anyio.to_thread.run_sync(self._prepare, execution_id)
        if work is None:
            return
        if isinstance(work, str):
            await self._end(execution_id, "failed", "version_missing", work)
            return
        await self.executor.execute(work, _Report(self.journal, execution_id))
        del work
        if await anyio.to_thread.run_sync(self._close, execution_id):
            return
        # Items the executor returned without an outcome for are never left hanging.
        final = await self._fail_rest(execution_id, "missing", "the executor gave no result")
        if final.completed_count == 0:
            await self._end(execution_id, "failed", "all_items_failed", "no item was evaluated")
        else:
            await self._end(execution_id, "completed", None, None)
        await anyio.to_thread.run_sync(self.executor.forget, execution_id)

    def _prepare(self, execution_id: str) -> Work | str | None:
        """The execution's work, started in the store (in a worker thread); None when there
        is nothing to run, a message when its judge version is gone."""
        execution = self.store.execution(execution_id)
        if execution is None or execution.status in ("completed", "failed"):
            return None
        version = self.store.version(execution.version_id)
        if version is None:
            return "the judge version is gone"
        config = self.registry.materialise(version)
        self.store.start_execution(execution_id, self.clock())
        return Work(
            execution_id=execution_id,
            config_path=config,
            evaluators=version.evaluators,
            inputs=tuple(item.input for item in execution.items),
            done=frozenset(i.index for i in execution.items if i.status in ("completed", "failed")),
        )

    def _close(self, execution_id: str) -> bool:
        """End the execution when every item has its outcome recorded (in a worker thread);
        False, changing nothing, when some are still pending or processing."""
        found = self.store.execution(execution_id, items=False)
        assert found is not None
        if found.completed_count + found.failed_count < found.total_count:
            return False
        if found.completed_count == 0:
            error = ItemError(code="all_items_failed", message="no item was evaluated")
            self.store.finish_execution(execution_id, "failed", self.clock(), error)
            status = "failed"
        else:
            self.store.finish_execution(execution_id, "completed", self.clock(), None)
            status = "completed"
        _log.info("execution %s %s", execution_id, status)
        self.executor.forget(execution_id)
        return True

    async def _fail_rest(self, execution_id: str, code: str, message: str) -> Execution:
        """Record every item still pending or processing as failed; the execution then."""
        found = await anyio.to_thread.run_sync(self.store.execution, execution_id)
        assert found is not None
        error = ItemError(code=code, message=message)
        rest = [
            ItemOutcome(index=item.index, status="failed", error=error)
            for item in found.items
            if item.status in ("pending", "processing")
        ]
        if not rest:
            return found
        await self.journal.finish(execution_id, rest)
        again = await anyio.to_thread.run_sync(
            lambda: self.store.execution(execution_id, items=False)
        )
        assert again is not None
        return again

    async def _end(
        self, execution_id: str, status: Any, code: str | None, message: str | None
    ) -> None:
        error = ItemError(code=code, message=message) if code and message else None
        await anyio.to_thread.run_sync(
            self.store.finish_execution, execution_id, status, self.clock(), error
        )
        _log.info("execution %s %s", execution_id, status)
