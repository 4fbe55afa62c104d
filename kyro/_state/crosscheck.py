"""Cross-checking a job state read back from disk, before any of it is acted on.

A state file edited by hand (or by anything else) must not make kyro upload a file outside
the job's folder, drop transcripts or judges from the results, or fail deep inside with a
``ValueError``. :func:`check_state` looks at every name and count the state holds:

* every shard and attempt file is a relative name that resolves inside the job's sidecar
  folder (no absolute path, no ``..``, no symlink leading out);
* judges: at least one, names unique; runs from 1 to ``MAX_RUNS``; transcripts at least 1;
* shards: indices 0…n-1 once each; their lines add up to transcripts × judges × runs (a
  cancelled job may have dropped the shards it never sent) — for a pipeline job, the shards
  of each planned stage add up to that stage's recorded requests, the current stage is one
  of its stages, and its outcomes file resolves inside the sidecar folder;
  attempts numbered from 1, unique, never holding more lines than their shard;
* vote settings within runs; ``max_resubmits`` 0 or more; the config hash a SHA-256;
* the recorded models and pass thresholds name only the job's judges (thresholds 0 to 1).

Any mismatch is a :class:`BatchValidationError` naming the state file, and the file is left
exactly as it is.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kyro._exceptions import BatchValidationError
from kyro._limits import MAX_RUNS

if TYPE_CHECKING:
    from kyro._state.schema import JobState

__all__ = ["check_state"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_state(state: JobState, sidecar: Path, state_path: Path) -> None:
    """Raise a clear error, naming ``state_path``, if ``state`` does not hold together."""
    problem = _problem(state, sidecar)
    if problem is not None:
        raise BatchValidationError(
            f"the job state does not hold together: {problem}. It was edited or damaged; the "
            "file was left untouched. Restore it from a backup; otherwise cancel the job's "
            "batches in the provider's console, delete the file to forget the job, and submit "
            "again",
            path=state_path,
        )


def _problem(state: JobState, sidecar: Path) -> str | None:
    judges = state.judges
    if not judges:
        return "it names no judge"
    if len(set(judges)) != len(judges):
        return f"judge names repeat ({', '.join(judges)})"
    if not 1 <= state.runs <= MAX_RUNS:
        return f"runs is {state.runs}, not from 1 to {MAX_RUNS}"
    if state.transcripts < 1:
        return f"it counts {state.transcripts} transcripts"
    if state.vote.min_valid_votes > state.runs:
        return f"min_valid_votes {state.vote.min_valid_votes} is above runs {state.runs}"
    if state.max_resubmits < 0:
        return f"max_resubmits is {state.max_resubmits}"
    if not _SHA256.fullmatch(state.config_sha256):
        return "config_sha256 is not a SHA-256 hex digest"
    named = set(judges)
    for field, keys in (("models", state.models), ("pass_thresholds", state.pass_thresholds)):
        strangers = sorted(set(keys) - named)
        if strangers:
            return f"its {field} name {', '.join(strangers)}, which are not among its judges"
    if any(not 0.0 <= t <= 1.0 for t in state.pass_thresholds.values()):
        return "a pass_threshold lies outside 0 to 1"
    indices = [shard.index for shard in state.shards]
    expected = state.transcripts * len(judges) * state.runs
    lines = sum(shard.lines for shard in state.shards)
    # cancel() drops the shards an interrupted submit never sent; otherwise all are there.
    complete = not state.cancel_requested
    if len(set(indices)) != len(indices) or (complete and indices != list(range(len(indices)))):
        return f"shard indices are {indices}, not 0 to {len(indices) - 1} once each"
    root = sidecar.resolve()
    if not 1 <= state.samples <= state.runs or not 0 <= state.cached_runs <= expected:
        return f"samples {state.samples} or cached runs {state.cached_runs} are out of range"
    if state.pipeline and state.samples != 1:
        return "a pipeline job sends each run alone"
    # Runs the reply cache answered are not sent; runs sent as n samples share a request.
    to_send = expected - state.cached_runs
    fewest = -(-to_send // state.samples)
    if state.pipeline:
        staged = _stage_problem(state, root, complete)
        if staged is not None:
            return staged
    elif state.shards and (
        lines > to_send
        or (complete and not fewest <= lines <= to_send)
        or (complete and state.samples == 1 and lines != to_send)
    ):
        cached = f" less {state.cached_runs:,} answered by the cache" if state.cached_runs else ""
        return (
            f"its shards hold {lines:,} requests, but {state.transcripts:,} transcripts × "
            f"{len(judges)} judges × {state.runs} runs make {expected:,}{cached}"
        )
    for shard in state.shards:
        for name in (shard.name, *(attempt.file for attempt in shard.attempts)):
            if not _inside(name, root):
                return f"shard {shard.index} names the file {name!r}, outside the job's folder"
        numbers = [attempt.attempt for attempt in shard.attempts]
        if any(n < 1 for n in numbers) or len(set(numbers)) != len(numbers):
            return f"shard {shard.index} has attempts numbered {numbers}"
        if any(not 0 <= attempt.lines <= shard.lines for attempt in shard.attempts):
            return f"an attempt of shard {shard.index} holds more lines than the shard"
    return None


def _stage_problem(state: JobState, root: Path, complete: bool) -> str | None:
    """What does not hold together in a pipeline job's stages, or None."""
    if not 1 < state.stages <= len(state.judges):
        return f"it has {state.stages} stages for {len(state.judges)} steps"
    if not 0 <= state.stage < state.stages:
        return f"its current stage {state.stage} is not one of its {state.stages} stages"
    planned = {record.stage: record for record in state.planned}
    order = [record.stage for record in state.planned]
    if not order or order[0] != 0 or order != sorted(set(order)) or order[-1] != state.stage:
        return f"its planned stages are {order}, not 0 up to the current stage {state.stage}"
    most = state.transcripts * len(state.judges) * state.runs
    for record in state.planned:
        if (
            not 0 <= record.transcripts <= state.transcripts
            or not 0 <= record.requests <= most
            or not 0 <= record.cached_runs <= most - record.requests
            or (record.ceiling_usd is not None and not record.ceiling_usd >= 0)
        ):
            return (
                f"stage {record.stage} records {record.transcripts} transcripts, "
                f"{record.requests} requests, {record.cached_runs} cached runs and a ceiling "
                f"of {record.ceiling_usd}"
            )
        lines = sum(shard.lines for shard in state.shards if shard.stage == record.stage)
        if lines > record.requests or (complete and lines != record.requests):
            return (
                f"the shards of stage {record.stage} hold {lines:,} requests, but the stage "
                f"planned {record.requests:,}"
            )
    if any(shard.stage not in planned for shard in state.shards):
        return "a shard belongs to a stage that was never planned"
    if state.outcomes is not None and not _inside(state.outcomes, root):
        return f"its outcomes file {state.outcomes!r} is outside the job's folder"
    return None


def _inside(name: str, root: Path) -> bool:
    """True if the state's relative ``name`` resolves to a path inside ``root``."""
    pure = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name or pure.is_absolute() or ".." in pure.parts:
        return False
    return (root / pure).resolve().is_relative_to(root)
