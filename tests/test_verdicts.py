"""Judge replies become verdicts, or errored runs that keep the raw text."""

from __future__ import annotations

import pytest

from kyro import RunVerdict
from kyro._verdicts.vote import parse_reply, vote
from kyro.provider import Usage


def test_plain_json_reply_gives_every_field() -> None:
    """A JSON object with all four fields is parsed into a valid run verdict."""
    text = '{"status": "ERROR", "root_cause": "no source", "thinking": "looked", "score": 0.25}'
    verdict = parse_reply(text, run=2)
    assert verdict == RunVerdict(
        run=2, status="ERROR", root_cause="no source", thinking="looked", score=0.25
    )
    assert verdict.valid
    assert verdict.raw is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [("SUCCESS", "SUCCESS"), ("success", "SUCCESS"), (" Error ", "ERROR"), ("na", "NA")],
)
def test_status_is_matched_case_insensitively(word: str, expected: str) -> None:
    """The three status words are accepted in any case and recorded in upper case."""
    assert parse_reply(f'{{"status": "{word}"}}').status == expected


def test_optional_fields_may_be_absent_or_null() -> None:
    """root_cause, thinking and score are optional and accept null."""
    verdict = parse_reply('{"status": "NA", "root_cause": null, "score": null}')
    assert (verdict.status, verdict.root_cause, verdict.thinking, verdict.score) == (
        "NA",
        None,
        None,
        None,
    )


def test_integer_score_and_unknown_keys_are_accepted() -> None:
    """An integer score is a number and extra keys are ignored."""
    verdict = parse_reply('{"status": "SUCCESS", "score": 3, "confidence": "high"}')
    assert verdict.status == "SUCCESS"
    assert verdict.score == 3.0


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"status": "SUCCESS", "root_cause": "ok"}\n```',
        '```\n{"status": "SUCCESS", "root_cause": "ok"}\n```',
        '  \n```JSON\n{"status": "SUCCESS", "root_cause": "ok"}\n```\n\n',
        '\n  {"status": "SUCCESS", "root_cause": "ok"}  \n',
    ],
)
def test_code_fences_and_surrounding_whitespace_are_accepted(text: str) -> None:
    """JSON inside a plain or json-tagged code fence, with whitespace around, is a verdict."""
    verdict = parse_reply(text)
    assert (verdict.status, verdict.root_cause, verdict.error) == ("SUCCESS", "ok", None)


@pytest.mark.parametrize(
    "text",
    [
        "The transcript looks fine to me.",
        '{"status": "SUCC',
        '{"status": "SUCCESS", "root_cause": "cut off here',
        "",
        "   ",
        '```json\n{"status": "SUCCESS"}',
        '```python\n{"status": "SUCCESS"}\n```',
        'Verdict: ```json\n{"status": "SUCCESS"}\n```',
        '```json\n{"status": "SUCCESS",\n```',
    ],
)
def test_text_that_is_not_json_is_unparseable(text: str) -> None:
    """Prose, truncated JSON, empty text and odd fences give an unparseable_reply run."""
    verdict = parse_reply(text, run=1)
    assert verdict.status == "ERRORED"
    assert not verdict.valid
    assert verdict.error is not None
    assert verdict.error.code == "unparseable_reply"
    assert verdict.raw == text
    assert verdict.run == 1


def test_a_missing_reply_is_unparseable() -> None:
    """A success line with no content at all is an errored run."""
    verdict = parse_reply(None)
    assert verdict.status == "ERRORED"
    assert verdict.error is not None
    assert verdict.error.code == "unparseable_reply"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('["SUCCESS"]', "object"),
        ('"SUCCESS"', "object"),
        ("42", "object"),
        ('{"root_cause": "no status"}', "status"),
        ('{"status": "PASS"}', "PASS"),
        ('{"status": "N/A"}', "N/A"),
        ('{"status": 1}', "status"),
        ('{"status": "SUCCESS", "score": "high"}', "score"),
        ('{"status": "SUCCESS", "score": true}', "score"),
        ('{"status": "ERROR", "root_cause": ["a", "b"]}', "root_cause"),
        ('```json\n{"status": "MAYBE"}\n```', "MAYBE"),
    ],
)
def test_json_that_is_not_a_verdict_is_invalid(text: str, fragment: str) -> None:
    """JSON that is not an object, lacks a valid status or has a mistyped field is invalid."""
    verdict = parse_reply(text)
    assert verdict.status == "ERRORED"
    assert verdict.error is not None
    assert verdict.error.code == "invalid_verdict"
    assert fragment in verdict.error.message
    assert verdict.raw == text


def test_usage_is_kept_on_valid_and_errored_runs() -> None:
    """The request's token usage travels with the run, parsed or not."""
    usage = Usage(input_tokens=10, output_tokens=2, total_tokens=12)
    assert parse_reply('{"status": "NA"}', usage=usage).usage == usage
    assert parse_reply("nope", usage=usage).usage == usage


def test_errors_are_not_retryable() -> None:
    """A reply the judge did give is never marked worth resending unchanged."""
    error = parse_reply("nope").error
    assert error is not None
    assert error.retryable is False


def test_justification_is_read_as_the_root_cause() -> None:
    """A reply's `justification` is its explanation when it gives no `root_cause`."""
    verdict = parse_reply('{"status": "SUCCESS", "justification": "cites the policy"}')
    assert (verdict.status, verdict.root_cause) == ("SUCCESS", "cites the policy")
    both = parse_reply('{"status": "ERROR", "root_cause": "rc", "justification": "j"}')
    assert both.root_cause == "rc"


@pytest.mark.parametrize(
    ("score", "threshold", "expected"),
    [(0.5, 0.5, "SUCCESS"), (0.49, 0.5, "ERROR"), (0.8, 0.9, "ERROR"), (0, 0.0, "SUCCESS")],
)
def test_score_without_status_passes_at_the_threshold(
    score: float, threshold: float, expected: str
) -> None:
    """A numeric score and no status is SUCCESS at or above pass_threshold, else ERROR."""
    text = f'{{"score": {score}, "justification": "graded"}}'
    verdict = parse_reply(text, pass_threshold=threshold)
    assert (verdict.status, verdict.score, verdict.root_cause) == (expected, score, "graded")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"score": 7}', "score 7 without a status must lie between 0 and 1"),
        ('{"justification": "x"}', "neither a status (SUCCESS, ERROR, NA) nor a score"),
        ('{"score": true}', "not a verdict"),
    ],
)
def test_scores_that_decide_nothing_are_invalid(text: str, words: str) -> None:
    """An out-of-range score without status, or neither field, is an invalid_verdict run."""
    verdict = parse_reply(text)
    assert (verdict.status, verdict.raw) == ("ERRORED", text)
    assert verdict.error is not None
    assert verdict.error.code == "invalid_verdict"
    assert words in verdict.error.message


def test_judge_verdict_keeps_the_mean_score_of_valid_runs() -> None:
    """The voted verdict carries the mean score of its valid runs that gave one."""
    runs = [
        parse_reply('{"score": 0.9}', run=0),
        parse_reply('{"status": "SUCCESS", "score": 0.6}', run=1),
        parse_reply('{"status": "SUCCESS"}', run=2),
        parse_reply("not json", run=3),
    ]
    verdict = vote("a", runs)
    assert verdict.status == "SUCCESS"
    assert verdict.score == pytest.approx(0.75)
    assert vote("a", [parse_reply('{"status": "NA"}')]).score is None
