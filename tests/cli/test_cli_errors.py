"""The typed errors keep the command line's exit codes: each reaches the branch of its base."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro.cli import ExitCode, main
from kyro_openai.testing import Emulator, HttpErrorFault


def test_check_with_no_job_exits_2_naming_the_state_file(
    job: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """check with nothing submitted (NoJobError) exits 2, as a BatchValidationError did."""
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "judges.batch-state.json: no state for a job of judges.yml" in err
    assert "run submit first" in err


def test_an_unknown_provider_exits_2_listing_the_available_ones(
    job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--provider with a name no package registers (ProviderNotFoundError) exits 2."""
    data = str(job.parent / "data.jsonl")
    assert main(["submit", str(job), data, "--provider", "opnai"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown provider 'opnai'" in err
    assert "openai" in err.split("available providers are", 1)[1]
    assert not (job.parent / ".kyro" / "judges.batch-state.json").exists()


def test_a_rejected_key_at_submit_exits_5(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 while submitting (AuthenticationError) exits 5, as a ProviderError did."""
    emulator.faults.add(HttpErrorFault(status=401, code="invalid_api_key", times=None))
    data = str(job.parent / "data.jsonl")
    assert main(["submit", str(job), data, "--base-url", base_url, "-q"]) == ExitCode.PROVIDER
    err = capsys.readouterr().err
    assert "provider error:" in err
    assert "the API key was rejected" in err
    assert "HTTP 401" in err
