"""``demo``: the whole job end to end on the emulator — no API key, no network.

1. starts ``kyro emulator`` on a free 127.0.0.1 port, in its own process;
2. copies the bundled example (judges, prompts, transcripts) to a work folder;
3. ``kyro submit`` in one process, which saves the state and exits;
4. ``kyro check`` from fresh processes, as cron would, until the job is done;
5. prints the summary, where the results are, and how to run the same against the real API;
6. stops the emulator.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kyro._exceptions import BatchValidationError, KyroError
from kyro.cli._argtypes import interval_seconds, run_count
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode
from kyro.cli._report import console

__all__ = ["examples_dir", "register"]

_FAKE_KEY = "sk-emulator-demo"


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = add_command(
        subparsers,
        "demo",
        epilog="examples:\n  python3 -m kyro demo\n  python3 -m kyro demo --dir ./demo --runs 5",
    )
    parser.add_argument("--dir", help="work folder (default: a new temporary folder)")
    parser.add_argument(
        "--runs", type=run_count, default=3, help="runs per transcript × judge (1 to 100)"
    )
    parser.add_argument(
        "--interval", type=interval_seconds, default=1.0, help="seconds between the check processes"
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=2.0,
        help="how long the emulator takes to run a batch (default 2)",
    )
    parser.set_defaults(func=_demo)


def examples_dir() -> Path:
    """The bundled examples: inside the installed package, or the checkout's ``examples/``."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "examples", package.parent / "examples"):
        if (candidate / "judges.yml").is_file():
            return candidate
    raise KyroError("the bundled examples are missing; run the demo from a kyro checkout")


def _start_emulator(seconds: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "kyro", "emulator", "--port", "0"]
    command += ["--validating-seconds", "0.5", "--in-progress-seconds", str(seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http://127.0.0.1:"):
        process.kill()
        raise KyroError(f"the emulator did not start (it printed {line!r})")
    return process, line


def _kyro(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyro", *args], env=env, text=True, capture_output=True
    )


def _demo(args: argparse.Namespace) -> int:
    out = console()
    if args.runs < 1:
        raise BatchValidationError(f"--runs must be at least 1, got {args.runs}")
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kyro-demo-"))
    source = examples_dir()
    for name in ("judges.yml", "prompts", "transcripts"):
        target = work / name
        if (source / name).is_dir():
            shutil.copytree(source / name, target, dirs_exist_ok=True)
        else:
            work.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
    config = work / "judges.yml"
    emulator, url = _start_emulator(args.batch_seconds)
    env = {**os.environ, "OPENAI_API_KEY": _FAKE_KEY, "OPENAI_BASE_URL": url}
    try:
        out.print(f"emulator listening at {url} (OpenAI Files + Batches API, emulated verdicts)")
        submitted = _kyro(
            ["submit", str(config), str(work / "transcripts"), "--runs", str(args.runs)], env
        )
        if submitted.returncode != 0:
            out.print(submitted.stdout + submitted.stderr)
            return submitted.returncode
        out.print(f"[1/3] submit (a process that has now exited):\n{submitted.stdout.rstrip()}")
        out.print("[2/3] check from fresh processes, as cron would:")
        csv_path = work / "results.csv"
        attempt = 0
        while True:
            attempt += 1
            checked = _kyro(["check", str(config), "--csv", str(csv_path)], env)
            if checked.returncode != ExitCode.PENDING:
                break
            out.print(f"  check #{attempt}: still pending (exit 3)")
            time.sleep(args.interval)
        out.print(f"  check #{attempt}: done (exit {checked.returncode})")
        out.print("[3/3] verdicts:")
        out.print(checked.stdout.rstrip())
        if checked.returncode not in (ExitCode.OK, ExitCode.GATE):
            out.print(checked.stderr.rstrip())
            return checked.returncode
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
    out.print(f"\nwork folder: {work} (judges.yml, transcripts/, results.csv, .kyro/)")
    out.print(
        "against the real API: export OPENAI_API_KEY=sk-… and run\n"
        f"  python3 -m kyro submit {config} {work / 'transcripts'} --runs {args.runs}\n"
        f"  python3 -m kyro check {config} --wait --interval 60"
    )
    return ExitCode.OK
