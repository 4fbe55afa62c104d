"""A staged (pipeline) batch job at check time: collect a stage, start the next, or finish.

When every batch of stage *k* is terminal and nothing is worth sending again:

1. the stage's downloads are voted and merged with the earlier stages' verdicts into
   ``outcomes-<k>.jsonl`` (rewritten on every pass: it is derived from the downloads alone);
2. the next stage is built from the kept transcripts and those outcomes — stages no
   transcript qualifies for are passed over — into its own shard folder, which is emptied
   first, so a build a crash cut short is simply redone;
3. **commit point**: the state is saved with the new stage, its shards (no attempts yet) and
   the outcomes file it was planned from, phase ``submitting``. A crash before this save
   leaves stage *k* current and everything above is redone; a crash after it resumes by
   submitting the new shards with the usual write-ahead intents and ``find()`` adoption;
4. the new shards are submitted; check() goes on polling them.

When no later stage has a qualifying transcript, the results file is written from the last
outcomes file and the transcript index. A job that ends (failed, expired, cancelled, over
budget) at stage *k* writes its results the same way: steps of stages never reached are
``NOT_REACHED``.

The reply cache works per stage as for a plain job: a stage's runs are looked up under keys
of their rendered messages (which hold the upstream verdicts their prompts read, so another
upstream result is another key); the runs it answers are not sent, and are replayed into the
stage's vote (``origin: cache``); the verdicts a stage downloads are stored when it is
collected. A stage the cache answers whole sends nothing and is collected at once.

A job submitted with ``max_cost`` holds every later stage to it: before a stage is sent,
what the job has cost so far (its downloaded usage) plus the stage's ceiling must fit, or
the stage is not sent and the job ends ``over_budget`` (a ``BatchJobError``) with the
steps of that stage and later ``NOT_REACHED``, the reason written on each.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import msgspec

from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig, recorded_models
from kyro._cost.budget import stage_refusal
from kyro._cost.estimate import CostEstimator
from kyro._exceptions import BatchValidationError, KyroError
from kyro._job.collect import read_download, store_downloaded
from kyro._job.runner import JobRunner
from kyro._job.stage_build import build_stage
from kyro._job.stage_files import (
    StageOutcomes,
    iter_outcomes,
    iter_plan,
    iter_stored_transcripts,
    write_lines,
)
from kyro._job.submit_reuse import price_table, reuse_dir_of
from kyro._state.schema import JobState, ShardState, StageRecord
from kyro._state.store import StateStore
from kyro._transcript_index import iter_index
from kyro._types import Usage
from kyro._verdicts.aggregate import Aggregator
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.job_cache import JobCache
from kyro._verdicts.result_types import (
    BatchRunResult,
    JudgeVerdict,
)
from kyro._verdicts.steps import ResultsWriter, pipeline_evaluation

__all__ = [
    "StageRefused",
    "collect_stage",
    "finish_pipeline",
    "job_usage",
    "next_stage",
    "refuse_over_budget",
]

replace = msgspec.structs.replace
_log = logging.getLogger("kyro")


def _stage_downloads(store: StateStore, state: JobState) -> list[Path]:
    return [
        store.download_path(a.batch_id)
        for s in state.shards
        if s.stage == state.stage
        for a in s.attempts
        if a.downloaded and a.batch_id is not None
    ]


def _collect(store: StateStore, state: JobState) -> tuple[frozenset[str], int]:
    job_cache = JobCache.load(reuse_dir_of(store))
    try:
        return _collect_with(store, state, job_cache)
    finally:
        if job_cache is not None:
            job_cache.close()


def _collect_with(
    store: StateStore, state: JobState, job_cache: JobCache | None
) -> tuple[frozenset[str], int]:
    stage = state.stage
    downloads = _stage_downloads(store, state)
    with Aggregator(
        store.work_dir,
        judges=state.judges,
        runs=state.runs,
        transcripts=state.transcripts,
        settings=state.vote,
        thresholds=tuple(state.pass_thresholds.get(name, 0.5) for name in state.judges),
        stage=stage,
    ) as aggregator:
        if job_cache is not None:
            for line in job_cache.hits(stage):
                aggregator.add(line, cached=True)
        for path in downloads:
            for line in read_download(path):
                aggregator.add(line)
        retryable = frozenset(aggregator.retryable_in(iter_plan(store.plan_path(stage))))
        earlier = store.resolve(state.outcomes) if state.outcomes else None
        fresh = aggregator.verdicts_in(iter_plan(store.plan_path(stage)))
        write_lines(store.outcomes_path(stage), _merged(state.transcripts, earlier, fresh))
    if job_cache is not None and downloads:
        store_downloaded(job_cache, downloads)  # logged, never fatal, when it cannot be stored
    return retryable, aggregator.unexpected


def _merged(
    transcripts: int,
    earlier: Path | None,
    fresh: Iterator[tuple[int, dict[str, JudgeVerdict]]],
) -> Iterator[StageOutcomes]:
    before = iter_outcomes(earlier)
    upcoming = next(fresh, None)
    for t in range(transcripts):
        line = next(before, None) if earlier is not None else StageOutcomes(index=t)
        if line is None or line.index != t:
            raise BatchValidationError(
                f"the job's stage outcomes stop or skip at transcript #{t}; the state folder "
                "was changed by hand: cancel the job and submit again",
                path=earlier,
            )
        if upcoming is not None and upcoming[0] == t:
            line = StageOutcomes(index=t, verdicts={**line.verdicts, **upcoming[1]})
            upcoming = next(fresh, None)
        yield line


async def collect_stage(runner: JobRunner, state: JobState) -> tuple[frozenset[str], int]:
    """Vote the current stage and write its outcomes; return what to retry and how many
    result lines belonged to no request of the stage."""
    with runner.store.writing(runner.store.sidecar):
        return await anyio.to_thread.run_sync(_collect, runner.store, state)


def _config_of(runner: JobRunner, state: JobState) -> JudgesConfig:
    """The job's config, which must be the one it was submitted with (later stages need it),
    with the models stage 0 resolved (``state.models``), whatever ``model=`` is now."""
    config = runner.submitted_config(state)
    if config.sha256 != state.config_sha256:
        raise BatchValidationError(
            f"job {state.job_id} is a pipeline, and its later stages are planned from its "
            "config, which changed since the job was submitted (or a prompt file did); "
            "restore the config as it was, or cancel the job and submit again",
            path=state.config_path,
        )
    return recorded_models(config, state.models)


def _stage_gate(
    job_cache: JobCache | None, state: JobState, estimator: CostEstimator, stage: int
) -> RequestGate:
    """The stage's gate through the job's reply cache; without it when the job has none or
    the cache cannot be opened now (logged: the stage is then sent whole, never failed)."""
    if job_cache is not None:
        try:
            return job_cache.gate(state.judges, estimator, stage=stage)
        except (KyroError, sqlite3.Error, OSError) as exc:
            _log.warning(
                "job %s, stage %d: the reply cache cannot be used (%s); sending every run",
                state.job_id,
                stage,
                exc,
            )
    return RequestGate(state.judges, estimator=estimator)


async def next_stage(runner: JobRunner, state: JobState, unexpected: int) -> JobState | None:
    """Plan the next stage with qualifying transcripts; the state to save (not yet saved and
    not yet submitted), or None when no later stage has any."""
    store = runner.store
    config = _config_of(runner, state)
    prices = price_table(runner.prices, config)
    outcomes = store.outcomes_path(state.stage)
    records: list[StageRecord] = []
    for stage in range(state.stage + 1, state.stages):
        directory = store.stage_shards_dir(stage)
        shutil.rmtree(directory, ignore_errors=True)  # what an interrupted build left
        estimator = CostEstimator(prices, state.provider, batch=True)

        def build(
            stage: int = stage, directory: Path = directory, estimator: CostEstimator = estimator
        ) -> tuple[BuildSummary, int, int]:
            job_cache = JobCache.load(reuse_dir_of(store))
            try:
                gate = _stage_gate(job_cache, state, estimator, stage)
                summary, qualified = build_stage(
                    config,
                    stage,
                    iter_stored_transcripts(store.transcripts_path),
                    iter_outcomes(outcomes),
                    encode=runner.provider.encode,
                    limits=runner.provider.limits,
                    directory=directory,
                    plan_path=store.plan_path(stage),
                    runs=state.runs,
                    variables=state.variables,
                    gate=gate,
                )
                return summary, qualified, gate.hits
            finally:
                if job_cache is not None:
                    job_cache.close()  # the stage's hits and keys are on disk from here

        with store.writing(store.sidecar):
            summary, qualified, hits = await anyio.to_thread.run_sync(build)
        records.append(
            StageRecord(
                stage=stage,
                transcripts=qualified,
                requests=summary.requests,
                cached_runs=hits,
                ceiling_usd=estimator.totals().ceiling_usd if summary.requests else None,
            )
        )
        if not summary.requests and not hits:
            continue
        first = max((s.index for s in state.shards), default=-1) + 1
        shards = tuple(
            ShardState(
                index=first + i,
                name=store.relative(Path(shard.path or "")),
                model=shard.model,
                lines=shard.lines,
                bytes=shard.bytes,
                sha256=shard.sha256,
                stage=stage,
            )
            for i, shard in enumerate(summary.shards)
        )
        return replace(
            state,
            stage=stage,
            status="submitting",
            outcomes=store.relative(outcomes),
            shards=(*state.shards, *shards),
            planned=(*state.planned, *records),
            unexpected_lines=state.unexpected_lines + unexpected,
        )
    return None


def _finish(
    store: StateStore,
    state: JobState,
    config: JudgesConfig,
    reached: int,
    unexpected: int,
    outcomes: Path | None,
    why: str | None = None,
) -> BatchRunResult:
    graph = config.graph()
    results_path = store.results_path_for(state.job_id)
    entries = iter_index(store.index_path)
    entry = next(entries, None)
    unexpected += state.unexpected_lines
    with store.disk.atomic_writer(results_path) as file:
        writer = ResultsWriter(file, graph.names, pipeline=True, unexpected=unexpected)
        for line in iter_outcomes(outcomes):
            while entry is not None and entry.index < line.index:
                entry = next(entries, None)
            known = entry if entry is not None and entry.index == line.index else None
            writer.add(
                pipeline_evaluation(
                    graph,
                    index=line.index,
                    source=known.source if known else f"unknown:{line.index}",
                    preview=(known.preview or None) if known else None,
                    verdicts=line.verdicts,
                    reached=reached,
                    not_reached=why,
                )
            )
        writer.flush()
    return writer.result(state.job_id, results_path)


async def finish_pipeline(
    runner: JobRunner,
    state: JobState,
    *,
    reached: int,
    unexpected: int,
    why: str | None = None,
) -> BatchRunResult:
    """Write the job's results file from its outcomes so far; ``reached`` stages ran.

    With ``reached`` equal to the current stage (cancelled before any of its batches went
    out), the outcomes are those the stage was planned from. ``why`` is the reason written on
    the steps that were not reached (default: the job ended before their stage ran).
    """
    store = runner.store
    config = _config_of(runner, state)
    if reached > state.stage:
        outcomes: Path | None = store.outcomes_path(state.stage)
    else:
        outcomes = store.resolve(state.outcomes) if state.outcomes else None
    with store.writing(store.sidecar):
        result = await anyio.to_thread.run_sync(
            _finish, store, state, config, reached, unexpected, outcomes, why
        )
    return replace(result, models=dict(state.models))


def _usage_of(store: StateStore, state: JobState) -> Usage:
    total = Usage()
    for shard in state.shards:
        for attempt in shard.attempts:
            if not attempt.downloaded or attempt.batch_id is None:
                continue
            for line in read_download(store.download_path(attempt.batch_id)):
                if line.usage is not None:
                    total = total + line.usage
    return total


async def job_usage(runner: JobRunner, state: JobState) -> Usage | None:
    """The usage of every reply the job downloaded so far (every stage, every attempt), when
    the job has a budget to hold it to; None otherwise (nothing is read)."""
    if state.budget is None:
        return None
    return await anyio.to_thread.run_sync(_usage_of, runner.store, state)


class StageRefused(msgspec.Struct, frozen=True, kw_only=True):
    """A later stage the job's budget refused: why, and the results written without it."""

    reason: str
    result: BatchRunResult


async def refuse_over_budget(
    runner: JobRunner, state: JobState, advanced: JobState, usage: Usage | None, unexpected: int
) -> StageRefused | None:
    """The refusal when the stage ``advanced`` plans does not fit the job's budget; None when
    it does (or the job has none).

    A refused stage is not sent: the results file is written from the stages that ran, with
    the steps of the refused stage and later ``NOT_REACHED`` and the reason on each; the job
    then ends ``over_budget`` (its state kept, like any job that ended early).
    """
    if usage is None:
        return None
    record = advanced.planned[-1]
    refusal = stage_refusal(
        state.budget, usage, record.ceiling_usd, stage=record.stage, requests=record.requests
    )
    if refusal is None:
        return None
    result = await finish_pipeline(
        runner, state, reached=record.stage, unexpected=unexpected, why=f"over budget: {refusal}"
    )
    return StageRefused(reason=refusal, result=result)
