"""Startup: ``python3 -m kyro --help`` against the interpreter starting with nothing to do.

Each contender is a fresh process, best of ``--repeat`` (interleaved). Target: ``--help``
under 150 ms of CPU time (user + system, what the process itself spends; on a shared machine
its wall clock also holds the waits for other processes and the disk, printed beside it). The
interpreter's own start (``python3 -c pass``) is printed as the baseline.
``import kyro`` is timed too: it loads kyro's names on first use, so it costs about as little.

Usage: ``python3 benchmarks/bench_startup.py [--repeat K] [--quick]``
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

from _targets import Targets

CONTENDERS = {
    "python3 -c pass": ["-c", "pass"],
    "python3 -m kyro --help": ["-m", "kyro", "--help"],
    "python3 -c 'import kyro'": ["-c", "import kyro"],
}


def best_ms(repeat: int) -> dict[str, tuple[float, float]]:
    """The best wall-clock and the best CPU time of each contender, in milliseconds."""
    best = dict.fromkeys(CONTENDERS, (float("inf"), float("inf")))
    for _ in range(repeat):
        for label, argv in CONTENDERS.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, check=True)
            wall = (time.perf_counter() - started) * 1000
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
            best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="best of 10")
    args = parser.parse_args()
    best = best_ms(10 if args.quick else args.repeat)
    help_wall, help_cpu = best["python3 -m kyro --help"]
    base_wall, base_cpu = best["python3 -c pass"]
    targets = Targets("startup: fresh processes")
    targets.limit("python3 -m kyro --help, CPU time", help_cpu, at_most=150, unit="ms")
    targets.ratio("--help vs bare interpreter, CPU time", help_cpu, base_cpu, unit="ms")
    targets.ratio("--help vs bare interpreter, wall clock", help_wall, base_wall, unit="ms")
    _, import_cpu = best["python3 -c 'import kyro'"]
    targets.ratio("import kyro vs bare interpreter, CPU time", import_cpu, base_cpu, unit="ms")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
