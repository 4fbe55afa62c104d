"""LocalProvider benchmark: throughput against a slow loopback endpoint, and memory vs size.

Run: ``python3 benchmarks/bench_local.py [--quick]`` (about two minutes on a quiet 2-core
machine; ``--quick``: 10 rounds at concurrency 128, RSS at 2,000 and 20,000, no row for
information).

1. Throughput. A bare asyncio HTTP/1.1 keep-alive endpoint in its own process (so it never
   shares the GIL with the client, and leaves the machine's CPU to it) answers every chat
   completion after 100 ms. At concurrency 32 and 128, each live path's achieved requests/s
   is printed against the ideal, concurrency ÷ latency (targets ≥ 0.95× at 32, ≥ 0.75× at
   128), and against a plain httpx loop with the same concurrency over the same endpoint,
   measured in the same run (tasks sharing clients of 8 connections each, which is already
   faster than one client with a big pool; target ≥ 1.0×). The paths: ``LocalProvider.submit``
   of a ready shard; ``BatchJudge`` submit → check (plan, shard, run, collect, vote);
   ``KyroJudge.run_many`` (one judge, one run per transcript, reply cache on); and
   ``kyro.eval.evaluate`` with an ``LLMJudge`` (components first, then the judge batch). A
   row for information shows plain httpx laid out as LocalProvider lays it out (one
   single-connection client per request in flight): what raw httpx allows here. The CPU share
   of the client and of the endpoint during the LocalProvider run is printed too: a client
   near 100 % means the machine, not the window, is the limit.
2. Memory. A child process runs LocalProvider (an async handler, concurrency 256) over
   10,000 and then, in a fresh child, 100,000 requests, reading every result back; the ratio
   of their peak RSS is printed (target ≤ 1.3×).
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _targets import Targets, child_peak_mib

LATENCY = 0.1
CONCURRENCY_LEVELS = (32, 128)
ROUNDS = 20  # requests per level = concurrency × ROUNDS
# --quick keeps 20 rounds at 32: in a run of 10 rounds (one second of ideal time) opening the
# 32 connections and the first requests' start-up weigh so much that a client on raw asyncio
# sockets, with no HTTP library at all, measured 0.94× of ideal (0.97× over 40 rounds).
QUICK_ROUNDS = {32: 20, 128: 10}
POOL = 8  # connections per httpx client in the bare loop
RSS_SIZES = (10_000, 100_000)
IDEAL_SHARE = {32: 0.95, 128: 0.75}  # of concurrency ÷ latency, on 2 cores


_REPLY = (
    b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"{\\"status\\": \\"SUCCESS\\"}"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}'
)
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
_RESPONSE = _HEAD % len(_REPLY) + _REPLY


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One keep-alive connection: read a request head and body, wait LATENCY, reply."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for field in head.split(b"\r\n")[1:]:
                name, _, value = field.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(LATENCY)
            writer.write(_RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve() -> None:
    """The endpoint process: print the port, then answer each request after LATENCY.

    A bare asyncio HTTP/1.1 keep-alive responder, not a web framework: it is the loopback
    stand-in for a model server, not what is measured, and it must leave the two cores' CPU
    to the client (a starlette + uvicorn endpoint alone used a large share of it).
    """

    async def main() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def write_shard(path: Path, n: int) -> None:
    """A shard of ``n`` requests, written in chunks (flat memory)."""
    from kyro.provider import JudgeRequest, Message
    from kyro_openai import encode_request

    text = "The agent answered the customer's question about refunds politely. " * 4
    with path.open("wb") as fh:
        buf = bytearray()
        for i in range(n):
            messages = (Message(role="user", content=f"{text} #{i}"),)
            encode_request(JudgeRequest(custom_id=f"t{i}-j0-r0", model="m", messages=messages), buf)
            if len(buf) > 1 << 20:
                fh.write(buf)
                buf.clear()
        fh.write(buf)


async def bare_httpx(base_url: str, concurrency: int, total: int, pool: int = POOL) -> float:
    """Requests/s of N tasks posting the same body in a loop with plain httpx.

    Task ``i`` uses client ``i // pool``: one ``AsyncClient`` per ``pool`` connections (one
    client with 128 connections manages under 0.1× here, its pool scanning every connection
    on every request).
    """
    import anyio
    import httpx

    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    remaining = total
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(0, concurrency, pool)]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await client.post(
                f"{base_url}/chat/completions",
                content=body,
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()

    try:
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(concurrency):
                tg.start_soon(worker, clients[i // pool])
        return total / (time.perf_counter() - start)
    finally:
        for client in clients:
            await client.aclose()


async def local_provider(base_url: str, concurrency: int, shard: Path, state: Path) -> float:
    """Requests/s of LocalProvider running ``shard`` against ``base_url``."""
    from kyro_local import LocalProvider

    provider = LocalProvider(base_url, concurrency=concurrency, timeout=60, state_dir=state)
    total = sum(1 for _ in shard.open("rb"))
    try:
        start = time.perf_counter()
        batch_id = await provider.submit(shard, metadata={"bench": "local"})
        elapsed = time.perf_counter() - start
        ok = 0
        async for line in provider.results(batch_id):
            ok += line.ok
    finally:
        await provider.aclose()
    assert ok == total, f"only {ok} of {total} requests succeeded"
    return total / elapsed


_CONFIG = """version: 1
model: m
judges:
  - name: polite
    prompt: |
      Was this reply polite? {{input}}
      Reply with JSON only: {"status": "SUCCESS" | "ERROR"}
    output_format: json
