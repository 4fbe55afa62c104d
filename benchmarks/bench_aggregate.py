"""Aggregation throughput and memory: result lines → parsed, voted, written results file.

Prints lines/s of the aggregator (spill, resolve, parse, vote, write) against a bare loop that
only ``msgspec``-decodes the same replies into dicts, and the peak RSS of a child process
aggregating 20,000 vs 200,000 requests (budget: ≥ 100,000 lines/s; RSS ratio ≤ 1.3).

Run::

    python3 benchmarks/bench_aggregate.py [--requests 200000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from _targets import Targets

from kyro._transcript_index import IndexEntry
from kyro._verdicts.aggregate import Aggregator
from kyro.provider import ResultError, ResultLine, Usage

JUDGES = ("relevance", "tone", "safety")
RUNS = 3
REPLIES = (
    '{"status": "SUCCESS", "root_cause": "The answer addresses every part of the question '
    'and cites the refund policy correctly.", "thinking": "Checked the policy section.", '
    '"score": 0.92}',
    '{"status": "ERROR", "root_cause": "The assistant promises a refund window the policy '
    'does not offer.", "thinking": "Compared against section 4.", "score": 0.1}',
    '```json\n{"status": "NA", "root_cause": "No refund question was asked."}\n```',
    '{"status": "SUCCESS", "root_cause": "Polite and on topic."}',
)
USAGE = Usage(input_tokens=812, output_tokens=64, total_tokens=876)
EXPIRED = ResultError(code="batch_expired", message="expired", retryable=True)


def synthesise(requests: int) -> Iterator[ResultLine]:
    """``requests`` result lines in a scrambled order, generated lazily (like a stream)."""
    per_transcript = len(JUDGES) * RUNS
    transcripts = requests // per_transcript
    total = transcripts * per_transcript
    step = 7919
    while math.gcd(step, total) != 1:
        step += 2
    for i in range(total):
        n = (i * step) % total
        t, rest = divmod(n, per_transcript)
        j, r = divmod(rest, RUNS)
        custom_id = f"t{t}-j{j}-r{r}"
        if n % 97 == 0:
            yield ResultLine(custom_id=custom_id, ok=False, error=EXPIRED)
        else:
            yield ResultLine(custom_id=custom_id, ok=True, content=REPLIES[n % 4], usage=USAGE)


def index(transcripts: int) -> Iterator[IndexEntry]:
    for t in range(transcripts):
        yield IndexEntry(index=t, source=f"inline:{t}", preview="user: where is my refund?")


def aggregate(lines: Iterator[ResultLine] | list[ResultLine], requests: int, work: Path) -> int:
    transcripts = requests // (len(JUDGES) * RUNS)
    with Aggregator(work, judges=JUDGES, runs=RUNS, transcripts=transcripts) as agg:
        for line in lines:
            agg.add(line)
        result = agg.finish(index(transcripts), work / "results.jsonl", job_id="bench")
    return result.counts.requests


def child(requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        aggregate(synthesise(requests), requests, Path(folder))
    print(_peak_kib())


def _peak_kib() -> int:
    """This process's peak RSS. Linux's ``VmHWM`` starts afresh at exec, while ``ru_maxrss``
    can carry the forking parent's peak over into the child."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_mib(requests: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(requests)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip()) / 1024


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """The best wall-clock and CPU seconds of ``repeat`` calls (CPU excludes waits on fsync
    and on other processes; wall includes them)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50,000 lines, best of 2")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.quick:
        args.requests, args.repeat = 50_000, 2
    # RSS sizes stay the same with --quick: the ratio depends on them (a smaller first size
    # weighs the interpreter's own memory less).
    sizes = (20_000, 200_000)
    small, large = peak_rss_mib(sizes[0]), peak_rss_mib(sizes[1])
    lines = list(synthesise(args.requests))
    replies = [line.content for line in lines if line.content is not None]
    decode = msgspec.json.Decoder().decode

    def baseline() -> None:
        for reply in replies:
            with contextlib.suppress(msgspec.DecodeError):
                decode(reply)

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        agg_wall, agg_cpu = best_of(args.repeat, lambda: aggregate(lines, args.requests, work))
    _, base_cpu = best_of(args.repeat, baseline)
    n, m = len(lines), len(replies)
    targets = Targets(
        f"aggregation: {n:,} result lines ({len(JUDGES)} judges x {RUNS} runs, 1% expired)"
    )
    targets.note(f"aggregate wall clock (fsync included): {n / agg_wall:,.0f} lines/s")
    targets.limit("aggregate, CPU time", n / agg_cpu, at_least=100_000, unit="lines/s")
    targets.ratio(
        "aggregate vs bare msgspec decode (per line)", n / agg_cpu, m / base_cpu, unit="lines/s"
    )
    targets.ratio(
        f"peak RSS {sizes[1]:,} vs {sizes[0]:,} requests", large, small, at_most=1.3, unit="MiB"
    )
    targets.finish()


if __name__ == "__main__":
    main()
