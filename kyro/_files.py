"""Durable files and a lock across processes: the disk primitives state and results rely on.

* :func:`atomic_write` / :func:`atomic_writer` — a temp file in the same folder, fsync,
  ``os.replace``, then fsync of the folder: after a crash the file is either the old one or
  the complete new one, never a torn mix. Files are created with mode 0600.
* :class:`FileLock` — an exclusive ``flock`` on a lock file, taken without blocking the
  event loop and given up after a timeout with an error that says who holds it.
  ``fcntl.flock`` is POSIX; on Windows ``msvcrt.locking`` on the first byte is used instead.
  Both are released by the OS when the holding process dies, so a crash never leaves a stale
  lock behind (the lock file itself stays; it is never deleted, which would race).
* :class:`ClosedOnExit` — ``with holder:`` gives the holder back and calls its ``close()``
  when the block ends, however it ends: the one definition of that protocol for kyro's
  writers, readers and caches.
* :class:`DurableIO` — those atomic writes as an object a state store takes
  (:data:`LOCAL_DISK` by default), so tests inject a disk that fails like a full one instead
  of patching the standard library.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, TypeVar

import msgspec

from kyro._exceptions import BatchValidationError, JobBusyError

__all__ = [
    "LOCAL_DISK",
    "ClosedOnExit",
    "DurableIO",
    "FileLock",
    "LineSpool",
    "LocalDisk",
    "atomic_write",
    "atomic_writer",
    "decode_lines",
    "fsync_dir",
    "held_briefly",
    "private_opener",
]

_C = TypeVar("_C", bound="ClosedOnExit")
_T = TypeVar("_T")
_FLUSH_AT = 1 << 20
_line_encoder = msgspec.json.Encoder()


class ClosedOnExit:
    """A mixin for objects holding open files: ``with obj:`` gives ``obj`` back and calls
    ``obj.close()`` when the block ends, on success or error alike.

    Example::

        class Reader(ClosedOnExit):
            def close(self) -> None: ...

        with Reader() as reader:
            ...
    """

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds; subclasses define it (idempotent)."""
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LineSpool:
    """JSON lines for an open binary file, gathered in memory and written a megabyte at a
    time; :meth:`flush` writes the rest (a short write to a raw file is finished, too).

    Example::

        with atomic_writer(path) as file:
            spool = LineSpool(file)
            for item in items:
                spool.append(item)
            spool.flush()
    """

    __slots__ = ("_buffer", "count", "file")

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self._buffer = bytearray()
        self.count = 0

    def append(self, item: msgspec.Struct) -> None:
        """Encode one line; write the buffer out once it holds a megabyte."""
        buffer = self._buffer
        _line_encoder.encode_into(item, buffer, -1)
        buffer.extend(b"\n")
        self.count += 1
        if len(buffer) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        view = memoryview(self._buffer)
        while view:
            written = self.file.write(view)
            view = view[written or 0 :]
        view.release()
        self._buffer.clear()


