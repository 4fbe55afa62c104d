"""kyro.eval: score a component under test — deterministic scorers, LLM judges, presets.

Run a component (an agent, a prompt chain, any function) over a list of inputs, score every
output with cheap deterministic checks and LLM judges, and read a pass rate. LLM judges run
live through a ``LocalProvider``, or — for large sets — through a Batch API at half the price,
with BatchJudge's submit / exit / check guarantees (:func:`submit_eval`, :func:`check_eval`).

Example::

    from kyro.eval import Correctness, evaluate
    from kyro_local import LocalProvider

    result = await evaluate(
        "my_app.agent:answer",
        "dataset.jsonl",                     # one {"input", "expected", "item_id"} a line
        scorers=["exact_match", Correctness()],
        judge_provider=LocalProvider(base_url="http://127.0.0.1:11434/v1"),
        judge_model="llama3.1",
        max_concurrency=8,
        timeout=30,
    )
    print(f"pass rate {result.pass_rate:.0%}")
    for item in result.failing_items():
        print(item.item_id, [(s.scorer, s.score) for s in item.scores])
"""

from __future__ import annotations

from kyro.eval._batch import cancel_eval, check_eval, submit_eval
from kyro.eval._items import EvalItem
from kyro.eval._llm import (
    Coherence,
    Conciseness,
    Correctness,
    Faithfulness,
    Harmlessness,
    Helpfulness,
    LLMJudge,
    Relevance,
)
from kyro.eval._records import (
    BatchEvalItemResult,
    BatchEvalStats,
    DurationStats,
    Score,
    ScorerResultSummary,
    ScorerStats,
)
from kyro.eval._results import BatchEvalResult, EvalResults
from kyro.eval._run import evaluate, evaluate_one, evaluate_sync
from kyro.eval._scorers import DeterministicScorer, scorer

BatchEvalItem = EvalItem
"""The seed's name for :class:`EvalItem`."""

__all__ = [
    "BatchEvalItem",
    "BatchEvalItemResult",
    "BatchEvalResult",
    "BatchEvalStats",
    "Coherence",
    "Conciseness",
    "Correctness",
    "DeterministicScorer",
    "DurationStats",
    "EvalItem",
    "EvalResults",
    "Faithfulness",
    "Harmlessness",
    "Helpfulness",
    "LLMJudge",
    "Relevance",
    "Score",
    "ScorerResultSummary",
    "ScorerStats",
    "cancel_eval",
    "check_eval",
    "evaluate",
    "evaluate_one",
    "evaluate_sync",
    "scorer",
    "submit_eval",
]
