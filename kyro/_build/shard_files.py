"""Shard files on disk: written in chunks, hashed as they are written, fsynced at the end.

The fsync at the end stays cheap because the disk is kept busy meanwhile: every 8 MiB
written, the file's new pages are handed to the kernel's writeback
(``posix_fadvise(POSIX_FADV_DONTNEED)``, which on Linux starts writing dirty pages out
without waiting for them, and drops none that are still dirty), so by the time of the fsync
most of the file is already on disk. Where the call does not exist or fails, nothing changes
but the fsync's length.

Written pages are not all the fsync waits for: each one also makes the disk flush its own
cache, which on a virtual disk can take a few hundred milliseconds when much was written
since the last flush. So every 16 MiB a background thread ``fdatasync``s what is written so
far (the call waits outside the GIL; at most one runs per file), and the fsync at the end
has only the last few megabytes to flush. An error of a background sync is kept and raised by
:meth:`ShardFile.finish` (the kernel reports a write error once, so the final fsync might
not see it again): a failed write is never taken for a durable file.

The builder fills a buffer per shard and writes it here every 1 MiB. Writing and hashing stay
on the builder's thread on purpose: a helper thread was tried and measured slower, because it
must win the GIL back after every chunk (a 5 ms switch interval each time) while the builder
keeps it busy encoding. Measured again with 4 and 8 MiB chunks handed to a writer thread (hash,
write and fsync there, at most two chunks queued): no faster than 1 MiB inline, because
filling a fresh multi-MiB buffer costs the builder more than the overlap saves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from kyro._exceptions import BatchValidationError
from kyro._files import private_opener

__all__ = ["ShardFile"]


_WRITEBACK_EVERY = 8 << 20
_SYNC_EVERY = 16 << 20
_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
_fadvise = getattr(os, "posix_fadvise", None)
_DONTNEED: int = getattr(os, "POSIX_FADV_DONTNEED", 0)


class ShardFile:
    """One shard file being written, and the running sha256 of what was written."""

    __slots__ = (
        "_datasync",
        "_sync_error",
        "_synced",
        "_syncing",
        "file",
        "hasher",
        "path",
        "size",
        "written_back",
    )

    def __init__(self, path: Path, *, datasync: Callable[[int], None] = _fdatasync) -> None:
        self.path = path
        self._datasync = datasync  # what the background thread calls with the descriptor
        self._synced = 0  # bytes written when the last background sync started
        self._syncing: threading.Thread | None = None
        self._sync_error: OSError | None = None
        try:
            self.file = open(path, "xb", buffering=0, opener=private_opener)  # noqa: SIM115
        except FileExistsError:
            raise BatchValidationError(
                "a shard file already exists here; write the plan to an empty directory or "
                "delete the old files first",
                path=path,
            ) from None
        self.hasher = hashlib.sha256()
        self.size = 0  # bytes written
        self.written_back = 0  # bytes handed to the kernel's writeback

    def write(self, chunk: bytes | bytearray) -> None:
        """Hash ``chunk`` and write all of it."""
        self.hasher.update(chunk)
        with memoryview(chunk) as view:
            while view:
                written = self.file.write(view)
                view = view[written or 0 :]
        self.size += len(chunk)
        if self.size - self.written_back >= _WRITEBACK_EVERY and _fadvise is not None:
            # Only a hint: the fsync at the end writes what is left.
            with contextlib.suppress(OSError):
                _fadvise(
                    self.file.fileno(), self.written_back, self.size - self.written_back, _DONTNEED
                )
            self.written_back = self.size
        if self.size - self._synced >= _SYNC_EVERY and (
            self._syncing is None or not self._syncing.is_alive()
        ):
            self._synced = self.size
            self._syncing = threading.Thread(target=self._sync, name="kyro-shard-sync", daemon=True)
            self._syncing.start()

    def _sync(self) -> None:
        """Flush what is written so far (on the background thread); keep an error."""
        try:
            self._datasync(self.file.fileno())
        except OSError as exc:
            self._sync_error = exc

    def _wait(self) -> None:
        if self._syncing is not None:
            self._syncing.join()
            self._syncing = None

    def finish(self) -> None:
        """Flush to stable storage (fsync) and close; raises a background sync's error."""
        try:
            self._wait()
            if self._sync_error is not None:
                raise self._sync_error
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def abandon(self) -> None:
        """Close without syncing (the file is about to be deleted)."""
        try:
            self._wait()
        finally:
            self.file.close()
