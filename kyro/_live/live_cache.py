"""The reply cache on the live path: one request at a time, answered from the cache or sent.

:class:`LiveCache` wraps a live provider's ``complete(request)`` (``kyro_local.LocalProvider``):
each run is looked up under its own key — the same key a batch job uses, so a live run and a
batch job of one config answer each other — and only a miss is sent; a reply that is a verdict
is stored. The run index comes from the request's custom_id. Cache work runs in a worker
thread, one call at a time, so the event loop never waits on SQLite. A cache that fails (a
full disk, a folder that turned read-only) is logged once and then left alone: the run goes
on, every request sent.

Example::

    live = LiveCache(ReplyCache(folder), scope="openai-chat")
    line, cached = await live.complete(provider, request)
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any, Protocol

import anyio
import anyio.to_thread

from kyro._exceptions import KyroError
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys

__all__ = ["LiveCache", "LiveProvider"]

_RUN = re.compile(r"-r(\d+)$")
_log = logging.getLogger("kyro")
_FAULTS = (KyroError, sqlite3.Error, OSError)


class LiveProvider(Protocol):
    """What the live path needs of a provider: one request, now."""

    async def complete(self, request: JudgeRequest) -> ResultLine: ...


class LiveCache:
    """Answers live requests from the reply cache, and stores the verdicts of the rest."""

    def __init__(self, cache: ReplyCache, *, scope: str) -> None:
        self.cache = cache
        self.keys = RequestKeys(scope)
        self.scope = scope
        self.hits = 0
        self.sent = 0
        self.broken = False
        self._lock = anyio.Lock()

    async def _call(self, func: Any, *args: Any) -> Any:
        """``func(*args)`` in a worker thread; None (logged once) when the cache fails."""
        async with self._lock:
            if self.broken:
                return None
            try:
                return await anyio.to_thread.run_sync(func, *args)
            except _FAULTS as exc:
                self.broken = True
                _log.warning("the reply cache stopped working (%s); sending every request", exc)
                return None

    async def complete(
        self, provider: LiveProvider, request: JudgeRequest
    ) -> tuple[ResultLine, bool]:
        """``(line, cached)``: the cached reply of this run, else the provider's answer."""
        match = _RUN.search(request.custom_id)
        run = int(match[1]) if match is not None else 0
        async with self._lock:
            key = self.keys.key(request, run=run)
        hit = await self._call(self.cache.get, key)
        if hit is not None:
            self.hits += 1
            line = ResultLine(
                custom_id=request.custom_id, ok=True, content=hit.content, usage=hit.usage
            )
            return line, True
        line = await provider.complete(request)
        self.sent += 1
        await self._call(self._store, key, line, request.model)
        return line, False

    def _store(self, key: bytes, line: ResultLine, model: str) -> None:
        self.cache.put(key, line, provider=self.scope, model=model)

    async def aclose(self) -> None:
        """Close the cache's database (in a worker thread)."""
        async with self._lock:
            await anyio.to_thread.run_sync(self.cache.close)
