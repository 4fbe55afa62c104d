"""kyro serve: the judges of your configs behind a batch-execute REST API, on your own machine.

``POST /v1/judges/{judge_id}/batch-execute/`` takes 1–100 request/response pairs and answers
202 with a ``batch_execution_id`` and a ``status_url``; ``GET`` on that URL shows the
execution's status and, item by item, each evaluator's score and justification. Executions
are kept in SQLite (WAL); every transition is committed before it is acknowledged, and a
restarted server finishes what it had accepted: items already finished are never sent
again; through a batch provider no batch is created twice; through a live provider the
items that were in flight at the crash are sent again.

Run it with ``python3 -m kyro serve --judges judges/ --base-url http://127.0.0.1:11434/v1``,
or build it in Python::

    from kyro.serve import KeyRing, LiveExecutor, build_service, run_server
    from kyro_local import LocalProvider

    service = build_service(
        ["judges/"],
        data_dir=Path("serve-data"),
        executor=lambda jobs: LiveExecutor(
            LocalProvider(base_url=URL, state_dir=jobs / "local", concurrency=16),
            concurrency=16,
        ),
        keys=KeyRing(["a-long-random-key-0123456789"]),
    )
    run_server(service, port=8080)

Live providers run each item as it comes (:class:`LiveExecutor`); a batch provider runs an
execution as one half-price batch (:class:`BatchJudgeExecutor`).

Needs the ``serve`` extra (starlette, uvicorn).
"""

from __future__ import annotations

from kyro.serve._app import ServeApp
from kyro.serve._auth import ENV_KEYS, KeyRing, load_keys
from kyro.serve._executor import BatchJudgeExecutor, Executor, ProviderFactory, Reporter, Work
from kyro.serve._live_executor import LiveExecutor
from kyro.serve._records import (
    EvaluatorResult,
    Execution,
    ExecutionFilter,
    Item,
    ItemChange,
    ItemError,
    ItemOutcome,
    Store,
    Version,
)
from kyro.serve._server import DATABASE_NAME, build_service, configure_logging, run_server
from kyro.serve._sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = [
    "DATABASE_NAME",
    "ENV_KEYS",
    "SCHEMA_VERSION",
    "BatchJudgeExecutor",
    "EvaluatorResult",
    "Execution",
    "ExecutionFilter",
    "Executor",
    "Item",
    "ItemChange",
    "ItemError",
    "ItemOutcome",
    "KeyRing",
    "LiveExecutor",
    "ProviderFactory",
    "Reporter",
    "SQLiteStore",
    "ServeApp",
    "Store",
    "Version",
    "Work",
    "build_service",
    "configure_logging",
    "load_keys",
    "run_server",
]
