"""Turning an OpenAI (or Azure) Batch object into kyro's neutral :class:`kyro.provider.BatchStatus`.

Statuses are read case-insensitively (Azure's older API versions say ``"Validating"``), an
unknown status is reported as pending with the raw text kept in ``provider_status`` (a poll
never fails because a server grew a new state), null request counts read as 0, and
``created_at`` may be unix seconds or an ISO-8601 string.
"""

from __future__ import annotations

from kyro.provider import BatchError, BatchState, BatchStatus, RequestCounts, parse_timestamp
from kyro_openai._api import WireBatch, WireBatchError

__all__ = ["RETRY_LATER_CODES", "batch_status"]

_STATES: dict[str, BatchState] = {
    "validating": "pending",
    "queued": "pending",
    "in_progress": "running",
    "inprogress": "running",
    "finalizing": "finalizing",
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelling": "cancelling",
    "cancelled": "cancelled",
}

#: Job-level error codes that are not the input's fault: resubmit the same file later.
RETRY_LATER_CODES = frozenset({"token_limit_exceeded"})


def _error(wire: WireBatchError) -> BatchError:
    code = wire.code or "unknown"
    return BatchError(
        code=code,
        message=wire.message or "",
        line=wire.line,
        param=wire.param,
        retry_later=code in RETRY_LATER_CODES,
    )


def batch_status(batch: WireBatch) -> BatchStatus:
    """The neutral status of one Batch object.

    Example::

        batch_status(WireBatch(id="batch_1", status="In_Progress")).state   # RUNNING
    """
    raw = batch.status or ""
    key = raw.strip().lower().replace("-", "_").replace(" ", "_")
    counts = batch.request_counts
    errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
    return BatchStatus(
        batch_id=batch.id,
        state=_STATES.get(key, "pending"),
        request_counts=RequestCounts(
            total=(counts.total or 0) if counts else 0,
            completed=(counts.completed or 0) if counts else 0,
            failed=(counts.failed or 0) if counts else 0,
        ),
        errors=tuple(_error(error) for error in errors),
        metadata=dict(batch.metadata or {}),
        created_at=parse_timestamp(batch.created_at),
        provider_status=batch.status,
    )
