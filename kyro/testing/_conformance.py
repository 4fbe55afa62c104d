"""Provider conformance checks: the guarantees kyro's core relies on, runnable by any provider.

Each check drives the provider through its public protocol only and raises
:class:`ConformanceError` (an ``AssertionError``) with a message naming the broken rule. Run
them in your provider's own test suite against a test server or an emulator — the checks
create real batches, so do not point them at a paid account.
"""

from __future__ import annotations

import datetime
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import msgspec

from kyro.provider import BatchProvider, BatchStatus, JudgeRequest, Message, ResultLine

__all__ = ["ConformanceError", "ProviderConformance", "check_provider"]


class ConformanceError(AssertionError):
    """A provider broke one of the :class:`kyro.provider.BatchProvider` rules.

    Example::

        try:
            await check_provider(provider)
        except ConformanceError as exc:
            print(exc)   # "results: custom_id 't1-j0-r0' came back 2 times (expected once)"
    """


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


class ProviderConformance:
    """Individual async checks of one provider; :meth:`run_all` runs them in order.

    ``requests`` is the shard size; ``model`` the model name put in every request; polling
    waits ``poll_interval`` seconds with ``sleep`` between polls, at most ``max_polls`` times.
    Shards are written under ``workdir`` (a temporary folder by default).

    Example::

        kit = ProviderConformance(provider, model="gpt-4o-mini", poll_interval=0.05)
        await kit.check_encode()
        batch_id = await kit.check_lifecycle()
    """

    def __init__(
        self,
        provider: BatchProvider,
        *,
        model: str = "conformance-model",
        requests: int = 3,
        poll_interval: float = 0.0,
        max_polls: int = 1_000,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        workdir: Path | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.requests = requests
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self.sleep = sleep
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:16]

    def make_requests(self, tag: str, count: int | None = None) -> list[JudgeRequest]:
        """``count`` requests (default ``requests``) with custom_ids ``<tag>-<n>``."""
        return [
            JudgeRequest(
                custom_id=f"{tag}-{index}",
                model=self.model,
                messages=(Message(role="user", content=f"conformance request {index}"),),
            )
            for index in range(self.requests if count is None else count)
        ]

    async def _submit(
        self, tag: str, count: int | None = None
    ) -> tuple[str, list[str], dict[str, str]]:
        requests = self.make_requests(tag, count)
        buffer = bytearray()
        for request in requests:
            self.provider.encode(request, buffer)
        # As a job tags its batches: who it is, and the intent's time and size (written before
        # the call), which is all a provider whose batches keep no metadata can match on.
        metadata = {
            "kyro_conformance": self.run_id,
            "kyro_check": tag,
            "kyro_intent_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "kyro_requests": str(len(requests)),
        }
        with tempfile.TemporaryDirectory(dir=self.workdir) as folder:
            shard = Path(folder) / f"{tag}.jsonl"
            await anyio.Path(shard).write_bytes(bytes(buffer))
            batch_id = await self.provider.submit(shard, metadata=metadata)
        _require(
            isinstance(batch_id, str) and bool(batch_id), f"submit returned {batch_id!r}, not an id"
        )
        return batch_id, [r.custom_id for r in requests], metadata

    async def poll_to_terminal(self, batch_id: str) -> BatchStatus:
        """Poll until terminal; ConformanceError after ``max_polls`` polls."""
        for _ in range(self.max_polls):
            status = await self.provider.poll(batch_id)
            _require(status.batch_id == batch_id, f"poll({batch_id!r}) gave {status.batch_id!r}")
            if status.terminal:
                return status
            await self.sleep(self.poll_interval)
        raise ConformanceError(f"batch {batch_id} was not terminal after {self.max_polls} polls")

    async def _collect(self, batch_id: str, expected: Iterable[str]) -> list[ResultLine]:
        lines = [line async for line in self.provider.results(batch_id)]
        counts: dict[str, int] = {}
        for line in lines:
            counts[line.custom_id] = counts.get(line.custom_id, 0) + 1
            _require(
                line.ok == (line.error is None),
                f"results: {line.custom_id!r} has ok={line.ok} but error={line.error!r}",
            )
        expected_ids = set(expected)
        unknown = sorted(set(counts) - expected_ids)
        _require(not unknown, f"results: custom_ids that were never submitted: {unknown[:5]}")
        for custom_id in sorted(expected_ids):
            seen = counts.get(custom_id, 0)
            _require(seen == 1, f"results: custom_id {custom_id!r} came back {seen} times")
        return lines

    async def check_encode(self) -> None:
        """encode appends exactly one newline-terminated JSON line and leaves the rest alone."""
        request = self.make_requests("encode")[0]
        prefix = b'{"already":"here"}\n'
        buffer = bytearray(prefix)
        self.provider.encode(request, buffer)
        _require(bytes(buffer[: len(prefix)]) == prefix, "encode changed the buffer's content")
        line = bytes(buffer[len(prefix) :])
        _require(line.endswith(b"\n"), "encode must end its line with b'\\n'")
        _require(line.count(b"\n") == 1, "encode must append exactly one line")
        try:
            decoded: Any = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            raise ConformanceError(f"encode wrote a line that is not JSON: {exc}") from exc
        _require(isinstance(decoded, dict), "encode must write a JSON object")
        _require(request.custom_id.encode() in line, "encode's line lacks the custom_id")

    async def check_lifecycle(self) -> str:
        """submit → poll to terminal → results: every custom_id exactly once. Returns the id."""
        batch_id, ids, _ = await self._submit("lifecycle")
        status = await self.poll_to_terminal(batch_id)
        if status.state == "completed":
            total = status.request_counts.total
            _require(total in (0, len(ids)), f"request_counts.total is {total}, not {len(ids)}")
        await self._collect(batch_id, ids)
        return batch_id

    async def check_cancel(self) -> None:
        """cancel gives cancelling or a terminal state; afterwards each id comes back once."""
        batch_id, ids, _ = await self._submit("cancel")
        status = await self.provider.cancel(batch_id)
        _require(
            status.state == "cancelling" or status.terminal,
            f"cancel returned state {status.state}, not cancelling or terminal",
        )
        await self.poll_to_terminal(batch_id)
        await self._collect(batch_id, ids)  # unfinished requests come back as errors

    async def check_find(self) -> None:
        """find(metadata) returns the batch submitted with it and not the other one.

        The two batches differ in size, so a provider that matches on what its API shows
        (creation time, request count) can tell them apart as well as one matching tags. A
        batch found with metadata of its own must carry every pair asked for.
        """
        first, _, meta_first = await self._submit("find-a")
        second, _, meta_second = await self._submit("find-b", self.requests + 1)
        try:
            pairs = ((first, meta_first, second), (second, meta_second, first))
            for batch_id, metadata, other in pairs:
                statuses = await self.provider.find(metadata)
                found = {status.batch_id for status in statuses}
                _require(batch_id in found, f"find({metadata}) missed batch {batch_id}")
                _require(other not in found, f"find({metadata}) also returned batch {other}")
                for status in statuses:
                    carried = status.metadata
                    _require(
                        not carried or all(carried.get(k) == v for k, v in metadata.items()),
                        f"find({metadata}) returned batch {status.batch_id} whose metadata "
                        f"{carried} does not carry every pair asked for",
                    )
            shared = {"kyro_conformance": self.run_id}
            found = {status.batch_id for status in await self.provider.find(shared)}
            _require({first, second} <= found, "find by a subset of the metadata missed a batch")
        finally:
            for batch_id in (first, second):
                await self.provider.cancel(batch_id)

    async def run_all(self) -> None:
        """Run every check in turn; the first broken rule raises ConformanceError."""
        await self.check_encode()
        await self.check_lifecycle()
        await self.check_cancel()
        await self.check_find()


async def check_provider(provider: BatchProvider, **options: Any) -> None:
    """Run the whole conformance kit against ``provider`` (options as for ProviderConformance).

    Example::

        async def test_my_provider_conforms():
            await check_provider(MyProvider(base_url=test_server_url), poll_interval=0.01)
    """
    await ProviderConformance(provider, **options).run_all()
