"""submit/check on the emulator over HTTP: runs as n samples, the budget gate, the reply cache
across jobs, the actual cost from usage, and check --report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro.cli import ExitCode, main
from kyro_openai.testing import Emulator
from tests.cli.cli_helpers import results_file

pytestmark = pytest.mark.slow  # two jobs end to end over HTTP per test


def _submit(config: Path, base_url: str, *extra: str) -> int:
    data = str(config.parent / "data.jsonl")
    return main(["submit", str(config), data, "--base-url", base_url, *extra])


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _sent_lines(emulator: Emulator) -> list[dict[str, object]]:
    """Every request line uploaded to the emulator so far."""
    lines = []
    for stored in emulator.store.files.values():
        if stored.obj.purpose != "batch":
            continue
        for raw in stored.path.read_bytes().splitlines():
            lines.append(json.loads(raw))
    return lines


def test_runs_as_samples_voted_and_billed_once(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """runs=3 goes as one request with n=3 per transcript × judge; three runs are voted and the
    prompt tokens are counted once; submit shows the estimate, check the actual cost."""
    assert _submit(job, base_url, "--runs", "3") == ExitCode.OK
    out = capsys.readouterr().out
    assert "cost (openai, batch prices of 2026-11-30" in out
    assert "runs sent as n samples save $" in out
    assert "cache: 0 of 18 runs answered by" in out
    lines = _sent_lines(emulator)
    assert len(lines) == 6
    assert {line["body"]["n"] for line in lines} == {3}  # type: ignore[index]
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "requests: 18 (0 errored runs, 0 never came back)" in out
    assert (
        "| tone  | gpt-4o-mini |       67% |          — |       2 |     1 |  0 |       0 |" in out
    )
    results = [json.loads(line) for line in results_file(job.parent).read_text().splitlines()]
    runs = results[0]["verdicts"]["tone"]["runs"]
    assert [run["run"] for run in runs] == [0, 1, 2]
    assert results[0]["verdicts"]["tone"]["votes"]["SUCCESS"] == 3
    # Usage: one prompt per request, shared out over its three runs.
    prompt = sum(run["usage"]["input_tokens"] for run in runs)
    body = lines[0]["body"]
    text = "\n".join(m["content"] for m in body["messages"])  # type: ignore[index]
    assert prompt == len(text) // 4
    assert "cost: $" in out
    assert "at openai batch prices of 2026-11-30" in out


def test_max_cost_refuses_before_any_upload(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-cost below the ceiling exits 1 with the figures; nothing is uploaded or saved."""
    assert _submit(job, base_url, "--runs", "3", "--max-cost", "0.00001") == ExitCode.GATE
    err = capsys.readouterr().err
    assert "refused: the cost ceiling $" in err
    assert "nothing was uploaded" in err
    assert emulator.stats().files_uploaded == 0
    assert not (job.parent / ".kyro" / "judges.batch-state.json").exists()
    # Within budget, the same job goes through.
    assert _submit(job, base_url, "--runs", "3", "--max-cost", "50", "-q") == ExitCode.OK
    assert emulator.stats().files_uploaded == 1


def test_second_job_is_answered_by_the_cache(
    job: Path, base_url: str, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-run of the same job sends only what changed; cached runs merge into the results
    marked origin=cache and are not billed; check --report writes the page."""
    cache = ["--cache-dir", str(tmp_path / "replies")]
    assert _submit(job, base_url, "--runs", "2", *cache, "-q") == ExitCode.OK
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    capsys.readouterr()
    sent_first = len(_sent_lines(emulator))
    assert sent_first == 6
    # One transcript more: only its two requests (n=2 each) go out.
    data = job.parent / "data.jsonl"
    data.write_text(data.read_text() + json.dumps("alpha, again") + "\n", encoding="utf-8")
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 12 of 16 runs answered by" in capsys.readouterr().out
    assert len(_sent_lines(emulator)) == sent_first + 2
    report = tmp_path / "report.html"
    args = ["check", str(job), "--base-url", base_url, "--report", str(report)]
    assert main(args) == ExitCode.OK
    out = capsys.readouterr().out
    assert "12 runs answered by the cache, not billed" in out
    assert f"report: {report} (4 transcripts" in out
    newest = max((job.parent / ".kyro" / "judges.batch").glob("results-*.jsonl"), key=_mtime)
    results = [json.loads(line) for line in newest.read_text().splitlines()]
    origins = [run.get("origin") for run in results[0]["verdicts"]["tone"]["runs"]]
    assert origins == ["cache", "cache"]
    assert [run.get("origin") for run in results[3]["verdicts"]["tone"]["runs"]] == [None, None]
    page = report.read_text(encoding="utf-8")
    assert 'data-testid="cached"><b>12</b>' in page
    # The same job again: the cache answers every run, nothing is uploaded, check finishes.
    uploads = emulator.stats().files_uploaded
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 16 of 16 runs answered by" in capsys.readouterr().out
    assert emulator.stats().files_uploaded == uploads
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "16 runs answered by the cache, not billed" in out
    assert "transcripts: 4 — 2 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    # --no-cache sends everything again.
    assert _submit(job, base_url, "--runs", "2", "--no-cache", "-q") == ExitCode.OK
    assert len(_sent_lines(emulator)) == sent_first + 2 + 8


def test_batch_answers_feed_a_live_run(
    job: Path, base_url: str, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live run (LocalProvider on the chat endpoint) of the config a batch job already
    answered is served from the cache: no chat call, same verdicts, marked origin=cache."""
    cache = ["--cache-dir", str(tmp_path / "replies")]
    assert _submit(job, base_url, *cache, "-q") == ExitCode.OK
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    capsys.readouterr()
    data = str(job.parent / "data.jsonl")
    live = ["run", str(job), data, "--provider", "local", "--base-url", base_url, *cache]
    assert main([*live, "--state-dir", str(tmp_path / "live")]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "cache: 6 of 6 runs answered by" in out
    assert "transcripts: 3 — 1 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    assert emulator.stats().chat_completions == 0
    # The other way round: a live run's answers serve a later batch of a changed run count.
    assert main([*live, "--runs", "2", "--state-dir", str(tmp_path / "live2")]) == ExitCode.OK
    assert "cache: 6 of 12 runs answered by" in capsys.readouterr().out
    assert emulator.stats().chat_completions == 6
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 12 of 12 runs answered by" in capsys.readouterr().out
