"""LocalProvider with a Python callable: sync and async handlers, replies, errors, retries."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kyro.provider import ResultLine, RetryPolicy, Usage
from kyro_local import LocalProvider


async def _results(provider: LocalProvider, shard: Path) -> dict[str, ResultLine]:
    batch_id = await provider.submit(shard, metadata={})
    return {line.custom_id: line async for line in provider.results(batch_id)}


async def test_sync_handler_runs_in_worker_threads_within_the_limit(
    make_shard: Any, tmp_path: Path
) -> None:
    """A sync handler runs off the event loop thread, at most ``concurrency`` at a time."""
    loop_thread = threading.get_ident()
    guard = threading.Lock()
    seen: dict[str, Any] = {"threads": set(), "now": 0, "max": 0}

    def handler(body: dict[str, Any]) -> str:
        with guard:
            seen["now"] += 1
            seen["max"] = max(seen["max"], seen["now"])
            seen["threads"].add(threading.get_ident())
        threading.Event().wait(0.02)
        with guard:
            seen["now"] -= 1
        content: str = body["messages"][0]["content"]
        return "echo " + content

    provider = LocalProvider(handler=handler, concurrency=3, state_dir=tmp_path / "s")
    lines = await _results(provider, make_shard([f"m{i}" for i in range(12)]))
    assert lines["t5-j0-r0"].content == "echo m5"
    assert all(line.ok for line in lines.values())
    assert loop_thread not in seen["threads"]
    assert 1 <= seen["max"] <= 3


async def test_async_handler_returning_a_chat_completion(make_shard: Any, tmp_path: Path) -> None:
    """An async handler's chat.completion-shaped dict yields its content and usage."""

    async def handler(body: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        text = f"{body['model']}:{body['messages'][0]['content']}"
        return {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
        }

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "s")
    lines = await _results(provider, make_shard(["x", "y"]))
    assert lines["t1-j0-r0"].content == "m:y"
    assert lines["t0-j0-r0"].usage == Usage(input_tokens=10, output_tokens=4, total_tokens=14)


async def test_raising_handler_errors_only_its_line(make_shard: Any, tmp_path: Path) -> None:
    """A handler that raises gives a non-retryable ``callable_error`` naming the exception."""

    def handler(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] == "bad":
            raise ValueError("cannot judge this")
        return "fine"

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "s")
    lines = await _results(provider, make_shard(["good", "bad", "good"]))
    error = lines["t1-j0-r0"].error
    assert error is not None
    assert (error.code, error.retryable) == ("callable_error", False)
    assert "ValueError: cannot judge this" in error.message
    assert [lines["t0-j0-r0"].content, lines["t2-j0-r0"].content] == ["fine", "fine"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (42, "int"),
        ({"text": "no choices"}, "without 'choices'"),
        ({"choices": object()}, "not JSON"),
    ],
)
async def test_unusable_reply_is_a_callable_error(
    reply: Any, expected: str, make_shard: Any, tmp_path: Path
) -> None:
    """A reply that is neither text nor a JSON chat.completion dict is a ``callable_error``."""
    provider = LocalProvider(handler=lambda body: reply, state_dir=tmp_path / "s")
    lines = await _results(provider, make_shard(["a"]))
    error = lines["t0-j0-r0"].error
    assert error is not None
    assert error.code == "callable_error"
    assert expected in error.message


async def test_connection_errors_are_retried(
    make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """A handler's ConnectionError is retried with backoff, and the line then succeeds."""
    attempts = {"n": 0}

    async def flaky(body: dict[str, Any]) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("upstream reset")
        return "made it"

    provider = LocalProvider(handler=flaky, sleep=fake_sleep, state_dir=tmp_path / "s")
    lines = await _results(provider, make_shard(["a"]))
    assert lines["t0-j0-r0"].content == "made it"
    assert attempts["n"] == 3
    assert len(fake_sleep.delays) == 2


async def test_retries_count_the_first_try(
    make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """With max_retries=2, a handler that always fails to connect is called three times in
    all (the first try and two retries, two backoffs), then its line is a connection_error."""
    attempts = {"n": 0}

    async def down(body: dict[str, Any]) -> str:
        attempts["n"] += 1
        raise ConnectionError("upstream down")

    provider = LocalProvider(
        handler=down,
        retry=RetryPolicy(max_retries=2),
        sleep=fake_sleep,
        state_dir=tmp_path / "s",
    )
    lines = await _results(provider, make_shard(["a"]))
    error = lines["t0-j0-r0"].error
    assert error is not None
    assert error.code == "connection_error"
    assert "upstream down" in error.message
    assert attempts["n"] == 3
    assert len(fake_sleep.delays) == 2


async def test_slow_handler_times_out(make_shard: Any, fake_sleep: Any, tmp_path: Path) -> None:
    """An async handler past its deadline becomes a retryable ``timeout`` line; others are fine."""

    async def handler(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] == "slow":
            await anyio.sleep_forever()
        return "quick"

    provider = LocalProvider(
        handler=handler,
        timeout=0.2,
        retry=RetryPolicy(max_retries=0),
        sleep=fake_sleep,
        state_dir=tmp_path / "s",
    )
    lines = await _results(provider, make_shard(["slow", "fast"]))
    error = lines["t0-j0-r0"].error
    assert error is not None
    assert (error.code, error.retryable) == ("timeout", True)
    assert lines["t1-j0-r0"].content == "quick"
