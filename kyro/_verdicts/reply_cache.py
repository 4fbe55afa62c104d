"""The reply cache: answered requests, so a re-run pays only for what changed.

A reply is stored under a key that hashes everything that decides the answer — the provider,
the model, the messages, the params, the JSON request and its schema — and the run index, so
three runs of one judge stay three independent samples (run 1 is never answered with run 0's
reply). The custom_id is not part of the key: the same request in another job, stage or
position hits. Only verdicts are stored: a failed request, or a reply that does not parse
as a verdict, never is, so a re-run asks again.

The store is one SQLite file (``replies.sqlite3``, WAL, 0600) in the cache folder. It is
bounded by ``max_bytes`` (reply text and usage): when a store pushes it past the cap, the
oldest entries (by when they were stored) are evicted first; a hit does not refresh an
entry's age (a lookup only bumps the hit counter). Several processes may share one folder.

Example::

    cache = ReplyCache(Path(".kyro/cache"))
    keys = RequestKeys("openai")
    key = keys.key(request, run=0)
    hit = cache.get(key)              # CachedReply or None
    cache.put(key, result_line)       # True when stored (a verdict), False otherwise
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from kyro._exceptions import KyroError
from kyro._files import ClosedOnExit, held_briefly
from kyro._types import JudgeRequest, ResultLine, Usage
from kyro._verdicts.vote import parse_reply

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CacheSetting",
    "CacheStats",
    "CachedReply",
    "ReplyCache",
    "RequestKeys",
    "cache_dir_for",
    "cache_scope_of",
    "default_cache_dir",
]

CacheSetting = bool | str | Path
"""``True`` (the default folder), ``False`` (off) or a folder."""

DEFAULT_MAX_BYTES = 1 << 30
"""The default size cap of a cache folder: 1 GiB of replies."""

CACHE_FILE = "replies.sqlite3"
SETUP_LOCK_FILE = "replies.lock"
_FORMAT = b"kyro-cache-1\x00"
_CHUNK = 500
# Rows stored per insert statement: a job's replies go in a few large writes, not one
# statement per reply.
_INSERT_CHUNK = 4_000
_Row = tuple[bytes, str, str, str, "bytes | None", int, float]
_INSERT = (
    "INSERT INTO replies (key, provider, model, content, usage, size, stored_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    seq INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    usage BLOB,
    size INTEGER NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('bytes', 0), ('hits', 0), ('stored', 0), ('evicted', 0);
"""
# Fields of a request that do not change its answer: where it sits in a job, and how many
# runs travel together in one request (each run is keyed alone).
_NOT_IN_KEY = ("custom_id", "samples")


class CachedReply(msgspec.Struct, frozen=True, kw_only=True):
    """One stored answer: the reply text and the usage it cost when it was paid for."""

    content: str
    usage: Usage | None = None
    stored_at: float = 0.0


_decode_usage = msgspec.json.Decoder(Usage).decode


def _cached_reply(content: str, usage: bytes | None, stored_at: float) -> CachedReply:
    """A ``replies`` row's answer (its usage is stored as JSON)."""
    decoded = _decode_usage(usage) if usage is not None else None
    return CachedReply(content=content, usage=decoded, stored_at=stored_at)


class CacheStats(msgspec.Struct, frozen=True, kw_only=True):
    """What a cache folder holds: entries, bytes against the cap, and lifetime counters."""

    path: Path
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    stored: int
    evicted: int
    oldest: float | None = None
    newest: float | None = None


