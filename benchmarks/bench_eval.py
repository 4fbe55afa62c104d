"""kyro.eval benchmark: per-item overhead against a bare loop, and memory against the item count.

Run: ``python3 benchmarks/bench_eval.py [--quick]`` (under a minute; ``--quick``: 5,000 items, RSS
at 5,000 and 50,000).

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
import sys
import time
from collections.abc import Iterator
from typing import Any

from _targets import Targets, child_peak_mib

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


def overhead(targets: Targets, count: int) -> None:
    """The per-item time of kyro.eval against the bare loop, best of ROUNDS each."""
    data = list(items(count))
    bare_times, kyro_times = [], []
    for _ in range(ROUNDS):
        bare_times.append(asyncio.run(bare(data)))
        kyro_times.append(asyncio.run(kyro(data)))
    best_bare, best_kyro = min(bare_times), min(kyro_times)
    targets.note(f"{count:,} items, concurrency {CONCURRENCY}, exact_match + contains")
    targets.ratio(
        "evaluate vs bare gather + semaphore",
        best_kyro * 1e6 / count,
        best_bare * 1e6 / count,
        at_least=0.9,
        unit="µs/item",
        faster=True,
    )


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


def memory(targets: Targets, sizes: tuple[int, int]) -> None:
    """Peak RSS of a fresh child per size, and their ratio."""
    peaks = [child_peak_mib(__file__, "--rss", str(n)) for n in sizes]
    small, large = sizes
    targets.ratio(
        f"evaluate peak RSS {large:,} vs {small:,} items",
        peaks[1],
        peaks[0],
        at_most=1.3,
        unit="MiB",
    )


def main(quick: bool) -> int:
    """Run both measurements; exit 1 when a target is missed."""
    targets = Targets("kyro.eval: per-item overhead and memory")
    overhead(targets, 5_000 if quick else ITEMS)
    memory(targets, (5_000, 50_000) if quick else RSS_SIZES)
    return targets.exit_code()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss"]:
        rss_child(int(sys.argv[2]))
    else:
        sys.exit(main("--quick" in sys.argv[1:]))
