"""The job runner: the steps of a batch job, on the state store, through the providers.

:class:`JobRunner` owns what a job needs between processes — the :class:`StateStore`, the
primary and fallback providers and the :class:`JobSettings` — and performs one step at a time,
each taking the saved :class:`JobState` and returning the next one (saved):

* :meth:`~JobRunner.start` sends every shard that has no attempt yet (a new job, a pipeline's
  next stage, or what an interrupted submit left), after :meth:`~JobRunner.recover`;
* :meth:`~JobRunner.recover` settles attempts whose intent was saved but whose batch id was
  not (a crash mid-submit): ``provider.find(metadata)`` first, a new batch only when nothing
  could be it;
* :meth:`~JobRunner.poll` polls every unfinished batch once;
* :meth:`~JobRunner.download` fetches every terminal batch once;
* :meth:`~JobRunner.resubmit` starts the next attempt of a shard (a token-limit retry or a
  resubmission file);
* :meth:`~JobRunner.finish` records the result and clears the state; :meth:`~JobRunner.end`
  keeps the state of a job that ended failed, expired, cancelled or over budget and builds
  its error.

:class:`~kyro.BatchJudge` takes the lock and loads the state; :mod:`kyro._job.check` decides,
from the state, which step comes next.
"""

from __future__ import annotations

import functools
from pathlib import Path

import anyio.to_thread
import msgspec

from kyro._build.resubmit_files import filter_shard
from kyro._config.judges import JudgesConfig
from kyro._config.loader import load_config
from kyro._cost.prices import PriceTable
from kyro._exceptions import BatchValidationError, JobPendingError, NoJobError
from kyro._job.collect import Aggregation, Collected, download_results
from kyro._job.job_error import BatchJobError, JobEndStatus
from kyro._job.recovery import batch_metadata, now, recover, shard_file
from kyro._job.submit_reuse import reuse_dir_of
from kyro._provider import BatchProvider
from kyro._state.schema import JobState, ShardState, SubmissionState
from kyro._state.store import StateStore
from kyro._types import BatchError, is_terminal
from kyro._verdicts.result_types import BatchRunResult
from kyro._verdicts.vote import VoteSettings

__all__ = ["JobRunner", "JobSettings", "count_lines"]

