"""The reply cache: keys that must differ or match, verdict-only storage, eviction, stats."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import msgspec
import pytest

from kyro._types import JudgeRequest, Message, ResultError, ResultLine, Usage
from kyro._verdicts.reply_cache import CACHE_FILE, CacheError, ReplyCache, RequestKeys

VERDICT = json.dumps({"status": "SUCCESS", "root_cause": "polite and correct"})


def _request(**changes: object) -> JudgeRequest:
    base = JudgeRequest(
        custom_id="t0-j0-r0",
        model="gpt-4o-mini",
        messages=(
            Message(role="system", content="Reply in JSON."),
            Message(role="user", content="The transcript"),
        ),
        params={"temperature": 0, "max_tokens": 200},
    )
    return msgspec.structs.replace(base, **changes)


def _ok(content: str = VERDICT, tokens: int = 10) -> ResultLine:
    usage = Usage(input_tokens=tokens, output_tokens=5, total_tokens=tokens + 5)
    return ResultLine(custom_id="x", ok=True, content=content, usage=usage)


def test_keys_that_must_differ() -> None:
    """Another run index, param, model, message, provider or JSON flag gives another key."""
    keys = RequestKeys("openai")
    base = keys.key(_request(), run=0)
    others = [
        keys.key(_request(), run=1),
        keys.key(_request(params={"temperature": 0.5, "max_tokens": 200}), run=0),
        keys.key(_request(params={"temperature": 0}), run=0),
        keys.key(_request(model="gpt-4o"), run=0),
        keys.key(_request(messages=(Message(role="user", content="The transcript"),)), run=0),
        keys.key(
            _request(
                messages=(
                    Message(role="user", content="Reply in JSON."),
                    Message(role="user", content="The transcript"),
                )
            ),
            run=0,
        ),
        keys.key(_request(json_output=False), run=0),
        RequestKeys("anthropic").key(_request(), run=0),
    ]
    assert len({base, *others}) == len(others) + 1
    assert all(len(key) == 32 for key in others)


def test_keys_that_must_match() -> None:
    """The custom_id (job, stage, position) and param order do not change the key."""
    keys = RequestKeys("openai")
    base = keys.key(_request(), run=2)
    assert keys.key(_request(custom_id="s1-t99-j3-r2"), run=2) == base
    reordered = _request(params={"max_tokens": 200, "temperature": 0})
    assert RequestKeys("openai").key(reordered, run=2) == base
    # Equal messages built separately (not the same object) still match.
    fresh = _request(
        messages=(
            Message(role="system", content="Reply in JSON."),
            Message(role="user", content="The transcript"),
        )
    )
    assert keys.key(fresh, run=2) == base


def test_stores_verdicts_only(tmp_path: Path) -> None:
    """Errored lines and replies that are not verdicts are never stored; verdicts are."""
    keys = RequestKeys("openai")
    with ReplyCache(tmp_path / "cache") as cache:
        failed = ResultLine(
            custom_id="x", ok=False, error=ResultError(code="batch_expired", message="late")
        )
        assert cache.put(keys.key(_request(), run=0), failed) is False
        assert cache.put(keys.key(_request(), run=1), _ok("I think it is fine")) is False
        assert cache.put(keys.key(_request(), run=2), _ok('{"status": "MAYBE"}')) is False
        assert cache.put(keys.key(_request(), run=3), _ok("")) is False
        assert cache.stats().entries == 0
        key = keys.key(_request(), run=4)
        assert cache.put(key, _ok(), provider="openai", model="gpt-4o-mini") is True
        hit = cache.get(key)
        assert hit is not None
        assert hit.content == VERDICT
        assert hit.usage == Usage(input_tokens=10, output_tokens=5, total_tokens=15)
        assert cache.get(keys.key(_request(), run=5)) is None


def test_first_answer_is_kept(tmp_path: Path) -> None:
    """Storing a key twice keeps the first reply and counts it once."""
    key = RequestKeys("openai").key(_request(), run=0)
    other = json.dumps({"status": "ERROR", "root_cause": "rude"})
    with ReplyCache(tmp_path) as cache:
        assert cache.put(key, _ok()) is True
        assert cache.put(key, _ok(other)) is False
        hit = cache.get(key)
        assert hit is not None
        assert hit.content == VERDICT
        assert cache.stats().stored == 1


def test_eviction_is_oldest_first_under_the_cap(tmp_path: Path) -> None:
    """Past the size cap, the oldest entries go first until the total fits."""
    keys = RequestKeys("openai")
    size = len(VERDICT.encode()) + len(msgspec.json.encode(_ok().usage))
    ticks = iter(range(100))
    with ReplyCache(tmp_path, max_bytes=size * 3, clock=lambda: float(next(ticks))) as cache:
        stored = [keys.key(_request(), run=run) for run in range(5)]
        for key in stored:
            assert cache.put(key, _ok()) is True
        stats = cache.stats()
        assert stats.entries == 3
        assert stats.bytes == size * 3
        assert stats.evicted == 2
        assert (stats.oldest, stats.newest) == (2.0, 4.0)
        assert set(cache.get_many(stored)) == set(stored[2:])
        # A batch of stores bigger than the cap keeps only its newest entries.
        batch = [(keys.key(_request(), run=run), _ok(), "openai", "m") for run in range(10, 15)]
        assert cache.put_many(batch) == 5
        assert set(cache.get_many(k for k, *_ in batch)) == {k for k, *_ in batch[2:]}
        assert cache.stats().bytes == size * 3


def test_stats_clear_and_reopen(tmp_path: Path) -> None:
    """Entries survive reopening; stats count hits; clear empties the folder's store."""
    keys = RequestKeys("openai")
    folder = tmp_path / "cache"
    with ReplyCache(folder) as cache:
        cache.put_many(
            (keys.key(_request(), run=run), _ok(), "openai", "gpt-4o-mini") for run in range(4)
        )
    assert stat.S_IMODE((folder / CACHE_FILE).stat().st_mode) == 0o600
    with ReplyCache(folder) as cache:
        found = cache.get_many(keys.key(_request(), run=run) for run in range(6))
        assert len(found) == 4
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.stored) == (4, 4, 4)
        assert stats.bytes > 0
        assert cache.clear() == 4
        stats = cache.stats()
        assert (stats.entries, stats.bytes, stats.hits) == (0, 0, 0)


