"""The batch path end to end on an emulator process: submit_eval in one process, check_eval
in another — after a clean exit, after a kill -9, and after a kill -9 inside the submission."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.scenarios import API_KEY, EmulatorProcess, child_env

pytestmark = pytest.mark.slow  # child processes against an emulator process

CHILD = Path(__file__).with_name("eval_child.py")
TEXTS = ["alpha", "beta", "boom", "gamma"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """One emulator process whose batches take a second in progress (real clock)."""
    with EmulatorProcess("--in-progress-seconds", "1") as process:
        yield process


def _dataset(folder: Path) -> Path:
    path = folder / "data.jsonl"
    lines = [json.dumps({"input": t, "expected": t.upper(), "item_id": t}) for t in TEXTS]
    path.write_text("\n".join(lines) + "\n")
    return path


def _child(url: str, state: Path, dataset: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), url, str(state), str(dataset), *mode],
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip


def _check_until_done(url: str, state: Path, dataset: Path, job_id: str) -> dict[str, Any]:
    for _ in range(60):
        done = _child(url, state, dataset, "check", job_id)
        assert done.returncode == 0, done.stderr
        if done.stdout.strip() != "pending":
            summary: dict[str, Any] = json.loads(done.stdout)
            return summary
        time.sleep(0.5)
    raise AssertionError("the eval job never finished")


def _assert_complete(summary: dict[str, Any]) -> None:
    assert summary["status"] == "partial_failure"
    items = summary["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert items[2]["error"] == "ValueError: cannot shout boom"
    assert items[2]["scores"] == {}
    for item in (items[0], items[1], items[3]):
        assert item["output"] == TEXTS[item["index"]].upper()
        assert item["scores"]["exact_match"] == [1.0, True, None]
        score, passed, error = item["scores"]["shouted"]
        assert error is None
        assert score in (0.0, 1.0)
        assert passed is (score == 1.0)


def _run_scenario(
    emulator: EmulatorProcess, tmp_path: Path, mode: str
) -> tuple[str, dict[str, Any]]:
    state, dataset = tmp_path / "eval", _dataset(tmp_path)
    before = emulator.stats()["batches_created"]
    if mode == "submit-hang":
        process = subprocess.Popen(
            [sys.executable, str(CHILD), emulator.url, str(state), str(dataset), mode],
            stdout=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        assert process.stdout is not None
        job_id = process.stdout.readline().strip()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
        process.stdout.close()
    else:
        submitted = _child(emulator.url, state, dataset, mode)
        if mode == "submit":
            assert submitted.returncode == 0, submitted.stderr
            job_id = submitted.stdout.strip()
        else:
            assert submitted.returncode == -signal.SIGKILL
            (job_id,) = [p.name for p in state.iterdir()]
    assert job_id.startswith("eval-")
    summary = _check_until_done(emulator.url, state, dataset, job_id)
    created = emulator.stats()["batches_created"] - before
    assert created == 1, f"{created} batches were created for one eval job"
    again = _child(emulator.url, state, dataset, "check", job_id)
    assert json.loads(again.stdout) == summary
    return job_id, summary


@pytest.mark.parametrize(
    "mode", ["submit", "submit-hang", "kill-before-upload", "kill-after-create"]
)
def test_batch_eval_survives_the_process_ending_between_submit_and_check(
    emulator: EmulatorProcess, tmp_path: Path, mode: str
) -> None:
    """Whether the submitting process exits, is killed after submit, or is killed inside the
    judge batch's submission, a later process collects every score with exactly one batch."""
    job_id, summary = _run_scenario(emulator, tmp_path, mode)
    _assert_complete(summary)
    folder = tmp_path / "eval" / job_id
    assert oct((folder / "results.jsonl").stat().st_mode & 0o777) == "0o600"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert API_KEY not in "".join(
        p.read_text(errors="ignore") for p in folder.rglob("*") if p.is_file()
    )
