"""Disks that fail: :class:`~kyro._files.DurableIO` doubles for a job's state folder.

A store (``BatchJudge(disk=...)``, ``StateStore(disk=...)``) writes its state, downloads and
results through one of these instead of the local disk, so a test sees kyro meet a full disk
or a folder that refuses new files without patching the standard library, and without
needing to run as a user whom folder permissions stop (root ignores them).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal

from kyro._files import LOCAL_DISK, DurableIO

__all__ = ["DISK_FAULTS", "DiskFault", "FailingDisk", "KillingDisk"]

DiskFault = Literal["enospc", "eacces"]
DISK_FAULTS: tuple[DiskFault, ...] = ("enospc", "eacces")
"""``enospc``: writing fails as on a full disk; ``eacces``: creating the temp file is refused."""


class _FullFile(io.BytesIO):
    """A file every write of which fails with ENOSPC."""

    def write(self, data: object, /) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FailingDisk:
    """Atomic writes whose target matches ``where`` fail with ``fault``; others are real.

    ``where`` matches a part of the target's file name (``batch-state``, ``results-``) or
    its folder's name (``downloads``); empty matches every write. On ``enospc`` the real
    temp file is created and then a write fails, so the real clean-up runs. ``failed``
    lists the targets that failed, so a test can tell the fault was met.

    Example::

        judge = BatchJudge(provider, "judges.yml", disk=FailingDisk("enospc", "downloads"))
    """

    def __init__(self, fault: DiskFault, where: str = "", *, inner: DurableIO = LOCAL_DISK) -> None:
        self.fault = fault
        self.where = where
        self.inner = inner
        self.failed: list[Path] = []

    def _matches(self, path: Path) -> bool:
        return self.where in path.name or path.parent.name == self.where

    @contextlib.contextmanager
    def atomic_writer(self, path: Path, mode: int = 0o600) -> Iterator[IO[bytes]]:
        """The inner writer, or one that fails as the fault says when ``path`` matches."""
        if not self._matches(path):
            with self.inner.atomic_writer(path, mode) as file:
                yield file
            return
        self.failed.append(path)
        if self.fault == "eacces":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
        with self.inner.atomic_writer(path, mode):
            yield _FullFile()

    def atomic_write(self, path: Path, data: bytes, mode: int = 0o600) -> None:
        """Write ``data`` through :meth:`atomic_writer`."""
        with self.atomic_writer(path, mode) as file:
            file.write(data)


class KillingDisk:
    """The local disk, except that the process kills itself (SIGKILL) around a write.

    ``before(path)`` / ``after(path)`` say whether to die just before, or just after, a write
    of ``path`` is durable. SIGKILL leaves kyro no ``finally``, no ``atexit``, no flush.

    Example::

        disk = KillingDisk(before=lambda path: path.name.endswith(".batch-state.json"))
    """

    def __init__(
        self,
        *,
        before: Callable[[Path], bool] = lambda path: False,
        after: Callable[[Path], bool] = lambda path: False,
        inner: DurableIO = LOCAL_DISK,
    ) -> None:
        self.before = before
        self.after = after
        self.inner = inner

    @contextlib.contextmanager
    def atomic_writer(self, path: Path, mode: int = 0o600) -> Iterator[IO[bytes]]:
        """The inner writer, with the process killed before or after it as configured."""
        if self.before(path):
            os.kill(os.getpid(), signal.SIGKILL)
        with self.inner.atomic_writer(path, mode) as file:
            yield file
        if self.after(path):
            os.kill(os.getpid(), signal.SIGKILL)

    def atomic_write(self, path: Path, data: bytes, mode: int = 0o600) -> None:
        """Write ``data`` through :meth:`atomic_writer`."""
        with self.atomic_writer(path, mode) as file:
            file.write(data)
