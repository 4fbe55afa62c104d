"""The aggregator reads a request sent with ``n`` as one run per choice, usage shared out."""

from __future__ import annotations

from pathlib import Path

from kyro._transcript_index import IndexEntry
from kyro._verdicts.aggregate import Aggregator
from kyro.provider import ResultError, ResultLine, Usage

OK = '{"status": "SUCCESS", "root_cause": "fine"}'
BAD = '{"status": "ERROR", "root_cause": "wrong"}'
EXPIRED = ResultError(code="batch_expired", message="expired", retryable=True)


def _agg(tmp_path: Path, transcripts: int = 1) -> Aggregator:
    return Aggregator(
        tmp_path / "work", judges=("tone",), runs=3, transcripts=transcripts, samples=3
    )


def _index(n: int) -> list[IndexEntry]:
    return [IndexEntry(index=i, source=f"inline:{i}") for i in range(n)]


def test_choices_are_runs_voted_with_usage_counted_once(tmp_path: Path) -> None:
    """Three choices are runs 0–2, voted 2–1; the request's usage is split, summing exactly."""
    usage = Usage(input_tokens=100, output_tokens=31, total_tokens=131, cached_input_tokens=10)
    line = ResultLine(custom_id="t0-j0-r0", ok=True, content=OK, usage=usage, choices=(OK, BAD, OK))
    with _agg(tmp_path) as agg:
        agg.add(line)
        assert list(agg.retryable()) == []
        result = agg.finish(_index(1), tmp_path / "results.jsonl", job_id="j")
    (evaluation,) = result.evaluations
    verdict = evaluation.verdicts["tone"]
    assert verdict.status == "SUCCESS"
    assert verdict.votes == {"SUCCESS": 2, "ERROR": 1, "NA": 0, "ERRORED": 0}
    assert [run.status for run in verdict.runs] == ["SUCCESS", "ERROR", "SUCCESS"]
    assert [run.usage.input_tokens for run in verdict.runs if run.usage] == [34, 33, 33]
    assert result.usage == usage
    assert result.counts.requests == 3


def test_a_failed_sample_request_fails_each_run_and_one_run_is_resent(tmp_path: Path) -> None:
    """An expired n-request marks runs 0–2 retryable; a resent run 1 alone fills only run 1."""
    with _agg(tmp_path) as agg:
        agg.add(ResultLine(custom_id="t0-j0-r0", ok=False, error=EXPIRED))
        assert list(agg.retryable()) == ["t0-j0-r0", "t0-j0-r1", "t0-j0-r2"]
        agg.add(ResultLine(custom_id="t0-j0-r1", ok=True, content=BAD))
        assert list(agg.retryable()) == ["t0-j0-r0", "t0-j0-r2"]
        # A resent run 0 that fails again does not undo run 1's reply.
        agg.add(ResultLine(custom_id="t0-j0-r0", ok=False, error=EXPIRED))
        assert list(agg.retryable()) == ["t0-j0-r0", "t0-j0-r2"]


def test_extra_choices_beyond_the_runs_are_ignored(tmp_path: Path) -> None:
    """A reply with more choices than runs left keeps only the runs the job has."""
    line = ResultLine(custom_id="t0-j0-r2", ok=True, content=OK, choices=(OK, BAD, BAD))
    with _agg(tmp_path) as agg:
        agg.add(line)
        assert list(agg.retryable()) == ["t0-j0-r0", "t0-j0-r1"]
