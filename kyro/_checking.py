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
"""

from __future__ import annotations

import datetime
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import msgspec

from kyro._collect import aggregate
from kyro._jobbudget import resubmit_refusal
from kyro._results import BatchRunResult
from kyro._state import JobState, ShardState
from kyro._types import BatchState

if TYPE_CHECKING:
    from kyro._judge import BatchJudge

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

        args = judge.aggregate_args(state)
        # One pass over the downloads gives both what to send again and the result (used
        # unless something is sent again; then the next pass rewrites the results file).
        with judge.store.writing(judge.store.sidecar):
            collected = await anyio.to_thread.run_sync(
                functools.partial(aggregate, **args, finish=True)
            )
        resubmitted = False
        if not fatal and not cancelled and collected.retryable:
            for shard in state.shards:
                if _resubmits(shard, "resubmit") >= judge.max_resubmits:
                    continue
                file = judge.resubmission_file(shard, collected.retryable)
                if file is None:
                    continue
                via = "fallback" if judge.fallback is not None else "primary"
                assert collected.result is not None
                refusal = resubmit_refusal(
                    state.budget,
                    collected.result.usage,
                    lines=_count_lines(judge.store.resolve(file)),
                    via_fallback=via == "fallback",
                )
                if refusal is not None:
                    _log.warning("job %s, shard %d: %s", state.job_id, shard.index, refusal)
                    continue
                state = await judge.ensure_attempt(state, shard, file, via=via, reason="resubmit")
                resubmitted = True
        if resubmitted:
            continue

        result = collected.result
        assert result is not None
        result = msgspec.structs.replace(result, models=dict(state.models))
        ended = _ended_status(state, fatal, cancelled, bool(collected.retryable))
        if ended is None:
            judge.store.finish(state.job_id, result, config_path=state.config_path)
            return result
        state = msgspec.structs.replace(state, status="ended")
        judge.store.save(state)
        raise judge.job_error(state, result, ended)


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


def _ended_status(state: JobState, fatal: bool, cancelled: bool, unfinished: bool) -> str | None:
    if fatal:
        return "failed"
    latest = [s.attempts[-1].state for s in state.shards]
    if cancelled or (unfinished and BatchState.CANCELLED in latest):
        return "cancelled"
    if unfinished and BatchState.EXPIRED in latest:
        return "expired"
    return None
