"""Job state on disk: atomic private writes, damaged files left alone, a lock across processes."""

from __future__ import annotations

import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from kyro import (
    BatchRunResult,
    BatchValidationError,
    Evaluations,
    KyroError,
    ResultCounts,
    VoteSettings,
)
from kyro._files import FileLock, atomic_write, atomic_writer
from kyro._state.schema import JobState, ShardState, SubmissionState
from kyro._state.store import StateStore
from kyro.provider import RequestCounts, Usage
from tests.support.disk import DISK_FAULTS, DiskFault, FailingDisk

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def _state(**kw: object) -> JobState:
    attempt = SubmissionState(attempt=1, file="shards/s0.jsonl", lines=6, intent_at=NOW)
    shard = ShardState(
        index=0, name="shards/s0.jsonl", model="m", lines=6, bytes=600, sha256="ab" * 32
    ).with_attempt(attempt)
    fields: dict[str, object] = {
        "job_id": "kyro-job-1",
        "provider": "openai",
        "config_path": "judges.yml",
        "config_sha256": "cd" * 32,
        "judges": ("relevance", "tone"),
        "runs": 3,
        "transcripts": 1,
        "created_at": NOW,
        "vote": VoteSettings(min_valid_votes=2),
        "shards": (shard,),
    }
    fields.update(kw)
    return JobState(**fields)  # type: ignore[arg-type]


def test_atomic_write_is_private_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """atomic_write replaces the file, with mode 0600, and leaves nothing else behind."""
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    """An error while writing removes the temp file and leaves the old content in place."""
    target = tmp_path / "results.jsonl"
    target.write_bytes(b"complete old results\n")

    def write_then_crash() -> None:
        with atomic_writer(target) as file:
            file.write(b"half of the new")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        write_then_crash()
    assert target.read_bytes() == b"complete old results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]


def test_store_paths_follow_the_config_name(tmp_path: Path) -> None:
    """State sits in .kyro/ beside the config, named after the config's stem."""
    store = StateStore(tmp_path / "judges.yml")
    assert store.state_path == tmp_path / ".kyro" / "judges.batch-state.json"
    assert store.sidecar == tmp_path / ".kyro" / "judges.batch"
    assert store.results_path_for("kyro-1") == store.sidecar / "results-kyro-1.jsonl"
    assert store.download_path("batch/1") == store.downloads_dir / "batch_1.jsonl"
    assert store.index_path == store.shards_dir / "transcripts.index.jsonl"
    custom = StateStore(tmp_path / "judges.yml", tmp_path / "elsewhere")
    assert custom.state_path == tmp_path / "elsewhere" / "judges.batch-state.json"
    assert (
        store.resolve(store.relative(store.shards_dir / "a.jsonl")) == store.shards_dir / "a.jsonl"
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    """A saved state loads back equal, from a 0600 file; no saved state loads as None."""
    store = StateStore(tmp_path / "judges.yml")
    assert store.load() is None
    state = _state()
    store.save(state)
    assert store.load() == state
    assert stat.S_IMODE(store.state_path.stat().st_mode) == 0o600
    assert [p.name for p in store.state_dir.iterdir() if p.is_file()] == ["judges.batch-state.json"]


def test_no_secret_is_ever_written(tmp_path: Path) -> None:
    """Credential-like provider options are dropped; harmless ones are kept."""
    store = StateStore(tmp_path / "judges.yml")
    options = {"api_key": "sk-secret-1", "base_url": "http://127.0.0.1:8000/v1", "Token": "t-2"}
    store.save(_state(provider_options=options))
    text = store.state_path.read_text()
    assert "api_key" not in text
    assert "sk-secret-1" not in text
    assert "t-2" not in text
    loaded = store.load()
    assert loaded is not None
    assert loaded.provider_options == {"base_url": "http://127.0.0.1:8000/v1"}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_a_damaged_state_file_is_reported_and_left_untouched(tmp_path: Path, damage: str) -> None:
    """A corrupted or truncated state raises naming the file, which keeps its exact bytes."""
    store = StateStore(tmp_path / "judges.yml")
    store.save(_state())
    data = store.state_path.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": b"\x00\xff not json",
        "wrong_shape": b'{"job_id": 5}',
    }[damage]
    store.state_path.write_bytes(damaged)
    with pytest.raises(BatchValidationError) as info:
        store.load()
    assert info.value.path == str(store.state_path)
    assert "left untouched" in str(info.value)
    assert store.state_path.read_bytes() == damaged


def test_a_state_from_another_format_is_refused(tmp_path: Path) -> None:
    """A state file written in another format version is refused, not guessed at."""
    store = StateStore(tmp_path / "judges.yml")
    store.save(_state(format=99))
    with pytest.raises(BatchValidationError, match="format 99"):
        store.load()


