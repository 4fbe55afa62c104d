"""A job's state on disk: what submit() leaves behind so check() in any later process can finish.

Layout, for ``judges.yml`` with the default state folder ``.kyro/`` beside it::

    .kyro/judges.batch-state.json        JobState of the pending job (atomic, mode 0600)
    .kyro/judges.batch-done.json         summary of the last finished job (FinishedJob)
    .kyro/judges.batch.lock              lock file: one submit/check/cancel at a time
    .kyro/judges.batch/shards/           batch input files (and resubmission files)
    .kyro/judges.batch/shards/transcripts.index.jsonl
    .kyro/judges.batch/downloads/        result files fetched from the provider, per batch
    .kyro/judges.batch/work/             the aggregator's scratch files
    .kyro/judges.batch/stages/           pipelines: transcripts, each stage's plan and outcomes
    .kyro/judges.batch/results-<job_id>.jsonl   one TranscriptEvaluation per line

The state holds everything check() needs (judge names by index, runs, transcript count, vote
settings), so it never re-reads the config, and it never holds a secret: provider options
whose name looks like a credential are dropped on save.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import msgspec

from kyro._build.shards import Shard
from kyro._exceptions import BatchValidationError
from kyro._files import LOCAL_DISK, DurableIO, FileLock
from kyro._state.crosscheck import check_state
from kyro._state.schema import (
    PIPELINE_STATE_FORMAT,
    STATE_FORMAT,
    FinishedJob,
    JobState,
    ShardState,
)
from kyro._transcript_index import INDEX_FILENAME
from kyro._verdicts.result_types import BatchRunResult, Evaluations

__all__ = ["StateStore"]

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_SECRET = re.compile(r"key|secret|token|password|passwd|credential|auth", re.IGNORECASE)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JobState)
_finished_decoder = msgspec.json.Decoder(FinishedJob)


class StateStore:
    """Where one config's job lives on disk (see the module docstring for the layout).

    Example::

        store = StateStore(Path("judges.yml"))           # state in .kyro/ beside it
        async with store.lock():
            state = store.load()                         # None when no job is pending
            ...
            store.save(state)
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        state_dir: Path | None = None,
        *,
        disk: DurableIO = LOCAL_DISK,
    ) -> None:
        config = Path(config_path)
        self.disk = disk
        """The durable writes of this folder: the state, downloads, results."""
        stem = config.stem
        # Absolute, so the paths recorded in the state (results file) hold from any cwd.
        folder = Path(state_dir) if state_dir is not None else config.parent / ".kyro"
        self.state_dir = folder.absolute()
        self.state_path = self.state_dir / f"{stem}.batch-state.json"
        self.finished_path = self.state_dir / f"{stem}.batch-done.json"
        self.lock_path = self.state_dir / f"{stem}.batch.lock"
        self.sidecar = self.state_dir / f"{stem}.batch"
        self.shards_dir = self.sidecar / "shards"
        self.downloads_dir = self.sidecar / "downloads"
        self.work_dir = self.sidecar / "work"
        self.stages_dir = self.sidecar / "stages"
        self.index_path = self.shards_dir / INDEX_FILENAME  # written beside the shards

    def ensure_dirs(self) -> None:
        """Create the state and sidecar folders (mode 0700); a clear error if that fails."""
        for folder in (self.state_dir, self.sidecar, self.shards_dir, self.downloads_dir):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise self._unwritable(folder, exc) from exc

    def lock(self, *, timeout: float = 30.0, purpose: str = "") -> FileLock:
        """The job's lock across processes: ``async with store.lock(): ...``."""
        self.ensure_dirs()
        return FileLock(self.lock_path, timeout=timeout, purpose=purpose)

    def sweep_temp(self) -> int:
        """Remove temp files a killed writer left behind; return how many. Call under the lock.

        Only this config's files are touched: its own ``.<stem>.batch*`` temps in the state
        folder (other configs may share it) and any temp file inside its sidecar folder.
        """
        prefixes = (f".{self.state_path.name}.", f".{self.finished_path.name}.")
        candidates = [p for p in self.state_dir.glob(".*.tmp") if p.name.startswith(prefixes)]
        for folder in (self.sidecar, self.shards_dir, self.downloads_dir, self.stages_dir):
            candidates.extend(folder.glob(".*.tmp"))
        for path in candidates:
            path.unlink(missing_ok=True)
        return len(candidates)

    @property
    def transcripts_path(self) -> Path:
        """A pipeline job's kept transcripts (later stages render from them)."""
        return self.stages_dir / "transcripts.jsonl"

    def plan_path(self, stage: int) -> Path:
        """Which transcripts and steps pipeline stage ``stage`` sent."""
        return self.stages_dir / f"plan-{stage}.jsonl"

    def outcomes_path(self, stage: int) -> Path:
        """The verdicts of every pipeline stage up to ``stage``, per transcript."""
        return self.stages_dir / f"outcomes-{stage}.jsonl"

    def stage_shards_dir(self, stage: int) -> Path:
        """Where pipeline stage ``stage``'s shards are written (stage 0: the shards folder)."""
        return self.shards_dir if stage == 0 else self.shards_dir / f"stage-{stage}"

    def results_path_for(self, job_id: str) -> Path:
        """The results file of ``job_id`` (each job its own, never overwritten by the next)."""
        return self.sidecar / f"results-{_UNSAFE_NAME.sub('_', job_id)}.jsonl"

    def download_path(self, batch_id: str) -> Path:
        """Where the result lines of remote batch ``batch_id`` are kept once downloaded."""
        return self.downloads_dir / f"{_UNSAFE_NAME.sub('_', batch_id)}.jsonl"

    def shard_of(self, shard: ShardState) -> Shard:
        """The builder's view of a shard of the state (for ``filter_shard``)."""
        return Shard(
            index=shard.index,
            name=Path(shard.name).name,
            model=shard.model,
            lines=shard.lines,
            bytes=shard.bytes,
            first_custom_id="",
            last_custom_id="",
            sha256=shard.sha256,
            path=str(self.resolve(shard.name)),
        )

    def relative(self, path: Path) -> str:
        """``path`` relative to the sidecar folder, as stored in the state."""
        return path.relative_to(self.sidecar).as_posix()

    def resolve(self, relative: str) -> Path:
        """The absolute path of a sidecar-relative name from the state."""
        return self.sidecar / relative

    def load(self) -> JobState | None:
        """The pending job, or None. A damaged or inconsistent file raises and is left exactly
        as it is (see :mod:`kyro._state.crosscheck`)."""
        state = _read(self.state_path, _decoder, "job state")
        if state is not None and state.format not in (STATE_FORMAT, PIPELINE_STATE_FORMAT):
            raise BatchValidationError(
                f"the job state has format {state.format}, this kyro reads {STATE_FORMAT} and "
                f"{PIPELINE_STATE_FORMAT}; "
                "finish the job with the kyro version that submitted it. The file was left "
                "untouched",
                path=self.state_path,
            )
        if state is not None:
            check_state(state, self.sidecar, self.state_path)
        return state

    def save(self, state: JobState) -> None:
        """Write ``state`` atomically (mode 0600), dropping credential-like provider options."""
        if any(_SECRET.search(name) for name in state.provider_options):
            options = {k: v for k, v in state.provider_options.items() if not _SECRET.search(k)}
            state = msgspec.structs.replace(state, provider_options=options)
        self.ensure_dirs()
        try:
            self.disk.atomic_write(self.state_path, _encoder.encode(state))
        except OSError as exc:
            raise self._unwritable(self.state_dir, exc) from exc

    def clear(self) -> None:
        """Forget the pending job: remove the state file, shards, index, downloads, scratch.

        Results files, the finished-job summary and the lock file stay.
        """
        with self.writing(self.state_dir):
            self.state_path.unlink(missing_ok=True)
        for folder in (self.shards_dir, self.downloads_dir, self.work_dir, self.stages_dir):
            shutil.rmtree(folder, ignore_errors=True)
        self.index_path.unlink(missing_ok=True)

    def finish(
        self, job_id: str, result: BatchRunResult, *, config_path: str | None = None
    ) -> None:
        """Record ``result`` as the job's outcome, then :meth:`clear` the pending state.

        Call it only once the results file is durable: a crash before the state is cleared
        leaves the state, so the next check() simply aggregates again.
        """
        finished = FinishedJob(
            job_id=job_id,
            status=result.status,
            counts=result.counts,
            usage=result.usage,
            results_path=str(result.results_path),
            finished_at=datetime.datetime.now(datetime.timezone.utc),
            models=result.models,
            config_path=config_path,
            failure=result.failure,
        )
        try:
            self.disk.atomic_write(self.finished_path, _encoder.encode(finished))
        except OSError as exc:
            raise self._unwritable(self.state_dir, exc) from exc
        self.clear()

    def finished_config_path(self) -> str | None:
        """The config path the last finished job recorded (None when unknown)."""
        done = _read(self.finished_path, _finished_decoder, "finished-job summary")
        return done.config_path if done is not None else None

    def load_finished(self) -> BatchRunResult | None:
        """The result of the last finished job, or None if none was recorded.

        The results file is looked for where it was written, then in this store's own
        sidecar folder (the whole state folder may have been moved since).
        """
        done = _read(self.finished_path, _finished_decoder, "finished-job summary")
        if done is None:
            return None
        path = Path(done.results_path)
        if not path.is_file() and self.results_path_for(done.job_id).is_file():
            path = self.results_path_for(done.job_id)  # the state folder was moved
        if not path.is_file():
            raise BatchValidationError(
                f"job {done.job_id} finished, but its results file is gone; the summary "
                f"({done.counts.transcripts} transcripts, {done.status}) is in "
                f"{self.finished_path}",
                path=path,
            )
        return BatchRunResult(
            job_id=done.job_id,
            status=done.status,
            counts=done.counts,
            usage=done.usage,
            results_path=path,
            evaluations=Evaluations(path, done.counts.transcripts),
            models=done.models,
            failure=done.failure,
        )

    @contextlib.contextmanager
    def writing(self, folder: Path) -> Iterator[None]:
        """Turn an ``OSError`` of the block (a full disk, a read-only folder) into the clear
        :class:`BatchValidationError` naming ``folder``.

        Example::

            with store.writing(store.downloads_dir):
                await download_results(provider, batch_id, path)
        """
        try:
            yield
        except OSError as exc:
            raise self._unwritable(folder, exc) from exc

    def _unwritable(self, folder: Path, exc: OSError) -> BatchValidationError:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and exc.filename:
            # Not a write problem: a file of the job was deleted (a shards folder removed
            # by hand). Say so, with the way out.
            return BatchValidationError(
                f"a file this job needs is gone from its state folder ({reason}); restore the "
                "folder from a backup. Otherwise stop the job's batches (python3 -m kyro "
                f"cancel), delete {self.state_path} to forget the job, and submit again. The "
                "state file was left untouched",
                path=Path(exc.filename).absolute(),
            )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = "free some space on that disk (or raise the file size limit)"
        elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
            reason = "a file stands where a folder should be"
            fix = "move that file away"
        else:
            fix = "make the folder writable"
        return BatchValidationError(
            f"cannot write kyro's state here ({reason}); {fix} or pass another state_dir, "
            "then run the same command again. Nothing was changed: any previous state file "
            "is intact",
            path=folder,
        )


_T = TypeVar("_T")


def _read(path: Path, decoder: msgspec.json.Decoder[_T], what: str) -> _T | None:
    """Decode a state file; None when absent; a clear error (file untouched) when damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BatchValidationError(
            f"cannot read the {what} ({exc.strerror}); check the file's permissions", path=path
        ) from exc
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BatchValidationError(
            f"the {what} is corrupted or truncated ({exc}); the file was left untouched. "
            "Restore it from a backup if you have one; otherwise delete it to forget the job "
            "(its remote batches are not cancelled: cancel them in the provider's console) "
            "and submit again",
            path=path,
        ) from exc
