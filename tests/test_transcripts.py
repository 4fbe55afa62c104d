"""Transcripts from every kind of source, produced lazily with running indices."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from itertools import islice
from pathlib import Path

import pytest

from kyro import BatchValidationError
from kyro._config.templates import Template
from kyro._transcripts import (
    Transcript,
    TranscriptItem,
    aiter_transcripts,
    iter_transcripts,
    transcript_preview,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "transcripts"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A folder with one file of each kind, plus files a directory walk must skip."""
    (tmp_path / "b.json").write_text('{"request": "q1", "response": "r1"}', encoding="utf-8")
    (tmp_path / "a.txt").write_text("user: hi\n", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text('{"request": "q2"}\n\n  \n"plain line"\n', encoding="utf-8")
    (tmp_path / "notes.md").write_text("skip me", encoding="utf-8")
    (tmp_path / ".hidden.json").write_text("{}", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("not read", encoding="utf-8")
    return tmp_path


def pairs(transcripts: list[Transcript]) -> list[tuple[int, str, object]]:
    return [(t.index, t.source, t.value) for t in transcripts]


def test_every_kind_in_one_mix(data: Path) -> None:
    """Inline text, dicts, Paths, path strings and .jsonl lines share one running index."""
    items: list[TranscriptItem] = [
        "inline text",
        data / "b.json",
        str(data / "a.txt"),
        {"request": "d"},
        data / "c.jsonl",
    ]
    assert pairs(list(iter_transcripts(items))) == [
        (0, "inline:0", "inline text"),
        (1, str(data / "b.json"), {"request": "q1", "response": "r1"}),
        (2, str(data / "a.txt"), "user: hi\n"),
        (3, "inline:3", {"request": "d"}),
        (4, f"{data / 'c.jsonl'}:1", {"request": "q2"}),
        (5, f"{data / 'c.jsonl'}:4", "plain line"),
    ]


def test_directory_is_sorted_flat_and_filtered(data: Path) -> None:
    """A directory yields its .json/.jsonl/.txt files in name order, without sub-folders."""
    sources = [t.source for t in iter_transcripts(str(data))]
    assert sources == [
        str(data / "a.txt"),
        str(data / "b.json"),
        f"{data / 'c.jsonl'}:1",
        f"{data / 'c.jsonl'}:4",
    ]


def test_single_items_are_not_iterated() -> None:
    """A lone string or dict is one transcript, not a sequence of characters or keys."""
    assert pairs(list(iter_transcripts("abc"))) == [(0, "inline:0", "abc")]
    assert pairs(list(iter_transcripts({"a": 1}))) == [(0, "inline:0", {"a": 1})]


def test_string_rule_inline_versus_path(tmp_path: Path) -> None:
    """Multi-line strings are inline; one-line strings with a transcript suffix are paths."""
    looks_like_path = "see notes.txt\nfor details.txt"
    assert next(iter_transcripts(looks_like_path)).value == looks_like_path
    assert next(iter_transcripts("notes.md")).value == "notes.md"
    with pytest.raises(BatchValidationError) as info:
        list(iter_transcripts(str(tmp_path / "missing.txt")))
    assert (
        str(info.value) == f"{tmp_path / 'missing.txt'}: transcript file not found; check the path"
    )
    with pytest.raises(BatchValidationError, match="not found"):
        list(iter_transcripts("no-such-folder/"))


def test_json_string_and_other_json_values(tmp_path: Path) -> None:
    """A .json string is a text transcript; a number is refused naming what it got."""
    (tmp_path / "s.json").write_text('"just text"', encoding="utf-8")
    (tmp_path / "n.json").write_text("42", encoding="utf-8")
    assert next(iter_transcripts(tmp_path / "s.json")).value == "just text"
    with pytest.raises(BatchValidationError) as info:
        list(iter_transcripts(tmp_path / "n.json"))
    assert info.value.path == str(tmp_path / "n.json")
    assert (
        info.value.message == "a transcript must be a JSON object, array or string, got a JSON int"
    )


def test_json_array_is_a_chat_transcript(tmp_path: Path) -> None:
    """A .json array (a chat message list) is one transcript whose fields templates can reach."""
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    (tmp_path / "chat.json").write_text(json.dumps(chat), encoding="utf-8")
    (transcript,) = iter_transcripts(tmp_path / "chat.json")
    assert transcript.value == chat
    template = Template("All: {{input}} | first: {{input.0.content}}", judge="j")
    rendered = template.render(transcript, {})
    assert rendered == (
        'All: [{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}] | first: Hi'
    )


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    """Malformed JSON in a .json file names the file."""
    (tmp_path / "bad.json").write_text('{"a": ', encoding="utf-8")
    with pytest.raises(BatchValidationError) as info:
        list(iter_transcripts(tmp_path / "bad.json"))
    assert (info.value.path, info.value.line) == (str(tmp_path / "bad.json"), None)
    assert info.value.message.startswith("invalid JSON (")


def test_invalid_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    """A malformed .jsonl line is reported with its 1-based line number."""
    path = tmp_path / "set.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n', encoding="utf-8")
    it = iter_transcripts(path)
    assert next(it).value == {"a": 1}
    with pytest.raises(BatchValidationError) as info:
        next(it)
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: invalid JSON")


@pytest.mark.parametrize(
    ("name", "data", "line", "where"),
    [
        ("t.txt", b"ok\n\xff", None, "at byte 3;"),
        ("t.json", b'{"a": "\xff"}', None, "at byte 7;"),
        ("t.jsonl", b'{}\n"\xfe"\n', 2, "at byte 1 of the line;"),
    ],
)
def test_non_utf8_bytes_are_refused(
    tmp_path: Path, name: str, data: bytes, line: int | None, where: str
) -> None:
    """Bytes that are not UTF-8 give kyro's own error naming the file, line and byte position."""
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BatchValidationError) as info:
        list(iter_transcripts(tmp_path / name))
    assert (info.value.path, info.value.line) == (str(tmp_path / name), line)
    assert info.value.message == f"transcript is not UTF-8 text {where} save the file as UTF-8"


def test_unsupported_suffix_and_item_type(tmp_path: Path) -> None:
    """An explicit Path with another suffix, an empty folder or a foreign object is refused."""
    (tmp_path / "t.csv").write_text("a,b", encoding="utf-8")
    with pytest.raises(BatchValidationError, match=r"unsupported transcript file type '.csv'"):
        list(iter_transcripts(tmp_path / "t.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchValidationError, match=r"directory has no \.json, \.jsonl or \.txt"):
        list(iter_transcripts(tmp_path / "empty"))
    with pytest.raises(BatchValidationError, match="unsupported transcript item of type int"):
        list(iter_transcripts(["ok", 3]))  # type: ignore[list-item]


def test_large_jsonl_is_read_lazily(tmp_path: Path) -> None:
    """Taking 3 transcripts of a 100,000-line file reads neither the rest nor its broken end."""
    path = tmp_path / "big.jsonl"
    line = json.dumps({"request": "q" * 40, "response": "r" * 40}) + "\n"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(line for _ in range(100_000))
        handle.write("{broken\n")
    tracemalloc.start()
    try:
        first = list(islice(iter_transcripts([path, "after"]), 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [t.source for t in first] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    assert peak < 1_000_000  # the file is about 10 MB


def test_full_jsonl_stream_counts_every_line(tmp_path: Path) -> None:
    """Streaming a whole 100,000-line file yields every line in order with its index."""
    path = tmp_path / "big.jsonl"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(100_000)), encoding="utf-8")
    count = 0
    for transcript in iter_transcripts(path):
        assert transcript.value == {"n": transcript.index}
        count += 1
    assert count == 100_000


async def test_async_iterable_of_mixed_items(data: Path) -> None:
    """An async iterable of items is expanded like a sync one, indices running across."""

    async def items() -> AsyncIterator[object]:
        yield "first"
        yield data / "c.jsonl"
        yield {"request": "last"}

    got = [t async for t in aiter_transcripts(items())]  # type: ignore[arg-type]
    assert pairs(got) == [
        (0, "inline:0", "first"),
        (1, f"{data / 'c.jsonl'}:1", {"request": "q2"}),
        (2, f"{data / 'c.jsonl'}:4", "plain line"),
        (3, "inline:3", {"request": "last"}),
    ]


async def test_async_over_sync_items_matches_sync(tmp_path: Path) -> None:
    """aiter_transcripts over a plain list gives what iter_transcripts gives, in chunks."""
    path = tmp_path / "set.jsonl"
    path.write_text("".join(f'"line {i}"\n' for i in range(1000)), encoding="utf-8")
    items: list[TranscriptItem] = ["x", path, {"k": 1}]
    assert [t async for t in aiter_transcripts(items)] == list(iter_transcripts(items))


async def test_async_errors_propagate(tmp_path: Path) -> None:
    """A broken file read in the worker thread raises the same BatchValidationError."""
    with pytest.raises(BatchValidationError, match="transcript file not found"):
        [t async for t in aiter_transcripts(tmp_path / "gone.json")]


def test_bundled_example_transcripts() -> None:
    """The examples folder yields 3 JSON, 20 dataset lines and 2 text transcripts."""
    transcripts = list(iter_transcripts(EXAMPLES))
    assert len(transcripts) == 25
    assert [t.index for t in transcripts] == list(range(25))
    assert sum(isinstance(t.value, str) for t in transcripts) == 2
    assert all(
        set(t.value) == {"request", "response", "contexts"}
        for t in transcripts
        if isinstance(t.value, dict)
    )


def test_transcript_preview() -> None:
    """Previews flatten whitespace, show structured values as JSON and mark a cut with …."""
    assert transcript_preview("user: hi\n\nassistant:   hello", limit=15) == "user: hi assis…"
    assert transcript_preview({"a": 1}) == '{"a":1}'
    assert transcript_preview("short") == "short"
    assert len(transcript_preview("x" * 500, limit=80)) == 80


def test_transcript_preview_whitespace_heavy_head() -> None:
    """A head mostly whitespace still previews the words further on; a cut lands on a word."""
    spaced = " \n\t" * 30 + "word " * 40
    assert transcript_preview(spaced, limit=40) == " ".join(["word"] * 8) + "…"
    assert transcript_preview(" " * 150 + "tail") == "tail"
    assert transcript_preview(" " * 400 + "tail") == "…"
    assert transcript_preview("ab " * 40, limit=10) == "ab ab ab…"
    assert transcript_preview("\u2014 " * 10, limit=80) == " ".join(["\u2014"] * 10)
