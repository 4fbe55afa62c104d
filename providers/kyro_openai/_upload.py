"""A ``multipart/form-data`` upload body streamed from disk.

httpx can stream a multipart file too, but it reads the file with blocking calls on the event
loop; this body reads it through ``anyio`` in 64 KiB chunks instead, so a 200 MB shard never
sits in memory and never stalls other tasks. The length is known up front (the parts' headers
plus the file's size), so the request carries a ``Content-Length`` rather than chunked
encoding, which some gateways refuse for uploads. A fresh body is made for each attempt.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anyio

__all__ = ["CHUNK_SIZE", "MultipartFile", "upload_filename"]

CHUNK_SIZE = 64 * 1024
_UNSAFE = str.maketrans({'"': "_", "\\": "_", "\r": "_", "\n": "_"})


def upload_filename(path: Path) -> str:
    """The name sent for a shard: its own name, made to end in ``.jsonl`` (the Batch API's rule).

    Example::

        upload_filename(Path("shard-0003.jsonl"))   # 'shard-0003.jsonl'
        upload_filename(Path("shard-0003"))         # 'shard-0003.jsonl'
    """
    name = path.name.translate(_UNSAFE) or "batch"
    return name if name.lower().endswith(".jsonl") else name + ".jsonl"


class MultipartFile:
    """Form fields plus one file part, streamed from ``path``.

    Example::

        body = MultipartFile(path, fields={"purpose": "batch"}, field="file")
        client.build_request("POST", url, content=body.stream(), headers=body.headers())
    """

    def __init__(
        self,
        path: Path,
        *,
        fields: Mapping[str, str],
        field: str = "file",
        filename: str | None = None,
        content_type: str = "application/jsonl",
    ) -> None:
        self.path = path
        self.boundary = secrets.token_hex(16)
        parts = bytearray()
        for name, value in fields.items():
            parts += self._part_header(f'name="{name}"')
            parts += value.encode() + b"\r\n"
        disposition = f'name="{field}"; filename="{filename or upload_filename(path)}"'
        parts += self._part_header(disposition, content_type)
        self._head = bytes(parts)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    def _part_header(self, disposition: str, content_type: str | None = None) -> bytes:
        lines = [f"--{self.boundary}", f"Content-Disposition: form-data; {disposition}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def headers(self) -> dict[str, str]:
        """``Content-Type`` with the boundary, and the exact ``Content-Length``."""
        size = self.path.stat().st_size
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(len(self._head) + size + len(self._tail)),
        }

    async def stream(self) -> AsyncIterator[bytes]:
        """The body: field parts, the file in ``CHUNK_SIZE`` reads, the closing boundary."""
        yield self._head
        async with await anyio.open_file(self.path, "rb") as handle:
            while chunk := await handle.read(CHUNK_SIZE):
                yield chunk
        yield self._tail