def test_an_unwritable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A state folder that cannot be created raises naming it, and nothing is lost."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    store = StateStore(tmp_path / "judges.yml", blocker / "state")
    with pytest.raises(BatchValidationError) as info:
        store.save(_state())
    assert str(blocker / "state") in str(info.value)
    assert "Nothing was changed" in str(info.value)
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("fault", DISK_FAULTS)
def test_a_store_on_a_failing_disk_keeps_the_saved_state(tmp_path: Path, fault: DiskFault) -> None:
    """A save through a failing disk names the folder and leaves the last saved state intact."""
    StateStore(tmp_path / "judges.yml").save(_state(job_id="kept"))
    disk = FailingDisk(fault, "batch-state")
    store = StateStore(tmp_path / "judges.yml", disk=disk)
    before = store.state_path.read_bytes()
    with pytest.raises(BatchValidationError) as info:
        store.save(_state(job_id="lost"))
    assert disk.failed == [store.state_path]
    assert str(store.state_dir) in str(info.value)
    reason = "No space left on device" if fault == "enospc" else "Permission denied"
    assert reason in str(info.value)
    assert store.state_path.read_bytes() == before
    loaded = store.load()
    assert loaded is not None
    assert loaded.job_id == "kept"
    assert list(store.state_dir.glob("*.tmp")) + list(store.state_dir.glob(".*.tmp")) == []


def test_clear_keeps_the_results_file(tmp_path: Path) -> None:
    """clear() removes state, shards, downloads and index, and keeps results and the lock."""
    store = StateStore(tmp_path / "judges.yml")
    store.save(_state())
    (store.shards_dir / "s0.jsonl").write_text("x")
    (store.downloads_dir / "b1.jsonl").write_text("x")
    store.index_path.write_text("x")
    store.results_path_for("kyro-job-1").write_text("results")
    store.lock_path.write_text("")
    store.clear()
    assert store.load() is None
    assert not store.shards_dir.exists()
    assert not store.downloads_dir.exists()
    assert not store.index_path.exists()
    assert store.results_path_for("kyro-job-1").read_text() == "results"
    assert store.lock_path.exists()


def test_finish_records_the_result_and_clears_the_state(tmp_path: Path) -> None:
    """finish() keeps a summary that load_finished() turns back into the same result."""
    store = StateStore(tmp_path / "judges.yml")
    assert store.load_finished() is None
    store.save(_state())
    results = store.results_path_for("kyro-job-1")
    results.write_text('{"index":0,"source":"inline:0","status":"SUCCESS","verdicts":{}}\n')
    counts = ResultCounts(transcripts=1, success=1, requests=6)
    usage = Usage(input_tokens=5, output_tokens=1, total_tokens=6)
    result = BatchRunResult(
        job_id="kyro-job-1",
        status="SUCCESS",
        counts=counts,
        usage=usage,
        results_path=results,
        evaluations=Evaluations(results, 1),
    )
    store.finish("kyro-job-1", result)
    assert store.load() is None
    done = store.load_finished()
    assert done is not None
    assert (done.job_id, done.status, done.counts, done.usage) == (
        "kyro-job-1",
        "SUCCESS",
        counts,
        usage,
    )
    assert [e.index for e in done.evaluations] == [0]
    assert stat.S_IMODE(store.finished_path.stat().st_mode) == 0o600
    results.unlink()
    with pytest.raises(BatchValidationError, match="results file is gone"):
        store.load_finished()


def test_shard_of_points_at_the_shard_file(tmp_path: Path) -> None:
    """shard_of() gives the builder's Shard with the absolute path of the state's shard."""
    store = StateStore(tmp_path / "judges.yml")
    shard = store.shard_of(_state().shards[0])
    assert shard.path == str(store.sidecar / "shards" / "s0.jsonl")
    assert (shard.index, shard.name, shard.model, shard.lines) == (0, "s0.jsonl", "m", 6)


def test_poll_fields_round_trip(tmp_path: Path) -> None:
    """Attempt fields set by polls and downloads survive a save and load."""
    store = StateStore(tmp_path / "judges.yml")
    attempt = SubmissionState(
        attempt=2,
        file="shards/s0.attempt-2.jsonl",
        lines=2,
        intent_at=NOW,
        via="fallback",
        reason="resubmit",
        batch_id="b2",
        state="expired",
        counts=RequestCounts(total=2, completed=1),
        observed_at=NOW,
        downloaded=True,
    )
    state = _state(status="cancelling", cancel_requested=True)
    state = state.with_shard(state.shards[0].with_attempt(attempt))
    store.save(state)
    assert store.load() == state


