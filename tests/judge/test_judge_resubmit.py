"""Jobs that do not simply complete: expiry, token limits and refused input."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from kyro import BatchJobError, BatchJudge, BatchRunResult, BatchValidationError
from kyro.provider import BatchError
from kyro.testing import FakeProvider
from kyro_openai.testing import Emulator, EmulatorConfig
from tests.judge.judge_helpers import NOW, emulator_provider, write_config

TRANSCRIPTS = 4  # x 2 judges x 1 run = 8 requests, one shard
ALL_IDS = {f"t{t}-j{j}-r0" for t in range(TRANSCRIPTS) for j in range(2)}


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_text().splitlines()]


def _judge(
    tmp_path: Path, emulator: Emulator, *, max_resubmits: int = 2, token_limit_wait: float = 600
) -> BatchJudge:
    return BatchJudge(
        emulator_provider(emulator),
        write_config(tmp_path),
        state_dir=tmp_path / "state",
        max_resubmits=max_resubmits,
        token_limit_wait=token_limit_wait,
    )


async def _complete_a_minute_later(emulator: Emulator, judge: BatchJudge) -> BatchRunResult:
    """Let a minute pass on the emulator; the next check() finishes the job, complete."""
    emulator.advance(60)
    result = await judge.check()
    assert result is not None
    assert result.complete
    return result


async def test_expired_batch_resubmits_only_unfinished_requests(tmp_path: Path) -> None:
    """An expired batch keeps its 3 finished requests; the other 5 go out again and complete."""
    emulator = Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW)
    judge = _judge(tmp_path, emulator)
    emulator.faults.expire_next(after_lines=3)
    await judge.submit([f"exchange {i}" for i in range(TRANSCRIPTS)])
    emulator.advance(60)

    assert await judge.check() is None  # expired -> resubmitted -> the new batch is running
    state = judge._runner.store.load()
    assert state is not None
    first, second = state.shards[0].attempts
    assert (first.state, second.reason, second.lines) == ("expired", "resubmit", 5)
    assert first.batch_id is not None
    finished = {
        json.loads(line)["custom_id"]
        for line in judge._runner.store.download_path(first.batch_id).read_text().splitlines()
        if json.loads(line)["ok"]
    }
    resent = _ids(judge._runner.store.resolve(second.file))
    assert len(finished) == 3
    assert sorted(resent) == sorted(ALL_IDS - finished)
    assert emulator.stats().batches_created == 2

    result = await _complete_a_minute_later(emulator, judge)
    assert result.counts.errored_runs == 0
    assert sum(v.votes["ERRORED"] for e in result.evaluations for v in e.verdicts.values()) == 0
    assert len(result.results_path.read_text().splitlines()) == TRANSCRIPTS
    assert judge._runner.store.load() is None


async def test_expired_without_resubmits_raises_with_partial_result(tmp_path: Path) -> None:
    """max_resubmits=0: the job ends expired, carrying the partial result on disk; state kept."""
    emulator = Emulator(clock=lambda: NOW)
    judge = _judge(tmp_path, emulator, max_resubmits=0)
    emulator.faults.expire_next(after_lines=3)
    await judge.submit([f"exchange {i}" for i in range(TRANSCRIPTS)])

    with pytest.raises(BatchJobError) as info:
        await judge.check()
    error = info.value
    assert error.status == "expired"
    result = error.result
    assert result is not None
    assert result.results_path.is_file()
    assert len(result.results_path.read_text().splitlines()) == TRANSCRIPTS
    runs = [run for e in result.evaluations for v in e.verdicts.values() for run in v.runs]
    codes = sorted(run.error.code for run in runs if run.error is not None)
    assert codes == ["batch_expired"] * 5
    assert len([run for run in runs if run.valid]) == 3
    assert result.counts.errored_runs == 5
    assert judge._runner.store.state_path.is_file()
    assert emulator.stats().batches_created == 1


async def test_token_limit_waits_then_resubmits_the_same_shard(tmp_path: Path) -> None:
    """token_limit_exceeded: check waits (None), then sends the same shard again and completes."""
    emulator = Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW)
    emulator.faults.token_limit_exceeded(times=1)
    patient = _judge(tmp_path, emulator, token_limit_wait=3600)
    await patient.submit([f"exchange {i}" for i in range(TRANSCRIPTS)])

    assert await patient.check() is None
    assert emulator.stats().batches_created == 1

    eager = _judge(tmp_path, emulator, token_limit_wait=0)
    assert await eager.check() is None  # resubmitted; the new batch is running
    state = eager._runner.store.load()
    assert state is not None
    first, second = state.shards[0].attempts
    assert [e.code for e in first.errors] == ["token_limit_exceeded"]
    assert (second.reason, second.file, second.lines) == ("token_limit", first.file, 8)
    assert emulator.stats().batches_created == 2

    result = await _complete_a_minute_later(emulator, eager)
    assert result.counts.requests == 8


async def test_refused_input_fails_the_job_with_the_provider_errors(tmp_path: Path) -> None:
    """A batch failed validation (too many requests): BatchJobError('failed') with its errors."""
    emulator = Emulator(EmulatorConfig(max_requests=3), clock=lambda: NOW)
    judge = _judge(tmp_path, emulator)
    await judge.submit([f"exchange {i}" for i in range(TRANSCRIPTS)])

    with pytest.raises(BatchJobError) as info:
        await judge.check()
    error = info.value
    assert error.status == "failed"
    assert [e.code for e in error.errors] == ["too_many_tasks"]
    assert "8 requests" in error.errors[0].message
    assert "too_many_tasks" in str(error)
    assert error.result is not None
    assert error.result.counts.errored == TRANSCRIPTS
    assert judge._runner.store.state_path.is_file()
    assert emulator.stats().batches_created == 1  # refused input is never sent again


async def test_failed_job_surfaces_error_lines(tmp_path: Path) -> None:
    """Job-level errors keep their code, message and line number."""
    failure = BatchError(code="invalid_json_line", message="line 2 is not JSON", line=2)
    provider = FakeProvider(final_state="failed", failure_errors=[failure])
    judge = BatchJudge(provider, write_config(tmp_path), state_dir=tmp_path / "state")
    await judge.submit(["a", "b"])

    with pytest.raises(BatchJobError) as info:
        await judge.check()
    assert info.value.status == "failed"
    assert [msgspec.to_builtins(e) for e in info.value.errors] == [
        {"code": "invalid_json_line", "message": "line 2 is not JSON", "line": 2}
    ]


async def test_cancel_stops_a_pending_token_limit_retry(tmp_path: Path) -> None:
    """After cancel(), a shard waiting out token_limit_exceeded is never sent again."""
    emulator = Emulator(clock=lambda: NOW)
    emulator.faults.token_limit_exceeded(times=1)
    patient = _judge(tmp_path, emulator, token_limit_wait=3600)
    await patient.submit([f"exchange {i}" for i in range(TRANSCRIPTS)])
    assert await patient.check() is None  # failed with the token limit: waiting
    await patient.cancel()

    eager = _judge(tmp_path, emulator, token_limit_wait=0)
    with pytest.raises(BatchJobError) as info:
        await eager.check()
    assert info.value.status == "cancelled"
    assert emulator.stats().batches_created == 1


async def test_rechecking_an_ended_job_that_resubmits_makes_it_pending_again(
    tmp_path: Path,
) -> None:
    """An ended job re-checked with more resubmits is pending again: submit refuses to drop it."""
    emulator = Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW)
    emulator.faults.expire_next(after_lines=3)
    await _judge(tmp_path, emulator, max_resubmits=0).submit(
        [f"exchange {i}" for i in range(TRANSCRIPTS)]
    )
    emulator.advance(60)
    with pytest.raises(BatchJobError):
        await _judge(tmp_path, emulator, max_resubmits=0).check()

    judge = _judge(tmp_path, emulator, max_resubmits=2)
    assert await judge.check() is None  # the 5 expired requests went out again
    state = judge._runner.store.load()
    assert state is not None
    assert (state.status, len(state.shards[0].attempts)) == ("pending", 2)
    with pytest.raises(BatchValidationError, match="still pending"):
        await judge.submit(["another"])
    assert emulator.stats().batches_created == 2
    assert judge._runner.store.load() == state
