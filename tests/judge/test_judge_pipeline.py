"""Pipelines as staged batch jobs: one stage per check, gated transcripts, crash-safe stages."""

from __future__ import annotations

import contextlib
import io
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kyro import (
    BatchJobError,
    BatchJudge,
    BatchValidationError,
    KyroJudge,
    ProviderError,
    TranscriptEvaluation,
)
from kyro._contract import verdict_message
from kyro._job.submit_reuse import reuse_dir_of
from kyro._state.schema import JobState
from kyro._verdicts.job_cache import JobCache
from kyro.cli._report import console, print_progress
from kyro.testing import FakeProvider
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, serve
from tests.pipeline_helpers import PLANS, STEPS, assert_outcomes, responder, write_pipeline

VARS = {"tone": "x"}


@pytest.fixture
def served_pipeline() -> Iterator[tuple[Emulator, str]]:
    """The emulator on 127.0.0.1 whose verdicts follow each transcript's plan."""
    with Emulator(responder=responder) as emulator, serve(emulator) as url:
        yield emulator, url


def fake(**options: Any) -> FakeProvider:
    return FakeProvider(responder=lambda custom_id, body: responder(body), **options)


def comparable(evaluations: list[TranscriptEvaluation]) -> list[Any]:
    """What two runs of the same pipeline must agree on (not usage or ids)."""
    return [
        (
            e.status,
            {
                n: (o.state, o.status, o.effective, o.effective_from, o.reason)
                for n, o in e.steps.items()
            },
            {n: (v.status, v.root_cause, v.votes) for n, v in e.verdicts.items()},
        )
        for e in evaluations
    ]


@pytest.mark.slow  # a three-stage pipeline end to end over HTTP
async def test_end_to_end_over_http_matches_the_live_walk(
    tmp_path: Path, served_pipeline: tuple[Emulator, str]
) -> None:
    """submit + check on the emulator over HTTP give every step's expected outcome, and
    KyroJudge.run over the same endpoint gives the very same outcomes."""
    emulator, url = served_pipeline
    config, data = write_pipeline(tmp_path)
    provider = OpenAIBatchProvider(base_url=url, api_key="sk-test")
    async with BatchJudge(provider, config, state_dir=tmp_path / "state") as judge:
        await judge.submit([data], runs=3, variables=VARS)
        result = await judge.check()
    assert result is not None
    batched = list(result.evaluations)
    assert_outcomes(batched)
    # The step's own variable overrides the run's; the others see the run's.
    assert batched[0].verdicts["safety"].root_cause == "safety: v=strict"
    assert batched[0].verdicts["relevance"].root_cause == "relevance: v=x"
    # Upstream results reached the later stages' prompts.
    assert batched[2].verdicts["accuracy_review"].root_cause == "accuracy_review: why=accuracy:"
    assert batched[0].verdicts["quality"].root_cause == "quality: acc=SUCCESS"
    assert result.counts.steps["accuracy"].fell_back == 3
    assert result.counts.requests == 31 * 3
    # One batch per model per stage that had work: stages 0, 1, 2 (review), 3 (appeal), 4.
    assert emulator.stats().batches_created == 5

    live_provider = LocalProvider(base_url=url, api_key="sk-test", state_dir=tmp_path / "l")
    async with KyroJudge(config, provider=live_provider, runs=3) as live:
        stream = live.run_many([data], variables=VARS)
        async with contextlib.aclosing(stream) as evaluations:
            walked = [e async for e in evaluations]
    assert comparable(walked) == comparable(batched)


async def test_check_returns_none_until_the_last_stage_and_sends_only_who_qualifies(
    tmp_path: Path,
) -> None:
    """check() returns None until the last stage is done; each stage goes out as new batches
    of the same job, with the stage in metadata and custom_id, for qualifying transcripts only."""
    config, data = write_pipeline(tmp_path)
    provider = fake(polls_until_done=2)
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    job_id = await judge.submit([data], variables=VARS)
    assert len(provider.batches) == 1
    stages_seen = []
    result = None
    for _ in range(20):
        result = await judge.check()
        if result is not None:
            break
        state = judge._runner.store.load()
        assert state is not None
        stages_seen.append(state.stage)
    assert result is not None
    assert_outcomes(list(result.evaluations))
    assert sorted(set(stages_seen)) == [0, 1, 2, 3, 4]
    assert [b.metadata["kyro_stage"] for b in provider.batches] == ["0", "1", "2", "3", "4"]
    assert {b.metadata["kyro_job"] for b in provider.batches} == {job_id}
    ids = [[r.custom_id for r in b.requests] for b in provider.batches]
    assert ids[0][:2] == ["t0-j0-r0", "t0-j1-r0"]
    # Stage 1 (accuracy, style) skips transcript 1, whose relevance failed.
    assert ids[1] == [f"s1-t{t}-j{j}-r0" for t in (0, 2, 3, 4, 5) for j in (2, 3)]
    # Stage 2 (accuracy_review) runs only where accuracy failed; stage 3 where the review did.
    assert ids[2] == ["s2-t2-j4-r0", "s2-t3-j4-r0", "s2-t4-j4-r0"]
    assert ids[3] == ["s3-t3-j5-r0", "s3-t4-j5-r0"]
    assert ids[4] == [f"s4-t{t}-j6-r0" for t in (0, 2, 3, 5)]


