"""Provider faults: a flaky control plane, and every kind of failed or partial batch.

Guarantees: under 30 % of API calls failing (429 with Retry-After, 500, reset connections)
a job still completes with one batch per shard; every provider-side failure is classified
(the job's error status, each errored run's code), no request is silently dropped, and the
retryable ones are resubmitted until every verdict is in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro import BatchJobError, BatchRunResult
from tests.support.scenarios import (
    CLASSIFIED,
    RETRIED,
    EmulatorProcess,
    Job,
    classified_scenario,
    fault_rate_cli_scenario,
    fault_rate_scenario,
    run_kyro,
)

pytestmark = pytest.mark.slow  # the fault matrix, with CLI child processes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_library_completes_under_thirty_percent_faults(tmp_path: Path, seed: int) -> None:
    """BatchJudge with a fast retry policy completes a job while 30 % of calls fail."""
    outcome = fault_rate_scenario(tmp_path / "job", seed)
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0


def test_cli_completes_under_thirty_percent_faults(tmp_path: Path) -> None:
    """``submit`` then ``check --wait --interval 0.05`` complete while 30 % of calls fail."""
    outcome = fault_rate_cli_scenario(tmp_path / "job", seed=11)
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0


def _codes(result: BatchRunResult) -> dict[str, int]:
    codes: dict[str, int] = {}
    for evaluation in result.evaluations:
        for verdict in evaluation.verdicts.values():
            for run in verdict.runs:
                if run.error is not None:
                    codes[run.error.code] = codes.get(run.error.code, 0) + 1
    return codes


EXPECTED = {
    # kind: (job outcome: "complete" or the BatchJobError status, run error codes left over)
    "line_errors": ("complete", {}),
    "line_http_400": ("complete", {"invalid_request_error": 3}),
    "malformed": ("complete", {"unparseable_reply": 3}),
    "missing": ("complete", {}),
    "failed": ("failed", None),
    "token_limit": ("complete", {}),
    "expired": ("expired", {"batch_expired": 4}),
    "expired_resubmitted": ("complete", {}),
    "cancelled": ("cancelled", None),
}


@pytest.mark.parametrize("kind", CLASSIFIED)
def test_provider_failures_are_classified_and_accounted(tmp_path: Path, kind: str) -> None:
    """Each failure kind ends as expected, with every request in the results counts."""
    outcome = classified_scenario(tmp_path / "job", kind)
    job_end, codes = EXPECTED[kind]
    result = outcome.result
    if job_end == "complete":
        assert isinstance(result, BatchRunResult), result
        final = result
    else:
        assert isinstance(result, BatchJobError)
        assert result.status == job_end
        assert isinstance(result.result, BatchRunResult)
        final = result.result
    assert outcome.accounted == final.counts.requests == 12  # nothing silently dropped
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0
    if codes is not None:
        assert _codes(final) == codes
    if kind in RETRIED:
        assert final.counts.errored_runs == 0
        assert len(outcome.batches) > 2  # the failed requests went out again
    elif kind in ("line_http_400", "malformed"):
        assert len(outcome.batches) == 2  # not worth retrying: never resubmitted
        assert final.counts.errored_runs == 3


def test_failed_batch_reports_its_validation_errors(tmp_path: Path) -> None:
    """A batch ``failed`` with ``errors.data`` raises BatchJobError carrying those errors."""
    outcome = classified_scenario(tmp_path / "job", "failed")
    assert isinstance(outcome.result, BatchJobError)
    assert {e.code for e in outcome.result.errors} == {"too_many_tasks"}
    assert outcome.errored_runs == 12


def test_cli_exit_code_for_a_failed_job(tmp_path: Path) -> None:
    """``check`` exits 4 (JOB_FAILED) for a failed batch, naming the provider's error code."""
    job = Job(tmp_path / "job", "cli-failed")
    with EmulatorProcess("--max-requests", "2") as emulator:
        assert run_kyro(job.submit_args(), url=emulator.url).returncode == 0
        checked = run_kyro(
            job.check_args("--output", str(tmp_path / "out.jsonl")), url=emulator.url
        )
    assert checked.returncode == 4, checked.stderr
    assert "too_many_tasks" in checked.stdout
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == job.transcripts
    assert all(json.loads(line)["status"] == "ERRORED" for line in lines)
