"""KyroJudge: the same judges (or pipeline) evaluated now, through a live provider.

``run`` walks the DAG for one transcript: every step starts as soon as the steps it waits for
are decided (so the roots start together), its runs go out at once, and its verdict is voted
as in a batch job. ``run_many`` does that for a stream of transcripts, ``concurrency`` at a
time, and yields the evaluations in input order with memory bounded by the window. The
semantics are those of :mod:`kyro._config.dag`; results are built by
:mod:`kyro._verdicts.steps`, the same code a staged batch job uses, so both give the same
outcome for the same replies.

With the reply cache on (the default, ``.kyro/cache`` beside the config, as for batch jobs),
each run is first looked up under the key a batch job would use for it — provider scope,
model, params, rendered messages (upstream verdicts included) and run index — and only a
miss is sent (:mod:`kyro._live.live_cache`); verdicts are stored, nothing else, and a run the cache
answered says ``origin="cache"``. The cache opens on first use; one that cannot be opened is
logged and the run goes on without it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import secrets
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import msgspec

from kyro._config.judges import JudgesConfig, resolve_models
from kyro._config.loader import load_config
from kyro._exceptions import BatchValidationError, KyroError
from kyro._files import atomic_writer
from kyro._live.live_cache import LiveCache
from kyro._plan.planner import Planner, validate_variables
from kyro._provider import LiveProvider
from kyro._transcripts import Transcript, aiter_transcripts, transcript_preview
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.reply_cache import CacheSetting, ReplyCache, cache_dir_for, cache_scope_of
from kyro._verdicts.result_types import (
    BatchRunResult,
    JudgeVerdict,
    RunVerdict,
    TranscriptEvaluation,
)
from kyro._verdicts.steps import ResultsWriter, pipeline_evaluation, step_values
from kyro._verdicts.vote import VoteSettings, parse_reply, vote_sorted

__all__ = ["KyroJudge"]

_log = logging.getLogger("kyro")
replace = msgspec.structs.replace


class KyroJudge:
    """Evaluate transcripts with a judges config or pipeline right now, through a live provider.

    ``config`` is a path or a loaded :class:`JudgesConfig`; ``provider`` anything with
    ``async complete(request) -> ResultLine`` (``kyro_local.LocalProvider`` over an
    OpenAI-compatible endpoint or a Python callable). ``runs``, ``vote`` and ``model`` work as
    in :class:`BatchJudge`: a judge's model is its own, the config's, ``model``,
    ``KYRO_MODEL``, then the provider's ``default_model``. ``cache`` is the reply cache as in
    :class:`BatchJudge` (``True``: ``.kyro/cache`` beside the config; a folder; ``False``:
    off), shared with batch jobs of the same config; ``cached_runs`` counts its answers.

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
        cache: CacheSetting = True,
        cache_max_bytes: int | None = None,
    ) -> None:
        if cache_max_bytes is not None and cache_max_bytes < 1:
            raise ValueError("cache_max_bytes must be positive")
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
        # Made once (it also checks runs now): every run() without variables shares it.
        self._plain = Planner(self.config, runs, None, 0, None)
        self.cache_dir = cache_dir_for(cache, self.config.path)
        self.cache_max_bytes = cache_max_bytes
        self._cache: LiveCache | None = None
        self._cache_tried = False
        self._cache_lock: anyio.Lock | None = None

    @property
    def cached_runs(self) -> int:
        """Runs the reply cache answered so far (not sent)."""
        return self._cache.hits if self._cache is not None else 0

    async def _reply_cache(self) -> LiveCache | None:
        """The reply cache, opened on first use (None when off or when it cannot be opened)."""
        if self._cache_tried or self.cache_dir is None:
            return self._cache
        if self._cache_lock is None:
            self._cache_lock = anyio.Lock()
        async with self._cache_lock:
            if not self._cache_tried:
                folder, cap = self.cache_dir, self.cache_max_bytes
                try:
                    opened = await anyio.to_thread.run_sync(
                        lambda: ReplyCache(folder, max_bytes=cap) if cap else ReplyCache(folder)
                    )
                except (KyroError, sqlite3.Error, OSError) as exc:
                    _log.warning("the reply cache cannot be used (%s); sending every run", exc)
                else:
                    self._cache = LiveCache(opened, scope=cache_scope_of(self.provider))
                self._cache_tried = True
        return self._cache

    async def _send(self, request: JudgeRequest) -> tuple[ResultLine, bool]:
        """One run's reply and whether the cache gave it."""
        cache = await self._reply_cache()
        if cache is None:
            return await self.provider.complete(request), False
        return await cache.complete(self.provider, request)

    def __repr__(self) -> str:
        return f"KyroJudge(provider={self.provider.name!r}, config={str(self.config.path)!r})"

    async def aclose(self) -> None:
        """Close the reply cache and the provider."""
        try:
            if self._cache is not None:
                await self._cache.aclose()
                self._cache = None
        finally:
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
        if isinstance(transcript, Transcript):
            item = transcript
        elif isinstance(transcript, dict):  # what _one gives a dict, without its generator
            item = Transcript(index=0, source="inline:0", value=transcript)
        else:
            item = await _one(transcript)
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
        # fast_acquire: a free slot is taken with no trip round the event loop per item.
        running = anyio.Semaphore(concurrency, fast_acquire=True)
        ahead = anyio.Semaphore(concurrency * 4, fast_acquire=True)
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
        if variables is None or (isinstance(variables, Mapping) and not variables):
            return self._plain
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
        lines: list[tuple[ResultLine, bool] | None] = [None] * len(requests)

        async def send(run: int) -> None:
            lines[run] = await self._send(requests[run])

        await _together([functools.partial(send, run) for run in range(len(requests))])
        threshold = self.config.judges[index].pass_threshold
        runs: list[RunVerdict] = []
        for run, answer in enumerate(lines):
            assert answer is not None  # every task finished or the group raised
            line, cached = answer
            if line.ok and line.error is None:
                verdict = parse_reply(
                    line.content, run=run, usage=line.usage, pass_threshold=threshold
                )
                runs.append(replace(verdict, origin="cache") if cached else verdict)
            else:
                runs.append(
                    RunVerdict(run=run, status="ERRORED", error=line.error, usage=line.usage)
                )
        return vote_sorted(name, tuple(runs), self.vote)


async def _together(calls: list[Callable[[], Awaitable[None]]]) -> None:
    """Run ``calls`` concurrently; the first failure cancels the rest and is raised as is
    (not wrapped in an exception group, so ``except ProviderError`` works)."""
    if len(calls) == 1:  # one step, one run: the same outcome without a task group's cost
        await calls[0]()
        return
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
