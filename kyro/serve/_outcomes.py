"""A BatchJudge result read as the service's item outcomes: evaluator name, score, justification.

Per evaluator (one judge of the config) on one item:

* ``score`` is the judge's own 0–1 score when it gave one (the mean over the runs that gave
  one), else 1.0 for SUCCESS and 0.0 for ERROR; NA has no score (null);
* ``justification`` is the verdict's root cause (a judge may write it as ``justification``).

An item is ``completed`` when every evaluator reached a verdict, else ``failed``, with an
error naming the evaluator and why (the reply was not a verdict, the request failed, too few
valid runs); the evaluators that did reach a verdict still appear in ``evaluator_results``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kyro import BatchRunResult, JudgeVerdict, TranscriptEvaluation
from kyro.serve._records import EvaluatorResult, ItemError, ItemOutcome

__all__ = ["evaluator_result", "failed_outcome", "outcomes_of", "score_of"]


def score_of(verdict: JudgeVerdict) -> float | None:
    """The evaluator's score (see the module docstring).

    Example::

        score_of(JudgeVerdict(judge="tone", status="ERROR", votes={"ERROR": 1}))   # 0.0
    """
    if verdict.status == "NA" or verdict.status == "ERRORED":
        return None
    own = [r.score for r in verdict.runs if r.valid and r.score is not None]
    if own:
        return min(1.0, max(0.0, sum(own) / len(own)))
    return 1.0 if verdict.status == "SUCCESS" else 0.0


def evaluator_result(name: str, verdict: JudgeVerdict) -> EvaluatorResult:
    """One evaluator's result from its verdict."""
    return EvaluatorResult(
        evaluator_name=name,
        score=score_of(verdict),
        justification=verdict.root_cause,
        status=verdict.status,
    )


def failed_outcome(index: int, code: str, message: str) -> ItemOutcome:
    """An item with no result at all."""
    return ItemOutcome(index=index, status="failed", error=ItemError(code=code, message=message))


def outcomes_of(
    result: BatchRunResult | None,
    indices: range,
    evaluators: Sequence[str],
    missing_code: str,
    missing_message: str,
) -> list[ItemOutcome]:
    """One outcome per index of the group; an item the result lacks is failed as ``missing``."""
    found: dict[int, ItemOutcome] = {}
    if result is not None:
        for evaluation in result.evaluations:
            if 0 <= evaluation.index < len(indices):
                index = indices[evaluation.index]
                found[index] = _outcome(index, evaluation, evaluators)
    return [
        found.get(i) or failed_outcome(i, missing_code, f"{missing_message} for this item")
        for i in indices
    ]


def _outcome(
    index: int, evaluation: TranscriptEvaluation, evaluators: Sequence[str]
) -> ItemOutcome:
    results: list[EvaluatorResult] = []
    problems: list[str] = []
    for name in evaluators:
        verdict = evaluation.verdicts.get(name)
        if verdict is None:
            problems.append(f"{name}: no verdict")
            continue
        if verdict.status == "ERRORED":
            problems.append(f"{name}: {_why(verdict)}")
            continue
        results.append(evaluator_result(name, verdict))
    if not problems:
        return ItemOutcome(index=index, status="completed", evaluator_results=tuple(results))
    code = "evaluator_failed"
    return ItemOutcome(
        index=index,
        status="failed",
        evaluator_results=tuple(results),
        error=ItemError(code=code, message="; ".join(problems)),
    )


def _why(verdict: JudgeVerdict) -> str:
    """The first run's own error (the root cause), else the vote's (a tie, too few runs)."""
    for run in verdict.runs:
        if run.error is not None:
            return f"{run.error.code}: {run.error.message}"
    if verdict.error is not None:
        return f"{verdict.error.code}: {verdict.error.message}"
    return "no valid verdict"
