"""The reply cache on the live path: one request at a time, answered from the cache or sent.

:class:`LiveCache` wraps a live provider's ``complete(request)`` (``kyro_local.LocalProvider``):
each run is looked up under its own key — the same key a batch job uses, so a live run and a
batch job of one config answer each other — and only a miss is sent; a reply that is a verdict
is stored. The run index comes from the request's custom_id.

A lookup is one indexed read on a connection of its own, made on the event loop: the file is
in WAL mode, where a reader never waits for a writer, and a busy file is a miss, not a wait
(:class:`~kyro._verdicts.reply_cache.ReplyReader`). Lookups used to go to a worker thread in
rounds, and that re-grouped the requests in flight: those answered by one round were all sent
at once, came back at once and queued for the loop together, which cost more than the hops
saved. Stores write, and may wait for another process's transaction, so they run in a worker
thread, in rounds: the stores queued while one round runs go together in the next (one
thread hop, one transaction), and a reply whose store joins a running round goes back to its
caller without waiting for it. The hit counter is added to in the same rounds. A cache that
fails (a full disk, a folder that turned read-only) is logged once and then left alone: the
run goes on, every request sent.

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
from kyro._verdicts.reply_cache import CachedReply, ReplyCache, ReplyReader, RequestKeys

__all__ = ["LiveCache", "LiveProvider"]

_RUN = re.compile(r"-r(\d+)$")
_log = logging.getLogger("kyro")
_FAULTS = (KyroError, sqlite3.Error, OSError)


class LiveProvider(Protocol):
    """What the live path needs of a provider: one request, now."""

    async def complete(self, request: JudgeRequest) -> ResultLine: ...


# One reply to store, as ReplyCache.put_many takes it: key, line, scope, model.
_Store = tuple[bytes, ResultLine, str, str]


class LiveCache:
    """Answers live requests from the reply cache, and stores the verdicts of the rest."""

    def __init__(self, cache: ReplyCache, *, scope: str) -> None:
        self.cache = cache
        self.keys = RequestKeys(scope)
        self.scope = scope
        self.hits = 0
        self.sent = 0
        self.broken = False
        self._reader: ReplyReader | None = None
        self._waiting: list[_Store] = []
        self._uncounted = 0  # hits not yet added to the cache's counter
        self._running = False  # a round is in the worker thread: the writer is used by one
        self._round_over = anyio.Event()

    def _stop(self, exc: Exception) -> None:
        if not self.broken:
            self.broken = True
            _log.warning("the reply cache stopped working (%s); sending every request", exc)

    def _lookup(self, key: bytes) -> CachedReply | None:
        """The cached reply under ``key``, read on the loop (None on a miss or a fault)."""
        if self.broken:
            return None
        try:
            if self._reader is None:
                self._reader = self.cache.reader()
            found = self._reader.get(key)
        except _FAULTS as exc:
            self._stop(exc)
            return None
        if found is not None:
            self._uncounted += 1
        return found

    async def _store(self, store: _Store) -> None:
        """Queue ``store``. While a round runs, return at once: that round takes every store
        queued before it ends. Otherwise run the rounds here."""
        if self.broken:
            return
        self._waiting.append(store)
        if not self._running:
            await self._rounds()

    async def _rounds(self) -> None:
        self._running = True
        try:
            while (self._waiting or self._uncounted) and not self.broken:
                stores, self._waiting = self._waiting, []
                hits, self._uncounted = self._uncounted, 0
                written: list[bool] = []
                try:
                    await anyio.to_thread.run_sync(self._round, stores, hits, written)
                except _FAULTS as exc:
                    self._stop(exc)
                except BaseException:  # cancelled: what the round did not write waits again
                    if not written:
                        self._waiting[:0] = stores
                        self._uncounted += hits
                    raise
        finally:
            self._running = False
            over, self._round_over = self._round_over, anyio.Event()
            over.set()

    def _round(self, stores: list[_Store], hits: int, written: list[bool]) -> None:
        """In the worker thread: every store of the round in one transaction, and the hits
        counted since the last round; ``written`` gets True once both are done."""
        if stores:
            self.cache.put_many(stores)
        if hits:
            self.cache.count_hits(hits)
        written.append(True)

    async def complete(
        self, provider: LiveProvider, request: JudgeRequest
    ) -> tuple[ResultLine, bool]:
        """``(line, cached)``: the cached reply of this run, else the provider's answer."""
        match = _RUN.search(request.custom_id)
        run = int(match[1]) if match is not None else 0
        key = self.keys.key(request, run=run)
        hit = self._lookup(key)
        if hit is not None:
            self.hits += 1
            line = ResultLine(
                custom_id=request.custom_id, ok=True, content=hit.content, usage=hit.usage
            )
            return line, True
        line = await provider.complete(request)
        self.sent += 1
        if line.ok and line.content is not None:  # only a reply can be a verdict to keep
            await self._store((key, line, self.scope, request.model))
        return line, False

    async def aclose(self) -> None:
        """Close the cache's database (in a worker thread) once the round running is over and
        what is still queued (stores a cancelled round left, hits not counted) is written."""
        while self._running:
            await self._round_over.wait()
        if self._waiting or self._uncounted:
            await self._rounds()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        await anyio.to_thread.run_sync(self.cache.close)
