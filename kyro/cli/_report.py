"""What the CLI shows and writes when a job is done: the summary table and the exports.

Exports stream from the results file — one evaluation at a time — so a million-transcript
job costs no more memory to export than a ten-transcript one.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from kyro._files import atomic_writer
from kyro._progress import JobProgress
from kyro._results import BatchRunResult

__all__ = [
    "CSV_COLUMNS",
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
    "votes_success",
    "votes_error",
    "votes_na",
    "votes_errored",
    "root_cause",
    "error_code",
    "error_message",
)


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
    for column in ("judge", "pass rate", "SUCCESS", "ERROR", "NA", "errored"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, judge in counts.judges.items():
        valid = judge.success + judge.error + judge.na
        rate = f"{(judge.success + judge.na) / valid:.0%}" if valid else "—"
        table.add_row(
            name, rate, str(judge.success), str(judge.error), str(judge.na), str(judge.errored)
        )
    out.print(table)
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
    """One row per batch: shard, attempt, model, batch id, state and counts."""
    table = Table(title=f"job {progress.job_id}: {progress.phase}", box=_box(out))
    for column in ("shard", "attempt", "model", "batch", "state", "done", "failed", "total"):
        table.add_column(column)
    for batch in progress.batches:
        counts = batch.request_counts
        table.add_row(
            str(batch.shard),
            f"{batch.attempt}{' (fallback)' if batch.provider == 'fallback' else ''}",
            batch.model,
            batch.batch_id or "(being created)",
            batch.state.value if batch.state else "submitted",
            str(counts.completed),
            str(counts.failed),
            str(counts.total or batch.lines),
        )
    out.print(table)
    totals = progress.totals
    out.print(f"requests: {totals.completed} done, {totals.failed} failed, of {progress.requests}")


def export_jsonl(result: BatchRunResult, path: Path) -> None:
    """Copy the results file (one TranscriptEvaluation a line) to ``path``, atomically."""
    with result.results_path.open("rb") as source, atomic_writer(path, mode=0o644) as target:
        shutil.copyfileobj(source, target, 1 << 20)


def export_csv(result: BatchRunResult, path: Path) -> None:
    """One row per transcript × judge (see :data:`CSV_COLUMNS`), streamed, atomically."""
    with atomic_writer(path, mode=0o644) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(CSV_COLUMNS)
        for evaluation in result.evaluations:
            for name, verdict in evaluation.verdicts.items():
                votes = verdict.votes
                error = verdict.error or next(
                    (run.error for run in verdict.runs if run.error is not None), None
                )
                writer.writerow(
                    (
                        evaluation.index,
                        evaluation.source,
                        evaluation.status,
                        name,
                        verdict.status,
                        votes.get("SUCCESS", 0),
                        votes.get("ERROR", 0),
                        votes.get("NA", 0),
                        votes.get("ERRORED", 0),
                        verdict.root_cause or "",
                        error.code if error else "",
                        error.message if error else "",
                    )
                )
        text.flush()
        text.detach()
