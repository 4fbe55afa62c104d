"""One check() of a job: poll, download, resubmit what is worth it, or finish.

Decisions per shard, on the latest attempt once every batch is terminal:

* ``failed`` with only retry-later errors (OpenAI's ``token_limit_exceeded``): the same file
  is submitted again once ``token_limit_wait`` seconds have passed (check() returns None
  meanwhile), at most ``MAX_TOKEN_LIMIT_RETRIES`` times — never after kyro's own cancel();
* ``failed`` otherwise (the input was refused): the job ends ``failed``;
* ``cancelled`` after kyro's own cancel(): the job ends ``cancelled``;
* otherwise (``completed``, ``expired``, cancelled by someone else): requests whose best
  outcome is retryable (expired, cancelled, missing, 429, 5xx) go out again as a new batch
  of the same job — through the fallback provider when there is one — up to
  ``max_resubmits`` times per shard. What is still unfinished after that is reported as
  errored runs; if a batch expired or was cancelled, the job ends ``expired``/``cancelled``.

A pipeline job does all of this per stage (only the current stage's batches are collected
and sent again); a stage that is done starts the next one (see :mod:`kyro._job.stage_job`), and
check() returns None until the last stage is done.
"""

from __future__ import annotations

import datetime
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import msgspec

from kyro._cost.budget import resubmit_refusal
from kyro._job.collect import aggregate
from kyro._job.stage_job import collect_stage, finish_pipeline, next_stage
from kyro._state.store import JobState, ShardState
from kyro._types import BatchState
from kyro._verdicts.result_types import BatchRunResult

if TYPE_CHECKING:
    from kyro._job.batch_judge import BatchJudge
    from kyro._types import Usage

__all__ = ["MAX_TOKEN_LIMIT_RETRIES", "run_check"]

_log = logging.getLogger("kyro")

MAX_TOKEN_LIMIT_RETRIES = 24


def _retry_later(shard: ShardState) -> bool:
    latest = shard.attempts[-1]
    return (
        latest.state is BatchState.FAILED
        and bool(latest.errors)
        and all(e.retry_later for e in latest.errors)
    )


def _resubmits(shard: ShardState, reason: str) -> int:
    return sum(1 for a in shard.attempts if a.reason == reason)


async def run_check(judge: BatchJudge, state: JobState) -> BatchRunResult | None:
    """Advance the job as far as one check can; see the module docstring."""
    while True:
        state = await judge.poll_all(state)
        if not all(s.attempts[-1].state and s.attempts[-1].state.terminal for s in state.shards):
            return None
        state = await judge.run_download(state)

        waiting = False
        fatal = False
        for shard in state.shards:
            # After kyro's own cancel() nothing is sent again; the job ends cancelled below.
            if state.cancel_requested or not _retry_later(shard):
                continue
            if _resubmits(shard, "token_limit") >= MAX_TOKEN_LIMIT_RETRIES:
                fatal = True
                continue
            observed = shard.attempts[-1].observed_at or shard.attempts[-1].intent_at
            due = observed + datetime.timedelta(seconds=judge.token_limit_wait)
            if datetime.datetime.now(datetime.timezone.utc) < due:
                waiting = True
                continue
            state = await judge.ensure_attempt(
                state,
                shard,
                shard.attempts[-1].file,
                via=shard.attempts[-1].via,
                reason="token_limit",
            )
        if any(s.attempts[-1].state is None for s in state.shards):
            continue  # a token-limit retry was just submitted: poll it
        if waiting:
            return None
        fatal = fatal or any(
            s.attempts[-1].state is BatchState.FAILED and not _retry_later(s) for s in state.shards
        )
        cancelled = state.cancel_requested

        if state.pipeline:
            outcome = await _check_stage(judge, state, fatal, cancelled)
            if isinstance(outcome, JobState):
                state = outcome
                continue
            return outcome

        args = judge.aggregate_args(state)
        # One pass over the downloads gives both what to send again and the result (used
        # unless something is sent again; then the next pass rewrites the results file).
        with judge.store.writing(judge.store.sidecar):
            collected = await anyio.to_thread.run_sync(
                functools.partial(aggregate, **args, finish=True)
            )
        usage = collected.result.usage if collected.result is not None else None
        again = (
            None
            if fatal or cancelled
            else await _resubmit(judge, state, collected.retryable, usage)
        )
        if again is not None:
            state = again
            continue

        result = collected.result
        assert result is not None
        result = msgspec.structs.replace(result, models=dict(state.models))
        ended = _ended_status(state.shards, fatal, cancelled, bool(collected.retryable))
        if ended is None:
            judge.store.finish(state.job_id, result, config_path=state.config_path)
            return result
        state = msgspec.structs.replace(state, status="ended")
        judge.store.save(state)
        raise judge.job_error(state, result, ended)


