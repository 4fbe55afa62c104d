"""The emulator's state: batches on a controllable clock, their requests and results on disk.

A batch's requests are written to a JSONL file under the emulator's folder when it is created,
and its results JSONL is written there when it ends, so memory stays flat in the batch size.
Every read (retrieve, list, cancel, results) first brings the batch up to the emulator's
``now``: ``in_progress`` ends after ``in_progress_seconds`` (or expires after
``expiry_seconds``), ``canceling`` ends after ``canceling_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from kyro_anthropic.testing._config import EmulatorConfig
from kyro_anthropic.testing._faults import CreationPlan, Fault, Faults
from kyro_anthropic.testing._validate import ApiError, check_item, check_params
from kyro_openai.testing import Responder, default_responder

__all__ = ["Emulator", "EmulatorStats", "new_id", "rfc3339"]

_encoder = msgspec.json.Encoder()


def new_id(prefix: str, length: int = 24) -> str:
    """A random id such as ``msgbatch_01…``."""
    return prefix + "01" + secrets.token_hex(length)[: length - 2]


def rfc3339(seconds: float | None) -> str | None:
    """An RFC 3339 UTC time with microseconds, as the real service writes them."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EmulatorStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the emulator has done so far."""

    requests: int = 0
    batches_created: int = 0
    batches_canceled: int = 0
    results_downloads: int = 0
    faults_fired: int = 0


class _Batch:
    """One batch and everything the emulator knows about it."""

    def __init__(
        self, batch_id: str, created: float, path: Path, ids: list[str], plan: CreationPlan
    ) -> None:
        self.id = batch_id
        self.created = created
        self.path = path
        self.total = len(ids)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.models: set[str] = set()
        self.plan = plan
        self.status = "in_progress"
        self.cancel_at: float | None = None
        self.ended_at: float | None = None
        self.results: Path | None = None
        self.counts = {"processing": self.total, "succeeded": 0, "errored": 0, "canceled": 0}
        self.counts["expired"] = 0
        self.deleted = False


