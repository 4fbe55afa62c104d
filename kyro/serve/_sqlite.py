"""The embedded default store: one SQLite file (stdlib ``sqlite3``) in WAL mode.

Every write is one ``BEGIN IMMEDIATE … COMMIT`` with ``synchronous=FULL``, so a transition is
on disk before the caller acknowledges it, and a process killed at any instant leaves either
the whole transition or none of it. The schema's version is kept in ``PRAGMA user_version``;
a file written by a newer schema is refused rather than misread. The file is mode 0600: it
holds the transcripts clients sent.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from kyro import KyroError
from kyro.serve._records import (
    Execution,
    ExecutionFilter,
    ExecutionStatus,
    ItemChange,
    ItemError,
    RawItem,
    Version,
)
from kyro.serve._sqlite_schema import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    encoder,
    execution_of,
    item_of,
    raw_item_of,
    version_of,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore:
    """:class:`~kyro.serve.Store` on one SQLite file (created with its folder if missing).

    Example::

        store = SQLiteStore(Path("serve-data/kyro-serve.sqlite3"))
        store.unfinished()                # executions a restarted server resumes
    """

    inline_reads = True
    """Reads run on the caller's thread, event loop included: in WAL mode a read never waits
    for a write (it sees the last commit), and a status poll's rows are in the page cache."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            # Reads go through their own connection: in WAL mode they see the last commit
            # and never wait behind a write's fsync.
            self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._reader.execute("PRAGMA busy_timeout=5000")
            self._read_lock = threading.Lock()
            self._migrate()
        except sqlite3.Error as exc:
            raise KyroError(f"cannot open the service database {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        (found,) = self._db.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise KyroError(
                f"{self.path} was written by a newer kyro (schema {found}, this one reads "
                f"{SCHEMA_VERSION}); upgrade kyro or point --data-dir at another folder"
            )
        if found == 0:
            with self._write() as db:
                db.executescript(
                    f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """The reading connection inside one read transaction (a consistent view)."""
        with self._read_lock:
            self._reader.execute("BEGIN")
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._snapshot() as db:
            return db.execute(sql, args).fetchall()

    # -- versions ----------------------------------------------------------------------------

    def add_version(self, version: Version) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    version.version_id,
                    version.judge_id,
                    version.sha256,
                    version.config_name,
                    encoder.encode(version.evaluators),
                    version.created_at,
                    msgspec.msgpack.encode(version.files),
                ),
            )
            return cursor.rowcount == 1

    def versions(self, judge_id: str) -> list[Version]:
        rows = self._read(
            "SELECT version_id, judge_id, sha256, config_name, evaluators, created_at "
            "FROM versions WHERE judge_id = ? ORDER BY created_at DESC, version_id",
            (judge_id,),
        )
        return [version_of(row, b"\x80") for row in rows]

    def version(self, version_id: str) -> Version | None:
        rows = self._read(
            "SELECT version_id, judge_id, sha256, config_name, evaluators, created_at, files "
            "FROM versions WHERE version_id = ?",
            (version_id,),
        )
        return version_of(rows[0][:6], rows[0][6]) if rows else None

    # -- executions --------------------------------------------------------------------------

    def create_execution(self, execution: Execution, inputs: Sequence[dict[str, Any]]) -> None:
        e = execution
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO executions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
                (
                    e.execution_id,
                    e.judge_id,
                    e.version_id,
                    e.status,
                    encoder.encode(e.tags),
                    e.total_count,
                    e.created_at,
                    None,
                    None,
                    None,
                ),
            )
            db.executemany(
                "INSERT INTO execution_tags VALUES (?, ?)",
                [(e.execution_id, tag) for tag in dict.fromkeys(e.tags)],
            )
            db.executemany(
                "INSERT INTO items (execution_id, idx, status, input) VALUES (?, ?, 'pending', ?)",
                [(e.execution_id, i, encoder.encode(value)) for i, value in enumerate(inputs)],
            )

    def execution(self, execution_id: str, *, items: bool = True) -> Execution | None:
        found = self._rows(execution_id, items=items)
        if found is None:
            return None
        execution, rows = found
        return msgspec.structs.replace(execution, items=tuple(item_of(r) for r in rows))

    def execution_raw(self, execution_id: str) -> tuple[Execution, list[RawItem]] | None:
        found = self._rows(execution_id, items=True)
        return None if found is None else (found[0], [raw_item_of(r) for r in found[1]])

    def _rows(self, execution_id: str, *, items: bool) -> tuple[Execution, list[Any]] | None:
        """The execution and (unless ``items`` is False) its item rows, in one snapshot."""
        with self._snapshot() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            if row is None:
                return None
            rows = []
            if items:
                rows = db.execute(
                    "SELECT idx, status, input, results, error FROM items "
                    "WHERE execution_id = ? ORDER BY idx",
                    (execution_id,),
                ).fetchall()
        return execution_of(row), rows

    def list_executions(self, where: ExecutionFilter) -> list[Execution]:
        clauses: list[str] = []
        args: list[Any] = []
        if where.tag is not None:
            clauses.append(
                "execution_id IN (SELECT execution_id FROM execution_tags WHERE tag = ?)"
            )
            args.append(where.tag)
        if where.judge_id is not None:
            clauses.append("judge_id = ?")
            args.append(where.judge_id)
        if where.status is not None:
            clauses.append("status = ?")
            args.append(where.status)
        if where.after is not None:
            clauses.append("(created_at < ? OR (created_at = ? AND execution_id < ?))")
            args.extend((where.after[0], where.after[0], where.after[1]))
        sql = f"SELECT {COLUMNS} FROM executions"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at DESC, execution_id DESC LIMIT ?"
        return [execution_of(row) for row in self._read(sql, (*args, where.limit))]

    def unfinished(self) -> list[str]:
        rows = self._read(
            "SELECT execution_id FROM executions WHERE status IN ('pending', 'processing') "
            "ORDER BY created_at, execution_id"
        )
        return [row[0] for row in rows]

    def start_execution(self, execution_id: str, at: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE executions SET status = 'processing', started_at = ? "
                "WHERE execution_id = ? AND status = 'pending'",
                (at, execution_id),
            )

    def record_items(self, changes: Sequence[ItemChange]) -> None:
        """Write ``changes`` in one transaction: every start in one statement, each outcome
        in its own (so one recorded twice is counted once), and one count update for each
        execution touched, not one per change."""
        started = [(change.execution_id, i) for change in changes for i in change.started]
        counts: dict[str, list[int]] = {}  # execution → [completed, failed] newly recorded
        with self._transaction() as db:
            # Starts first: they only move pending items, so an outcome in the same batch
            # still lands after its item's start, as the journal promises.
            if started:
                db.executemany(
                    "UPDATE items SET status = 'processing' "
                    "WHERE execution_id = ? AND idx = ? AND status = 'pending'",
                    started,
                )
            for change in changes:
                for outcome in change.finished:
                    cursor = db.execute(
                        "UPDATE items SET status = ?, results = ?, error = ? "
                        "WHERE execution_id = ? AND idx = ? "
                        "AND status IN ('pending', 'processing')",
                        (
                            outcome.status,
                            encoder.encode(outcome.evaluator_results),
                            encoder.encode(outcome.error) if outcome.error else None,
                            change.execution_id,
                            outcome.index,
                        ),
                    )
                    if cursor.rowcount == 1:  # else already recorded: count it once
                        tally = counts.setdefault(change.execution_id, [0, 0])
                        tally[outcome.status != "completed"] += 1
            if counts:
                db.executemany(
                    "UPDATE executions SET completed_count = completed_count + ?, "
                    "failed_count = failed_count + ? WHERE execution_id = ?",
                    [(done, failed, execution) for execution, (done, failed) in counts.items()],
                )

    def finish_execution(
        self, execution_id: str, status: ExecutionStatus, at: float, error: ItemError | None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE executions SET status = ?, finished_at = ?, error = ?, "
                "started_at = COALESCE(started_at, ?) WHERE execution_id = ?",
                (status, at, encoder.encode(error) if error else None, at, execution_id),
            )

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()
