"""Evaluations read as the service's item outcomes: evaluator name, score, justification.

Per evaluator (one judge of the config, or one step of a pipeline) on one item:

* ``score`` is the verdict's own score — the mean of the 0–1 scores its valid runs gave,
  which is also what decided a reply that had a score and no status (``score ≥
  pass_threshold`` passes) — when it has one within 0–1; else 1.0 for SUCCESS and 0.0 for
  ERROR; NA has no score (null);
* ``justification`` is the verdict's root cause (a judge may write it as ``justification``);
* ``status`` is the verdict (SUCCESS, ERROR, NA), or for a pipeline step that did not give
  one, ``SKIPPED`` or ``ERRORED`` (see below).

An item is ``completed`` when every evaluator reached a verdict, else ``failed``, with an
error naming the evaluator and why (the reply was not a verdict, the request failed, too few
valid runs); the evaluators that did reach a verdict still appear in ``evaluator_results``.

Pipelines: ``evaluator_results`` holds one entry per step that ran, in the config's order,
and one per step that was skipped:

* a SKIPPED step (a dependency did not pass) has ``score`` null, ``status`` ``SKIPPED`` and a
  justification naming the dependency (``skipped: dependency 'gate' ended ERROR``); it does
  not fail the item — the pipeline decided not to run it;
* a step that ran and gave no verdict fails the item, unless its ``on_failure`` fallback
  gave one: then it appears with ``score`` null, ``status`` ``ERRORED`` and a justification
  saying why and which step decided instead;
* a fallback that was not needed (its step passed) did not run and is left out;
* a step a batch job never reached (the job ended early) fails the item.
"""

from __future__ import annotations

from collections.abc import Sequence

from kyro import BatchRunResult, JudgeVerdict, TranscriptEvaluation
from kyro.serve._records import EvaluatorResult, ItemError, ItemOutcome

__all__ = ["evaluation_outcome", "evaluator_result", "failed_outcome", "outcomes_of", "score_of"]


def score_of(verdict: JudgeVerdict) -> float | None:
    """The evaluator's score (see the module docstring).

    A score outside 0–1 (a judge that replied ``{"status": "SUCCESS", "score": 7}``) is not
    the 0–1 score the API promises: the status decides then.

    Example::

        score_of(JudgeVerdict(judge="tone", status="ERROR", votes={"ERROR": 1}))   # 0.0
        score_of(JudgeVerdict(judge="tone", status="SUCCESS", votes={}, score=0.7))  # 0.7
    """
    if verdict.status == "NA" or verdict.status == "ERRORED":
        return None
    if verdict.score is not None and 0.0 <= verdict.score <= 1.0:
        return verdict.score
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
                found[index] = evaluation_outcome(index, evaluation, evaluators)
    return [
        found.get(i) or failed_outcome(i, missing_code, f"{missing_message} for this item")
        for i in indices
    ]


def evaluation_outcome(
    index: int, evaluation: TranscriptEvaluation, evaluators: Sequence[str]
) -> ItemOutcome:
    """Item ``index``'s outcome from its evaluation (plain judges or a pipeline's steps)."""
    results: list[EvaluatorResult] = []
    problems: list[str] = []
    for name in evaluators:
        verdict = evaluation.verdicts.get(name)
        step = evaluation.steps.get(name)
        if step is not None and step.state == "SKIPPED":
            results.append(_not_run(name, "SKIPPED", f"skipped: {step.reason}"))
            continue
        if step is not None and step.state == "NOT_TRIGGERED":
            continue
        if verdict is None:
            why = step.reason if step is not None and step.reason else "no verdict"
            problems.append(f"{name}: {why}")
            continue
        if verdict.status == "ERRORED":
            if step is not None and step.effective_from is not None:
                why = f"no verdict ({_why(verdict)}); its fallback {step.effective_from!r} decided"
                results.append(_not_run(name, "ERRORED", why))
            else:
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


def _not_run(name: str, status: str, justification: str) -> EvaluatorResult:
    return EvaluatorResult(
        evaluator_name=name, score=None, justification=justification, status=status
    )


def _why(verdict: JudgeVerdict) -> str:
    """The first run's own error (the root cause), else the vote's (a tie, too few runs)."""
    for run in verdict.runs:
        if run.error is not None:
            return f"{run.error.code}: {run.error.message}"
    if verdict.error is not None:
        return f"{verdict.error.code}: {verdict.error.message}"
    return "no valid verdict"
