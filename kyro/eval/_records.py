"""The records an eval produces: one score, one item's result, and the run's statistics.

Everything here is a frozen ``msgspec.Struct``: item results are written one JSON line each to
the results file as they finish, and read back lazily (see :class:`~kyro.eval.BatchEvalResult`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "BatchEvalItemResult",
    "BatchEvalStats",
    "DurationStats",
    "EvalStatus",
    "Score",
    "ScorerResultSummary",
    "ScorerStats",
]

EvalStatus = Literal["completed", "partial_failure", "failed"]


class Score(msgspec.Struct, frozen=True, kw_only=True):
    """What a scorer may return: a score in 0–1, whether it passed, and why.

    ``passed`` defaults to ``score >= 0.5`` when left out.

    Example::

        def polite(output, expected, input):
            return Score(score=0.8, explanation="thanks the user")
    """

    score: float
    passed: bool | None = None
    explanation: str | None = None


class ScorerResultSummary(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One scorer's verdict on one output.

    ``error`` is set (and ``passed`` is False, ``score`` None) when the scorer itself failed —
    it raised, or its LLM judge gave no valid verdict; the item is still scored by the others.

    Example::

        ScorerResultSummary(scorer="exact_match", score=1.0, passed=True)
    """

    scorer: str
    score: float | None = None
    passed: bool = False
    explanation: str | None = None
    error: str | None = None


class BatchEvalItemResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One item: the component's output, every score, and whether the item passed.

    ``passed`` is True when the component ran and every scorer passed. ``error`` says why the
    component produced no output (it raised, or timed out); such an item has no scores.
    ``duration_ms`` is the component's own run time.

    Example::

        item = result.results[0]
        item.get_score("exact_match").passed
    """

    index: int
    run_id: str
    output: Any = None
    scores: tuple[ScorerResultSummary, ...] = ()
    passed: bool = False
    duration_ms: float = 0.0
    item_id: str | None = None
    error: str | None = None

    def get_score(self, name: str) -> ScorerResultSummary | None:
        """The score of the scorer called ``name``, or None if it did not score this item."""
        for score in self.scores:
            if score.scorer == name:
                return score
        return None


class ScorerStats(msgspec.Struct, frozen=True, kw_only=True):
    """One scorer over the run: how many it scored, passed and errored, and its mean score.

    ``pass_rate`` is passed / scored (errored scores count as scored and not passed);
    ``mean_score`` averages the scores that exist (None when there are none).
    """

    scored: int
    passed: int
    errored: int
    pass_rate: float
    mean_score: float | None


class DurationStats(msgspec.Struct, frozen=True, kw_only=True):
    """Component run times in milliseconds over the items that ran (errored ones included)."""

    mean: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0


class BatchEvalStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts, per-scorer pass rates and mean scores, and duration percentiles of a run.

    ``total`` = ``passed`` + ``failed`` (ran, some scorer did not pass) + ``errored`` (the
    component raised or timed out). ``wall_seconds`` is the whole run, judges included
    (for a job of :func:`~kyro.eval.submit_eval`: the time spent running the component).

    Example::

        result.stats.scorers["exact_match"].pass_rate
        result.stats.duration_ms.p95
    """

    total: int
    passed: int
    failed: int
    errored: int
    scorers: dict[str, ScorerStats]
    duration_ms: DurationStats
    wall_seconds: float = 0.0


def errored_score(name: str, error: str) -> ScorerResultSummary:
    """The score of a scorer that failed with ``error``."""
    return ScorerResultSummary(scorer=name, passed=False, error=error)


def as_summary(name: str, value: Any, threshold: float = 0.5) -> ScorerResultSummary:
    """A scorer's return value (bool, number or :class:`Score`) as a summary.

    Anything else is an errored score that says what a scorer must return.
    """
    if isinstance(value, bool):
        return ScorerResultSummary(scorer=name, score=1.0 if value else 0.0, passed=value)
    if isinstance(value, Score):
        passed = value.passed if value.passed is not None else value.score >= threshold
        return ScorerResultSummary(
            scorer=name, score=float(value.score), passed=passed, explanation=value.explanation
        )
    if isinstance(value, int | float) and value == value:  # NaN is not a score
        return ScorerResultSummary(scorer=name, score=float(value), passed=value >= threshold)
    return errored_score(
        name,
        f"the scorer returned {type(value).__name__} {value!r:.80}; return a bool, a number "
        "in 0–1 or a kyro.eval.Score",
    )
