"""``BatchEvalResult``: a run's item results on disk, read lazily, with its statistics.

Item results are written to a JSONL file as they finish (in finishing order) and only their
offsets are kept, so memory does not grow with the number of items: ``results`` reads them
back one at a time, in item order. Statistics are accumulated as results are written.
"""

from __future__ import annotations

import math
import os
import weakref
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import msgspec

from kyro.eval._records import (
    BatchEvalItemResult,
    BatchEvalStats,
    DurationStats,
    EvalStatus,
    ScorerResultSummary,
    ScorerStats,
)
from kyro.eval._text import fallback

__all__ = ["BatchEvalResult", "EvalResults", "ResultWriter"]

_decoder = msgspec.json.Decoder(BatchEvalItemResult)


class EvalResults(Sequence[BatchEvalItemResult]):
    """The item results of a run: a lazy, indexable sequence over the results file.

    Every access reads the file (one line per item), so a million results cost a few MB of
    offsets and nothing more. The file must stay where it is while you read.

    Example::

        len(result.results)
        result.results[0].output
        [r.item_id for r in result.results if not r.passed]
    """

    def __init__(self, path: Path, offsets: array[int], *, temporary: bool = False) -> None:
        self.path = path
        self._offsets = offsets
        if temporary:  # a spill file nobody asked to keep lives as long as its reader
            weakref.finalize(self, path.unlink, missing_ok=True)

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> BatchEvalItemResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[BatchEvalItemResult]: ...

    def __getitem__(self, index: int | slice) -> BatchEvalItemResult | list[BatchEvalItemResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        offset = self._offsets[index]
        with self.path.open("rb") as file:
            file.seek(offset)
            return _decoder.decode(file.readline())

    def __iter__(self) -> Iterator[BatchEvalItemResult]:
        with self.path.open("rb") as file:
            for offset in self._offsets:
                file.seek(offset)
                yield _decoder.decode(file.readline())

    def __repr__(self) -> str:
        return f"<EvalResults {len(self)} from {str(self.path)!r}>"


class BatchEvalResult:
    """A finished eval: its id, status, item results, statistics and pass rate.

    ``status`` is ``completed`` when every item ran, ``partial_failure`` when some raised or
    timed out, ``failed`` when none ran. ``pass_rate`` is passed items / all items (errored
    items count as not passing). ``results_path`` is the JSONL file behind ``results``; when
    evaluate wrote it to a temporary file, the file is removed once ``results`` is unused.

    Example::

        result = await evaluate(agent, items, scorers=["exact_match"])
        print(f"{result.pass_rate:.0%}", result.stats.duration_ms.p95)
        result.to_csv("results.csv")
    """

    def __init__(self, batch_id: str, results: EvalResults, stats: BatchEvalStats) -> None:
        self.batch_id = batch_id
        self.results = results
        self.stats = stats
        self.results_path = results.path

    def __repr__(self) -> str:
        return (
            f"<BatchEvalResult {self.batch_id} {self.status} pass_rate={self.pass_rate:.3f} "
            f"items={self.stats.total}>"
        )

    @property
    def status(self) -> EvalStatus:
        """completed | partial_failure | failed (see the class docstring)."""
        stats = self.stats
        if stats.errored == 0:
            return "completed"
        return "failed" if stats.errored == stats.total else "partial_failure"

    @property
    def pass_rate(self) -> float:
        """The share of items that passed every scorer (0.0 for an empty run)."""
        return self.stats.passed / self.stats.total if self.stats.total else 0.0

    def passing_items(self) -> list[BatchEvalItemResult]:
        """Items whose component ran and passed every scorer."""
        return [r for r in self.results if r.passed]

    def failing_items(self) -> list[BatchEvalItemResult]:
        """Items whose component ran but some scorer did not pass (or errored)."""
        return [r for r in self.results if not r.passed and r.error is None]

    def failed_items(self) -> list[BatchEvalItemResult]:
        """Items whose component raised or timed out (``error`` says which)."""
        return [r for r in self.results if r.error is not None]

    def to_jsonl(self, path: str | Path) -> Path:
        """Write every item result, one JSON object a line, in item order; return the path."""
        from kyro.eval._export import write_jsonl

        return write_jsonl(self, Path(path))

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per item with a score/passed/explanation column per scorer."""
        from kyro.eval._export import write_csv

        return write_csv(self, Path(path))


class _ScorerTally:
    __slots__ = ("errored", "passed", "scored", "total")

    def __init__(self) -> None:
        self.scored = self.passed = self.errored = 0
        self.total = 0.0


class ResultWriter:
    """Appends item results to a JSONL file, recording offsets and statistics as it goes.

    Example::

        with ResultWriter(path, scorer_names) as writer:
            writer.add(item_result)
        result = writer.result(batch_id, wall_seconds, temporary=False)
    """

    def __init__(self, path: Path, scorers: Sequence[str], *, mode: int = 0o644) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._file = os.fdopen(os.open(path, flags, mode), "wb")
        self._buffer = bytearray()
        self._encoder = msgspec.json.Encoder(enc_hook=fallback)
        self._offsets: array[int] = array("q")
        self._position = 0
        self._durations: array[float] = array("d")
        self._tallies = {name: _ScorerTally() for name in scorers}
        self.passed = self.errored = 0

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, item: BatchEvalItemResult) -> None:
        """Write one item result (any order; ``index`` places it)."""
        buffer = self._buffer
        start = len(buffer)
        self._encoder.encode_into(item, buffer, -1)
        buffer.extend(b"\n")
        offsets = self._offsets
        while len(offsets) <= item.index:
            offsets.append(-1)
        offsets[item.index] = self._position + start
        if len(buffer) > 1 << 16:
            self._flush()
        self._durations.append(item.duration_ms)
        if item.error is not None:
            self.errored += 1
            return
        if item.passed:
            self.passed += 1
        for score in item.scores:
            self._tally(score)

    def _tally(self, score: ScorerResultSummary) -> None:
        tally = self._tallies.get(score.scorer)
        if tally is None:
            tally = self._tallies[score.scorer] = _ScorerTally()
        tally.scored += 1
        if score.error is not None:
            tally.errored += 1
        elif score.passed:
            tally.passed += 1
        if score.score is not None:
            tally.total += score.score

    def _flush(self) -> None:
        self._file.write(self._buffer)
        self._position += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        """Flush and fsync the file."""
        if self._file.closed:
            return
        self._flush()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def stats(self, wall_seconds: float) -> BatchEvalStats:
        """The statistics of everything added so far."""
        total = len(self._durations)
        scorers = {
            name: ScorerStats(
                scored=t.scored,
                passed=t.passed,
                errored=t.errored,
                pass_rate=t.passed / t.scored if t.scored else 0.0,
                mean_score=t.total / (t.scored - t.errored) if t.scored > t.errored else None,
            )
            for name, t in self._tallies.items()
        }
        return BatchEvalStats(
            total=total,
            passed=self.passed,
            failed=total - self.passed - self.errored,
            errored=self.errored,
            scorers=scorers,
            duration_ms=durations(self._durations),
            wall_seconds=wall_seconds,
        )

    def result(self, batch_id: str, wall_seconds: float, *, temporary: bool) -> BatchEvalResult:
        """Close the file and return the run's result over it."""
        self.close()
        if -1 in self._offsets:
            raise RuntimeError("an item result is missing from the results file")
        views = EvalResults(self.path, self._offsets, temporary=temporary)
        return BatchEvalResult(batch_id, views, self.stats(wall_seconds))


def durations(values: array[float]) -> DurationStats:
    """Mean, nearest-rank percentiles and max of ``values`` (zeros when empty)."""
    if not values:
        return DurationStats()
    ordered = sorted(values)
    n = len(ordered)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * n) - 1)], 3)

    return DurationStats(
        mean=round(math.fsum(ordered) / n, 3),
        p50=rank(0.50),
        p90=rank(0.90),
        p95=rank(0.95),
        p99=rank(0.99),
        max=round(ordered[-1], 3),
    )