def test_state_helpers_replace_by_number() -> None:
    """with_attempt and with_shard replace an entry of the same number or append in order."""
    state = _state()
    shard = state.shards[0]
    sent = SubmissionState(
        attempt=1, file="shards/s0.jsonl", lines=6, intent_at=NOW, batch_id="batch_1"
    )
    retry = SubmissionState(attempt=2, file="shards/s0.retry-2.jsonl", lines=2, intent_at=NOW)
    shard = shard.with_attempt(retry).with_attempt(sent)
    assert [(a.attempt, a.batch_id) for a in shard.attempts] == [(1, "batch_1"), (2, None)]
    updated = state.with_shard(shard).with_shard(
        ShardState(index=1, name="b", model="m", lines=1, bytes=1, sha256="")
    )
    assert [s.index for s in updated.shards] == [0, 1]
    done = msgspec.structs.replace(sent, state="completed")
    final = updated.with_shard(updated.shards[0].with_attempt(done))
    assert [a.state for a in final.shards[0].attempts] == ["completed", None]


async def test_lock_excludes_another_task(tmp_path: Path) -> None:
    """While one holder has the lock a second one times out with a message naming the holder."""
    path = tmp_path / "judges.batch.lock"
    async with FileLock(path, purpose="kyro check"):
        with pytest.raises(KyroError) as info:
            async with FileLock(path, timeout=0.05):
                pass
    assert str(path) in str(info.value)
    assert "kyro check" in str(info.value)
    async with FileLock(path, timeout=0.05) as again:
        assert again.path == path


_CHILD = """
import sys, anyio
from pathlib import Path
from kyro import KyroError
from kyro._files import FileLock

async def main():
    try:
        async with FileLock(Path(sys.argv[1]), timeout=0.2, purpose="child"):
            print("acquired")
    except KyroError as exc:
        print("refused:", exc)

anyio.run(main)
"""


@pytest.mark.slow  # child processes
async def test_lock_excludes_a_second_process(tmp_path: Path) -> None:
    """Another process cannot take the lock while it is held, and can once it is released."""
    path = tmp_path / "judges.batch.lock"
    command = [sys.executable, "-c", _CHILD, str(path)]
    async with FileLock(path, purpose="kyro submit"):
        held = await anyio.run_process(command, check=True)
    free = await anyio.run_process(command, check=True)
    refused = held.stdout.decode()
    assert refused.startswith("refused:")
    assert "kyro submit" in refused
    assert str(path) in refused
    assert free.stdout.decode().strip() == "acquired"


@pytest.mark.slow  # child processes
def test_lock_is_freed_when_its_process_dies(tmp_path: Path) -> None:
    """A holder killed mid-job leaves no stale lock behind."""
    path = tmp_path / "judges.batch.lock"
    code = (
        "import sys, os, anyio\nfrom pathlib import Path\nfrom kyro._files import FileLock\n"
        "async def main():\n    await FileLock(Path(sys.argv[1])).acquire()\n    os._exit(0)\n"
        "anyio.run(main)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)

    async def take() -> bool:
        async with FileLock(path, timeout=0.5):
            return True

    assert anyio.run(take)


def test_sweep_removes_only_this_configs_leftover_temp_files(tmp_path: Path) -> None:
    """Temp files of a killed writer are swept for this config; another config's are kept."""
    store = StateStore(tmp_path / "judges.yml")
    store.ensure_dirs()
    mine = [
        store.state_dir / ".judges.batch-state.json.abc123.tmp",
        store.downloads_dir / ".batch_1.jsonl.def456.tmp",
        store.sidecar / ".results-kyro-1.jsonl.x.tmp",
    ]
    theirs = store.state_dir / ".other.batch-state.json.abc123.tmp"
    kept = store.downloads_dir / "batch_2.jsonl"
    for path in [*mine, theirs, kept]:
        path.write_bytes(b"partial")
    assert store.sweep_temp() == 3
    assert not any(path.exists() for path in mine)
    assert theirs.read_bytes() == b"partial"
    assert kept.read_bytes() == b"partial"


def _locked_elsewhere(path: Path) -> bool:
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
async def test_a_holder_note_that_cannot_be_written_still_locks_and_unlocks(
    tmp_path: Path,
) -> None:
    """Writing the holder note is best effort: the lock is taken, and released, regardless."""
    path = tmp_path / "judges.batch.lock"
    os.mkfifo(path)  # ftruncate fails on a FIFO (EINVAL), like a write on a full disk
    async with FileLock(path, timeout=0.05, purpose="kyro check") as held:
        assert held.path == path
        assert _locked_elsewhere(path)
    assert not _locked_elsewhere(path)
