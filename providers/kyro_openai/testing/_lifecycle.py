"""A batch's life as pure functions of the clock: what happens next, and the states it yields.

The emulator never runs timers. When a batch is read it asks :func:`next_step` for the
earliest event due by now (validation, the end of a phase, a forced or window expiry),
applies it, and asks again until nothing more is due.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from kyro_openai.testing._config import EmulatorConfig
from kyro_openai.testing._faultbook import CreationPlan
from kyro_openai.testing._results import ResultSummary
from kyro_openai.testing._validate import ValidationResult
from kyro_openai.testing._wire import BatchErrorItem, BatchErrors, BatchObject, BatchUsage, Counts

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "BatchEntry",
    "Step",
    "finish",
    "finished_lines",
    "next_step",
    "running_counts",
    "validated",
]

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ACTIVE = frozenset({"validating", "in_progress", "finalizing"})


class BatchEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A batch's wire object plus what the emulator needs to move it along."""

    wire: BatchObject
    phase_at: float
    input_path: str = ""
    output_expires_seconds: int | None = None
    plan: CreationPlan = CreationPlan()
    total: int = 0
    planned_failures: int = 0
    cancel_done: int = 0
    force_expire_at: float | None = None
    force_expire_lines: int | None = None


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One due event: validate, start finalizing, write results, or refresh the counts."""

    action: Literal["validate", "finalizing", "results", "counts"]
    at: float
    done: int = 0
    final_status: str = "completed"
    counts: Counts | None = None


def _progress(entry: BatchEntry, at: float, cfg: EmulatorConfig) -> float:
    if cfg.in_progress_seconds <= 0:
        return 1.0
    return min(1.0, max(0.0, (at - entry.phase_at) / cfg.in_progress_seconds))


def finished_lines(entry: BatchEntry, at: float, cfg: EmulatorConfig) -> int:
    """How many requests had finished at ``at`` (for cancel and expiry)."""
    fraction = (
        cfg.partial_fraction if cfg.partial_fraction is not None else _progress(entry, at, cfg)
    )
    return math.floor(fraction * entry.total)


def running_counts(entry: BatchEntry, at: float, cfg: EmulatorConfig) -> Counts:
    """The request counts of an ``in_progress`` batch at time ``at`` (grow linearly)."""
    fraction = _progress(entry, at, cfg)
    processed = math.floor(fraction * entry.total)
    failed = min(processed, math.floor(fraction * entry.planned_failures))
    return Counts(total=entry.total, completed=processed - failed, failed=failed)


def next_step(entry: BatchEntry, now: float, cfg: EmulatorConfig) -> Step | None:
    """The earliest event due by ``now``, or ``None`` when the batch is up to date."""
    status = entry.wire.status
    forced = entry.force_expire_at
    if status == "validating":
        due = entry.phase_at + cfg.validating_seconds
        if forced is not None:
            due = min(due, max(forced, entry.phase_at))
        return Step(action="validate", at=due) if now >= due else None
    if status == "in_progress":
        events: list[Step] = [
            Step(action="finalizing", at=entry.phase_at + cfg.in_progress_seconds)
        ]
        if forced is not None:
            at = max(forced, entry.phase_at)
            done = entry.force_expire_lines
            done = finished_lines(entry, at, cfg) if done is None else min(done, entry.total)
            events.append(Step(action="results", at=at, done=done, final_status="expired"))
        if entry.plan.expire_after_lines is not None:
            done = min(entry.plan.expire_after_lines, entry.total)
            share = done / entry.total if entry.total else 1.0
            at = entry.phase_at + cfg.in_progress_seconds * share
            events.append(Step(action="results", at=at, done=done, final_status="expired"))
        window_end = entry.wire.created_at + cfg.completion_window_seconds
        if not cfg.azure_mode:
            done = finished_lines(entry, window_end, cfg)
            events.append(Step(action="results", at=window_end, done=done, final_status="expired"))
        # On a tie an expiry wins over the normal end, so "expire after 0 lines" expires.
        first = min(events, key=lambda step: (step.at, step.action == "finalizing"))
        if now >= first.at:
            return first
        counts = running_counts(entry, now, cfg)
        if counts != entry.wire.request_counts:
            return Step(action="counts", at=now, counts=counts)
        return None
    if status == "finalizing":
        step = Step(action="results", at=entry.phase_at + cfg.finalizing_seconds, done=entry.total)
        if forced is not None and max(forced, entry.phase_at) < step.at:
            done = entry.total if entry.force_expire_lines is None else entry.force_expire_lines
            step = Step(
                action="results", at=max(forced, entry.phase_at), done=done, final_status="expired"
            )
        return step if now >= step.at else None
    if status == "cancelling":
        due = entry.phase_at + cfg.cancelling_seconds
        if now >= due:
            return Step(action="results", at=due, done=entry.cancel_done, final_status="cancelled")
    return None


def validated(
    entry: BatchEntry, result: ValidationResult, at: float, cfg: EmulatorConfig
) -> BatchEntry:
    """The batch after validation: ``failed`` with errors, or ``in_progress``."""
    wire = entry.wire
    errors = result.errors
    if not errors and entry.plan.token_limit:
        message = (
            f"Enqueued token limit reached for {result.model} in organization "
            f"{cfg.organization}. Limit: {cfg.token_limit:,} enqueued tokens. Please try "
            "again once some in_progress batches have been completed."
        )
        errors = (BatchErrorItem(code="token_limit_exceeded", message=message),)
    if errors:
        failed = msgspec.structs.replace(
            wire,
            status="failed",
            failed_at=int(at),
            errors=BatchErrors(data=errors),
            model=result.model,
        )
        return msgspec.structs.replace(entry, wire=failed, phase_at=at)
    running = msgspec.structs.replace(
        wire,
        status="in_progress",
        in_progress_at=int(at),
        model=result.model,
        request_counts=Counts(total=result.total),
    )
    return msgspec.structs.replace(
        entry,
        wire=running,
        phase_at=at,
        total=result.total,
        planned_failures=result.planned_failures,
    )


def finish(
    entry: BatchEntry,
    step: Step,
    summary: ResultSummary | None,
    output_file_id: str | None,
    error_file_id: str | None,
) -> BatchEntry:
    """The batch once its results are written: completed, cancelled or expired."""
    at = int(step.at)
    stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}
    changes: dict[str, object] = {"status": step.final_status, stamp[step.final_status]: at}
    if summary is not None:
        changes["request_counts"] = Counts(
            total=entry.total, completed=summary.completed, failed=summary.failed
        )
        changes["usage"] = BatchUsage(
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            total_tokens=summary.input_tokens + summary.output_tokens,
        )
    changes["output_file_id"] = output_file_id
    changes["error_file_id"] = error_file_id
    wire = msgspec.structs.replace(entry.wire, **changes)
    return msgspec.structs.replace(entry, wire=wire, phase_at=step.at)
