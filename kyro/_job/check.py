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
check() returns None until the last stage is done. A job with a budget holds its resends and
each next stage to it: a stage that would pass ``max_cost`` is not sent and the job ends
``over_budget``.

Each pass is a few small steps that return a decision — :class:`Pending`, :class:`Sent`,
:class:`Finished` or :class:`Ended` — and :func:`run_check` applies it: return None, poll
what was sent, record the result, or raise the job's error.
"""

from __future__ import annotations

import datetime
import logging

import msgspec

from kyro._cost.budget import resubmit_refusal
from kyro._job.job_error import JobEndStatus
from kyro._job.recovery import now
from kyro._job.runner import JobRunner, count_lines
from kyro._job.stage_job import (
    collect_stage,
    finish_pipeline,
    job_usage,
    next_stage,
    refuse_over_budget,
)
from kyro._state.schema import JobState, ShardState
from kyro._types import Usage, is_terminal
from kyro._verdicts.result_types import BatchRunResult

__all__ = [
    "MAX_TOKEN_LIMIT_RETRIES",
    "Decision",
    "Ended",
    "Finished",
    "Pending",
    "Sent",
    "TokenLimits",
    "run_check",
    "token_limits",
]

_log = logging.getLogger("kyro")

MAX_TOKEN_LIMIT_RETRIES = 24


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    """Nothing to do until the provider moves on (or a token-limit wait is over)."""


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """Something went out again (a retry, a resubmission, the next stage): poll ``state``."""

    state: JobState


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    """Every request is done: ``result`` is written and the job can be recorded as finished."""

    state: JobState
    result: BatchRunResult


class Ended(msgspec.Struct, frozen=True, kw_only=True):
    """The job ended ``status`` with the partial ``result``; its state is kept. ``reason``
    says why when kyro itself ended it (a pipeline stage over the budget)."""

    state: JobState
    status: JobEndStatus
    result: BatchRunResult
    reason: str | None = None


Decision = Pending | Sent | Finished | Ended


class TokenLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What the token-limit rule says of a job whose batches are all terminal.

    ``due`` are the shard indices to send again now; ``waiting`` is True when some shard's
    wait is not over yet; ``exhausted`` when some shard used up its retries.
    """

    due: tuple[int, ...] = ()
    waiting: bool = False
    exhausted: bool = False


async def run_check(runner: JobRunner, state: JobState) -> BatchRunResult | None:
    """Advance the job as far as one check can; see the module docstring."""
    while True:
        decision = await _advance(runner, state)
        if isinstance(decision, Sent):
            state = decision.state
        elif isinstance(decision, Pending):
            return None
        elif isinstance(decision, Finished):
            return runner.finish(decision.state, decision.result)
        else:
            raise runner.end(
                decision.state, decision.result, decision.status, reason=decision.reason
            )


async def _advance(runner: JobRunner, state: JobState) -> Decision:
    """Poll once; once every batch is terminal, download and decide what comes next."""
    state = await runner.poll(state)
    if not all(is_terminal(s.attempts[-1].state) for s in state.shards):
        return Pending()
    state = await runner.download(state)
    limits = token_limits(state, runner.settings.token_limit_wait)
    if limits.due:
        for index in limits.due:
            shard = next(s for s in state.shards if s.index == index)
            latest = shard.attempts[-1]
            state = await runner.resubmit(
                state, shard, latest.file, via=latest.via, reason="token_limit"
            )
        return Sent(state=state)
    if limits.waiting:
        return Pending()
    fatal = limits.exhausted or any(
        s.attempts[-1].state == "failed" and not _retry_later(s) for s in state.shards
    )
    if state.pipeline:
        return await _decide_stage(runner, state, fatal)
    return await _decide_job(runner, state, fatal)


def token_limits(state: JobState, wait: float) -> TokenLimits:
    """Which shards failed with only retry-later errors and are due to be sent again.

    Nothing is sent again after kyro's own cancel(): the job ends cancelled.
    """
    due: list[int] = []
    waiting = exhausted = False
    for shard in state.shards:
        if state.cancel_requested or not _retry_later(shard):
            continue
        latest = shard.attempts[-1]
        if _resubmits(shard, "token_limit") >= MAX_TOKEN_LIMIT_RETRIES:
            exhausted = True
        elif now() < (latest.observed_at or latest.intent_at) + _seconds(wait):
            waiting = True
        else:
            due.append(shard.index)
    return TokenLimits(due=tuple(due), waiting=waiting, exhausted=exhausted)


