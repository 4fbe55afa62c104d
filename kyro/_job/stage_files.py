"""A pipeline job's stage files: its transcripts, each stage's plan, and the outcomes so far.

All live in the job's ``stages/`` folder (mode 0600 files, streamed one line at a time, so a
later stage never holds the transcripts or the verdicts in memory)::

    transcripts.jsonl        one Transcript per line (index, source, value), index order
    plan-<k>.jsonl           [transcript, [judge indices]] for each transcript stage k sent
    outcomes-<k>.jsonl       {"index": t, "verdicts": {step: JudgeVerdict}} for every
                             transcript: the verdicts of every stage up to k

A plan or outcomes file is written atomically: it is either complete or absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec

from kyro._exceptions import BatchValidationError
from kyro._files import LineSpool, atomic_writer, decode_lines
from kyro._transcript_index import JsonlWriter
from kyro._transcripts import Transcript
from kyro._verdicts.result_types import JudgeVerdict

__all__ = [
    "PlannedLine",
    "StageOutcomes",
    "TranscriptWriter",
    "iter_outcomes",
    "iter_plan",
    "iter_stored_transcripts",
    "write_lines",
]


class PlannedLine(msgspec.Struct, frozen=True, array_like=True):
    """One transcript of a stage's plan: its index and the judge indices that ran for it."""

    index: int
    judges: tuple[int, ...]


class StageOutcomes(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The verdicts of one transcript's steps that ran so far (by step name)."""

    index: int
    verdicts: dict[str, JudgeVerdict] = {}


class TranscriptWriter(JsonlWriter):
    """Streams transcripts to the job's ``transcripts.jsonl`` (0600); ``close`` fsyncs it.

    Example::

        with TranscriptWriter(store.transcripts_path) as kept:
            kept.write(transcript)
    """

    __slots__ = ()
    exists_message = (
        "the job's transcripts file already exists; an earlier submit was interrupted: run "
        "the same submit again"
    )

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(path)

    def write(self, transcript: Transcript) -> None:
        """Append one transcript."""
        self.append(transcript)


_T = TypeVar("_T")


def _lines(path: Path, decoder: msgspec.json.Decoder[_T], what: str) -> Iterator[_T]:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise BatchValidationError(
            f"the job's {what} file is gone from its state folder, so the pipeline cannot go "
            "on; restore the folder, or cancel the job and submit again",
            path=path,
        ) from None

    def bad_line(exc: Exception, number: int) -> BatchValidationError:
        return BatchValidationError(
            f"the job's {what} file is damaged ({exc}); cancel the job and submit again",
            path=path,
            line=number,
        )

    with file:
        yield from decode_lines(file, decoder, bad_line)


_transcript_decoder = msgspec.json.Decoder(Transcript)
_plan_decoder = msgspec.json.Decoder(PlannedLine)
_outcomes_decoder = msgspec.json.Decoder(StageOutcomes)


def iter_stored_transcripts(path: Path) -> Iterator[Transcript]:
    """The transcripts kept by :class:`TranscriptWriter`, in index order."""
    return _lines(path, _transcript_decoder, "transcripts")


def iter_plan(path: Path) -> Iterator[tuple[int, tuple[int, ...]]]:
    """A stage's plan: ``(transcript, judge indices)`` in transcript order."""
    for item in _lines(path, _plan_decoder, "stage plan"):
        yield item.index, item.judges


def iter_outcomes(path: Path | None) -> Iterator[StageOutcomes]:
    """The outcomes file's lines in transcript order (nothing when ``path`` is None)."""
    if path is None:
        return
    yield from _lines(path, _outcomes_decoder, "stage outcomes")


def write_lines(path: Path, items: Iterable[msgspec.Struct]) -> int:
    """Write ``items`` as JSON lines to ``path`` atomically (0600); return how many."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_writer(path) as file:
        spool = LineSpool(file)
        for item in items:
            spool.append(item)
        spool.flush()
    return spool.count
