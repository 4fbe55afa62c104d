"""examples/submit.py and examples/check.py, run as a cron job runs them, against the emulator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kyro.cli import main
from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.cli.cli_helpers import ROOT, kyro_env

pytestmark = pytest.mark.slow  # the examples' scripts run in child processes


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


def test_example_pipeline_through_submit_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/pipeline.yml runs as staged batches (submit, check) and live (run) alike."""
    examples = _copy_examples(tmp_path / "examples")
    config, data = examples / "pipeline.yml", examples / "transcripts" / "dataset.jsonl"
    with Emulator() as emulator, serve(emulator) as url:
        assert main(["submit", str(config), str(data), "--base-url", url, "-q"]) == 0
        assert emulator.stats().batches_created == 1  # stage 0: both roots on one model
        batch_out, live_out = tmp_path / "batch.jsonl", tmp_path / "live.jsonl"
        args = ["check", str(config), "--base-url", url, "--output", str(batch_out)]
        assert main(args) == 0
        args = ["run", str(config), str(data), "--base-url", url, "--output", str(live_out)]
        assert main(args) == 0
    printed = capsys.readouterr().out
    assert "pipeline steps" in printed
    batched = [json.loads(line) for line in batch_out.read_text().splitlines()]
    walked = [json.loads(line) for line in live_out.read_text().splitlines()]
    assert len(batched) == len(data.read_text().splitlines())
    assert [e["steps"] for e in walked] == [e["steps"] for e in batched]
    assert [e["status"] for e in walked] == [e["status"] for e in batched]
    states = {o["state"] for e in batched for o in e["steps"].values()}
    assert "RAN" in states
    assert len(states) >= 2  # the emulator's verdicts gate some steps off
