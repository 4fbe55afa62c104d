"""check() throughput and memory against the emulator: download, parse, vote, write.

The emulator runs as its own process (``python -m kyro emulator --data-dir ...``) so its memory
and its serving are not counted. For each size a child process submits the job and exits; the
driver then reads every batch once, so the emulator finishes it and writes its result files;
then a fresh child runs a single ``check()`` and reports:

* result lines/s of the whole check (download + parse + vote + write), and of its aggregation
  phase alone (the passes over the downloaded lines: parse, spill, resolve, vote, write the
  results file) — the budget (≥ 100,000 lines/s) is for the aggregation phase, as the
  download's speed is mostly the emulator's HTTP serving; the reply cache's store of the same
  replies, which check does next, is timed apart and printed beside it (as ``bench_scale``
  does);
* the child's peak RSS (``VmHWM``) — budget: 200,000 requests ≤ 1.3× 20,000 requests.

Then a pipeline row: a 3-stage job (``first`` → ``second`` → ``third``, each depending on the
one before) of ``--pipeline`` transcripts, checked by fresh children until done (the emulator
finishes a batch on its first read, so one check may carry the job through every stage: each
stage collected, the next planned, written and submitted in the same process), against a
1-stage job of the same transcripts — budget: the highest peak RSS of the 3-stage job's
checks ≤ 1.3× the 1-stage job's check (later stages stream the kept transcripts and the
outcomes so far; nothing grows with the stage count).

Run::

    python3 benchmarks/bench_check.py [--small 20000] [--large 200000] [--pipeline 100000]
    python3 benchmarks/bench_check.py --quick    # 5,000 / 50,000 requests, 5,000 transcripts
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from _targets import Targets

JUDGES = ("relevance", "tone")
AUTH = {"Authorization": "Bearer sk-bench"}
CONFIG = "version: 1\nmodel: gpt-4o-mini\njudges:\n" + "".join(
    f"  - name: {name}\n"
    f"    prompt: 'Judge the {name} of this exchange. Reply in JSON. {{{{input}}}}'\n"
    "    output_format: json\n"
    for name in JUDGES
)


PIPELINE = "version: 1\nmodel: gpt-4o-mini\nsteps:\n" + "".join(
    f"  - name: {name}\n"
    f"    prompt: 'Judge the {name} pass of this exchange. Reply in JSON. {{{{input}}}}'\n"
    "    output_format: json\n" + (f"    depends_on: {after}\n" if after else "")
    for name, after in (("first", None), ("second", "first"), ("third", "second"))
)
ONE_STAGE = "version: 1\nmodel: gpt-4o-mini\njudges:\n" + (
    "  - name: first\n"
    "    prompt: 'Judge the first pass of this exchange. Reply in JSON. {{input}}'\n"
    "    output_format: json\n"
)


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _judge(url: str, config: str, state_dir: str) -> Any:
    from kyro import BatchJudge
    from kyro_openai import OpenAIBatchProvider

    provider = OpenAIBatchProvider(base_url=url, api_key="sk-bench")
    return BatchJudge(provider, config, state_dir=state_dir)


async def _child_submit(url: str, config: str, state_dir: str, count: int) -> dict[str, Any]:
    transcripts = (f"customer asks about invoice {i}; the assistant answers" for i in range(count))
    job_id = await _judge(url, config, state_dir).submit(transcripts)
    return {"job_id": job_id, "peak_rss_kb": _peak_rss_kb()}


async def _child_step(url: str, config: str, state_dir: str) -> dict[str, Any]:
    """One check() of a job that may have stages left: done or not, and the peak RSS."""
    start = time.perf_counter()
    result = await _judge(url, config, state_dir).check()
    return {
        "done": result is not None,
        "seconds": time.perf_counter() - start,
        "peak_rss_kb": _peak_rss_kb(),
    }


async def _child_check(url: str, config: str, state_dir: str) -> dict[str, Any]:
    import kyro._job.collect
    import kyro._job.runner
    from kyro._job.collect import aggregate, download_results, store_downloaded

    phases = {"download": 0.0, "aggregate": 0.0, "store": 0.0}
    lines = {"n": 0}

    async def timed_download(*args: Any, **kwargs: Any) -> int:
        start = time.perf_counter()
        count = await download_results(*args, **kwargs)
        phases["download"] += time.perf_counter() - start
        lines["n"] += count
        return count

    def timed_store(*args: Any, **kwargs: Any) -> int:
        start = time.perf_counter()
        stored = store_downloaded(*args, **kwargs)
        phases["store"] += time.perf_counter() - start
        return stored

    def timed_aggregate(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        collected = aggregate(*args, **kwargs)
        phases["aggregate"] += time.perf_counter() - start
        return collected

    # Instrumentation only: time the phases of check() without changing them.
    kyro._job.runner.download_results = timed_download  # type: ignore[attr-defined]
    kyro._job.collect.aggregate = timed_aggregate
    kyro._job.collect.store_downloaded = timed_store
    judge = _judge(url, config, state_dir)
    start = time.perf_counter()
    result = await judge.check()
    seconds = time.perf_counter() - start
    assert result is not None, "the job was still pending"
    assert result.counts.errored == 0, result.counts
    return {
        "lines": lines["n"],
        "transcripts": result.counts.transcripts,
        "seconds": seconds,
        "download_seconds": phases["download"],
        "aggregate_seconds": phases["aggregate"] - phases["store"],
        "store_seconds": phases["store"],
        "peak_rss_kb": _peak_rss_kb(),
    }


def _run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _finish_batches(url: str, job_id: str) -> None:
    """Read every batch of the job until it is completed (the emulator writes results then)."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=600) as client:
        pending = True
        while pending:
            page = client.get("/batches", params={"limit": 100}).json()
            mine = [b for b in page["data"] if b["metadata"].get("kyro_job") == job_id]
            pending = False
            for batch in mine:
                status = client.get(f"/batches/{batch['id']}").json()["status"]
                if status != "completed":
                    if status in ("failed", "expired", "cancelled"):
                        raise RuntimeError(f"batch {batch['id']} ended {status}")
                    pending = True


