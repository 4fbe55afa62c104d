"""Reading a local batch back: every outcome in ``output.jsonl``, then the requests with none.

Memory stays flat: output lines are streamed in chunks, and which input lines have an outcome
is one bit per line number (taken from the output line's ``id``), not a set of custom_ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec

from kyro.provider import ResultError, ResultLine, is_terminal
from kyro_local._store import BatchRecord, read_line_chunks
from kyro_openai.wire import InputId, classify_output_line, decode_output_line

__all__ = ["read_results"]

_CHUNK_LINES = 1024
_id_decoder = msgspec.json.Decoder(InputId)


class _Bits:
    """A growable bitmap of line numbers."""

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, n: int) -> None:
        index = n >> 3
        if index >= len(self._bits):
            self._bits.extend(bytes(index + 1 - len(self._bits) + len(self._bits) // 2))
        self._bits[index] |= 1 << (n & 7)

    def __contains__(self, n: int) -> bool:
        index = n >> 3
        return index < len(self._bits) and bool(self._bits[index] & (1 << (n & 7)))


async def _lines(path: Path) -> AsyncIterator[bytes]:
    try:
        fh = await anyio.to_thread.run_sync(path.open, "rb")
    except FileNotFoundError:
        return
    try:
        while chunk := await anyio.to_thread.run_sync(read_line_chunks, fh, _CHUNK_LINES):
            for line in chunk:
                yield line
    finally:
        fh.close()


def _missing_error(record: BatchRecord) -> ResultError:
    if record.state == "cancelled":
        message = f"batch {record.batch_id} was cancelled before this request finished"
        return ResultError(code="batch_cancelled", message=message, retryable=True)
    message = f"batch {record.batch_id} ended ({record.state}) before this request finished"
    return ResultError(code="missing", message=message, retryable=True)


def line_number(output_id: str) -> int | None:
    """The input line number an output line's ``id`` names, or None for a foreign id.

    kyro_local writes each result line's ``id`` as ``<batch id>_req_<n>``, ``n`` being the
    1-based line of the request in the input shard, so a reader can tell which input lines
    have an outcome without keeping every custom_id in memory.

    Example::

        line_number("batch_local_ab12_req_7")   # 7
    """
    _, sep, tail = output_id.rpartition("_req_")
    return int(tail) if sep and tail.isdigit() else None


async def read_results(folder: Path, record: BatchRecord) -> AsyncIterator[ResultLine]:
    """Yield each outcome of the batch in ``folder``, then (if it ended early) the rest.

    An unreadable line (a torn last line: the process died mid-write) is skipped, and its
    request is then reported as missing.

    Example::

        async for line in read_results(store.folder(batch_id), record):
            ...
    """
    done = _Bits()
    skipped = False
    async for raw in _lines(folder / "output.jsonl"):
        if not raw.strip():
            continue
        line = decode_output_line(raw)
        if line is None:
            skipped = True
            continue
        number = line_number(line.id or "")
        if number is not None:
            done.add(number)
        yield classify_output_line(line)
    if not is_terminal(record.state) or (record.state == "completed" and not skipped):
        return
    error = _missing_error(record)
    number = 0
    async for raw in _lines(folder / "input.jsonl"):
        number += 1
        if number in done or not raw.strip():
            continue
        try:
            custom_id = _id_decoder.decode(raw).custom_id
        except (msgspec.DecodeError, RecursionError):
            custom_id = f"line-{number}"
        yield ResultLine(custom_id=custom_id, ok=False, error=error)
