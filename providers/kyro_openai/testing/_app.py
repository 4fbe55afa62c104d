"""The ASGI application: API routes under ``/v1`` (and Azure's ``/openai/v1``), control routes
under ``/_emulator``, every error as an OpenAI error envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from kyro_openai.testing._control import control_routes
from kyro_openai.testing._guard import Guard
from kyro_openai.testing._routes import api_routes
from kyro_openai.testing._wire import ApiError, error_response

if TYPE_CHECKING:
    from kyro_openai.testing._emulator import Emulator

__all__ = ["create_app"]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}."
        return error_response(404, message, code="unknown_url")
    return error_response(exc.status_code, f"{exc.detail} ({request.method} {request.url.path}).")


def create_app(emulator: Emulator | None = None) -> Starlette:
    """The emulator's ASGI application (a new ``Emulator`` with defaults when none is given).

    Example::

        app = create_app()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://emulator/v1",
                                   headers={"Authorization": "Bearer test"})
    """
    if emulator is None:
        from kyro_openai.testing._emulator import Emulator

        return Emulator().app
    routes = api_routes()
    app = Starlette(
        routes=[
            Mount("/v1", routes=routes),
            Mount("/openai/v1", routes=routes),
            Mount("/_emulator", routes=control_routes()),
        ],
        middleware=[Middleware(Guard, emulator=emulator)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = emulator
    return app
