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


def test_items_evaluated_at_once_never_exceed_the_concurrency(tmp_path: Path) -> None:
    """With room for 20 requests, a concurrency-3 executor still evaluates 3 items at once
    at most, skips items already done, and reports each item's start before its outcome."""
    from kyro_local import LocalProvider

    overlap = _Overlap()
    provider = LocalProvider(handler=overlap, state_dir=tmp_path / "local", concurrency=20)
    executor = LiveExecutor(provider, concurrency=3)
    inputs = tuple({"request": f"q{i}", "response": f"a{i}"} for i in range(12))
    work = Work(
        execution_id="e1",
        config_path=write_judge(tmp_path / "judges"),
        evaluators=("Relevance",),
        inputs=inputs,
        done=frozenset({1}),
    )
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
