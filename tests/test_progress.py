"""Job progress from the saved state: per batch, and totals that survive resubmission."""

from __future__ import annotations

import datetime

from kyro._state.progress import progress_of
from kyro._state.schema import JobState, ShardState, SubmissionState
from kyro.provider import BatchState, RequestCounts

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _attempt(
    number: int, lines: int, counts: RequestCounts | None, state: BatchState | None
) -> SubmissionState:
    return SubmissionState(
        attempt=number,
        file=f"shards/s.attempt-{number}.jsonl",
        lines=lines,
        intent_at=NOW,
        batch_id=f"batch_{number}",
        state=state,
        counts=counts,
        reason="initial" if number == 1 else "resubmit",
    )


def test_totals_add_completions_over_attempts_and_take_the_latest_failures() -> None:
    """Requests finished by the first batch still count once a resubmission has taken over."""
    first = _attempt(1, 10, RequestCounts(total=10, completed=6, failed=4), "expired")
    second = _attempt(2, 4, RequestCounts(total=4, completed=3, failed=1), "completed")
    shard = ShardState(
        index=0,
        name="shards/s.jsonl",
        model="m",
        lines=10,
        bytes=100,
        sha256="x",
        attempts=(first, second),
    )
    untouched = ShardState(index=1, name="shards/t.jsonl", model="m", lines=5, bytes=50, sha256="y")
    state = JobState(
        job_id="kyro-1",
        provider="fake",
        config_path="judges.yml",
        config_sha256="abc",
        judges=("a", "b"),
        runs=1,
        transcripts=8,
        created_at=NOW,
        status="pending",
        shards=(shard, untouched),
    )

    progress = progress_of(state)

    assert progress.requests == 16
    assert progress.totals == RequestCounts(total=15, completed=9, failed=1)
    assert [(b.shard, b.attempt, b.batch_id) for b in progress.batches] == [
        (0, 1, "batch_1"),
        (0, 2, "batch_2"),
    ]
    assert progress.terminal  # both batches of the job have reached a terminal state
