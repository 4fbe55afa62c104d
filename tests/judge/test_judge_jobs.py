"""Job control: the submitted snapshot, status, cancel, and what submit refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro import BatchJobError, BatchJudge, BatchValidationError
from kyro.provider import BatchLimits
from kyro.testing import FakeProvider
from kyro_openai.testing import Emulator, EmulatorConfig
from tests.judge.judge_helpers import JUDGES, NOW, config_text, emulator_provider, write_config
from tests.support.providers import CrashingProvider, ProviderCrash


@pytest.mark.parametrize("edit", ["rewrite", "delete"])
async def test_check_uses_the_submitted_judges_not_the_edited_config(
    tmp_path: Path, edit: str
) -> None:
    """Editing or deleting the config after submit changes nothing: the snapshot is used."""
    provider = FakeProvider()
    config = write_config(tmp_path)
    job_id = await BatchJudge(provider, config, state_dir=tmp_path / "state").submit(["a", "b"])
    if edit == "rewrite":
        config.write_text(config_text(("alpha", "beta", "gamma")))
    else:
        config.unlink()

    result = await BatchJudge(provider, config, state_dir=tmp_path / "state").check()
    assert result is not None
    assert result.job_id == job_id
    assert [list(e.verdicts) for e in result.evaluations] == [list(JUDGES)] * 2
    assert set(result.counts.judges) == set(JUDGES)
    assert all(v.status == "SUCCESS" for e in result.evaluations for v in e.verdicts.values())


async def test_status_reports_progress_and_cancel_ends_the_job_cancelled(tmp_path: Path) -> None:
    """status() shows per-batch progress without finalizing; after cancel(), check raises."""
    emulator = Emulator(EmulatorConfig(in_progress_seconds=100), clock=lambda: NOW)
    judge = BatchJudge(
        emulator_provider(emulator, max_requests=5),
        write_config(tmp_path),
        state_dir=tmp_path / "state",
    )
    job_id = await judge.submit([f"exchange {i}" for i in range(4)])  # 8 requests: 5 + 3
    emulator.advance(50)

    progress = await judge.status()
    assert (progress.job_id, progress.phase, progress.requests) == (job_id, "pending", 8)
    assert [(b.shard, b.lines, b.state) for b in progress.batches] == [
        (0, 5, "running"),
        (1, 3, "running"),
    ]
    assert [b.request_counts.completed for b in progress.batches] == [2, 1]
    assert (progress.totals.total, progress.totals.completed) == (8, 3)
    assert judge._runner.store.state_path.is_file()
    assert not list(judge._runner.store.sidecar.glob("results-*.jsonl"))

    cancelling = await judge.cancel()
    assert cancelling.phase == "cancelling"
    assert {b.state for b in cancelling.batches} == {"cancelling"}
    with pytest.raises(BatchJobError) as info:
        await judge.check()
    error = info.value
    assert (error.status, error.job_id) == ("cancelled", job_id)
    assert error.result is not None
    assert error.result.results_path.is_file()
    runs = [r for e in error.result.evaluations for v in e.verdicts.values() for r in v.runs]
    assert len([r for r in runs if r.valid]) == 3
    assert sorted({r.error.code for r in runs if r.error is not None}) == ["missing"]
    assert judge._runner.store.state_path.is_file()
    assert emulator.stats().batches_created == 2


async def test_status_and_cancel_of_an_interrupted_submit(tmp_path: Path) -> None:
    """A submit cut off mid-way: status and cancel report it but never send what was unsent."""
    provider = FakeProvider(limits=BatchLimits(max_requests=2, max_bytes=1 << 20))
    crashing = CrashingProvider(provider, method="submit", at=2)
    judge = BatchJudge(crashing, write_config(tmp_path), state_dir=tmp_path / "state")
    with pytest.raises(ProviderCrash):
        await judge.submit(["a", "b", "c"])  # 6 requests: 3 shards of 2
    crashing.disarm()

    progress = await judge.status()  # reports, but creates nothing remotely
    assert progress.phase == "submitting"
    assert [(b.shard, b.batch_id) for b in progress.batches] == [(0, "fakebatch_1"), (1, None)]
    assert len(provider.batches) == 1
    await judge.cancel()
    with pytest.raises(BatchJobError) as info:
        await judge.check()
    assert info.value.status == "cancelled"
    assert info.value.result is not None
    assert info.value.result.counts.missing_runs == 4  # shards 1 and 2 were never sent
    assert [b.metadata["kyro_shard"] for b in provider.batches] == ["0"]


async def test_submit_refuses_a_second_job_while_one_is_pending(tmp_path: Path) -> None:
    """A pending job blocks submit, and the message says how to check or cancel it."""
    provider = FakeProvider()
    judge = BatchJudge(provider, write_config(tmp_path), state_dir=tmp_path / "state")
    job_id = await judge.submit(["a"])
    with pytest.raises(BatchValidationError, match=r"kyro check .*kyro cancel") as info:
        await judge.submit(["b"])
    assert job_id in str(info.value)
    assert info.value.path == str(judge._runner.store.state_path)
    assert len(provider.batches) == 1


async def test_submit_of_no_transcripts_is_a_clear_error(tmp_path: Path) -> None:
    """Zero transcripts: a BatchValidationError saying so, and no job left behind."""
    provider = FakeProvider()
    judge = BatchJudge(provider, write_config(tmp_path), state_dir=tmp_path / "state")
    with pytest.raises(BatchValidationError, match="no transcripts were given"):
        await judge.submit([])
    assert provider.batches == []
    assert judge._runner.store.load() is None


async def test_finished_result_is_found_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job collected through a relative config path is found again from another folder."""
    project = tmp_path / "project"
    project.mkdir()
    write_config(project)
    provider = FakeProvider()
    monkeypatch.chdir(tmp_path)
    judge = BatchJudge(provider, "project/judges.yml")
    await judge.submit(["a", "b"])
    first = await judge.check()
    assert first is not None

    monkeypatch.chdir(project)
    again = await BatchJudge(provider, "judges.yml").check()
    assert again is not None
    assert again.job_id == first.job_id
    assert again.results_path.samefile(first.results_path)
    assert [e.index for e in again.evaluations] == [0, 1]


