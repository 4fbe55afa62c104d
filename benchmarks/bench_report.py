"""The HTML report's memory and speed: flat in the size of the results file.

Results files of N and 10 × N transcripts (default 20,000 and 200,000; two judges, three runs
each) are rendered with ``kyro report``'s code path (one pass, a sampled table of 1,000 rows).
Printed: the peak of Python's traced allocations for each (target: the larger file ≤ 1.3 × the
smaller), and transcripts per second, both measured in this process.

Usage: ``python3 benchmarks/bench_report.py [--transcripts N] [--quick]`` (``--quick``: 2,000)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import msgspec
from _targets import Targets

from kyro._cost.prices import load_prices
from kyro._report.html import write_report


def _results(path: Path, count: int) -> None:
    encoder = msgspec.json.Encoder()
    usage = {"input_tokens": 420, "output_tokens": 60, "total_tokens": 480}
    with path.open("wb") as file:
        for i in range(count):
            status = "SUCCESS" if i % 5 else "ERROR"
            runs = [
                {
                    "run": r,
                    "status": status,
                    "root_cause": f"Run {r} of transcript {i}: the answer cites the policy.",
                    "score": (i % 10) / 10,
                    "usage": usage,
                }
                for r in range(3)
            ]
            verdict = {"status": status, "votes": {status: 3}, "runs": runs}
            line = {
                "index": i,
                "source": f"data.jsonl:{i + 1}",
                "status": status,
                "verdicts": {"tone": {"judge": "tone", **verdict}, "facts": verdict},
            }
            file.write(encoder.encode(line) + b"\n")


def _measure(folder: Path, count: int) -> tuple[int, float]:
    results = folder / f"results-{count}.jsonl"
    _results(results, count)
    prices = load_prices()
    out = folder / f"report-{count}.html"
    start = time.perf_counter()  # timed without tracing, which slows allocations down
    write_report(results, out, prices=prices, model="gpt-4o-mini")
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    write_report(results, out, prices=prices, model="gpt-4o-mini")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transcripts", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 transcripts")
    args = parser.parse_args()
    if args.quick:
        args.transcripts = 2_000
    small, large = args.transcripts, args.transcripts * 10
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        peak_small, time_small = _measure(folder, small)
        peak_large, time_large = _measure(folder, large)
    targets = Targets(f"HTML report: {small:,} and {large:,} transcripts")
    targets.note(f"{small:,} transcripts: {small / time_small:,.0f}/s")
    targets.note(f"{large:,} transcripts: {large / time_large:,.0f}/s")
    targets.ratio(
        f"traced peak {large:,} vs {small:,} transcripts",
        peak_large / 2**20,
        peak_small / 2**20,
        at_most=1.3,
        unit="MiB",
    )
    targets.finish()


if __name__ == "__main__":
    main()
