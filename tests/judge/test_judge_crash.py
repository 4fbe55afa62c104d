"""Crash safety: a killed submit costs at most an orphan upload, never a second batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro import BatchJudge, BatchValidationError
from kyro.testing import FakeProvider
from kyro_openai.testing import Emulator
from tests.judge.judge_helpers import (
    JUDGES,
    batches_per_shard,
    list_batches,
    run_worker,
    write_config,
)

TRANSCRIPTS, RUNS, SHARDS = 6, 2, 5  # 24 requests, 5 per batch


@pytest.mark.slow  # kill -9 worker processes
@pytest.mark.parametrize(
    ("crash", "rerun", "orphan_uploads"),
    [
        ("before_create:3", "submit", 1),
        ("after_create:2", "submit", 0),
        ("after_create:3", "check", 0),
        ("before_save", "submit", 0),
    ],
)
def test_killed_submit_then_rerun_makes_one_batch_per_shard(
    tmp_path: Path,
    emulator: Emulator,
    served: str,
    crash: str,
    rerun: str,
    orphan_uploads: int,
) -> None:
    """SIGKILL mid-submit, then submit or check again: one batch per shard, every verdict once."""
    config = write_config(tmp_path)
    common = (served, str(config), str(tmp_path / "state"))
    job = ("--transcripts", str(TRANSCRIPTS), "--runs", str(RUNS))
    run_worker("submit", *common, *job, "--crash", crash, expect_kill=True)

    if rerun == "submit":
        job_id = run_worker("submit", *common, *job)["job_id"]
        result = run_worker("check", *common)
    else:
        result = run_worker("check", *common)
        job_id = result["job_id"]

    assert result["job_id"] == job_id
    assert batches_per_shard(served, job_id) == {str(i): 1 for i in range(SHARDS)}
    assert len(list_batches(served)) == SHARDS
    assert emulator.stats().files_uploaded == SHARDS + orphan_uploads
    assert result["counts"]["transcripts"] == TRANSCRIPTS
    assert result["counts"].get("errored_runs", 0) == 0
    assert [e["index"] for e in result["evaluations"]] == list(range(TRANSCRIPTS))
    for evaluation in result["evaluations"]:
        assert sorted(evaluation["verdicts"]) == sorted(JUDGES)
        assert all(sum(votes.values()) == RUNS for _, votes in evaluation["verdicts"].values())


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
async def test_damaged_state_file_is_refused_and_left_untouched(
    tmp_path: Path, damage: str
) -> None:
    """A truncated or corrupted state file: check, status and submit name it and never touch it."""
    provider = FakeProvider()
    judge = BatchJudge(provider, write_config(tmp_path), state_dir=tmp_path / "state")
    await judge.submit(["a", "b"])
    state_path = judge._runner.store.state_path
    data = state_path.read_bytes()
    damaged = data[: len(data) // 2] if damage == "truncate" else b"\x00{not json" + data
    state_path.write_bytes(damaged)

    for call in (judge.check, judge.status, lambda: judge.submit(["c"])):
        with pytest.raises(BatchValidationError, match="corrupted or truncated") as info:
            await call()
        assert info.value.path == str(state_path)
        assert str(state_path) in str(info.value)
        assert state_path.read_bytes() == damaged
    assert len(provider.batches) == 1
