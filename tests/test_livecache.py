"""The reply cache on the live path: misses sent and stored, hits answered, batch keys shared."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kyro import BatchJudge, KyroJudge, TranscriptEvaluation
from kyro._live.live_cache import LiveCache
from kyro._plan.planner import plan_requests
from kyro._verdicts.reply_cache import CachedReply, ReplyCache, ReplyReader, RequestKeys
from kyro.provider import JudgeRequest, ResultError, ResultLine, Usage
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, serve
from tests.pipeline_helpers import assert_outcomes, responder, write_pipeline
from tests.plan_helpers import make_config, make_judge, texts

OK = json.dumps({"status": "SUCCESS", "root_cause": "fine"})
CONFIG = make_config(make_judge("tone", params={"max_tokens": 20}))
VARS = {"tone": "x"}


class _Provider:
    """A live provider answering from a list, counting calls."""

    def __init__(self, replies: list[ResultLine]) -> None:
        self.replies = replies
        self.calls: list[str] = []

    async def complete(self, request: JudgeRequest) -> ResultLine:
        self.calls.append(request.custom_id)
        await anyio.lowlevel.checkpoint()
        return self.replies.pop(0)


async def test_live_runs_miss_then_hit_and_failures_are_not_stored(tmp_path: Path) -> None:
    """The first live call of each run is sent and its verdict stored; the second is answered
    from the cache; a failed reply is sent again next time."""
    requests = list(plan_requests(CONFIG, texts(1), runs=2))
    usage = Usage(input_tokens=30, output_tokens=10, total_tokens=40)
    failed = ResultLine(custom_id="x", ok=False, error=ResultError(code="timeout", message="t"))
    provider = _Provider(
        [ResultLine(custom_id="x", ok=True, content=OK, usage=usage), failed, failed]
    )
    with ReplyCache(tmp_path) as cache:
        live = LiveCache(cache, scope="openai-chat")
        first = [await live.complete(provider, request) for request in requests]
        assert [cached for _, cached in first] == [False, False]
        again = [await live.complete(provider, request) for request in requests]
    assert provider.calls == ["t0-j0-r0", "t0-j0-r1", "t0-j0-r1"]
    line, cached = again[0]
    assert cached
    assert (line.custom_id, line.content, line.usage) == ("t0-j0-r0", OK, usage)
    assert again[1][1] is False
    assert (live.hits, live.sent) == (1, 3)


async def test_live_calls_share_keys_with_batch_jobs(tmp_path: Path) -> None:
    """A verdict stored under a batch job's key (same scope) answers the live call."""
    (request,) = plan_requests(CONFIG, texts(1), runs=1)
    with ReplyCache(tmp_path) as cache:
        key = RequestKeys("openai-chat").key(request, run=0)
        assert cache.put(key, ResultLine(custom_id="s0", ok=True, content=OK))
        provider = _Provider([])
        live = LiveCache(cache, scope="openai-chat")
        results: list[tuple[ResultLine, bool]] = []

        async def call() -> None:
            results.append(await live.complete(provider, request))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(call)
    assert provider.calls == []
    assert [cached for _, cached in results] == [True] * 4


def _recording(log: list[str]) -> Any:
    """A callable backend answering like the pipeline responder, logging each step asked."""

    def handler(body: dict[str, Any]) -> str:
        log.append(body["messages"][-1]["content"].split()[0])
        return responder(body)

    return handler


async def _walk(judge: KyroJudge, items: Any) -> list[TranscriptEvaluation]:
    async with contextlib.aclosing(judge.run_many(items, variables=VARS)) as stream:
        return [evaluation async for evaluation in stream]


