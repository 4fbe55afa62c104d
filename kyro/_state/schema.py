"""The job state's data: every struct the state files hold (see :mod:`kyro._state.store`).

All are frozen ``msgspec.Struct``s written with ``omit_defaults``; update them with
``msgspec.structs.replace`` or the ``with_*`` helpers, then ``StateStore.save`` the job.
"""

from __future__ import annotations

import datetime
from typing import Literal

import msgspec

from kyro._cost.budget import JobBudget
from kyro._types import BatchError, BatchState, RequestCounts, ResultError, Usage
from kyro._verdicts.result_types import OverallStatus, ResultCounts
from kyro._verdicts.vote import VoteSettings

__all__ = [
    "PIPELINE_STATE_FORMAT",
    "STATE_FORMAT",
    "FinishedJob",
    "JobPhase",
    "JobState",
    "ShardState",
    "StageRecord",
    "SubmissionState",
]

STATE_FORMAT = 1
PIPELINE_STATE_FORMAT = 2
"""A staged job's state: a kyro that knows only format 1 refuses it rather than finishing
it as a plain job (which would skip its later stages)."""
JobPhase = Literal["submitting", "pending", "collecting", "cancelling", "ended"]
OptionValue = str | int | float | bool | None


class SubmissionState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One attempt at running a shard as a remote batch (write-ahead: saved before the call).

    Attempt 1 submits the shard itself; later attempts submit ``file``, a copy of the shard
    holding only the requests that came back retryable. ``batch_id`` is None between the
    intent and the provider's answer: after a crash, ask ``provider.find(metadata)``.
    ``via`` names the provider that ran it (``primary`` or ``fallback``), ``reason`` why it
    exists (``initial``, ``resubmit``, ``token_limit``); ``counts`` and ``observed_at`` (when
    it was first seen terminal) come from polls; ``downloaded`` marks its results as saved.

    Example::

        SubmissionState(attempt=1, file="shards/shard-0000-gpt-4o-mini.jsonl", lines=500,
                        intent_at=now)
    """

    attempt: int
    file: str
    lines: int
    intent_at: datetime.datetime
    via: str = "primary"
    reason: str = "initial"
    batch_id: str | None = None
    submitted_at: datetime.datetime | None = None
    state: BatchState | None = None
    errors: tuple[BatchError, ...] = ()
    counts: RequestCounts | None = None
    observed_at: datetime.datetime | None = None
    downloaded: bool = False


class ShardState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One batch input file of the job and every attempt to run it.

    ``name`` is relative to the sidecar folder; ``stage`` is the pipeline stage it belongs to
    (0 for every shard of a job without one).

    Example::

        shard.attempts[-1].batch_id        # the batch currently responsible for this shard
    """

    index: int
    name: str
    model: str
    lines: int
    bytes: int
    sha256: str
    stage: int = 0
    attempts: tuple[SubmissionState, ...] = ()

    def with_attempt(self, attempt: SubmissionState) -> ShardState:
        """A copy with ``attempt`` replacing the one of the same number, or appended."""
        kept = tuple(a for a in self.attempts if a.attempt != attempt.attempt)
        merged = sorted((*kept, attempt), key=lambda a: a.attempt)
        return msgspec.structs.replace(self, attempts=tuple(merged))


class StageRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One planned pipeline stage: how many transcripts qualified and requests it sent.

    ``cached_runs`` counts the runs the reply cache answered (not sent); ``ceiling_usd`` is
    the cost ceiling of the requests sent, as the budget check priced it (None when the
    stage was planned without a price, e.g. stage 0, whose figure is the job's own).

    Example::

        StageRecord(stage=1, transcripts=412, requests=1236)
    """

    stage: int
    transcripts: int
    requests: int
    cached_runs: int = 0
    ceiling_usd: float | None = None


class JobState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A submitted job: enough for check() to finish it without the config or transcripts.

    A pipeline job (``stages`` > 1) is the exception: each later stage is planned from the
    config (whose sha256 must still match), the run ``variables``, the transcripts kept in
    the sidecar folder and ``outcomes`` (the verdicts of the stages before ``stage``).
    ``planned`` records every stage planned so far; ``unexpected_lines`` counts result lines
    of earlier stages that belonged to no request.

    ``samples`` > 1 when each transcript × judge's runs were sent as one request with that
    many samples (``n``); ``cached_runs`` were answered by the reply cache and never sent;
    ``max_cost`` is the submit's budget and ``ceiling_usd`` the cost
    ceiling of what was sent; ``budget`` holds what resubmissions are checked against.

    Example::

        state = store.load()
        if state is not None:
            print(state.job_id, state.status, [s.attempts[-1].batch_id for s in state.shards])
    """

    job_id: str
    provider: str
    config_path: str
    config_sha256: str
    judges: tuple[str, ...]
    runs: int
    transcripts: int
    created_at: datetime.datetime
    format: int = STATE_FORMAT
    status: JobPhase = "submitting"
    cancel_requested: bool = False
    vote: VoteSettings = VoteSettings()
    max_resubmits: int = 2
    provider_options: dict[str, OptionValue] = {}
    shards: tuple[ShardState, ...] = ()
    models: dict[str, str] = {}
    pass_thresholds: dict[str, float] = {}
    stage: int = 0
    stages: int = 1
    variables: dict[str, str] = {}
    outcomes: str | None = None
    planned: tuple[StageRecord, ...] = ()
    unexpected_lines: int = 0
    samples: int = 1
    cached_runs: int = 0
    max_cost: float | None = None
    ceiling_usd: float | None = None
    budget: JobBudget | None = None

    @property
    def pipeline(self) -> bool:
        """True for a staged job (a config with depends_on/on_failure)."""
        return self.stages > 1 or bool(self.planned)

    def with_shard(self, shard: ShardState) -> JobState:
        """A copy with ``shard`` replacing the shard of the same index, or appended."""
        kept = [s for s in self.shards if s.index != shard.index]
        merged = sorted((*kept, shard), key=lambda s: s.index)
        return msgspec.structs.replace(self, shards=tuple(merged))


class FinishedJob(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What stays of a finished job: its result without the evaluations (those are in the
    results file), so a later check() — from any process — returns the same result.

    Example::

        store.finish(result.job_id, result)
        store.load_finished().status == result.status     # True
    """

    job_id: str
    status: OverallStatus
    counts: ResultCounts
    usage: Usage
    results_path: str
    finished_at: datetime.datetime
    models: dict[str, str] = {}
    config_path: str | None = None
    failure: ResultError | None = None