async def _resubmit(
    judge: BatchJudge, state: JobState, retryable: frozenset[str], usage: Usage | None
) -> JobState | None:
    """Send the retryable requests of the current stage's shards again; the new state if
    any went, else None. With ``usage`` (a plain job), each resend must fit the budget."""
    if not retryable:
        return None
    resubmitted = False
    for shard in state.shards:
        if shard.stage != state.stage or _resubmits(shard, "resubmit") >= judge.max_resubmits:
            continue
        file = judge.resubmission_file(shard, retryable)
        if file is None:
            continue
        via = "fallback" if judge.fallback is not None else "primary"
        if usage is not None:
            refusal = resubmit_refusal(
                state.budget,
                usage,
                lines=_count_lines(judge.store.resolve(file)),
                via_fallback=via == "fallback",
            )
            if refusal is not None:
                _log.warning("job %s, shard %d: %s", state.job_id, shard.index, refusal)
                continue
        state = await judge.ensure_attempt(state, shard, file, via=via, reason="resubmit")
        resubmitted = True
    return state if resubmitted else None


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


async def _check_stage(
    judge: BatchJudge, state: JobState, fatal: bool, cancelled: bool
) -> JobState | BatchRunResult:
    """A pipeline's current stage is terminal: retry, go on to the next stage, or finish.

    Returns the state to keep polling with (something was sent), or the finished result.
    """
    if cancelled and not any(s.stage == state.stage for s in state.shards):
        # Cancelled between planning this stage and sending it: it never ran.
        result = await finish_pipeline(judge, state, reached=state.stage, unexpected=0)
        state = msgspec.structs.replace(state, status="ended")
        judge.store.save(state)
        raise judge.job_error(state, result, "cancelled")
    retryable, unexpected = await collect_stage(judge, state)
    again = None if fatal or cancelled else await _resubmit(judge, state, retryable, None)
    if again is not None:
        return again
    current = tuple(s for s in state.shards if s.stage == state.stage)
    ended = _ended_status(current, fatal, cancelled, bool(retryable))
    if ended is None:
        advanced = await next_stage(judge, state, unexpected)
        if advanced is not None:
            judge.store.save(advanced)  # the commit point: the new stage's shards are known
            return await judge.submit_stage(advanced)
        result = await finish_pipeline(judge, state, reached=state.stages, unexpected=unexpected)
        judge.store.finish(state.job_id, result, config_path=state.config_path)
        return result
    result = await finish_pipeline(judge, state, reached=state.stage + 1, unexpected=unexpected)
    state = msgspec.structs.replace(state, status="ended")
    judge.store.save(state)
    raise judge.job_error(state, result, ended)


def _ended_status(
    shards: tuple[ShardState, ...], fatal: bool, cancelled: bool, unfinished: bool
) -> str | None:
    if fatal:
        return "failed"
    latest = [s.attempts[-1].state for s in shards]
    if cancelled or (unfinished and BatchState.CANCELLED in latest):
        return "cancelled"
    if unfinished and BatchState.EXPIRED in latest:
        return "expired"
    return None
