"""`submit`, `check`, `status`, `cancel` and `run` through `kyro.cli.main`, against the emulator."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kyro.cli import ExitCode, main
from kyro.cli._report import CSV_COLUMNS
from kyro_openai.testing import Emulator, EmulatorConfig, HttpErrorFault, serve
from tests.cli.cli_helpers import closed_port_url, make_emulator, read_csv, results_file, write_job


def _submit(config: Path, base_url: str, *extra: str) -> int:
    data = str(config.parent / "data.jsonl")
    return main(["submit", str(config), data, "--base-url", base_url, "-q", *extra])


def test_submit_then_check_completes(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """submit prints the job id; check exits 0 with the summary table and the results path."""
    assert _submit(job, base_url, "--runs", "2") == ExitCode.OK
    job_id = capsys.readouterr().out.strip()
    assert job_id.startswith("kyro-")
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"job {job_id}: PARTIAL" in out
    assert (
        "| tone  | gpt-4o-mini |       67% |          — |       2 |     1 |  0 |       0 |" in out
    )
    assert (
        "| facts | gpt-4o-mini |       33% |          — |       1 |     2 |  0 |       0 |" in out
    )
    assert "transcripts: 3 — 1 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    assert "requests: 12 (0 errored runs, 0 never came back)" in out
    assert f"results: {results_file(job.parent)}" in out


@pytest.mark.slow  # end to end over HTTP
def test_pending_then_complete(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 3 while the batch runs, status shows it, and exits 0 once it is done."""
    slow = EmulatorConfig(in_progress_seconds=3600)
    with make_emulator(slow) as emulator, serve(emulator) as url:
        _pending_then_complete(job, url, emulator, capsys)


