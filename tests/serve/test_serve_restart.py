"""A server killed with -9 (or stopped) mid-execution and restarted: nothing lost, nothing sent
twice. The server runs in a subprocess; requests are counted at the emulator it talks to."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.serve.serve_helpers import (
    AUTH,
    SEED_INPUTS,
    ServerProcess,
    post,
    request_of,
    wait_for,
    write_judge,
)

NOW = 1_700_000_000.0
pytestmark = pytest.mark.slow


class SlowCountingResponder:
    """Answers chat requests after ``delay`` seconds, counting each request's arrival."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, body: dict[str, Any]) -> str:
        request = request_of(body)
        with self._lock:
            self.calls[request] += 1
        await anyio.sleep(self.delay)
        return json.dumps({"status": "SUCCESS", "root_cause": f"judged: {request}", "score": 0.8})


@pytest.fixture
def judges(tmp_path: Path) -> Path:
    """The relevance judge's folder."""
    return write_judge(tmp_path / "judges").parent


def _client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=AUTH, timeout=30)


@pytest.mark.parametrize("kill_when", ["batch_created", "right_after_202"])
def test_kill9_with_a_batch_provider_resumes_without_a_second_batch(
    tmp_path: Path, judges: Path, kill_when: str
) -> None:
    """Killed with -9 while its batch runs (or just after accepting), a restarted server
    finishes the execution from the same batch: one upload, one batch, every item done."""
    config = EmulatorConfig(in_progress_seconds=60)
    with Emulator(config, clock=lambda: NOW) as emulator, serve(emulator) as api:
        args = ["--judges", str(judges), "--data-dir", str(tmp_path / "data")]
        args += ["--provider", "openai", "--base-url", api, "--poll-interval", "0.05"]
        env = {"OPENAI_API_KEY": "emulated"}
        first = ServerProcess(args, env, tmp_path / "server.log")
        with _client(first) as client:
            execution_id = post(client, "relevance", {"inputs": SEED_INPUTS, "tags": ["t"]})
        if kill_when == "batch_created":
            wait_for_batch(emulator)
        first.kill9()

        second = ServerProcess(args, env, tmp_path / "server.log")
        try:
            with _client(second) as client:
                view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
                assert view["status"] in ("pending", "processing")
                wait_for_batch(emulator)  # created by the first server, or else this one
                time.sleep(0.2)  # a few polls, which must not create another
                emulator.advance(60)
                view = wait_for(client, execution_id)
        finally:
            assert second.stop() == 0
    assert view["status"] == "completed"
    assert view["tags"] == ["t"]
    assert [i["status"] for i in view["items"]] == ["completed"] * 3
    assert [i["input"]["request"] for i in view["items"]] == [p["request"] for p in SEED_INPUTS]
    stats = emulator.stats()
    assert stats.batches_created == 1
    assert stats.files_uploaded == 1


def test_kill9_with_a_live_provider_loses_nothing_and_resends_no_finished_request(
    tmp_path: Path, judges: Path
) -> None:
    """Killed with -9 mid-execution, a restarted server completes every item; items recorded
    as finished are never sent again, and only the items in flight at the kill (sent, not
    yet recorded: at most twice --concurrency) are sent again, once."""
    responder = SlowCountingResponder(delay=0.1)
    with Emulator(EmulatorConfig(), responder=responder) as emulator, serve(emulator) as api:
        args = ["--judges", str(judges), "--data-dir", str(tmp_path / "data"), "--base-url", api]
        args += ["--concurrency", "2"]
        inputs = [{"request": f"item {i}", "response": "r"} for i in range(40)]
        first = ServerProcess(args, {"OPENAI_API_KEY": "emulated"}, tmp_path / "server.log")
        with _client(first) as client:
            execution_id = post(client, "relevance", {"inputs": inputs})
            before = wait_for_count(client, execution_id, at_least=8)
        first.kill9()
        done_before = {i["input"]["request"] for i in before["items"] if i["status"] == "completed"}
        assert 8 <= len(done_before) < 40

        view = _restart_and_finish(args, tmp_path / "server.log", execution_id)
    assert view["status"] == "completed"
    assert view["completed_count"] == 40
    assert [i["evaluator_results"][0]["justification"] for i in view["items"]] == [
        f"judged: item {i}" for i in range(40)
    ]
    assert set(responder.calls) == {f"item {i}" for i in range(40)}
    assert all(responder.calls[r] == 1 for r in done_before)
    # At most 2 × --concurrency items were sent and not yet recorded at the kill.
    resent = {r for r, n in responder.calls.items() if n > 1}
    assert max(responder.calls.values()) <= 2
    assert len(resent) <= 2 * 2
    assert not resent & done_before


def test_sigterm_parks_running_work_and_a_restart_finishes_it(tmp_path: Path, judges: Path) -> None:
    """SIGTERM stops the server cleanly (exit 0) within its grace; the next start finishes."""
    responder = SlowCountingResponder(delay=0.2)
    with Emulator(EmulatorConfig(), responder=responder) as emulator, serve(emulator) as api:
        args = ["--judges", str(judges), "--data-dir", str(tmp_path / "data"), "--base-url", api]
        args += ["--concurrency", "1", "--grace", "0.5"]
        inputs = [{"request": f"item {i}", "response": "r"} for i in range(20)]
        first = ServerProcess(args, {"OPENAI_API_KEY": "emulated"}, tmp_path / "server.log")
        with _client(first) as client:
            execution_id = post(client, "relevance", {"inputs": inputs})
            wait_for_count(client, execution_id, at_least=2)
        started = time.monotonic()
        assert first.stop() == 0
        assert time.monotonic() - started < 10
        log = (tmp_path / "server.log").read_text()
        assert "parking 1 running executions; a restart resumes them" in log

        view = _restart_and_finish(args, tmp_path / "server.log", execution_id)
    assert view["status"] == "completed"
    assert view["completed_count"] == 20
    assert sum(responder.calls.values()) <= 20 + 1


def _restart_and_finish(args: list[str], log: Path, execution_id: str) -> dict[str, Any]:
    """Start the server again, wait for the execution to end, stop it cleanly; its view."""
    server = ServerProcess(args, {"OPENAI_API_KEY": "emulated"}, log)
    try:
        with _client(server) as client:
            return wait_for(client, execution_id, timeout=60)
    finally:
        assert server.stop() == 0


def wait_for_batch(emulator: Emulator, timeout: float = 20) -> None:
    """Wait until the emulator has a batch."""
    deadline = time.monotonic() + timeout
    while emulator.stats().batches_created == 0:
        assert time.monotonic() < deadline, "no batch was created"
        time.sleep(0.02)


def wait_for_count(
    client: httpx.Client, execution_id: str, *, at_least: int, timeout: float = 30
) -> dict[str, Any]:
    """Poll until at least ``at_least`` items are completed; the view then."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
        if view["completed_count"] >= at_least:
            return view
        assert time.monotonic() < deadline, f"only {view['completed_count']} items done"
        time.sleep(0.02)
