"""A state folder that cannot be written, or a full disk.

Guarantee: a clear error (BatchValidationError, which the CLI shows with exit code 2) naming
the folder, and nothing lost — the previous state file is byte for byte intact, no temp file
is left behind, no batch is created twice, and the same call completes the job once the disk
is writable.

The write failures are injected through the store's durable I/O (``BatchJudge(disk=...)``
with :class:`tests.support.disk.FailingDisk`: ENOSPC when writing, EACCES when creating the
temp file), because the tests may run as root, which ignores folder permissions. The
real-permission case runs only when the tests do not run as root; a state folder below a
regular file is the real case that root cannot bypass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kyro import BatchRunResult, BatchValidationError
from tests.support.disk import DISK_FAULTS, DiskFault, FailingDisk
from tests.support.scenarios import (
    SHARDS,
    Job,
    check_until_done,
    lost_verdicts,
    served,
    torn_files,
)


def _leftover_temps(folder: Path) -> list[Path]:
    return list(folder.rglob("*.tmp"))


@pytest.mark.slow  # the disk-fault matrix, a job over HTTP per case
@pytest.mark.parametrize("fault", DISK_FAULTS)
@pytest.mark.parametrize("where", ["batch-state", "downloads", "results-"])
async def test_check_on_an_unwritable_disk_loses_nothing(
    tmp_path: Path, fault: DiskFault, where: str
) -> None:
    """check fails with a clear error naming the folder; the state stays; a re-run finishes."""
    job = Job(tmp_path / "job", f"disk-check-{fault}-{where}")
    with served() as (emulator, url):
        submitter = job.judge(url)
        await submitter.submit([job.data], runs=job.runs)
        await submitter.provider.aclose()
        state_file = job.state_dir / f"{job.stem}.batch-state.json"
        before = state_file.read_bytes()
        disk = FailingDisk(fault, where)
        failing = job.judge(url, disk=disk)
        with pytest.raises(BatchValidationError) as caught:
            await check_until_done(failing)
        await failing.provider.aclose()
        assert disk.failed, "the fault was never met"
        reason = "No space left on device" if fault == "enospc" else "Permission denied"
        assert reason in str(caught.value)
        assert str(job.state_dir) in str(caught.value)
        if where == "batch-state":
            assert state_file.read_bytes() == before
        assert state_file.is_file()
        assert _leftover_temps(job.state_dir) == []
        assert torn_files(job.state_dir) == []
        healthy = job.judge(url)
        result = await check_until_done(healthy)
        await healthy.provider.aclose()
        assert isinstance(result, BatchRunResult)
        assert lost_verdicts(job, result.results_path) == 0
        assert emulator.stats().batches_created == SHARDS


@pytest.mark.parametrize("fault", DISK_FAULTS)
async def test_submit_on_an_unwritable_disk_creates_nothing(
    tmp_path: Path, fault: DiskFault
) -> None:
    """submit fails before any batch exists when the state cannot be saved; a re-run works."""
    job = Job(tmp_path / "job", f"disk-submit-{fault}")
    with served() as (emulator, url):
        disk = FailingDisk(fault, "batch-state")
        failing = job.judge(url, disk=disk)
        with pytest.raises(BatchValidationError) as caught:
            await failing.submit([job.data], runs=job.runs)
        await failing.provider.aclose()
        assert disk.failed == [job.state_dir / f"{job.stem}.batch-state.json"]
        assert str(job.state_dir) in str(caught.value)
        assert emulator.stats().files_uploaded == 0
        assert emulator.stats().batches_created == 0
        healthy = job.judge(url)
        await healthy.submit([job.data], runs=job.runs)
        result = await check_until_done(healthy)
        await healthy.provider.aclose()
        assert isinstance(result, BatchRunResult)
        assert lost_verdicts(job, result.results_path) == 0
        assert emulator.stats().batches_created == SHARDS


async def test_state_folder_below_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    """A state_dir that cannot be created (its parent is a file) names itself; nothing is sent."""
    job = Job(tmp_path / "job", "disk-not-a-folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file, not a folder")
    with served() as (emulator, url):
        judge = job.judge(url, state_dir=blocker / "state")
        with pytest.raises(BatchValidationError) as caught:
            await judge.submit([job.data])
        await judge.provider.aclose()
        assert emulator.stats().files_uploaded == 0
        assert emulator.stats().batches_created == 0
    assert caught.value.path is not None
    assert str(blocker) in str(caught.value.path)
    assert blocker.read_text() == "a regular file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
async def test_read_only_state_folder_keeps_the_job(tmp_path: Path) -> None:
    """A pending job's folder made read-only (0500): check fails clearly, then recovers."""
    job = Job(tmp_path / "job", "disk-chmod")
    with served() as (_, url):
        judge = job.judge(url)
        await judge.submit([job.data], runs=job.runs)
        state_file = job.state_dir / f"{job.stem}.batch-state.json"
        before = state_file.read_bytes()
        job.state_dir.chmod(0o500)
        try:
            with pytest.raises(BatchValidationError) as caught:
                await judge.check()
        finally:
            job.state_dir.chmod(0o700)
        assert str(job.state_dir) in str(caught.value)
        assert state_file.read_bytes() == before
        result = await judge.check()
        await judge.provider.aclose()
    assert result is not None
    assert result.counts.errored_runs == 0