def _pending_then_complete(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _submit(job, base_url) == ExitCode.OK
    capsys.readouterr()
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.PENDING
    assert capsys.readouterr().out == "still pending: check again later\n"
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.PENDING
    assert capsys.readouterr().out == ""
    assert main(["status", str(job), "--base-url", base_url]) == ExitCode.OK
    status = capsys.readouterr().out
    assert "pending" in status
    assert "| 0     | 1       | gpt-4o-mini | batch_" in status
    assert "requests: 0 done, 0 failed, of 6" in status
    emulator.advance(3600)
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    quiet = capsys.readouterr().out
    assert quiet.startswith("kyro-")
    assert ": PARTIAL — 1 success, 1 error, 1 partial" in quiet
    assert main(["status", str(job), "--base-url", base_url]) == ExitCode.OK
    assert "is done and collected (6 requests)" in capsys.readouterr().out


@pytest.mark.slow  # end to end over HTTP
def test_second_submit_refused_while_pending(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second submit for a pending config exits 2 and says how to check or cancel."""
    assert _submit(job, base_url) == ExitCode.OK
    assert _submit(job, base_url) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "is still pending" in err
    assert f"python3 -m kyro check {job}" in err


@pytest.mark.slow  # end to end over HTTP
def test_cancel_then_check_exits_4(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """cancel stops the job; the next check reports it cancelled and exits 4."""
    assert _submit(job, base_url) == ExitCode.OK
    assert main(["cancel", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "cancel requested" in out
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.JOB_FAILED
    captured = capsys.readouterr()
    assert "ended cancelled" in captured.out
    assert "ended cancelled" in captured.err


@pytest.mark.slow  # end to end over HTTP
def test_expired_job_exits_4(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch that expires with resubmits off ends the job expired: exit 4, partial kept."""
    emulator.faults.expire_next(after_lines=2)
    assert _submit(job, base_url, "--max-resubmits", "0") == ExitCode.OK
    capsys.readouterr()
    code = main(["check", str(job), "--base-url", base_url, "--max-resubmits", "0"])
    assert code == ExitCode.JOB_FAILED
    out = capsys.readouterr().out
    assert "ended expired" in out
    assert "transcripts: 3 —" in out
    assert results_file(job.parent).is_file()


@pytest.mark.slow  # end to end over HTTP
def test_failed_job_exits_4_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch the provider refuses (over its request limit) fails the job: exit 4, errors shown."""
    config = write_job(tmp_path, ["alpha", "bad", "mixed"])
    with make_emulator(EmulatorConfig(max_requests=2)) as emulator, serve(emulator) as url:
        assert _submit(config, url) == ExitCode.OK
        assert main(["check", str(config), "--base-url", url]) == ExitCode.JOB_FAILED
    out = capsys.readouterr().out
    assert "ended failed" in out
    assert "  too_many_tasks: The input file has 6 requests" in out


@pytest.mark.parametrize(
    ("texts", "gate", "code"),
    [
        # Two cases in the fast tier; the rest of the gate matrix runs with the slow tests.
        (["alpha", "mixed"], "partial", ExitCode.GATE),
        (["alpha", "bad"], "errored", ExitCode.OK),
        pytest.param(["alpha"], "error", ExitCode.OK, marks=pytest.mark.slow),
        pytest.param(["alpha"], "partial", ExitCode.OK, marks=pytest.mark.slow),
        pytest.param(["alpha", "mixed"], "error", ExitCode.OK, marks=pytest.mark.slow),
        pytest.param(["alpha", "bad"], "error", ExitCode.GATE, marks=pytest.mark.slow),
        pytest.param(["alpha", "garbled"], "errored", ExitCode.GATE, marks=pytest.mark.slow),
        pytest.param(["alpha", "garbled"], "partial", ExitCode.OK, marks=pytest.mark.slow),
    ],
)
def test_fail_on_gate(
    tmp_path: Path,
    base_url: str,
    capsys: pytest.CaptureFixture[str],
    texts: list[str],
    gate: str,
    code: ExitCode,
) -> None:
    """--fail-on error|partial|errored exits 1 exactly when the verdicts match the gate."""
    config = write_job(tmp_path, texts)
    assert _submit(config, base_url) == ExitCode.OK
    assert main(["check", str(config), "--base-url", base_url, "--fail-on", gate]) == code
    out = capsys.readouterr().out
    assert (f"--fail-on {gate}: verdicts fail the gate" in out) == (code == ExitCode.GATE)


@pytest.mark.slow  # end to end over HTTP
def test_exports_line_by_line(
    job: Path, base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output copies the results file line for line; --csv has a row per transcript × judge."""
    assert _submit(job, base_url, "--runs", "3") == ExitCode.OK
    out_jsonl, out_csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    args = ["check", str(job), "--base-url", base_url, "--output", str(out_jsonl)]
    assert main([*args, "--csv", str(out_csv)]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert f"wrote {out_jsonl}" in printed
    assert f"wrote {out_csv}" in printed
    source_lines = results_file(job.parent).read_text(encoding="utf-8").splitlines()
    assert out_jsonl.read_text(encoding="utf-8").splitlines() == source_lines
    evaluations = [msgspec.json.decode(line) for line in source_lines]
    assert [e["status"] for e in evaluations] == ["SUCCESS", "PARTIAL", "ERROR"]
    rows = read_csv(out_csv)
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = [
        (str(e["index"]), e["source"], e["status"], name, v["status"], str(v["votes"]["SUCCESS"]))
        for e in evaluations
        for name, v in e["verdicts"].items()
    ]
    keys = ("index", "source", "transcript_status", "judge", "status", "votes_success")
    got = [tuple(r[key] for key in keys) for r in rows]
    assert got == expected
    assert len(rows) == 3 * 2
    assert rows[3] == {
        "index": "1",
        "source": f"{job.parent / 'data.jsonl'}:2",
        "transcript_status": "PARTIAL",
        "judge": "facts",
        "status": "ERROR",
        "score": "",
        "votes_success": "0",
        "votes_error": "3",
        "votes_na": "0",
        "votes_errored": "0",
        "root_cause": "wrong",
        "error_code": "",
        "error_message": "",
    }


@pytest.mark.slow  # end to end over HTTP
def test_csv_carries_errored_runs(
    tmp_path: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An errored verdict's CSV row names the error code, and the summary counts it."""
    config = write_job(tmp_path, ["garbled"])
    assert _submit(config, base_url) == ExitCode.OK
    out_csv = tmp_path / "out.csv"
    assert main(["check", str(config), "--base-url", base_url, "--csv", str(out_csv)]) == 0
    assert "transcripts: 1 — 0 SUCCESS, 0 ERROR, 0 PARTIAL, 1 errored" in capsys.readouterr().out
    rows = read_csv(out_csv)
    assert [(r["judge"], r["status"], r["votes_errored"]) for r in rows] == [
        ("tone", "ERRORED", "1"),
        ("facts", "ERRORED", "1"),
    ]
    assert {r["error_code"] for r in rows} == {"too_few_valid_runs"}


@pytest.mark.slow  # end to end over HTTP
def test_check_twice_returns_the_same_result(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checking a collected job again prints the same verdicts from disk, exit 0."""
    assert _submit(job, base_url) == ExitCode.OK
    capsys.readouterr()
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    first = capsys.readouterr().out
    assert main(["check", str(job), "--base-url", closed_port_url(), "-q"]) == ExitCode.OK
    assert capsys.readouterr().out == first


@pytest.mark.slow  # end to end over HTTP
def test_run_local_provider(job: Path, base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """run sends every request to an OpenAI-compatible endpoint now and prints the verdicts."""
    args = ["run", str(job), str(job.parent / "data.jsonl"), "--base-url", base_url]
    assert main([*args, "--runs", "2"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "submitted through the local provider" in out
    assert "transcripts: 3 — 1 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    assert (job.parent / ".kyro" / "local").is_dir()


@pytest.mark.slow  # end to end over HTTP
def test_run_batch_provider_with_gate(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """run --provider openai submits a batch, waits, and applies --fail-on."""
    args = ["run", str(job), str(job.parent / "data.jsonl"), "--base-url", base_url]
    code = main([*args, "--provider", "openai", "--interval", "0", "-q", "--fail-on", "error"])
    assert code == ExitCode.GATE
    out = capsys.readouterr().out
    assert ": PARTIAL — 1 success, 1 error, 1 partial, 0 errored; results: " in out


@pytest.mark.slow  # waits out real retry back-off against a closed port
def test_unreachable_provider_exits_5(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A closed port is exit 5; the saved job resumes when submit runs again."""
    assert _submit(job, closed_port_url()) == ExitCode.PROVIDER
    err = capsys.readouterr().err
    assert "provider error: openai: uploading" in err
    assert "run the same submit again to resume it" in err
    assert main(["check", str(job), "--base-url", closed_port_url()]) == ExitCode.PROVIDER
    assert "no answer from http://127.0.0.1:" in capsys.readouterr().err


@pytest.mark.slow  # waits out real retry back-off against a closed port
def test_resubmit_resumes_after_unreachable(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a failed upload, the same submit adopts the saved job and creates one batch."""
    assert _submit(job, closed_port_url()) == ExitCode.PROVIDER
    assert _submit(job, base_url) == ExitCode.OK
    assert len(emulator.batches) == 1
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    assert ": PARTIAL — 1 success, 1 error, 1 partial" in capsys.readouterr().out


def test_refused_key_exits_5(job: Path, base_url: str, emulator: Emulator) -> None:
    """A provider that refuses the call (HTTP 401 after no retries) is exit 5."""
    emulator.faults.add(HttpErrorFault(status=401, times=None))
    assert _submit(job, base_url) == ExitCode.PROVIDER
