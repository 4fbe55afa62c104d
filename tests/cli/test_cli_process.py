"""The CLI as a user runs it: `python -m kyro ...` in real subprocesses, over HTTP on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.cli.cli_helpers import (
    ROOT,
    closed_port_url,
    kyro_env,
    make_emulator,
    read_csv,
    results_file,
    run_kyro,
    write_job,
)

pytestmark = pytest.mark.slow  # every test runs python -m kyro in child processes


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[Emulator, str]]:
    """A scripted emulator on 127.0.0.1 whose batches run an hour of its frozen clock."""
    slow = EmulatorConfig(in_progress_seconds=3600)
    with make_emulator(slow) as emulator, serve(emulator) as url:
        yield emulator, url


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """`python -m kyro emulator --port 0` in its own process, batches running an hour."""
    command = [sys.executable, "-m", "kyro", "emulator", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--in-progress-seconds", "3600"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def _advance(url: str, seconds: float) -> None:
    root = url.removesuffix("/v1")
    response = httpx.post(f"{root}/_emulator/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200


def test_submit_check_exit_codes(scripted: tuple[Emulator, str], tmp_path: Path) -> None:
    """submit 0, check 3 while pending, then 0 with exports, and 1 behind --fail-on error."""
    emulator, url = scripted
    config = write_job(tmp_path, ["alpha", "mixed", "bad"])
    env = kyro_env(url)
    submitted = run_kyro(["submit", str(config), str(tmp_path / "data.jsonl"), "-q"], env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id.startswith("kyro-")
    assert "\n" not in job_id

    pending = run_kyro(["check", str(config)], env)
    assert (pending.returncode, pending.stdout) == (3, "still pending: check again later\n")

    emulator.advance(3600)
    out_jsonl, out_csv = tmp_path / "r.jsonl", tmp_path / "r.csv"
    done = run_kyro(["check", str(config), "--output", str(out_jsonl), "--csv", str(out_csv)], env)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout  # plain text off a terminal: no colour codes
    assert f"job {job_id}: PARTIAL" in done.stdout
    assert (
        "| tone  | gpt-4o-mini |       67% |          — |       2 |     1 |  0 |       0 |"
        in done.stdout
    )
    assert f"results: {results_file(tmp_path)}" in done.stdout
    assert out_jsonl.read_bytes() == results_file(tmp_path).read_bytes()
    assert [(r["index"], r["judge"], r["status"]) for r in read_csv(out_csv)] == [
        ("0", "tone", "SUCCESS"),
        ("0", "facts", "SUCCESS"),
        ("1", "tone", "SUCCESS"),
        ("1", "facts", "ERROR"),
        ("2", "tone", "ERROR"),
        ("2", "facts", "ERROR"),
    ]

    gated = run_kyro(["check", str(config), "--fail-on", "error", "-q"], env)
    assert gated.returncode == 1
    assert gated.stdout.splitlines() == [
        f"{job_id}: PARTIAL — 1 success, 1 error, 1 partial, 0 errored; results: "
        f"{results_file(tmp_path)}",
        "--fail-on error: verdicts fail the gate",
    ]


def test_status_cancel_check(emulator_url: str, tmp_path: Path) -> None:
    """Against an emulator process: status shows the batch, cancel stops it, check exits 4."""
    config = write_job(tmp_path, ["alpha", "bad"])
    env = kyro_env(emulator_url)
    assert run_kyro(["submit", str(config), str(tmp_path / "data.jsonl")], env).returncode == 0
    status = run_kyro(["status", str(config)], env)
    assert status.returncode == 0
    assert "| gpt-4o-mini | batch_" in status.stdout
    assert "requests: 0 done, 0 failed, of 4" in status.stdout
    cancelled = run_kyro(["cancel", str(config)], env)
    assert cancelled.returncode == 0
    assert f"cancel requested; run `python3 -m kyro check {config}` to collect" in cancelled.stdout
    _advance(emulator_url, 60)  # past the cancelling phase
    checked = run_kyro(["check", str(config)], env)
    assert checked.returncode == 4
    assert checked.stdout.startswith("job kyro-")
    assert "ended cancelled" in checked.stdout


def test_run_validate_plan(scripted: tuple[Emulator, str], tmp_path: Path) -> None:
    """validate and plan exit 0 on the bundled example; run finishes a job through `local`."""
    env = kyro_env()
    examples = ROOT / "examples"
    validated = run_kyro(["validate", str(examples / "judges.yml")], env)
    assert validated.returncode == 0
    assert "valid, 3 judges in the `judges:` shape" in validated.stdout
    planned = run_kyro(["plan", str(examples / "judges.yml"), str(examples / "transcripts")], env)
    assert planned.returncode == 0
    assert "25 transcripts × 3 judges × 1 runs = 75 requests" in planned.stdout
    config = write_job(tmp_path, ["alpha", "mixed"])
    ran = run_kyro(
        ["run", str(config), str(tmp_path / "data.jsonl"), "--base-url", scripted[1], "-q"], env
    )
    assert ran.returncode == 0, ran.stderr
    assert ": PARTIAL — 1 success, 0 error, 1 partial, 0 errored; results: " in ran.stdout


def test_bad_input_and_unreachable(tmp_path: Path) -> None:
    """Bad config, bad arguments and a missing job exit 2; a closed port exits 5."""
    env = kyro_env()
    bad = tmp_path / "bad.yml"
    bad.write_text("model: m\njudges:\n  - name: a\n    promt: x\n", encoding="utf-8")
    (tmp_path / "hello.txt").write_text("hello", encoding="utf-8")
    invalid = run_kyro(["submit", str(bad), str(tmp_path / "hello.txt")], env)
    assert invalid.returncode == 2
    assert invalid.stderr.startswith(f"{bad}:4:5: unknown key 'promt'")
    assert run_kyro(["check", str(bad), "--interval", "soon"], env).returncode == 2
    config = write_job(tmp_path / "job", ["alpha"])
    nothing = run_kyro(["check", str(config)], env)
    assert nothing.returncode == 2
    assert "nothing was submitted with this config" in nothing.stderr
    unreachable = run_kyro(
        ["submit", str(config), str(config.parent / "data.jsonl"), "--base-url", closed_port_url()],
        env,
    )
    assert unreachable.returncode == 5
    assert "no answer from http://127.0.0.1:" in unreachable.stderr


def test_demo_end_to_end(tmp_path: Path) -> None:
    """`python -m kyro demo` runs the whole job on its own emulator and exits 0."""
    # A batch that runs for 8 s keeps the first check pending even on a loaded machine, where
    # starting the check process alone can take longer than the demo's default 2 s.
    demo = run_kyro(
        ["demo", "--dir", str(tmp_path), "--batch-seconds", "8"], kyro_env(), timeout=300
    )
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    assert "emulator listening at http://127.0.0.1:" in out
    assert "[1/3] submit (a process that has now exited):" in out
    assert "check #1: still pending (exit 3)" in out
    assert "done (exit 0)" in out
    assert (
        "| judge                | model       | pass rate | mean score | SUCCESS | ERROR | NA |"
        in out
    )
    assert "| answers_the_question |" in out
    assert "transcripts: 25 — " in out
    results = results_file(tmp_path)
    assert f"results: {results}" in out
    assert len(results.read_text(encoding="utf-8").splitlines()) == 25
    assert len(read_csv(tmp_path / "results.csv")) == 25 * 3
    assert "against the real API: export OPENAI_API_KEY=" in out
