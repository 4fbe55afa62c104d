"""The batches: creation checks, lazy advancing, cancel, expiry and listing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import msgspec

from kyro_openai.testing._lifecycle import (
    ACTIVE,
    TERMINAL,
    BatchEntry,
    Step,
    finish,
    finished_lines,
    next_step,
    validated,
)
from kyro_openai.testing._results import write_results
from kyro_openai.testing._validate import normalize_endpoint, validate_input_file
from kyro_openai.testing._wire import ApiError, BatchObject, Counts, new_id

if TYPE_CHECKING:
    from kyro_openai.testing._emulator import Emulator

__all__ = ["ENDPOINTS", "BatchBook"]

ENDPOINTS = frozenset(
    {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)
_THIRTY_DAYS = 30 * 24 * 3600


def _check_expiry(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("anchor") != "created_at":
        raise ApiError(400, f"'{param}.anchor' must be 'created_at'.", param=param)
    seconds = value.get("seconds")
    if not isinstance(seconds, int) or not 3600 <= seconds <= 2_592_000:
        raise ApiError(400, f"'{param}.seconds' must be 3600..2592000.", param=param)
    return seconds


def _check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ApiError(400, "'metadata' must map strings to strings.", param="metadata")
    if len(metadata) > 16:
        raise ApiError(400, "'metadata' may hold at most 16 pairs.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64:
            raise ApiError(
                400, f"Metadata key '{key[:20]}…' exceeds 64 characters.", param="metadata"
            )
        if len(value) > 512:
            raise ApiError(
                400, f"Metadata value of '{key}' exceeds 512 characters.", param="metadata"
            )
    return dict(metadata)


class BatchBook:
    """Every batch of one emulator, moved along lazily whenever it is read."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.entries: dict[str, BatchEntry] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def create(self, body: Any) -> BatchObject:
        """Check a ``POST /batches`` body and create the batch (status ``validating``)."""
        emulator = self.emulator
        cfg = emulator.config
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise ApiError(
                    400,
                    f"Missing required parameter: '{name}'.",
                    param=name,
                    code="missing_required_parameter",
                )
        endpoint = normalize_endpoint(body["endpoint"], azure=cfg.azure_mode)
        if endpoint not in ENDPOINTS:
            supported = ", ".join(sorted(ENDPOINTS))
            message = f"Invalid value for 'endpoint': '{body['endpoint']}'. Supported: {supported}."
            raise ApiError(400, message, param="endpoint", code="invalid_value")
        if body["completion_window"] != "24h":
            window = body["completion_window"]
            message = f"Invalid value for 'completion_window': '{window}'. Only '24h' is supported."
            raise ApiError(400, message, param="completion_window", code="invalid_value")
        metadata = _check_metadata(body.get("metadata"))
        output_expiry = _check_expiry(body.get("output_expires_after"), "output_expires_after")
        stored = emulator.store.get(body["input_file_id"])
        if stored is None:
            message = f"No such File object: {body['input_file_id']}"
            raise ApiError(404, message, param="input_file_id", code="not_found")
        if stored.obj.purpose != "batch":
            message = f"The input file must have purpose 'batch', not '{stored.obj.purpose}'."
            raise ApiError(400, message, param="input_file_id", code="invalid_value")
        now = emulator.now()
        created = int(now)
        wire = BatchObject(
            id=new_id("batch_", 32),
            endpoint=endpoint,
            input_file_id=stored.obj.id,
            created_at=created,
            expires_at=created + cfg.completion_window_seconds,
            metadata=metadata,
        )
        self.entries[wire.id] = BatchEntry(
            wire=wire,
            phase_at=now,
            input_path=str(stored.path),
            output_expires_seconds=output_expiry,
            plan=emulator.faults.take_creation(),
        )
        emulator.counters.bump("batches_created")
        return wire

    def in_use(self, path: Path) -> bool:
        """Whether a batch that is not yet terminal still reads the file at ``path``."""
        return any(
            e.input_path == str(path) and e.wire.status not in TERMINAL
            for e in self.entries.values()
        )

    async def get(self, batch_id: str) -> BatchObject:
        """The batch, advanced to now; 404 when there is no such batch."""
        async with self._lock(batch_id):
            return (await self._advance(batch_id)).wire

    async def cancel(self, batch_id: str) -> BatchObject:
        """Start cancelling a batch; 400 when it is already terminal."""
        async with self._lock(batch_id):
            entry = await self._advance(batch_id)
            status = entry.wire.status
            if status in TERMINAL:
                raise ApiError(400, f"Cannot cancel a batch with status '{status}'.", param=None)
            if status == "cancelling":
                return entry.wire
            now = self.emulator.now()
            cfg = self.emulator.config
            done = {"validating": 0, "finalizing": entry.total}.get(status)
            if done is None:
                done = finished_lines(entry, now, cfg)
            wire = msgspec.structs.replace(entry.wire, status="cancelling", cancelling_at=int(now))
            self.entries[batch_id] = msgspec.structs.replace(
                entry, wire=wire, phase_at=now, cancel_done=done
            )
            self.emulator.counters.bump("batches_cancelled")
            return wire

    def force_expire(self, batch_id: str, at: float, lines: int | None) -> None:
        """Mark a batch to expire at ``at`` (applied when it is next read)."""
        entry = self.entries.get(batch_id)
        if entry is None:
            raise KeyError(batch_id)
        if entry.wire.status in ACTIVE:
            self.entries[batch_id] = msgspec.structs.replace(
                entry, force_expire_at=at, force_expire_lines=lines
            )

    async def listing(self, *, after: str | None, limit: int) -> tuple[list[BatchObject], bool]:
        """One page of batches, newest first, and whether more follow."""
        ids = list(reversed(self.entries))
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        page = [await self.get(batch_id) for batch_id in ids[:limit]]
        return page, len(ids) > limit

    def _lock(self, batch_id: str) -> anyio.Lock:
        if batch_id not in self.entries:
            raise ApiError(
                404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found"
            )
        return self._locks.setdefault(batch_id, anyio.Lock())

    async def _advance(self, batch_id: str) -> BatchEntry:
        cfg = self.emulator.config
        while True:
            entry = self.entries[batch_id]
            step = next_step(entry, self.emulator.now(), cfg)
            if step is None:
                return entry
            self.entries[batch_id] = await self._apply(entry, step)

    async def _apply(self, entry: BatchEntry, step: Step) -> BatchEntry:
        cfg = self.emulator.config
        if step.action == "counts" and step.counts is not None:
            wire = msgspec.structs.replace(entry.wire, request_counts=step.counts)
            return msgspec.structs.replace(entry, wire=wire)
        if step.action == "finalizing":
            failed = entry.planned_failures
            counts = Counts(total=entry.total, completed=entry.total - failed, failed=failed)
            wire = msgspec.structs.replace(
                entry.wire, status="finalizing", finalizing_at=int(step.at), request_counts=counts
            )
            return msgspec.structs.replace(entry, wire=wire, phase_at=step.at)
        if step.action == "validate":
            result = await anyio.to_thread.run_sync(
                lambda: validate_input_file(
                    Path(entry.input_path),
                    endpoint=entry.wire.endpoint,
                    max_requests=cfg.max_requests,
                    max_bytes=cfg.max_bytes,
                    max_errors=cfg.max_validation_errors,
                    azure=cfg.azure_mode,
                    line_faults=entry.plan.line_faults,
                    seed=cfg.seed,
                )
            )
            return validated(entry, result, step.at, cfg)
        return await self._write_results(entry, step)

    async def _write_results(self, entry: BatchEntry, step: Step) -> BatchEntry:
        if entry.total == 0:  # cancelled while validating: nothing ran
            return finish(entry, step, None, None, None)
        emulator = self.emulator
        cfg = emulator.config
        scratch = emulator.root / "scratch"
        scratch.mkdir(exist_ok=True)
        batch_id = entry.wire.id
        summary = await anyio.to_thread.run_sync(
            lambda: write_results(
                Path(entry.input_path),
                scratch,
                batch_id=batch_id,
                endpoint=entry.wire.endpoint,
                done=step.done,
                expired=step.final_status == "expired",
                reply=emulator.reply_in_thread,
                created=int(step.at),
                line_faults=entry.plan.line_faults,
                seed=cfg.seed,
                keep_empty_error_file=cfg.azure_mode and step.final_status == "completed",
            )
        )
        created = int(step.at)
        expires_at = created + (entry.output_expires_seconds or _THIRTY_DAYS)
        file_ids: list[str | None] = []
        for path in (summary.output_path, summary.error_path):
            if path is None:
                file_ids.append(None)
                continue
            obj = emulator.store.adopt(
                path,
                filename=path.name,
                purpose="batch_output",
                created_at=created,
                expires_at=expires_at,
            )
            file_ids.append(obj.id)
        return finish(entry, step, summary, file_ids[0], file_ids[1])
