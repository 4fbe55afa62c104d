"""The journal's group commit: outcomes acknowledged only once written, gathered while a
commit runs, starts written before outcomes, and a failed commit reported to its waiters."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from kyro.serve import ItemChange, ItemOutcome
from kyro.serve._journal import Journal


class RecordingStore:
    """Records each ``record_items`` call; the first call waits until ``gate`` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.commits: list[list[ItemChange]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = fail

    def record_items(self, changes: Sequence[ItemChange]) -> None:
        self.entered.set()
        if not self.commits:
            self.gate.wait(30)
        self.commits.append(list(changes))
        if self.fail:
            raise OSError("disk full")

    def __getattr__(self, name: str) -> Any:  # the rest of the Store is not used here
        raise AssertionError(f"unexpected store call {name}")


def _done(index: int) -> ItemOutcome:
    return ItemOutcome(index=index, status="completed")


def test_outcomes_queued_during_a_commit_go_in_the_next_one_together() -> None:
    """While one commit is on disk, later outcomes gather and are written in one commit;
    each finish returns only after its own commit."""
    store = RecordingStore()
    journal = Journal(store)
    returned: list[int] = []

    async def finish(index: int) -> None:
        await journal.finish("e1", [_done(index)])
        returned.append(index)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(journal.run)
            async with anyio.create_task_group() as finishing:
                journal.start("e1", [0])
                finishing.start_soon(finish, 0)
                await anyio.to_thread.run_sync(store.entered.wait, 30)
                for index in (1, 2, 3):
                    journal.start("e1", [index])
                    finishing.start_soon(finish, index)
                await anyio.sleep(0.05)  # time for a wrong early acknowledgement to show
                assert returned == []  # nothing is acknowledged before its commit
                store.gate.set()
            tasks.cancel_scope.cancel()

    anyio.run(main)
    assert len(store.commits) == 2
    first, second = store.commits
    assert first == [
        ItemChange(execution_id="e1", started=(0,)),
        ItemChange(execution_id="e1", finished=(_done(0),)),
    ]
    assert [c.started for c in second if c.started] == [(1,), (2,), (3,)]
    assert [c.finished[0].index for c in second if c.finished] == [1, 2, 3]
    # Each start is written before its item's outcome.
    assert second.index(ItemChange(execution_id="e1", started=(1,))) < second.index(
        ItemChange(execution_id="e1", finished=(_done(1),))
    )


def test_a_failed_commit_raises_in_every_waiter_and_the_journal_goes_on() -> None:
    """A commit that fails raises its error in the finishes that waited for it."""
    store = RecordingStore(fail=True)
    store.gate.set()
    journal = Journal(store)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(journal.run)
            with pytest.raises(OSError, match="disk full"):
                await journal.finish("e1", [_done(0)])
            with pytest.raises(OSError, match="disk full"):
                await journal.finish("e1", [_done(1)])
            tasks.cancel_scope.cancel()

    anyio.run(main)
    assert [c[0].finished[0].index for c in store.commits] == [0, 1]
