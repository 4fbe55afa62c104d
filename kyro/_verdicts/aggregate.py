"""Result lines → verdicts → the results file, in bounded memory.

Lines arrive in any order, from any number of batches (resubmissions included). The
:class:`Aggregator` spills each one, compactly, to a partition file chosen by transcript
index (``partition_size`` transcripts each) and keeps only a small write buffer (records
held until about ``buffer_bytes``, then written as one msgpack array per partition).
Finishing walks the partitions in order, loading one at a time: memory is one partition,
whatever the size of the job.

Which line counts when a request comes back more than once: a reply (``ok``) beats a failure
that is not worth retrying, which beats a retryable one (expired, cancelled, 429, 5xx); among
equals the first seen wins. So a later success replaces an earlier failure and a duplicate is
never counted twice — token usage included, which is summed over the lines that count.
A request with no line at all is an errored run with code ``missing`` (retryable).
"""

from __future__ import annotations

import re
import shutil
import struct
import tempfile
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import msgspec

from kyro._custom_id import format_custom_id, parse_custom_id
from kyro._files import LOCAL_DISK, ClosedOnExit, DurableIO, private_opener
from kyro._transcript_index import IndexEntry
from kyro._types import ResultError, ResultLine, Usage
from kyro._verdicts.counting import CountsBuilder, JudgeTally
from kyro._verdicts.result_types import (
    BatchRunResult,
    Evaluations,
    JudgeVerdict,
    RunVerdict,
    TranscriptEvaluation,
    job_status,
    rolled_up,
)
from kyro._verdicts.vote import VoteSettings, parse_reply, vote_sorted

__all__ = ["Aggregator"]

_OK, _FAILED, _RETRYABLE = 2, 1, 0
# Why a second parser: nearly every line of a single-stage job has a plain "t<i>-j<j>-r<r>" id,
# and one fullmatch of this pattern reads it in a fraction of parse_custom_id's time (which
# also handles stage prefixes and returns a struct) — at a million lines that is seconds.
# Anything it does not match, and every line of a later stage, goes to parse_custom_id.
_FAST_ID = re.compile(r"t(\d+)-j(\d+)-r(\d+)")
_MISSING = ResultError(
    code="missing", message="no result line came back for this request", retryable=True
)
_FLUSH_AT = 1 << 20
# A spill file is chunks, one per write: the chunk's size, then its records as one msgpack
# array. msgpack, not JSON: a reply's text is copied as it is, not escaped when spilled and
# unescaped when loaded.
_CHUNK_SIZE = struct.Struct(">I")
# What a record held in memory costs beside its reply's text (counted against buffer_bytes).
_REC_BYTES = 200


class _Rec(msgspec.Struct, array_like=True, gc=False):
    key: int  # the request within its partition (see Aggregator._key)
    rank: int
    content: str | None = None
    error: ResultError | None = None
    usage: Usage | None = None
    cached: bool = False


