"""What ``BatchJudge.status()`` reports: progress per batch and in total, never finalizing."""

from __future__ import annotations

import msgspec

from kyro._state.schema import JobState, StageRecord
from kyro._types import BatchError, BatchState, RequestCounts, is_terminal

__all__ = ["BatchProgress", "JobProgress", "StageProgress", "progress_of"]


class BatchProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One remote batch of a job: which shard and attempt it runs, and how far it is.

    ``batch_id`` is None while the batch is being created (or after a crash before the
    provider answered); ``provider`` is ``primary`` or ``fallback``; ``stage`` the pipeline
    stage it runs (0 for a job without one).
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
    stage: int = 0


class StageProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One planned stage of a pipeline job: transcripts that qualified, requests, done.

    Example::

        for stage in progress.per_stage:
            print(stage.stage, stage.transcripts, stage.totals.completed, "/", stage.requests)
    """

    stage: int
    transcripts: int
    requests: int
    totals: RequestCounts = RequestCounts()


class JobProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job's progress: its phase, every batch, and request counts summed over batches.

    ``phase`` is ``submitting``, ``pending``, ``cancelling``, ``ended`` (finished with
    failures, state kept), or ``done`` (results collected). ``requests`` counts the job's
    requests (transcripts × judges × runs); ``totals`` sums the latest attempt of each shard.
    A pipeline job is at ``stage`` (0-based) of ``stages``; ``requests`` then counts the
    requests of the stages planned so far, and ``per_stage`` has each planned stage's counts.

    Example::

        progress = await judge.status()
        print(progress.phase, progress.totals.completed, "/", progress.requests)
    """

    job_id: str
    phase: str
    requests: int
    batches: tuple[BatchProgress, ...]
    totals: RequestCounts
    stage: int = 0
    stages: int = 1
    per_stage: tuple[StageProgress, ...] = ()

    @property
    def terminal(self) -> bool:
        """True when every batch has reached a terminal state."""
        return all(is_terminal(b.state) for b in self.batches)


def progress_of(state: JobState) -> JobProgress:
    """A :class:`JobProgress` from the saved state (no remote calls)."""
    batches = []
    per_stage: dict[int, list[int]] = {}
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
                    stage=shard.stage,
                )
            )
        # A request completes in at most one attempt (later attempts carry only what had not),
        # so completions add up over attempts; failures count as of the latest attempt.
        sums = per_stage.setdefault(shard.stage, [0, 0, 0])
        sums[0] += sum(a.counts.completed for a in shard.attempts if a.counts is not None)
        latest = shard.attempts[-1] if shard.attempts else None
        if latest is not None and latest.counts is not None:
            sums[1] += latest.counts.failed
        sums[2] += shard.lines
    completed = sum(s[0] for s in per_stage.values())
    failed = sum(s[1] for s in per_stage.values())
    total = sum(s[2] for s in per_stage.values())
    if state.pipeline:
        requests = sum(record.requests for record in state.planned)
    else:
        requests = state.transcripts * len(state.judges) * state.runs
    return JobProgress(
        job_id=state.job_id,
        phase=state.status,
        requests=requests,
        batches=tuple(batches),
        totals=RequestCounts(total=total, completed=completed, failed=failed),
        stage=state.stage,
        stages=state.stages,
        per_stage=tuple(_stage(record, per_stage.get(record.stage)) for record in state.planned),
    )


def _stage(record: StageRecord, sums: list[int] | None) -> StageProgress:
    completed, failed, total = sums or (0, 0, 0)
    return StageProgress(
        stage=record.stage,
        transcripts=record.transcripts,
        requests=record.requests,
        totals=RequestCounts(total=total, completed=completed, failed=failed),
    )
