"""``FakeProvider``: an in-memory :class:`kyro.provider.BatchProvider` for tests.

It writes OpenAI-shaped input lines, reads a submitted shard back, and plays a batch's life
in memory: pending, then running, then the terminal state you choose after a set number of
polls. Nothing touches the network or the disk beyond reading the shard, and nothing persists
across processes: a second process (or a new ``FakeProvider``) knows no batch of the first.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from kyro.provider import (
    BatchError,
    BatchLimits,
    BatchState,
    BatchStatus,
    JudgeRequest,
    KyroError,
    Message,
    RequestCounts,
    ResultError,
    ResultLine,
    Usage,
    is_terminal,
)

__all__ = ["FakeBatch", "FakeProvider", "Responder", "default_responder"]

Responder = Callable[[str, dict[str, Any]], str]
"""``(custom_id, request body) -> reply text`` for one request."""

_UNFINISHED_CODES = {"expired": "batch_expired", "cancelled": "batch_cancelled"}


class _Line(msgspec.Struct, frozen=True, kw_only=True):
    custom_id: str
    method: str
    url: str
    body: dict[str, Any]


class _Body(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    model: str
    messages: tuple[Message, ...]
    response_format: dict[str, Any] | None = None


_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(_Line)


def default_responder(custom_id: str, body: dict[str, Any]) -> str:
    """A passing judge verdict in JSON, saying it came from the fake.

    Example::

        default_responder("t0-j0-r0", {})   # '{"status": "SUCCESS", "root_cause": "…"}'
    """
    return json.dumps({"status": "SUCCESS", "root_cause": f"fake verdict for {custom_id}"})


class FakeBatch(msgspec.Struct, kw_only=True):
    """One batch the fake holds: its requests, metadata, state and how often it was polled."""

    batch_id: str
    metadata: dict[str, str]
    requests: list[_Line]
    state: BatchState = "pending"
    polls: int = 0
    errors: tuple[BatchError, ...] = ()


class FakeProvider:
    """An in-memory batch provider: configurable, inspectable, persisting nothing.

    ``final_state`` is where every batch ends after ``polls_until_done`` polls; expired and
    cancelled batches finish half their requests and report the rest as ``batch_expired`` /
    ``batch_cancelled``; failed ones carry ``failure_errors`` and report every request
    ``missing``. ``line_errors`` maps a custom_id to the error code its line fails with,
    ``missing`` lists custom_ids no result file contains. ``batches`` records every creation.

    Example::

        provider = FakeProvider(polls_until_done=2, line_errors={"t0-j0-r1": "server_error"})
        batch_id = await provider.submit(shard, metadata={"kyro_job": "j1"})
        while not (await provider.poll(batch_id)).terminal:
            ...
        lines = [line async for line in provider.results(batch_id)]
    """

    name = "fake"
    default_model = "fake-judge"

    def __init__(
        self,
        *,
        limits: BatchLimits = BatchLimits(max_requests=1_000, max_bytes=10 * 1024 * 1024),
        responder: Responder = default_responder,
        final_state: BatchState = "completed",
        polls_until_done: int = 1,
        line_errors: Mapping[str, str] | None = None,
        missing: Collection[str] = (),
        failure_errors: Sequence[BatchError] = (
            BatchError(code="invalid_request", message="the fake was told to fail", line=1),
        ),
        url: str = "/v1/chat/completions",
    ) -> None:
        if not is_terminal(final_state):
            raise ValueError(f"final_state must be terminal, not {final_state}")
        self.limits = limits
        self.responder = responder
        self.final_state = final_state
        self.polls_until_done = polls_until_done
        self.line_errors = dict(line_errors or {})
        self.missing = frozenset(missing)
        self.failure_errors = tuple(failure_errors)
        self.url = url
        self.batches: list[FakeBatch] = []
        self.closed = False
        self._ids = itertools.count(1)

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Append one OpenAI-style input line for ``request`` (newline included)."""
        body = _Body(
            model=request.model,
            messages=request.messages,
            response_format=_response_format(request),
        )
        payload = {**msgspec.to_builtins(body), **request.params}
        line = _Line(custom_id=request.custom_id, method="POST", url=self.url, body=payload)
        _encoder.encode_into(line, buffer, -1)
        buffer.extend(b"\n")

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Read the shard and create a pending batch; bad shards make a failed one."""
        data = await anyio.Path(path).read_bytes()
        requests = [_line_decoder.decode(raw) for raw in data.splitlines() if raw.strip()]
        batch = FakeBatch(
            batch_id=f"fakebatch_{next(self._ids)}", metadata=dict(metadata), requests=requests
        )
        ids = [request.custom_id for request in requests]
        if len(set(ids)) != len(ids):
            batch.state = "failed"
            batch.errors = (BatchError(code="duplicate_custom_id", message="duplicate custom_id"),)
        elif len(ids) > self.limits.max_requests or len(data) > self.limits.max_bytes:
            batch.state = "failed"
            batch.errors = (BatchError(code="too_many_tasks", message="over the fake's limits"),)
        self.batches.append(batch)
        return batch.batch_id

    def _batch(self, batch_id: str) -> FakeBatch:
        for batch in self.batches:
            if batch.batch_id == batch_id:
                return batch
        raise KyroError(f"fake provider has no batch {batch_id!r} (it persists nothing)")

    def _status(self, batch: FakeBatch) -> BatchStatus:
        total = len(batch.requests)
        done = total if batch.state == "completed" else 0
        if batch.state in _UNFINISHED_CODES:
            done = (total + 1) // 2
        failed = len([r for r in batch.requests[:done] if r.custom_id in self.line_errors])
        return BatchStatus(
            batch_id=batch.batch_id,
            state=batch.state,
            request_counts=RequestCounts(total=total, completed=done - failed, failed=failed),
            errors=batch.errors,
            metadata=dict(batch.metadata),
            provider_status=batch.state,
        )

    async def poll(self, batch_id: str) -> BatchStatus:
        """Advance the batch one step: pending → running → … → ``final_state``."""
        batch = self._batch(batch_id)
        if not is_terminal(batch.state):
            batch.polls += 1
            if batch.state == "cancelling":
                batch.state = "cancelled"
            elif batch.polls >= self.polls_until_done:
                batch.state = self.final_state
                if self.final_state == "failed":
                    batch.errors = self.failure_errors
            else:
                batch.state = "running"
        return self._status(batch)

    async def cancel(self, batch_id: str) -> BatchStatus:
        """A running batch turns ``cancelling`` (``cancelled`` at the next poll)."""
        batch = self._batch(batch_id)
        if not is_terminal(batch.state):
            batch.state = "cancelling"
        return self._status(batch)

    async def find(self, metadata: Mapping[str, str]) -> list[BatchStatus]:
        """Every batch whose metadata holds all the given pairs."""
        return [
            self._status(batch)
            for batch in self.batches
            if all(batch.metadata.get(key) == value for key, value in metadata.items())
        ]

    async def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Each request once: replies, configured errors, unfinished and missing ones."""
        batch = self._batch(batch_id)
        if not is_terminal(batch.state):
            raise KyroError(f"fake batch {batch_id} is {batch.state}: poll it to the end")
        done = self._status(batch).request_counts
        finished = done.completed + done.failed
        unfinished_code = _UNFINISHED_CODES.get(batch.state)
        for index, request in enumerate(batch.requests):
            custom_id = request.custom_id
            if custom_id in self.missing or batch.state == "failed":
                yield _error(custom_id, "missing", "in no result file", retryable=True)
            elif index >= finished and unfinished_code:
                yield _error(custom_id, unfinished_code, "did not run", retryable=True)
            elif custom_id in self.line_errors:
                code = self.line_errors[custom_id]
                yield _error(custom_id, code, "fake line error", retryable=code == "server_error")
            else:
                reply = self.responder(custom_id, request.body)
                prompt = sum(len(str(m.get("content", ""))) for m in request.body["messages"])
                usage = Usage(
                    input_tokens=prompt // 4,
                    output_tokens=len(reply) // 4,
                    total_tokens=prompt // 4 + len(reply) // 4,
                )
                yield ResultLine(custom_id=custom_id, ok=True, content=reply, usage=usage)

    async def aclose(self) -> None:
        """Mark the fake closed (``closed`` turns true); it holds no resources."""
        self.closed = True


def _error(custom_id: str, code: str, message: str, *, retryable: bool) -> ResultLine:
    return ResultLine(
        custom_id=custom_id,
        ok=False,
        error=ResultError(code=code, message=message, retryable=retryable),
    )


def _response_format(request: JudgeRequest) -> dict[str, Any] | None:
    """The verdict contract the OpenAI way: the judge's own format, a json_schema, JSON mode."""
    if "response_format" in request.params:
        return None  # the judge's own, spliced in with the other params
    schema = request.response_schema
    if schema is not None:
        spec = {"name": schema.name, "strict": schema.strict, "schema": schema.schema}
        return {"type": "json_schema", "json_schema": spec}
    return {"type": "json_object"} if request.json_output else None
