"""kyro serve benchmark: executions over HTTP against the same work in-process, and memory.

Run: ``python3 benchmarks/bench_serve.py [--quick]`` (about a minute; ``--quick`` about 20 s;
it writes to a temporary folder). Prints ``_targets`` rows; exits 1 when a target is missed.

1. Memory (first). The server's peak RSS after one round of executions (one per client) and,
   in the same server, after ten times as many more; the ratio is printed (target ≤ 1.3×:
   flat). The executions carry about 2 KB per input (200 KB an execution), so whatever
   the server kept per execution — inputs, results, bookkeeping — would show within ten
   rounds: ``--quick`` runs 8 clients (8 executions, then 80 more: 16 MB of transcripts
   through a server of about 70 MB), the full run 20 clients (20, then 200 more). Fewer,
   heavier executions than the throughput phase's keep the quick run short without making
   a leak harder to see: the ratio compares the same concurrency before and after ten
   times the work.
2. Throughput and latency. A server in its own process judges with a LocalProvider callable
   (``judge`` below, answering at once), so what is measured is the service itself: HTTP,
   validation, the SQLite store (every item's outcome committed), the workers. 20 concurrent
   clients each submit 100-input executions and poll the status URL until completed.
   Executions per second and the p95 latency from POST to completed are printed against the
   same executions run in this process by ``KyroJudge.run_many`` with the same provider
   settings (20 concurrent ``run_many`` calls, no HTTP, no store, and no reply cache —
   ``cache=False``, as the service keeps none, so both sides send every request); target
   ≥ 0.8×. The server's latency includes up to one poll interval (``POLL``) of the client
   noticing. CPU seconds are printed too (the server's, the polling clients', the
   in-process run's): on a loaded machine the wall-clock ratio follows the CPU share each
   side gets. ``--quick`` times 2 executions per client instead of 3.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import tenacity
from _targets import Targets, child_env

CLIENTS = 20
INPUTS = 100
ROUNDS = 3  # executions per client in the throughput phase
MEMORY_CLIENTS = 20  # the memory phase: one round of these, then ten more (8 with --quick)
FILLER = 2000  # characters of text in each memory-phase input
CONCURRENCY = 16  # the serve command's default: items (and requests) in flight
POLL = 0.5  # how often each client polls the status URL
TARGET_THROUGHPUT, TARGET_RSS = 0.8, 1.3
KEY = "bench-serve-key-0123456789abcdef"
CONFIG = """\
version: 1
name: relevance
model: bench-model
judges:
  - name: Relevance
    prompt: "Reply in JSON. Request: {{input.request}} Response: {{input.response}}"
    output_format: json
"""
_REPLY = '{"status": "SUCCESS", "root_cause": "relevant", "score": 0.9}'


def judge(body: dict[str, Any]) -> str:
    """The callable judge: an instant verdict, so the service is what gets measured."""
    return _REPLY


class _Status(msgspec.Struct):
    """The fields of a status poll the clients look at (the rest is skipped, not decoded)."""

    status: str
    completed_count: int


_status = msgspec.json.Decoder(_Status)


def _inputs(n: int, filler: int = 0) -> list[dict[str, str]]:
    text = "lorem ipsum " * (filler // 12)
    return [
        {"request": f"question {n}-{i}", "response": f"answer {i} {text}"} for i in range(INPUTS)
    ]


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A status poll, tried again if a kept-alive connection was closed under it.

    The first try is made outside tenacity: the clients share the machine with the server,
    and building a retry loop for every poll would cost them CPU the server then lacks.
    """
    try:
        return await client.get(url)
    except httpx.TransportError:
        pass
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await client.get(url)
    raise AssertionError("unreachable: tenacity re-raises the last error")


async def _client_loop(
    client: httpx.AsyncClient, n: int, rounds: int, filler: int, latencies: list[float]
) -> None:
    for r in range(rounds):
        started = time.perf_counter()
        body = {"inputs": _inputs(n * 1000 + r, filler)}
        response = await client.post("/v1/judges/relevance/batch-execute/", json=body)
        assert response.status_code == 202, response.text
        url = response.json()["status_url"]
        while True:
            await anyio.sleep(POLL)
            view = _status.decode((await _get(client, url)).content)
            if view.status in ("completed", "failed"):
                break
        assert view.completed_count == INPUTS, view.status
        latencies.append(time.perf_counter() - started)