"""


def _job_folder(folder: Path) -> Path:
    """A fresh folder holding the one-judge config (``judges.yml``) the judged paths use."""
    folder.mkdir()
    (folder / "judges.yml").write_text(_CONFIG, encoding="utf-8")
    return folder


def _texts(n: int) -> list[str]:
    return [
        f"The agent answered the customer's question about refunds politely. #{i}" for i in range(n)
    ]


async def batch_judge(base_url: str, concurrency: int, total: int, folder: Path) -> float:
    """Requests/s of BatchJudge + LocalProvider, submit → check, ``total`` transcripts."""
    from kyro import BatchJudge
    from kyro_local import LocalProvider

    config = folder / "judges.yml"
    provider = LocalProvider(
        base_url, concurrency=concurrency, timeout=60, state_dir=folder / "local"
    )
    async with BatchJudge(provider, config, state_dir=folder / "state") as judge:
        start = time.perf_counter()
        await judge.submit(_texts(total))
        result = await judge.check()
        elapsed = time.perf_counter() - start
    assert result is not None
    assert result.counts.transcripts == total, result
    return total / elapsed


async def run_many(base_url: str, concurrency: int, total: int, folder: Path) -> float:
    """Requests/s of KyroJudge.run_many over LocalProvider, ``total`` transcripts."""
    import contextlib

    from kyro import KyroJudge
    from kyro_local import LocalProvider

    config = folder / "judges.yml"
    provider = LocalProvider(
        base_url, concurrency=concurrency, timeout=60, state_dir=folder / "local"
    )
    ok = 0
    async with KyroJudge(config, provider=provider) as judge:
        start = time.perf_counter()
        stream = judge.run_many(_texts(total), concurrency=concurrency)
        async with contextlib.aclosing(stream) as evaluations:
            async for evaluation in evaluations:
                ok += evaluation.status == "SUCCESS"
        elapsed = time.perf_counter() - start
    assert ok == total, f"only {ok} of {total} transcripts passed"
    return total / elapsed


async def eval_judged(base_url: str, concurrency: int, total: int, folder: Path) -> float:
    """Requests/s of kyro.eval.evaluate with one LLMJudge through LocalProvider."""
    from kyro.eval import LLMJudge, evaluate
    from kyro_local import LocalProvider

    async def component(text: str) -> str:
        return text

    provider = LocalProvider(base_url, concurrency=concurrency, timeout=60, state_dir=folder)
    try:
        start = time.perf_counter()
        result = await evaluate(
            component,
            _texts(total),
            scorers=[LLMJudge("Was the reply polite?", model="m")],
            judge_provider=provider,
            max_concurrency=concurrency,
        )
        elapsed = time.perf_counter() - start
    finally:
        await provider.aclose()
    assert result.pass_rate == 1.0, result
    return total / elapsed


def rss_child(n: int) -> None:
    """Run LocalProvider over ``n`` requests with an async handler; print peak RSS in KiB."""
    import anyio

    from kyro_local import LocalProvider

    async def handler(body: dict[str, Any]) -> str:
        await anyio.lowlevel.checkpoint()
        return '{"status": "SUCCESS", "root_cause": "fine"}'

    async def main(workdir: Path) -> int:
        shard = workdir / "shard.jsonl"
        await anyio.to_thread.run_sync(write_shard, shard, n)
        provider = LocalProvider(handler=handler, concurrency=256, state_dir=workdir / "state")
        batch_id = await provider.submit(shard, metadata={})
        ok = 0
        async for line in provider.results(batch_id):
            ok += line.ok
        return ok

    with tempfile.TemporaryDirectory() as tmp:
        ok = anyio.run(main, Path(tmp))
    assert ok == n, f"only {ok} of {n} requests succeeded"
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(targets: Targets, rounds: dict[int, int], *, layout_row: bool = True) -> None:
    """Part 1: each live path against the ideal and against the bare httpx loop, per level.

    ``layout_row``: also time the row for information (plain httpx laid out as LocalProvider
    lays it out); ``--quick`` leaves it out.
    """
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        targets.note(f"endpoint answering after {LATENCY * 1000:.0f} ms (own process)")
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in CONCURRENCY_LEVELS:
                total = concurrency * rounds[concurrency]
                work = Path(tmp) / f"c{concurrency}"
                work.mkdir()
                shard = work / "shard.jsonl"
                write_shard(shard, total)
                ideal = concurrency / LATENCY
                bare = asyncio.run(bare_httpx(base_url, concurrency, total))
                cpu, wall = time.process_time(), time.perf_counter()
                endpoint_cpu = _cpu_seconds(server.pid)
                got = asyncio.run(local_provider(base_url, concurrency, shard, work / "s"))
                wall = time.perf_counter() - wall
                busy = (time.process_time() - cpu) / wall
                endpoint = (_cpu_seconds(server.pid) - endpoint_cpu) / wall
                targets.note(
                    f"concurrency {concurrency} ({total} requests): client CPU {busy:.0%}, "
                    f"endpoint CPU {endpoint:.0%} during the LocalProvider run"
                )
                paths = {
                    "LocalProvider": got,
                    "BatchJudge submit→check": asyncio.run(
                        batch_judge(base_url, concurrency, total, _job_folder(work / "batch"))
                    ),
                    "KyroJudge.run_many": asyncio.run(
                        run_many(base_url, concurrency, total, _job_folder(work / "live"))
                    ),
                    "kyro.eval": asyncio.run(
                        eval_judged(base_url, concurrency, total, work / "eval")
                    ),
                }
                for name, rate in paths.items():
                    targets.ratio(
                        f"{name} at {concurrency} vs ideal",
                        rate,
                        ideal,
                        at_least=IDEAL_SHARE.get(concurrency, 0.75),
                        unit="req/s",
                    )
                    targets.ratio(
                        f"{name} at {concurrency} vs bare httpx",
                        rate,
                        bare,
                        at_least=1.0,
                        unit="req/s",
                    )
                if not layout_row:
                    continue
                single = asyncio.run(bare_httpx(base_url, concurrency, total, pool=1))
                targets.ratio(
                    f"(bare httpx, 1 conn/client, at {concurrency} vs ideal)",
                    single,
                    ideal,
                    unit="req/s",
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


def memory(targets: Targets, sizes: tuple[int, int]) -> None:
    """Part 2: peak RSS of a fresh child per size."""
    peaks = [child_peak_mib(__file__, "--rss", str(n)) for n in sizes]
    targets.ratio(
        f"peak RSS {sizes[1]:,} vs {sizes[0]:,} requests",
        peaks[1],
        peaks[0],
        at_most=1.3,
        unit="MiB",
    )


def main(quick: bool) -> int:
    """Run both parts; exit status 1 if a target was missed."""
    targets = Targets("LocalProvider: live requests through a batch-shaped job")
    rounds = QUICK_ROUNDS if quick else dict.fromkeys(CONCURRENCY_LEVELS, ROUNDS)
    throughput(targets, rounds, layout_row=not quick)
    memory(targets, (2_000, 20_000) if quick else RSS_SIZES)
    return targets.exit_code()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--rss"]:
        rss_child(int(sys.argv[2]))
    else:
        sys.exit(main("--quick" in sys.argv[1:]))
