"""A job's side of the reply cache: what submit found in it, and what check adds to it.

At submit, the job's :class:`~kyro._verdicts.cache_gate.RequestGate` writes into the job's folder

* ``cache.json`` — the cache folder and provider name, so a ``check`` in another process
  uses the same cache;
* ``cache-hits.jsonl`` — one result line per run the cache answered (replayed into the
  aggregator at check, marked ``origin: cache``); a pipeline's later stage *k* keeps its
  own, ``cache-hits-s<k>.jsonl``, written afresh each time the stage is planned (a plan a
  crash cut short is redone without doubling its hits);
* ``cache-keys.sqlite3`` — the cache key of every run sent, by custom_id, so the replies can
  be stored when they come back.

At check, :meth:`JobCache.store_replies` reads the downloaded result lines once and stores
every verdict (a request sent with ``n`` stores one entry per choice, under each run's own
key). Files live in the job's shard folder, removed with the job's state.

Example::

    job_cache = JobCache.create(store.shards_dir, cache_dir, provider="openai")
    gate = job_cache.gate(judges, estimator)        # plan through it
    ...
    job_cache = JobCache.load(store.shards_dir)     # at check, maybe in another process
    for line in job_cache.hits(): aggregator.add(line, cached=True)
    job_cache.store_replies(download_paths)
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from kyro._cost.estimate import CostEstimator
from kyro._files import ClosedOnExit, atomic_write, private_opener
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys

__all__ = ["JobCache"]

SETTINGS_FILE = "cache.json"
HITS_FILE = "cache-hits.jsonl"
KEYS_FILE = "cache-keys.sqlite3"
_RUN = re.compile(r"^(.*-r)(\d+)$")
_CHUNK = 500
# Replies stored per write transaction of the reply cache: large enough that the cache's key
# index is written in few passes (its pages are touched at random, so each transaction
# rewrites thousands of them: 4,000 a transaction made a 1M-request check's store 25 % slower
# than 20,000); small enough to hold the cache's lock briefly.
_STORE_CHUNK = 20_000
# Replies whose keys are looked up (and held in memory) at once, streamed into the
# transaction: what keeps check's memory flat (holding a whole transaction's replies made its
# peak RSS grow 1.48x from 5,000 to 50,000 requests).
_LOOKUP_CHUNK = 4_000


def _hits_name(stage: int) -> str:
    return f"cache-hits-s{stage}.jsonl" if stage else HITS_FILE


class _Settings(msgspec.Struct, frozen=True, kw_only=True):
    cache_dir: str
    provider: str
    max_bytes: int | None = None


class JobCache(ClosedOnExit):
    """The reply cache as one job uses it (see the module docstring)."""

    def __init__(self, folder: Path, settings: _Settings) -> None:
        self.folder = folder
        self.settings = settings
        self._cache: ReplyCache | None = None
        self._encoder = msgspec.json.Encoder()
        self._keys_db: sqlite3.Connection | None = None
        self._pending_keys: list[tuple[str, bytes, str]] = []
        self._hits_file: BinaryIO | None = None

    def cache(self) -> ReplyCache:
        """The reply cache, opened on first use (a check that only replays hits never opens
        it)."""
        if self._cache is None:
            settings = self.settings
            self._cache = (
                ReplyCache(settings.cache_dir, max_bytes=settings.max_bytes)
                if settings.max_bytes
                else ReplyCache(settings.cache_dir)
            )
        return self._cache

    @classmethod
    def create(
        cls, folder: Path, cache_dir: Path, *, provider: str, max_bytes: int | None = None
    ) -> JobCache:
        """Start a job's cache files in ``folder`` (an empty job folder)."""
        settings = _Settings(
            cache_dir=str(Path(cache_dir).absolute()), provider=provider, max_bytes=max_bytes
        )
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(folder / SETTINGS_FILE, msgspec.json.encode(settings))
        return cls(folder, settings)

    @classmethod
    def load(cls, folder: Path) -> JobCache | None:
        """The job's cache, or None when the job was submitted without one."""
        path = folder / SETTINGS_FILE
        if not path.exists():
            return None
        return cls(folder, msgspec.json.decode(path.read_bytes(), type=_Settings))

    def close(self) -> None:
        """Write what is pending and close the files and databases."""
        self.finish_submit()
        if self._keys_db is not None:
            self._keys_db.close()
            self._keys_db = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # -- submit ---------------------------------------------------------------------------

    def gate(
        self, judges: Sequence[str], estimator: CostEstimator | None, *, stage: int = 0
    ) -> RequestGate:
        """A request gate that records hits and sent keys into this job's files (the hits
        of a pipeline's stage ``stage`` > 0 into that stage's own file, emptied first)."""
        cache = self.cache()  # first: a cache that cannot be opened leaves no file open
        # Closed by finish_submit (or close): it outlives this call, written through the gate.
        path = self.folder / _hits_name(stage)
        if stage:
            hits = open(path, "wb", opener=private_opener)  # noqa: SIM115
        else:
            hits = open(path, "ab", opener=private_opener)  # noqa: SIM115
        buffer = bytearray()

        def on_hit(line: ResultLine) -> None:
            self._encoder.encode_into(line, buffer, -1)
            buffer.extend(b"\n")
            if len(buffer) >= 1 << 20:
                hits.write(buffer)
                buffer.clear()

        def on_sent(custom_id: str, key: bytes, request: JudgeRequest) -> None:
            self._pending_keys.append((custom_id, key, request.model))
            if len(self._pending_keys) >= 10_000:
                self._flush_keys()

        def on_flush() -> None:
            hits.write(buffer)
            buffer.clear()
            hits.flush()
            self._flush_keys()

        self._hits_file = hits
        return RequestGate(
            judges,
            cache=cache,
            keys=RequestKeys(self.settings.provider),
            estimator=estimator,
            on_hit=on_hit,
            on_sent=on_sent,
            on_flush=on_flush,
        )

    def finish_submit(self) -> None:
        """Make the hits and keys written so far durable (call once planning is done)."""
        hits = self._hits_file
        if hits is not None:
            hits.flush()
            hits.close()
            self._hits_file = None
        self._flush_keys()

    def _db(self) -> sqlite3.Connection:
        if self._keys_db is None:
            path = self.folder / KEYS_FILE
            if not path.exists():  # private, like every file of the job's state
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._keys_db = sqlite3.connect(
                self.folder / KEYS_FILE, isolation_level=None, check_same_thread=False
            )
            # Keyed by custom_id alone (no rowid): check looks every reply's key up by it.
            self._keys_db.execute(
                "CREATE TABLE IF NOT EXISTS keys "
                "(custom_id TEXT PRIMARY KEY, key BLOB NOT NULL, model TEXT NOT NULL) "
                "WITHOUT ROWID"
            )
        return self._keys_db

    def _flush_keys(self) -> None:
        if not self._pending_keys:
            return
        db = self._db()
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO keys VALUES (?, ?, ?)", self._pending_keys)
        db.execute("COMMIT")
        self._pending_keys.clear()

    # -- check ----------------------------------------------------------------------------

    def hits(self, stage: int = 0) -> Iterator[ResultLine]:
        """The runs the cache answered when the job (or its stage ``stage``) was planned, as
        result lines."""
        path = self.folder / _hits_name(stage)
        if not path.exists():
            return
        decoder = msgspec.json.Decoder(ResultLine)
        with path.open("rb") as file:
            for raw in file:
                if raw.strip():
                    yield decoder.decode(raw)

    def store_replies(self, lines: Iterable[ResultLine]) -> int:
        """Store every verdict among ``lines`` under its run's key; the number stored."""
        stored = 0
        items = self._items(lines)
        for first in items:
            rest = itertools.islice(items, _STORE_CHUNK - 1)
            stored += self.cache().put_many(itertools.chain((first,), rest))
        return stored

    def _items(self, lines: Iterable[ResultLine]) -> Iterator[tuple[bytes, ResultLine, str, str]]:
        """``(key, reply, provider, model)`` for every run among ``lines`` whose key is
        known, looking keys up ``_LOOKUP_CHUNK`` runs at a time."""
        batch: list[tuple[str, str | None, ResultLine]] = []
        for line in lines:
            if not line.ok:
                continue
            if len(line.choices) > 1:
                match = _RUN.match(line.custom_id)
                if match is None:
                    continue
                head, first = match[1], int(match[2])
                for offset, content in enumerate(line.choices):
                    batch.append((f"{head}{first + offset}", content, line))
            else:
                batch.append((line.custom_id, line.content, line))
            if len(batch) >= _LOOKUP_CHUNK:
                yield from self._keyed(batch)
                batch = []
        if batch:
            yield from self._keyed(batch)

    def _keyed(
        self, batch: list[tuple[str, str | None, ResultLine]]
    ) -> list[tuple[bytes, ResultLine, str, str]]:
        db = self._db()
        found: dict[str, tuple[bytes, str]] = {}
        for start in range(0, len(batch), _CHUNK):
            ids = [custom_id for custom_id, _, _ in batch[start : start + _CHUNK]]
            marks = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT custom_id, key, model FROM keys WHERE custom_id IN ({marks})", ids
            )
            found.update((custom_id, (key, model)) for custom_id, key, model in rows)
        items = []
        provider = self.settings.provider
        for custom_id, content, line in batch:
            hit = found.get(custom_id)
            if hit is None or content is None:
                continue
            usage = line.usage if len(line.choices) <= 1 else None
            reply = ResultLine(custom_id=custom_id, ok=True, content=content, usage=usage)
            items.append((hit[0], reply, provider, hit[1]))
        return items
