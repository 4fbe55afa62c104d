"""submit_eval / check_eval / cancel_eval in one process, and evaluate polling a batch provider,
against the emulator on 127.0.0.1 with a clock the test moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from kyro import BatchValidationError
from kyro.eval import LLMJudge, cancel_eval, check_eval, evaluate, submit_eval
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, EmulatorConfig, ScriptedResponder, serve
from tests.eval.eval_helpers import Clock

VERDICT = json.dumps({"status": "SUCCESS", "score": 0.75, "root_cause": "loud"})
ITEMS = [{"input": t, "expected": t.upper(), "item_id": t} for t in ("ab", "cd", "ef")]
JUDGE = LLMJudge("Is it loud?", name="loud", model="gpt-4o-mini")


async def shout(text: str) -> str:
    """The component under test."""
    await anyio.lowlevel.checkpoint()
    return text.upper()


@pytest.fixture
def emulator(clock: Clock) -> Emulator:
    """Batches stay in progress for 60 clock seconds; every verdict scores 0.75."""
    responder = ScriptedResponder(fallback=lambda _: VERDICT)
    return Emulator(EmulatorConfig(in_progress_seconds=60), responder=responder, clock=clock)


@pytest.fixture
def provider(emulator: Emulator) -> Iterator[OpenAIBatchProvider]:
    """An OpenAI batch provider pointed at the emulator served on 127.0.0.1."""
    with serve(emulator) as url:
        yield OpenAIBatchProvider(base_url=url, api_key="sk-test")


@pytest.mark.slow  # end to end over HTTP
async def test_check_is_none_while_pending_then_the_merged_result(
    provider: OpenAIBatchProvider, emulator: Emulator, clock: Clock, tmp_path: Path
) -> None:
    """Deterministic scores are on disk at submit; check is None until the batch is done."""
    job_id = await submit_eval(
        shout, ITEMS, scorers=["exact_match", JUDGE], provider=provider, state_dir=tmp_path
    )
    assert emulator.stats().batches_created == 1
    items = (tmp_path / job_id / "items.jsonl").read_text().splitlines()
    assert [json.loads(line)["scores"][0]["passed"] for line in items] == [True] * 3
    assert await check_eval(job_id, provider=provider, state_dir=tmp_path) is None
    clock.now += 120
    result = await check_eval(job_id, provider=provider, state_dir=tmp_path)
    assert result is not None
    assert result.batch_id == job_id
    assert [r.item_id for r in result.results] == ["ab", "cd", "ef"]
    loud = result.results[0].get_score("loud")
    assert loud is not None
    assert (loud.score, loud.passed, loud.explanation) == (0.75, True, "loud")
    assert result.pass_rate == 1.0
    assert result.stats.scorers["loud"].mean_score == 0.75
    again = await check_eval(job_id, provider=provider, state_dir=tmp_path)
    assert again is not None
    assert [r.get_score("loud") for r in again.results] == [
        r.get_score("loud") for r in result.results
    ]
    assert emulator.stats().batches_created == 1
    await provider.aclose()


async def test_cancel_keeps_deterministic_scores_and_errors_the_judges(
    provider: OpenAIBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """A cancelled judge job ends the eval with errored judge scores saying so."""
    job_id = await submit_eval(
        shout, ITEMS, scorers=["exact_match", JUDGE], provider=provider, state_dir=tmp_path
    )
    await cancel_eval(job_id, provider=provider, state_dir=tmp_path)
    result = None
    for _ in range(5):
        result = await check_eval(job_id, provider=provider, state_dir=tmp_path)
        if result is not None:
            break
    assert result is not None
    item = result.results[1]
    assert item.get_score("exact_match").passed is True  # type: ignore[union-attr]
    loud = item.get_score("loud")
    assert loud is not None
    assert loud.error is not None
    assert loud.error.startswith("the judge job ended cancelled: the judge gave no verdict")
    assert result.pass_rate == 0.0
    with pytest.raises(BatchValidationError, match="already done"):
        await cancel_eval(job_id, provider=provider, state_dir=tmp_path)
    await provider.aclose()


async def test_a_job_without_llm_judges_is_done_at_submit(
    provider: OpenAIBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """With only deterministic scorers nothing is sent and check returns the result at once."""
    job_id = await submit_eval(
        shout, ITEMS, scorers=["exact_match"], provider=provider, state_dir=tmp_path
    )
    assert emulator.stats().batches_created == 0
    result = await check_eval(job_id, provider=provider, state_dir=tmp_path)
    assert result is not None
    assert result.pass_rate == 1.0


async def test_wrong_provider_or_unknown_job_is_refused(
    provider: OpenAIBatchProvider, tmp_path: Path
) -> None:
    """A job is checked with its own provider kind; an unknown id names the state folder."""
    job_id = await submit_eval(shout, ITEMS, scorers=[JUDGE], provider=provider, state_dir=tmp_path)
    local = LocalProvider(handler=lambda body: VERDICT, state_dir=tmp_path / "local")
    with pytest.raises(BatchValidationError, match="submitted through the 'openai' provider"):
        await check_eval(job_id, provider=local, state_dir=tmp_path)
    with pytest.raises(BatchValidationError, match="no eval job eval-nope here"):
        await check_eval("eval-nope", provider=provider, state_dir=tmp_path)
    (tmp_path / "eval-20250101-000000-abcdef").mkdir()  # a submit killed mid-run
    with pytest.raises(BatchValidationError, match="interrupted while the component ran"):
        await check_eval("eval-20250101-000000-abcdef", provider=provider, state_dir=tmp_path)
    with pytest.raises(BatchValidationError, match="is not an eval job id"):
        await check_eval("../x", provider=provider, state_dir=tmp_path)
    await provider.aclose()


@pytest.mark.slow  # end to end over HTTP
async def test_evaluate_polls_a_batch_provider_until_done(
    emulator: Emulator, clock: Clock, tmp_path: Path
) -> None:
    """Live evaluate with a batch provider waits, polling, and returns the judged result."""
    polls = 0

    async def advance() -> None:
        nonlocal polls
        while True:
            await anyio.sleep(0.05)
            polls += 1
            clock.now += 30

    with serve(emulator) as url:
        provider = OpenAIBatchProvider(base_url=url, api_key="sk-test")
        async with anyio.create_task_group() as group:
            group.start_soon(advance)
            result = await evaluate(
                shout, ITEMS, scorers=[JUDGE], judge_provider=provider, poll_interval=0.05
            )
            group.cancel_scope.cancel()
        await provider.aclose()
    assert polls >= 2
    assert [r.get_score("loud").score for r in result.results] == [0.75] * 3  # type: ignore[union-attr]
