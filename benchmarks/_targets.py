"""What every benchmark prints and how it exits: one row per figure, exit 1 on any missed target.

A row reads ``figure  measured  baseline  ratio  target  OK|MISS``: the ratio is always
kyro against a baseline measured in the same run (never an absolute time alone), and the
target is the budget the ratio must meet. ``Targets.exit_code()`` is 1 when any row missed.
Shared by every ``bench_*.py`` and by ``run_all.py``, so a reviewer reads one format.

Example::

    targets = Targets("builder, whole process")
    targets.ratio("kyro / bare msgspec", kyro_s, bare_s, at_least=1.0, unit="s", faster=True)
    sys.exit(targets.exit_code())
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

__all__ = [
    "HEADER",
    "Targets",
    "child_env",
    "child_peak_mib",
    "machine_load",
    "peak_rss_kb",
]

HEADER = f"  {'figure':<44} {'measured':>12} {'baseline':>12} {'ratio':>7}  {'target':<9} result"


def machine_load() -> str:
    """The 1-minute load average and the core count, printed with every benchmark's figures."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"{os.cpu_count()} cores"
    return f"load {load:.2f} on {os.cpu_count()} cores"


def child_env() -> dict[str, str]:
    """The environment every benchmark child runs in: this one, bytecode caching allowed.

    With ``PYTHONDONTWRITEBYTECODE`` set, a child importing kyro from a source checkout
    compiles every module again on each start (an installed package has its bytecode cached);
    dropping it for every contender alike measures the work, not the compiler.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_peak_mib(script: str, *args: str) -> float:
    """Run ``script`` with ``args`` in a fresh interpreter; the peak RSS it prints last, in MiB.

    Example::

        small, large = (child_peak_mib(__file__, "--rss", str(n)) for n in (10_000, 100_000))
    """
    out = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    )
    return int(out.stdout.split()[-1]) / 1024


class Targets:
    """Collects the rows of one benchmark and remembers whether any target was missed."""

    def __init__(self, title: str) -> None:
        self.missed: list[str] = []
        print(f"{title}  ({machine_load()})")
        print(HEADER)

    def ratio(
        self,
        figure: str,
        measured: float,
        baseline: float,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        unit: str = "",
        faster: bool = False,
    ) -> float:
        """Print one row; the ratio is ``measured / baseline`` (``baseline / measured`` if faster).

        ``faster=True`` is for times: a ratio above 1 means kyro took less time than the
        baseline. Give ``at_least`` or ``at_most`` (or neither, for a row printed for
        information only).
        """
        value = baseline / measured if faster else measured / baseline
        if at_least is not None:
            target, ok = f">= {at_least:g}x", value >= at_least
        elif at_most is not None:
            target, ok = f"<= {at_most:g}x", value <= at_most
        else:
            target, ok = "(info)", True
        verdict = "OK" if ok else "MISS"
        if target == "(info)":
            verdict = ""
        print(
            f"  {figure:<44} {_show(measured, unit):>12} {_show(baseline, unit):>12} "
            f"{value:>6.2f}x  {target:<9} {verdict}".rstrip()
        )
        if not ok:
            self.missed.append(figure)
        return value

    def limit(
        self,
        figure: str,
        measured: float,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        unit: str = "",
    ) -> None:
        """Print a row for a figure with an absolute budget (lines/s, ms, a share of requests)."""
        if at_least is not None:
            target, ok = f">= {_show(at_least, unit)}", measured >= at_least
        elif at_most is not None:
            target, ok = f"<= {_show(at_most, unit)}", measured <= at_most
        else:
            raise ValueError("give at_least or at_most")
        print(
            f"  {figure:<44} {_show(measured, unit):>12} {'':>12} {'':>7}  "
            f"{target:<9} {'OK' if ok else 'MISS'}"
        )
        if not ok:
            self.missed.append(figure)

    def note(self, text: str) -> None:
        """Print an indented line of context (sizes, what was compared)."""
        print(f"    {text}")

    def exit_code(self) -> int:
        """0 when every target was met, else 1 (after naming the missed figures)."""
        if self.missed:
            print(f"  MISSED: {', '.join(self.missed)}")
            return 1
        return 0

    def finish(self) -> None:
        """Exit the process with :meth:`exit_code`, flushing what was printed."""
        sys.stdout.flush()
        sys.exit(self.exit_code())


def _show(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    number = f"{value:,.{digits}f}"
    return f"{number} {unit}" if unit else number
