"""Transcripts: the items judges evaluate, produced lazily from any mix of sources.

``iter_transcripts`` / ``aiter_transcripts`` accept one item or an iterable (sync or, for the
async one, async) of items, in any mix:

* ``dict`` (any mapping) — a structured transcript (``request``, ``response``, ``contexts``,
  ``functions``, ``expected_output`` or any fields); source ``inline:<index>``.
* ``str`` — inline text or a path, decided by this rule:

  - a string containing a line break (``\\n`` or ``\\r``) is always inline text;
  - otherwise it is a path when it ends in ``.json``, ``.jsonl`` or ``.txt`` (any case), ends in
    ``/``, or names an existing directory — and such a path that does not exist is an error
    (``file not found``), never silently inline text;
  - anything else is inline text. To pass a one-line text that looks like a path, give
    ``{"text": ...}`` or add a trailing newline.

* ``pathlib.Path`` (any ``os.PathLike``) — always a path.
* a ``.json`` file — an object or an array (a chat message list, say) becomes a structured
  transcript (``{{input}}`` is its compact JSON, ``{{input.0.content}}`` a field), a JSON
  string a text one; any other JSON value (a number, true, null) is an error.
* a ``.txt`` file — its text as is (a leading UTF-8 byte-order mark is dropped).
* a ``.jsonl`` file — one transcript per line (an object, an array or a string), streamed;
  blank lines are skipped and use no index; the source is ``path:LINE`` (1-based).
* a directory — its ``.json``, ``.jsonl`` and ``.txt`` files in name order, not recursing into
  sub-folders and skipping hidden files; a directory without any is an error.

Indices count up from 0 across all sources. Nothing materialises the whole set: paths are read
when the iterator reaches them, and ``.jsonl`` files one line at a time. A missing or unreadable
file, invalid JSON or bytes that are not UTF-8 raise :class:`BatchValidationError` naming the
file (and, for ``.jsonl``, the line).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import msgspec

from kyro._exceptions import BatchValidationError
from kyro._limits import (
    max_bytes,
    open_regular,
    printable,
    read_regular,
    too_large,
    unreadable,
)

__all__ = [
    "Transcript",
    "TranscriptItem",
    "aiter_transcripts",
    "iter_transcripts",
    "transcript_preview",
]

TranscriptItem: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any]"
TranscriptValue: TypeAlias = "str | dict[str, Any] | list[Any]"
_Pairs: TypeAlias = "Generator[tuple[str | None, TranscriptValue], None, None]"
_SUFFIXES = (".json", ".jsonl", ".txt")
_CHUNK = 256
_LABEL = "transcript file"
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """One item to evaluate: its position in the input, where it came from, and its value.

    ``value`` is text (an inline string, a ``.txt`` file) or structured data (a dict, or the
    object or array of a ``.json`` file or a ``.jsonl`` line). ``source`` is a path
    (``data/t1.json``; ``data/set.jsonl:17`` for a dataset line) or ``inline:<index>`` for
    values given in code.

    Example::

        Transcript(index=0, source="inline:0", value="user: hi\\nassistant: hello")
    """

    index: int
    source: str
    value: str | dict[str, Any] | list[Any]


def iter_transcripts(
    items: TranscriptItem | Iterable[TranscriptItem],
) -> Iterator[Transcript]:
    """Yield a :class:`Transcript` per item, lazily, numbering them from 0 across all sources.

    Example::

        for t in iter_transcripts(["user: hi", Path("t1.json"), "data/", {"request": "q"}]):
            print(t.index, t.source)
    """
    index = 0
    for item in _items(items):
        for source, value in _expand(item):
            yield Transcript(index=index, source=source or f"inline:{index}", value=value)
            index += 1


async def aiter_transcripts(
    items: TranscriptItem | Iterable[TranscriptItem] | AsyncIterable[TranscriptItem],
) -> AsyncIterator[Transcript]:
    """Like :func:`iter_transcripts`, also over async iterables; files are read in a worker thread.

    Files are read a few hundred transcripts at a time off the event loop, so a large
    ``.jsonl`` never blocks it for long.

    Example::

        async for t in aiter_transcripts(queue_reader()):
            print(t.index, t.source)
    """
    index = 0
    if isinstance(items, AsyncIterable):
        async for item in items:
            async for source, value in _aexpand(item):
                yield Transcript(index=index, source=source or f"inline:{index}", value=value)
                index += 1
        return
    for item in _items(items):
        async for source, value in _aexpand(item):
            yield Transcript(index=index, source=source or f"inline:{index}", value=value)
            index += 1


def transcript_preview(value: str | Mapping[str, Any] | list[Any], limit: int = 80) -> str:
    """A one-line preview of a transcript's value, at most ``limit`` characters.

    Whitespace runs collapse to one space; structured values show as compact JSON; a cut
    preview ends with ``…``.

    Example::

        transcript_preview("user: hi\\n\\nassistant:   hello", limit=15)   # 'user: hi assis…'
    """
    text = value if isinstance(value, str) else _encoder.encode(value).decode()
    # Words of a head of the text are the text's first words (the last one maybe cut short),
    # so when a short head already flattens past the limit, the cut preview is the same as
    # the full one's; only a head that is mostly whitespace needs the longer look.
    flat = " ".join(text[: limit + limit // 4].split())
    if len(flat) > limit:
        return flat[: max(limit - 1, 0)].rstrip() + "…"
    flat = " ".join(text[: limit * 4].split())
    if len(flat) <= limit and len(text) <= limit * 4:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


def _items(items: Any) -> Iterator[Any]:
    if isinstance(items, str | bytes | os.PathLike | Mapping):
        yield items
    else:
        yield from items


async def _aexpand(item: Any) -> AsyncIterator[tuple[str | None, TranscriptValue]]:
    if isinstance(item, Mapping) or (isinstance(item, str) and _path_of(item) is None):
        for pair in _expand(item):
            yield pair
        return
    import anyio.to_thread  # here: a synchronous plan never needs it

    pairs = _expand(item)
    try:
        while chunk := await anyio.to_thread.run_sync(_take, pairs):
            for pair in chunk:
                yield pair
    finally:
        pairs.close()


def _take(pairs: Iterator[tuple[str | None, TranscriptValue]]) -> list[Any]:
    return list(islice(pairs, _CHUNK))


def _path_of(item: str) -> Path | None:
    """The path a string names, or ``None`` when it is inline text (see the module rule)."""
    if "\n" in item or "\r" in item or not item:
        return None
    if item.lower().endswith(_SUFFIXES) or item.endswith(("/", os.sep)):
        return Path(item)
    try:
        return Path(item) if os.path.isdir(item) else None
    except (OSError, ValueError):
        return None


def _expand(item: Any) -> _Pairs:
    """(source, value) pairs for one item; ``None`` as source means inline."""
    if isinstance(item, Mapping):
        yield None, item if isinstance(item, dict) else dict(item)
        return
    if isinstance(item, str):
        path = _path_of(item)
        if path is None:
            yield None, item
            return
        yield from _path(path, item)
        return
    if isinstance(item, os.PathLike):
        yield from _path(Path(item), os.fspath(item))
        return
    raise BatchValidationError(
        f"unsupported transcript item of type {type(item).__name__}; give text, a path "
        "(.json, .jsonl, .txt or a directory) or a dict"
    )


def _path(path: Path, shown: str) -> _Pairs:
    if printable(shown) != shown:  # its name could never be written into the index or results
        raise BatchValidationError(
            "transcript file name is not UTF-8 (undecodable bytes shown as \\xNN); rename it",
            path=printable(shown),
        )
    if path.is_dir():
        yield from _directory(path, shown)
        return
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        if not path.exists():
            raise BatchValidationError("transcript file not found; check the path", path=shown)
        raise BatchValidationError(
            f"unsupported transcript file type {path.suffix or '(none)'!r}; use .json, .jsonl "
            "or .txt files, or a directory of them",
            path=shown,
        )
    if suffix == ".jsonl":
        yield from _jsonl(path, shown)
        return
    data = _read(path, shown)
    if suffix == ".txt":
        yield shown, _utf8(data, shown).removeprefix("\ufeff")
    else:
        yield shown, _json_value(data.removeprefix(b"\xef\xbb\xbf"), shown, None)


def _directory(path: Path, shown: str) -> _Pairs:
    try:
        with os.scandir(path) as entries:
            names = sorted(
                entry.name
                for entry in entries
                if not entry.name.startswith(".")
                and entry.name.lower().endswith(_SUFFIXES)
                and entry.is_file()
            )
    except OSError as exc:
        raise unreadable("transcript folder", exc, shown, "; check its permissions") from exc
    if not names:
        raise BatchValidationError(
            "directory has no .json, .jsonl or .txt transcript files (sub-folders are not "
            "searched)",
            path=shown,
        )
    for name in names:
        yield from _path(path / name, os.path.join(shown, name))


def _jsonl(path: Path, shown: str) -> _Pairs:
    limit = max_bytes(_LABEL)
    with open_regular(path, _LABEL, shown) as handle:
        number = 0
        while line := _line(handle, shown, number + 1, limit):
            number += 1
            if len(line) > limit and not line.endswith(b"\n"):
                raise too_large(_LABEL, shown, limit, number)
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if line and not line.isspace():  # (not blank; strip() would copy the line)
                yield f"{shown}:{number}", _json_value(line, shown, number)


def _line(handle: BinaryIO, shown: str, number: int, limit: int) -> bytes:
    """The next line of a dataset, read no further than ``limit`` (plus one byte)."""
    try:
        return handle.readline(limit + 1)
    except OSError as exc:
        raise unreadable(_LABEL, exc, shown, line=number) from exc


def _read(path: Path, shown: str) -> bytes:
    return read_regular(path, _LABEL, shown)


def _utf8(data: bytes, shown: str, line: int | None = None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f" at byte {exc.start}" if line is None else f" at byte {exc.start} of the line"
        raise BatchValidationError(
            f"transcript is not UTF-8 text{where}; save the file as UTF-8",
            path=shown,
            line=line,
        ) from exc


def _json_value(data: bytes, shown: str, line: int | None) -> TranscriptValue:
    # UTF-8 is checked here, not left to the JSON decoder: its error for bad bytes differs
    # between releases, and only this check can name the byte position.
    text = _utf8(data, shown, line)
    try:
        value = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        fix = "fix the line or remove it" if line else "fix the file"
        raise BatchValidationError(f"invalid JSON ({exc}); {fix}", path=shown, line=line) from exc
    except RecursionError as exc:
        raise BatchValidationError(
            "the JSON is nested too deeply to be a transcript; flatten it", path=shown, line=line
        ) from exc
    if isinstance(value, dict | str | list):
        return value
    kind = "nothing (null)" if value is None else f"a JSON {type(value).__name__}"
    raise BatchValidationError(
        f"a transcript must be a JSON object, array or string, got {kind}",
        path=shown,
        line=line,
    )
