"""BatchJudge: submit, let the process exit, check later — with crash-safe state on disk.

Crash safety, step by step (every state write is atomic; the lock serialises processes):

1. submit() plans and writes every shard and the transcript index, then saves the state
   (phase ``submitting``). A crash before that save leaves no job: run submit again.
2. Before each remote call the intent is saved (an attempt with no batch id); after it, the
   batch id. A process that finds an intent without an id asks ``provider.find(metadata)``
   — the batch is tagged with the job id, shard index and attempt, and the metadata also
   carries the intent's time and request count for providers whose batches keep no tags —
   before submitting again, so a crash may cost an orphan upload, never a second batch. When
   such a provider shows several batches that could be the one, kyro refuses to guess.
3. check() polls each unfinished batch once. When all are terminal it downloads each batch
   once (atomically, marked in the state), aggregates every download, resubmits retryable
   failures as new batches of the same job (``max_resubmits``), and otherwise writes the
   results file durably, records where it is, and only then clears the state.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import secrets
from collections.abc import AsyncIterable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from kyro._build.resubmit_files import filter_shard
from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig, resolve_models
from kyro._config.loader import config_from_mapping, load_config
from kyro._cost.budget import budget_of
from kyro._cost.estimate import CostEstimator, check_budget
from kyro._cost.prices import PriceTable
from kyro._exceptions import BatchJobError, BatchValidationError, BudgetExceededError, KyroError
from kyro._files import atomic_write
from kyro._job.check import run_check
from kyro._job.collect import download_results
from kyro._job.submit_build import build_job_shards
from kyro._job.submit_reuse import (
    CacheSetting,
    cache_scope_of,
    open_gate,
    price_table,
    reuse_dir_of,
    wants_samples,
)
from kyro._limits import check_runs
from kyro._plan.planner import validate_variables
from kyro._provider import BatchProvider
from kyro._state.progress import JobProgress, progress_of
from kyro._state.schema import PIPELINE_STATE_FORMAT
from kyro._state.store import JobState, ShardState, StageRecord, StateStore, SubmissionState
from kyro._types import BatchError, BatchState, BatchStatus, RequestCounts
from kyro._verdicts.result_types import BatchRunResult
from kyro._verdicts.vote import VoteSettings

__all__ = ["BatchJudge"]

replace = msgspec.structs.replace
_log = logging.getLogger("kyro")


_MAPPING_NAME = "judges.yml"
"""The name a config given as a mapping goes by (its state file: ``judges.batch-state.json``)."""


_FIND_MARGIN = 3600.0
"""Seconds before an attempt's recorded intent that recovery still looks for its batch (clock
skew between this machine and the provider); older batches cannot be it."""


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


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_job_id() -> str:
    return f"kyro-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class BatchJudge:
    """Evaluate transcripts with the judges of one config through a batch provider.

    ``config`` is a path to a judges YAML file, a mapping of the same content (named
    ``judges.yml`` in the current folder for its state) or a loaded :class:`JudgesConfig`.
    ``model`` is the model of judges that name none (after the config's own ``model:``;
    before ``KYRO_MODEL`` and the provider's default). ``state_dir`` defaults to ``.kyro/``
    beside the config. ``vote`` sets the tie rule and the minimum of valid runs;
    ``max_resubmits`` how many times failed, expired or missing requests are sent again
    within the job; ``fallback`` (e.g. a ``LocalProvider``) finishes those requests at once
    instead of in another batch.

    ``cache`` is the reply cache: ``True`` (``.kyro/cache`` beside the config), a folder, or
    ``False``; runs it answers are not sent, and the verdicts that come back are stored
    (``cache_max_bytes`` caps the folder, default 1 GiB, oldest entries evicted first).
    ``prices`` overrides kyro's price table (a table or a prices file); ``samples=False``
    sends every run as its own request even where the provider supports ``n``.
    ``submit(max_cost=...)`` refuses a job whose cost ceiling passes the budget.

    Example::

        judge = BatchJudge(OpenAIBatchProvider(), "judges.yml")
        job_id = await judge.submit(["t1.json", "inline transcript"], runs=3)
        ...                                     # the process may exit here
        result = await judge.check()            # None while the provider is working
    """

    def __init__(
        self,
        provider: BatchProvider,
        config: str | os.PathLike[str] | Mapping[str, Any] | JudgesConfig,
        *,
        state_dir: str | Path | None = None,
        model: str | None = None,
        vote: VoteSettings | None = None,
        max_resubmits: int = 2,
        fallback: BatchProvider | None = None,
        token_limit_wait: float = 600.0,
        lock_timeout: float = 60.0,
        cache: CacheSetting = True,
        cache_max_bytes: int | None = None,
        prices: PriceTable | str | Path | None = None,
        samples: bool = True,
    ) -> None:
        if max_resubmits < 0:
            raise ValueError("max_resubmits must be 0 or more")
        if cache_max_bytes is not None and cache_max_bytes < 1:
            raise ValueError("cache_max_bytes must be positive")
        self.cache = cache
        self.cache_max_bytes = cache_max_bytes
        self.prices = prices
        self.samples = samples
        self.last_estimate: CostEstimator | None = None
        self.provider = provider
        self.fallback = fallback
        self.model = model
        self._config: JudgesConfig | None = None
        if isinstance(config, JudgesConfig):
            self._config = config
            self.config_path = config.path
        elif isinstance(config, str | os.PathLike):
            self.config_path = Path(config)
        elif isinstance(config, Mapping):
            self.config_path = Path(_MAPPING_NAME)
            self._config = config_from_mapping(config, path=self.config_path)
        else:
            raise BatchValidationError(
                f"config must be a path to a judges YAML file, a mapping or a JudgesConfig, "
                f"not {type(config).__name__}"
            )
        self.store = StateStore(self.config_path, Path(state_dir) if state_dir else None)
        self.vote = vote if vote is not None else VoteSettings()
        self.max_resubmits = max_resubmits
        self.token_limit_wait = token_limit_wait
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"BatchJudge(provider={self.provider.name!r}, config={str(self.config_path)!r})"

    def load(self) -> JudgesConfig:
        """The config as submit() uses it: validated, runnable, every judge's model resolved.

        Models, first found: the judge's ``model:``, the config's, ``model=``, ``KYRO_MODEL``,
        the provider's ``default_model``. Raises :class:`BatchValidationError` with what
        ``validate`` would say.
        """
        config = self._config if self._config is not None else load_config(self.config_path)
        return resolve_models(
            config,
            model=self.model,
            provider_default=getattr(self.provider, "default_model", None),
            provider=self.provider.name,
        )

    def submitted_config(self, state: JobState) -> JudgesConfig:
        """The config a job's later stages are planned from: the one given to this judge
        (a mapping or a loaded config), else the file the state names."""
        if self._config is not None:
            return self._config
        return load_config(state.config_path)

    async def aclose(self) -> None:
        """Close the provider and the fallback (their connections and clients)."""
        try:
            await self.provider.aclose()
        finally:
            if self.fallback is not None:
                await self.fallback.aclose()

    async def __aenter__(self) -> BatchJudge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- submit ----------------------------------------------------------------------------

    async def submit(
        self,
        transcripts: Iterable[Any] | AsyncIterable[Any] | str | Path | Mapping[str, Any],
        *,
        runs: int = 1,
        variables: Mapping[str, Any] | None = None,
        max_cost: float | None = None,
    ) -> str:
        """Plan, write and submit every request; save the state; return kyro's job id.

        Refuses while a job for the same config is pending. If a previous submit crashed
        midway, this finishes that job (adopting batches it already created) and returns
        its id: the transcripts given now are not used, and a warning says so.

        With ``max_cost`` (USD), a job whose cost ceiling passes it raises
        :class:`kyro.BudgetExceededError` before anything is uploaded. The estimate of the
        last submit is kept in ``last_estimate`` (per judge and model).
        """
        config = self.load()
        run_variables = validate_variables(variables)
        check_runs(runs)
        if self.vote.min_valid_votes > runs:
            raise BatchValidationError(
                f"min_valid_votes is {self.vote.min_valid_votes} but each judge gets only "
                f"{runs} run(s), so no verdict could ever pass; lower min_valid_votes or raise "
                "runs. Nothing was submitted"
            )
        # Before anything is written: a job that cannot authenticate is never left pending.
        check_credentials = getattr(self.provider, "check_credentials", None)
        if check_credentials is not None:
            check_credentials()
        async with self.store.lock(timeout=self.lock_timeout, purpose="submit"):
            self.store.sweep_temp()
            state = self.store.load()
            if state is not None:
                self._check_owner(state.config_path, self.store.state_path)
            if state is not None and state.status == "submitting":
                self._check_job_id(state, None)  # its shards are encoded for its own provider
                _log_resume(state)
                state = await self._submit_missing(state)
                return state.job_id
            if state is not None and state.status != "ended":
                raise self._pending_error(state)
            if state is not None:
                self.store.clear()
            job_id = _new_job_id()
            # A pipeline's later stages are planned from stage outcomes with one request per
            # run and no reply cache; its stage 0 does the same so every stage is shaped alike.
            pipeline = config.uses_pipeline
            if pipeline and max_cost is not None:
                raise BatchValidationError(
                    f"{config.path}: max_cost is not supported for pipeline configs "
                    "(depends_on/on_failure) yet; submit without a budget"
                )
            use_samples = not pipeline and wants_samples(self.provider, config, runs, self.samples)
            gate, estimator, job_cache = open_gate(
                config,
                self.provider.name,
                self.store,
                cache=False if pipeline else self.cache,
                prices=price_table(self.prices, config),
                scope=cache_scope_of(self.provider),
                max_bytes=self.cache_max_bytes,
            )
            try:
                summary = await build_job_shards(
                    config,
                    transcripts,
                    runs=runs,
                    variables=run_variables,
                    provider=self.provider,
                    store=self.store,
                    samples=use_samples,
                    gate=gate,
                )
            finally:
                if job_cache is not None:
                    job_cache.close()
            self.last_estimate = estimator
            totals = estimator.totals()
            try:
                check_budget(totals, max_cost)
            except BudgetExceededError:
                self.store.clear()  # planned, never uploaded: leave nothing behind
                raise
            state = _initial_state(
                job_id, self.provider.name, config, summary, runs, run_variables, self
            )
            state = replace(
                state,
                samples=runs if use_samples else 1,
                cached_runs=totals.cached_runs,
                max_cost=max_cost,
                ceiling_usd=totals.ceiling_usd,
                budget=budget_of(estimator, max_cost, summary.requests),
            )
            self.store.save(state)
            state = await self._submit_missing(state)
        return job_id

    async def submit_stage(self, state: JobState) -> JobState:
        """Submit every shard of the (saved) state that has no attempt yet: a pipeline's
        next stage, or what an interrupted submit left."""
        return await self._submit_missing(state)

    async def _submit_missing(self, state: JobState) -> JobState:
        state = await self._recover(state)
        for shard in state.shards:
            if not shard.attempts:
                state = await self._start_attempt(
                    state, shard, 1, shard.name, via="primary", reason="initial"
                )
        state = replace(state, status="pending")
        self.store.save(state)
        return state

    async def _start_attempt(
        self, state: JobState, shard: ShardState, number: int, file: str, *, via: str, reason: str
    ) -> JobState:
        path = self._shard_file(file)
        lines = shard.lines if file == shard.name else _count_lines(path)
        attempt = SubmissionState(
            attempt=number, file=file, lines=lines, intent_at=_now(), via=via, reason=reason
        )
        shard = shard.with_attempt(attempt)
        state = state.with_shard(shard)
        self.store.save(state)  # write-ahead: the intent is on disk before the remote call
        provider = self._provider_for(via)
        batch_id = await provider.submit(path, metadata=_metadata(state, shard, attempt))
        attempt = replace(attempt, batch_id=batch_id, submitted_at=_now())
        state = state.with_shard(shard.with_attempt(attempt))
        self.store.save(state)
        return state

    async def _recover(self, state: JobState, *, submit: bool = True) -> JobState:
        """Settle every attempt that has an intent but no batch id (a crash mid-submit).

        ``provider.find(metadata)`` lists the batches that could be the attempt's. Batches
        already recorded for other attempts of the job are never taken. A batch whose metadata
        carries every pair asked for is *confirmed*: the oldest is adopted and any other
        confirmed one cancelled. A provider that keeps no metadata (Message Batches) returns
        unconfirmed *candidates* matched on what it can see: exactly one is adopted, and two
        or more are an error naming them — kyro never guesses, and never submits again while
        one of them may be this attempt's batch. With nothing found the attempt is submitted
        now — unless ``submit`` is False (``status()`` only reports).
        """
        known = {a.batch_id for s in state.shards for a in s.attempts if a.batch_id}
        for shard in state.shards:
            for attempt in shard.attempts:
                if attempt.batch_id is not None:
                    continue
                provider = self._provider_for(attempt.via)
                metadata = _metadata(state, shard, attempt)
                since = attempt.intent_at.timestamp() - _FIND_MARGIN
                found = [
                    s for s in await _find(provider, metadata, since) if s.batch_id not in known
                ]
                confirmed = sorted(
                    (s for s in found if _carries(s.metadata, metadata)),
                    key=lambda s: s.created_at or 0,
                )
                if confirmed:
                    batch_id = confirmed[0].batch_id
                    for extra in confirmed[1:]:  # never expected; never leave one running unseen
                        _log.warning(
                            "job %s shard %s attempt %s: the provider holds a second batch %s "
                            "for the same requests; cancelling it and keeping %s",
                            state.job_id,
                            shard.index,
                            attempt.attempt,
                            extra.batch_id,
                            batch_id,
                        )
                        await provider.cancel(extra.batch_id)
                elif len(found) == 1:
                    batch_id = found[0].batch_id
                elif found and not submit:
                    continue
                elif found:
                    listed = ", ".join(s.batch_id for s in found)
                    raise KyroError(
                        f"job {state.job_id}, shard {shard.index}, attempt {attempt.attempt}: "
                        f"the submit was interrupted, and {provider.name} holds {len(found)} "
                        f"batches that could be its batch ({listed}); the provider keeps no "
                        "metadata to tell them apart, so kyro will not guess. Cancel the ones "
                        "that are not this job's (delete them once they have ended; cancel or "
                        "delete all of them to submit anew), then run the command again"
                    )
                elif not submit:
                    continue
                else:
                    # Write-ahead again: a fresh intent, so a crash during this submit is
                    # matched on when it really happened.
                    attempt = replace(attempt, intent_at=_now())
                    shard = shard.with_attempt(attempt)
                    state = state.with_shard(shard)
                    self.store.save(state)
                    path = self._shard_file(attempt.file)
                    metadata = _metadata(state, shard, attempt)
                    batch_id = await provider.submit(path, metadata=metadata)
                known.add(batch_id)
                shard = shard.with_attempt(replace(attempt, batch_id=batch_id, submitted_at=_now()))
                state = state.with_shard(shard)
                self.store.save(state)
        return state

    # -- check -----------------------------------------------------------------------------

    async def check(self, job_id: str | None = None) -> BatchRunResult | None:
        """Poll once; None while any batch is pending, else the job's result.

        Raises :class:`BatchJobError` when the job ended failed, expired or cancelled (with
        the provider's errors and the partial results, also on disk; the state is kept).
        After a job is collected, checking it again returns the same result from disk.
        """
        async with self.store.lock(timeout=self.lock_timeout, purpose="check"):
            self.store.sweep_temp()
            state = self.store.load()
            if state is None:
                return self._finished_result(job_id)
            self._check_job_id(state, job_id)
            if state.status == "submitting":  # a submit was interrupted: finish it first
                state = await self._submit_missing(state)
            return await run_check(self, state)

    def _finished_result(self, job_id: str | None) -> BatchRunResult:
        done = self.store.load_finished()
        if done is not None:
            self._check_owner(self.store.finished_config_path(), self.store.finished_path)
        if done is None or (job_id is not None and done.job_id != job_id):
            wanted = f"job {job_id}" if job_id else "a job"
            raise BatchValidationError(
                f"no state for {wanted} of {self.config_path.name}: nothing was submitted "
                f"with this config and state folder ({self.store.state_dir}); run submit first",
                path=self.store.state_path,
            )
        return done

    # -- status and cancel -----------------------------------------------------------------

    async def status(self, job_id: str | None = None) -> JobProgress:
        """Poll every unfinished batch once and report progress; never collects results."""
        async with self.store.lock(timeout=self.lock_timeout, purpose="status"):
            self.store.sweep_temp()
            state = self.store.load()
            if state is None:
                done = self._finished_result(job_id)
                return JobProgress(
                    job_id=done.job_id,
                    phase="done",
                    requests=done.counts.requests,
                    batches=(),
                    totals=RequestCounts(),
                )
            self._check_job_id(state, job_id)
            state = await self.poll_all(state, submit=False)
            return progress_of(state)

    async def cancel(self, job_id: str | None = None) -> JobProgress:
        """Ask the provider to cancel every unfinished batch of the job.

        The job then ends ``cancelled``: the next check() collects the finished part and
        raises :class:`BatchJobError` carrying it.
        """
        async with self.store.lock(timeout=self.lock_timeout, purpose="cancel"):
            self.store.sweep_temp()
            state = self.store.load()
            if state is None:
                raise BatchValidationError(
                    f"no pending job for {self.config_path.name} to cancel",
                    path=self.store.state_path,
                )
            self._check_job_id(state, job_id)
            state = await self._recover(state, submit=False)
            # Attempts an interrupted submit never sent have no batch: drop them (their
            # requests are reported missing), so nothing more is ever sent for this job.
            sent = tuple(s for s in map(_without_unsent, state.shards) if s.attempts)
            state = replace(state, shards=sent, cancel_requested=True, status="cancelling")
            self.store.save(state)
            for shard in state.shards:
                attempt = shard.attempts[-1]
                if attempt.state is not None and attempt.state.terminal:
                    continue
                assert attempt.batch_id is not None
                status = await self._provider_for(attempt.via).cancel(attempt.batch_id)
                attempt = replace(attempt, state=status.state, errors=status.errors)
                state = state.with_shard(shard.with_attempt(attempt))
                self.store.save(state)
            return progress_of(state)

    # -- shared helpers --------------------------------------------------------------------

    async def poll_all(self, state: JobState, *, submit: bool = True) -> JobState:
        """Poll the latest attempt of every shard that is not terminal yet; save the state.

        With ``submit=False`` nothing is created remotely: attempts still without a batch
        (an interrupted submit) are only looked up, and left for check() or submit().
        """
        state = await self._recover(state, submit=submit)
        for shard in state.shards:
            if not shard.attempts:  # not sent yet: an interrupted submit (see status())
                continue
            attempt = shard.attempts[-1]
            if attempt.batch_id is None or (attempt.state is not None and attempt.state.terminal):
                continue
            assert attempt.batch_id is not None
            status = await self._provider_for(attempt.via).poll(attempt.batch_id)
            attempt = replace(
                attempt,
                state=status.state,
                errors=status.errors,
                counts=status.request_counts,
                observed_at=_now() if status.state.terminal else None,
            )
            state = state.with_shard(shard.with_attempt(attempt))
        self.store.save(state)
        return state

    def _shard_file(self, name: str) -> Path:
        """The shard file ``name`` of the state, which must still be there to be sent."""
        path = self.store.resolve(name)
        if not path.is_file():
            raise BatchValidationError(
                "a shard of this job is gone from the state folder, so it cannot be sent; "
                "restore the folder, or cancel the job and submit again",
                path=path,
            )
        return path

    def _provider_for(self, via: str) -> BatchProvider:
        if via == "fallback":
            if self.fallback is None:
                raise BatchValidationError(
                    "this job sent requests through a fallback provider; pass the same "
                    "fallback (e.g. a LocalProvider with the same state_dir) to BatchJudge",
                    path=self.store.state_path,
                )
            return self.fallback
        return self.provider

    @property
    def owner(self) -> str:
        """The config's resolved path, as the state records it (one job per config)."""
        return str(self.config_path.resolve())

    def _check_owner(self, recorded: str | None, state_file: Path) -> None:
        """Refuse a state that another config wrote into the same state folder."""
        if recorded is None:
            return
        theirs = Path(recorded)
        # States written before resolved paths were recorded hold the path as given.
        same = (
            theirs == Path(self.owner)
            if theirs.is_absolute()
            else theirs.name == self.config_path.name
        )
        if not same:
            raise BatchValidationError(
                f"this state belongs to another config, {recorded}, not {self.owner}: both "
                "keep their job in the same state folder under the same name. Give one of them "
                "a state folder of its own (--state-dir DIR, or state_dir= in code), or rename "
                "one config",
                path=state_file,
            )

    def _check_job_id(self, state: JobState, job_id: str | None) -> None:
        self._check_owner(state.config_path, self.store.state_path)
        if job_id is not None and job_id != state.job_id:
            raise BatchValidationError(
                f"the pending job for {self.config_path.name} is {state.job_id}, not {job_id}",
                path=self.store.state_path,
            )
        if state.provider != self.provider.name:
            raise BatchValidationError(
                f"job {state.job_id} was submitted through the {state.provider!r} provider; "
                f"check it with that provider, not {self.provider.name!r}",
                path=self.store.state_path,
            )

    def _pending_error(self, state: JobState) -> BatchValidationError:
        config = self.config_path
        return BatchValidationError(
            f"a job for {config.name} is still pending (job {state.job_id}, submitted "
            f"{state.created_at:%Y-%m-%d %H:%M} UTC): run `python3 -m kyro check {config}` "
            f"to collect it, or `python3 -m kyro cancel {config}` to stop it",
            path=self.store.state_path,
        )

    async def ensure_attempt(
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

    def job_error(self, state: JobState, result: BatchRunResult, status: str) -> BatchJobError:
        """The error for a job that ended ``status``, carrying its partial result."""
        errors: list[BatchError] = [e for s in state.shards for e in s.attempts[-1].errors]
        codes = ", ".join(sorted({e.code for e in errors})) or "none reported"
        return BatchJobError(
            f"job {state.job_id} ended {status} (provider errors: {codes}); "
            f"{result.counts.transcripts - result.counts.errored} of "
            f"{result.counts.transcripts} transcripts have verdicts, written to "
            f"{result.results_path}. {_next_step(status)}",
            job_id=state.job_id,
            status=status,
            errors=errors,
            result=result,
        )

    async def run_download(self, state: JobState) -> JobState:
        """Download every terminal attempt not downloaded yet (one file per batch)."""
        for shard in state.shards:
            for attempt in shard.attempts:
                if attempt.downloaded or attempt.state is None or not attempt.state.terminal:
                    continue
                assert attempt.batch_id is not None
                path = self.store.download_path(attempt.batch_id)
                provider = self._provider_for(attempt.via)
                with self.store.writing(self.store.downloads_dir):
                    if attempt.state is BatchState.FAILED:
                        # Refused as a whole: nothing ran, so there is nothing to fetch; its
                        # requests read as missing, and the batch's errors travel in the state.
                        atomic_write(path, b"")
                    else:
                        await download_results(provider, attempt.batch_id, path)
                shard = shard.with_attempt(replace(attempt, downloaded=True))
                state = state.with_shard(shard)
                self.store.save(state)
        return state

    def aggregate_args(self, state: JobState) -> dict[str, Any]:
        """Keyword arguments of :func:`kyro._job.collect.aggregate` for this job."""
        downloads = [
            self.store.download_path(a.batch_id)
            for s in state.shards
            for a in s.attempts
            if a.downloaded and a.batch_id is not None
        ]
        return {
            "downloads": downloads,
            "work_dir": self.store.work_dir,
            "index_path": self.store.index_path,
            "results_path": self.store.results_path_for(state.job_id),
            "job_id": state.job_id,
            "judges": state.judges,
            "runs": state.runs,
            "transcripts": state.transcripts,
            "settings": state.vote,
            "thresholds": tuple(state.pass_thresholds.get(name, 0.5) for name in state.judges),
            "samples": state.samples,
            "reuse_dir": reuse_dir_of(self.store),
        }

    def resubmission_file(self, shard: ShardState, retry: frozenset[str]) -> str | None:
        """Write the next resubmission file of ``shard`` holding ``retry`` ids, or None."""
        number = shard.attempts[-1].attempt + 1
        source = self.store.resolve(shard.name)
        out = source.parent / f"{source.stem}.attempt-{number}.jsonl"
        with self.store.writing(source.parent):
            written = filter_shard(self.store.shard_of(shard), retry, out)
        return None if written is None else self.store.relative(out)


def _next_step(status: str) -> str:
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


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


def _metadata(state: JobState, shard: ShardState, attempt: SubmissionState) -> dict[str, str]:
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


def _initial_state(
    job_id: str,
    provider: str,
    config: Any,
    summary: BuildSummary,
    runs: int,
    variables: dict[str, str],
    judge: BatchJudge,
) -> JobState:
    shards = tuple(
        ShardState(
            index=i,
            name=judge.store.relative(Path(s.path or "")),
            model=s.model,
            lines=s.lines,
            bytes=s.bytes,
            sha256=s.sha256,
        )
        for i, s in enumerate(summary.shards)
    )
    return JobState(
        job_id=job_id,
        provider=provider,
        config_path=judge.owner,
        config_sha256=config.sha256,
        models=config.models,
        pass_thresholds={
            j.name: j.pass_threshold for j in config.judges if j.pass_threshold != 0.5
        },
        judges=tuple(j.name for j in config.judges),
        runs=runs,
        transcripts=summary.transcripts,
        created_at=_now(),
        vote=judge.vote,
        max_resubmits=judge.max_resubmits,
        shards=shards,
        **_pipeline_fields(config, summary, variables),
    )


def _pipeline_fields(
    config: Any, summary: BuildSummary, variables: dict[str, str]
) -> dict[str, Any]:
    """A pipeline job's stage count, run variables and stage 0's record (nothing otherwise)."""
    if not config.uses_pipeline:
        return {}
    return {
        "format": PIPELINE_STATE_FORMAT,
        "stages": len(config.graph().stages),
        "variables": variables,
        "planned": (
            StageRecord(stage=0, transcripts=summary.transcripts, requests=summary.requests),
        ),
    }


def _log_resume(state: JobState) -> None:
    _log.warning(
        "resuming job %s, whose submission was interrupted; the transcripts given now are "
        "not used (the job's own shards are)",
        state.job_id,
    )
