"""Shard files on disk: written in chunks, hashed as they are written, fsynced at the end.

The fsync at the end stays cheap because the disk is kept busy meanwhile: every 8 MiB
written, the file's new pages are handed to the kernel's writeback
(``posix_fadvise(POSIX_FADV_DONTNEED)``, which on Linux starts writing dirty pages out
without waiting for them, and drops none that are still dirty), so by the time of the fsync
most of the file is already on disk. Where the call does not exist or fails, nothing changes
but the fsync's length.

The builder fills a buffer per shard and writes it here every 1 MiB. Writing and hashing stay
on the builder's thread on purpose: a helper thread was tried and measured slower, because it
must win the GIL back after every chunk (a 5 ms switch interval each time) while the builder
keeps it busy encoding. Measured again with 4 and 8 MiB chunks handed to a writer thread (hash,
write and fsync there, at most two chunks queued): no faster than 1 MiB inline, because
filling a fresh multi-MiB buffer costs the builder more than the overlap saves.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from kyro._exceptions import BatchValidationError
from kyro._files import private_opener

__all__ = ["ShardFile"]


_WRITEBACK_EVERY = 8 << 20
_fadvise = getattr(os, "posix_fadvise", None)
_DONTNEED: int = getattr(os, "POSIX_FADV_DONTNEED", 0)


class ShardFile:
    """One shard file being written, and the running sha256 of what was written."""

    __slots__ = ("file", "hasher", "path", "size", "written_back")

    def __init__(self, path: Path) -> None:
        self.path = path
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
            try:
                _fadvise(
                    self.file.fileno(), self.written_back, self.size - self.written_back, _DONTNEED
                )
            except OSError:  # only a hint: the fsync at the end writes what is left
                pass
            self.written_back = self.size

    def finish(self) -> None:
        """Flush to stable storage (fsync) and close."""
        try:
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def abandon(self) -> None:
        """Close without syncing (the file is about to be deleted)."""
        self.file.close()
