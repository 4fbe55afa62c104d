"""Judge replies to verdicts: parse one reply, then majority-vote a judge's runs.

A reply is a JSON object::

    {"status": "SUCCESS", "root_cause": "...", "thinking": "...", "score": 0.9}

* ``status``: ``SUCCESS``, ``ERROR`` or ``NA``, matched case-insensitively and ignoring
  surrounding spaces (``"success"`` is recorded as ``SUCCESS``); any other value is an
  ``invalid_verdict``.
* A reply with a numeric ``score`` and no ``status`` is a verdict by the judge's
  ``pass_threshold`` (default 0.5): ``SUCCESS`` when ``score ≥ pass_threshold``, else
  ``ERROR``. Such a score must lie between 0 and 1. With a status, the status decides.
* ``root_cause`` (or, when it is absent, ``justification``) and ``thinking`` are optional
  strings (or null); ``score`` an optional number (or null). A present field of the wrong
  type is an ``invalid_verdict``; unknown keys are ignored. A reply with neither status nor
  score is an ``invalid_verdict``.
* The object may be wrapped in one Markdown code fence (three backticks, optionally tagged
  ``json``) with only whitespace around it. Prose around the JSON is not accepted.
* Anything else — not JSON, truncated JSON, JSON nested deeper than a verdict can be, an empty
  reply — is an ``unparseable_reply``; a reply longer than :data:`MAX_REPLY_CHARS` (1,000,000
  characters) is a ``reply_too_large`` without being parsed.

Either error gives an ``ERRORED`` run that keeps the raw text — its first
:data:`RAW_KEEP_CHARS` (65,536) characters, followed by a note of the full length — and never
counts as a vote. No reply, whatever it holds, makes :func:`parse_reply` raise. A judge's
verdict keeps the mean ``score`` of its valid runs that gave one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import msgspec

from kyro._types import ResultError, Usage
from kyro._verdicts.result_types import JudgeVerdict, RunVerdict, VerdictStatus

__all__ = [
    "DEFAULT_PASS_THRESHOLD",
    "MAX_REPLY_CHARS",
    "RAW_KEEP_CHARS",
    "TieRule",
    "VoteSettings",
    "parse_reply",
    "vote",
    "vote_sorted",
]

MAX_REPLY_CHARS = 1_000_000
"""A reply longer than this is a ``reply_too_large`` errored run, never parsed."""
RAW_KEEP_CHARS = 65_536
"""How much of an errored run's reply is kept in ``raw`` (the rest is cut, its length noted)."""

TieRule = Literal["error", "success", "errored"]
_Vote = Literal["SUCCESS", "ERROR", "NA"]

_STATUSES: dict[str, _Vote] = {"SUCCESS": "SUCCESS", "ERROR": "ERROR", "NA": "NA"}
# A verdict's vote counts start as a copy of these (copying a small dict costs a third of
# building it key by key, and the keys keep their order).
_NO_VOTES = {"SUCCESS": 0, "ERROR": 0, "NA": 0, "ERRORED": 0}
_ONE_VOTE = {status: {**_NO_VOTES, status: 1} for status in _STATUSES}
_TIE_ORDER: dict[str, tuple[_Vote, ...]] = {
    "error": ("ERROR", "NA", "SUCCESS"),
    "success": ("SUCCESS", "NA", "ERROR"),
}


DEFAULT_PASS_THRESHOLD = 0.5
"""A reply's score passes at or above this, unless the judge sets ``pass_threshold``."""


class _Reply(msgspec.Struct):
    status: str | None = None
    root_cause: str | None = None
    justification: str | None = None
    thinking: str | None = None
    score: float | None = None


_decode_reply = msgspec.json.Decoder(_Reply).decode


def _unfence(text: str) -> str | None:
    """The body of a reply that is one Markdown code fence, or None."""
    stripped = text.strip()
    if not (stripped.startswith("```") and stripped.endswith("```")) or len(stripped) < 6:
        return None
    first_newline = stripped.find("\n")
    if first_newline < 0:
        return None
    tag = stripped[3:first_newline].strip().lower()
    if tag not in ("", "json"):
        return None
    return stripped[first_newline + 1 : -3]


