"""What the CLI shows and writes when a job is done: the summary table and the exports.

Exports stream from the results file — one evaluation at a time — so a million-transcript
job costs no more memory to export than a ten-transcript one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from kyro._exceptions import BatchValidationError
from kyro._files import atomic_writer
from kyro._state.progress import JobProgress
from kyro._verdicts.result_types import BatchRunResult, JudgeVerdict
from kyro.eval._exportsafe import neutralise, private_mode

__all__ = [
    "CSV_COLUMNS",
    "PIPELINE_CSV_COLUMNS",
    "check_export_path",
    "console",
    "export_csv",
    "export_jsonl",
    "print_progress",
    "print_summary",
]

CSV_COLUMNS = (
    "index",
    "source",
    "transcript_status",
    "judge",
    "status",
    "score",
    "votes_success",
    "votes_error",
    "votes_na",
    "votes_errored",
    "root_cause",
    "error_code",
    "error_message",
)

PIPELINE_CSV_COLUMNS = (*CSV_COLUMNS, "step_state", "effective", "effective_from", "reason")
"""A pipeline's CSV: one row per transcript × step (skipped and untriggered steps included,
their verdict columns empty), with what the step did and the effective verdict it passed on."""

_PLAIN_WIDTH = 1_000


def console(stream: TextIO | None = None) -> Console:
    """A console that is plain (no colour, no box drawing) when not on a terminal.

    Off a terminal the width is unbounded, so tables written to a pipe or a log are never cut
    (batch ids and model names stay whole and copyable).
    """
    target = stream if stream is not None else sys.stdout
    out = Console(file=target, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = _PLAIN_WIDTH
    return out


def _box(out: Console) -> box.Box:
    return box.SIMPLE_HEAD if out.is_terminal else box.ASCII2


def print_summary(result: BatchRunResult, out: Console, *, quiet: bool = False) -> None:
    """The per-judge table, transcript totals, tokens and where the results file is."""
    counts = result.counts
    if quiet:
        out.print(
            f"{result.job_id}: {result.status} — {counts.success} success, {counts.error} error,"
            f" {counts.partial} partial, {counts.errored} errored; results: {result.results_path}"
        )
        return
    table = Table(title=f"job {result.job_id}: {result.status}", box=_box(out))
    columns = ("judge", "model", "pass rate", "mean score", "SUCCESS", "ERROR", "NA", "errored")
    for column in columns:
        table.add_column(column, justify="left" if column in ("judge", "model") else "right")
    for name, judge in counts.judges.items():
        valid = judge.success + judge.error + judge.na
        rate = f"{(judge.success + judge.na) / valid:.0%}" if valid else "—"
        mean = judge.mean_score
        table.add_row(
            name,
            result.models.get(name, "—"),
            rate,
            "—" if mean is None else f"{mean:.2f}",
            str(judge.success),
            str(judge.error),
            str(judge.na),
            str(judge.errored),
        )
    out.print(table)
    if counts.steps:
        steps = Table(title="pipeline steps", box=_box(out))
        for column in ("step", "ran", "skipped", "not triggered", "fell back"):
            steps.add_column(column, justify="left" if column == "step" else "right")
        for name, step in counts.steps.items():
            steps.add_row(
                name, str(step.ran), str(step.skipped), str(step.not_triggered), str(step.fell_back)
            )
        out.print(steps)
    out.print(
        f"transcripts: {counts.transcripts} — {counts.success} SUCCESS, {counts.error} ERROR, "
        f"{counts.partial} PARTIAL, {counts.errored} errored"
    )
    out.print(
        f"requests: {counts.requests} ({counts.errored_runs} errored runs, "
        f"{counts.missing_runs} never came back)"
    )
    usage = result.usage
    out.print(
        f"tokens: {usage.input_tokens:,} in, {usage.output_tokens:,} out, "
        f"{usage.total_tokens:,} total"
    )
    out.print(f"results: {result.results_path}")


def print_progress(progress: JobProgress, out: Console) -> None:
    """One row per batch: shard, attempt, model, batch id, state and counts.

    A pipeline job's title says which stage it is at, with a line per planned stage.
    """
    title = f"job {progress.job_id}: {progress.phase}"
    if progress.stages > 1:
        title += f", stage {progress.stage + 1} of {progress.stages}"
    table = Table(title=title, box=_box(out))
    staged = progress.stages > 1
    columns = ("shard", "attempt", "model", "batch", "state", "done", "failed", "total")
    for column in ("stage", *columns) if staged else columns:
        table.add_column(column)
    for batch in progress.batches:
        counts = batch.request_counts
        table.add_row(
            *((str(batch.stage + 1),) if staged else ()),
            str(batch.shard),
            f"{batch.attempt}{' (fallback)' if batch.provider == 'fallback' else ''}",
            batch.model,
            batch.batch_id or "(being created)",
            batch.state if batch.state else "submitted",
            str(counts.completed),
            str(counts.failed),
            str(counts.total or batch.lines),
        )
    out.print(table)
    for stage in progress.per_stage:
        done = stage.totals
        out.print(
            f"stage {stage.stage + 1} of {progress.stages}: {stage.transcripts} transcripts "
            f"qualified, {stage.requests} requests ({done.completed} done, {done.failed} failed)"
        )
    totals = progress.totals
    out.print(f"requests: {totals.completed} done, {totals.failed} failed, of {progress.requests}")


def check_export_path(path: Path, option: str, state_dir: Path, config: str | Path) -> None:
    """Refuse an export target that cannot work, before the job is checked.

    A folder, a file in a missing folder, the judges config itself, or any file inside
    kyro's state folder (the results file there is the only copy of the verdicts) is a
    :class:`BatchValidationError` naming ``option`` and the path.
    """
    if path.is_dir():
        raise BatchValidationError(
            f"{option} names a folder; name a file in it instead, e.g. {path / 'results'}",
            path=path,
        )
    parent = path.parent
    if not parent.is_dir():
        raise BatchValidationError(
            f"{option}: the folder {parent} does not exist; create it first, or name a file "
            "in a folder that exists",
            path=path,
        )
    if path.resolve() == Path(config).resolve():
        raise BatchValidationError(
            f"{option} names the judges config itself; write the export to another file",
            path=path,
        )
    if path.resolve().is_relative_to(state_dir.resolve()):
        raise BatchValidationError(
            f"{option} points inside kyro's state folder ({state_dir}), where the results "
            "file is the only copy of the verdicts; write the export somewhere else",
            path=path,
        )


@contextlib.contextmanager
def _export(path: Path) -> Iterator[IO[bytes]]:
    try:
        with atomic_writer(path, mode=private_mode()) as file:
            yield file
    except OSError as exc:
        raise BatchValidationError(
            f"cannot write the export ({exc.strerror or exc}); free some space or choose "
            "another file. The job's results file is intact",
            path=path,
        ) from exc


def export_jsonl(result: BatchRunResult, path: Path) -> None:
    """Copy the results file (one TranscriptEvaluation a line) to ``path``, atomically (0600)."""
    with result.results_path.open("rb") as source, _export(path) as target:
        shutil.copyfileobj(source, target, 1 << 20)


def export_csv(result: BatchRunResult, path: Path) -> None:
    """One row per transcript × judge (see :data:`CSV_COLUMNS`), streamed, atomically (0600).

    A pipeline's result gets one row per transcript × step instead, with the step's state,
    effective verdict and reason (see :data:`PIPELINE_CSV_COLUMNS`). Text cells that a
    spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return) are written with a leading ``'``.
    """
    pipeline = bool(result.counts.steps)
    with _export(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(PIPELINE_CSV_COLUMNS if pipeline else CSV_COLUMNS)
        for evaluation in result.evaluations:
            head = (evaluation.index, neutralise(evaluation.source), evaluation.status)
            if not pipeline:
                for name, verdict in evaluation.verdicts.items():
                    writer.writerow((*head, neutralise(name), *_verdict_cells(verdict)))
                continue
            for name, outcome in evaluation.steps.items():
                ran = evaluation.verdicts.get(name)
                cells = _verdict_cells(ran) if ran is not None else ("",) * 9
                step = (
                    outcome.state,
                    outcome.effective,
                    neutralise(outcome.effective_from or ""),
                    neutralise(outcome.reason or ""),
                )
                writer.writerow((*head, neutralise(name), *cells, *step))
        text.flush()
        text.detach()


def _verdict_cells(verdict: JudgeVerdict) -> tuple[object, ...]:
    votes = verdict.votes
    error = verdict.error or next(
        (run.error for run in verdict.runs if run.error is not None), None
    )
    return (
        verdict.status,
        "" if verdict.score is None else f"{verdict.score:.4g}",
        votes.get("SUCCESS", 0),
        votes.get("ERROR", 0),
        votes.get("NA", 0),
        votes.get("ERRORED", 0),
        neutralise(verdict.root_cause or ""),
        neutralise(error.code) if error else "",
        neutralise(error.message) if error else "",
    )
