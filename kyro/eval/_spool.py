"""Running every item, and the files a run with LLM judges keeps between its two phases.

Phase one runs the component on every item with at most ``max_concurrency`` at once — a fixed
pool of workers pulling from the lazy item iterator, so no task exists per item — and scores
each output with the deterministic and callable scorers. Without LLM judges each result goes
straight to the results file. With them, results go to ``items.jsonl`` and every answered
item's ``{"input", "output", "expected"}`` to ``transcripts.jsonl``; phase two (:func:`merge`)
adds the judges' scores, in file order, and writes the final results.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec

from kyro.eval._component import Runner
from kyro.eval._items import Normalised
from kyro.eval._judging import transcript
from kyro.eval._records import BatchEvalItemResult, ScorerResultSummary
from kyro.eval._results import ResultWriter
from kyro.eval._scoring import ScorerPlan
from kyro.eval._text import fallback

__all__ = ["ITEMS", "TRANSCRIPTS", "Spool", "item_worker", "merge", "run_items"]

ITEMS = "items.jsonl"
TRANSCRIPTS = "transcripts.jsonl"
Sink = Callable[[BatchEvalItemResult, Any, Any], None]
_replace = msgspec.structs.replace


async def run_items(
    entries: Iterator[Normalised],
    work: Callable[[Normalised], Awaitable[None]],
    concurrency: int,
) -> None:
    """Feed ``entries`` to ``concurrency`` workers; the first error stops them and is raised.

    Errors here are kyro's (a malformed item, a full disk) — the component's own exceptions
    never reach this far (see :class:`Runner`).
    """
    failures: list[BaseException] = []

    async def worker(scope: anyio.CancelScope) -> None:
        try:
            for entry in entries:
                await work(entry)
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker, group.cancel_scope)
    if failures:
        raise failures[0]


def item_worker(
    runner: Runner, plan: ScorerPlan, batch_id: str, sink: Sink
) -> Callable[[Normalised], Awaitable[None]]:
    """The work for one item: run the component, score the output, hand the result to ``sink``."""
    final = not plan.judges
    score = plan.score

    async def work(entry: Normalised) -> None:
        index, value, expected, item_id = entry
        output, error, duration = await runner.run(value)
        scores: list[ScorerResultSummary] = []
        if error is None:
            scores = await score(output, expected, value)
        item = BatchEvalItemResult(
            index=index,
            run_id=f"{batch_id}-{index}",
            output=output,
            scores=tuple(scores),
            passed=final and error is None and all(s.passed for s in scores),
            duration_ms=duration,
            item_id=item_id,
            error=error,
        )
        sink(item, value, expected)

    return work


class Spool:
    """``items.jsonl`` and ``transcripts.jsonl`` of a run with LLM judges, written as items end.

    Example::

        with Spool(folder) as spool:
            await run_items(entries, item_worker(runner, plan, batch_id, spool.add), 10)
    """

    def __init__(self, folder: Path, *, mode: int = 0o600) -> None:
        self.items_path = folder / ITEMS
        self.transcripts_path = folder / TRANSCRIPTS
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._items = os.fdopen(os.open(self.items_path, flags, mode), "wb")
        self._transcripts = os.fdopen(os.open(self.transcripts_path, flags, mode), "wb")
        self._encoder = msgspec.json.Encoder(enc_hook=fallback)
        self.items = self.answered = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, item: BatchEvalItemResult, value: Any, expected: Any) -> None:
        """Record one item; an answered one also becomes a transcript for the judges."""
        self._items.write(self._encoder.encode(item) + b"\n")
        self.items += 1
        if item.error is None:
            line = self._encoder.encode(transcript(value, item.output, expected))
            self._transcripts.write(line + b"\n")
            self.answered += 1

    def close(self) -> None:
        """Flush and fsync both files (a batch job reads them from another process)."""
        for file in (self._items, self._transcripts):
            if not file.closed:
                file.flush()
                os.fsync(file.fileno())
                file.close()


_item_decoder = msgspec.json.Decoder(BatchEvalItemResult)


def merge(
    items_path: Path,
    judged: Iterable[list[ScorerResultSummary]],
    writer: ResultWriter,
    order: dict[str, int],
) -> None:
    """Add the judges' scores to every answered item of ``items_path`` and write the results.

    ``judged`` yields one list of scores per answered item, in ``items_path`` order.
    """
    scores_of = iter(judged)
    with items_path.open("rb") as file:
        for line in file:
            item = _item_decoder.decode(line)
            if item.error is None:
                scores = sorted((*item.scores, *next(scores_of)), key=lambda s: order[s.scorer])
                item = _replace(item, scores=tuple(scores), passed=all(s.passed for s in scores))
            writer.add(item)