def measure(url: str, folder: Path, requests: int) -> dict[str, Any]:
    """Submit ``requests`` in one child, finish the batches, check in a fresh child."""
    work = folder / f"n{requests}"
    work.mkdir()
    config = work / "judges.yml"
    config.write_text(CONFIG)
    state = str(work / "state")
    count = requests // len(JUDGES)
    job_id = _run_child("submit", url, str(config), state, str(count))["job_id"]
    _finish_batches(url, job_id)
    return _run_child("check", url, str(config), state)


def measure_stages(url: str, folder: Path, name: str, config_text: str, n: int) -> dict[str, Any]:
    """Submit ``n`` transcripts, then finish the batches and check until done; every check
    is a fresh child. Returns the checks' count and highest peak RSS, and the submit's."""
    work = folder / name
    work.mkdir()
    config = work / "judges.yml"
    config.write_text(config_text)
    state = str(work / "state")
    submitted = _run_child("submit", url, str(config), state, str(n))
    checks: list[dict[str, Any]] = []
    while not checks or not checks[-1]["done"]:
        _finish_batches(url, submitted["job_id"])
        checks.append(_run_child("step", url, str(config), state))
        if len(checks) > 10:
            raise RuntimeError(f"{name}: not done after 10 checks")
    return {
        "checks": len(checks),
        "seconds": sum(c["seconds"] for c in checks),
        "peak_rss_kb": max(c["peak_rss_kb"] for c in checks),
        "submit_peak_rss_kb": submitted.get("peak_rss_kb", 0),
    }


def _report(targets: Targets, requests: int, m: dict[str, Any]) -> None:
    targets.note(
        f"{requests:>8,} requests: check {m['seconds']:6.2f} s "
        f"({m['lines'] / m['seconds']:>9,.0f} lines/s end to end; download "
        f"{m['download_seconds']:5.2f} s, aggregation {m['aggregate_seconds']:5.2f} s = "
        f"{m['lines'] / m['aggregate_seconds']:>9,.0f} lines/s; reply cache store "
        f"{m['store_seconds']:5.2f} s), peak RSS "
        f"{m['peak_rss_kb'] / 1024:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--pipeline", type=int, default=100_000, help="transcripts (0: skip)")
    parser.add_argument("--quick", action="store_true", help="5,000 / 50,000; pipeline 5,000")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.pipeline = 5_000, 50_000, 5_000
    with tempfile.TemporaryDirectory(prefix="kyro-bench-check-") as tmp:
        folder = Path(tmp)
        (folder / "emulator").mkdir()
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kyro",
                "emulator",
                "--port",
                "0",
                "--data-dir",
                str(folder / "emulator"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().strip()
            small = measure(url, folder, args.small)
            large = measure(url, folder, args.large)
            staged = plain = None
            if args.pipeline:
                plain = measure_stages(url, folder, "one-stage", ONE_STAGE, args.pipeline)
                staged = measure_stages(url, folder, "three-stage", PIPELINE, args.pipeline)
        finally:
            os.kill(emulator.pid, signal.SIGTERM)
            emulator.wait(30)
    targets = Targets(f"check: {args.small:,} and {args.large:,} requests on the emulator")
    _report(targets, args.small, small)
    _report(targets, args.large, large)
    rate = large["lines"] / large["aggregate_seconds"]
    targets.limit(f"aggregation at {args.large:,}", rate, at_least=100_000, unit="lines/s")
    targets.ratio(
        f"check peak RSS {args.large:,} vs {args.small:,}",
        large["peak_rss_kb"] / 1024,
        small["peak_rss_kb"] / 1024,
        at_most=1.3,
        unit="MiB",
    )
    if staged is not None and plain is not None:
        for label, m in (("1-stage", plain), ("3-stage", staged)):
            targets.note(
                f"{label} job of {args.pipeline:,} transcripts: {m['checks']} checks, "
                f"{m['seconds']:6.2f} s, check peak RSS {m['peak_rss_kb'] / 1024:6.1f} MiB, "
                f"submit peak RSS {m['submit_peak_rss_kb'] / 1024:6.1f} MiB"
            )
        targets.ratio(
            "check peak RSS 3-stage vs 1-stage job",
            staged["peak_rss_kb"] / 1024,
            plain["peak_rss_kb"] / 1024,
            at_most=1.3,
            unit="MiB",
        )
    targets.finish()


def _child(argv: list[str]) -> None:
    command, url, config, state_dir, *rest = argv
    if command == "submit":
        run = functools.partial(_child_submit, url, config, state_dir, int(rest[0]))
    elif command == "step":
        run = functools.partial(_child_step, url, config, state_dir)
    else:
        run = functools.partial(_child_check, url, config, state_dir)
    print(json.dumps(anyio.run(run)), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main()
