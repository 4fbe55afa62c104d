"""The SQLite store's schema (version 1) and how its rows read back as records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from kyro.serve._records import EvaluatorResult, Execution, Item, ItemError, RawItem, Version

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "encoder",
    "execution_of",
    "item_of",
    "raw_item_of",
    "version_of",
]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE versions (
    version_id TEXT PRIMARY KEY, judge_id TEXT NOT NULL, sha256 TEXT NOT NULL,
    config_name TEXT NOT NULL, evaluators BLOB NOT NULL, created_at REAL NOT NULL,
    files BLOB NOT NULL);
CREATE INDEX versions_by_judge ON versions (judge_id, created_at);
CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY, judge_id TEXT NOT NULL, version_id TEXT NOT NULL,
    status TEXT NOT NULL, tags BLOB NOT NULL, total_count INTEGER NOT NULL,
    completed_count INTEGER NOT NULL DEFAULT 0, failed_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, error BLOB);
CREATE INDEX executions_by_time ON executions (created_at, execution_id);
CREATE TABLE execution_tags (
    execution_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (tag, execution_id))
    WITHOUT ROWID;
CREATE TABLE items (
    execution_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL,
    input BLOB NOT NULL, results BLOB, error BLOB, PRIMARY KEY (execution_id, idx))
    WITHOUT ROWID;
"""

COLUMNS = (
    "execution_id, judge_id, version_id, status, tags, total_count, completed_count, "
    "failed_count, created_at, started_at, finished_at, error"
)
encoder = msgspec.json.Encoder()
_strings = msgspec.json.Decoder(tuple[str, ...])
_inputs = msgspec.json.Decoder(dict[str, Any])
_results = msgspec.json.Decoder(tuple[EvaluatorResult, ...])
_errors = msgspec.json.Decoder(ItemError)
_files = msgspec.msgpack.Decoder(dict[str, bytes])


def version_of(row: Sequence[Any], files: bytes) -> Version:
    """A ``versions`` row (its first six columns) and its packed files."""
    return Version(
        version_id=row[0],
        judge_id=row[1],
        sha256=row[2],
        config_name=row[3],
        evaluators=_strings.decode(row[4]),
        created_at=row[5],
        files=_files.decode(files),
    )


def execution_of(row: Sequence[Any]) -> Execution:
    """An ``executions`` row in :data:`COLUMNS` order."""
    return Execution(
        execution_id=row[0],
        judge_id=row[1],
        version_id=row[2],
        status=row[3],
        tags=_strings.decode(row[4]),
        total_count=row[5],
        completed_count=row[6],
        failed_count=row[7],
        created_at=row[8],
        started_at=row[9],
        finished_at=row[10],
        error=_errors.decode(row[11]) if row[11] else None,
    )


def item_of(row: Sequence[Any]) -> Item:
    """An ``items`` row: index, status, input, results, error."""
    return Item(
        index=row[0],
        status=row[1],
        input=_inputs.decode(row[2]),
        evaluator_results=_results.decode(row[3]) if row[3] else (),
        error=_errors.decode(row[4]) if row[4] else None,
    )


def raw_item_of(row: Sequence[Any]) -> RawItem:
    """An ``items`` row with its JSON columns left encoded."""
    return RawItem(
        index=row[0],
        status=row[1],
        input=msgspec.Raw(row[2]),
        results=msgspec.Raw(row[3]) if row[3] else None,
        error=msgspec.Raw(row[4]) if row[4] else None,
    )
