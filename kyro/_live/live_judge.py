"""KyroJudge: the same judges (or pipeline) evaluated now, through a live provider.

``run`` walks the DAG for one transcript: every step starts as soon as the steps it waits for
are decided (so the roots start together), its runs go out at once, and its verdict is voted
as in a batch job. ``run_many`` does that for a stream of transcripts, ``concurrency`` at a
time, and yields the evaluations in input order with memory bounded by the window. The
semantics are those of :mod:`kyro._config.dag`; results are built by
:mod:`kyro._verdicts.steps`, the same code a staged batch job uses, so both give the same
outcome for the same replies.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from kyro._config.judges import JudgesConfig, resolve_models
from kyro._config.loader import load_config
from kyro._exceptions import BatchValidationError
from kyro._files import atomic_writer
from kyro._plan.planner import Planner, validate_variables
from kyro._provider import LiveProvider
from kyro._transcripts import Transcript, aiter_transcripts, transcript_preview
from kyro._types import ResultLine
from kyro._verdicts.result_types import (
    BatchRunResult,
    JudgeVerdict,
    RunVerdict,
    TranscriptEvaluation,
)
from kyro._verdicts.steps import ResultsWriter, pipeline_evaluation, step_values
from kyro._verdicts.vote import VoteSettings, parse_reply, vote_sorted

__all__ = ["KyroJudge"]


class KyroJudge:
    """Evaluate transcripts with a judges config or pipeline right now, through a live provider.

    ``config`` is a path or a loaded :class:`JudgesConfig`; ``provider`` anything with
    ``async complete(request) -> ResultLine`` (``kyro_local.LocalProvider`` over an
    OpenAI-compatible endpoint or a Python callable). ``runs``, ``vote`` and ``model`` work as
    in :class:`BatchJudge`: a judge's model is its own, the config's, ``model``,
    ``KYRO_MODEL``, then the provider's ``default_model``.

    Example::

        live = KyroJudge("pipeline.yml", provider=LocalProvider(base_url=url))
        evaluation = await live.run({"request": "...", "response": "..."},
                                    variables={"product": "X"})
        evaluation.status, evaluation.steps["quality"].state
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | JudgesConfig,
        *,
        provider: LiveProvider,
        runs: int = 1,
        vote: VoteSettings | None = None,
        model: str | None = None,
    ) -> None:
        if not isinstance(provider, LiveProvider):
            raise TypeError(
                f"{type(provider).__name__} cannot run requests live (it has no "
                "complete(request)); use kyro_local.LocalProvider, or BatchJudge for a batch "
                "provider"
            )
        loaded = config if isinstance(config, JudgesConfig) else load_config(config)
        # Models as BatchJudge resolves them: the judge's, the config's, model=, KYRO_MODEL,
        # then the provider's default.
        self.config = resolve_models(
            loaded,
            model=model,
            provider_default=getattr(provider, "default_model", None),
            provider=provider.name,
        )
        self.provider = provider
        self.graph = self.config.graph()
        self.runs = runs
        self.vote = vote if vote is not None else VoteSettings()
        Planner(self.config, runs, None, 0, None)  # checks runs now, not on first use

    def __repr__(self) -> str:
        return f"KyroJudge(provider={self.provider.name!r}, config={str(self.config.path)!r})"

    async def aclose(self) -> None:
        """Close the provider."""
        await self.provider.aclose()

    async def __aenter__(self) -> KyroJudge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(
        self, transcript: Any, variables: Mapping[str, str] | None = None
    ) -> TranscriptEvaluation:
        """Evaluate one transcript (text, a dict, a file path or a :class:`Transcript`) now.

        Returns its :class:`TranscriptEvaluation`: every step's verdict or why it did not run,
        and the rolled-up status. A failed request is an ERRORED run, never an exception.
        """
        item = transcript if isinstance(transcript, Transcript) else await _one(transcript)
        return await self._walk(item, self._planner(variables))

    async def run_many(
        self,
        transcripts: Iterable[Any] | AsyncIterable[Any] | str | os.PathLike[str],
        *,
        variables: Mapping[str, str] | None = None,
        concurrency: int = 8,
    ) -> AsyncGenerator[TranscriptEvaluation, None]:
        """Evaluate many transcripts, ``concurrency`` at a time; yield them in input order.

        Transcripts are read lazily; at most ``4 × concurrency`` evaluations are held while an
        earlier one is still running. Stop early inside ``contextlib.aclosing(...)``.

        Example::

            async with contextlib.aclosing(live.run_many(["data.jsonl"])) as results:
                async for evaluation in results:
                    print(evaluation.index, evaluation.status)
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number ≥ 1, not {concurrency!r}")
        planner = self._planner(variables)
        running = anyio.Semaphore(concurrency)
        ahead = anyio.Semaphore(concurrency * 4)
        send, receive = anyio.create_memory_object_stream[TranscriptEvaluation](concurrency * 4)

        failed: list[Exception] = []

        async def one(item: Transcript, out: Any, group: anyio.abc.TaskGroup) -> None:
            async with out:
                try:
                    evaluation = await self._walk(item, planner)
                except Exception as exc:  # raised below as itself, not as an exception group
                    failed.append(exc)
                    group.cancel_scope.cancel()
                    return
                finally:
                    running.release()
                await out.send(evaluation)

        async def feed(group: anyio.abc.TaskGroup) -> None:
            async with send:
                try:
                    async for item in aiter_transcripts(transcripts):
                        await ahead.acquire()
                        await running.acquire()
                        group.start_soon(one, item, send.clone(), group)
                except Exception as exc:  # a bad transcript input: raised below as itself
                    failed.append(exc)
                    group.cancel_scope.cancel()

        held: dict[int, TranscriptEvaluation] = {}
        following = 0
        async with anyio.create_task_group() as group:
            group.start_soon(feed, group)
            async with receive:
                async for evaluation in receive:
                    held[evaluation.index] = evaluation
                    while following in held:
                        ahead.release()
                        yield held.pop(following)
                        following += 1
        if failed:
            raise failed[0]

    def _planner(self, variables: Mapping[str, str] | None) -> Planner:
        return Planner(self.config, self.runs, validate_variables(variables), 0, None)

    async def _walk(self, transcript: Transcript, planner: Planner) -> TranscriptEvaluation:
        graph = self.graph
        verdicts: dict[str, JudgeVerdict] = {}
        decided = {name: anyio.Event() for name in graph.names}

        async def step(index: int, name: str) -> None:
            try:
                for before in graph.waits_for(name):
                    await decided[before].wait()
                own = {n: v.status for n, v in verdicts.items()}
                if graph.decide(name, own)[0] == "RUN":
                    values = step_values(graph, graph.ancestors(name), verdicts)
                    verdicts[name] = await self._step(transcript, planner, index, name, values)
            finally:
                decided[name].set()

        await _together([functools.partial(step, i, n) for i, n in enumerate(graph.names)])
        return pipeline_evaluation(
            graph,
            index=transcript.index,
            source=transcript.source,
            verdicts=verdicts,
            preview=transcript_preview(transcript.value) or None,
        )

    async def _step(
        self,
        transcript: Transcript,
        planner: Planner,
        index: int,
        name: str,
        values: Mapping[str, Mapping[str, str]],
    ) -> JudgeVerdict:
        requests = planner.requests_for(transcript, (index,), values)
        lines: list[ResultLine | None] = [None] * len(requests)

        async def send(run: int) -> None:
            lines[run] = await self.provider.complete(requests[run])

        await _together([functools.partial(send, run) for run in range(len(requests))])
        threshold = self.config.judges[index].pass_threshold
        runs: list[RunVerdict] = []
        for run, line in enumerate(lines):
            assert line is not None  # every task finished or the group raised
            if line.ok and line.error is None:
                runs.append(
                    parse_reply(line.content, run=run, usage=line.usage, pass_threshold=threshold)
                )
            else:
                runs.append(
                    RunVerdict(run=run, status="ERRORED", error=line.error, usage=line.usage)
                )
        return vote_sorted(name, tuple(runs), self.vote)


async def _together(calls: list[Callable[[], Awaitable[None]]]) -> None:
    """Run ``calls`` concurrently; the first failure cancels the rest and is raised as is
    (not wrapped in an exception group, so ``except ProviderError`` works)."""
    failed: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def guarded(call: Callable[[], Awaitable[None]]) -> None:
            try:
                await call()
            except Exception as exc:
                failed.append(exc)
                group.cancel_scope.cancel()

        for call in calls:
            group.start_soon(guarded, call)
    if failed:
        raise failed[0]


async def _one(item: Any) -> Transcript:
    """The single transcript ``item`` names (run() takes one; run_many takes many)."""
    found: list[Transcript] = []
    async for transcript in aiter_transcripts(item):
        found.append(transcript)
        if len(found) > 1:
            break
    if len(found) != 1:
        what = "no transcript" if not found else "more than one transcript"
        raise BatchValidationError(
            f"run() evaluates one transcript, and this input holds {what}; pass one text, dict "
            "or file, or use run_many() for a folder, a .jsonl file or a list"
        )
    return found[0]


async def run_to_file(
    judge: KyroJudge,
    transcripts: Any,
    path: Path,
    *,
    job_id: str | None = None,
    variables: Mapping[str, str] | None = None,
    concurrency: int = 8,
) -> BatchRunResult:
    """Run every transcript live and write the results file (one evaluation a line, durably).

    The result reads like a finished batch job's: counts, usage, the lazy ``evaluations``.

    Example::

        result = await run_to_file(live, ["data.jsonl"], Path("results.jsonl"))
    """
    job_id = job_id or new_run_id()
    with atomic_writer(path) as file:
        writer = ResultsWriter(file, judge.graph.names, pipeline=judge.graph.is_pipeline)
        stream = judge.run_many(transcripts, variables=variables, concurrency=concurrency)
        async with contextlib.aclosing(stream) as evaluations:
            async for evaluation in evaluations:
                writer.add(evaluation)
        writer.flush()
    if writer.counts.transcripts == 0:
        raise BatchValidationError(
            "no transcripts were given, so there is nothing to run; pass inline text, files, "
            "folders or a .jsonl dataset",
            path=judge.config.path,
        )
    return writer.result(job_id, path)


def new_run_id() -> str:
    """A fresh id for a live run (``run-20260101-120000-ab12cd``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"run-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
