"""LocalProvider against an OpenAI-compatible endpoint: concurrency, timeouts, retries, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from kyro.provider import JudgeRequest, Message, ResultLine, RetryPolicy, Usage
from kyro_local import LocalProvider


async def _run(provider: LocalProvider, shard: Path) -> tuple[str, dict[str, ResultLine]]:
    try:
        batch_id = await provider.submit(shard, metadata={"job": "j"})
        lines = {line.custom_id: line async for line in provider.results(batch_id)}
    finally:
        await provider.aclose()
    return batch_id, lines


async def test_concurrency_limit_holds_at_the_server(
    server: Any, make_shard: Any, tmp_path: Path
) -> None:
    """The server never sees more requests in flight than ``concurrency``, and sees that many."""
    provider = LocalProvider(server.base_url, concurrency=5, state_dir=tmp_path / "s")
    _, lines = await _run(provider, make_shard(["sleep:0.1"] * 20))
    assert server.state.max_in_flight == 5
    assert len(lines) == 20
    assert all(line.ok for line in lines.values())


async def test_reply_content_usage_and_status(server: Any, make_shard: Any, tmp_path: Path) -> None:
    """Each line's content is choices[0].message.content and usage maps to kyro's names."""
    provider = LocalProvider(server.base_url, state_dir=tmp_path / "s")
    batch_id, lines = await _run(provider, make_shard(["a", "b", "c"]))
    assert {k: v.content for k, v in lines.items()} == {
        "t0-j0-r0": "reply:a",
        "t1-j0-r0": "reply:b",
        "t2-j0-r0": "reply:c",
    }
    assert lines["t0-j0-r0"].usage == Usage(input_tokens=3, output_tokens=2, total_tokens=5)
    status = await LocalProvider(server.base_url, state_dir=tmp_path / "s").poll(batch_id)
    assert status.state == "completed"
    assert (status.request_counts.total, status.request_counts.completed) == (3, 3)


async def test_hanging_request_times_out_alone(
    server: Any, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """A request the server never answers becomes a retryable ``timeout`` line; others succeed."""
    provider = LocalProvider(
        server.base_url,
        timeout=0.3,
        retry=RetryPolicy(max_retries=1),
        sleep=fake_sleep,
        state_dir=tmp_path / "s",
    )
    _, lines = await _run(provider, make_shard(["ok", "hang", "ok2"]))
    hung = lines["t1-j0-r0"]
    assert hung.ok is False
    assert hung.error is not None
    assert (hung.error.code, hung.error.retryable) == ("timeout", True)
    assert "0.3 s" in hung.error.message
    assert server.state.calls["hang"] == 2  # one retry
    assert lines["t0-j0-r0"].ok
    assert lines["t2-j0-r0"].ok


async def test_429_is_retried_after_retry_after(
    server: Any, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """A 429 is retried after the server's Retry-After, and the line then succeeds."""
    provider = LocalProvider(server.base_url, sleep=fake_sleep, state_dir=tmp_path / "s")
    _, lines = await _run(provider, make_shard(["fail:429:2:k"]))
    assert lines["t0-j0-r0"].ok
    assert lines["t0-j0-r0"].content == "reply:fail:429:2:k"
    assert fake_sleep.delays == [7.0, 7.0]
    assert server.state.calls["fail:429:2:k"] == 3