def test_get_many_spans_chunks(tmp_path: Path) -> None:
    """Lookups of more keys than one query holds find every stored key."""
    keys = RequestKeys("openai")
    all_keys = [keys.key(_request(), run=run) for run in range(1_200)]
    with ReplyCache(tmp_path) as cache:
        assert cache.put_many((k, _ok(), "openai", "m") for k in all_keys[::2]) == 600
        assert set(cache.get_many(all_keys)) == set(all_keys[::2])


def test_unusable_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A cache folder that is a file is refused with a message saying how to proceed."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(CacheError, match="--no-cache"):
        ReplyCache(blocker)


def test_many_openers_at_once_all_succeed(tmp_path: Path) -> None:
    """Processes and threads that open a new cache folder at the same moment (a service's
    groups, parallel cron jobs) all get it: the WAL set-up is taken in turns."""
    errors: list[BaseException] = []
    folders = [tmp_path / f"cache{n}" for n in range(10)]

    def open_and_use(folder: Path, n: int) -> None:
        try:
            with ReplyCache(folder) as cache:
                key = RequestKeys("openai").key(_request(), run=n)
                cache.put(key, _ok(), provider="openai", model="m")
                assert cache.get(key) is not None
        except BaseException as exc:  # collected and asserted on the main thread
            errors.append(exc)

    for folder in folders:
        threads = [threading.Thread(target=open_and_use, args=(folder, n)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for folder in folders:
        with ReplyCache(folder) as cache:
            assert cache.stats().entries == 8


def test_a_batch_with_held_and_repeated_keys_counts_bytes_exactly(tmp_path: Path) -> None:
    """put_many stores only keys not held yet, the first of repeated keys, and adds exactly
    their bytes; a batch of only new keys stores them all."""
    keys = RequestKeys("openai")
    held, new, twice = (keys.key(_request(), run=run) for run in range(3))
    other = json.dumps({"status": "ERROR", "root_cause": "rude"})
    size = len(VERDICT.encode()) + len(msgspec.json.encode(_ok().usage))
    with ReplyCache(tmp_path) as cache:
        assert cache.put_many([(held, _ok(), "openai", "m")]) == 1
        batch = [
            (held, _ok(other), "openai", "m"),
            (new, _ok(), "openai", "m"),
            (twice, _ok(), "openai", "m"),
            (twice, _ok(other), "openai", "m"),
        ]
        assert cache.put_many(batch) == 2
        stats = cache.stats()
        assert (stats.entries, stats.stored, stats.bytes) == (3, 3, 3 * size)
        replies = cache.get_many([held, new, twice])
        assert {key: reply.content for key, reply in replies.items()} == {
            held: VERDICT,
            new: VERDICT,
            twice: VERDICT,
        }
        fresh = [(keys.key(_request(), run=run), _ok(), "openai", "m") for run in range(3, 9)]
        assert cache.put_many(fresh) == 6
        assert cache.stats().bytes == 9 * size