async def test_kyro_judge_answers_a_second_walk_from_the_cache(tmp_path: Path) -> None:
    """A second live walk of the same pipeline sends only the runs whose reply was no verdict
    (prose is never stored); the others come from the cache, marked origin cache, with the
    same outcomes and no usage counted twice."""
    config, data = write_pipeline(tmp_path)
    log: list[str] = []
    provider = LocalProvider(handler=_recording(log), state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        first = await _walk(judge, [data])
        sent = len(log)
        assert judge.cached_runs == 0
        second = await _walk(judge, [data])
        assert judge.cached_runs == sent - 1
    assert sent == 31
    assert log[sent:] == ["STEP=accuracy"]  # transcript 3's prose reply, asked again
    assert_outcomes(second)
    assert [e.status for e in second] == [e.status for e in first]
    origins = {
        (e.index, name): run.origin
        for e in second
        for name, v in e.verdicts.items()
        for run in v.runs
    }
    assert origins.pop((3, "accuracy")) is None
    assert set(origins.values()) == {"cache"}
    assert (tmp_path / ".kyro" / "cache" / "replies.sqlite3").is_file()


async def test_kyro_judge_without_the_cache_sends_every_run(tmp_path: Path) -> None:
    """cache=False neither reads nor writes the cache: both walks send all 31 requests and
    no cache folder appears."""
    config, data = write_pipeline(tmp_path)
    log: list[str] = []
    provider = LocalProvider(handler=_recording(log), state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider, cache=False) as judge:
        await _walk(judge, [data])
        evaluations = await _walk(judge, [data])
    assert len(log) == 62
    assert judge.cached_runs == 0
    assert {run.origin for e in evaluations for v in e.verdicts.values() for run in v.runs} == {
        None
    }
    assert not (tmp_path / ".kyro").exists()


async def test_a_batch_job_answers_the_live_walk_of_the_same_pipeline(tmp_path: Path) -> None:
    """A pipeline batch job on the emulator stores its verdicts; KyroJudge over the emulator's
    chat endpoint (the same cache scope) then sends only the run whose reply was prose."""
    config, data = write_pipeline(tmp_path)
    with Emulator(responder=responder) as emulator, serve(emulator) as url:
        batch = OpenAIBatchProvider(base_url=url, api_key="sk-test")
        async with BatchJudge(batch, config, state_dir=tmp_path / "state") as job:
            await job.submit([data], variables=VARS)
            result = None
            for _ in range(10):
                result = await job.check()
                if result is not None:
                    break
        assert result is not None
        assert emulator.stats().chat_completions == 0
        live = LocalProvider(base_url=url, api_key="sk-test", state_dir=tmp_path / "local")
        async with KyroJudge(config, provider=live) as judge:
            evaluations = await _walk(judge, [data])
            hits = judge.cached_runs
        assert emulator.stats().chat_completions == 1
    assert hits == 30
    assert_outcomes(evaluations)


async def test_a_cache_that_cannot_be_opened_is_logged_and_the_walk_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache folder that is a file cannot be opened: a warning says so and every run is
    sent, the outcomes unchanged."""
    config, data = write_pipeline(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    log: list[str] = []
    provider = LocalProvider(handler=_recording(log), state_dir=tmp_path / "local")
    with caplog.at_level(logging.WARNING, logger="kyro"):
        async with KyroJudge(config, provider=provider, cache=blocker) as judge:
            evaluations = await _walk(judge, [data])
    assert len(log) == 31
    assert_outcomes(evaluations)
    assert "the reply cache cannot be used" in caplog.text


class _CountingCache(ReplyCache):
    """A reply cache counting its stores (each one transaction) and the lookups of its
    readers, and the threads each ran on."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.lookups: list[str] = []  # thread name of each lookup
        self.stores: list[int] = []
        self.store_threads: set[str] = set()

    def reader(self) -> ReplyReader:
        cache = self

        class _Counted(ReplyReader):
            def get(self, key: bytes) -> CachedReply | None:
                cache.lookups.append(threading.current_thread().name)
                return super().get(key)

        return _Counted(self.path)

    def put_many(self, items: Any) -> int:
        items = list(items)
        self.stores.append(len(items))
        self.store_threads.add(threading.current_thread().name)
        return super().put_many(items)


async def test_concurrent_live_calls_look_up_on_the_loop_and_store_in_rounds(
    tmp_path: Path,
) -> None:
    """Sixteen runs in flight at once are looked up one by one on the event loop's thread and
    stored in rounds in a worker thread (fewer transactions than runs, none lost): every
    verdict is stored once, a second pass answers all sixteen, and the hits are counted."""
    requests = list(plan_requests(CONFIG, texts(16), runs=1))
    provider = _Provider([ResultLine(custom_id="x", ok=True, content=OK)] * 16)
    cache = _CountingCache(tmp_path)
    loop_thread = threading.current_thread().name
    with cache:
        live = LiveCache(cache, scope="openai-chat")
        results: dict[str, bool] = {}

        async def call(request: JudgeRequest) -> None:
            line, cached = await live.complete(provider, request)
            results[line.custom_id] = cached

        for _ in range(2):
            async with anyio.create_task_group() as group:
                for request in requests:
                    group.start_soon(call, request)
        await live.aclose()
    with ReplyCache(tmp_path) as reopened:
        assert (reopened.stats().entries, reopened.stats().hits) == (16, 16)
    assert sum(cache.stores) == 16
    assert len(cache.stores) < 16
    assert loop_thread not in cache.store_threads
    assert cache.lookups == [loop_thread] * 32
    assert (live.sent, live.hits) == (16, 16)
    assert len(provider.calls) == 16
    assert sorted(k for k, cached in results.items() if cached) == sorted(
        r.custom_id for r in requests
    )


async def test_stores_queued_when_a_round_is_cancelled_are_written_at_close(
    tmp_path: Path,
) -> None:
    """A reply whose store joined a round that never ran (its runner cancelled) is still
    stored when the cache closes."""
    request = next(iter(plan_requests(CONFIG, texts(1), runs=1)))

    class _Instant:
        async def complete(self, request: JudgeRequest) -> ResultLine:
            return ResultLine(custom_id=request.custom_id, ok=True, content=OK)

    provider = _Instant()
    with ReplyCache(tmp_path) as cache:
        live = LiveCache(cache, scope="openai-chat")
        with anyio.CancelScope() as scope:
            scope.cancel()  # the round's thread hop is cancelled before it starts
            await live.complete(provider, request)
        assert cache.stats().entries == 0
        await live.aclose()
    with ReplyCache(tmp_path) as reopened:
        assert reopened.stats().entries == 1


class _FailingReader(ReplyReader):
    def get(self, key: bytes) -> CachedReply | None:
        raise sqlite3.OperationalError("disk I/O error")


class _FailingCache(ReplyCache):
    """A reply cache whose disk gives out on the first lookup."""

    def reader(self) -> ReplyReader:
        return _FailingReader(self.path)


async def test_a_cache_that_fails_mid_run_is_logged_once_and_every_run_is_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache whose lookups fail is logged once and then left alone: all eight runs in flight
    are sent, each with its provider's reply, none marked cached, nothing stored."""
    requests = list(plan_requests(CONFIG, texts(8), runs=1))
    provider = _Provider([ResultLine(custom_id="x", ok=True, content=OK)] * 8)
    results: list[tuple[ResultLine, bool]] = []
    with caplog.at_level(logging.WARNING, logger="kyro"), _FailingCache(tmp_path) as cache:
        live = LiveCache(cache, scope="openai-chat")

        async def call(request: JudgeRequest) -> None:
            results.append(await live.complete(provider, request))

        async with anyio.create_task_group() as group:
            for request in requests:
                group.start_soon(call, request)
        assert cache.stats().entries == 0
    assert sorted(provider.calls) == sorted(r.custom_id for r in requests)
    assert [cached for _, cached in results] == [False] * 8
    assert {line.content for line, _ in results} == {OK}
    assert live.broken
    assert caplog.text.count("the reply cache stopped working") == 1


def test_a_busy_cache_file_is_a_miss_at_once_not_a_wait(tmp_path: Path) -> None:
    """While another connection holds the cache file exclusively, a reader's lookup is a miss
    at once (it never waits on the event loop); once that connection lets go, it hits."""
    request = next(iter(plan_requests(CONFIG, texts(1), runs=1)))
    key = RequestKeys("openai-chat").key(request, run=0)
    with ReplyCache(tmp_path) as cache:
        assert cache.put(key, ResultLine(custom_id="x", ok=True, content=OK))
        path = cache.path
    holder = sqlite3.connect(path, isolation_level=None, timeout=1)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")  # taken, and kept after the commit
        holder.execute("COMMIT")
        with ReplyReader(path) as reader:
            assert reader.get(key) is None
            holder.close()
            hit = reader.get(key)
    finally:
        holder.close()
    assert hit is not None
    assert hit.content == OK
