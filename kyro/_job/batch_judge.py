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

The steps themselves are the job runner's (:mod:`kyro._job.runner`); what comes next at check
time is decided in :mod:`kyro._job.check`. BatchJudge holds the lock and the public methods.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig, resolve_models
from kyro._config.loader import config_from_mapping, load_config
from kyro._cost.budget import budget_of
from kyro._cost.estimate import CostEstimator, check_budget
from kyro._cost.prices import PriceTable
from kyro._exceptions import BatchValidationError, BudgetExceededError
from kyro._files import LOCAL_DISK, DurableIO
from kyro._job.check import run_check
from kyro._job.recovery import now
from kyro._job.runner import JobRunner, JobSettings
from kyro._job.submit_build import build_job_shards
from kyro._job.submit_reuse import (
    PIPELINE_SCOPE,
    CacheSetting,
    cache_scope_of,
    later_gate,
    open_gate,
    price_table,
    wants_samples,
)
from kyro._limits import check_runs
from kyro._plan.planner import validate_variables
from kyro._provider import BatchProvider
from kyro._state.progress import JobProgress, progress_of
from kyro._state.schema import PIPELINE_STATE_FORMAT, JobState, ShardState, StageRecord
from kyro._state.store import StateStore
from kyro._types import RequestCounts
from kyro._verdicts.result_types import BatchRunResult
from kyro._verdicts.vote import VoteSettings

__all__ = ["BatchJudge"]

replace = msgspec.structs.replace
_log = logging.getLogger("kyro")


_MAPPING_NAME = "judges.yml"
"""The name a config given as a mapping goes by (its state file: ``judges.batch-state.json``)."""