async def test_status_shows_stage_k_of_n_with_counts_per_stage(tmp_path: Path) -> None:
    """status() says which stage the job is at and counts each planned stage."""
    config, data = write_pipeline(tmp_path)
    judge = BatchJudge(fake(polls_until_done=2), config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    assert await judge.check() is None  # stage 0 still running
    assert await judge.check() is None  # stage 0 done, stage 1 submitted
    progress = await judge.status()
    assert (progress.stage, progress.stages) == (1, 5)
    assert [(s.stage, s.transcripts, s.requests) for s in progress.per_stage] == [
        (0, 6, 12),
        (1, 5, 10),
    ]
    assert progress.per_stage[0].totals.completed == 12
    assert progress.requests == 22
    assert {b.stage for b in progress.batches} == {0, 1}
    out = io.StringIO()
    print_progress(progress, console(out))
    printed = out.getvalue()
    assert "pending, stage 2 of 5" in printed
    assert "stage 1 of 5: 6 transcripts qualified, 12 requests (12 done, 0 failed)" in printed
    assert "stage 2 of 5: 5 transcripts qualified, 10 requests (10 done, 0 failed)" in printed


async def _cancelled_first_evaluation(judge: BatchJudge) -> TranscriptEvaluation:
    """Cancel the job, check that the next check() ends it as cancelled with partial results,
    and return the first transcript's evaluation."""
    await judge.cancel()
    with pytest.raises(BatchJobError) as info:
        await judge.check()
    assert info.value.status == "cancelled"
    assert info.value.result is not None
    return next(iter(info.value.result.evaluations))


async def test_cancel_at_a_later_stage_ends_the_job_with_what_ran(tmp_path: Path) -> None:
    """cancel() during stage 1 stops the job: no later stage is sent, steps never reached say so."""
    config, data = write_pipeline(tmp_path)
    provider = fake(polls_until_done=3)
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    for _ in range(3):
        assert await judge.check() is None
    assert judge._runner.store.load().stage == 1  # type: ignore[union-attr]
    evaluation = await _cancelled_first_evaluation(judge)
    assert len(provider.batches) == 2
    assert evaluation.steps["relevance"].state == "RAN"
    assert evaluation.steps["quality"].state == "NOT_REACHED"
    assert evaluation.steps["quality"].reason == "the job ended before stage 4 ran"
    assert evaluation.status == "ERRORED"


@pytest.mark.slow  # end to end over HTTP
async def test_stage_failures_go_to_the_fallback_provider(tmp_path: Path) -> None:
    """A stage's failed lines are resubmitted within that stage, through the fallback provider."""
    config, data = write_pipeline(tmp_path)
    primary = fake(line_errors={"s1-t0-j2-r0": "server_error"})
    backup = fake()
    judge = BatchJudge(primary, config, state_dir=tmp_path / "state", fallback=backup)
    await judge.submit([data], variables=VARS)
    result = await judge.check()
    assert result is not None
    assert_outcomes(list(result.evaluations))
    assert [b.metadata["kyro_stage"] for b in backup.batches] == ["1"]
    assert [r.custom_id for r in backup.batches[0].requests] == ["s1-t0-j2-r0"]


async def test_stages_nobody_qualifies_for_are_passed_over(tmp_path: Path) -> None:
    """When every transcript passes, the fallback stages send nothing and the job still ends."""
    config, _ = write_pipeline(tmp_path)
    provider = fake()
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit([{"plan": "all-pass"}, {"plan": "all-pass"}], variables=VARS)
    result = await judge.check()
    assert result is not None
    assert result.status == "SUCCESS"
    assert [b.metadata["kyro_stage"] for b in provider.batches] == ["0", "1", "4"]
    counts = result.counts.steps
    assert (counts["accuracy_review"].not_triggered, counts["quality"].ran) == (2, 2)


async def test_a_job_whose_later_stages_have_no_transcript_finishes(tmp_path: Path) -> None:
    """Every root failing leaves no transcript for any later stage: the job ends after stage 0."""
    config, _ = write_pipeline(tmp_path)
    provider = fake()
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit([{"plan": "relevance=ERROR"}], variables=VARS)
    result = await judge.check()
    assert result is not None
    assert len(provider.batches) == 1
    steps = next(iter(result.evaluations)).steps
    assert [steps[s].state for s in STEPS] == [
        "RAN",
        "RAN",
        "SKIPPED",
        "SKIPPED",
        "NOT_TRIGGERED",
        "NOT_TRIGGERED",
        "SKIPPED",
    ]


async def test_transcripts_are_kept_private_and_removed_when_done(tmp_path: Path) -> None:
    """The job keeps its transcripts in its state folder, 0600, and clears them when done."""
    config, data = write_pipeline(tmp_path)
    judge = BatchJudge(fake(polls_until_done=2), config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    kept = judge._runner.store.transcripts_path
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(kept.read_text().splitlines()) == len(PLANS)
    while await judge.check() is None:
        pass
    assert not kept.exists()
    assert not judge._runner.store.stages_dir.exists()


async def test_a_changed_config_stops_the_next_stage_with_a_clear_error(tmp_path: Path) -> None:
    """Later stages are planned from the config: if it changed since submit, check says so."""
    config, data = write_pipeline(tmp_path)
    provider = fake()
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    config.write_text(config.read_text().replace("Reply in JSON.", "Reply in JSON!"))
    with pytest.raises(BatchValidationError, match="changed since the job was submitted"):
        await judge.check()
    state = judge._runner.store.load()
    assert isinstance(state, JobState)
    assert (state.stage, len(provider.batches)) == (0, 1)


async def test_unrenderable_later_step_is_refused_at_submit(tmp_path: Path) -> None:
    """A fallback step reading a field some transcript lacks is refused before any upload."""
    config, _ = write_pipeline(tmp_path)
    config.write_text(
        config.read_text().replace(
            "STEP=accuracy_appeal prev=", "STEP=accuracy_appeal {{input.extra}} prev="
        )
    )
    provider = fake()
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    with pytest.raises(BatchValidationError, match=r"accuracy_appeal.*input has no field 'extra'"):
        await judge.submit([{"plan": "all-pass"}], variables=VARS)
    assert provider.batches == []


async def test_pipeline_state_records_its_format_stages_and_variables(tmp_path: Path) -> None:
    """A staged job's state carries format 2 (a kyro reading only plain jobs refuses it), its
    stage count and the run variables later stages are rendered with."""
    config, data = write_pipeline(tmp_path)
    judge = BatchJudge(fake(), config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    state = judge._runner.store.load()
    assert state is not None
    assert (state.format, state.stages, state.variables) == (2, 5, VARS)


class FailsOnSecondSubmit(FakeProvider):
    """A fake whose batch creations after the first fail while ``down``: stage 1 is planned
    and saved, never sent."""

    down = True

    async def submit(self, path: Path, *, metadata: Any) -> str:
        if self.batches and self.down:
            raise ProviderError("the provider went away", status_code=503)
        return await super().submit(path, metadata=metadata)


async def _stage_one_send_failed(tmp_path: Path) -> tuple[BatchJudge, FailsOnSecondSubmit]:
    """A pipeline job whose stage 0 ran and whose check() then failed to send stage 1."""
    config, data = write_pipeline(tmp_path)
    provider = FailsOnSecondSubmit(responder=lambda custom_id, body: responder(body))
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    with pytest.raises(ProviderError):
        await judge.check()
    return judge, provider


async def test_cancel_between_planning_a_stage_and_sending_it(tmp_path: Path) -> None:
    """A stage planned but never sent (the provider failed) is cancelled as never reached."""
    judge, provider = await _stage_one_send_failed(tmp_path)
    state = judge._runner.store.load()
    assert state is not None
    assert (state.stage, state.status) == (1, "submitting")
    first = await _cancelled_first_evaluation(judge)
    assert len(provider.batches) == 1
    assert first.steps["relevance"].state == "RAN"
    assert first.steps["accuracy"].state == "NOT_REACHED"
    assert first.steps["accuracy"].reason == "the job ended before stage 1 ran"


async def test_a_failed_next_stage_submit_resumes_on_the_next_check(tmp_path: Path) -> None:
    """After the commit point, a failed creation is retried by the next check, never doubled."""
    judge, provider = await _stage_one_send_failed(tmp_path)
    provider.down = False
    result = await judge.check()
    assert result is not None
    assert_outcomes(list(result.evaluations))
    assert [b.metadata["kyro_stage"] for b in provider.batches] == ["0", "1", "2", "3", "4"]


async def _refused_after_edit(judge: BatchJudge, old: bytes, new: bytes, *, match: str) -> None:
    """Replace ``old`` with ``new`` in the saved state: check() refuses it with ``match`` and
    leaves the edited file as it is."""
    path = judge._runner.store.state_path
    edited = path.read_bytes().replace(old, new)
    assert edited != path.read_bytes()
    path.write_bytes(edited)
    with pytest.raises(BatchValidationError, match=match):
        await judge.check()
    assert path.read_bytes() == edited


async def test_an_edited_pipeline_state_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A stage whose shards no longer add up to what it planned is refused by name."""
    config, data = write_pipeline(tmp_path)
    judge = BatchJudge(fake(), config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    await _refused_after_edit(
        judge, b'"requests":12', b'"requests":13', match="stage 0 hold 12 requests, but the stage"
    )


async def test_later_stages_keep_models_thresholds_and_the_verdict_contract(
    tmp_path: Path,
) -> None:
    """A later stage uses the models stage 0 resolved (not a later model=), its judge's
    pass_threshold, the verdict contract, and reads the upstream JudgeVerdict.score."""
    config = tmp_path / "pipeline.yml"
    config.write_text(
        "steps:\n  - {name: first, prompt: 'one {{input}}'}\n"
        "  - {name: second, prompt: 'two {{steps.first.score}} {{input}}', depends_on: [first],"
        " pass_threshold: 0.7}\n",
        encoding="utf-8",
    )
    bodies: dict[str, dict[str, Any]] = {}

    def answer(custom_id: str, body: dict[str, Any]) -> str:
        bodies[custom_id] = body
        return '{"score": 0.6}'

    provider = FakeProvider(responder=answer)
    submitting = BatchJudge(provider, config, state_dir=tmp_path / "state", model="from-arg")
    await submitting.submit(["hello"])
    checking = BatchJudge(provider, config, state_dir=tmp_path / "state", model="other")
    result = None
    for _ in range(10):
        result = await checking.check()
        if result is not None:
            break
    assert result is not None
    assert sorted(bodies) == ["s1-t0-j1-r0", "t0-j0-r0"]
    assert {body["model"] for body in bodies.values()} == {"from-arg"}
    assert result.models == {"first": "from-arg", "second": "from-arg"}
    later = bodies["s1-t0-j1-r0"]["messages"]
    assert later[0] == {"role": "system", "content": verdict_message().content}
    assert later[-1] == {"role": "user", "content": "two 0.6 hello"}
    (evaluation,) = result.evaluations
    assert evaluation.verdicts["first"].status == "SUCCESS"  # 0.6 ≥ 0.5
    assert evaluation.verdicts["second"].status == "ERROR"  # 0.6 < 0.7
    assert evaluation.verdicts["second"].score == pytest.approx(0.6)


async def test_a_pipeline_state_with_models_of_unknown_judges_is_refused(tmp_path: Path) -> None:
    """A pipeline state holds both the stage fields and the resolved models; a model recorded
    for a judge the job does not have is refused by name, the file left as it was."""
    config, data = write_pipeline(tmp_path)
    judge = BatchJudge(fake(), config, state_dir=tmp_path / "state")
    await judge.submit([data], variables=VARS)
    state = judge._runner.store.load()
    assert state is not None
    assert state.pipeline
    assert state.models == dict.fromkeys(STEPS, "judge-model")
    await _refused_after_edit(
        judge,
        b'"models":{"relevance"',
        b'"models":{"ghost"',
        match="its models name ghost, which are not",
    )


@pytest.mark.slow  # end to end over HTTP
async def test_a_pipeline_job_sends_each_run_alone(
    tmp_path: Path, served_pipeline: tuple[Emulator, str]
) -> None:
    """A staged job on a provider that takes ``n`` still sends one request per run (later
    stages are planned per run), and with the cache off opens no reply cache."""
    _, url = served_pipeline
    config, data = write_pipeline(tmp_path)
    provider = OpenAIBatchProvider(base_url=url, api_key="sk-test")
    async with BatchJudge(provider, config, state_dir=tmp_path / "state", cache=False) as judge:
        await judge.submit([data], runs=3, variables=VARS)
        state = judge._runner.store.load()
        assert state is not None
        assert (state.samples, state.cached_runs, state.budget) == (1, 0, None)
        assert JobCache.load(reuse_dir_of(judge._runner.store)) is None
        result = await judge.check()
    assert result is not None
    assert result.counts.requests == 31 * 3
    assert not (tmp_path / ".kyro" / "cache").exists()
