"""Recovery after a crash mid-submit: adopt the batch a lost attempt created, never send twice.

Before each remote submit the runner saves the attempt's intent (no batch id yet); after it,
the batch id. An attempt found with an intent and no id was interrupted somewhere around the
remote call, so its batch may or may not exist. :func:`recover` asks
``provider.find(metadata)`` for the batches that could be it, where ``metadata`` is what the
batch was tagged with (:func:`batch_metadata`):

* batches already recorded for other attempts of the job are never taken;
* a batch whose own metadata carries every pair asked for is *confirmed*: the oldest is
  adopted and any other confirmed one cancelled;
* a provider that keeps no metadata (Message Batches) returns unconfirmed *candidates*
  matched on what it can see: exactly one is adopted, and two or more are an error naming
  them — kyro never guesses, and never submits again while one of them may be this
  attempt's batch;
* with nothing found the attempt is submitted now, after a fresh intent is saved — unless
  the caller only reports (``status()``).
"""

from __future__ import annotations

import datetime
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import msgspec

from kyro._exceptions import BatchValidationError, KyroError
from kyro._provider import BatchProvider
from kyro._state.schema import JobState, ShardState, SubmissionState
from kyro._state.store import StateStore
from kyro._types import BatchStatus

__all__ = ["batch_metadata", "now", "recover", "shard_file"]

replace = msgspec.structs.replace
_log = logging.getLogger("kyro")

_FIND_MARGIN = 3600.0
"""Seconds before an attempt's recorded intent that recovery still looks for its batch (clock
skew between this machine and the provider); older batches cannot be it."""


def now() -> datetime.datetime:
    """The current time in UTC, as the state records it."""
    return datetime.datetime.now(datetime.timezone.utc)


async def recover(
    state: JobState,
    *,
    store: StateStore,
    provider_for: Callable[[str], BatchProvider],
    submit: bool = True,
) -> JobState:
    """Settle every attempt of ``state`` that has an intent but no batch id; return the state
    (saved after each attempt settled). See the module docstring.

    ``provider_for`` maps an attempt's ``via`` to its provider; with ``submit=False`` nothing
    is created remotely and attempts that cannot be adopted are left as they are.
    """
    known = {a.batch_id for s in state.shards for a in s.attempts if a.batch_id}
    for shard in state.shards:
        for attempt in shard.attempts:
            if attempt.batch_id is None:
                provider = provider_for(attempt.via)
                state = await _settle(state, shard.index, attempt, provider, store, known, submit)
    return state


async def _settle(
    state: JobState,
    index: int,
    attempt: SubmissionState,
    provider: BatchProvider,
    store: StateStore,
    known: set[str],
    submit: bool,
) -> JobState:
    """Recover one attempt: adopt its batch, submit it anew, or leave it (status)."""
    shard = next(s for s in state.shards if s.index == index)
    metadata = batch_metadata(state, shard, attempt)
    since = attempt.intent_at.timestamp() - _FIND_MARGIN
    found = [s for s in await _find(provider, metadata, since) if s.batch_id not in known]
    batch_id = await _adopt(state, shard, attempt, provider, found, metadata)
    if batch_id is None and found and submit:
        raise _ambiguity(state, shard, attempt, provider, [s.batch_id for s in found])
    if batch_id is None and not submit:
        return state  # status() only reports: nothing is created remotely
    if batch_id is None:
        # Write-ahead again: a fresh intent, so a crash during this submit is matched on
        # when it really happened.
        attempt = replace(attempt, intent_at=now())
        shard = shard.with_attempt(attempt)
        state = state.with_shard(shard)
        store.save(state)
        path = shard_file(store, attempt.file)
        batch_id = await provider.submit(path, metadata=batch_metadata(state, shard, attempt))
    known.add(batch_id)
    shard = shard.with_attempt(replace(attempt, batch_id=batch_id, submitted_at=now()))
    state = state.with_shard(shard)
    store.save(state)
    return state


async def _adopt(
    state: JobState,
    shard: ShardState,
    attempt: SubmissionState,
    provider: BatchProvider,
    found: Sequence[BatchStatus],
    metadata: Mapping[str, str],
) -> str | None:
    """The found batch to adopt for ``attempt``: the oldest confirmed one (any other
    confirmed one is cancelled), else the only candidate; None when there is none or
    several unconfirmed ones."""
    confirmed = sorted(
        (s for s in found if _carries(s.metadata, metadata)), key=lambda s: s.created_at or 0
    )
    if confirmed:
        batch_id = confirmed[0].batch_id
        for extra in confirmed[1:]:  # never expected; never leave one running unseen
            _log.warning(
                "job %s shard %s attempt %s: the provider holds a second batch %s for the "
                "same requests; cancelling it and keeping %s",
                state.job_id,
                shard.index,
                attempt.attempt,
                extra.batch_id,
                batch_id,
            )
            await provider.cancel(extra.batch_id)
        return batch_id
    if len(found) == 1:
        return found[0].batch_id
    return None


def _ambiguity(
    state: JobState,
    shard: ShardState,
    attempt: SubmissionState,
    provider: BatchProvider,
    found: Sequence[str],
) -> KyroError:
    """The error for several unconfirmed batches that could be ``attempt``'s."""
    return KyroError(
        f"job {state.job_id}, shard {shard.index}, attempt {attempt.attempt}: the submit "
        f"was interrupted, and {provider.name} holds {len(found)} batches that could be its "
        f"batch ({', '.join(found)}); the provider keeps no metadata to tell them apart, so "
        "kyro will not guess. Cancel the ones that are not this job's (delete them once they "
        "have ended; cancel or delete all of them to submit anew), then run the command again"
    )


async def _find(
    provider: BatchProvider, metadata: Mapping[str, str], created_after: float
) -> list[BatchStatus]:
    """``provider.find(metadata)``, bounded by ``created_after`` when the provider takes it
    (older providers' ``find`` has no such keyword and is called as before)."""
    try:
        parameters = list(inspect.signature(provider.find).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    takes = any(
        p.name == "created_after" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )
    if takes:
        return await provider.find(metadata, created_after=created_after)  # type: ignore[call-arg]
    return await provider.find(metadata)


def shard_file(store: StateStore, name: str) -> Path:
    """The shard file ``name`` of the state, which must still be there to be sent."""
    path = store.resolve(name)
    if not path.is_file():
        raise BatchValidationError(
            "a shard of this job is gone from the state folder, so it cannot be sent; "
            "restore the folder, or cancel the job and submit again",
            path=path,
        )
    return path


def batch_metadata(state: JobState, shard: ShardState, attempt: SubmissionState) -> dict[str, str]:
    """What a batch is tagged with, and what ``find`` matches on after a crash.

    ``kyro_intent_at`` (when the intent was saved, before the remote call) and
    ``kyro_requests`` (the file's request count) let a provider whose batches keep no
    metadata still match a batch on what its API shows: creation time and size.
    """
    metadata = {
        "kyro_job": state.job_id,
        "kyro_shard": str(shard.index),
        "kyro_attempt": str(attempt.attempt),
        "kyro_config": state.config_sha256[:16],
        "kyro_intent_at": attempt.intent_at.isoformat(),
        "kyro_requests": str(attempt.lines),
    }
    if state.pipeline:
        metadata["kyro_stage"] = str(shard.stage)
    return metadata


def _carries(have: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """True when a found batch's own metadata confirms every wanted pair."""
    return bool(have) and all(have.get(key) == value for key, value in wanted.items())
