"""A state folder that cannot be written, or a full disk.

Guarantee: a clear error (BatchValidationError, exit code 2) naming the folder, and nothing
lost — the previous state file is byte for byte intact, no temp file is left behind, no
batch is created twice, and the same command completes the job once the disk is writable.

The write failures are injected inside a child process (``benchmarks/_kyro_child.py``
``disk:KIND:WHERE``: ENOSPC when writing, EACCES when creating the temp file), because the
tests may run as root, which ignores folder permissions. The real-permission case runs only
when the tests do not run as root; a state folder below a regular file is the real case that
root cannot bypass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _scenarios import (
    SHARDS,
    EmulatorProcess,
    Job,
    batches_by_config,
    duplicate_batches,
    lost_verdicts,
    run_kyro,
    served,
    torn_files,
)

from kyro import BatchValidationError


def _leftover_temps(folder: Path) -> list[Path]:
    return list(folder.rglob("*.tmp"))


@pytest.mark.parametrize("kind", ["enospc", "eacces"])
@pytest.mark.parametrize("where", ["batch-state", "downloads", "results-"])
def test_check_on_an_unwritable_disk_loses_nothing(
    emulator_process: EmulatorProcess, tmp_path: Path, kind: str, where: str
) -> None:
    """check fails with a clear error naming the folder; the state stays; a re-run finishes."""
    url = emulator_process.url
    job = Job(tmp_path / "job", f"disk-check-{kind}-{where}")
    assert run_kyro(job.submit_args(), url=url).returncode == 0
    state_file = job.state_dir / f"{job.stem}.batch-state.json"
    before = state_file.read_bytes()
    failed = run_kyro(job.check_args(), url=url, cut=f"disk:{kind}:{where}")
    assert failed.returncode == 2, failed.stderr
    reason = "No space left on device" if kind == "enospc" else "Permission denied"
    assert reason in failed.stderr
    assert str(job.state_dir) in failed.stderr
    assert "Traceback" not in failed.stderr
    if where == "batch-state":
        assert state_file.read_bytes() == before
    assert state_file.is_file()
    assert _leftover_temps(job.state_dir) == []
    assert torn_files(job.state_dir) == []
    again = run_kyro(job.check_args(), url=url)
    assert again.returncode == 0, again.stderr
    done = job.finished()
    assert done is not None
    assert lost_verdicts(job, Path(done["results_path"])) == 0
    batches = batches_by_config(url, job.config_hash())
    assert len(batches) == SHARDS
    assert duplicate_batches(batches, done["job_id"]) == 0


@pytest.mark.parametrize("kind", ["enospc", "eacces"])
def test_submit_on_an_unwritable_disk_creates_nothing(
    emulator_process: EmulatorProcess, tmp_path: Path, kind: str
) -> None:
    """submit fails before any batch exists when the state cannot be saved; a re-run works."""
    url = emulator_process.url
    job = Job(tmp_path / "job", f"disk-submit-{kind}")
    failed = run_kyro(job.submit_args(), url=url, cut=f"disk:{kind}:batch-state")
    assert failed.returncode == 2, failed.stderr
    assert str(job.state_dir) in failed.stderr
    assert batches_by_config(url, job.config_hash()) == []
    assert run_kyro(job.submit_args(), url=url).returncode == 0
    assert run_kyro(job.check_args(), url=url).returncode == 0
    done = job.finished()
    assert done is not None
    assert lost_verdicts(job, Path(done["results_path"])) == 0
    assert len(batches_by_config(url, job.config_hash())) == SHARDS


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
