"""The JSON the API answers with: executions, items, judges, versions, errors.

Shapes follow the hosted batch-execute API: an execution carries ``batch_execution_id``,
``status``, ``total_count`` and ``items``; an item ``index``, ``status``, ``input`` (all five
fields, absent ones null) and ``evaluator_results`` of ``score``, ``justification`` and
``evaluator_name`` (and the verdict's ``status``: SUCCESS, ERROR, NA, or SKIPPED/ERRORED for
a pipeline step, see :mod:`kyro.serve._outcomes`). Times are ISO 8601 in UTC.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.responses import Response

from kyro.serve._body import Problem
from kyro.serve._judges import ServedJudge
from kyro.serve._records import Execution, ItemError, RawItem, Version

__all__ = [
    "JSONResponse",
    "error_response",
    "execution_view",
    "judge_view",
    "raw_execution_view",
    "status_url",
    "version_view",
]

_encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """A JSON response encoded with msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def error_response(
    status: int,
    detail: str,
    problems: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``{"detail": ..., "errors": [{"field", "message"}]}``; never a trace, key or transcript."""
    body: dict[str, Any] = {"detail": detail}
    if problems:
        body["errors"] = [{"field": p.field, "message": p.message} for p in problems]
    return JSONResponse(body, status_code=status, headers=headers)


def status_url(execution_id: str) -> str:
    """Where a client polls an execution."""
    return f"/v1/judges/batch-executions/{execution_id}/"


def _time(at: float | None) -> str | None:
    if at is None:
        return None
    moment = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(error: ItemError | None) -> dict[str, str] | None:
    return None if error is None else {"code": error.code, "message": error.message}


class _ItemView(msgspec.Struct, frozen=True, kw_only=True):
    """An item as the API shows it, from its stored JSON (nothing decoded)."""

    index: int
    status: str
    input: msgspec.Raw
    evaluator_results: msgspec.Raw
    error: msgspec.Raw | None


_NO_RESULTS = msgspec.Raw(b"[]")


def raw_execution_view(execution: Execution, items: Sequence[RawItem]) -> dict[str, Any]:
    """:func:`execution_view` from stored rows: the items' JSON is passed on as stored.

    Stored items hold the same fields the API shows (the input's five fields; each
    result's ``evaluator_name``, ``score``, ``justification`` and ``status``; the error's
    ``code`` and ``message``), so a status poll decodes and re-encodes nothing.
    """
    view = execution_view(execution)
    view["items"] = [
        _ItemView(
            index=item.index,
            status=item.status,
            input=item.input,
            evaluator_results=item.results or _NO_RESULTS,
            error=item.error,
        )
        for item in items
    ]
    return view


def execution_view(execution: Execution) -> dict[str, Any]:
    """An execution as a listing shows it (:func:`raw_execution_view` adds the items)."""
    done = execution.completed_count + execution.failed_count
    view: dict[str, Any] = {
        "batch_execution_id": execution.execution_id,
        "judge_id": execution.judge_id,
        "judge_version_id": execution.version_id,
        "status": execution.status,
        "tags": list(execution.tags),
        "total_count": execution.total_count,
        "completed_count": execution.completed_count,
        "failed_count": execution.failed_count,
        "remaining_count": execution.total_count - done,
        "created_at": _time(execution.created_at),
        "started_at": _time(execution.started_at),
        "finished_at": _time(execution.finished_at),
        "error": _error(execution.error),
        "status_url": status_url(execution.execution_id),
    }
    return view


def judge_view(judge: ServedJudge) -> dict[str, Any]:
    """A judge: id, name, description, its evaluators and latest version."""
    return {
        "id": judge.judge_id,
        "name": judge.config.name or judge.judge_id,
        "description": judge.config.description,
        "evaluators": list(judge.evaluators),
        "latest_version_id": judge.version.version_id,
        "versions_url": f"/v1/judges/{judge.judge_id}/versions/",
        "batch_execute_url": f"/v1/judges/{judge.judge_id}/batch-execute/",
    }


def version_view(version: Version, latest: str) -> dict[str, Any]:
    """One version of a judge."""
    return {
        "id": version.version_id,
        "judge_id": version.judge_id,
        "sha256": version.sha256,
        "evaluators": list(version.evaluators),
        "created_at": _time(version.created_at),
        "is_latest": version.version_id == latest,
    }