class RequestKeys:
    """Cache keys for requests of one provider (sha256 digests, 32 bytes).

    The runs of one transcript × judge share their messages object, so the hash of the
    request is computed once and only the run index is added per run.

    Example::

        keys = RequestKeys("openai")
        keys.key(request, run=0) != keys.key(request, run=1)   # True
    """

    __slots__ = ("_encoder", "_last", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._encoder = msgspec.json.Encoder(order="sorted")
        self._last: tuple[JudgeRequest, Any] | None = None

    def key(self, request: JudgeRequest, *, run: int) -> bytes:
        """The key of ``request``'s run ``run``."""
        last = self._last
        if last is not None and _same_answer(last[0], request):
            base = last[1]
        else:
            base = hashlib.sha256(_FORMAT)
            base.update(self.provider.encode())
            base.update(b"\x00")
            fields = msgspec.structs.asdict(request)
            for name in _NOT_IN_KEY:
                fields.pop(name, None)
            base.update(self._encoder.encode(fields))
            self._last = (request, base)
        digest = base.copy()
        digest.update(b"\x00run=%d" % run)
        result: bytes = digest.digest()
        return result


def _same_answer(a: JudgeRequest, b: JudgeRequest) -> bool:
    """True when two requests differ only in fields outside the key (the fast path)."""
    if a.messages is not b.messages:
        return False
    for name in a.__struct_fields__:
        if name not in _NOT_IN_KEY and name != "messages" and getattr(a, name) != getattr(b, name):
            return False
    return True


class CacheError(KyroError):
    """The cache folder cannot be used (not writable, not a kyro cache)."""


class ReplyCache(ClosedOnExit):
    """The SQLite store behind the cache (see the module docstring).

    ``clock`` gives the time entries are stamped with (injectable for tests).

    Example::

        with ReplyCache(folder, max_bytes=100 << 20) as cache:
            hits = cache.get_many(keys)          # {key: CachedReply}
            print(cache.stats().entries)
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.folder = Path(folder)
        self.path = self.folder / CACHE_FILE
        self.max_bytes = max_bytes
        self._clock = clock
        self._encode = msgspec.json.Encoder().encode
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            # Opened on one thread, used on a worker thread (never two at once).
            self._db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cannot use the cache folder {self.folder}: {exc}; pass another folder with "
                "--cache-dir, or turn the cache off with --no-cache"
            ) from None
        try:
            # Switching a new file to WAL can fail at once ("locked") while another process
            # or thread does the same, without waiting: the set-up is taken in turns.
            with held_briefly(self.folder / SETUP_LOCK_FILE):
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self._db.close()
            raise CacheError(
                f"cannot use the cache folder {self.folder}: {exc}; pass another folder with "
                "--cache-dir, or turn the cache off with --no-cache"
            ) from None

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def get(self, key: bytes) -> CachedReply | None:
        """The stored reply for ``key``, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, CachedReply]:
        """Stored replies for any of ``keys`` (missing keys are absent from the result)."""
        found: dict[bytes, CachedReply] = {}
        chunk: list[bytes] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == _CHUNK:
                self._fetch(chunk, found)
                chunk = []
        if chunk:
            self._fetch(chunk, found)
        if found:
            self.count_hits(len(found))
        return found

    def count_hits(self, hits: int) -> None:
        """Add ``hits`` to the hit counter :meth:`stats` reports."""
        self._db.execute("UPDATE meta SET value = value + ? WHERE name = 'hits'", (hits,))

    def reader(self) -> ReplyReader:
        """A connection of its own for point lookups (see :class:`ReplyReader`)."""
        return ReplyReader(self.path)

    def _fetch(self, keys: list[bytes], into: dict[bytes, CachedReply]) -> None:
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT key, content, usage, stored_at FROM replies WHERE key IN ({marks})", keys
        )
        for key, content, usage, stored_at in rows:
            into[key] = _cached_reply(content, usage, stored_at)

    def put(self, key: bytes, line: ResultLine, *, provider: str = "", model: str = "") -> bool:
        """Store one answered request; False (nothing stored) unless it is a verdict."""
        return self.put_many([(key, line, provider, model)]) == 1

    def put_many(self, items: Iterable[tuple[bytes, ResultLine, str, str]]) -> int:
        """Store many ``(key, line, provider, model)`` in one transaction; the count stored.

        A line that failed, or whose reply is not a verdict, is skipped; a key already
        stored keeps its first reply.
        """
        now = self._clock()
        stored = added = 0
        with _transaction(self._db):
            rows: list[_Row] = []
            for key, line, provider, model in items:
                if not line.ok or line.content is None or not parse_reply(line.content).valid:
                    continue
                usage = self._encode(line.usage) if line.usage is not None else None
                size = len(line.content.encode()) + (len(usage) if usage else 0)
                rows.append((key, provider, model, line.content, usage, size, now))
                if len(rows) == _INSERT_CHUNK:
                    count, size = self._insert_new(rows)
                    stored, added, rows = stored + count, added + size, []
            if rows:
                count, size = self._insert_new(rows)
                stored, added = stored + count, added + size
            if stored:
                self._db.execute("UPDATE meta SET value = value + ? WHERE name = 'bytes'", (added,))
                self._db.execute(
                    "UPDATE meta SET value = value + ? WHERE name = 'stored'", (stored,)
                )
                self._evict()
        return stored

    def _insert_new(self, rows: list[_Row]) -> tuple[int, int]:
        """Insert the rows whose key is not stored yet (the first of equal keys wins), in the
        order given (eviction goes by insertion order); the count and bytes added.

        Inside the caller's write transaction. The common case — every key is new — is one
        statement; when some key was already held (the insert changed fewer rows), the
        statement is undone and the held keys looked up first, so the bytes added are exact.
        """
        self._db.execute("SAVEPOINT kyro_insert")
        before = self._db.total_changes
        self._db.executemany(_INSERT, rows)
        if self._db.total_changes - before == len(rows):
            self._db.execute("RELEASE kyro_insert")
            return len(rows), sum(row[5] for row in rows)
        self._db.execute("ROLLBACK TO kyro_insert")
        self._db.execute("RELEASE kyro_insert")
        held: set[bytes] = set()
        for start in range(0, len(rows), _CHUNK):
            keys = [row[0] for row in rows[start : start + _CHUNK]]
            marks = ",".join("?" * len(keys))
            found = self._db.execute(f"SELECT key FROM replies WHERE key IN ({marks})", keys)
            held.update(key for (key,) in found)
        new: dict[bytes, _Row] = {}
        for row in rows:
            if row[0] not in held and row[0] not in new:
                new[row[0]] = row
        self._db.executemany(_INSERT, new.values())
        return len(new), sum(row[5] for row in new.values())

    def _meta(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _evict(self) -> None:
        """Delete the oldest entries until the total fits under the cap (in a transaction)."""
        total = self._meta("bytes")
        evicted = 0
        while total > self.max_bytes:
            rows = self._db.execute(
                "SELECT seq, size FROM replies ORDER BY seq LIMIT ?", (_CHUNK,)
            ).fetchall()
            if not rows:
                total = 0
                break
            last = None
            for seq, size in rows:
                total -= size
                evicted += 1
                last = seq
                if total <= self.max_bytes:
                    break
            self._db.execute("DELETE FROM replies WHERE seq <= ?", (last,))
        if evicted:
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'bytes'", (total,))
            self._db.execute("UPDATE meta SET value = value + ? WHERE name = 'evicted'", (evicted,))

    def stats(self) -> CacheStats:
        """Entries, bytes and lifetime counters of this folder."""
        entries, oldest, newest = self._db.execute(
            "SELECT COUNT(*), MIN(stored_at), MAX(stored_at) FROM replies"
        ).fetchone()
        return CacheStats(
            path=self.path,
            entries=entries,
            bytes=self._meta("bytes"),
            max_bytes=self.max_bytes,
            hits=self._meta("hits"),
            stored=self._meta("stored"),
            evicted=self._meta("evicted"),
            oldest=oldest,
            newest=newest,
        )

    def clear(self) -> int:
        """Remove every entry (counters are reset too); the number removed."""
        with _transaction(self._db):
            removed = self._db.execute("DELETE FROM replies").rowcount
            self._db.execute("UPDATE meta SET value = 0")
        self._db.execute("VACUUM")
        return int(removed)


class ReplyReader(ClosedOnExit):
    """Point lookups on a connection of their own, for a caller that must not wait: an event
    loop. The file is in WAL mode, where a reader never waits for a writer; should it be busy
    anyway (another process recovering it after a crash), the lookup is a miss at once rather
    than a wait. It reads only: the hit counter is the writer's to update
    (:meth:`ReplyCache.count_hits`).

    Example::

        with cache.reader() as reader:
            hit = reader.get(key)        # CachedReply or None
    """

    def __init__(self, path: Path) -> None:
        # Made on one thread (a worker's, or the loop's), used on the loop's only.
        self._db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)

    def get(self, key: bytes) -> CachedReply | None:
        """The stored reply for ``key``, or None (also when the file is busy)."""
        try:
            row = self._db.execute(
                "SELECT content, usage, stored_at FROM replies WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise
        return _cached_reply(*row) if row is not None else None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()


_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # SQLite's primary result codes


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; 3.10 has only the text
    if code is not None:
        return (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def default_cache_dir(config_path: Path) -> Path:
    """``.kyro/cache`` beside the config: shared by plan, submit, check and live runs."""
    return config_path.resolve().parent / ".kyro" / "cache"


def cache_dir_for(setting: CacheSetting, config_path: Path) -> Path | None:
    """The cache folder a setting names, or None when off."""
    if setting is False:
        return None
    if setting is True:
        return default_cache_dir(config_path)
    return Path(setting)


def cache_scope_of(provider: object) -> str:
    """A provider's scope in the reply cache (its ``cache_scope``, else its ``name``).

    Providers that give the same answers for the same model share a scope — the OpenAI
    Batch API and a chat-completions endpoint run live both say ``openai-chat`` — so a batch
    job and a live run of one config answer each other from the cache.
    """
    return str(getattr(provider, "cache_scope", getattr(provider, "name", "")))