class Emulator:
    """A stateful Message Batches service, mounted in-process (``app``) or served over HTTP.

    Example::

        with Emulator(EmulatorConfig(in_progress_seconds=60)) as emulator:
            emulator.advance(60)      # every running batch ends
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        responder: Responder = default_responder,
        faults: list[Fault] | tuple[Fault, ...] = (),
    ) -> None:
        from kyro_anthropic.testing._app import create_app

        self.config = config or EmulatorConfig()
        self._clock = clock
        self._offset = 0.0
        self.responder = responder
        self.faults = Faults(self.config.seed)
        self.faults.add(*faults)
        self._own_root = self.config.data_dir is None
        if self.config.data_dir is None:
            self.root = Path(tempfile.mkdtemp(prefix="kyro-anthropic-emulator-"))
        else:
            self.root = Path(self.config.data_dir)
            self.root.mkdir(parents=True, exist_ok=True)
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.RLock()
        self._counters = dict.fromkeys(EmulatorStats.__struct_fields__, 0)
        self.app = create_app(self)

    # -- clock and counters ------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's time: the clock plus every ``advance``."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward."""
        self._offset += seconds

    def bump(self, name: str, by: int = 1) -> None:
        """Add ``by`` to a counter of :class:`EmulatorStats`."""
        with self._lock:
            self._counters[name] += by

    def stats(self) -> EmulatorStats:
        """The counters so far."""
        with self._lock:
            counters = dict(self._counters, faults_fired=self.faults.fired)
        return EmulatorStats(**counters)

    # -- batches -----------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        """Create a batch from a decoded create body; ApiError 400 as the real service."""
        if not isinstance(body, dict) or set(body) != {"requests"}:
            extra = sorted(set(body) - {"requests"}) if isinstance(body, dict) else []
            if extra:
                raise ApiError(
                    400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"
                )
            raise ApiError(400, "invalid_request_error", "requests: Field required")
        items = body["requests"]
        if not isinstance(items, list) or not items:
            raise ApiError(
                400, "invalid_request_error", "requests: List should have at least 1 item"
            )
        if len(items) > self.config.max_requests:
            raise ApiError(
                400,
                "invalid_request_error",
                f"requests: List should have at most {self.config.max_requests} items",
            )
        seen: set[str] = set()
        ids: list[str] = []
        for index, item in enumerate(items):
            custom_id, _ = check_item(item, index)
            if custom_id in seen:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"requests.{index}.custom_id: custom_id '{custom_id}' is not unique in "
                    "this batch; each request needs its own",
                )
            seen.add(custom_id)
            ids.append(custom_id)
        batch_id = new_id("msgbatch_")
        path = self.root / f"{batch_id}.requests.jsonl"
        with path.open("wb") as out:
            for item in items:
                out.write(_encoder.encode(item) + b"\n")
        with self._lock:
            batch = _Batch(batch_id, self.now(), path, ids, self.faults.take_creation())
            for item in items:
                model = item["params"].get("model")
                if isinstance(model, str):
                    batch.models.add(model)
            self._batches[batch_id] = batch
        self.bump("batches_created")
        return self._view(batch)

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.deleted:
            raise ApiError(404, "not_found_error", f"No batch found with id '{batch_id}'.")
        return batch

    def get(self, batch_id: str) -> dict[str, Any]:
        """The batch object, advanced to now; ApiError 404 for an unknown id."""
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch)
            return self._view(batch)

    def listing(self, *, limit: int, after_id: str | None, before_id: str | None) -> dict[str, Any]:
        """One page of batches, newest first (``after_id``: older ones, ``before_id``: newer)."""
        with self._lock:
            ordered = [b for b in reversed(self._batches.values()) if not b.deleted]
            ordered.sort(key=lambda b: b.created, reverse=True)
            ids = [b.id for b in ordered]
            if after_id is not None:
                start = ids.index(after_id) + 1 if after_id in ids else len(ids)
                page = ordered[start : start + limit]
                has_more = start + limit < len(ordered)
            elif before_id is not None:
                end = ids.index(before_id) if before_id in ids else 0
                page = ordered[max(0, end - limit) : end]
                has_more = end - limit > 0
            else:
                page = ordered[:limit]
                has_more = limit < len(ordered)
            for batch in page:
                self._advance(batch)
            data = [self._view(b) for b in page]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Start cancelling a running batch; ApiError 400 once it has ended."""
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch)
            if batch.status == "ended":
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"Batch '{batch_id}' has ended and cannot be canceled.",
                )
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_at = self.now()
                self.bump("batches_canceled")
                self._advance(batch)
            return self._view(batch)

    def delete(self, batch_id: str) -> dict[str, Any]:
        """Delete an ended batch; ApiError 400 while it still runs."""
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch)
            if batch.status != "ended":
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"Batch '{batch_id}' is still {batch.status}; cancel it and let it end.",
                )
            batch.deleted = True
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results_path(self, batch_id: str) -> Path:
        """The ended batch's results file; ApiError when it has not ended or is archived."""
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch)
            if batch.status != "ended" or batch.results is None:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"Batch '{batch_id}' has not ended yet; its results are not available.",
                )
            if self.now() > batch.created + self.config.retention_seconds:
                raise ApiError(
                    404, "not_found_error", f"The results of batch '{batch_id}' have expired."
                )
            self.bump("results_downloads")
            return batch.results

    def expire(self, batch_id: str, *, completed_lines: int | None = None) -> None:
        """End a running batch as expired now, with ``completed_lines`` finished first."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise KeyError(batch_id)
            self._advance(batch)
            if batch.status != "ended":
                self._end(batch, "expired", completed_lines)

    def batches_containing(self, text: str) -> list[dict[str, Any]]:
        """Every batch (deleted ones too) whose requests contain ``text``, for test checks."""
        needle = text.encode()
        with self._lock:
            found = [b for b in self._batches.values() if needle in b.path.read_bytes()]
        return [
            {
                "id": b.id,
                "requests": b.total,
                "requests_sha256": b.sha256,
                "models": sorted(b.models),
                "processing_status": b.status,
            }
            for b in found
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    def _advance(self, batch: _Batch) -> None:
        now = self.now()
        config = self.config
        if batch.status == "in_progress":
            if batch.plan.expire_after_lines is not None:
                self._end(batch, "expired", batch.plan.expire_after_lines)
            elif now >= batch.created + config.expiry_seconds:
                self._end(batch, "expired", None)
            elif now >= batch.created + config.in_progress_seconds:
                self._end(batch, None, None)
        elif batch.status == "canceling":
            assert batch.cancel_at is not None
            if now >= batch.cancel_at + config.canceling_seconds:
                self._end(batch, "canceled", None)

    def _end(self, batch: _Batch, cut: str | None, finished: int | None) -> None:
        """Write the results: every request runs, unless ``cut`` stops the rest."""
        if cut is not None and finished is None:
            finished = int(batch.total * self.config.partial_fraction)
        limit = batch.total if cut is None or finished is None else min(finished, batch.total)
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        out_path = self.root / f"{batch.id}.results.jsonl"
        with batch.path.open("rb") as source, out_path.open("wb") as out:
            for number, raw in enumerate(source):
                item = json.loads(raw)
                custom_id = item["custom_id"]
                if number >= limit:
                    assert cut is not None
                    counts[cut] += 1
                    result: dict[str, Any] | None = {"type": cut}
                else:
                    result = self._run(item["params"], custom_id, batch.plan)
                    if result is None:  # a "missing" fault: counted, never written
                        counts["succeeded"] += 1
                        continue
                    counts[result["type"]] += 1
                out.write(_encoder.encode({"custom_id": custom_id, "result": result}) + b"\n")
        batch.results = out_path
        batch.counts = counts
        batch.status = "ended"
        batch.ended_at = self.now()

    def _run(
        self, params: dict[str, Any], custom_id: str, plan: CreationPlan
    ) -> dict[str, Any] | None:
        seed = self.config.seed
        for fault in plan.lines:
            if fault.matches(custom_id, seed):
                if fault.mode == "missing":
                    return None
                if fault.mode == "errored":
                    return _errored(
                        fault.error_type,
                        fault.message or f"Injected {fault.error_type} (emulated).",
                    )
                return {
                    "type": "succeeded",
                    "message": _message(params, text="I think it is fine."),
                }
        problem = check_params(params)
        if problem is not None:
            return _errored(*problem)
        return {"type": "succeeded", "message": self._reply(params, custom_id)}

    def _reply(self, params: dict[str, Any], custom_id: str) -> dict[str, Any]:
        system = params.get("system")
        messages = list(params.get("messages") or [])
        if isinstance(system, str):
            messages = [{"role": "system", "content": system}, *messages]
        answer = self.responder({"model": params.get("model"), "messages": messages})
        if not isinstance(answer, str):
            raise TypeError("the Anthropic emulator takes synchronous responders only")
        choice = params.get("tool_choice")
        tools = params.get("tools") or []
        if isinstance(choice, dict) and choice.get("type") in ("tool", "any", "auto") and tools:
            name = choice.get("name") or tools[0].get("name")
            try:
                verdict = json.loads(answer)
            except ValueError:
                verdict = None
            if isinstance(verdict, dict):
                return _message(params, tool=(name, verdict))
        return _message(params, text=answer)

    def _view(self, batch: _Batch) -> dict[str, Any]:
        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": dict(batch.counts),
            "ended_at": rfc3339(batch.ended_at),
            "created_at": rfc3339(batch.created),
            "expires_at": rfc3339(batch.created + self.config.expiry_seconds),
            "archived_at": None,
            "cancel_initiated_at": rfc3339(batch.cancel_at),
            "results_url": f"/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def batches(self) -> Iterator[dict[str, Any]]:
        """Every batch not deleted, oldest first, advanced to now."""
        with self._lock:
            for batch in list(self._batches.values()):
                if not batch.deleted:
                    self._advance(batch)
                    yield self._view(batch)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the emulator's folder if it made it."""
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _message(
    params: dict[str, Any], *, text: str | None = None, tool: tuple[str, Any] | None = None
) -> dict[str, Any]:
    prompt = json.dumps(params.get("messages"), ensure_ascii=False) + str(
        params.get("system") or ""
    )
    if tool is not None:
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": new_id("toolu_"), "name": tool[0], "input": tool[1]}
        ]
        produced = json.dumps(tool[1])
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": text or ""}]
        produced = text or ""
        stop = "end_turn"
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": params.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": _tokens(prompt), "output_tokens": _tokens(produced)},
    }


def _errored(type_: str, message: str) -> dict[str, Any]:
    return {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {"type": type_, "message": message},
            "request_id": new_id("req_"),
        },
    }
