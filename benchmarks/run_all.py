"""Run every ``bench_*.py`` in this folder, one process each; exit 1 if any target was missed.

Each benchmark prints its rows (``figure  measured  baseline  ratio  target  OK|MISS``, see
``_targets.py``) and exits 1 on a missed target; this runner passes ``--quick`` on (smaller
sizes: the whole set in under 3 minutes on 2 cores), prints how long each took, and lists the
benchmarks that missed. Without ``--quick`` every benchmark runs at its full size.

Usage::

    python3 benchmarks/run_all.py [--quick] [NAME ...]     # NAME: e.g. builder, startup
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 3 minutes)")
    parser.add_argument("names", nargs="*", help="only these benchmarks (bench_NAME.py)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        wanted = {
            f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in args.names
        }
        unknown = wanted - {script.name for script in scripts}
        if unknown:
            parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
        scripts = [script for script in scripts if script.name in wanted]
    outcomes: list[tuple[str, int, float]] = []
    started = time.perf_counter()
    for script in scripts:
        print(f"== {script.name}", flush=True)
        began = time.perf_counter()
        argv = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        code = subprocess.run(argv, cwd=HERE, check=False).returncode
        outcomes.append((script.name, code, time.perf_counter() - began))
        print(flush=True)
    print(f"== summary ({time.perf_counter() - started:.0f} s)")
    for name, code, seconds in outcomes:
        result = "OK" if code == 0 else ("MISS" if code == 1 else f"FAILED (exit {code})")
        print(f"  {name:<22} {seconds:6.1f} s  {result}")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
