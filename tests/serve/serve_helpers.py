"""Helpers for the service tests: judge configs, a counting judge, servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from kyro.serve import (
    BatchJudgeExecutor,
    Executor,
    KeyRing,
    LiveExecutor,
    ProviderFactory,
    ServeApp,
    build_service,
)
from kyro.testing.serving import bind

KEY = "serve-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Api-Key {KEY}"}
SEED_INPUTS = [
    {
        "request": "What is the capital of France?",
        "response": "Paris is the capital and largest city of France.",
    },
    {"request": "What is the capital of Spain?", "response": "Madrid is the capital of Spain."},
    {"request": "What is the capital of Italy?", "response": "Rome is the capital city of Italy."},
]
RELEVANCE = """\
version: 1
name: relevance
description: Is the response relevant to the request?
model: judge-model
judges:
  - name: Relevance
    prompt: |
      {marker}
      Request: {{{{input.request}}}}
      Response: {{{{input.response}}}}
      Reply in JSON with status, root_cause and score.
    output_format: json
"""


def write_judge(folder: Path, marker: str = "version one", name: str = "relevance.yml") -> Path:
    """A one-evaluator judge config whose prompt starts with ``marker``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(RELEVANCE.format(marker=marker), encoding="utf-8")
    return path


def user_text(body: dict[str, Any]) -> str:
    """The user message of a chat request body."""
    return str(body["messages"][-1]["content"])


def request_of(body: dict[str, Any]) -> str:
    """The ``Request:`` line of a rendered relevance prompt."""
    for line in user_text(body).splitlines():
        if line.startswith("Request: "):
            return line.removeprefix("Request: ")
    raise AssertionError("no request line in the prompt")


class CountingJudge:
    """A thread-safe callable judge: counts calls per request, echoes the request back.

    A request containing "prose" gets a reply that is not JSON; one containing "block" waits
    until ``release`` is set.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.prompts: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        request = request_of(body)
        with self._lock:
            self.calls[request] += 1
            self.prompts.append(user_text(body))
        if "block" in request:
            self.release.wait(30)
        if "prose" in request:
            return "I think this answer is fine."
        score = 0.95 if "Paris" in user_text(body) else 0.4
        return json.dumps({"status": "SUCCESS", "root_cause": f"judged: {request}", "score": score})


def live(handler: Any, concurrency: int = 8) -> Callable[[Path], Executor]:
    """The live executor over a LocalProvider calling ``handler``."""
    from kyro_local import LocalProvider

    return lambda jobs: LiveExecutor(
        LocalProvider(handler=handler, state_dir=jobs / "local", concurrency=concurrency),
        concurrency=concurrency,
    )


def batch(
    factory: ProviderFactory, *, poll_interval: float = 0.05, sleep: Any = None
) -> Callable[[Path], Executor]:
    """The BatchJudge executor over ``factory``; ``sleep`` replaces its waits."""
    waits = {} if sleep is None else {"sleep": sleep}
    return lambda jobs: BatchJudgeExecutor(
        factory, jobs_dir=jobs, workers=4, poll_interval=poll_interval, **waits
    )


def make_service(
    judges: list[Path],
    data_dir: Path,
    executor: Callable[[Path], Executor],
    *,
    max_body_bytes: int = 1024 * 1024,
) -> ServeApp:
    """A service over ``judges`` with the test key."""
    return build_service(
        judges,
        data_dir=data_dir,
        executor=executor,
        keys=KeyRing([KEY]),
        max_body_bytes=max_body_bytes,
        grace=1.0,
    )


@contextlib.contextmanager
def serving(service: ServeApp) -> Iterator[str]:
    """Serve on 127.0.0.1 (a free port) in a background thread; yields the base URL."""
    sock = bind()  # a TCP socket: its connections answer without a delayed-ACK wait
    config = uvicorn.Config(
        service.app, http="h11", lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_for(
    client: httpx.Client,
    execution_id: str,
    statuses: tuple[str, ...] = ("completed", "failed"),
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Poll the execution until its status is one of ``statuses``; its last view."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
        if view["status"] in statuses:
            return view
        assert time.monotonic() < deadline, f"still {view['status']} after {timeout}s"
        time.sleep(0.05)


def post(client: httpx.Client, judge: str, body: dict[str, Any]) -> str:
    """POST a batch-execute; assert the 202; return the execution id."""
    response = client.post(f"/v1/judges/{judge}/batch-execute/", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["batch_execution_id"])


class ServerProcess:
    """``python3 -m kyro serve`` in a subprocess on 127.0.0.1; stderr goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kyro", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "KYRO_SERVE_API_KEYS": KEY, **env},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.process.kill()
            self.process.wait()
            self._close()
            raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")
        self.url = line

    def kill9(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close()
        return code

    def _close(self) -> None:
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


def verdicts_of_one_execution(
    args: list[str], env: dict[str, str], log: Path
) -> list[tuple[str, str]]:
    """Start ``kyro serve ARGS``, run the seed inputs through the relevance judge, stop it
    (exit 0); each item's (status, justification) once the execution completed."""
    server = ServerProcess(args, env, log)
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            view = wait_for(client, post(client, "relevance", {"inputs": SEED_INPUTS}))
    finally:
        assert server.stop() == 0
    assert view["status"] == "completed", view
    results = [item["evaluator_results"][0] for item in view["items"]]
    return [(result["status"], result["justification"]) for result in results]
