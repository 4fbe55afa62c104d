"""One local batch being run: stream the shard, run each line, append each outcome.

Shape of a run (memory stays flat however long the shard is)::

    producer ──(bounded stream: concurrency lines)──▶ N workers ──(bounded stream)──▶ writer
       reads the shard in chunks            each runs one request       the only task that
       in a worker thread                   at a time (N = concurrency)  touches output.jsonl

A watcher checkpoints ``batch.json`` (counts) about once a second and stops the run if another
process left a cancel marker. Cancelling stops the producer and workers at once; the writer is
outside that cancel scope, so every outcome already produced still reaches the file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Protocol, TypeVar

import anyio
import anyio.to_thread
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from kyro.provider import BatchError, BatchState, RequestCounts
from kyro_local._backends import Outcome
from kyro_local._store import BatchRecord, BatchStore, read_line_chunks
from kyro_openai.wire import LineError, LineResponse, OutputLine, RequestLine

__all__ = ["Backend", "BatchRun"]

_FLUSH_BYTES = 256 * 1024
_CHUNK_LINES = 512
_input_decoder = msgspec.json.Decoder(RequestLine[msgspec.Raw])
_output_encoder = msgspec.json.Encoder()

_Done = tuple[bool, bytes]  # (ok, the encoded output line)
_Item = TypeVar("_Item")


class Backend(Protocol):
    """What runs one request body: see ``kyro_local._backends``."""

    endpoint: str

    async def __call__(self, body: msgspec.Raw) -> Outcome: ...


async def _put(send: MemoryObjectSendStream[_Item], item: _Item) -> None:
    """Send ``item``, handing it over at once while the stream has room (a send that must
    wait for room waits as usual): every request would otherwise pay a trip round the event
    loop per hand-over."""
    try:
        send.send_nowait(item)
    except anyio.WouldBlock:
        await send.send(item)


async def _get(receive: MemoryObjectReceiveStream[_Item]) -> _Item | None:
    """The next item (None once the stream has ended), taken at once when one is waiting."""
    try:
        return receive.receive_nowait()
    except anyio.WouldBlock:
        pass
    except anyio.EndOfStream:
        return None
    try:
        return await receive.receive()
    except anyio.EndOfStream:
        return None


def _append(fh: IO[bytes], data: bytes) -> None:
    fh.write(data)
    fh.flush()


def _finish(fh: IO[bytes], data: bytes) -> None:
    try:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    finally:
        fh.close()


class BatchRun:
    """Runs one batch to its end; ``cancel()`` stops it early, keeping finished lines.

    Example::

        run = BatchRun(store, record, backend, concurrency=16)
        await run.run()        # returns once every line has an outcome, or on cancel
    """

    checkpoint_interval = 1.0

    def __init__(
        self, store: BatchStore, record: BatchRecord, backend: Backend, *, concurrency: int
    ) -> None:
        self.record = record
        self.completed = 0
        self.failed = 0
        self.done = anyio.Event()
        self._store = store
        self._backend = backend
        self._concurrency = concurrency
        self._scope = anyio.CancelScope()
        self._folder = store.folder(record.batch_id)

    @property
    def cancelling(self) -> bool:
        """True once a cancel was asked for."""
        return self._scope.cancel_called

    def cancel(self) -> None:
        """Stop the run: no new request starts, in-flight ones are abandoned."""
        self._scope.cancel()

    def snapshot(self, state: BatchState) -> BatchRecord:
        """The record as it stands now, in ``state``."""
        counts = RequestCounts(
            total=self.record.counts.total, completed=self.completed, failed=self.failed
        )
        return msgspec.structs.replace(self.record, state=state, counts=counts)

    async def run(self) -> BatchState:
        """Run every line; return the final state (completed or cancelled)."""
        state: BatchState = "completed"
        errors: tuple[BatchError, ...] = ()
        send_in, receive_in = anyio.create_memory_object_stream[tuple[int, bytes]](
            self._concurrency
        )
        send_out, receive_out = anyio.create_memory_object_stream[_Done](self._concurrency)
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._write, receive_out)
                try:
                    with self._scope:
                        await self._drive(send_in, receive_in, send_out)
                finally:
                    send_in.close()
                    receive_in.close()
                    send_out.close()
        except BaseException as exc:
            state = "cancelled"
            if isinstance(exc, Exception):
                state = "failed"
                errors = (BatchError(code="local_error", message=f"{type(exc).__name__}: {exc}"),)
            raise
        finally:
            if self._scope.cancel_called and state == "completed":
                state = "cancelled"
            final = msgspec.structs.replace(
                self.snapshot(state), finished_at=time.time(), errors=errors
            )
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._store.write, final)
                self.record = final
                self.done.set()
        return state

    async def _drive(
        self,
        send_in: MemoryObjectSendStream[tuple[int, bytes]],
        receive_in: MemoryObjectReceiveStream[tuple[int, bytes]],
        send_out: MemoryObjectSendStream[_Done],
    ) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            async with anyio.create_task_group() as work:
                work.start_soon(self._produce, send_in, self._folder / "input.jsonl")
                for _ in range(self._concurrency):
                    work.start_soon(self._work, receive_in.clone(), send_out.clone())
                receive_in.close()
                send_out.close()
            tg.cancel_scope.cancel()  # every line is done: stop the watcher

    async def _produce(self, send: MemoryObjectSendStream[tuple[int, bytes]], path: Path) -> None:
        with send:
            fh = await anyio.to_thread.run_sync(path.open, "rb")
            try:
                number = 0
                while chunk := await anyio.to_thread.run_sync(read_line_chunks, fh, _CHUNK_LINES):
                    for line in chunk:
                        number += 1
                        if line.strip():
                            await _put(send, (number, line))
            finally:
                fh.close()

    async def _work(
        self,
        receive: MemoryObjectReceiveStream[tuple[int, bytes]],
        send: MemoryObjectSendStream[_Done],
    ) -> None:
        with receive, send:
            while (line := await _get(receive)) is not None:
                await _put(send, await self._execute(*line))

    async def _execute(self, number: int, raw: bytes) -> _Done:
        line_id = f"{self.record.batch_id}_req_{number}"
        try:
            request = _input_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            message = f"input line {number} is not a request line: {exc}"
            invalid = LineError(code="invalid_request", message=message)
            out: OutputLine[msgspec.Raw] = OutputLine(
                id=line_id, custom_id=f"line-{number}", error=invalid
            )
            return False, _output_encoder.encode(out) + b"\n"
        response: LineResponse[msgspec.Raw] | None = None
        error: LineError | None = None
        if not request.url.endswith("/chat/completions"):
            message = f"url {request.url!r} is not served here: use /v1/chat/completions"
            error = LineError(code="invalid_request", message=message)
        else:
            try:
                response, error = await self._backend(request.body)
            except Exception as exc:  # a backend bug must not sink the other lines
                message = f"{type(exc).__name__}: {exc}"
                response, error = None, LineError(code="local_error", message=message)
        out = OutputLine(id=line_id, custom_id=request.custom_id, response=response, error=error)
        status = response.status_code if response is not None else None
        ok = error is None and status is not None and 200 <= status < 300
        return ok, _output_encoder.encode(out) + b"\n"

    def _take(self, item: _Done, buf: bytearray) -> None:
        ok, data = item
        if ok:
            self.completed += 1
        else:
            self.failed += 1
        buf += data

    def _drain(
        self, receive: MemoryObjectReceiveStream[_Done], buf: bytearray, limit: int = _FLUSH_BYTES
    ) -> None:
        while len(buf) < limit:
            try:
                self._take(receive.receive_nowait(), buf)
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return

    async def _write(self, receive: MemoryObjectReceiveStream[_Done]) -> None:
        fh = await anyio.to_thread.run_sync(self._store.open_output, self.record.batch_id)
        buf = bytearray()
        try:
            async for item in receive:
                self._take(item, buf)
                self._drain(receive, buf)
                data = bytes(buf)
                buf.clear()  # before the write: a cancel during it must not write twice
                await anyio.to_thread.run_sync(_append, fh, data)
        finally:
            with anyio.CancelScope(shield=True):
                self._drain(receive, buf, limit=1 << 62)
                await anyio.to_thread.run_sync(_finish, fh, bytes(buf))
                receive.close()

    async def _watch(self) -> None:
        batch_id = self.record.batch_id
        while True:
            await anyio.sleep(self.checkpoint_interval)
            if await anyio.to_thread.run_sync(self._store.cancel_requested, batch_id):
                self.cancel()
                return
            await anyio.to_thread.run_sync(self._store.write, self.snapshot("running"))
