"""kyro's reliability report: run the crash, fault and concurrency matrix, print a table.

Usage::

    python3 benchmarks/reliability.py [--repeat N]

Every scenario runs a real job against the emulator over HTTP on 127.0.0.1 (the scenarios
live in the test-support package ``tests/support/`` — ``scenarios.py``, ``stage_scenarios.py``
and ``hostile.py`` — shared with ``tests/reliability``). Deterministic scenarios (each
kill -9 cut point — of submit, of check, and of a pipeline's move from one stage to the
next — each classified provider failure, each hostile judge reply, each kind of bad input)
run once; the random
ones (30 % faulty API calls, concurrent pollers) run ``N`` times with different seeds.
The table counts, per scenario, the runs, how many recovered (the job completed or ended as
classified; for bad input, kyro refused it with exit 2 and a clear message, no traceback and
no state), the duplicate batches (beyond one per shard attempt; any batch at all for bad
input) and the lost run verdicts (requests missing from the results file, or left without a
verdict when they were retryable; for a hostile reply, an errored run without its text).
The exit status is 1 if any run lost a verdict, duplicated a batch or did not recover.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
_VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
try:
    import kyro  # noqa: F401  # only to see whether this interpreter has kyro
except ImportError:  # a bare `python3` outside the venv: rerun with the project's venv
    if _VENV_PYTHON.exists() and Path(sys.prefix).resolve() != _VENV_PYTHON.parents[1].resolve():
        os.execv(str(_VENV_PYTHON), [str(_VENV_PYTHON), __file__, *sys.argv[1:]])
    raise

from tests.support.hostile import (  # noqa: E402  # after the interpreter check above
    BAD_INPUTS,
    HOSTILE_REPLIES,
    bad_input_scenario,
    hostile_reply_scenario,
)
from tests.support.kyro_child import CUTS, STAGE_CUTS  # noqa: E402
from tests.support.scenarios import (  # noqa: E402
    CLASSIFIED,
    EmulatorProcess,
    Outcome,
    classified_scenario,
    crash_scenario,
    fault_rate_cli_scenario,
    fault_rate_scenario,
    pollers_scenario,
)
from tests.support.stage_scenarios import stage_crash_scenario  # noqa: E402


class Row:
    """The runs of one scenario, summed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0
        self.recovered = 0
        self.duplicates = 0
        self.lost = 0
        self.notes: list[str] = []

    def add(self, outcome: Outcome) -> None:
        self.runs += 1
        self.recovered += outcome.recovered
        self.duplicates += outcome.duplicate_batches
        self.lost += outcome.lost_verdicts
        if not outcome.ok:
            self.notes.append(outcome.detail)

    @property
    def ok(self) -> bool:
        return self.recovered == self.runs and self.duplicates == 0 and self.lost == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each random scenario")
    args = parser.parse_args(argv)
    rows: dict[str, Row] = {}
    started = time.monotonic()

    def record(name: str, run: Callable[[], Outcome]) -> None:
        row = rows.setdefault(name, Row(name))
        try:
            outcome = run()
        except Exception as exc:  # a crashed scenario is a failed run, reported in the table
            outcome = Outcome(
                name,
                recovered=False,
                duplicate_batches=0,
                lost_verdicts=0,
                detail=f"{type(exc).__name__}: {exc}",
            )
        row.add(outcome)
        mark = "ok" if outcome.ok else "FAILED"
        print(f"  {name:<34} {mark} {'' if outcome.ok else outcome.detail}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="kyro-reliability-") as tmp:
        root = Path(tmp)
        counter = iter(range(1_000_000))

        def folder() -> Path:
            return root / f"run-{next(counter)}"

        with EmulatorProcess() as emulator:
            for cut in CUTS:
                record(f"kill -9 {cut}", lambda c=cut: crash_scenario(emulator.url, folder(), c))
            for cut in STAGE_CUTS:
                record(
                    f"pipeline kill -9 {cut}",
                    lambda c=cut: stage_crash_scenario(emulator.url, folder(), c),
                )
            for _ in range(args.repeat):
                for n in (2, 4):
                    record(f"{n} pollers", lambda n=n: pollers_scenario(emulator.url, folder(), n))
            for bad in BAD_INPUTS:
                record(
                    f"bad input: {bad}",
                    lambda b=bad: bad_input_scenario(emulator.url, folder(), b),
                )
        for hostile in HOSTILE_REPLIES:
            record(
                f"hostile reply: {hostile}", lambda h=hostile: hostile_reply_scenario(folder(), h)
            )
        for kind in CLASSIFIED:
            record(kind.replace("_", " "), lambda k=kind: classified_scenario(folder(), k))
        for seed in range(args.repeat):
            record("30% faulty API (library)", lambda s=seed: fault_rate_scenario(folder(), s))
            record("30% faulty API (CLI)", lambda s=seed: fault_rate_cli_scenario(folder(), s))

    width = max(len(name) for name in rows)
    header = f"{'scenario':<{width}}  runs  recovered  duplicate batches  lost verdicts"
    print(header)
    print("-" * len(header))
    for row in rows.values():
        print(
            f"{row.name:<{width}}  {row.runs:>4}  {row.recovered:>9}  {row.duplicates:>17}  "
            f"{row.lost:>13}"
        )
    failed = [row for row in rows.values() if not row.ok]
    total_runs = sum(row.runs for row in rows.values())
    print(
        f"\n{total_runs} runs of {len(rows)} scenarios in {time.monotonic() - started:.0f} s; "
        f"{'all recovered, nothing duplicated or lost' if not failed else 'FAILURES:'}"
    )
    for row in failed:
        print(f"  {row.name}: {'; '.join(row.notes)[:500]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
