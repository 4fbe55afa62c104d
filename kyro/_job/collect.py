"""Collecting a finished job: downloads kept on disk, aggregation, and what to send again.

Each terminal batch is downloaded once, line by line, into ``downloads/<batch_id>.jsonl``
(written atomically, so a crash mid-download leaves nothing half-written behind) and marked
as downloaded in the state. Aggregation then reads every download of the job — every attempt
of every shard — so a resubmitted request's later reply replaces its earlier failure.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from kyro._exceptions import KyroError
from kyro._files import LOCAL_DISK, DurableIO, LineSpool
from kyro._provider import BatchProvider
from kyro._transcript_index import iter_index
from kyro._types import ResultLine
from kyro._verdicts.aggregate import Aggregator
from kyro._verdicts.job_cache import JobCache
from kyro._verdicts.result_types import BatchRunResult
from kyro._verdicts.vote import VoteSettings

__all__ = [
    "Aggregation",
    "Collected",
    "aggregate",
    "download_results",
    "read_download",
    "store_downloaded",
]

_log = logging.getLogger("kyro")
_line_decoder = msgspec.json.Decoder(ResultLine)
_READ_AT = 1 << 20


async def download_results(
    provider: BatchProvider, batch_id: str, path: Path, *, disk: DurableIO = LOCAL_DISK
) -> int:
    """Stream every result line of ``batch_id`` into ``path`` (atomically); return the count."""
    with disk.atomic_writer(path) as file:
        spool = LineSpool(file)
        async for line in provider.results(batch_id):
            spool.append(line)
        spool.flush()
    return spool.count


def read_download(path: Path) -> Iterator[ResultLine]:
    """The result lines of one downloaded batch, streamed (decoded a block of lines at a
    time: one call per block, not per line)."""
    decode_lines = _line_decoder.decode_lines
    with path.open("rb") as file:
        rest = b""
        while block := file.read(_READ_AT):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield from decode_lines(block[:cut])
        if rest.strip():
            yield from decode_lines(rest)


class Collected(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one aggregation pass.

    ``retryable`` lists custom_ids whose best outcome so far is a failure worth sending again
    (expired, cancelled, missing, 429, 5xx); ``result`` is set only when ``finish`` was asked.
    """

    retryable: frozenset[str]
    result: BatchRunResult | None = None


def aggregate(
    downloads: Sequence[Path],
    *,
    work_dir: Path,
    index_path: Path,
    results_path: Path,
    job_id: str,
    judges: Sequence[str],
    runs: int,
    transcripts: int,
    settings: VoteSettings,
    finish: bool,
    thresholds: Sequence[float] = (),
    samples: int = 1,
    reuse_dir: Path | None = None,
    disk: DurableIO = LOCAL_DISK,
) -> Collected:
    """Read every download; return the retryable ids and, with ``finish``, the written result.

    ``samples`` > 1 when runs were sent as that many samples per request. With a job cache
    in ``reuse_dir`` (see :mod:`kyro._verdicts.job_cache`), the runs the cache answered at
    submit are read first (marked ``origin: cache``), and, when finishing, every verdict
    downloaded is stored in the cache for the next job.

    Blocking file I/O: run it in a worker thread (``anyio.to_thread.run_sync``).
    """
    started, cpu = time.perf_counter(), time.thread_time()
    job_cache = JobCache.load(reuse_dir) if reuse_dir is not None else None
    try:
        with Aggregator(
            work_dir,
            judges=judges,
            runs=runs,
            transcripts=transcripts,
            settings=settings,
            thresholds=thresholds,
            samples=samples,
        ) as aggregator:
            if job_cache is not None:
                for line in job_cache.hits():
                    aggregator.add(line, cached=True)
            for path in downloads:
                aggregator.add_many(read_download(path))
            if not finish:
                return Collected(retryable=frozenset(aggregator.retryable()))
            result = aggregator.finish(
                iter_index(index_path), results_path, job_id=job_id, disk=disk
            )
            retryable = frozenset(aggregator.finished_retryable)
            seconds = time.perf_counter() - started
            # The CPU time too: on a busy machine the wall time also counts waiting for a core.
            _log.info(
                "job %s: aggregated %s result lines into %s transcripts in %.3f s "
                "(%s lines/s; %.3f s of CPU)",
                job_id,
                f"{aggregator.lines:,}",
                f"{transcripts:,}",
                seconds,
                f"{aggregator.lines / max(seconds, 1e-9):,.0f}",
                time.thread_time() - cpu,
            )
            if job_cache is not None:
                started = time.perf_counter()
                stored = store_downloaded(job_cache, downloads)
                _log.info(
                    "job %s: reply cache: stored %s replies (new verdicts) in %.3f s",
                    job_id,
                    f"{stored:,}",
                    time.perf_counter() - started,
                )
            return Collected(retryable=retryable, result=result)
    finally:
        if job_cache is not None:
            job_cache.close()


def store_downloaded(job_cache: JobCache, downloads: Sequence[Path]) -> int:
    """Store the downloaded verdicts in the reply cache; the number stored. A cache that
    cannot be written is logged, never a reason to fail the job (its results are already
    written)."""
    stored = 0
    try:
        for path in downloads:
            stored += job_cache.store_replies(read_download(path))
    except (KyroError, sqlite3.Error, OSError) as exc:
        _log.warning("the reply cache could not store this job's replies: %s", exc)
    return stored


class Aggregation(msgspec.Struct, frozen=True, kw_only=True):
    """Everything :func:`aggregate` reads for one plain job, from its state and store.

    Example::

        collected = runner.aggregation(state).run(finish=True)
    """

    downloads: tuple[Path, ...]
    work_dir: Path
    index_path: Path
    results_path: Path
    job_id: str
    judges: tuple[str, ...]
    runs: int
    transcripts: int
    settings: VoteSettings
    thresholds: tuple[float, ...]
    samples: int
    reuse_dir: Path | None
    disk: DurableIO = LOCAL_DISK

    def run(self, *, finish: bool) -> Collected:
        """Aggregate the downloads (blocking file I/O: call it in a worker thread)."""
        return aggregate(**msgspec.structs.asdict(self), finish=finish)