def _errored(run: int, code: str, message: str, raw: str | None, usage: Usage | None) -> RunVerdict:
    error = ResultError(code=code, message=message)
    if raw is not None and len(raw) > RAW_KEEP_CHARS:
        raw = f"{raw[:RAW_KEEP_CHARS]}… [cut by kyro: {len(raw):,} characters in all]"
    return RunVerdict(run=run, status="ERRORED", raw=raw, usage=usage, error=error)


def _decode(text: str) -> _Reply | tuple[str, str]:
    """The reply object, or ``(code, message)`` saying why ``text`` is not one."""
    try:
        return _decode_reply(text)
    except msgspec.ValidationError as exc:
        return "invalid_verdict", f"not a verdict: {exc}"
    except msgspec.DecodeError as exc:
        return "unparseable_reply", f"the reply is not JSON: {exc}"
    except RecursionError:
        # msgspec recurses per nesting level: a reply a transcript steered into ~1,000
        # nested brackets must cost one run, not the job.
        return "unparseable_reply", "the reply is JSON nested too deeply to be a verdict"


def parse_reply(
    text: str | None,
    *,
    run: int = 0,
    usage: Usage | None = None,
    pass_threshold: float = DEFAULT_PASS_THRESHOLD,
) -> RunVerdict:
    """Parse one judge reply into a :class:`RunVerdict` (see the module docstring for the rules).

    Never raises: a reply that is not a verdict becomes an ``ERRORED`` run whose ``error``
    says why and whose ``raw`` keeps the text.

    Example::

        parse_reply('{"status": "success", "root_cause": "cites the policy"}').status
        # 'SUCCESS'
        parse_reply("I think it is fine").error.code
        # 'unparseable_reply'
    """
    if text and len(text) <= MAX_REPLY_CHARS:
        # The common reply — a JSON object with a status in capitals and a finite score or
        # none — in one decode; anything else takes the rules below from the start.
        try:
            fast = _decode_reply(text)
        except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
            pass
        else:
            given = _STATUSES.get(fast.status) if fast.status is not None else None
            if given is not None and (fast.score is None or math.isfinite(fast.score)):
                return RunVerdict(
                    run=run,
                    status=given,
                    root_cause=fast.root_cause
                    if fast.root_cause is not None
                    else fast.justification,
                    thinking=fast.thinking,
                    score=fast.score,
                    usage=usage,
                )
    if not text:
        return _errored(run, "unparseable_reply", "the reply is empty", text, usage)
    if len(text) > MAX_REPLY_CHARS:
        message = (
            f"the reply has {len(text):,} characters, more than the {MAX_REPLY_CHARS:,} a "
            "verdict may hold"
        )
        return _errored(run, "reply_too_large", message, text, usage)
    reply = _decode(text)
    if isinstance(reply, tuple) and reply[0] == "unparseable_reply":
        body = _unfence(text)
        if body is not None:
            reply = _decode(body)
            if isinstance(reply, tuple) and reply[0] == "unparseable_reply":
                reply = reply[0], reply[1].replace("the reply", "the fenced reply", 1)
    if isinstance(reply, tuple):
        return _errored(run, reply[0], reply[1], text, usage)
    score = reply.score
    if score is not None and not math.isfinite(score):
        return _errored(run, "invalid_verdict", "score must be a finite number", text, usage)
    status: _Vote | None
    if reply.status is not None:
        status = _STATUSES.get(reply.status) or _STATUSES.get(reply.status.strip().upper())
        if status is None:
            message = f"status {reply.status!r} is not one of SUCCESS, ERROR, NA"
            return _errored(run, "invalid_verdict", message, text, usage)
    elif score is None:
        message = "the reply has neither a status (SUCCESS, ERROR, NA) nor a score"
        return _errored(run, "invalid_verdict", message, text, usage)
    elif not 0.0 <= score <= 1.0:
        message = f"score {score:g} without a status must lie between 0 and 1"
        return _errored(run, "invalid_verdict", message, text, usage)
    else:
        status = "SUCCESS" if score >= pass_threshold else "ERROR"
    root_cause = reply.root_cause if reply.root_cause is not None else reply.justification
    return RunVerdict(
        run=run,
        status=status,
        root_cause=root_cause,
        thinking=reply.thinking,
        score=score,
        usage=usage,
    )


