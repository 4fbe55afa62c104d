"""Exports of an eval's item results (JSONL, CSV) and the durable file writes eval jobs need.

Both exports stream the results in item order and replace their target atomically: a reader
never sees half a file, and an interrupted export leaves the previous file as it was.

CSV columns: ``index, item_id, run_id, passed, error, duration_ms, output``, then for every
scorer ``<name>.score``, ``<name>.passed`` and ``<name>.explanation`` (an errored score's
explanation is its error). Outputs that are not text are written as compact JSON. Both files
are private (0600) and formula-like CSV text cells start with ``'`` (see
:mod:`kyro.eval._exportsafe`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kyro.eval._exportsafe import neutralise, private_mode
from kyro.eval._text import as_text

if TYPE_CHECKING:
    from kyro.eval._results import BatchEvalResult

__all__ = ["replace_durably", "write_csv", "write_jsonl"]

BASE_COLUMNS = ("index", "item_id", "run_id", "passed", "error", "duration_ms", "output")


@contextlib.contextmanager
def replace_durably(path: Path, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Yield a temp file beside ``path``; on success fsync it and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_jsonl(result: BatchEvalResult, path: Path) -> Path:
    """Every item result as one JSON line, in item order."""
    with replace_durably(path, private_mode()) as target, result.results_path.open("rb") as source:
        for offset in result.results._offsets:
            source.seek(offset)
            target.write(source.readline())
    return path


def write_csv(result: BatchEvalResult, path: Path) -> Path:
    """One row per item (see the module docstring for the columns)."""
    names = list(result.stats.scorers)
    with replace_durably(path, private_mode()) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(
            [
                *BASE_COLUMNS,
                *(f"{n}.{c}" for n in names for c in ("score", "passed", "explanation")),
            ]
        )
        for item in result.results:
            row: list[object] = [
                item.index,
                neutralise(item.item_id or ""),
                neutralise(item.run_id),
                item.passed,
                neutralise(item.error or ""),
                item.duration_ms,
                "" if item.error is not None else neutralise(as_text(item.output)),
            ]
            by_name = {score.scorer: score for score in item.scores}
            for name in names:
                score = by_name.get(name)
                if score is None:
                    row.extend(("", "", ""))
                else:
                    shown = "" if score.score is None else score.score
                    why = neutralise(score.error or score.explanation or "")
                    row.extend((shown, score.passed, why))
            writer.writerow(row)
        text.flush()
        text.detach()
    return path
