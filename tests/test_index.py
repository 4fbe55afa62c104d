"""The transcript index: streamed out, streamed back, looked up without loading it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro import BatchValidationError
from kyro._transcript_index import (
    IndexEntry,
    TranscriptIndexReader,
    TranscriptIndexWriter,
    iter_index,
)
from kyro._transcripts import Transcript


def sample() -> list[Transcript]:
    return [
        Transcript(index=0, source="inline:0", value="user: hi\n\nassistant:   hello"),
        Transcript(index=1, source="data/t1.json", value={"q": "ünï ✓", "turns": [1, 2]}),
        Transcript(index=2, source="data/set.jsonl:3", value="x" * 500),
        Transcript(index=3, source="inline:3", value=""),
    ]


def write(path: Path, transcripts: list[Transcript]) -> None:
    with TranscriptIndexWriter(path) as index:
        for transcript in transcripts:
            index.write(transcript)


def test_round_trip(tmp_path: Path) -> None:
    """Entries read back carry the index, source and a one-line preview of each transcript."""
    path = tmp_path / "transcripts.index.jsonl"
    write(path, sample())
    entries = list(iter_index(path))
    assert [(e.index, e.source) for e in entries] == [(t.index, t.source) for t in sample()]
    assert entries[0].preview == "user: hi assistant: hello"
    assert entries[1].preview == '{"q":"ünï ✓","turns":[1,2]}'
    assert len(entries[2].preview) == 80
    assert entries[2].preview.endswith("…")
    assert entries[3] == IndexEntry(index=3, source="inline:3")
    assert path.read_bytes().count(b"\n") == 4


def test_many_entries_stream_through_the_buffer(tmp_path: Path) -> None:
    """Tens of thousands of entries (several buffer flushes) come back complete and in order."""
    path = tmp_path / "index.jsonl"
    many = [
        Transcript(index=i, source=f"f{i}.txt", value=f"line {i}\n" * 10) for i in range(30_000)
    ]
    write(path, many)
    assert [e.index for e in iter_index(path)] == list(range(30_000))


def test_reader_looks_up_forward_and_backward(tmp_path: Path) -> None:
    """Ascending lookups read forward; an earlier index starts over; unknown ones are None."""
    path = tmp_path / "index.jsonl"
    write(path, [t for t in sample() if t.index != 2])
    with TranscriptIndexReader(path) as reader:
        first = reader.get(0)
        assert first is not None
        assert first.source == "inline:0"
        assert reader.get(0) == first
        assert reader.get(2) is None
        found = reader.get(3)
        assert found is not None
        assert found.source == "inline:3"
        again = reader.get(1)
        assert again is not None
        assert again.source == "data/t1.json"
        assert reader.get(99) is None


def test_existing_index_is_not_overwritten(tmp_path: Path) -> None:
    """Writing over an existing index file is refused."""
    path = tmp_path / "index.jsonl"
    path.write_text("keep")
    with pytest.raises(BatchValidationError, match="already exists"):
        TranscriptIndexWriter(path)
    assert path.read_text() == "keep"


def test_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    """A broken line is reported with the file and its line number."""
    path = tmp_path / "index.jsonl"
    path.write_text('{"index":0,"source":"a"}\nnot json\n')
    with pytest.raises(BatchValidationError, match=r"index.jsonl:2: bad transcript index line"):
        list(iter_index(path))
