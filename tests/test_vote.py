"""Majority vote over a judge's runs: counts, ties, the minimum of valid runs, NA."""

from __future__ import annotations

import msgspec
import pytest

from kyro import RunVerdict, VoteSettings
from kyro._types import ResultError
from kyro._verdicts.vote import vote


def _runs(*statuses: str) -> list[RunVerdict]:
    runs = []
    for i, status in enumerate(statuses):
        if status == "ERRORED":
            error = ResultError(code="unparseable_reply", message="not JSON")
            runs.append(RunVerdict(run=i, status="ERRORED", raw="x", error=error))
        else:
            runs.append(RunVerdict(run=i, status=status, root_cause=f"{status.lower()} {i}"))  # type: ignore[arg-type]
    return runs


def test_majority_wins_and_counts_are_kept() -> None:
    """Two SUCCESS against one ERROR is SUCCESS, with every count recorded."""
    verdict = vote("relevance", _runs("SUCCESS", "ERROR", "SUCCESS"))
    assert verdict.judge == "relevance"
    assert verdict.status == "SUCCESS"
    assert verdict.votes == {"SUCCESS": 2, "ERROR": 1, "NA": 0, "ERRORED": 0}
    assert verdict.error is None


def test_root_cause_comes_from_the_first_agreeing_run() -> None:
    """The root cause is the lowest-index run that agrees with the majority."""
    verdict = vote("j", _runs("SUCCESS", "ERROR", "ERROR"))
    assert verdict.status == "ERROR"
    assert verdict.root_cause == "error 1"


def test_runs_are_kept_in_run_order() -> None:
    """Runs given in any order come back sorted by run index."""
    runs = _runs("SUCCESS", "ERROR", "NA")
    verdict = vote("j", list(reversed(runs)))
    assert [r.run for r in verdict.runs] == [0, 1, 2]
    assert verdict.runs == tuple(runs)


def test_na_is_a_vote_like_the_others() -> None:
    """NA can win a majority."""
    verdict = vote("j", _runs("NA", "NA", "SUCCESS"))
    assert verdict.status == "NA"
    assert verdict.passed


def test_errored_runs_do_not_vote() -> None:
    """An errored run is counted but takes no part in the majority."""
    verdict = vote("j", _runs("ERRORED", "ERRORED", "ERROR"))
    assert verdict.status == "ERROR"
    assert verdict.votes == {"SUCCESS": 0, "ERROR": 1, "NA": 0, "ERRORED": 2}


@pytest.mark.parametrize(
    ("statuses", "rule", "expected"),
    [
        (("SUCCESS", "ERROR"), "error", "ERROR"),
        (("SUCCESS", "NA"), "error", "NA"),
        (("ERROR", "NA"), "error", "ERROR"),
        (("SUCCESS", "ERROR", "NA"), "error", "ERROR"),
        (("SUCCESS", "ERROR"), "success", "SUCCESS"),
        (("ERROR", "NA"), "success", "NA"),
        (("SUCCESS", "NA"), "success", "SUCCESS"),
        (("SUCCESS", "ERROR", "NA"), "success", "SUCCESS"),
    ],
)
def test_tie_rules_pick_a_status(statuses: tuple[str, ...], rule: str, expected: str) -> None:
    """The "error" rule prefers ERROR, NA, SUCCESS; the "success" rule SUCCESS, NA, ERROR."""
    verdict = vote("j", _runs(*statuses), VoteSettings(tie=rule))  # type: ignore[arg-type]
    assert verdict.status == expected
    assert verdict.root_cause is not None
    assert verdict.root_cause.startswith(expected.lower())


def test_default_tie_rule_is_pessimistic() -> None:
    """With default settings a SUCCESS/ERROR tie is ERROR."""
    assert VoteSettings().tie == "error"
    assert vote("j", _runs("ERROR", "SUCCESS")).status == "ERROR"


def test_errored_tie_rule_makes_a_tie_an_errored_verdict() -> None:
    """The "errored" rule refuses to pick: the verdict is ERRORED with code tie."""
    verdict = vote("j", _runs("SUCCESS", "ERROR", "ERRORED"), VoteSettings(tie="errored"))
    assert verdict.status == "ERRORED"
    assert verdict.error is not None
    assert verdict.error.code == "tie"
    assert "SUCCESS and ERROR" in verdict.error.message
    assert verdict.root_cause is None


def test_too_few_valid_runs_is_errored() -> None:
    """Fewer valid runs than min_valid_votes gives an ERRORED verdict that says why."""
    verdict = vote("j", _runs("SUCCESS", "ERRORED", "ERRORED"), VoteSettings(min_valid_votes=2))
    assert verdict.status == "ERRORED"
    assert verdict.error is not None
    assert verdict.error.code == "too_few_valid_runs"
    assert "1 valid run(s) of 3, 2 needed" in verdict.error.message
    assert verdict.votes["SUCCESS"] == 1


def test_no_valid_run_is_errored_by_default() -> None:
    """With the default minimum of one, a judge whose runs all errored is ERRORED."""
    verdict = vote("j", _runs("ERRORED"))
    assert verdict.status == "ERRORED"
    assert not verdict.passed


def test_settings_are_validated() -> None:
    """A minimum below one or an unknown tie rule is refused, also when decoded."""
    with pytest.raises(ValueError, match="min_valid_votes"):
        VoteSettings(min_valid_votes=0)
    with pytest.raises(msgspec.ValidationError, match="tie"):
        msgspec.convert({"tie": "coin"}, VoteSettings)


@pytest.mark.parametrize("status", ["SUCCESS", "ERROR", "NA"])
@pytest.mark.parametrize("score", [None, 0.75, -0.0, 3.0])
def test_one_valid_run_decides_alone(status: str, score: float | None) -> None:
    """A single valid run gives its own status, root cause and score, with one vote counted
    (a score of -0.0 comes out as 0.0, as a mean over one run does)."""
    run = RunVerdict(run=0, status=status, root_cause="why", score=score)  # type: ignore[arg-type]
    verdict = vote("judge", [run])
    assert verdict.status == status
    assert verdict.votes == {"SUCCESS": 0, "ERROR": 0, "NA": 0, "ERRORED": 0, status: 1}
    assert verdict.root_cause == "why"
    assert verdict.runs == (run,)
    assert verdict.error is None
    assert verdict.score == score
    if score is not None:
        assert str(verdict.score) == str(0.0 + score)
    assert vote("judge", [run], VoteSettings(min_valid_votes=2)).status == "ERRORED"