async def _decide_job(runner: JobRunner, state: JobState, fatal: bool) -> Decision:
    """A plain job whose batches are all terminal: send again, finish or end."""
    cancelled = state.cancel_requested
    collected = await runner.collect(state)
    usage = collected.result.usage if collected.result is not None else None
    if not (fatal or cancelled):
        again = await _resubmit(runner, state, collected.retryable, usage)
        if again is not None:
            return Sent(state=again)
    result = collected.result
    assert result is not None
    result = msgspec.structs.replace(result, models=dict(state.models))
    ended = _ended_status(state.shards, fatal, cancelled, bool(collected.retryable))
    if ended is None:
        return Finished(state=state, result=result)
    return Ended(state=state, status=ended, result=result)


async def _decide_stage(runner: JobRunner, state: JobState, fatal: bool) -> Decision:
    """A pipeline's current stage is terminal: send again, start the next stage, finish or
    end — ``over_budget`` when the next stage would pass the job's ``max_cost``."""
    cancelled = state.cancel_requested
    if cancelled and not any(s.stage == state.stage for s in state.shards):
        # Cancelled between planning this stage and sending it: it never ran.
        result = await finish_pipeline(runner, state, reached=state.stage, unexpected=0)
        return Ended(state=state, status="cancelled", result=result)
    retryable, unexpected = await collect_stage(runner, state)
    usage = await job_usage(runner, state)  # None unless the job has a budget
    if not (fatal or cancelled):
        again = await _resubmit(runner, state, retryable, usage)
        if again is not None:
            return Sent(state=again)
    current = tuple(s for s in state.shards if s.stage == state.stage)
    ended = _ended_status(current, fatal, cancelled, bool(retryable))
    if ended is not None:
        reached = state.stage + 1
        result = await finish_pipeline(runner, state, reached=reached, unexpected=unexpected)
        return Ended(state=state, status=ended, result=result)
    advanced = await next_stage(runner, state, unexpected)
    if advanced is None:
        reached = state.stages
        result = await finish_pipeline(runner, state, reached=reached, unexpected=unexpected)
        return Finished(state=state, result=result)
    refused = await refuse_over_budget(runner, state, advanced, usage, unexpected)
    if refused is not None:
        return Ended(
            state=state, status="over_budget", result=refused.result, reason=refused.reason
        )
    runner.store.save(advanced)  # the commit point: the new stage's shards are known
    return Sent(state=await runner.start(advanced))


async def _resubmit(
    runner: JobRunner, state: JobState, retryable: frozenset[str], usage: Usage | None
) -> JobState | None:
    """Send the retryable requests of the current stage's shards again; the new state if
    any went, else None. With ``usage`` (the job's so far), each resend must fit the budget."""
    if not retryable:
        return None
    resubmitted = False
    via = "fallback" if runner.fallback is not None else "primary"
    for shard in state.shards:
        if shard.stage != state.stage:
            continue
        if _resubmits(shard, "resubmit") >= runner.settings.max_resubmits:
            continue
        file = runner.resubmission_file(shard, retryable)
        if file is None:
            continue
        if usage is not None:
            lines = count_lines(runner.store.resolve(file))
            refusal = resubmit_refusal(
                state.budget, usage, lines=lines, via_fallback=via == "fallback"
            )
            if refusal is not None:
                _log.warning("job %s, shard %d: %s", state.job_id, shard.index, refusal)
                continue
        state = await runner.resubmit(state, shard, file, via=via, reason="resubmit")
        resubmitted = True
    return state if resubmitted else None


def _ended_status(
    shards: tuple[ShardState, ...], fatal: bool, cancelled: bool, unfinished: bool
) -> JobEndStatus | None:
    if fatal:
        return "failed"
    latest = [s.attempts[-1].state for s in shards]
    if cancelled or (unfinished and "cancelled" in latest):
        return "cancelled"
    if unfinished and "expired" in latest:
        return "expired"
    return None


def _retry_later(shard: ShardState) -> bool:
    latest = shard.attempts[-1]
    return (
        latest.state == "failed"
        and bool(latest.errors)
        and all(e.retry_later for e in latest.errors)
    )


def _resubmits(shard: ShardState, reason: str) -> int:
    return sum(1 for a in shard.attempts if a.reason == reason)


def _seconds(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=seconds)