async def test_resuming_an_interrupted_submit_with_another_provider_is_refused(
    tmp_path: Path,
) -> None:
    """A submit cut off under one provider is never finished through a different one."""
    provider = FakeProvider(limits=BatchLimits(max_requests=2, max_bytes=1 << 20))
    crashing = CrashingProvider(provider, method="submit", at=2)
    config = write_config(tmp_path)
    with pytest.raises(ProviderCrash):
        await BatchJudge(crashing, config, state_dir=tmp_path / "state").submit(["a", "b"])
    assert crashing.calls == 2

    emulator = Emulator(clock=lambda: NOW)
    other = BatchJudge(emulator_provider(emulator), config, state_dir=tmp_path / "state")
    with pytest.raises(BatchValidationError, match="'fake' provider") as info:
        await other.submit(["a", "b"])
    assert info.value.path == str(other._runner.store.state_path)
    assert emulator.stats().batches_created == 0
    state = other._runner.store.load()
    assert state is not None
    assert (state.status, state.provider) == ("submitting", "fake")


async def test_finished_result_is_found_after_the_state_folder_moved(tmp_path: Path) -> None:
    """A collected job is found again after its whole state folder was moved elsewhere."""
    provider = FakeProvider()
    config = write_config(tmp_path)
    judge = BatchJudge(provider, config, state_dir=tmp_path / "state")
    await judge.submit(["a", "b"])
    first = await judge.check()
    assert first is not None
    (tmp_path / "state").rename(tmp_path / "moved")

    again = await BatchJudge(provider, config, state_dir=tmp_path / "moved").check()
    assert again is not None
    assert (again.job_id, again.status, again.counts) == (first.job_id, first.status, first.counts)
    assert again.results_path == tmp_path / "moved" / "judges.batch" / first.results_path.name
    assert [e.index for e in again.evaluations] == [0, 1]


async def test_a_shard_removed_before_it_was_sent_is_a_clear_error(tmp_path: Path) -> None:
    """An interrupted submit whose shard file vanished says which file, not a raw OSError."""
    provider = FakeProvider(limits=BatchLimits(max_requests=2, max_bytes=1 << 20))
    crashing = CrashingProvider(provider, method="submit", at=1)
    judge = BatchJudge(crashing, write_config(tmp_path), state_dir=tmp_path / "state")
    with pytest.raises(ProviderCrash):
        await judge.submit(["a", "b"])
    crashing.disarm()
    state = judge._runner.store.load()
    assert state is not None
    shard_file = judge._runner.store.resolve(state.shards[0].name)
    shard_file.unlink()

    with pytest.raises(BatchValidationError) as info:
        await judge.check()

    assert info.value.path == str(shard_file)
    assert "gone from the state folder" in str(info.value)
    assert provider.batches == []


async def test_recovery_keeps_one_batch_and_cancels_a_duplicate(tmp_path: Path) -> None:
    """Two batches found for one intent: the oldest is kept, the other cancelled."""
    provider = FakeProvider()
    # The first creation is sent twice (two batches exist), then the process dies.
    crashing = CrashingProvider(provider, method="submit", at=1, reached=2)
    judge = BatchJudge(crashing, write_config(tmp_path), state_dir=tmp_path / "state")
    with pytest.raises(ProviderCrash):
        await judge.submit(["a"])
    crashing.disarm()

    progress = await judge.status()

    assert [b.batch_id for b in progress.batches] == ["fakebatch_1"]
    kept, duplicate = provider.batches  # and nothing new was created
    assert kept.state not in ("cancelling", "cancelled")
    assert duplicate.state == "cancelling"
