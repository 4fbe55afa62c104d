"""KyroJudge: a pipeline walked live through LocalProvider, over a callable and over HTTP."""

from __future__ import annotations

import contextlib
import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kyro import BatchValidationError, KyroJudge, ProviderError, TranscriptEvaluation, load_config
from kyro._contract import verdict_message
from kyro.cli import main
from kyro_local import LocalProvider
from kyro_openai import DEFAULT_MODEL
from kyro_openai.testing import Emulator, serve
from tests.pipeline_helpers import PLANS, assert_outcomes, responder, write_pipeline


@pytest.fixture
def served() -> Iterator[str]:
    """The emulator on 127.0.0.1, answering chat requests with the pipeline's responder."""
    with Emulator(responder=responder) as emulator, serve(emulator) as url:
        yield url


def records(log: list[dict[str, Any]]) -> Any:
    """A callable backend that answers like :func:`responder` and keeps every request body."""

    def handler(body: dict[str, Any]) -> str:
        log.append(body)
        return responder(body)

    return handler


async def run_all(judge: KyroJudge, items: Any, **options: Any) -> list[TranscriptEvaluation]:
    async with contextlib.aclosing(judge.run_many(items, **options)) as stream:
        return [evaluation async for evaluation in stream]


async def test_pipeline_outcomes_through_a_callable(tmp_path: Path) -> None:
    """Every step of every crafted transcript passes, fails into its fallback or is skipped."""
    config, _ = write_pipeline(tmp_path)
    log: list[dict[str, Any]] = []
    provider = LocalProvider(handler=records(log), state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        evaluations = [
            await judge.run({"plan": plan}, variables={"tone": "mild"}) for plan in PLANS
        ]
    # run() numbers each single transcript 0: renumber to compare with the expected table.
    assert_outcomes([msgspec_replace(e, index=i) for i, e in enumerate(evaluations)])
    # Skipped and untriggered steps sent nothing: 5 + 2 + 6 + 7 + 6 + 5 requests.
    assert len(log) == 31


def msgspec_replace(evaluation: TranscriptEvaluation, **changes: Any) -> TranscriptEvaluation:
    import msgspec

    return msgspec.structs.replace(evaluation, **changes)


async def test_step_variables_and_upstream_results_reach_the_prompt(tmp_path: Path) -> None:
    """A step's own variables override the run's; {{steps.x.…}} carries x's verdict."""
    config, _ = write_pipeline(tmp_path)
    log: list[dict[str, Any]] = []
    provider = LocalProvider(handler=records(log), state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        evaluation = await judge.run({"plan": PLANS[3]}, variables={"tone": "mild"})
    prompts = {m["content"].split()[0]: m["content"] for b in log for m in b["messages"]}
    assert prompts["STEP=relevance"].startswith("STEP=relevance v=mild ")
    assert prompts["STEP=safety"].startswith("STEP=safety v=strict ")
    assert prompts["STEP=accuracy"].startswith("STEP=accuracy after=SUCCESS ")
    # accuracy's reply was prose (ERRORED, no root cause), so the review reads an empty cause.
    assert prompts["STEP=accuracy_review"].startswith("STEP=accuracy_review why= plan")
    assert prompts["STEP=accuracy_appeal"].startswith("STEP=accuracy_appeal prev=ERROR ")
    assert prompts["STEP=quality"].startswith("STEP=quality acc=ERRORED ")
    assert evaluation.verdicts["safety"].root_cause == "safety: v=strict"
    assert evaluation.verdicts["accuracy"].runs[0].error is not None
    assert evaluation.verdicts["accuracy"].runs[0].error.code == "unparseable_reply"


async def test_roots_run_concurrently(tmp_path: Path) -> None:
    """Both roots are in flight at once: each root's reply waits until the other has arrived."""
    config, _ = write_pipeline(tmp_path)
    arrived = {"relevance": anyio.Event(), "safety": anyio.Event()}

    async def handler(body: dict[str, Any]) -> str:
        name = body["messages"][-1]["content"].split()[0].removeprefix("STEP=")
        if name in arrived:
            arrived[name].set()
            other = arrived["safety" if name == "relevance" else "relevance"]
            with anyio.fail_after(5):
                await other.wait()
        return responder(body)

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        evaluation = await judge.run({"plan": "all-pass"}, variables={"tone": "x"})
    assert evaluation.status == "SUCCESS"
    assert evaluation.steps["quality"].state == "RAN"


async def test_run_many_matches_and_keeps_order(tmp_path: Path) -> None:
    """run_many yields the same outcomes in input order, never above its concurrency."""
    config, data = write_pipeline(tmp_path)
    busy: Counter[str] = Counter()
    peak = 0

    async def handler(body: dict[str, Any]) -> str:
        nonlocal peak
        plan = body["messages"][-1]["content"].split("plan: ")[1].split(".")[0]
        busy[plan] += 1
        peak = max(peak, sum(1 for n in busy.values() if n))
        await anyio.sleep(0.001 * (hash(json.dumps(body)) % 5))
        busy[plan] -= 1
        return responder(body)

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "local", concurrency=64)
    async with KyroJudge(config, provider=provider) as judge:
        evaluations = await run_all(judge, data, variables={"tone": "x"}, concurrency=2)
    assert_outcomes(evaluations)
    assert evaluations[0].source == f"{data}:1"
    # Never more than two transcripts with requests in flight at once.
    assert peak == 2


@pytest.mark.slow  # end to end over HTTP
async def test_pipeline_outcomes_over_http(tmp_path: Path, served: str) -> None:
    """The same outcomes through LocalProvider over the emulator's chat endpoint on 127.0.0.1."""
    config, data = write_pipeline(tmp_path)
    provider = LocalProvider(base_url=served, api_key="sk-test", state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider, runs=3) as judge:
        evaluations = await run_all(judge, data, variables={"tone": "x"}, concurrency=3)
    assert_outcomes(evaluations)
    assert evaluations[2].verdicts["accuracy"].votes["ERROR"] == 3


async def test_failed_requests_are_errored_runs_that_trigger_the_fallback(tmp_path: Path) -> None:
    """A request that fails (the backend raises) is an ERRORED verdict, and the fallback runs."""
    config, _ = write_pipeline(tmp_path)

    def handler(body: dict[str, Any]) -> str:
        if body["messages"][-1]["content"].startswith("STEP=accuracy "):
            raise RuntimeError("endpoint exploded")
        return responder(body)

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        evaluation = await judge.run({"plan": "all-pass"}, variables={"tone": "x"})
    accuracy = evaluation.steps["accuracy"]
    assert (accuracy.status, accuracy.effective, accuracy.effective_from) == (
        "ERRORED",
        "SUCCESS",
        "accuracy_review",
    )
    error = evaluation.verdicts["accuracy"].runs[0].error
    assert error is not None
    assert error.code == "callable_error"
    assert "endpoint exploded" in error.message
    assert evaluation.status == "SUCCESS"


async def test_plain_judges_config_gives_plain_evaluations(tmp_path: Path) -> None:
    """A config without links runs every judge and carries no per-step block."""
    path = tmp_path / "judges.yml"
    path.write_text(
        "model: m\njudges:\n  - {name: a, prompt: 'STEP=a plan: {{input}} JSON'}\n"
        "  - {name: b, prompt: 'STEP=b plan: {{input}} JSON'}\n",
        encoding="utf-8",
    )
    provider = LocalProvider(handler=responder, state_dir=tmp_path / "local")
    async with KyroJudge(load_config(path), provider=provider) as judge:
        evaluation = await judge.run("b=ERROR")
    assert evaluation.steps == {}
    assert {n: v.status for n, v in evaluation.verdicts.items()} == {"a": "SUCCESS", "b": "ERROR"}
    assert evaluation.status == "PARTIAL"


async def test_run_refuses_many_transcripts_and_batch_providers(tmp_path: Path) -> None:
    """run() takes one transcript, a missing file is a clear error (not an exception group),
    and a provider without complete() is refused up front."""
    config, data = write_pipeline(tmp_path)
    provider = LocalProvider(handler=responder, state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        with pytest.raises(BatchValidationError, match="more than one transcript"):
            await judge.run(data)
        with pytest.raises(ValueError, match="concurrency must be a whole number"):
            await run_all(judge, data, concurrency=0)
        with pytest.raises(BatchValidationError, match="file not found"):
            await run_all(judge, [tmp_path / "nope.json"])
    with pytest.raises(TypeError, match="cannot run requests live"):
        KyroJudge(config, provider=object())  # type: ignore[arg-type]


async def test_refused_credentials_stop_the_run(tmp_path: Path, served: str) -> None:
    """A 401 would fail every request alike, so it raises instead of erroring every verdict."""
    config, _ = write_pipeline(tmp_path)
    provider = LocalProvider(base_url=served, state_dir=tmp_path / "local")
    async with KyroJudge(config, provider=provider) as judge:
        with pytest.raises(ProviderError, match="refused the credentials") as info:
            await judge.run({"plan": "all-pass"}, variables={"tone": "x"})
    assert info.value.status_code == 401
    assert "sk-" not in str(info.value)


def test_cli_run_walks_a_pipeline_live(
    tmp_path: Path,
    served: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`kyro run pipeline.yml` walks it live: step rows in the summary, per-step CSV rows."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config, data = write_pipeline(tmp_path)
    out_csv = tmp_path / "out.csv"
    code = main(
        [
            "run",
            str(config),
            str(data),
            "--base-url",
            served,
            "--var",
            "tone=x",
            "--csv",
            str(out_csv),
            "--fail-on",
            "error",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "walking the 5-stage pipeline live" in printed
    assert "transcripts: 6 — 3 SUCCESS, 0 ERROR, 3 PARTIAL, 0 errored" in printed
    rows = [line.replace("|", " ").split() for line in printed.splitlines()]
    steps = rows[rows.index(["pipeline", "steps"]) :]
    assert ["quality", "4", "2", "0", "0"] in steps
    assert ["accuracy", "5", "1", "0", "3"] in steps
    assert ["accuracy_appeal", "2", "0", "4", "0"] in steps
    lines = out_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",step_state,effective,effective_from,reason")
    assert len(lines) == 1 + 6 * 7
    assert lines[1 + 7 + 2].endswith(",SKIPPED,SKIPPED,,dependency 'relevance' ended ERROR")
    table = list(csv.reader(lines))
    assert table[0][:6] == ["index", "source", "transcript_status", "judge", "status", "score"]
    assert {len(row) for row in table} == {17}
    ran, skipped = table[1], table[1 + 7 + 2]
    assert (ran[3], ran[5], ran[13]) == ("relevance", "0.5", "RAN")  # the mean score
    assert (skipped[4], skipped[5], skipped[13]) == ("", "", "SKIPPED")  # blank verdict cells


async def test_run_many_holds_a_bounded_window_behind_a_slow_transcript(tmp_path: Path) -> None:
    """While the first transcript is stuck, at most 4 × concurrency transcripts are started."""
    path = tmp_path / "judges.yml"
    path.write_text("model: m\njudges:\n  - {name: a, prompt: 'x {{input}} JSON'}\n")
    started: list[str] = []
    release = anyio.Event()
    window_full = anyio.Event()

    async def handler(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        started.append(text)
        if len(started) == 8:
            window_full.set()
        if "item-0 " in text:
            await release.wait()
        return '{"status": "SUCCESS"}'

    items = [f"item-{i} " for i in range(40)]
    provider = LocalProvider(handler=handler, state_dir=tmp_path / "local")
    seen: list[int] = []
    async with KyroJudge(path, provider=provider) as judge, anyio.create_task_group() as group:

        async def consume() -> None:
            seen.extend(e.index for e in await run_all(judge, items, concurrency=2))

        group.start_soon(consume)
        with anyio.fail_after(60):  # the window fills, however loaded the machine
            await window_full.wait()
        await anyio.sleep(0.1)  # and stays full: any further start has its chance here
        while_stuck = len(started)
        release.set()
    assert while_stuck == 8
    assert seen == list(range(40))


async def test_live_requests_carry_the_contract_resolved_models_and_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live requests start with the verdict message, ask for the verdict schema, take models
    as BatchJudge does (model=, then the provider's default) and score by pass_threshold."""
    monkeypatch.delenv("KYRO_MODEL", raising=False)
    path = tmp_path / "judges.yml"
    path.write_text(
        "judges:\n  - {name: strict, prompt: 'x {{input}}', pass_threshold: 0.7}\n"
        "  - {name: lenient, prompt: 'y {{input}}', model: own-model}\n",
        encoding="utf-8",
    )
    log: list[dict[str, Any]] = []

    def handler(body: dict[str, Any]) -> str:
        log.append(body)
        return '{"score": 0.6}'

    provider = LocalProvider(handler=handler, state_dir=tmp_path / "local")
    # No reply cache: the second judge must send its requests to show their models.
    async with KyroJudge(path, provider=provider, cache=False) as judge:
        evaluation = await judge.run("hello")
    assert {b["model"] for b in log} == {DEFAULT_MODEL, "own-model"}
    for body in log:
        assert body["messages"][0] == {"role": "system", "content": verdict_message().content}
        assert body["messages"][-1]["role"] == "user"
        assert "response_format" in body
    assert evaluation.verdicts["strict"].status == "ERROR"  # 0.6 < 0.7
    assert evaluation.verdicts["lenient"].status == "SUCCESS"  # 0.6 ≥ 0.5
    assert evaluation.verdicts["strict"].score == pytest.approx(0.6)
    log.clear()
    async with KyroJudge(path, provider=provider, model="from-arg", cache=False) as judge:
        await judge.run("hello")
    assert {b["model"] for b in log} == {"from-arg", "own-model"}
