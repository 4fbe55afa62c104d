"""The live executor on its own: how many items it evaluates at once, what it reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from kyro.serve import ItemOutcome, LiveExecutor, Work
from tests.serve.serve_helpers import CountingJudge, write_judge


class _Overlap:
    """A callable judge that notes the most calls running at the same moment."""

    def __init__(self) -> None:
        self.judge = CountingJudge()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)
            return self.judge(body)
        finally:
            with self._lock:
                self.running -= 1


class _Log:
    """A reporter keeping every start and outcome in the order reported."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.outcomes: list[ItemOutcome] = []

    async def started(self, indices: Sequence[int]) -> None:
        self.events.extend(("started", i) for i in indices)

    async def finished(self, outcomes: Sequence[Any]) -> None:
        self.events.extend(("finished", o.index) for o in outcomes)
        self.outcomes.extend(outcomes)


def _work(config: Path, name: str, size: int, done: frozenset[int] = frozenset()) -> Work:
    """An execution ``name`` of ``size`` inputs (requests ``{name}0``, ``{name}1``…)."""
    inputs = tuple({"request": f"{name}{i}", "response": f"a{i}"} for i in range(size))
    return Work(
        execution_id=name,
        config_path=config,
        evaluators=("Relevance",),
        inputs=inputs,
        done=done,
    )


def test_items_evaluated_at_once_never_exceed_the_concurrency(tmp_path: Path) -> None:
    """With room for 20 requests, a concurrency-3 executor still evaluates 3 items at once
    at most, skips items already done, and reports each item's start before its outcome."""
    from kyro_local import LocalProvider

    overlap = _Overlap()
    provider = LocalProvider(handler=overlap, state_dir=tmp_path / "local", concurrency=20)
    executor = LiveExecutor(provider, concurrency=3)
    work = _work(write_judge(tmp_path / "judges"), "q", 12, done=frozenset({1}))
    log = _Log()

    async def main() -> None:
        try:
            await executor.execute(work, log)
        finally:
            await executor.aclose()

    anyio.run(main)
    assert overlap.most == 3
    wanted = [i for i in range(12) if i != 1]
    assert sorted(o.index for o in log.outcomes) == wanted
    assert {o.status for o in log.outcomes} == {"completed"}
    assert sorted(overlap.judge.calls) == sorted(f"q{i}" for i in wanted)
    for index in wanted:
        assert log.events.index(("started", index)) < log.events.index(("finished", index))


class _Held(_Log):
    """A reporter whose commits wait until ``commit`` is set, like a store stuck on a disk."""

    def __init__(self, waiters: int) -> None:
        super().__init__()
        self.commit = anyio.Event()
        self.full = anyio.Event()  # set once ``waiters`` outcomes wait for their commit
        self.waiters = waiters
        self.waiting = 0

    async def finished(self, outcomes: Sequence[Any]) -> None:
        self.waiting += 1
        if self.waiting == self.waiters:
            self.full.set()
        await self.commit.wait()
        await super().finished(outcomes)


def test_items_sent_and_not_yet_recorded_are_capped_at_four_times_the_concurrency(
    tmp_path: Path,
) -> None:
    """While no outcome can be committed, a concurrency-2 executor sends 8 items (its
    default ``in_flight``, the most a crash could make it send again) and no ninth; once
    commits go through, every item is evaluated once."""
    from kyro_local import LocalProvider

    judge = CountingJudge()

    async def answer(body: dict[str, Any]) -> str:
        return judge(body)

    provider = LocalProvider(handler=answer, state_dir=tmp_path / "local", concurrency=2)
    executor = LiveExecutor(provider, concurrency=2)
    assert executor.in_flight == 8
    work = _work(write_judge(tmp_path / "judges"), "q", 20)
    log = _Held(8)
    sent_while_held: list[int] = []

    async def main() -> None:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(executor.execute, work, log)
                with anyio.fail_after(30):  # fewer than 8 would never fill it
                    await log.full.wait()
                await anyio.wait_all_tasks_blocked()  # a ninth item would be sent by now
                sent_while_held.append(sum(judge.calls.values()))
                log.commit.set()
        finally:
            await executor.aclose()

    anyio.run(main)
    assert sent_while_held == [8]
    assert sorted(o.index for o in log.outcomes) == list(range(20))
    assert sorted(judge.calls) == sorted(f"q{i}" for i in range(20))
    assert set(judge.calls.values()) == {1}