def _split_usage(usage: Usage | None, parts: int) -> list[Usage | None]:
    """``usage`` shared out over ``parts`` runs, the remainder on the first."""
    if usage is None or parts <= 1:
        return [usage] * max(parts, 1)
    fields = (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cached_input_tokens,
    )
    out: list[Usage | None] = []
    for k in range(parts):
        i, o, tot, c = (v // parts + (v % parts if k == 0 else 0) for v in fields)
        out.append(Usage(input_tokens=i, output_tokens=o, total_tokens=tot, cached_input_tokens=c))
    return out


class Aggregator(ClosedOnExit):
    """Collects a job's result lines, then votes and writes the results file.

    ``judges`` are the judge names by judge index, ``runs`` the runs per judge,
    ``transcripts`` the transcript count; ``samples`` > 1 when runs were sent that many to a
    request (``n``): a line's choices are then runs r, r+1, …, and a failed line for run r
    (a multiple of ``samples``) fails every run it carried. Scratch files go to a fresh
    folder inside ``work_dir``, removed by :meth:`close` (or leaving the ``with`` block).

    Example::

        with Aggregator(store.work_dir, judges=names, runs=3, transcripts=n) as agg:
            for batch_id in batch_ids:
                await agg.consume(provider.results(batch_id))
            retry = set(agg.retryable())          # custom_ids worth sending again
            if not retry:
                result = agg.finish(iter_index(store.index_path), store.results_path,
                                    job_id=job_id)
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        judges: Sequence[str],
        runs: int,
        transcripts: int,
        settings: VoteSettings | None = None,
        partition_size: int = 1024,
        buffer_bytes: int = 8 << 20,
        thresholds: Sequence[float] = (),
        stage: int = 0,
        samples: int = 1,
    ) -> None:
        if runs < 1 or not judges or transcripts < 0 or partition_size < 1:
            raise ValueError("runs, judges and partition_size must be positive")
        self.judges = tuple(judges)
        # Each judge's pass_threshold (by judge index; 0.5 for those not given).
        self.thresholds = tuple(thresholds) + (0.5,) * (len(self.judges) - len(thresholds))
        self.runs = runs
        self.transcripts = transcripts
        self.settings = settings if settings is not None else VoteSettings()
        self.partition_size = partition_size
        self.buffer_bytes = buffer_bytes
        self.stage = stage
        self.samples = samples
        self.lines = 0
        self.unexpected = 0
        self.unexpected_ids: list[str] = []
        self.peak_partition_records = 0
        # The one error every request failed with, while no request got a reply (see finish).
        self._common: ResultError | None = None
        self._varied = False
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="aggregate-", dir=work_dir))
        # Each partition's records not yet written, and roughly the bytes they hold.
        self._buffers: dict[int, list[_Rec]] = {}
        self._buffered = 0
        self._encoder = msgspec.json.Encoder()
        self._encode_chunk = msgspec.msgpack.Encoder().encode
        self._decode_chunk = msgspec.msgpack.Decoder(list[_Rec]).decode
        self._judge_count = len(self.judges)
        self._per_transcript = self._judge_count * runs
        # A plain id's tail "-j<j>-r<r>" → (j, r), and → its request's place among its
        # transcript's requests.
        self._id_runs = {
            f"-j{j}-r{r}": (j, r) for j in range(self._judge_count) for r in range(runs)
        }
        self._id_tails = {
            f"-j{j}-r{r}": j * runs + r for j in range(self._judge_count) for r in range(runs)
        }
        # The custom_ids finish() found retryable (a failure worth sending again, or no line).
        self.finished_retryable: list[str] = []
        self._tallies: list[JudgeTally] = []

    def add(self, line: ResultLine, *, cached: bool = False) -> None:
        """Take one result line (any batch, any order); ``cached`` when the reply cache gave it.

        A cached reply's run is marked ``origin="cache"`` in the results and its usage is not
        added to the job's (it was paid for by an earlier job).
        """
        custom_id = line.custom_id
        dash = custom_id.find("-")
        plain = self._id_runs.get(custom_id[dash:]) if not self.stage else None
        number = custom_id[1:dash]
        if plain is not None and number.isdecimal() and custom_id[0] == "t":
            t, (j, r) = int(number), plain  # as add_many reads a plain id
        elif not self.stage and (match := _FAST_ID.fullmatch(custom_id)) is not None:
            t, j, r = int(match[1]), int(match[2]), int(match[3])
        else:
            parsed = parse_custom_id(line.custom_id)
            if parsed is None or parsed.stage != self.stage:
                self._unexpected(line.custom_id)
                return
            t, j, r = parsed.transcript, parsed.judge, parsed.run
        if t >= self.transcripts or j >= self._judge_count or r >= self.runs:
            self._unexpected(line.custom_id)
            return
        self.lines += 1
        size = self.partition_size
        key = (t % size) * self._per_transcript + j * self.runs + r  # self._key(t, j, r)
        error = line.error
        if line.ok and error is None:
            if len(line.choices) > 1:
                self._add_samples(t, j, r, line)
                return
            rec = _Rec(key, _OK, line.content, None, line.usage, cached)
        else:
            if error is None:
                error = ResultError(code="failed", message="the provider returned no reply")
            rank = _RETRYABLE if error.retryable else _FAILED
            if self.samples > 1 and r % self.samples == 0:
                # A request that carried runs r … r+samples-1 as samples failed for all of
                # them (a run answered by another line still wins: replies outrank failures).
                for run in range(r, min(r + self.samples, self.runs)):
                    usage = line.usage if run == r else None
                    self._store(t, _Rec(self._key(t, j, run), rank, None, error, usage))
                return
            rec = _Rec(key, rank, None, error, line.usage)
        # _store, inlined: this runs once per result line.
        pending = self._buffers.get(t // size)
        if pending is None:
            pending = self._buffers[t // size] = []
        pending.append(rec)
        self._buffered += _REC_BYTES + (len(rec.content) if rec.content is not None else 0)
        if self._buffered >= self.buffer_bytes:
            self._flush()

    def add_many(self, lines: Iterable[ResultLine]) -> None:
        """:meth:`add` every line of ``lines`` (the hot path of collecting a download).

        A plain reply to a plain ``t<i>-j<j>-r<r>`` id is spilled here directly; anything
        else (a failure, several choices, a stage's id, an id out of range) goes through
        :meth:`add`, so both give the same records.
        """
        if self.stage or self.samples > 1:
            for line in lines:
                self.add(line)
            return
        tails = self._id_tails
        buffers = self._buffers
        size, limit = self.partition_size, self.buffer_bytes
        transcripts, per_transcript = self.transcripts, self._per_transcript
        added = 0
        buffered = self._buffered
        for line in lines:
            # "t<i>" and a known tail "-j<j>-r<r>": what _FAST_ID reads, in fewer steps
            # (any other spelling goes through add and _FAST_ID).
            custom_id = line.custom_id
            dash = custom_id.find("-")
            tail = tails.get(custom_id[dash:])
            number = custom_id[1:dash]
            if (
                tail is not None
                and number.isdecimal()
                and custom_id[0] == "t"
                and line.ok
                and line.error is None
                and len(line.choices) < 2
            ):
                t = int(number)
                if t < transcripts:
                    added += 1
                    pending = buffers.get(t // size)
                    if pending is None:
                        pending = buffers[t // size] = []
                    content = line.content
                    key = (t % size) * per_transcript + tail
                    pending.append(_Rec(key, _OK, content, None, line.usage))
                    buffered += _REC_BYTES + (len(content) if content is not None else 0)
                    if buffered >= limit:
                        self._flush()
                        buffered = 0
                    continue
            self._buffered = buffered
            self.add(line)
            buffered = self._buffered
        self._buffered = buffered
        self.lines += added

    def _add_samples(self, t: int, j: int, r: int, line: ResultLine) -> None:
        """One reply per choice of a request sent with ``n``: choice k is run r + k.

        The request's usage is shared out evenly (the remainder on the first run), so the
        runs' usage still sums to what the request cost.
        """
        choices = line.choices[: max(0, self.runs - r)]
        parts = _split_usage(line.usage, len(choices))
        for offset, content in enumerate(choices):
            key = self._key(t, j, r + offset)
            self._store(t, _Rec(key, _OK, content, None, parts[offset]))

    def _key(self, t: int, j: int, r: int) -> int:
        """Request (t, j, r)'s key in its partition: its place in the partition's
        transcripts × judges × runs."""
        return (t % self.partition_size) * self._per_transcript + j * self.runs + r

    def _store(self, t: int, rec: _Rec) -> None:
        partition = t // self.partition_size
        pending = self._buffers.get(partition)
        if pending is None:
            pending = self._buffers[partition] = []
        pending.append(rec)
        self._buffered += _REC_BYTES + (len(rec.content) if rec.content is not None else 0)
        if self._buffered >= self.buffer_bytes:
            self._flush()

    async def consume(self, lines: AsyncIterable[ResultLine]) -> int:
        """Take every line of a stream (``provider.results(batch_id)``); returns how many."""
        before = self.lines + self.unexpected
        async for line in lines:
            self.add(line)
        return self.lines + self.unexpected - before

    def retryable(self) -> Iterator[str]:
        """The custom_ids, ascending, whose outcome so far is a retryable failure or missing.

        Reads the partitions one at a time; feed the ids to ``filter_shard``.
        """
        self._flush()
        size, runs, judges = self.partition_size, self.runs, len(self.judges)
        for partition in range(self._partitions()):
            best = self._load(partition)
            first = partition * size
            for t in range(first, min(first + size, self.transcripts)):
                base = (t - first) * judges * runs
                for j in range(judges):
                    for r in range(runs):
                        rec = best.get(base + j * runs + r)
                        if rec is None or rec.rank == _RETRYABLE:
                            yield format_custom_id(t, j, r)

    def retryable_in(self, planned: Iterable[tuple[int, Sequence[int]]]) -> Iterator[str]:
        """:meth:`retryable` over only the requests ``planned`` (a pipeline stage's).

        ``planned`` yields ``(transcript, judge indices)`` in ascending transcript order.
        """
        runs = self.runs
        for t, judges, best in self._planned(planned):
            base = (t % self.partition_size) * len(self.judges) * runs
            for j in judges:
                for r in range(runs):
                    rec = best.get(base + j * runs + r)
                    if rec is None or rec.rank == _RETRYABLE:
                        yield format_custom_id(t, j, r, self.stage)

    def verdicts_in(
        self, planned: Iterable[tuple[int, Sequence[int]]]
    ) -> Iterator[tuple[int, dict[str, JudgeVerdict]]]:
        """Each planned transcript's voted verdicts of the planned judges (a pipeline stage).

        A planned request with no line is an errored run (``missing``), as in :meth:`finish`.
        """
        runs_per_judge = self.runs
        for t, judges, best in self._planned(planned):
            base = (t % self.partition_size) * len(self.judges) * runs_per_judge
            verdicts: dict[str, JudgeVerdict] = {}
            for j in judges:
                runs: list[RunVerdict] = []
                for r in range(runs_per_judge):
                    rec = best.get(base + j * runs_per_judge + r)
                    if rec is None:
                        runs.append(RunVerdict(run=r, status="ERRORED", error=_MISSING))
                    elif rec.rank == _OK:
                        threshold = self.thresholds[j]
                        run = parse_reply(
                            rec.content, run=r, usage=rec.usage, pass_threshold=threshold
                        )
                        if rec.cached:
                            run = msgspec.structs.replace(run, origin="cache")
                        runs.append(run)
                    else:
                        runs.append(
                            RunVerdict(run=r, status="ERRORED", error=rec.error, usage=rec.usage)
                        )
                name = self.judges[j]
                verdicts[name] = vote_sorted(name, tuple(runs), self.settings)
            yield t, verdicts

    def _planned(
        self, planned: Iterable[tuple[int, Sequence[int]]]
    ) -> Iterator[tuple[int, Sequence[int], dict[int, _Rec]]]:
        """``planned`` with each transcript's partition loaded (one partition at a time)."""
        self._flush()
        loaded = -1
        best: dict[int, _Rec] = {}
        for t, judges in planned:
            partition = t // self.partition_size
            if partition != loaded:
                best = self._load(partition)
                loaded = partition
            yield t, judges, best

    def finish(
        self,
        index: Iterable[IndexEntry],
        results_path: Path,
        *,
        job_id: str,
        disk: DurableIO = LOCAL_DISK,
    ) -> BatchRunResult:
        """Vote every request and write the results file durably; return the job's result.

        What :meth:`retryable` would give is left in :attr:`finished_retryable` (the same
        pass found it). ``index`` yields the transcript index entries in index order
        (``iter_index(path)``); a transcript without an entry gets the source
        ``unknown:<index>``. The file is complete, fsynced and in place (mode 0600) before
        this returns. Blocking file I/O: call it through ``anyio.to_thread.run_sync`` to
        keep an event loop responsive.
        """
        self._flush()
        self.finished_retryable = []
        counts = CountsBuilder(
            judges=self.judges,
            transcripts=self.transcripts,
            requests=self.transcripts * len(self.judges) * self.runs,
            unexpected_lines=self.unexpected,
        )
        self._tallies = [counts.judges[name] for name in self.judges]
        usage = [0, 0, 0, 0]
        entries = iter(index)
        entry: IndexEntry | None = next(entries, None)
        with disk.atomic_writer(results_path) as file:
            for partition in range(self._partitions()):
                first = partition * self.partition_size
                last = min(first + self.partition_size, self.transcripts)
                entry = self._write_range(
                    range(first, last), self._load(partition), entry, entries, counts, usage, file
                )
        totals = counts.build()
        return BatchRunResult(
            job_id=job_id,
            status=job_status(totals),
            counts=totals,
            usage=Usage(
                input_tokens=usage[0],
                output_tokens=usage[1],
                total_tokens=usage[2],
                cached_input_tokens=usage[3],
            ),
            results_path=results_path,
            evaluations=Evaluations(results_path, self.transcripts),
            failure=self.common_failure(),
        )

    def _write_range(
        self,
        transcripts: range,
        best: dict[int, _Rec],
        entry: IndexEntry | None,
        entries: Iterator[IndexEntry],
        counts: CountsBuilder,
        usage: list[int],
        file: IO[bytes],
    ) -> IndexEntry | None:
        """Vote the ``transcripts`` of one loaded partition (``best``) and write their
        results lines to ``file`` (a megabyte at a time); returns the index entry reached."""
        judges = tuple(enumerate(self.judges))
        runs_per_judge = self.runs
        per_transcript = self._judge_count * runs_per_judge
        size = self.partition_size
        settings = self.settings
        thresholds = self.thresholds
        retry = self.finished_retryable
        tallies = self._tallies
        encode_into = self._encoder.encode_into
        buffer = bytearray()
        for t in transcripts:
            while entry is not None and entry.index < t:
                entry = next(entries, None)
            if entry is not None and entry.index == t:
                source, preview = entry.source, entry.preview or None
            else:
                source, preview = f"unknown:{t}", None
            key = (t % size) * per_transcript
            verdicts = {}
            statuses: list[str] = []
            for j, name in judges:
                runs: list[RunVerdict] = []
                for r in range(runs_per_judge):
                    rec = best.get(key)
                    key += 1
                    if rec is None:
                        runs.append(RunVerdict(run=r, status="ERRORED", error=_MISSING))
                        counts.missing_runs += 1
                        self._failed(_MISSING)
                        retry.append(format_custom_id(t, j, r))
                        continue
                    spent = rec.usage
                    if spent is not None and not rec.cached:
                        usage[0] += spent.input_tokens
                        usage[1] += spent.output_tokens
                        usage[2] += spent.total_tokens
                        usage[3] += spent.cached_input_tokens
                    if rec.rank == _OK:
                        run = parse_reply(
                            rec.content, run=r, usage=spent, pass_threshold=thresholds[j]
                        )
                        if rec.cached:
                            run = msgspec.structs.replace(run, origin="cache")
                        runs.append(run)
                        self._varied = True  # a reply came back: the provider worked
                    else:
                        runs.append(
                            RunVerdict(run=r, status="ERRORED", error=rec.error, usage=spent)
                        )
                        self._failed(rec.error)
                        if rec.rank == _RETRYABLE:
                            retry.append(format_custom_id(t, j, r))
                verdict = vote_sorted(name, tuple(runs), settings)
                judged = verdict.status
                counts.errored_runs += verdict.votes["ERRORED"]
                tallies[j].add(judged, verdict.score)
                verdicts[name] = verdict
                statuses.append(judged)
            overall = rolled_up(statuses)
            counts.add(overall)
            encode_into(
                TranscriptEvaluation(
                    index=t, source=source, status=overall, verdicts=verdicts, preview=preview
                ),
                buffer,
                -1,
            )
            buffer += b"\n"
            if len(buffer) >= _FLUSH_AT:
                file.write(buffer)
                buffer.clear()
        file.write(buffer)
        return entry

    def _failed(self, error: ResultError | None) -> None:
        if self._varied:
            return
        if error is None or (self._common is not None and error.code != self._common.code):
            self._varied = True
        elif self._common is None:
            self._common = error

    def common_failure(self) -> ResultError | None:
        """The error every request of the job failed with, when there is exactly one code and
        it is not worth retrying (a rejected key, an unknown model); else None."""
        common = self._common
        if self._varied or common is None or common.retryable or common.code == "missing":
            return None
        return common

    def _partitions(self) -> int:
        return -(-self.transcripts // self.partition_size)

    def _load(self, partition: int) -> dict[int, _Rec]:
        """One partition's lines, resolved: the line that counts per request key."""
        path = self._dir / f"{partition:06d}.spill"
        if not path.exists():
            return {}
        data = path.read_bytes()
        records: list[_Rec] = []
        with memoryview(data) as view:
            start = 0
            while start < len(data):
                (size,) = _CHUNK_SIZE.unpack_from(data, start)
                start += _CHUNK_SIZE.size
                records += self._decode_chunk(view[start : start + size])
                start += size
        self.peak_partition_records = max(self.peak_partition_records, len(records))
        best = {rec.key: rec for rec in records}
        if len(best) == len(records):
            return best  # one line per request: nothing to resolve
        best = {}
        for rec in records:
            key = rec.key
            held = best.get(key)
            if held is None or rec.rank > held.rank:
                best[key] = rec
        return best

    def _flush(self) -> None:
        for partition, pending in self._buffers.items():
            path = self._dir / f"{partition:06d}.spill"
            with open(path, "ab", opener=private_opener) as file:
                data = self._encode_chunk(pending)
                file.write(_CHUNK_SIZE.pack(len(data)))
                file.write(data)
        self._buffers.clear()
        self._buffered = 0

    def _unexpected(self, custom_id: str) -> None:
        self.unexpected += 1
        if len(self.unexpected_ids) < 10:
            self.unexpected_ids.append(custom_id)

    def close(self) -> None:
        """Remove the scratch files (the results file is not touched)."""
        self._buffers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