replace = msgspec.structs.replace


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a job is driven: the vote, resubmission and waiting rules, the lock's patience.

    Example::

        JobSettings(max_resubmits=0, token_limit_wait=0.0)
    """

    vote: VoteSettings = VoteSettings()
    max_resubmits: int = 2
    token_limit_wait: float = 600.0
    lock_timeout: float = 60.0


class JobRunner:
    """Performs the steps of one config's batch job (see the module docstring).

    ``owner`` is the config's resolved path as the state records it; ``config`` the config
    given in memory (a mapping or a loaded :class:`JudgesConfig`), from which a pipeline's
    later stages are planned — else they are planned from the file the state names.
    ``prices`` (a table or a prices file; None: the shipped table) prices those stages for
    the job's budget, the config's own ``prices:`` on top.

    Example::

        runner = JobRunner(StateStore(path), provider, owner=str(path.resolve()))
        state = await runner.poll(state)
    """

    def __init__(
        self,
        store: StateStore,
        provider: BatchProvider,
        *,
        owner: str,
        fallback: BatchProvider | None = None,
        settings: JobSettings | None = None,
        config: JudgesConfig | None = None,
        prices: PriceTable | str | Path | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.fallback = fallback
        self.settings = settings if settings is not None else JobSettings()
        self.owner = owner
        self.prices = prices
        self._config = config

    # -- the job's identity ----------------------------------------------------------------

    def check_owner(self, recorded: str | None, state_file: Path) -> None:
        """Refuse a state that another config wrote into the same state folder."""
        if recorded is None:
            return
        theirs = Path(recorded)
        # States written before resolved paths were recorded hold the path as given.
        same = (
            theirs == Path(self.owner)
            if theirs.is_absolute()
            else theirs.name == Path(self.owner).name
        )
        if not same:
            raise BatchValidationError(
                f"this state belongs to another config, {recorded}, not {self.owner}: both "
                "keep their job in the same state folder under the same name. Give one of them "
                "a state folder of its own (--state-dir DIR, or state_dir= in code), or rename "
                "one config",
                path=state_file,
            )

    def check_job(self, state: JobState, job_id: str | None) -> None:
        """Refuse a state of another config, job or provider than the one asked for."""
        self.check_owner(state.config_path, self.store.state_path)
        if job_id is not None and job_id != state.job_id:
            raise BatchValidationError(
                f"the pending job for {self._name} is {state.job_id}, not {job_id}",
                path=self.store.state_path,
            )
        if state.provider != self.provider.name:
            raise BatchValidationError(
                f"job {state.job_id} was submitted through the {state.provider!r} provider; "
                f"check it with that provider, not {self.provider.name!r}",
                path=self.store.state_path,
            )

    def pending_error(self, state: JobState) -> JobPendingError:
        """The error for a submit while ``state``'s job is still pending."""
        config = Path(self.owner)
        return JobPendingError(
            f"a job for {config.name} is still pending (job {state.job_id}, submitted "
            f"{state.created_at:%Y-%m-%d %H:%M} UTC): run `python3 -m kyro check {config}` "
            f"to collect it, or `python3 -m kyro cancel {config}` to stop it",
            job_id=state.job_id,
            path=self.store.state_path,
        )

    def no_job_error(self, job_id: str | None, *, action: str = "check") -> NoJobError:
        """The error for a check, status or cancel that finds no job to act on."""
        if action == "cancel":
            message = f"no pending job for {self._name} to cancel"
        else:
            wanted = f"job {job_id}" if job_id else "a job"
            message = (
                f"no state for {wanted} of {self._name}: nothing was submitted with this "
                f"config and state folder ({self.store.state_dir}); run submit first"
            )
        return NoJobError(message, job_id=job_id, path=self.store.state_path)

    def finished_result(self, job_id: str | None) -> BatchRunResult:
        """The last finished job's result from disk; :class:`NoJobError` when there is none."""
        done = self.store.load_finished()
        if done is not None:
            self.check_owner(self.store.finished_config_path(), self.store.finished_path)
        if done is None or (job_id is not None and done.job_id != job_id):
            raise self.no_job_error(job_id)
        return done

    def submitted_config(self, state: JobState) -> JudgesConfig:
        """The config a job's later stages are planned from: the one given in memory, else
        the file the state names."""
        if self._config is not None:
            return self._config
        return load_config(state.config_path)

    @property
    def _name(self) -> str:
        return Path(self.owner).name

    # -- start and recover -----------------------------------------------------------------

    async def start(self, state: JobState) -> JobState:
        """Send every shard of the (saved) state that has no attempt yet; the job is then
        ``pending``."""
        state = await self.recover(state)
        for shard in state.shards:
            if not shard.attempts:
                state = await self._start_attempt(
                    state, shard, 1, shard.name, via="primary", reason="initial"
                )
        state = replace(state, status="pending")
        self.store.save(state)
        return state

    async def resubmit(
        self, state: JobState, shard: ShardState, file: str, *, via: str, reason: str
    ) -> JobState:
        """Start the next attempt of ``shard`` from ``file`` (a resubmission).

        A job that had ended (re-checked with a higher ``max_resubmits``) is pending again,
        so submit() refuses to replace it while the new batch runs.
        """
        if state.status == "ended":
            state = replace(state, status="pending")
        number = shard.attempts[-1].attempt + 1 if shard.attempts else 1
        return await self._start_attempt(state, shard, number, file, via=via, reason=reason)

    async def _start_attempt(
        self, state: JobState, shard: ShardState, number: int, file: str, *, via: str, reason: str
    ) -> JobState:
        path = shard_file(self.store, file)
        lines = shard.lines if file == shard.name else count_lines(path)
        attempt = SubmissionState(
            attempt=number, file=file, lines=lines, intent_at=now(), via=via, reason=reason
        )
        shard = shard.with_attempt(attempt)
        state = state.with_shard(shard)
        self.store.save(state)  # write-ahead: the intent is on disk before the remote call
        provider = self.provider_for(via)
        batch_id = await provider.submit(path, metadata=batch_metadata(state, shard, attempt))
        attempt = replace(attempt, batch_id=batch_id, submitted_at=now())
        state = state.with_shard(shard.with_attempt(attempt))
        self.store.save(state)
        return state

    async def recover(self, state: JobState, *, submit: bool = True) -> JobState:
        """Settle every attempt that has an intent but no batch id (a crash mid-submit):
        adopt its batch, or send it now (see :mod:`kyro._job.recovery`). With ``submit=False``
        nothing is created remotely (``status()`` only reports)."""
        return await recover(state, store=self.store, provider_for=self.provider_for, submit=submit)

    # -- poll and download -----------------------------------------------------------------

    async def poll(self, state: JobState, *, submit: bool = True) -> JobState:
        """Poll the latest attempt of every shard that is not terminal yet; save the state.

        With ``submit=False`` nothing is created remotely: attempts still without a batch
        (an interrupted submit) are only looked up, and left for check() or submit().
        """
        state = await self.recover(state, submit=submit)
        for shard in state.shards:
            if not shard.attempts:  # not sent yet: an interrupted submit (see status())
                continue
            attempt = shard.attempts[-1]
            if attempt.batch_id is None or is_terminal(attempt.state):
                continue
            status = await self.provider_for(attempt.via).poll(attempt.batch_id)
            attempt = replace(
                attempt,
                state=status.state,
                errors=status.errors,
                counts=status.request_counts,
                observed_at=now() if status.terminal else None,
            )
            state = state.with_shard(shard.with_attempt(attempt))
        self.store.save(state)
        return state

    async def download(self, state: JobState) -> JobState:
        """Download every terminal attempt not downloaded yet (one file per batch)."""
        for shard in state.shards:
            for attempt in shard.attempts:
                if attempt.downloaded or not is_terminal(attempt.state):
                    continue
                assert attempt.batch_id is not None
                path = self.store.download_path(attempt.batch_id)
                with self.store.writing(self.store.downloads_dir):
                    if attempt.state == "failed":
                        # Refused as a whole: nothing ran, so there is nothing to fetch; its
                        # requests read as missing, and the batch's errors travel in the state.
                        self.store.disk.atomic_write(path, b"")
                    else:
                        provider = self.provider_for(attempt.via)
                        await download_results(
                            provider, attempt.batch_id, path, disk=self.store.disk
                        )
                shard = shard.with_attempt(replace(attempt, downloaded=True))
                state = state.with_shard(shard)
                self.store.save(state)
        return state

    # -- collect and resubmit --------------------------------------------------------------

    def aggregation(self, state: JobState) -> Aggregation:
        """What aggregating a plain job's downloads reads, from its state and store."""
        return Aggregation(
            downloads=tuple(
                self.store.download_path(a.batch_id)
                for s in state.shards
                for a in s.attempts
                if a.downloaded and a.batch_id is not None
            ),
            work_dir=self.store.work_dir,
            index_path=self.store.index_path,
            results_path=self.store.results_path_for(state.job_id),
            job_id=state.job_id,
            judges=state.judges,
            runs=state.runs,
            transcripts=state.transcripts,
            settings=state.vote,
            thresholds=tuple(state.pass_thresholds.get(name, 0.5) for name in state.judges),
            samples=state.samples,
            reuse_dir=reuse_dir_of(self.store),
            disk=self.store.disk,
        )

    async def collect(self, state: JobState) -> Collected:
        """Aggregate a plain job's downloads and write its results file: one pass gives both
        what to send again and the result (the next pass rewrites the file if anything is)."""
        job = self.aggregation(state)
        with self.store.writing(self.store.sidecar):
            return await anyio.to_thread.run_sync(functools.partial(job.run, finish=True))

    def resubmission_file(self, shard: ShardState, retry: frozenset[str]) -> str | None:
        """Write the next resubmission file of ``shard`` holding ``retry`` ids, or None."""
        number = shard.attempts[-1].attempt + 1
        source = self.store.resolve(shard.name)
        out = source.parent / f"{source.stem}.attempt-{number}.jsonl"
        with self.store.writing(source.parent):
            written = filter_shard(self.store.shard_of(shard), retry, out)
        return None if written is None else self.store.relative(out)

    # -- finish, end, cancel ---------------------------------------------------------------

    def finish(self, state: JobState, result: BatchRunResult) -> BatchRunResult:
        """Record ``result`` (its results file is durable) and clear the job's state."""
        self.store.finish(state.job_id, result, config_path=state.config_path)
        return result

    def end(
        self,
        state: JobState,
        result: BatchRunResult,
        status: JobEndStatus,
        *,
        reason: str | None = None,
    ) -> BatchJobError:
        """Save the job as ended ``status`` (the state is kept) and return its error,
        carrying the partial result; ``reason`` says why when kyro itself ended the job."""
        state = replace(state, status="ended")
        self.store.save(state)
        errors: list[BatchError] = [e for s in state.shards for e in s.attempts[-1].errors]
        codes = ", ".join(sorted({e.code for e in errors})) or "none reported"
        why = f": {reason}." if reason else f" (provider errors: {codes});"
        return BatchJobError(
            f"job {state.job_id} ended {status}{why} "
            f"{result.counts.transcripts - result.counts.errored} of "
            f"{result.counts.transcripts} transcripts have verdicts, written to "
            f"{result.results_path}. {_next_step(status)}",
            job_id=state.job_id,
            status=status,
            errors=errors,
            result=result,
        )

    async def cancel(self, state: JobState) -> JobState:
        """Ask the provider to cancel every unfinished batch; the job is then cancelling."""
        state = await self.recover(state, submit=False)
        # Attempts an interrupted submit never sent have no batch: drop them (their
        # requests are reported missing), so nothing more is ever sent for this job.
        sent = tuple(s for s in map(_without_unsent, state.shards) if s.attempts)
        state = replace(state, shards=sent, cancel_requested=True, status="cancelling")
        self.store.save(state)
        for shard in state.shards:
            attempt = shard.attempts[-1]
            if is_terminal(attempt.state):
                continue
            assert attempt.batch_id is not None
            status = await self.provider_for(attempt.via).cancel(attempt.batch_id)
            attempt = replace(attempt, state=status.state, errors=status.errors)
            state = state.with_shard(shard.with_attempt(attempt))
            self.store.save(state)
        return state

    # -- files and providers ---------------------------------------------------------------

    # -- providers -------------------------------------------------------------------------

    def provider_for(self, via: str) -> BatchProvider:
        """The provider an attempt went (or goes) through."""
        if via == "fallback":
            if self.fallback is None:
                raise BatchValidationError(
                    "this job sent requests through a fallback provider; pass the same "
                    "fallback (e.g. a LocalProvider with the same state_dir) to BatchJudge",
                    path=self.store.state_path,
                )
            return self.fallback
        return self.provider


def _next_step(status: JobEndStatus) -> str:
    if status == "over_budget":
        return (
            "The others show the steps not reached and the state is kept; submit them as a "
            "new job with a higher max_cost"
        )
    if status == "cancelled":
        return "The state is kept for inspection; submit a new job to evaluate again"
    if status == "failed":
        return (
            "The state is kept: fix what the provider's errors name and submit a new job, or "
            "check again to retry (token-limit failures are retried by themselves)"
        )
    return "The state is kept: check again with a higher max_resubmits to retry, or submit anew"


def _without_unsent(shard: ShardState) -> ShardState:
    """``shard`` without its trailing attempts that never got a batch."""
    attempts = list(shard.attempts)
    while attempts and attempts[-1].batch_id is None:
        attempts.pop()
    return replace(shard, attempts=tuple(attempts))


def count_lines(path: Path) -> int:
    """The number of non-blank lines of a JSONL file."""
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())
