"""Files on disk: uploads streamed into the emulator's data folder, results moved in."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
import msgspec

from kyro_openai.testing._wire import FileObject, new_id

__all__ = ["FileStore", "StoredFile"]


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file: its ``File`` object, where its bytes live, and its creation order."""

    obj: FileObject
    path: Path
    seq: int


class FileStore:
    """The emulator's files, each one a file under ``root``.

    Example::

        store = FileStore(Path(tempfile.mkdtemp()))
        obj = store.adopt(Path("x.jsonl"), filename="x.jsonl", purpose="batch", created_at=0)
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, StoredFile] = {}
        self._seq = 0

    def new_path(self) -> tuple[str, Path]:
        """A fresh file id and the path its bytes should go to."""
        file_id = new_id("file-")
        return file_id, self.root / file_id

    async def save_stream(
        self,
        source: BinaryIO,
        *,
        filename: str,
        purpose: str,
        created_at: int,
        expires_at: int | None,
    ) -> FileObject:
        """Copy an upload (a spooled temp file) to disk in chunks, off the event loop."""
        file_id, path = self.new_path()

        def copy() -> int:
            source.seek(0)
            with path.open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            return path.stat().st_size

        size = await anyio.to_thread.run_sync(copy)
        return self._register(file_id, path, size, filename, purpose, created_at, expires_at)

    def adopt(
        self,
        source: Path,
        *,
        filename: str,
        purpose: str,
        created_at: int,
        expires_at: int | None = None,
    ) -> FileObject:
        """Move a finished file (a batch's output or error file) into the store."""
        file_id, path = self.new_path()
        source.replace(path)
        size = path.stat().st_size
        return self._register(file_id, path, size, filename, purpose, created_at, expires_at)

    def _register(
        self,
        file_id: str,
        path: Path,
        size: int,
        filename: str,
        purpose: str,
        created_at: int,
        expires_at: int | None,
    ) -> FileObject:
        obj = FileObject(
            id=file_id,
            bytes=size,
            created_at=created_at,
            expires_at=expires_at,
            filename=filename,
            purpose=purpose,
        )
        self._seq += 1
        self.files[file_id] = StoredFile(obj=obj, path=path, seq=self._seq)
        return obj

    def get(self, file_id: str) -> StoredFile | None:
        """The stored file, or ``None`` if there is no such file."""
        return self.files.get(file_id)

    def delete(self, file_id: str, *, keep_bytes: bool = False) -> bool:
        """Forget a file and (unless a running batch still reads it) remove its bytes."""
        stored = self.files.pop(file_id, None)
        if stored is None:
            return False
        if not keep_bytes:
            stored.path.unlink(missing_ok=True)
        return True

    def listing(
        self, *, purpose: str | None, order: str, after: str | None, limit: int
    ) -> tuple[list[FileObject], bool]:
        """One page of files sorted by creation (``asc`` or ``desc``) and whether more follow."""
        items = sorted(
            (f for f in self.files.values() if purpose is None or f.obj.purpose == purpose),
            key=lambda f: (f.obj.created_at, f.seq),
            reverse=order == "desc",
        )
        if after is not None:
            ids = [f.obj.id for f in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return [f.obj for f in items[:limit]], len(items) > limit