def decode_lines(
    file: IO[bytes],
    decoder: msgspec.json.Decoder[_T],
    bad_line: Callable[[Exception, int], Exception],
) -> Iterator[_T]:
    """Decode each non-blank JSON line of ``file``; a line that does not decode (or nests too
    deep) raises ``bad_line(exc, line_number)``, which says which file and how to fix it.

    Example::

        with path.open("rb") as file:
            for entry in decode_lines(file, decoder, lambda exc, n: KyroError(f"line {n}")):
                ...
    """
    for number, raw in enumerate(file, 1):
        if not raw.strip():
            continue
        try:
            yield decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise bad_line(exc, number) from exc


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk; a no-op where unsupported."""
    if sys.platform == "win32":  # folders cannot be opened for fsync there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An ``opener`` for :func:`open` that creates files with mode 0600 (owner only).

    Shards, the transcript index and scratch files hold transcript text: like the state, no
    one but the owner may read them, whatever the umask.

    Example::

        open(path, "xb", opener=private_opener)
    """
    return os.open(path, flags, 0o600)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Write a file atomically: yields a binary file; on a clean exit it replaces ``path``.

    If the block raises, the temp file is removed and ``path`` is untouched.

    Example::

        with atomic_writer(store.results_path_for(job_id)) as file:
            for line in lines:
                file.write(line)
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (mode 0600 by default).

    Example::

        atomic_write(Path(".kyro/judges.batch-state.json"), msgspec.json.encode(state))
    """
    with atomic_writer(path, mode) as file:
        file.write(data)


class DurableIO(Protocol):
    """The durable writes of a job's state folder: the state, downloads, results.

    :class:`LocalDisk` is the real one; a test passes a double (a disk that fails with
    ENOSPC, one that refuses new files) to :class:`~kyro._state.store.StateStore` or
    ``BatchJudge(disk=...)``.
    """

    def atomic_writer(self, path: Path, mode: int = 0o600) -> AbstractContextManager[IO[bytes]]:
        """A binary file that replaces ``path`` on a clean exit (see :func:`atomic_writer`)."""
        ...

    def atomic_write(self, path: Path, data: bytes, mode: int = 0o600) -> None:
        """Replace ``path`` with ``data`` atomically and durably (see :func:`atomic_write`)."""
        ...


class LocalDisk:
    """:class:`DurableIO` on the local file system: this module's atomic writes.

    Example::

        LOCAL_DISK.atomic_write(Path(".kyro/judges.batch-state.json"), b"{}")
    """

    def atomic_writer(self, path: Path, mode: int = 0o600) -> AbstractContextManager[IO[bytes]]:
        """A binary file that replaces ``path`` on a clean exit (see :func:`atomic_writer`)."""
        return atomic_writer(path, mode)

    def atomic_write(self, path: Path, data: bytes, mode: int = 0o600) -> None:
        """Replace ``path`` with ``data`` atomically and durably (see :func:`atomic_write`)."""
        atomic_write(path, data, mode)


LOCAL_DISK = LocalDisk()
"""The durable I/O every store uses unless it is given another."""


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def held_briefly(path: Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for a short synchronous step (blocks the thread).

    For work of milliseconds that several processes or threads may start at once, such as
    setting up a shared database. Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        pause = 0.002
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{path} stayed locked for {timeout:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


class FileLock:
    """An exclusive lock across processes (and across tasks of one process) on ``path``.

    Taking it polls a non-blocking ``flock`` with short ``anyio.sleep`` pauses, so the event
    loop keeps running and a cancelled wait leaves nothing behind (a lock taken in a worker
    thread could be granted after the caller gave up). The holder writes its pid, command
    and start time into the lock file; after ``timeout`` seconds a :class:`JobBusyError` names
    the lock file and that holder.

    Example::

        async with FileLock(Path(".kyro/judges.batch.lock"), timeout=30):
            ...   # submit, check or cancel
    """

    def __init__(self, path: Path, *, timeout: float = 30.0, purpose: str = "") -> None:
        self.path = path
        self.timeout = timeout
        self.purpose = purpose
        self._fd: int | None = None

    async def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; raises :class:`JobBusyError` then."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BatchValidationError(
                f"cannot open the lock file ({exc.strerror or exc}); make its folder "
                "writable, or pass another state_dir",
                path=self.path,
            ) from exc
        import anyio  # here: the many commands that lock nothing never load it

        try:
            deadline = anyio.current_time() + self.timeout
            pause = 0.005
            while not _try_lock(fd):
                if anyio.current_time() >= deadline:
                    raise self._busy()
                await anyio.sleep(pause)
                pause = min(pause * 2, 0.1)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        holder = f"pid {os.getpid()} ({self.purpose or ' '.join(sys.argv)[:200]}) since {now}"
        # The note only helps a waiter's message: a full disk must not fail the call (nor
        # leave the lock held by an fd no one will release).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, holder.encode())

    def release(self) -> None:
        """Give the lock up (the lock file stays)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def _busy(self) -> JobBusyError:
        try:
            holder = self.path.read_text(errors="replace").strip() or "another process"
        except OSError:
            holder = "another process"
        pid = re.match(r"pid (\d+)", holder)
        since = re.search(r" since (\S+)$", holder)
        return JobBusyError(
            f"{self.path} is locked by {holder}; waited {self.timeout:g} s. Another kyro "
            "submit, check or cancel is working on this job: wait for it to finish and try "
            "again (the lock is freed when that process exits).",
            lock_path=self.path,
            pid=int(pid[1]) if pid else None,
            since=since[1] if since else None,
        )

    async def __aenter__(self) -> FileLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
