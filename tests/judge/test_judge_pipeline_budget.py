"""Pipelines under a budget and through the reply cache: every stage counts, every stage caches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kyro import BatchJobError, BatchJudge, BatchRunResult, BudgetExceededError
from kyro._config.loader import config_from_mapping
from kyro._cost.budget import JobBudget, stage_refusal
from kyro._plan.planner import Planner
from kyro._transcripts import Transcript
from kyro._verdicts.reply_cache import RequestKeys
from kyro.provider import Usage
from kyro.testing import FakeProvider
from tests.pipeline_helpers import (
    PIPELINE,
    PLANS,
    STEPS,
    assert_outcomes,
    responder,
    write_pipeline,
)

VARS = {"tone": "x"}
STAGE_0 = ("relevance", "safety")


def write_prices(folder: Path) -> Path:
    """Prices for the fake provider's pipeline model: $1 in, $2 out per million, 50 out max."""
    path = folder / "prices.json"
    model = {"input": 1.0, "output": 2.0, "max_output_tokens": 50}
    table = {"providers": {"fake": {"batch_discount": 0.5, "models": {"judge-model": model}}}}
    path.write_text(json.dumps(table), encoding="utf-8")
    return path


def fake(reply: Any = None) -> FakeProvider:
    answer = reply or (lambda body: responder(body))
    return FakeProvider(responder=lambda custom_id, body: answer(body))


def judge_of(tmp_path: Path, provider: FakeProvider, **options: Any) -> BatchJudge:
    config, _ = write_pipeline(tmp_path)
    return BatchJudge(
        provider, config, state_dir=tmp_path / "state", prices=write_prices(tmp_path), **options
    )


async def run_to_end(judge: BatchJudge) -> BatchRunResult:
    for _ in range(20):
        result = await judge.check()
        if result is not None:
            return result
    raise AssertionError("the pipeline did not finish in 20 checks")


async def ceilings(tmp_path: Path) -> tuple[float, float]:
    """(stage 0's ceiling, the whole pipeline's) as submit prices them, learnt from a refusal."""
    judge = judge_of(tmp_path, fake(), cache=False)
    with pytest.raises(BudgetExceededError):
        await judge.submit([tmp_path / "transcripts.jsonl"], runs=2, variables=VARS, max_cost=0)
    assert judge.last_estimate is not None
    lines = judge.last_estimate.lines()
    first = sum(line.ceiling_usd or 0 for line in lines if line.judge in STAGE_0)
    total = judge.last_estimate.totals().ceiling_usd
    assert total is not None
    return first, total


async def test_submit_refuses_a_budget_that_only_stage_0_fits(tmp_path: Path) -> None:
    """The submit-time ceiling counts every later step for every transcript: a budget above
    stage 0's ceiling but below that is refused before any upload, saying what it counted."""
    write_pipeline(tmp_path)
    first, total = await ceilings(tmp_path)
    # 6 transcripts × 2 runs: stage 0 is 2 steps, the later stages 5; each run at most 50 out.
    assert total > first * 3
    provider = fake()
    judge = judge_of(tmp_path, provider, cache=False)
    with pytest.raises(BudgetExceededError, match="every later step counted") as info:
        await judge.submit(
            [tmp_path / "transcripts.jsonl"], runs=2, variables=VARS, max_cost=(first + total) / 2
        )
    assert info.value.ceiling_usd == pytest.approx(total)
    assert provider.batches == []
    assert not judge._runner.store.state_path.exists()
    assert judge.last_estimate is not None
    estimated = {line.judge: line.requests for line in judge.last_estimate.lines()}
    assert estimated == dict.fromkeys(STEPS, len(PLANS) * 2)


async def test_a_budget_that_fits_the_ceiling_runs_every_stage(tmp_path: Path) -> None:
    """With max_cost just above the pipeline's ceiling the job runs through every stage and
    gives the same outcomes as without a budget; the state keeps each stage's ceiling."""
    write_pipeline(tmp_path)
    _, total = await ceilings(tmp_path)
    judge = judge_of(tmp_path, fake(), cache=False)
    await judge.submit(
        [tmp_path / "transcripts.jsonl"], runs=2, variables=VARS, max_cost=total * 1.01
    )
    state = judge._runner.store.load()
    assert state is not None
    assert state.budget is not None
    assert state.budget.max_cost == pytest.approx(total * 1.01)
    result = await run_to_end(judge)
    assert_outcomes(list(result.evaluations))
    finished = judge._runner.store.load_finished()
    assert finished is not None


