"""The create body ``{"requests":[…]}`` streamed from a shard file, never held in memory.

A shard holds one request object per line (see :mod:`kyro_anthropic._encode`); the body is
those lines joined by commas inside ``{"requests":[`` … ``]}``. A first pass over the file
counts the requests and the exact body length, so limits are checked before anything is sent
and the request carries a ``Content-Length`` (no chunked upload). The second pass, one per
attempt, reads the file in 64 KiB chunks through anyio, so a 256 MB shard never stalls the
event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from kyro.provider import BatchLimits, KyroError

__all__ = ["CHUNK_SIZE", "RequestsBody", "scan_shard"]

CHUNK_SIZE = 64 * 1024
_HEAD = b'{"requests":['
_TAIL = b"]}"


class RequestsBody:
    """The measured body of one shard: ``requests`` lines making ``length`` bytes on the wire.

    Example::

        body = await scan_shard(path, limits)
        client.build_request("POST", url, content=body.stream(), headers=body.headers())
    """

    def __init__(self, path: Path, requests: int, length: int) -> None:
        self.path = path
        self.requests = requests
        self.length = length

    def headers(self) -> dict[str, str]:
        """``Content-Type`` and the exact ``Content-Length``."""
        return {"Content-Type": "application/json", "Content-Length": str(self.length)}

    async def stream(self) -> AsyncIterator[bytes]:
        """The body: the head, each non-blank line with commas between, the tail."""
        yield _HEAD
        first = True
        pending = b""
        async with await anyio.open_file(self.path, "rb") as handle:
            while chunk := await handle.read(CHUNK_SIZE):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = bytearray()
                for line in lines:
                    line = line.strip()
                    if not line:
                        continue
                    if not first:
                        out += b","
                    out += line
                    first = False
                if out:
                    yield bytes(out)
        last = pending.strip()
        if last:
            yield (b"," if not first else b"") + last
        yield _TAIL


async def scan_shard(path: Path, limits: BatchLimits) -> RequestsBody:
    """Count a shard's requests and its body's length; KyroError beyond ``limits`` or empty.

    Example::

        body = await scan_shard(Path("shard-0.jsonl"), ANTHROPIC_LIMITS)
        body.requests, body.length
    """
    requests = 0
    payload = 0
    pending = b""
    try:
        async with await anyio.open_file(path, "rb") as handle:
            while chunk := await handle.read(CHUNK_SIZE):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    size = len(line.strip())
                    if size:
                        requests += 1
                        payload += size
    except FileNotFoundError:
        raise KyroError(f"shard file {path} is gone: nothing can be submitted from it") from None
    last = len(pending.strip())
    if last:
        requests += 1
        payload += last
    if requests == 0:
        raise KyroError(f"shard file {path} holds no request: a batch needs at least one")
    length = len(_HEAD) + payload + (requests - 1) + len(_TAIL)
    if requests > limits.max_requests:
        raise KyroError(
            f"shard file {path} holds {requests} requests; an Anthropic batch takes at most "
            f"{limits.max_requests}: build smaller shards"
        )
    if length > limits.max_bytes + 64 * 1024:
        raise KyroError(
            f"shard file {path} makes a {length}-byte batch body; Anthropic takes at most "
            f"{limits.max_bytes} here: build smaller shards"
        )
    return RequestsBody(path, requests, length)
