"""The reply cache on the live path: one request at a time, answered from the cache or sent.

:class:`LiveCache` wraps a live provider's ``complete(request)`` (``kyro_local.LocalProvider``):
each run is looked up under its own key — the same key a batch job uses, so a live run and a
batch job of one config answer each other — and only a miss is sent; a reply that is a verdict
is stored. The run index comes from the request's custom_id. Cache work runs in a worker
thread, so the event loop never waits on SQLite, and in rounds: the lookups and stores asked
for while one round runs go together in the next (one thread hop, one transaction), so many
requests in flight share the cost instead of queueing one by one. A cache that fails (a full
disk, a folder that turned read-only) is logged once and then left alone: the run goes on,
every request sent.

Example::

    live = LiveCache(ReplyCache(folder), scope="openai-chat")
    line, cached = await live.complete(provider, request)
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Protocol

import anyio
import anyio.to_thread

from kyro._exceptions import KyroError
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.reply_cache import CachedReply, ReplyCache, RequestKeys

__all__ = ["LiveCache", "LiveProvider"]

_RUN = re.compile(r"-r(\d+)$")
_log = logging.getLogger("kyro")
_FAULTS = (KyroError, sqlite3.Error, OSError)


class LiveProvider(Protocol):
    """What the live path needs of a provider: one request, now."""

    async def complete(self, request: JudgeRequest) -> ResultLine: ...


class _Ask:
    """One lookup (``line`` None) or one store, waiting for its round."""

    __slots__ = ("done", "found", "key", "line", "model")

    def __init__(self, key: bytes, line: ResultLine | None = None, model: str = "") -> None:
        self.key = key
        self.line = line
        self.model = model
        self.found: CachedReply | None = None
        self.done = False


class LiveCache:
    """Answers live requests from the reply cache, and stores the verdicts of the rest."""

    def __init__(self, cache: ReplyCache, *, scope: str) -> None:
        self.cache = cache
        self.keys = RequestKeys(scope)
        self.scope = scope
        self.hits = 0
        self.sent = 0
        self.broken = False
        self._waiting: list[_Ask] = []
        self._running = False  # a round is in the worker thread: SQLite is used by one at a time
        self._round_over = anyio.Event()

    async def _ask(self, ask: _Ask) -> CachedReply | None:
        """Queue ``ask``; run rounds until it is answered (or wait for the round that runs)."""
        if self.broken:
            return None
        self._waiting.append(ask)
        while not ask.done:
            if self._running:
                await self._round_over.wait()
            else:
                await self._rounds()
        return ask.found

    async def _rounds(self) -> None:
        self._running = True
        try:
            while self._waiting and not self.broken:
                asks, self._waiting = self._waiting, []
                try:
                    await anyio.to_thread.run_sync(self._round, asks)
                except _FAULTS as exc:
                    self.broken = True
                    _log.warning("the reply cache stopped working (%s); sending every request", exc)
                finally:  # a failed or cancelled round answers its asks as misses, not stored
                    for ask in asks:
                        ask.done = True
        finally:
            for ask in self._waiting if self.broken else ():
                ask.done = True
            self._running = False
            over, self._round_over = self._round_over, anyio.Event()
            over.set()

    def _round(self, asks: list[_Ask]) -> None:
        """In the worker thread: every lookup of the round in one query, every store in one
        transaction."""
        lookups = [ask.key for ask in asks if ask.line is None]
        found = self.cache.get_many(lookups) if lookups else {}
        stores = [(a.key, a.line, self.scope, a.model) for a in asks if a.line is not None]
        if stores:
            self.cache.put_many(stores)
        for ask in asks:
            if ask.line is None:
                ask.found = found.get(ask.key)

    async def complete(
        self, provider: LiveProvider, request: JudgeRequest
    ) -> tuple[ResultLine, bool]:
        """``(line, cached)``: the cached reply of this run, else the provider's answer."""
        match = _RUN.search(request.custom_id)
        run = int(match[1]) if match is not None else 0
        key = self.keys.key(request, run=run)
        hit = await self._ask(_Ask(key))
        if hit is not None:
            self.hits += 1
            line = ResultLine(
                custom_id=request.custom_id, ok=True, content=hit.content, usage=hit.usage
            )
            return line, True
        line = await provider.complete(request)
        self.sent += 1
        if line.ok and line.content is not None:  # only a reply can be a verdict to keep
            await self._ask(_Ask(key, line, request.model))
        return line, False

    async def aclose(self) -> None:
        """Close the cache's database (in a worker thread), once the round running is over."""
        while self._running:
            await self._round_over.wait()
        await anyio.to_thread.run_sync(self.cache.close)
