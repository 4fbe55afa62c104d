"""Putting the service together and serving it with uvicorn on 127.0.0.1 (by default).

``build_service`` wires the store, the judges, the executor and the workers; ``run_server``
binds, prints the base URL on stdout (scripts read it), logs one JSON line per event on
stderr, and serves until SIGINT or SIGTERM — then stops taking requests, lets running
executions finish for up to ``grace`` seconds and parks the rest for the next start.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from kyro.serve._app import ServeApp
from kyro.serve._auth import KeyRing
from kyro.serve._executor import Executor
from kyro.serve._judges import JudgeRegistry, find_configs
from kyro.serve._sqlite import SQLiteStore
from kyro.serve._worker import WorkerPool
from kyro.testing.serving import bind, run_until_stopped, socket_url

__all__ = ["DATABASE_NAME", "build_service", "configure_logging", "run_server"]

DATABASE_NAME = "kyro-serve.sqlite3"
_STANDARD = set(vars(logging.makeLogRecord({})))


def build_service(
    judges: Sequence[str | Path],
    *,
    data_dir: Path,
    executor: Callable[[Path], Executor],
    keys: KeyRing,
    max_body_bytes: int = 8 * 1024 * 1024,
    grace: float = 10.0,
    active: int = 64,
) -> ServeApp:
    """The service over ``judges`` (files or folders) keeping everything under ``data_dir``.

    ``executor`` gets the folder executors keep their jobs in (``data_dir/jobs``).

    Example::

        service = build_service(
            ["judges/"],
            data_dir=Path("serve-data"),
            executor=lambda jobs: BatchJudgeExecutor(factory, jobs_dir=jobs),
            keys=KeyRing(load_keys(os.environ.get("KYRO_SERVE_API_KEYS"), None)),
        )
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = SQLiteStore(data_dir / DATABASE_NAME)
    try:
        registry = JudgeRegistry(store, data_dir / "versions")
        registry.load(find_configs(judges))
    except BaseException:
        store.close()
        raise
    pool = WorkerPool(store, registry, executor(data_dir / "jobs"), active=active)
    return ServeApp(store, registry, pool, keys=keys, max_body_bytes=max_body_bytes, grace=grace)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and key != "color_message":
                line[key] = value
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Send kyro's and uvicorn's log lines to ``stream`` (stderr) as JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("kyro", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def run_server(
    service: ServeApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_bound: Callable[[str], object] = print,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_bound`` gets ``http://host:port`` once bound."""
    sock = bind(host, port, backlog=512, inheritable=False)
    config = uvicorn.Config(
        service.app,
        http="h11",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(service.grace)),
        # Clients poll every few seconds; keep their connections open across polls.
        timeout_keep_alive=30,
        server_header=False,
    )
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original(sockets=sockets)
        if not server.should_exit:
            on_bound(socket_url(sock))

    server.startup = startup  # type: ignore[method-assign]
    # Returns normally on SIGTERM, after the graceful shutdown (see kyro.testing.serving).
    with sock:
        run_until_stopped(server, sock)
