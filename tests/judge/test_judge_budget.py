"""max_cost in the library: refused before any upload, and resubmissions held to it too."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kyro import BatchJobError, BatchJudge, BudgetExceededError
from kyro._cost.budget import JobBudget, budget_of, resubmit_refusal
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import load_prices
from kyro._types import JudgeRequest, Message
from kyro.provider import Usage
from kyro_local import LocalProvider
from kyro_openai.testing import Emulator
from tests.judge.judge_helpers import emulator_provider, write_config

TEXTS = [f"user: question {i}\nassistant: answer {i}" for i in range(5)]


async def test_max_cost_refuses_before_upload_and_keeps_no_job(
    tmp_path: Path, emulator: Emulator
) -> None:
    """A ceiling above max_cost raises BudgetExceededError with the figures; nothing is
    uploaded and no job is left; the estimate stays readable."""
    judge = BatchJudge(emulator_provider(emulator), write_config(tmp_path), cache=False)
    try:
        with pytest.raises(BudgetExceededError) as info:
            await judge.submit(TEXTS, runs=2, max_cost=0.0001)
    finally:
        await judge.aclose()
    error = info.value
    assert error.max_cost == 0.0001
    assert error.ceiling_usd is not None
    assert error.ceiling_usd > 0.0001
    assert error.estimate_usd is not None
    assert error.estimate_usd < error.ceiling_usd
    assert emulator.stats().files_uploaded == 0
    assert not judge._runner.store.state_path.exists()
    assert judge.last_estimate is not None
    assert judge.last_estimate.totals().runs == 5 * 2 * 2


def test_resubmission_budget_arithmetic() -> None:
    """Spent (usage at the blended batch prices) plus the lines' share of the ceiling — at
    live prices through the fallback — must fit max_cost."""
    budget = JobBudget(
        max_cost=1.0, ceiling_usd=0.8, lines=100, batch=(1.0, 0.5, 2.0), live=(2.0, 1.0, 4.0)
    )
    usage = Usage(input_tokens=100_000, cached_input_tokens=0, output_tokens=50_000)
    # Spent: 0.1 + 0.1 = 0.2; 100 lines again at 0.008 each: 0.8; total 1.0 fits.
    assert resubmit_refusal(budget, usage, lines=100, via_fallback=False) is None
    refusal = resubmit_refusal(budget, usage, lines=101, via_fallback=False)
    assert refusal is not None
    assert "not sending 101 requests again" in refusal
    # Through the fallback the same lines cost twice as much: 50 × 0.016 = 0.8 fits, 51 not.
    assert resubmit_refusal(budget, usage, lines=50, via_fallback=True) is None
    assert resubmit_refusal(budget, usage, lines=51, via_fallback=True) is not None
    assert resubmit_refusal(None, usage, lines=10**6, via_fallback=True) is None


def test_budget_of_blends_prices_per_token() -> None:
    """The blended prices of a one-model job are that model's prices, batch and live."""
    estimator = CostEstimator(load_prices(), "openai")
    request = JudgeRequest(
        custom_id="t0-j0-r0",
        model="gpt-4o-mini",
        messages=(Message(role="user", content="x" * 400),),
        params={"max_tokens": 100},
    )
    estimator.add("tone", request)
    budget = budget_of(estimator, 1.0, lines=1)
    assert budget is not None
    assert budget.batch == pytest.approx((0.075, 0.0375, 0.30))
    assert budget.live == pytest.approx((0.15, 0.075, 0.60))
    assert budget_of(estimator, None, lines=1) is None


async def test_fallback_resubmission_past_the_budget_is_not_sent(
    tmp_path: Path, emulator: Emulator, served: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An expired batch's remainder that would pass max_cost at the fallback's live prices is
    not sent: the job ends expired with those runs errored, and the log says why."""
    config = write_config(tmp_path)
    emulator.faults.expire_next(after_lines=4)
    fallback = LocalProvider(base_url=served, api_key="sk-test", state_dir=tmp_path / "local")
    judge = BatchJudge(
        emulator_provider(emulator), config, fallback=fallback, samples=False, cache=False
    )
    try:
        await judge.submit(TEXTS, runs=2)  # learn the ceiling, then hold the job to it
        assert judge.last_estimate is not None
        ceiling = judge.last_estimate.totals().ceiling_usd
        assert ceiling is not None
        await judge.cancel()
        with pytest.raises(BatchJobError):
            await judge.check()
        emulator.faults.expire_next(after_lines=4)
        await judge.submit(TEXTS, runs=2, max_cost=ceiling * 1.01)
        with caplog.at_level(logging.WARNING, logger="kyro"), pytest.raises(BatchJobError) as info:
            await judge.check()
    finally:
        await judge.aclose()
        await fallback.aclose()
    assert info.value.status == "expired"
    assert "not sending 16 requests again" in caplog.text
    assert "passes max_cost" in caplog.text
    assert emulator.stats().chat_completions == 0  # the fallback never ran
