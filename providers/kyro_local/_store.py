"""Where local batches live on disk, so a later process can poll them and read their results.

One folder per batch under the provider's ``state_dir``::

    <state_dir>/<batch_id>/batch.json     the record: metadata, state, counts, owner process
    <state_dir>/<batch_id>/input.jsonl    the shard (a hard link, or a copy across devices)
    <state_dir>/<batch_id>/output.jsonl   one outcome per finished request, appended as they end
    <state_dir>/<batch_id>/cancel         present once another process asked for a cancel

``batch.json`` is replaced atomically (temp file in the folder, fsync, ``os.replace``); every
file is mode 0600 and every folder 0700, since replies may quote the transcripts. No secret is
ever written here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from kyro.provider import BatchError, BatchState, RequestCounts

__all__ = [
    "BatchRecord",
    "BatchStore",
    "count_lines",
    "owner_alive",
    "read_line_chunks",
]

_CHUNK_BYTES = 1 << 20


class BatchRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The persisted description of one local batch (``batch.json``)."""

    batch_id: str
    state: BatchState
    metadata: dict[str, str] = {}
    created_at: float
    finished_at: float | None = None
    counts: RequestCounts = RequestCounts()
    endpoint: str = ""
    pid: int | None = None
    host: str | None = None
    errors: tuple[BatchError, ...] = ()


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BatchRecord)


class BatchStore:
    """The batch folders under one ``state_dir``.

    Example::

        store = BatchStore(Path(".kyro/local"))
        record = store.read("batch_local_0123abcd")
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_id(self) -> str:
        """A fresh, unguessable batch id that is also a safe folder name."""
        return f"batch_local_{secrets.token_hex(12)}"

    def folder(self, batch_id: str) -> Path:
        """The folder of ``batch_id`` (which must be a plain name, never a path)."""
        if not batch_id or "/" in batch_id or "\\" in batch_id or batch_id.startswith("."):
            raise ValueError(f"not a local batch id: {batch_id!r}")
        return self.root / batch_id

    def create(self, record: BatchRecord, shard: Path) -> None:
        """Make the batch folder, keep the shard in it, and write the first record."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self.folder(record.batch_id)
        folder.mkdir(mode=0o700)
        target = folder / "input.jsonl"
        try:
            os.link(shard, target)
        except OSError:
            shutil.copyfile(shard, target)
            os.chmod(target, 0o600)
        self.write(record)

    def write(self, record: BatchRecord) -> None:
        """Replace ``batch.json`` atomically: temp file, fsync, ``os.replace``."""
        folder = self.folder(record.batch_id)
        tmp = folder / f".batch.json.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_encoder.encode(record))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, folder / "batch.json")
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def read(self, batch_id: str) -> BatchRecord | None:
        """The record of ``batch_id``, or None when there is no such batch."""
        try:
            data = (self.folder(batch_id) / "batch.json").read_bytes()
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        return _decoder.decode(data)

    def records(self) -> Iterator[BatchRecord]:
        """Every readable batch record under the root (unreadable folders are skipped)."""
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir():
                continue
            try:
                record = self.read(entry.name)
            except (OSError, msgspec.DecodeError):
                continue
            if record is not None:
                yield record

    def open_output(self, batch_id: str) -> IO[bytes]:
        """``output.jsonl`` opened for appending (created 0600)."""
        path = self.folder(batch_id) / "output.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")

    def request_cancel(self, batch_id: str) -> None:
        """Leave the cancel marker that the process running the batch watches for."""
        path = self.folder(batch_id) / "cancel"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))

    def cancel_requested(self, batch_id: str) -> bool:
        """Whether another process asked for this batch to stop."""
        return (self.folder(batch_id) / "cancel").exists()


def owner_alive(record: BatchRecord) -> bool:
    """Whether the process that runs ``record``'s batch may still be running.

    A batch owned by another host is assumed alive (its process cannot be checked from here).
    """
    if record.pid is None or record.host != socket.gethostname():
        return True
    if record.pid == os.getpid():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_line_chunks(fh: IO[bytes], max_lines: int) -> list[bytes]:
    """Up to ``max_lines`` lines (about 1 MiB at most) from ``fh``; empty at end of file.

    Run in a worker thread, so the event loop pays one hop per chunk, not per line.
    """
    lines: list[bytes] = []
    size = 0
    while len(lines) < max_lines and size < _CHUNK_BYTES:
        line = fh.readline()
        if not line:
            break
        lines.append(line)
        size += len(line)
    return lines


def count_lines(path: Path) -> int:
    """Non-blank lines in ``path``, read in one pass with constant memory."""
    total = 0
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                total += 1
    return total
