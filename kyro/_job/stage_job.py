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
outcomes file and the transcript index. A job that ends (failed, expired, cancelled) at stage
*k* writes its results the same way: steps of stages never reached are ``NOT_REACHED``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import msgspec

from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig, recorded_models
from kyro._exceptions import BatchValidationError
from kyro._job.collect import read_download
from kyro._job.runner import JobRunner
from kyro._job.stage_build import build_stage
from kyro._job.stage_files import (
    StageOutcomes,
    iter_outcomes,
    iter_plan,
    iter_stored_transcripts,
    write_lines,
)
from kyro._state.store import JobState, ShardState, StageRecord, StateStore
from kyro._transcript_index import iter_index
from kyro._verdicts.aggregate import Aggregator
from kyro._verdicts.result_types import (
    BatchRunResult,
    JudgeVerdict,
)
from kyro._verdicts.steps import ResultsWriter, pipeline_evaluation

__all__ = ["collect_stage", "finish_pipeline", "next_stage"]

replace = msgspec.structs.replace


def _stage_downloads(store: StateStore, state: JobState) -> list[Path]:
    return [
        store.download_path(a.batch_id)
        for s in state.shards
        if s.stage == state.stage
        for a in s.attempts
        if a.downloaded and a.batch_id is not None
    ]


def _collect(store: StateStore, state: JobState) -> tuple[frozenset[str], int]:
    stage = state.stage
    with Aggregator(
        store.work_dir,
        judges=state.judges,
        runs=state.runs,
        transcripts=state.transcripts,
        settings=state.vote,
        thresholds=tuple(state.pass_thresholds.get(name, 0.5) for name in state.judges),
        stage=stage,
    ) as aggregator:
        for path in _stage_downloads(store, state):
            for line in read_download(path):
                aggregator.add(line)
        retryable = frozenset(aggregator.retryable_in(iter_plan(store.plan_path(stage))))
        earlier = store.resolve(state.outcomes) if state.outcomes else None
        fresh = aggregator.verdicts_in(iter_plan(store.plan_path(stage)))
        write_lines(store.outcomes_path(stage), _merged(state.transcripts, earlier, fresh))
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


async def next_stage(runner: JobRunner, state: JobState, unexpected: int) -> JobState | None:
    """Plan the next stage with qualifying transcripts; the state to save (not yet saved and
    not yet submitted), or None when no later stage has any."""
    store = runner.store
    config = _config_of(runner, state)
    outcomes = store.outcomes_path(state.stage)
    records: list[StageRecord] = []
    for stage in range(state.stage + 1, state.stages):
        directory = store.stage_shards_dir(stage)
        shutil.rmtree(directory, ignore_errors=True)  # what an interrupted build left

        def build(stage: int = stage, directory: Path = directory) -> tuple[BuildSummary, int]:
            return build_stage(
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
            )

        with store.writing(store.sidecar):
            summary, qualified = await anyio.to_thread.run_sync(build)
        records.append(StageRecord(stage=stage, transcripts=qualified, requests=summary.requests))
        if not summary.requests:
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
                )
            )
        writer.flush()
    return writer.result(state.job_id, results_path)


async def finish_pipeline(
    runner: JobRunner, state: JobState, *, reached: int, unexpected: int
) -> BatchRunResult:
    """Write the job's results file from its outcomes so far; ``reached`` stages ran.

    With ``reached`` equal to the current stage (cancelled before any of its batches went
    out), the outcomes are those the stage was planned from.
    """
    store = runner.store
    config = _config_of(runner, state)
    if reached > state.stage:
        outcomes: Path | None = store.outcomes_path(state.stage)
    else:
        outcomes = store.resolve(state.outcomes) if state.outcomes else None
    with store.writing(store.sidecar):
        result = await anyio.to_thread.run_sync(
            _finish, store, state, config, reached, unexpected, outcomes
        )
    return replace(result, models=dict(state.models))
