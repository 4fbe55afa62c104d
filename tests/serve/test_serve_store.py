"""The SQLite store: WAL, schema version, transitions recorded once, filters; import rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kyro import KyroError
from kyro.serve import (
    SCHEMA_VERSION,
    EvaluatorResult,
    Execution,
    ExecutionFilter,
    ItemChange,
    ItemOutcome,
    SQLiteStore,
)


def _execution(execution_id: str, created_at: float, tags: tuple[str, ...] = ()) -> Execution:
    return Execution(
        execution_id=execution_id,
        judge_id="relevance",
        version_id="v",
        status="pending",
        tags=tags,
        total_count=2,
        created_at=created_at,
    )


def test_the_database_is_wal_private_and_versioned(tmp_path: Path) -> None:
    """A new store is a 0600 file in WAL mode stamped with the schema version."""
    store = SQLiteStore(tmp_path / "db" / "kyro-serve.sqlite3")
    store.close()
    path = tmp_path / "db" / "kyro-serve.sqlite3"
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer kyro is refused with a message, never misread."""
    path = tmp_path / "kyro-serve.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(KyroError, match="written by a newer kyro"):
        SQLiteStore(path)


def test_an_outcome_recorded_twice_counts_once(tmp_path: Path) -> None:
    """A resumed group reporting the same items again changes nothing the second time."""
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.create_execution(_execution("e1", 1.0), [{"request": "a"}, {"request": "b"}])
    store.record_items([ItemChange(execution_id="e1", started=(0, 1))])
    result = EvaluatorResult(evaluator_name="R", score=1.0, justification="ok", status="SUCCESS")
    outcome = ItemOutcome(index=0, status="completed", evaluator_results=(result,))
    store.record_items([ItemChange(execution_id="e1", finished=(outcome,))])
    again = ItemOutcome(index=0, status="failed")
    store.record_items([ItemChange(execution_id="e1", started=(0,), finished=(again,))])
    found = store.execution("e1")
    assert found is not None
    assert (found.completed_count, found.failed_count) == (1, 0)
    assert [i.status for i in found.items] == ["completed", "processing"]
    assert found.items[0].evaluator_results == (result,)
    assert store.unfinished() == ["e1"]
    store.finish_execution("e1", "completed", 2.0, None)
    assert store.unfinished() == []
    store.close()


def test_a_batch_of_changes_across_executions_is_counted_per_execution(tmp_path: Path) -> None:
    """One group commit of many one-item changes (starts, outcomes, a repeat) across two
    executions leaves each item and each execution's counts as if written one by one."""
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.create_execution(_execution("e1", 1.0), [{"request": "a"}, {"request": "b"}])
    store.create_execution(_execution("e2", 2.0), [{"request": "c"}, {"request": "d"}])
    done = ItemOutcome(index=0, status="completed")
    store.record_items(
        [
            ItemChange(execution_id="e1", started=(0,)),
            ItemChange(execution_id="e2", started=(0,)),
            ItemChange(execution_id="e1", started=(1,)),
            ItemChange(execution_id="e1", finished=(done,)),
            ItemChange(execution_id="e2", finished=(ItemOutcome(index=0, status="failed"),)),
            ItemChange(execution_id="e1", finished=(ItemOutcome(index=0, status="failed"),)),
            ItemChange(execution_id="e2", started=(1,), finished=(done,)),
        ]
    )
    first, second = store.execution("e1"), store.execution("e2")
    assert first is not None
    assert second is not None
    assert (first.completed_count, first.failed_count) == (1, 0)
    assert [i.status for i in first.items] == ["completed", "processing"]
    assert (second.completed_count, second.failed_count) == (0, 1)
    assert [i.status for i in second.items] == ["failed", "processing"]
    store.close()


def test_listing_filters_and_pages(tmp_path: Path) -> None:
    """Listings filter by tag, judge and status and page newest first after a cursor."""
    store = SQLiteStore(tmp_path / "s.sqlite3")
    for n in range(5):
        store.create_execution(_execution(f"e{n}", float(n), ("even",) if n % 2 == 0 else ()), [])
    store.finish_execution("e4", "failed", 9.0, None)

    def ids(where: ExecutionFilter) -> list[str]:
        return [e.execution_id for e in store.list_executions(where)]

    assert ids(ExecutionFilter()) == ["e4", "e3", "e2", "e1", "e0"]
    assert ids(ExecutionFilter(tag="even")) == ["e4", "e2", "e0"]
    assert ids(ExecutionFilter(status="failed")) == ["e4"]
    assert ids(ExecutionFilter(judge_id="other")) == []
    assert ids(ExecutionFilter(limit=2, after=(3.0, "e3"))) == ["e2", "e1"]
    store.close()
