"""LLM judges in evaluate: an async component, deterministic scorers and LLM judges, scored
through a LocalProvider against the emulator's /v1/chat/completions over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kyro import BatchValidationError
from kyro.eval import Correctness, LLMJudge, evaluate, evaluate_one, scorer
from kyro_local import LocalProvider
from kyro_openai.testing import Emulator, ScriptedResponder, serve

CAPITALS = {"France": "Paris", "Spain": "Lyon", "Italy": "I do not know", "Peru": "boom"}


class Recorder:
    """A responder that scripts verdicts by substring and keeps every request body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.script = ScriptedResponder(
            by_substring={
                "<output>\nParis": json.dumps(
                    {"status": "SUCCESS", "score": 0.9, "root_cause": "right"}
                ),
                "<output>\nLyon": json.dumps(
                    {"status": "ERROR", "score": 0.2, "root_cause": "wrong"}
                ),
                "<output>\nI do not know": "I refuse to answer in JSON.",
            }
        )

    def __call__(self, body: dict[str, Any]) -> str:
        self.bodies.append(body)
        return self.script(body)


async def capital(country: str) -> str:
    """The component under test: an async lookup that fails on one input."""
    await anyio.sleep(0.001)
    answer = CAPITALS[country]
    if answer == "boom":
        raise RuntimeError("upstream API failed")
    return answer


@pytest.fixture
def recorder() -> Recorder:
    """The scripted, recording responder."""
    return Recorder()


@pytest.fixture
def url(recorder: Recorder) -> Iterator[str]:
    """The emulator served on 127.0.0.1 for this test."""
    with serve(Emulator(responder=recorder)) as base_url:
        yield base_url


async def test_evaluate_with_deterministic_scorers_and_llm_judges_end_to_end(
    url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """Every answered item gets deterministic and LLM scores; a non-verdict reply errors its
    score only; the failed item gets no judge request."""
    provider = LocalProvider(
        base_url=url, api_key="sk-test", state_dir=tmp_path / "local", concurrency=4
    )
    brevity = LLMJudge(
        "Is the answer one word?", name="brevity", include_input=False, temperature=0.3
    )
    result = await evaluate(
        capital,
        ["France", "Spain", "Italy", "Peru"],
        expected=["Paris", "Madrid", "Rome", "Lima"],
        scorers=["exact_match", Correctness(), brevity, scorer("length", max=20)],
        judge_provider=provider,
        judge_model="gpt-4o-mini",
        max_concurrency=2,
    )
    await provider.aclose()
    france, spain, italy, peru = result.results
    assert [s.scorer for s in france.scores] == ["exact_match", "correctness", "brevity", "length"]
    correct = france.get_score("correctness")
    assert correct is not None
    assert (correct.score, correct.passed, correct.explanation) == (
        0.9,
        True,
        "right",
    )
    assert france.passed is True
    wrong = spain.get_score("correctness")
    assert wrong is not None
    assert (wrong.score, wrong.passed) == (0.2, False)
    unparsed = italy.get_score("brevity")
    assert unparsed is not None
    assert unparsed.error is not None
    assert "unparseable_reply" in unparsed.error
    assert italy.get_score("length").passed is True  # type: ignore[union-attr]
    assert peru.error == "RuntimeError: upstream API failed"
    assert peru.scores == ()
    assert result.pass_rate == 0.25
    assert result.stats.scorers["correctness"].passed == 1
    assert result.stats.scorers["brevity"].errored == 1
    # two judges × three answered items, nothing for the item that raised
    assert len(recorder.bodies) == 6
    by_criteria = {("one word" in b["messages"][-1]["content"]): b for b in recorder.bodies}
    brevity_prompt = by_criteria[True]["messages"][-1]["content"]
    correctness_prompt = by_criteria[False]["messages"][-1]["content"]
    assert "<input>" not in brevity_prompt
    assert "<input>\n" in correctness_prompt
    assert "<expected_output>\n" in correctness_prompt
    assert by_criteria[True]["temperature"] == 0.3
    assert by_criteria[False]["temperature"] == 0
    assert {b["model"] for b in recorder.bodies} == {"gpt-4o-mini"}


async def test_the_judge_model_comes_from_the_judge_then_the_run_then_kyro_model(
    url: str, recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judge's own model wins; else judge_model; else KYRO_MODEL; none is a clear error."""
    provider = LocalProvider(base_url=url, api_key="sk-test", state_dir=tmp_path / "local")
    monkeypatch.setenv("KYRO_MODEL", "env-model")
    judges = [Correctness(model="own-model"), LLMJudge("Short?", name="short")]
    await evaluate(capital, ["France"], scorers=judges, judge_provider=provider)
    assert sorted(b["model"] for b in recorder.bodies) == ["env-model", "own-model"]
    monkeypatch.delenv("KYRO_MODEL")
    with pytest.raises(BatchValidationError, match="LLM judge 'short' has no model"):
        await evaluate(capital, ["France"], scorers=judges, judge_provider=provider)
    await provider.aclose()


async def test_criteria_are_sent_verbatim_even_with_template_braces(
    url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """Criteria text with {{...}} reaches the judge as written, never read as a template."""
    provider = LocalProvider(base_url=url, api_key="sk-test", state_dir=tmp_path / "local")
    judge = LLMJudge("Does it avoid {{input}} and {{variables.x}} literally?")
    item = await evaluate_one(
        capital, "France", scorers=[judge], judge_provider=provider, judge_model="m"
    )
    await provider.aclose()
    assert item.get_score("llm_judge").passed is True  # type: ignore[union-attr]
    assert (
        "avoid {{input}} and {{variables.x}} literally"
        in recorder.bodies[0]["messages"][-1]["content"]
    )


async def test_a_python_callable_can_be_the_judge_through_local_provider(tmp_path: Path) -> None:
    """LocalProvider(handler=fn) judges without any endpoint; its replies become the scores."""

    def judge(body: dict[str, Any]) -> str:
        loud = "<output>\nPARIS" in body["messages"][-1]["content"]
        return json.dumps({"status": "SUCCESS" if loud else "ERROR", "root_cause": "checked"})

    async def shout(country: str) -> str:
        return CAPITALS[country].upper()

    provider = LocalProvider(handler=judge, state_dir=tmp_path / "local", concurrency=2)
    result = await evaluate(
        shout, ["France", "Spain"], scorers=[LLMJudge("Loud?", name="loud")],
        judge_provider=provider, judge_model="m",
    )  # fmt: skip
    await provider.aclose()
    scores = [r.get_score("loud") for r in result.results]
    assert [(s.score, s.passed) for s in scores if s is not None] == [(1.0, True), (0.0, False)]
