"""A million requests, flat: ``submit`` + ``check`` as whole processes at two sizes.

The emulator runs as its own process (``python3 -m kyro emulator``, on 127.0.0.1). For each
size, a transcripts file of ``requests / 2`` transcripts (two judges) is submitted with
``python3 -m kyro submit`` (OpenAI's 50,000 requests per batch: 1,000,000 requests are 20
shards); every batch is then read once, so the emulator finishes it and writes its results;
then ``python3 -m kyro check -v`` collects the job. Each command is timed as a process and
its peak RSS read from the kernel (``wait4``). Budgets, large against small in the same run:

* peak RSS of ``submit`` and of ``check``: ≤ 1.3× (nothing grows with the job);
* wall time of ``submit`` and of ``check``: ≤ 12× for 10× the requests;
* aggregation inside the large check (the lines check reports it voted and wrote, over the
  seconds it reports for that): ≥ 100,000 lines/s. The reply cache's store of the same
  replies, which check does next, is printed beside it.

Run::

    python3 benchmarks/bench_scale.py                 # 100,000 vs 1,000,000 requests
    python3 benchmarks/bench_scale.py --quick         # 5,000 vs 50,000
    python3 benchmarks/bench_scale.py --small 50000 --large 500000
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
from _targets import Targets

JUDGES = ("relevance", "tone")
CONFIG = "version: 1\nmodel: gpt-4o-mini\njudges:\n" + "".join(
    f"  - name: {name}\n"
    f"    prompt: 'Judge the {name} of this exchange. Reply in JSON. {{{{input}}}}'\n"
    "    output_format: json\n"
    for name in JUDGES
)
AUTH = {"Authorization": "Bearer sk-bench"}
AGGREGATED = re.compile(
    r"aggregated ([\d,]+) result lines .* in ([\d.]+) s \(.*?(?:; ([\d.]+) s of CPU)?\)"
)
STORED = re.compile(r"reply cache: stored ([\d,]+) replies .* in ([\d.]+) s")


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """One command as a process: its wall time, its peak RSS and what it wrote to stderr."""

    seconds: float
    peak_mib: float
    stderr: str


def run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> Run:
    """Run ``argv`` to its end; its wall time and peak RSS (``wait4``), or raise on failure."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    stderr = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:4])} exited {child.returncode}:\n{stderr}")
    return Run(seconds=seconds, peak_mib=usage.ru_maxrss / 1024, stderr=stderr)


def finish_batches(url: str) -> None:
    """Read every batch until each is completed (the emulator finishes a batch when read)."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=600) as client:
        pending = True
        while pending:
            pending = False
            after: str | None = None
            while True:
                params: dict[str, str | int] = {"limit": 100}
                if after:
                    params["after"] = after
                page = client.get("/batches", params=params).json()
                for batch in page["data"]:
                    status = batch["status"]
                    if status != "completed":
                        status = client.get(f"/batches/{batch['id']}").json()["status"]
                    if status in ("failed", "expired", "cancelled"):
                        raise RuntimeError(f"batch {batch['id']} ended {status}")
                    pending = pending or status != "completed"
                if not page.get("has_more"):
                    break
                after = page["data"][-1]["id"]


class Size(msgspec.Struct, frozen=True, kw_only=True):
    """What one size measured."""

    requests: int
    submit: Run
    check: Run
    aggregated: int
    aggregate_seconds: float
    aggregate_cpu: float
    stored: int
    store_seconds: float


def measure(url: str, folder: Path, requests: int) -> Size:
    """Submit ``requests`` (two judges) with the CLI, finish the batches, check."""
    work = folder / f"n{requests}"
    work.mkdir()
    (work / "judges.yml").write_text(CONFIG)
    with (work / "transcripts.jsonl").open("w") as out:
        for i in range(requests // len(JUDGES)):
            out.write(
                f'{{"input": "customer asks about invoice {i}: where is my refund? the '
                f'assistant answers that refunds take five working days"}}\n'
            )
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    common = ["judges.yml", "--base-url", url, "--state-dir", "state"]
    kyro = [sys.executable, "-m", "kyro"]
    submit = run([*kyro, "submit", *common, "transcripts.jsonl", "-q"], cwd=work, env=env)
    finish_batches(url)
    check = run([*kyro, "check", *common, "-v"], cwd=work, env=env)
    aggregated = AGGREGATED.search(check.stderr)
    stored = STORED.search(check.stderr)
    if aggregated is None:
        raise RuntimeError(f"check did not report its aggregation:\n{check.stderr}")
    return Size(
        requests=requests,
        submit=submit,
        check=check,
        aggregated=int(aggregated[1].replace(",", "")),
        aggregate_seconds=float(aggregated[2]),
        aggregate_cpu=float(aggregated[3] or 0.0),
        stored=int(stored[1].replace(",", "")) if stored else 0,
        store_seconds=float(stored[2]) if stored else 0.0,
    )


def report(targets: Targets, size: Size) -> None:
    """One line of context per size."""
    rate = size.aggregated / size.aggregate_seconds
    store = size.stored / size.store_seconds if size.store_seconds else 0.0
    targets.note(
        f"{size.requests:>9,} requests: submit {size.submit.seconds:6.1f} s "
        f"{size.submit.peak_mib:5.1f} MiB; check {size.check.seconds:6.1f} s "
        f"{size.check.peak_mib:5.1f} MiB (aggregation {size.aggregate_seconds:5.2f} s = "
        f"{rate:,.0f} lines/s, {size.aggregate_cpu:4.2f} s of CPU; reply cache store "
        f"{size.store_seconds:5.2f} s = "
        f"{store:,.0f} replies/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000, help="requests (default 100,000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="requests (default 1M)")
    parser.add_argument("--quick", action="store_true", help="5,000 vs 50,000 requests")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large = 5_000, 50_000
    with tempfile.TemporaryDirectory(prefix="kyro-bench-scale-") as tmp:
        folder = Path(tmp)
        emu = folder / "emulator"
        emu.mkdir()
        emulator = subprocess.Popen(
            [sys.executable, "-m", "kyro", "emulator", "--port", "0", "--data-dir", str(emu)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().strip()
            small = measure(url, folder, args.small)
            large = measure(url, folder, args.large)
        finally:
            os.kill(emulator.pid, signal.SIGTERM)
            emulator.wait(30)
    times = args.large / args.small
    targets = Targets(f"scale: {args.small:,} vs {args.large:,} requests, submit + check")
    report(targets, small)
    report(targets, large)
    for command in ("submit", "check"):
        big, little = getattr(large, command), getattr(small, command)
        targets.ratio(
            f"{command} peak RSS {times:g}x requests",
            big.peak_mib,
            little.peak_mib,
            at_most=1.3,
            unit="MiB",
        )
        targets.ratio(
            f"{command} wall time {times:g}x requests",
            big.seconds,
            little.seconds,
            at_most=1.2 * times,
            unit="s",
        )
    targets.limit(
        f"aggregation inside check at {args.large:,}",
        large.aggregated / large.aggregate_seconds,
        at_least=100_000,
        unit="lines/s",
    )
    targets.finish()


if __name__ == "__main__":
    main()
