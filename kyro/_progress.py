"""What ``BatchJudge.status()`` reports: progress per batch and in total, never finalizing."""

from __future__ import annotations

import msgspec

from kyro._types import BatchError, BatchState, RequestCounts

__all__ = ["BatchProgress", "JobProgress"]


class BatchProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One remote batch of a job: which shard and attempt it runs, and how far it is.

    ``batch_id`` is None while the batch is being created (or after a crash before the
    provider answered); ``provider`` is ``primary`` or ``fallback``.
    """

    shard: int
    attempt: int
    model: str
    lines: int
    batch_id: str | None
    state: BatchState | None
    request_counts: RequestCounts = RequestCounts()
    errors: tuple[BatchError, ...] = ()
    provider: str = "primary"


class JobProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job's progress: its phase, every batch, and request counts summed over batches.

    ``phase`` is ``submitting``, ``pending``, ``cancelling``, ``ended`` (finished with
    failures, state kept), or ``done`` (results collected). ``requests`` counts the job's
    requests (transcripts × judges × runs); ``totals`` sums the latest attempt of each shard.

    Example::

        progress = await judge.status()
        print(progress.phase, progress.totals.completed, "/", progress.requests)
    """

    job_id: str
    phase: str
    requests: int
    batches: tuple[BatchProgress, ...]
    totals: RequestCounts

    @property
    def terminal(self) -> bool:
        """True when every batch has reached a terminal state."""
        return all(b.state is not None and b.state.terminal for b in self.batches)
