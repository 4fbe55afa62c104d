"""The reply cache on the live path: misses sent and stored, hits answered, batch keys shared."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import anyio.lowlevel

from kyro._live.live_cache import LiveCache
from kyro._plan.planner import plan_requests
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys
from kyro.provider import JudgeRequest, ResultError, ResultLine, Usage
from tests.plan_helpers import make_config, make_judge, texts

OK = json.dumps({"status": "SUCCESS", "root_cause": "fine"})
CONFIG = make_config(make_judge("tone", params={"max_tokens": 20}))


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
