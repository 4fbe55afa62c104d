"""kyro.eval benchmark: per-item overhead against a bare loop, and memory against the item count.

Run: ``python3 benchmarks/bench_eval.py`` (under a minute).

1. Overhead. 10,000 items through a trivial async component (one ``await asyncio.sleep(0)``,
   then ``upper()``) scored by two deterministic scorers (``exact_match``, ``contains``), at
   concurrency 10: ``kyro.eval.evaluate`` against a bare ``asyncio.gather`` + semaphore loop
   that makes the same calls (the same component, the same two scorer objects) and keeps
   every result in a list. Best of three rounds each, interleaved; the ratio printed is
   bare time ÷ kyro time (target ≥ 0.9×: kyro costs at most ~10 % more per item), with the
   per-item time of each. kyro also writes every result to its JSONL file, and times and
   tallies each item; the bare loop does none of that.
2. Memory. A child process runs ``evaluate`` over 10,000 items from a generator and reads
   every result back; a fresh child does the same with 100,000. The ratio of their peak RSS
   is printed (target ≤ 1.3×: results stream to disk, only offsets and durations stay).
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from kyro.eval import evaluate, scorer

ITEMS = 10_000
CONCURRENCY = 10
ROUNDS = 3
RSS_SIZES = (10_000, 100_000)


async def component(text: str) -> str:
    """The component under test: one suspension, then a trivial transformation."""
    await asyncio.sleep(0)
    return text.upper()


def items(n: int) -> Iterator[dict[str, Any]]:
    """``n`` items, every other one passing exact_match."""
    for i in range(n):
        text = f"item {i} says hello"
        yield {"input": text, "expected": text.upper() if i % 2 else text}


async def bare(data: list[dict[str, Any]]) -> float:
    """gather + semaphore: the same component and scorer calls, results kept in a list."""
    exact, contains = scorer("exact_match"), scorer("contains", value="HELLO")
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(item: dict[str, Any]) -> tuple[str, Any, Any]:
        async with semaphore:
            output = await component(item["input"])
            expected = item["expected"]
            return output, exact(output, expected, item), contains(output, expected, item)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(item) for item in data))
    elapsed = time.perf_counter() - started
    assert len(results) == len(data)
    return elapsed


async def kyro(data: list[dict[str, Any]]) -> float:
    """kyro.eval.evaluate over the same items and scorers."""
    scorers = ["exact_match", scorer("contains", value="HELLO")]
    started = time.perf_counter()
    result = await evaluate(component, data, scorers=scorers, max_concurrency=CONCURRENCY)
    elapsed = time.perf_counter() - started
    assert result.stats.total == len(data)
    assert result.pass_rate == 0.5
    return elapsed


def overhead() -> bool:
    """Print the per-item times and the ratio; True when the target is met."""
    data = list(items(ITEMS))
    bare_times, kyro_times = [], []
    for _ in range(ROUNDS):
        bare_times.append(asyncio.run(bare(data)))
        kyro_times.append(asyncio.run(kyro(data)))
    best_bare, best_kyro = min(bare_times), min(kyro_times)
    ratio = best_bare / best_kyro
    print(f"overhead: {ITEMS:,} items, concurrency {CONCURRENCY}, exact_match + contains")
    print(f"  bare gather + semaphore  {best_bare * 1e6 / ITEMS:7.1f} µs/item")
    print(f"  kyro.eval.evaluate       {best_kyro * 1e6 / ITEMS:7.1f} µs/item")
    print(f"  ratio (bare ÷ kyro)      {ratio:7.2f}×  (target ≥ 0.9×)")
    return ratio >= 0.9


def rss_child(n: int) -> None:
    """Evaluate ``n`` generated items, read every result back; print peak RSS in KiB."""

    async def main() -> int:
        result = await evaluate(
            component,
            items(n),
            scorers=["exact_match", scorer("contains", value="HELLO")],
            max_concurrency=CONCURRENCY,
        )
        return sum(1 for r in result.results if r.passed)

    passed = asyncio.run(main())
    assert passed == n // 2
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)


def memory() -> bool:
    """Print peak RSS per size and their ratio; True when the target is met."""
    peaks = []
    for n in RSS_SIZES:
        out = subprocess.run(
            [sys.executable, __file__, "--rss", str(n)], capture_output=True, text=True, check=True
        )
        peaks.append(int(out.stdout.split()[-1]))
    ratio = peaks[1] / peaks[0]
    small, large = RSS_SIZES
    print(
        f"memory: peak RSS {peaks[0] / 1024:.1f} MiB at {small:,} items, "
        f"{peaks[1] / 1024:.1f} MiB at {large:,}: ratio {ratio:.2f}× (target ≤ 1.3×)"
    )
    return ratio <= 1.3


def main() -> int:
    """Run both measurements; exit 1 when a target is missed."""
    started = time.perf_counter()
    ok = overhead()
    ok = memory() and ok
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss"]:
        rss_child(int(sys.argv[2]))
    else:
        sys.exit(main())
