"""The ASGI application: the batch-execute routes over the store, the registry and the workers.

Routes (every one but ``/healthz`` needs an API key)::

    GET  /healthz
    GET  /v1/judges/
    GET  /v1/judges/{judge_id}/
    GET  /v1/judges/{judge_id}/versions/
    POST /v1/judges/{judge_id}/batch-execute/         202 {batch_execution_id, status_url}
    GET  /v1/judges/batch-executions/                 ?tag=&judge_id=&status=&page_size=&cursor=
    GET  /v1/judges/batch-executions/{id}/

A POST is answered 202 only once the execution and its items are committed.
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kyro import JudgesConfig, load_config
from kyro.serve._body import Problem, parse_body
from kyro.serve._judges import JudgeRegistry, ServedJudge
from kyro.serve._middleware import GuardMiddleware
from kyro.serve._records import Execution, ExecutionFilter, Store
from kyro.serve._views import (
    JSONResponse,
    error_response,
    execution_view,
    judge_view,
    raw_execution_view,
    status_url,
    version_view,
)
from kyro.serve._worker import WorkerPool

__all__ = ["ServeApp"]

_STATUSES = ("pending", "processing", "completed", "failed")
_cursor_type = tuple[float, str]


class ServeApp:
    """The service's state and its routes; ``app`` is the Starlette application.

    Example::

        service = ServeApp(store, registry, pool, keys=KeyRing([...]))
        uvicorn.run(service.app, host="127.0.0.1", port=8080)
    """

    def __init__(
        self,
        store: Store,
        registry: JudgeRegistry,
        pool: WorkerPool,
        *,
        keys: Any,
        max_body_bytes: int = 8 * 1024 * 1024,
        grace: float = 10.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.grace = grace
        self._inline_reads = getattr(store, "inline_reads", False) is True
        routes = [
            Route("/healthz", self.healthz),
            Route("/v1/judges/", self.list_judges),
            Route("/v1/judges/batch-executions/", self.list_executions),
            Route("/v1/judges/batch-executions/{execution_id}/", self.get_execution),
            Route("/v1/judges/{judge_id}/", self.get_judge),
            Route("/v1/judges/{judge_id}/versions/", self.list_versions),
            Route("/v1/judges/{judge_id}/batch-execute/", self.batch_execute, methods=["POST"]),
        ]
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(GuardMiddleware, keys=keys, max_body_bytes=max_body_bytes)],
            exception_handlers={HTTPException: _http_error},
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            async with self.pool.running(grace=self.grace):
                yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.pool.executor.aclose()
                await anyio.to_thread.run_sync(self.store.close)

    async def healthz(self, request: Request) -> Response:
        unfinished = await anyio.to_thread.run_sync(self.store.unfinished)  # the database answers
        return JSONResponse(
            {"status": "ok", "judges": len(self.registry.judges), "unfinished": len(unfinished)}
        )

    async def list_judges(self, request: Request) -> Response:
        judges = [await self._judge(j) for j in sorted(self.registry.judges)]
        return JSONResponse({"results": [judge_view(j) for j in judges if j is not None]})

    async def get_judge(self, request: Request) -> Response:
        judge = await self._judge(request.path_params["judge_id"])
        if judge is None:
            return _no_judge()
        return JSONResponse(judge_view(judge))

    async def list_versions(self, request: Request) -> Response:
        judge = await self._judge(request.path_params["judge_id"])
        if judge is None:
            return _no_judge()
        versions = await anyio.to_thread.run_sync(self.store.versions, judge.judge_id)
        latest = judge.version.version_id
        return JSONResponse({"results": [version_view(v, latest) for v in versions]})

    async def batch_execute(self, request: Request) -> Response:
        judge = await self._judge(request.path_params["judge_id"])
        if judge is None:
            return _no_judge()
        body = parse_body(await request.body())
        if isinstance(body, list):
            return error_response(422, "the request body is not valid", body)
        version = judge.version
        if body.judge_version_id is not None and body.judge_version_id != version.version_id:
            pinned = await anyio.to_thread.run_sync(self.store.version, body.judge_version_id)
            if pinned is None or pinned.judge_id != judge.judge_id:
                return error_response(
                    404,
                    f"judge {judge.judge_id} has no version {body.judge_version_id}; "
                    f"GET /v1/judges/{judge.judge_id}/versions/ lists them",
                )
            version = pinned
        if version is judge.version:
            loaded = judge.config
        else:
            config = await anyio.to_thread.run_sync(self.registry.materialise, version)
            loaded = await anyio.to_thread.run_sync(load_config, config)
        needs = _input_fields(loaded)
        problems = [
            Problem(
                f"inputs[{i}].{field}", f"required: this judge's prompt uses {{{{input.{field}}}}}"
            )
            for i, value in enumerate(body.inputs)
            for field in needs
            if value.get(field) is None
        ]
        if problems:
            return error_response(422, "the inputs lack fields this judge needs", problems)
        execution = Execution(
            execution_id=str(uuid.uuid4()),
            judge_id=judge.judge_id,
            version_id=version.version_id,
            status="pending",
            tags=body.tags,
            total_count=len(body.inputs),
            created_at=time.time(),
        )
        await anyio.to_thread.run_sync(self.store.create_execution, execution, body.inputs)
        self.pool.start(execution.execution_id)
        url = status_url(execution.execution_id)
        return JSONResponse(
            {"batch_execution_id": execution.execution_id, "status_url": url},
            status_code=202,
            headers={"Location": url},
        )

    async def get_execution(self, request: Request) -> Response:
        execution_id = request.path_params["execution_id"]
        if self._inline_reads:  # the poll clients repeat most: no trip to a worker thread
            found = self.store.execution_raw(execution_id)
        else:
            found = await anyio.to_thread.run_sync(self.store.execution_raw, execution_id)
        if found is None:
            return error_response(404, f"no batch execution {execution_id}")
        return JSONResponse(raw_execution_view(*found))

    async def list_executions(self, request: Request) -> Response:
        query = request.query_params
        problems: list[Problem] = []
        for key in query:
            if key not in ("tag", "judge_id", "status", "page_size", "cursor"):
                problems.append(
                    Problem(
                        key, "unknown parameter; use tag, judge_id, status, page_size or cursor"
                    )
                )
        status = query.get("status")
        if status is not None and status not in _STATUSES:
            problems.append(Problem("status", "must be one of " + ", ".join(_STATUSES)))
        size = query.get("page_size", "20")
        if not size.isdigit() or not 1 <= int(size) <= 100:
            problems.append(Problem("page_size", "must be a whole number from 1 to 100"))
        after = _decode_cursor(query.get("cursor"))
        if query.get("cursor") is not None and after is None:
            problems.append(Problem("cursor", "not a cursor this server gave; start over"))
        if problems:
            return error_response(422, "the query is not valid", problems)
        where = ExecutionFilter(
            tag=query.get("tag"),
            judge_id=query.get("judge_id"),
            status=status,
            limit=int(size) + 1,
            after=after,
        )
        found = await anyio.to_thread.run_sync(self.store.list_executions, where)
        page = found[: int(size)]
        next_url = None
        if len(found) > len(page):
            last = page[-1]
            params = {k: v for k, v in query.items() if k != "cursor"}
            params["cursor"] = _encode_cursor((last.created_at, last.execution_id))
            next_url = str(request.url.replace_query_params(**params))
            next_url = "/v1/judges/batch-executions/?" + next_url.partition("?")[2]
        return JSONResponse({"next": next_url, "results": [execution_view(e) for e in page]})

    async def _judge(self, judge_id: str) -> ServedJudge | None:
        """The judge, refreshed from disk when its files changed (in a worker thread)."""
        return await anyio.to_thread.run_sync(self.registry.get, judge_id)


def _input_fields(loaded: JudgesConfig) -> list[str]:
    """The input fields the version's prompts read (``{{input.contexts}}`` needs contexts)."""
    fields: dict[str, None] = {}
    for one in loaded.judges:
        for field in one.fields:
            head, _, rest = field.partition(".")
            if head == "input" and rest:
                fields[rest.split(".")[0]] = None
    return list(fields)


def _no_judge() -> Response:
    return error_response(404, "no such judge; GET /v1/judges/ lists the judges served here")


def _encode_cursor(value: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def _decode_cursor(text: str | None) -> tuple[float, str] | None:
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return msgspec.json.decode(raw, type=_cursor_type)
    except (ValueError, msgspec.DecodeError):
        return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {404: "no such route", 405: "method not allowed on this route"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, detail, headers=exc.headers)