async def test_a_later_stage_past_the_budget_is_not_sent_and_ends_over_budget(
    tmp_path: Path,
) -> None:
    """When stage 0's replies cost far more than their ceiling (a provider that ignores the
    output cap), stage 1 is not sent: the job ends over_budget, stage 0's verdicts are kept
    and every later step says NOT_REACHED with the reason."""
    write_pipeline(tmp_path)
    _, total = await ceilings(tmp_path)

    def wordy(body: dict[str, Any]) -> str:
        reply = json.loads(responder(body))
        return json.dumps({**reply, "thinking": "long " * 400})  # ~500 output tokens a run

    provider = fake(wordy)
    judge = judge_of(tmp_path, provider, cache=False)
    await judge.submit(
        [tmp_path / "transcripts.jsonl"], runs=2, variables=VARS, max_cost=total * 1.01
    )
    with pytest.raises(BatchJobError) as info:
        await run_to_end(judge)
    error = info.value
    assert error.status == "over_budget"
    assert "stage 1 was not sent" in str(error)
    assert "spent so far plus its cost ceiling" in str(error)
    assert len(provider.batches) == 1  # stage 0 only
    result = error.result
    assert isinstance(result, BatchRunResult)
    evaluations = list(result.evaluations)
    assert len(evaluations) == len(PLANS)
    for evaluation in evaluations:
        assert set(evaluation.verdicts) == set(STAGE_0)
        assert evaluation.status == "ERRORED"
        for name in STEPS[2:]:
            outcome = evaluation.steps[name]
            assert outcome.state == "NOT_REACHED"
            assert outcome.reason is not None
            assert outcome.reason.startswith("over budget: stage 1 was not sent")
    state = judge._runner.store.load()
    assert state is not None
    assert state.status == "ended"


async def test_a_rerun_of_a_pipeline_is_answered_by_the_cache_stage_by_stage(
    tmp_path: Path,
) -> None:
    """The second job of the same pipeline and transcripts is answered from the cache stage
    by stage (runs marked origin cache) with the same outcomes; only the runs whose reply was
    no verdict (never cached) go out again."""
    provider = fake()
    judge = judge_of(tmp_path, provider)
    await judge.submit([tmp_path / "transcripts.jsonl"], runs=2, variables=VARS)
    first = await run_to_end(judge)
    sent = len(provider.batches)
    assert sent >= 3  # one batch per stage that had work
    await judge.submit([tmp_path / "transcripts.jsonl"], runs=2, variables=VARS)
    state = judge._runner.store.load()
    assert state is not None
    assert state.shards == ()
    assert state.cached_runs == len(PLANS) * 2 * 2  # stage 0: 6 transcripts × 2 steps × 2 runs
    second = await run_to_end(judge)
    # Transcript 3's accuracy replies were prose: not cached, so its two runs alone are sent.
    (again,) = provider.batches[sent:]
    accuracy = STEPS.index("accuracy")
    assert [r.custom_id for r in again.requests] == [f"s1-t3-j{accuracy}-r{r}" for r in (0, 1)]
    evaluations = list(second.evaluations)
    assert_outcomes(evaluations)
    assert [e.status for e in evaluations] == [e.status for e in first.evaluations]
    origins = {
        (e.index, name): {run.origin for run in v.runs}
        for e in evaluations
        for name, v in e.verdicts.items()
    }
    assert origins.pop((3, "accuracy")) == {None}
    assert set(map(frozenset, origins.values())) == {frozenset({"cache"})}
    # Only the two runs sent were paid for: the cached ones bring no usage to this job.
    resent = [
        v for e in evaluations for n, v in e.verdicts.items() if (e.index, n) == (3, "accuracy")
    ]
    paid = sum(run.usage.input_tokens for run in resent[0].runs if run.usage is not None)
    assert second.usage.input_tokens == paid > 0
    finished = judge._runner.store.load_finished()
    assert finished is not None


def test_an_upstream_result_in_a_prompt_changes_the_cache_key() -> None:
    """A later step rendered with another upstream verdict is another request, so another
    cache key; the same upstream verdict gives the same key in any stage or position."""
    config = config_from_mapping(YAML(typ="safe").load(PIPELINE), path=Path("pipeline.yml"))
    names = config.graph().names
    accuracy = names.index("accuracy")
    transcript = Transcript(index=0, source="inline:0", value={"plan": "all-pass"})
    keys = RequestKeys("fake")

    def key(status: str, stage: int, index: int = 0) -> bytes:
        planner = Planner(config, 1, VARS, stage, None)
        values = {"relevance": {"status": status, "score": "0.5", "root_cause": "r"}}
        item = Transcript(index=index, source=transcript.source, value=transcript.value)
        (request,) = planner.requests_for(item, (accuracy,), values)
        return keys.key(request, run=0)

    assert key("SUCCESS", 1) != key("ERROR", 1)
    assert key("SUCCESS", 1) == key("SUCCESS", 2, index=5)


def test_stage_refusal_arithmetic() -> None:
    """Spent (usage at the job's blended batch prices) plus the stage's ceiling must fit;
    an unpriced stage is held to the job's average ceiling per request."""
    budget = JobBudget(
        max_cost=1.0, ceiling_usd=0.8, lines=100, batch=(1.0, 0.5, 2.0), live=(2.0, 1.0, 4.0)
    )
    usage = Usage(input_tokens=100_000, output_tokens=50_000)  # $0.1 + $0.1 spent
    assert stage_refusal(budget, usage, 0.8, stage=1, requests=10) is None
    refusal = stage_refusal(budget, usage, 0.81, stage=2, requests=10)
    assert refusal is not None
    assert refusal.startswith("stage 2 was not sent: $0.2000 spent so far plus its cost")
    # Unpriced: 100 requests at $0.008 each fit exactly; 101 do not.
    assert stage_refusal(budget, usage, None, stage=1, requests=100) is None
    assert stage_refusal(budget, usage, None, stage=1, requests=101) is not None
    assert stage_refusal(None, usage, 99.0, stage=1, requests=10) is None
    assert stage_refusal(budget, usage, 99.0, stage=1, requests=0) is None
