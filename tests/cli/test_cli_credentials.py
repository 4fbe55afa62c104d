"""No job without credentials, and no silent all-failed run (exit 2 before any state; exit 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro.cli import ExitCode, main
from kyro_openai.testing import Emulator, LineFault


def _submit(job: Path, base_url: str) -> int:
    return main(["submit", str(job), str(job.parent / "data.jsonl"), "--base-url", base_url, "-q"])


@pytest.mark.slow  # end to end over HTTP
@pytest.mark.parametrize(
    ("key", "words"),
    [
        (None, "no API key for the openai provider: set OPENAI_API_KEY"),
        ("sk-test\r", "it ends in whitespace (a carriage return). Set OPENAI_API_KEY again"),
        ("sk-tést", "character 5 is not printable ASCII, which an HTTP header cannot carry"),
    ],
)
def test_submit_that_cannot_authenticate_writes_nothing(
    job: Path,
    base_url: str,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str | None,
    words: str,
) -> None:
    """No key, or one a header cannot hold: exit 2 naming what to set; no state, no upload."""
    if key is None:
        monkeypatch.delenv("OPENAI_API_KEY")
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    assert _submit(job, base_url) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert words in err
    assert "sk-t" not in err  # the key itself is never shown
    assert not (job.parent / ".kyro").exists()
    assert emulator.stats().files_uploaded == 0
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert _submit(job, base_url) == ExitCode.OK  # a fresh job, not a "resumed" one
    assert emulator.stats().batches_created == 1


@pytest.mark.slow  # two jobs end to end over HTTP
def test_every_request_rejected_the_same_way_exits_5(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """When every request fails with one non-retryable error, check says so and exits 5."""
    emulator.faults.add(
        LineFault(
            mode="http_error",
            fraction=1.0,
            status_code=401,
            code="invalid_api_key",
            message="Incorrect API key provided.",
        )
    )
    assert _submit(job, base_url) == ExitCode.OK
    capsys.readouterr()
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.PROVIDER
    captured = capsys.readouterr()
    assert "every one of the job's 6 requests failed with invalid_api_key" in captured.err
    assert "Incorrect API key provided." in captured.err
    assert "| tone" not in captured.out  # no table of errored rows
    # Checking again returns the same finished result, and the same exit code.
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.PROVIDER


@pytest.mark.slow  # end to end over HTTP
def test_mixed_failures_are_a_normal_result(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Some requests answered and some refused: the summary is printed and check exits 0."""
    emulator.faults.add(LineFault(mode="http_error", custom_ids=frozenset({"t0-j0-r0"})))
    assert _submit(job, base_url) == ExitCode.OK
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    assert "requests: 6 (1 errored runs, 0 never came back)" in capsys.readouterr().out