async def test_5xx_is_retried_then_reported(
    server: Any, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """A passing 500 is retried away; a lasting one ends as a retryable ``http_500`` line."""
    provider = LocalProvider(
        server.base_url, retry=RetryPolicy(max_retries=2), sleep=fake_sleep, state_dir=tmp_path
    )
    _, lines = await _run(provider, make_shard(["fail:500:1:a", "fail:500:9:b", "fail:502:9:c"]))
    assert lines["t0-j0-r0"].ok
    lasting = lines["t1-j0-r0"].error
    assert lasting is not None
    assert (lasting.code, lasting.retryable) == ("http_500", True)
    assert "boom" in lasting.message
    assert server.state.calls["fail:500:9:b"] == 3
    plain = lines["t2-j0-r0"].error
    assert plain is not None
    assert plain.code == "http_502"
    assert "Bad gateway" in plain.message


async def test_4xx_is_not_retried(
    server: Any, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """A 400 is reported at once with the body's error code, not retryable."""
    provider = LocalProvider(server.base_url, sleep=fake_sleep, state_dir=tmp_path / "s")
    _, lines = await _run(provider, make_shard(["fail:400:9:x"]))
    error = lines["t0-j0-r0"].error
    assert error is not None
    assert (error.code, error.retryable) == ("invalid_request_error", False)
    assert server.state.calls["fail:400:9:x"] == 1
    assert fake_sleep.delays == []


async def test_refused_connection_is_an_errored_line(
    refused_url: str, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """With nothing listening, every line ends as a retryable ``connection_error``."""
    provider = LocalProvider(refused_url, sleep=fake_sleep, state_dir=tmp_path / "s")
    batch_id, lines = await _run(provider, make_shard(["a", "b"]))
    assert {line.error.code for line in lines.values() if line.error} == {"connection_error"}
    assert all(line.error and line.error.retryable for line in lines.values())
    status = await provider.poll(batch_id)
    assert (status.state, status.request_counts.failed) == ("completed", 2)


async def test_api_key_is_sent_but_never_shown_or_stored(
    server: Any, make_shard: Any, fake_sleep: Any, tmp_path: Path
) -> None:
    """The key goes out as a bearer header and appears in no repr, file or error message."""
    secret = "sk-test-very-secret-123"
    provider = LocalProvider(
        server.base_url, api_key=secret, sleep=fake_sleep, state_dir=tmp_path / "s"
    )
    assert secret not in repr(provider)
    _, lines = await _run(provider, make_shard(["ok", "fail:400:9:k"]))
    assert server.state.authorization == [f"Bearer {secret}"] * 2
    assert all(secret not in str(line) for line in lines.values())
    for file in (tmp_path / "s").rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


async def test_a_closed_provider_sends_nothing_more(server: Any, tmp_path: Path) -> None:
    """Once closed, a live request opens no new connection: it is a failed ``local_error``
    line saying the backend is closed, and the server sees only the request made before."""
    provider = LocalProvider(server.base_url, state_dir=tmp_path / "s")
    request = JudgeRequest(
        custom_id="t0-j0-r0", model="m", messages=(Message(role="user", content="a"),)
    )
    before = await provider.complete(request)
    await provider.aclose()
    after = await provider.complete(request)
    assert (before.ok, before.content) == (True, "reply:a")
    assert after.ok is False
    assert after.error is not None
    assert after.error.code == "local_error"
    assert "closed" in after.error.message
    assert sum(server.state.calls.values()) == 1


async def test_live_requests_from_many_callers_share_the_concurrency_limit(
    server: Any, tmp_path: Path
) -> None:
    """Twelve live requests asked at once with concurrency 3: the server never sees more than
    three in flight, sees three at once, and every caller gets a reply under its own id."""
    provider = LocalProvider(server.base_url, concurrency=3, state_dir=tmp_path / "s")
    replies: dict[str, str | None] = {}

    async def ask(i: int) -> None:
        request = JudgeRequest(
            custom_id=f"t{i}-j0-r0",
            model="m",
            messages=(Message(role="user", content="sleep:0.05"),),
        )
        line = await provider.complete(request)
        replies[line.custom_id] = line.content

    try:
        async with anyio.create_task_group() as group:
            for i in range(12):
                group.start_soon(ask, i)
    finally:
        await provider.aclose()
    assert server.state.max_in_flight == 3
    assert replies == {f"t{i}-j0-r0": "reply:sleep:0.05" for i in range(12)}
    assert server.state.calls["sleep:0.05"] == 12
