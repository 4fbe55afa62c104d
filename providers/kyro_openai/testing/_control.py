"""Control routes under ``/_emulator`` for tests that drive a separate emulator process.

=======================================  ============================================
``GET /_emulator/stats``                 counters (see ``EmulatorStats``)
``GET /_emulator/faults``                the faults still armed
``POST /_emulator/faults``               arm one fault or a list (JSON, tagged ``kind``)
``DELETE /_emulator/faults``             disarm every fault
``POST /_emulator/clock/advance``        ``{"seconds": 60}``: move the clock forward
``POST /_emulator/batches/{id}/expire``  ``{"completed_lines": 3}`` (optional body)
=======================================  ============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kyro_openai.testing._faults import Fault
from kyro_openai.testing._routes import read_json
from kyro_openai.testing._wire import ApiError, json_response

if TYPE_CHECKING:
    from kyro_openai.testing._emulator import Emulator

__all__ = ["control_routes"]


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _convert(data: Any, type_: Any, what: str) -> Any:
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"Invalid {what}: {exc}.") from exc


async def stats(request: Request) -> Response:
    """The emulator's counters."""
    return json_response(_emulator(request).stats())


async def list_faults(request: Request) -> Response:
    """The faults still armed."""
    return json_response({"object": "list", "data": _emulator(request).faults.active()})


async def add_faults(request: Request) -> Response:
    """Arm faults: one fault object, or a list of them."""
    data = await read_json(request)
    faults = _convert(data if isinstance(data, list) else [data], list[Fault], "fault")
    emulator = _emulator(request)
    emulator.faults.add(*faults)
    return json_response({"object": "list", "data": emulator.faults.active()})


async def clear_faults(request: Request) -> Response:
    """Disarm every fault."""
    _emulator(request).faults.clear()
    return json_response({"object": "list", "data": []})


class _Advance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seconds: float


class _Expire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    completed_lines: int | None = None


async def advance_clock(request: Request) -> Response:
    """Move the emulator's clock forward by ``seconds``."""
    body: _Advance = _convert(await read_json(request), _Advance, "clock advance")
    emulator = _emulator(request)
    emulator.advance(body.seconds)
    return json_response({"now": emulator.now()})


async def expire_batch(request: Request) -> Response:
    """Make a batch expire now, then return it (advanced)."""
    raw = await request.body()
    body: _Expire = _convert(msgspec.json.decode(raw) if raw.strip() else {}, _Expire, "expiry")
    emulator = _emulator(request)
    batch_id = request.path_params["batch_id"]
    try:
        emulator.expire(batch_id, completed_lines=body.completed_lines)
    except KeyError:
        raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id") from None
    return json_response(await emulator.book.get(batch_id))


def control_routes() -> list[Route]:
    """The control routes, relative to ``/_emulator``."""
    return [
        Route("/stats", stats, methods=["GET"]),
        Route("/faults", list_faults, methods=["GET"]),
        Route("/faults", add_faults, methods=["POST"]),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/clock/advance", advance_clock, methods=["POST"]),
        Route("/batches/{batch_id}/expire", expire_batch, methods=["POST"]),
    ]