async def _drive(
    url: str, rounds: int, clients: int = CLIENTS, filler: int = 0
) -> tuple[float, list[float]]:
    """``clients`` clients × ``rounds`` executions (inputs padded with ``filler``
    characters); (seconds, latencies)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients)
    headers = {"Authorization": f"Api-Key {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as c:
        started = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for n in range(clients):
                tasks.start_soon(_client_loop, c, n, rounds, filler, latencies)
        return time.perf_counter() - started, latencies


async def _in_process(config: Path, rounds: int) -> tuple[float, list[float]]:
    """The same executions through ``KyroJudge.run_many`` in this process: no HTTP, no store,
    no reply cache (the service keeps none either)."""
    from kyro import KyroJudge
    from kyro_local import LocalProvider

    provider = LocalProvider(handler=judge, concurrency=CONCURRENCY, state_dir=config.parent)
    live = KyroJudge(config, provider=provider, cache=False)
    latencies: list[float] = []

    async def one(n: int) -> None:
        for r in range(rounds):
            started = time.perf_counter()
            stream = live.run_many(_inputs(n * 1000 + r), concurrency=CONCURRENCY)
            async with contextlib.aclosing(stream) as evaluations:
                done = sum([e.status == "SUCCESS" async for e in evaluations])
            assert done == INPUTS, done
            latencies.append(time.perf_counter() - started)

    async with live:
        started = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for n in range(CLIENTS):
                tasks.start_soon(one, n)
        return time.perf_counter() - started, latencies


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(quick: bool) -> int:
    """Run both phases, print the rows; 1 when a target is missed."""
    rounds = 2 if quick else ROUNDS
    memory_clients = 8 if quick else MEMORY_CLIENTS
    targets = Targets("kyro serve: executions over HTTP against KyroJudge.run_many in-process")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        judges = root / "judges"
        judges.mkdir()
        (judges / "relevance.yml").write_text(CONFIG, encoding="utf-8")
        env = {
            **child_env(),
            "KYRO_SERVE_API_KEYS": KEY,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path]),
        }
        command = [sys.executable, "-m", "kyro", "serve", "--port", "0", "--judges", str(judges)]
        command += ["--data-dir", str(root / "data"), "--handler", "bench_serve:judge"]
        command += ["--concurrency", str(CONCURRENCY)]
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().decode().strip()
            assert url.startswith("http://127.0.0.1:"), "the server did not start"

            anyio.run(_drive, url, 1, memory_clients, FILLER)
            small = _peak_rss_mb(server.pid)
            anyio.run(_drive, url, 10, memory_clients, FILLER)
            large = _peak_rss_mb(server.pid)
            targets.note(
                f"memory: {memory_clients} executions of {INPUTS} inputs (~{FILLER // 1000} KB "
                f"each), then {10 * memory_clients} more, {memory_clients} clients at once"
            )
            targets.ratio(
                "server peak RSS, after 11x / after 1x",
                large,
                small,
                at_most=TARGET_RSS,
                unit="MiB",
            )

            cpu = time.process_time()
            base_s, base_lat = anyio.run(_in_process, judges / "relevance.yml", rounds)
            base_cpu = time.process_time() - cpu
            cpu, server_cpu = time.process_time(), _cpu_seconds(server.pid)
            serve_s, serve_lat = anyio.run(_drive, url, rounds)
            client_cpu = time.process_time() - cpu
            server_cpu = _cpu_seconds(server.pid) - server_cpu
        finally:
            server.terminate()
            server.wait(60)
    executions = CLIENTS * rounds
    targets.note(
        f"throughput: {executions} executions of {INPUTS} inputs, {CLIENTS} concurrent clients "
        f"(polling every {POLL} s) against {CLIENTS} concurrent run_many calls"
    )
    targets.ratio(
        "executions/s: kyro serve / in-process",
        executions / serve_s,
        executions / base_s,
        at_least=TARGET_THROUGHPUT,
        unit="/s",
    )
    targets.ratio(
        "p95 latency: kyro serve vs in-process",
        _p95(serve_lat),
        _p95(base_lat),
        unit="s",
        faster=True,
    )
    targets.note(
        f"CPU seconds: in-process {base_cpu:.1f}; server {server_cpu:.1f} "
        f"(+ {client_cpu:.1f} in the {CLIENTS} polling clients)"
    )
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main("--quick" in sys.argv[1:]))
