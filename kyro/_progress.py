"""What ``BatchJudge.status()`` reports: progress per batch and in total, never finalizing."""

from __future__ import annotations

import msgspec

from kyro._jobstate import JobState
from kyro._types import BatchError, BatchState, RequestCounts

__all__ = ["BatchProgress", "JobProgress", "progress_of"]


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


def progress_of(state: JobState) -> JobProgress:
    """A :class:`JobProgress` from the saved state (no remote calls)."""
    batches = []
    completed = failed = total = 0
    for shard in state.shards:
        for attempt in shard.attempts:
            counts = attempt.counts or RequestCounts(total=attempt.lines)
            batches.append(
                BatchProgress(
                    shard=shard.index,
                    attempt=attempt.attempt,
                    model=shard.model,
                    lines=attempt.lines,
                    batch_id=attempt.batch_id,
                    state=attempt.state,
                    request_counts=counts,
                    errors=attempt.errors,
                    provider=attempt.via,
                )
            )
        # A request completes in at most one attempt (later attempts carry only what had not),
        # so completions add up over attempts; failures count as of the latest attempt.
        completed += sum(a.counts.completed for a in shard.attempts if a.counts is not None)
        latest = shard.attempts[-1] if shard.attempts else None
        if latest is not None and latest.counts is not None:
            failed += latest.counts.failed
        total += shard.lines
    requests = state.transcripts * len(state.judges) * state.runs
    return JobProgress(
        job_id=state.job_id,
        phase=state.status,
        requests=requests,
        batches=tuple(batches),
        totals=RequestCounts(total=total, completed=completed, failed=failed),
    )
