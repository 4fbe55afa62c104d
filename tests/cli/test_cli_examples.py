"""examples/submit.py and examples/check.py, run as a cron job runs them, against the emulator."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cli_helpers import ROOT, kyro_env

from kyro_openai.testing import Emulator, EmulatorConfig, serve


def _copy_examples(folder: Path) -> Path:
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns(".kyro"))
    return folder


def _script(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)], env=env, text=True, capture_output=True, timeout=120
    )


def test_submit_then_check_until_complete(tmp_path: Path) -> None:
    """submit.py exits 0; check.py exits 3 while pending, then 0 with a summary and the path."""
    examples = _copy_examples(tmp_path / "examples")
    config = EmulatorConfig(in_progress_seconds=3600)
    with Emulator(config, clock=lambda: 0.0) as emulator, serve(emulator) as url:
        env = kyro_env(url)
        submitted = _script(examples / "submit.py", env)
        assert submitted.returncode == 0, submitted.stderr
        assert submitted.stdout.startswith("submitted kyro-")
        assert f"state in {examples / '.kyro' / 'judges.batch-state.json'}" in submitted.stdout
        pending = _script(examples / "check.py", env)
        assert (pending.returncode, pending.stdout) == (3, "still pending: check again later\n")
        emulator.advance(3600)
        done = _script(examples / "check.py", env)
        again = _script(examples / "check.py", env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith(" of 25")
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "  answers_the_question",
        "  safety",
        "  support_quality",
    ]
    (results,) = (examples / ".kyro" / "judges.batch").glob("results-*.jsonl")
    assert lines[4] == f"results: {results}"
    assert len(results.read_text(encoding="utf-8").splitlines()) == 25
    assert again.stdout == done.stdout


def test_check_reports_a_failed_job(tmp_path: Path) -> None:
    """check.py exits 4 when the provider fails the job, and 2 when nothing was submitted."""
    examples = _copy_examples(tmp_path / "examples")
    with Emulator(EmulatorConfig(max_requests=10)) as emulator, serve(emulator) as url:
        env = kyro_env(url)
        nothing = _script(examples / "check.py", env)
        assert _script(examples / "submit.py", env).returncode == 0
        failed = _script(examples / "check.py", env)
    assert nothing.returncode == 2
    assert "run submit first" in nothing.stderr
    assert failed.returncode == 4
    assert "ended failed" in failed.stderr
    assert "too_many_tasks" in failed.stderr
