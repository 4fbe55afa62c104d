"""The transcript index: one JSONL line per transcript, so results can be reported later
without the transcripts.

Each line is ``{"index": 12, "source": "data/t12.json", "preview": "user: hi …"}``, written in
the order transcripts are planned (index order). The preview is the first ~80 characters of the
text, or of the compact JSON of a structured transcript, squeezed onto one line
(:func:`kyro._transcripts.transcript_preview`).

Reading never needs the whole file in memory: :func:`iter_index` streams it, and
:class:`TranscriptIndexReader` answers lookups in ascending index order — the order an
aggregator walks results in — by reading forward.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from kyro._exceptions import BatchValidationError
from kyro._files import ClosedOnExit, LineSpool, decode_lines, private_opener
from kyro._transcripts import Transcript, transcript_preview

__all__ = [
    "INDEX_FILENAME",
    "IndexEntry",
    "JsonlWriter",
    "TranscriptIndexReader",
    "TranscriptIndexWriter",
    "iter_index",
]

INDEX_FILENAME = "transcripts.index.jsonl"
PREVIEW_CHARS = 80


class IndexEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One transcript in the index: its index, where it came from, and a short preview.

    Example::

        IndexEntry(index=0, source="inline:0", preview="user: hi assistant: hello")
    """

    index: int
    source: str
    preview: str = ""


_decoder = msgspec.json.Decoder(IndexEntry)


def _preview(value: str | dict[str, Any] | list[Any]) -> str:
    """:func:`transcript_preview` of at most the first 160 characters of a text (faster)."""
    if not isinstance(value, str):
        return transcript_preview(value, PREVIEW_CHARS)
    head = value[: PREVIEW_CHARS * 2]
    flat = " ".join(head.split())
    if len(flat) <= PREVIEW_CHARS and len(value) == len(head):
        return flat
    return flat[: PREVIEW_CHARS - 1].rstrip() + "…"


class JsonlWriter(LineSpool, ClosedOnExit):
    """Streams msgspec objects as JSON lines to a new file (0600); ``close`` flushes and fsyncs.

    Refuses to overwrite an existing file (``exists_message`` says why, per subclass).

    Example::

        with JsonlWriter(path) as out:
            out.append(entry)
    """

    __slots__ = ("path",)
    exists_message = "this file already exists; delete it first"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            file = open(self.path, "xb", buffering=0, opener=private_opener)  # noqa: SIM115
        except FileExistsError:
            raise BatchValidationError(self.exists_message, path=self.path) from None
        super().__init__(file)

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if self.file.closed:
            return
        try:
            self.flush()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()


class TranscriptIndexWriter(JsonlWriter):
    """Streams index lines to ``path`` through a buffer; ``close`` flushes and fsyncs.

    Refuses to overwrite an existing file (a leftover index belongs to another plan).

    Example::

        with TranscriptIndexWriter(directory / INDEX_FILENAME) as index:
            for transcript in transcripts:
                index.write(transcript)
    """

    __slots__ = ()
    exists_message = (
        "a transcript index already exists here; write the plan to an empty directory "
        "or delete the old files first"
    )

    def write(self, transcript: Transcript, text: str | None = None) -> None:
        """Append the entry for ``transcript``; ``text``, when given, is its structured
        value's compact JSON (what ``{{input}}`` renders it to), made once by the caller."""
        value = transcript.value
        preview = transcript_preview(text, PREVIEW_CHARS) if text is not None else _preview(value)
        self.append(IndexEntry(index=transcript.index, source=transcript.source, preview=preview))


def iter_index(path: str | os.PathLike[str]) -> Iterator[IndexEntry]:
    """Stream the entries of an index file, in file order.

    Example::

        for entry in iter_index(".kyro/judges/transcripts.index.jsonl"):
            print(entry.index, entry.source)
    """

    def bad_line(exc: Exception, number: int) -> BatchValidationError:
        return BatchValidationError(
            f"bad transcript index line: {exc}", path=os.fspath(path), line=number
        )

    with open(path, "rb") as file:
        yield from decode_lines(file, _decoder, bad_line)


class TranscriptIndexReader(ClosedOnExit):
    """Look entries up by transcript index while holding one line at a time.

    Lookups in ascending order read forward; a lookup behind the current position starts
    over from the top of the file, so any order works, and ascending order is fast.

    Example::

        with TranscriptIndexReader(path) as index:
            for evaluation in evaluations:            # ascending transcript index
                entry = index.get(evaluation.index)   # IndexEntry or None
    """

    __slots__ = ("_current", "_entries", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: Iterator[IndexEntry] = iter_index(self.path)
        self._current: IndexEntry | None = None

    def get(self, index: int) -> IndexEntry | None:
        """The entry for transcript ``index``, or None if the index has none."""
        current = self._current
        if current is not None and current.index > index:
            self._restart()
            current = None
        if current is not None and current.index == index:
            return current
        for entry in self._entries:
            self._current = entry
            if entry.index == index:
                return entry
            if entry.index > index:
                return None
        return None

    def _restart(self) -> None:
        self.close()
        self._entries = iter_index(self.path)
        self._current = None

    def close(self) -> None:
        """Close the underlying file."""
        close = getattr(self._entries, "close", None)
        if close is not None:
            close()