def _new_job_id() -> str:
    return f"kyro-{now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


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
    ``disk`` carries the state folder's durable writes (state, downloads, results): the
    local file system by default; tests pass a double that fails like a full disk.
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
        disk: DurableIO = LOCAL_DISK,
    ) -> None:
        if max_resubmits < 0:
            raise ValueError("max_resubmits must be 0 or more")
        if cache_max_bytes is not None and cache_max_bytes < 1:
            raise ValueError("cache_max_bytes must be positive")
        self._cache = cache
        self._cache_max_bytes = cache_max_bytes
        self._prices = prices
        self._samples = samples
        self._model = model
        self._last_estimate: CostEstimator | None = None
        self._config: JudgesConfig | None = None
        if isinstance(config, JudgesConfig):
            self._config = config
            self._config_path = config.path
        elif isinstance(config, str | os.PathLike):
            self._config_path = Path(config)
        elif isinstance(config, Mapping):
            self._config_path = Path(_MAPPING_NAME)
            self._config = config_from_mapping(config, path=self._config_path)
        else:
            raise BatchValidationError(
                f"config must be a path to a judges YAML file, a mapping or a JudgesConfig, "
                f"not {type(config).__name__}"
            )
        settings = JobSettings(
            vote=vote if vote is not None else VoteSettings(),
            max_resubmits=max_resubmits,
            token_limit_wait=token_limit_wait,
            lock_timeout=lock_timeout,
        )
        self._runner = JobRunner(
            StateStore(self._config_path, Path(state_dir) if state_dir else None, disk=disk),
            provider,
            owner=str(self._config_path.resolve()),
            fallback=fallback,
            settings=settings,
            config=self._config,
            prices=prices,
        )

    def __repr__(self) -> str:
        return f"BatchJudge(provider={self.provider.name!r}, config={str(self.config_path)!r})"

    @property
    def provider(self) -> BatchProvider:
        """The batch provider jobs are submitted through."""
        return self._runner.provider

    @property
    def fallback(self) -> BatchProvider | None:
        """The provider that finishes resubmitted requests at once, if any."""
        return self._runner.fallback

    @property
    def config_path(self) -> Path:
        """The config's path as given (``judges.yml`` for a config given as a mapping)."""
        return self._config_path

    @property
    def owner(self) -> str:
        """The config's resolved path, as the state records it (one job per config)."""
        return self._runner.owner

    @property
    def last_estimate(self) -> CostEstimator | None:
        """The cost estimate of the last submit (per judge and model), or None."""
        return self._last_estimate

    def load(self) -> JudgesConfig:
        """The config as submit() uses it: validated, runnable, every judge's model resolved.

        Models, first found: the judge's ``model:``, the config's, ``model=``, ``KYRO_MODEL``,
        the provider's ``default_model``. Raises :class:`BatchValidationError` with what
        ``validate`` would say.
        """
        config = self._config if self._config is not None else load_config(self.config_path)
        return resolve_models(
            config,
            model=self._model,
            provider_default=getattr(self.provider, "default_model", None),
            provider=self.provider.name,
        )

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

        Refuses while a job for the same config is pending (:class:`kyro.JobPendingError`).
        If a previous submit crashed midway, this finishes that job (adopting batches it
        already created) and returns its id: the transcripts given now are not used, and a
        warning says so.

        With ``max_cost`` (USD), a job whose cost ceiling passes it raises
        :class:`kyro.BudgetExceededError` before anything is uploaded. The estimate of the
        last submit is kept in ``last_estimate`` (per judge and model).
        """
        config = self.load()
        run_variables = validate_variables(variables)
        check_runs(runs)
        settings = self._runner.settings
        if settings.vote.min_valid_votes > runs:
            raise BatchValidationError(
                f"min_valid_votes is {settings.vote.min_valid_votes} but each judge gets only "
                f"{runs} run(s), so no verdict could ever pass; lower min_valid_votes or raise "
                "runs. Nothing was submitted"
            )
        # Before anything is written: a job that cannot authenticate is never left pending.
        check_credentials = getattr(self.provider, "check_credentials", None)
        if check_credentials is not None:
            check_credentials()
        async with self._locked("submit") as state:
            if state is not None:
                resumed = await self._resume(state)
                if resumed is not None:
                    return resumed
            state = await self._plan(config, transcripts, runs, run_variables, max_cost)
            self._runner.store.save(state)
            state = await self._runner.start(state)
        return state.job_id

    async def _resume(self, state: JobState) -> str | None:
        """A saved state at submit: finish an interrupted submit (its job id), refuse a
        pending job, or clear an ended one (None: go on with a new job)."""
        runner = self._runner
        runner.check_owner(state.config_path, runner.store.state_path)
        if state.status == "submitting":
            runner.check_job(state, None)  # its shards are encoded for its own provider
            _log_resume(state)
            return (await runner.start(state)).job_id
        if state.status != "ended":
            raise runner.pending_error(state)
        runner.store.clear()
        return None

    async def _plan(
        self,
        config: JudgesConfig,
        transcripts: Iterable[Any] | AsyncIterable[Any] | str | Path | Mapping[str, Any],
        runs: int,
        variables: dict[str, str],
        max_cost: float | None,
    ) -> JobState:
        """Write every shard of a new job and return its first state (not saved yet).

        A pipeline's later stages are planned from stage outcomes with one request per run;
        its stage 0 does the same so every stage is shaped alike. Its later steps are priced
        as if every transcript reached them (the budget's ceiling).
        """
        store = self._runner.store
        pipeline = config.uses_pipeline
        use_samples = not pipeline and wants_samples(self.provider, config, runs, self._samples)
        gate, estimator, job_cache = open_gate(
            config,
            self.provider.name,
            store,
            cache=self._cache,
            prices=price_table(self._prices, config),
            scope=cache_scope_of(self.provider),
            max_bytes=self._cache_max_bytes,
        )
        try:
            summary = await build_job_shards(
                config,
                transcripts,
                runs=runs,
                variables=variables,
                provider=self.provider,
                store=store,
                samples=use_samples,
                gate=gate,
                later=later_gate(config, estimator) if pipeline else None,
            )
        finally:
            if job_cache is not None:
                job_cache.close()
        self._last_estimate = estimator
        totals = estimator.totals()
        try:
            check_budget(totals, max_cost, scope=PIPELINE_SCOPE if pipeline else "")
        except BudgetExceededError:
            store.clear()  # planned, never uploaded: leave nothing behind
            raise
        state = _initial_state(_new_job_id(), config, summary, runs, variables, self._runner)
        return replace(
            state,
            samples=runs if use_samples else 1,
            cached_runs=totals.cached_runs,
            max_cost=max_cost,
            ceiling_usd=totals.ceiling_usd,
            budget=budget_of(estimator, max_cost, totals.requests),
        )

    # -- check, status, cancel --------------------------------------------------------------

    async def check(self, job_id: str | None = None) -> BatchRunResult | None:
        """Poll once; None while any batch is pending, else the job's result.

        Raises :class:`BatchJobError` when the job ended failed, expired, cancelled or
        over_budget (a pipeline stage past ``max_cost``), with the provider's errors and the
        partial results (also on disk; the state is kept), and
        :class:`kyro.NoJobError` when nothing was submitted with this config and state folder.
        After a job is collected, checking it again returns the same result from disk.
        """
        runner = self._runner
        async with self._locked("check") as state:
            if state is None:
                return runner.finished_result(job_id)
            runner.check_job(state, job_id)
            if state.status == "submitting":  # a submit was interrupted: finish it first
                state = await runner.start(state)
            return await run_check(runner, state)

    async def status(self, job_id: str | None = None) -> JobProgress:
        """Poll every unfinished batch once and report progress; never collects results."""
        runner = self._runner
        async with self._locked("status") as state:
            if state is None:
                done = runner.finished_result(job_id)
                return JobProgress(
                    job_id=done.job_id,
                    phase="done",
                    requests=done.counts.requests,
                    batches=(),
                    totals=RequestCounts(),
                )
            runner.check_job(state, job_id)
            return progress_of(await runner.poll(state, submit=False))

    async def cancel(self, job_id: str | None = None) -> JobProgress:
        """Ask the provider to cancel every unfinished batch of the job.

        The job then ends ``cancelled``: the next check() collects the finished part and
        raises :class:`BatchJobError` carrying it. With no pending job, raises
        :class:`kyro.NoJobError`.
        """
        runner = self._runner
        async with self._locked("cancel") as state:
            if state is None:
                raise runner.no_job_error(job_id, action="cancel")
            runner.check_job(state, job_id)
            return progress_of(await runner.cancel(state))

    # -- what the command line shows -------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """The file the pending job's state is saved in (it exists while a job is pending)."""
        return self._runner.store.state_path

    @property
    def state_dir(self) -> Path:
        """The state folder: the job's state, its sidecar files and the results files."""
        return self._runner.store.state_dir

    def saved_progress(self) -> JobProgress | None:
        """The pending job's progress as last saved (no poll, no lock); None with no job.

        Example::

            await judge.check()
            progress = judge.saved_progress()   # what that check() saw
        """
        state = self._runner.store.load()
        return progress_of(state) if state is not None else None

    @contextlib.asynccontextmanager
    async def _locked(self, purpose: str) -> AsyncIterator[JobState | None]:
        """Hold the job's lock, leftovers of interrupted writes swept; yield the saved state."""
        store = self._runner.store
        async with store.lock(timeout=self._runner.settings.lock_timeout, purpose=purpose):
            store.sweep_temp()
            yield store.load()


def _initial_state(
    job_id: str,
    config: JudgesConfig,
    summary: BuildSummary,
    runs: int,
    variables: dict[str, str],
    runner: JobRunner,
) -> JobState:
    shards = tuple(
        ShardState(
            index=i,
            name=runner.store.relative(Path(s.path or "")),
            model=s.model,
            lines=s.lines,
            bytes=s.bytes,
            sha256=s.sha256,
        )
        for i, s in enumerate(summary.shards)
    )
    return JobState(
        job_id=job_id,
        provider=runner.provider.name,
        config_path=runner.owner,
        config_sha256=config.sha256,
        models=config.models,
        pass_thresholds={
            j.name: j.pass_threshold for j in config.judges if j.pass_threshold != 0.5
        },
        judges=tuple(j.name for j in config.judges),
        runs=runs,
        transcripts=summary.transcripts,
        created_at=now(),
        vote=runner.settings.vote,
        max_resubmits=runner.settings.max_resubmits,
        shards=shards,
        **_pipeline_fields(config, summary, variables),
    )


def _pipeline_fields(
    config: JudgesConfig, summary: BuildSummary, variables: dict[str, str]
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