class VoteSettings(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How a judge's runs become one verdict.

    * ``min_valid_votes`` (default 1): fewer valid runs than this makes the judge's verdict
      ``ERRORED`` (``too_few_valid_runs``) — counted separately, never hidden.
    * ``tie`` (default ``"error"``) settles a tie for the most votes. ``NA`` is a vote like the
      others. ``"error"`` is pessimistic: among the tied statuses the first of ERROR, NA,
      SUCCESS wins (SUCCESS vs ERROR → ERROR; SUCCESS vs NA → NA). ``"success"`` is
      optimistic: SUCCESS, then NA, then ERROR. ``"errored"`` makes any tie an ``ERRORED``
      verdict (``tie``), for those who want inconclusive judges looked at.

    Example::

        VoteSettings(min_valid_votes=2, tie="errored")
    """

    min_valid_votes: int = 1
    tie: TieRule = "error"

    def __post_init__(self) -> None:
        if self.min_valid_votes < 1:
            raise ValueError(f"min_valid_votes must be at least 1, not {self.min_valid_votes}")
        if self.tie not in ("error", "success", "errored"):
            raise ValueError(f"tie must be 'error', 'success' or 'errored', not {self.tie!r}")


_DEFAULT_SETTINGS = VoteSettings()


def vote(
    judge: str, runs: Iterable[RunVerdict], settings: VoteSettings = _DEFAULT_SETTINGS
) -> JudgeVerdict:
    """Majority-vote one judge's runs on one transcript (see :class:`VoteSettings`).

    ``runs`` are kept in run-index order; ``root_cause`` comes from the first run that agrees
    with the majority.

    Example::

        runs = [parse_reply(r, run=i) for i, r in enumerate(replies)]
        vote("relevance", runs, VoteSettings(min_valid_votes=2)).status
    """
    return vote_sorted(judge, tuple(sorted(runs, key=_run_index)), settings)


def vote_sorted(
    judge: str, ordered: tuple[RunVerdict, ...], settings: VoteSettings
) -> JudgeVerdict:
    """:func:`vote` for runs already in run-index order (the aggregator's hot path)."""
    if len(ordered) == 1 and settings.min_valid_votes == 1:
        # One valid run decides alone: its status, root cause and score are the verdict's
        # (what the general count below gives, without building it).
        run = ordered[0]
        alone = run.status
        if alone != "ERRORED":
            return JudgeVerdict(
                judge=judge,
                status=alone,
                votes=_ONE_VOTE[alone].copy(),
                root_cause=run.root_cause,
                runs=ordered,
                score=None if run.score is None else 0.0 + run.score,
            )
    votes = _NO_VOTES.copy()
    scored = 0
    score_sum = 0.0
    for run in ordered:
        votes[run.status] += 1
        if run.score is not None:  # only valid runs carry a score
            scored += 1
            score_sum += run.score
    score = score_sum / scored if scored else None
    success, error, na = votes["SUCCESS"], votes["ERROR"], votes["NA"]
    valid = success + error + na
    status: VerdictStatus = "ERRORED"
    problem: ResultError | None = None
    root_cause: str | None = None
    if valid < settings.min_valid_votes:
        message = f"{valid} valid run(s) of {len(ordered)}, {settings.min_valid_votes} needed"
        problem = ResultError(code="too_few_valid_runs", message=message)
    # A clear majority is decided by comparisons alone (no list, no generator: this runs
    # once per judge and transcript); a tie goes by settings.tie.
    elif success > error and success > na:
        status = "SUCCESS"
    elif error > success and error > na:
        status = "ERROR"
    elif na > success and na > error:
        status = "NA"
    else:
        top = max(success, error, na)
        counted: tuple[tuple[_Vote, int], ...] = (
            ("SUCCESS", success),
            ("ERROR", error),
            ("NA", na),
        )
        tied = [name for name, n in counted if n == top]
        if settings.tie == "errored":
            message = f"tie between {' and '.join(tied)} ({top} vote(s) each)"
            problem = ResultError(code="tie", message=message)
        else:
            status = next(s for s in _TIE_ORDER[settings.tie] if s in tied)
    if status != "ERRORED":
        for run in ordered:  # the first run (by run index) that agrees with the majority
            if run.status == status:
                root_cause = run.root_cause
                break
    return JudgeVerdict(
        judge=judge,
        status=status,
        votes=votes,
        root_cause=root_cause,
        runs=ordered,
        error=problem,
        score=score,
    )


def _run_index(run: RunVerdict) -> int:
    return run.run
