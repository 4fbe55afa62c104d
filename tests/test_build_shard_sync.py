"""Shard files sync in the background as they grow; a background sync's error is not lost."""

from __future__ import annotations

import errno
import hashlib
import threading
from pathlib import Path

import pytest

from kyro._build.shard_files import ShardFile

CHUNK = bytes(range(256)) * 4096  # 1 MiB, as the builder writes


def _write(shard: ShardFile, chunks: int) -> bytes:
    written = bytearray()
    for i in range(chunks):
        chunk = CHUNK[i % 256 :] + CHUNK[: i % 256]
        shard.write(chunk)
        written += chunk
    return bytes(written)


def test_background_sync_runs_and_file_is_whole(tmp_path: Path) -> None:
    """Past 16 MiB a background sync gets the file's descriptor; the file holds every byte."""
    seen: list[int] = []
    done = threading.Event()

    def datasync(fd: int) -> None:
        seen.append(fd)
        done.set()

    path = tmp_path / "shard-0000-m.jsonl"
    shard = ShardFile(path, datasync=datasync)
    fd = shard.file.fileno()
    data = _write(shard, 40)
    assert done.wait(10)
    shard.finish()
    assert seen
    assert set(seen) == {fd}
    assert shard.file.closed
    assert not any(t.name == "kyro-shard-sync" for t in threading.enumerate())
    assert path.read_bytes() == data
    assert shard.hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_small_file_never_syncs_in_background(tmp_path: Path) -> None:
    """A file under 16 MiB is synced once, by finish, never by a background thread."""
    seen: list[int] = []
    shard = ShardFile(tmp_path / "s.jsonl", datasync=seen.append)
    data = _write(shard, 3)
    shard.finish()
    assert seen == []
    assert (tmp_path / "s.jsonl").read_bytes() == data


def test_background_sync_error_is_raised_by_finish(tmp_path: Path) -> None:
    """An I/O error of a background sync makes finish fail (and close the file), not pass."""

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    shard = ShardFile(tmp_path / "s.jsonl", datasync=failing)
    _write(shard, 20)
    with pytest.raises(OSError, match="Input/output error") as caught:
        shard.finish()
    assert caught.value.errno == errno.EIO
    assert shard.file.closed


def test_abandon_waits_for_the_background_sync(tmp_path: Path) -> None:
    """abandon waits for a running background sync before closing the descriptor it uses."""
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def slow(fd: int) -> None:
        started.set()
        release.wait(10)
        finished.append(True)

    shard = ShardFile(tmp_path / "s.jsonl", datasync=slow)
    _write(shard, 17)
    assert started.wait(10)
    closer = threading.Thread(target=shard.abandon)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()
    assert not shard.file.closed
    release.set()
    closer.join(10)
    assert finished == [True]
    assert shard.file.closed
